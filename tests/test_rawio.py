"""Tests for bench.core.rawio: packing, normalisation, DNG reading and the two DNG writers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import tifffile

from bench.core import rawio
from bench.core.errors import BenchError
from bench.core.levels import LevelPolicy, Levels

BLACK = rawio.COMPETITION_BLACK_LEVEL
WHITE = rawio.COMPETITION_WHITE_LEVEL
SHAPE = (64, 96)


def _mosaic(seed: int, shape=SHAPE) -> np.ndarray:
    """A random uint16 mosaic in the competition's [black, white] range."""
    return np.random.default_rng(seed).integers(BLACK, WHITE + 1, size=shape, dtype=np.uint16)


def _dng_tags(cfa: str = "BGGR"):
    """The same DNG tags rawio.write_dng_standalone writes, for building templates with tifffile directly."""
    codes = {"R": 0, "G": 1, "B": 2}
    identity_matrix = (1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1)
    return [
        (33421, "H", 2, (2, 2), True),
        (33422, "B", 4, tuple(codes[ch] for ch in cfa), True),
        (50706, "B", 4, (1, 4, 0, 0), True),
        (50707, "B", 4, (1, 1, 0, 0), True),
        (50708, "s", 0, "raw-bench", True),
        (50714, "H", 1, (BLACK,), True),
        (50717, "H", 1, (WHITE,), True),
        (50721, "2i", 9, identity_matrix, True),
        (50728, "2I", 3, (1, 1, 1, 1, 1, 1), True),
    ]


def _write_tiff_dng(path: Path, mosaic: np.ndarray, **kwargs) -> Path:
    """Write a CFA DNG with tifffile, letting the test choose byte order, compression, strips, tiles."""
    options = dict(photometric=32803, compression=None, subfiletype=0, metadata=None, byteorder="<")
    options.update(kwargs)
    tifffile.imwrite(path, mosaic, extratags=_dng_tags(), **options)
    return path


def _rawpy_mosaic(path: Path) -> np.ndarray:
    import rawpy

    with rawpy.imread(str(path)) as raw:
        return np.array(raw.raw_image_visible, copy=True)


# --------------------------------------------------------------------------------------------- pack / unpack


def test_pack_unpack_round_trip_uint16():
    mosaic = _mosaic(1)
    packed = rawio.pack(mosaic)
    assert packed.shape == (SHAPE[0] // 2, SHAPE[1] // 2, 4)
    assert packed.dtype == np.uint16
    back = rawio.unpack(packed)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, mosaic)


def test_pack_unpack_round_trip_float32():
    mosaic = np.random.default_rng(2).random(SHAPE, dtype=np.float32)
    packed = rawio.pack(mosaic)
    assert packed.dtype == np.float32
    np.testing.assert_array_equal(rawio.unpack(packed), mosaic)


def test_unpack_pack_round_trip_from_packed_side():
    packed = np.random.default_rng(3).random((5, 7, 4))
    np.testing.assert_array_equal(rawio.pack(rawio.unpack(packed)), packed)


def test_pack_plane_order_is_ee_eo_oe_oo():
    """Plane 0 = (even row, even col), 1 = (even, odd), 2 = (odd, even), 3 = (odd, odd): [B, G, G, R] for BGGR."""
    h, w = 6, 8
    mosaic = (np.arange(h)[:, None] * 100 + np.arange(w)[None, :]).astype(np.uint16)  # value = 100*row + col
    packed = rawio.pack(mosaic)
    assert packed[0, 0].tolist() == [0, 1, 100, 101]
    assert packed[1, 2].tolist() == [204, 205, 304, 305]  # cell at rows 2-3, cols 4-5
    assert packed[2, 3].tolist() == [406, 407, 506, 507]
    for i in range(h // 2):
        for j in range(w // 2):
            assert packed[i, j, 0] == mosaic[2 * i, 2 * j]
            assert packed[i, j, 1] == mosaic[2 * i, 2 * j + 1]
            assert packed[i, j, 2] == mosaic[2 * i + 1, 2 * j]
            assert packed[i, j, 3] == mosaic[2 * i + 1, 2 * j + 1]
    assert rawio.PLANE_OFFSETS == ((0, 0), (0, 1), (1, 0), (1, 1))


@pytest.mark.parametrize("shape", [(63, 96), (64, 95), (63, 95), (1, 2)])
def test_pack_rejects_odd_sized_mosaic(shape):
    with pytest.raises(ValueError):
        rawio.pack(np.zeros(shape, dtype=np.uint16))


@pytest.mark.parametrize("shape", [(64,), (2, 4, 6)])
def test_pack_rejects_non_2d_input(shape):
    with pytest.raises(ValueError):
        rawio.pack(np.zeros(shape, dtype=np.uint16))


@pytest.mark.parametrize("shape", [(4, 4), (4, 4, 3), (4, 4, 5)])
def test_unpack_rejects_anything_but_four_planes(shape):
    with pytest.raises(ValueError):
        rawio.unpack(np.zeros(shape, dtype=np.uint16))


# --------------------------------------------------------------------------------- normalize / denormalize


def test_normalize_maps_black_to_0_and_white_to_1():
    values = rawio.normalize(np.array([BLACK, WHITE], dtype=np.uint16), BLACK, WHITE)
    assert values.dtype == np.float32
    assert values[0] == 0.0
    assert values[1] == 1.0


def test_normalize_is_not_clipped():
    values = rawio.normalize(np.array([0, 20000], dtype=np.uint16), BLACK, WHITE)
    assert values[0] < 0 and values[1] > 1


def test_denormalize_truncates_instead_of_rounding():
    """x * 15359 + 1024 == 2000.9 (in float32) must give 2000, not 2001."""
    x = np.array([(2000.9 - BLACK) / (WHITE - BLACK)], dtype=np.float32)
    scaled = x * np.float32(WHITE - BLACK) + np.float32(BLACK)
    assert 2000.5 < float(scaled[0]) < 2001.0  # precondition: rounding would give 2001
    out = rawio.denormalize(x, BLACK, WHITE)
    assert out.dtype == np.uint16
    assert out.tolist() == [2000]


def test_denormalize_clips_to_black_and_white():
    out = rawio.denormalize(np.array([-5.0, -1e-6, 0.0, 1.0, 1.0 + 1e-6, 7.0]), BLACK, WHITE)
    assert out.dtype == np.uint16
    assert out.tolist() == [BLACK, BLACK, BLACK, WHITE, WHITE, WHITE]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_denormalize_matches_organisers_float32_formula(dtype):
    x = np.random.default_rng(4).uniform(-0.2, 1.2, size=(128, 96)).astype(dtype)
    expected = (np.clip(x.astype(np.float32), 0, 1) * np.float32(15359) + np.float32(1024)).astype(np.uint16)
    out = rawio.denormalize(x, BLACK, WHITE)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, expected)


def test_denormalize_inverts_normalize_on_every_integer_level():
    raw = np.arange(BLACK, WHITE + 1, dtype=np.uint16)
    np.testing.assert_array_equal(rawio.denormalize(rawio.normalize(raw, BLACK, WHITE), BLACK, WHITE), raw)


def test_normalize_denormalize_honour_other_levels():
    raw = np.array([64, 543, 1023], dtype=np.uint16)
    x = rawio.normalize(raw, 64, 1023)
    np.testing.assert_allclose(x, (raw.astype(np.float64) - 64) / 959, rtol=1e-6)
    np.testing.assert_array_equal(rawio.denormalize(x, 64, 1023), raw)


def test_raw_image_normalized_packed_clips_and_packs():
    mosaic = _mosaic(5)
    mosaic[0, 0] = 0  # below black
    image = rawio.RawImage(mosaic=mosaic, cfa="BGGR", levels=Levels.of(BLACK, WHITE))
    packed = image.normalized_packed()
    assert packed.shape == (32, 48, 4)
    assert packed.dtype == np.float32
    assert packed[0, 0, 0] == 0.0
    expected = np.clip((rawio.pack(mosaic).astype(np.float64) - BLACK) / (WHITE - BLACK), 0, 1)
    np.testing.assert_allclose(packed, expected, atol=1e-6)


# ------------------------------------------------------------------------------- standalone writer / reader


def test_standalone_dng_reads_back_bit_exact_with_bggr(tmp_path):
    mosaic = _mosaic(6)
    path = tmp_path / "a.dng"
    rawio.write_dng_standalone(mosaic, path)
    image = rawio.read_dng(path)
    assert image.mosaic.dtype == np.uint16
    np.testing.assert_array_equal(image.mosaic, mosaic)
    assert image.cfa == "BGGR"
    assert image.shape == SHAPE
    assert (image.black_level, image.white_level) == (BLACK, WHITE)
    assert image.path == path


def test_standalone_dng_keeps_full_uint16_range(tmp_path):
    """Values below black and above white are stored as they are (the writer does not clip)."""
    mosaic = _mosaic(7)
    mosaic[0, :4] = [0, 1, 1023, 65535]
    path = tmp_path / "full.dng"
    rawio.write_dng_standalone(mosaic, path)
    np.testing.assert_array_equal(rawio.read_dng(path).mosaic, mosaic)


@pytest.mark.parametrize("cfa", ["RGGB", "GRBG", "GBRG", "BGGR"])
def test_standalone_dng_round_trips_cfa(tmp_path, cfa):
    mosaic = _mosaic(8)
    path = tmp_path / f"{cfa}.dng"
    rawio.write_dng_standalone(mosaic, path, cfa=cfa)
    image = rawio.read_dng(path)
    assert image.cfa == cfa
    np.testing.assert_array_equal(image.mosaic, mosaic)


def test_read_dng_uses_given_levels_not_the_files(tmp_path):
    path = tmp_path / "levels.dng"
    rawio.write_dng_standalone(_mosaic(9), path, black_level=64, white_level=1023)
    assert (rawio.read_dng(path).black_level, rawio.read_dng(path).white_level) == (BLACK, WHITE)
    image = rawio.read_dng(path, LevelPolicy(black=100, white=4095))
    assert (image.black_level, image.white_level) == (100, 4095)
    assert image.tags == ((64,) * 4, 1023)


def test_read_dng_with_given_bytes_uses_them(tmp_path):
    first, second = tmp_path / "1.dng", tmp_path / "2.dng"
    rawio.write_dng_standalone(_mosaic(10), first)
    rawio.write_dng_standalone(_mosaic(11), second)
    image = rawio.read_dng(first, data=second.read_bytes())
    np.testing.assert_array_equal(image.mosaic, _mosaic(11))


def test_read_dng_rejects_black_not_below_white(tmp_path):
    path = tmp_path / "a.dng"
    rawio.write_dng_standalone(_mosaic(12), path)
    with pytest.raises(BenchError, match="black level"):
        rawio.read_dng(path, LevelPolicy(black=1000, white=1000))


@pytest.mark.parametrize(
    "mosaic, cfa",
    [
        (np.zeros(SHAPE, dtype=np.int32), "BGGR"),
        (np.zeros(SHAPE, dtype=np.float32), "BGGR"),
        (np.zeros((4, 4, 4), dtype=np.uint16), "BGGR"),
        (np.zeros(SHAPE, dtype=np.uint16), "BGG"),
        (np.zeros(SHAPE, dtype=np.uint16), "BGGX"),
    ],
)
def test_standalone_writer_rejects_bad_arguments(tmp_path, mosaic, cfa):
    with pytest.raises(ValueError):
        rawio.write_dng_standalone(mosaic, tmp_path / "x.dng", cfa=cfa)
    assert not (tmp_path / "x.dng").exists()


def test_standalone_writer_leaves_no_temporary_files(tmp_path):
    rawio.write_dng_standalone(_mosaic(13), tmp_path / "a.dng")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.dng"]


def test_inspect_dng_describes_standalone_file(tmp_path):
    path = tmp_path / "a.dng"
    rawio.write_dng_standalone(_mosaic(14), path)
    layout = rawio.inspect_dng(path)
    assert (layout.height, layout.width) == SHAPE
    assert layout.bits_per_sample == 16
    assert layout.compression == 1
    assert layout.byteorder == "<"
    assert layout.file_size == path.stat().st_size
    assert sum(layout.data_byte_counts) == SHAPE[0] * SHAPE[1] * 2
    assert layout.is_contiguous_uncompressed_16bit


# ------------------------------------------------------------------------------------------------- splicing


def _assert_spliced(template: Path, out: Path, mosaic: np.ndarray, byteorder: str) -> None:
    """Output = template byte for byte except the pixel payload, which holds ``mosaic``."""
    layout = rawio.inspect_dng(template)
    before, after = template.read_bytes(), out.read_bytes()
    assert len(after) == len(before)
    start, length = layout.payload_offset, mosaic.size * 2
    assert after[:start] == before[:start]
    assert after[start + length :] == before[start + length :]
    assert after[start : start + length] == mosaic.astype(byteorder + "u2").tobytes()
    np.testing.assert_array_equal(rawio.read_dng(out).mosaic, mosaic)


def test_splice_into_standalone_template_keeps_everything_but_pixels(tmp_path):
    template = tmp_path / "template.dng"
    rawio.write_dng_standalone(_mosaic(20), template)
    mosaic = _mosaic(21)
    out = tmp_path / "out.dng"
    rawio.write_dng_splice(template, mosaic, out)
    _assert_spliced(template, out, mosaic, "<")
    assert rawio.read_dng(out).cfa == "BGGR"


def test_splice_keeps_template_cfa(tmp_path):
    template = tmp_path / "template.dng"
    rawio.write_dng_standalone(_mosaic(22), template, cfa="RGGB")
    out = tmp_path / "out.dng"
    rawio.write_dng_splice(template, _mosaic(23), out)
    assert rawio.read_dng(out).cfa == "RGGB"


def test_splice_into_big_endian_template(tmp_path):
    original = _mosaic(24)
    template = _write_tiff_dng(tmp_path / "be.dng", original, byteorder=">")
    try:
        readable = np.array_equal(_rawpy_mosaic(template), original)
    except Exception as exc:  # pragma: no cover - depends on the LibRaw build
        pytest.skip(f"rawpy cannot read big-endian DNGs ({exc})")
    if not readable:  # pragma: no cover
        pytest.skip("rawpy misreads big-endian DNGs")
    assert rawio.inspect_dng(template).byteorder == ">"
    mosaic = _mosaic(25)
    out = tmp_path / "out.dng"
    rawio.write_dng_splice(template, mosaic, out)
    _assert_spliced(template, out, mosaic, ">")


def test_splice_into_multi_strip_template(tmp_path):
    template = _write_tiff_dng(tmp_path / "strips.dng", _mosaic(26), rowsperstrip=8)
    layout = rawio.inspect_dng(template)
    assert len(layout.data_offsets) == 8  # precondition: really several strips
    mosaic = _mosaic(27)
    out = tmp_path / "out.dng"
    assert rawio.write_dng(mosaic, out, template=template) == "splice"
    _assert_spliced(template, out, mosaic, "<")


def test_splice_into_dng_with_cfa_image_in_subifd(tmp_path):
    """Real DNGs keep a preview in IFD0 and the raw image in a SubIFD; the CFA image must be found there."""
    tags = _dng_tags()
    original = _mosaic(28)
    template = tmp_path / "subifd.dng"
    with tifffile.TiffWriter(template) as tw:
        tw.write(np.zeros((16, 24, 3), np.uint8), photometric="rgb", subfiletype=1, subifds=1, metadata=None,
                 extratags=tags[2:5])
        tw.write(original, photometric=32803, subfiletype=0, metadata=None, extratags=tags[:2] + tags[5:])
    layout = rawio.inspect_dng(template)
    assert (layout.height, layout.width) == SHAPE
    np.testing.assert_array_equal(rawio.read_dng(template).mosaic, original)
    mosaic = _mosaic(29)
    out = tmp_path / "out.dng"
    assert rawio.write_dng(mosaic, out, template=template) == "splice"
    _assert_spliced(template, out, mosaic, "<")


def test_splice_rejects_template_of_other_shape(tmp_path):
    template = tmp_path / "template.dng"
    rawio.write_dng_standalone(_mosaic(30), template)
    with pytest.raises(BenchError, match="template"):
        rawio.write_dng_splice(template, _mosaic(31, shape=(64, 64)), tmp_path / "out.dng")
    assert not (tmp_path / "out.dng").exists()


def test_splice_rejects_compressed_template(tmp_path):
    template = _write_tiff_dng(tmp_path / "zlib.dng", _mosaic(32), compression="zlib")
    with pytest.raises(BenchError, match="cannot splice"):
        rawio.write_dng_splice(template, _mosaic(33), tmp_path / "out.dng")
    assert not (tmp_path / "out.dng").exists()


# ------------------------------------------------------------------------------------- write_dng dispatcher


def test_write_dng_splices_into_usable_template(tmp_path):
    template = tmp_path / "template.dng"
    rawio.write_dng_standalone(_mosaic(40), template)
    mosaic = _mosaic(41)
    out = tmp_path / "out.dng"
    assert rawio.write_dng(mosaic, out, template=template) == "splice"
    _assert_spliced(template, out, mosaic, "<")


def test_write_dng_without_template_is_standalone(tmp_path):
    mosaic = _mosaic(42)
    out = tmp_path / "out.dng"
    assert rawio.write_dng(mosaic, out, cfa="GRBG") == "standalone"
    image = rawio.read_dng(out)
    assert image.cfa == "GRBG"
    np.testing.assert_array_equal(image.mosaic, mosaic)


@pytest.mark.parametrize("compression", ["zlib", "adobe_deflate"])
def test_write_dng_falls_back_to_standalone_for_compressed_template(tmp_path, compression):
    template = _write_tiff_dng(tmp_path / f"{compression}.dng", _mosaic(43), compression=compression)
    layout = rawio.inspect_dng(template)
    assert layout.compression != 1
    assert not layout.is_contiguous_uncompressed_16bit
    mosaic = _mosaic(44)
    out = tmp_path / "out.dng"
    assert rawio.write_dng(mosaic, out, template=template) == "standalone"
    np.testing.assert_array_equal(rawio.read_dng(out).mosaic, mosaic)
    assert out.read_bytes() != template.read_bytes()


def test_write_dng_falls_back_to_standalone_for_template_of_other_shape(tmp_path):
    template = tmp_path / "template.dng"
    rawio.write_dng_standalone(_mosaic(45, shape=(32, 48)), template)
    mosaic = _mosaic(46)
    out = tmp_path / "out.dng"
    assert rawio.write_dng(mosaic, out, template=template) == "standalone"
    image = rawio.read_dng(out)
    np.testing.assert_array_equal(image.mosaic, mosaic)
    assert image.shape == SHAPE


def test_write_dng_falls_back_to_standalone_for_tiled_template(tmp_path):
    original = _mosaic(47)
    template = _write_tiff_dng(tmp_path / "tiled.dng", original, tile=(16, 16))
    np.testing.assert_array_equal(_rawpy_mosaic(template), original)  # precondition: a valid DNG
    mosaic = _mosaic(48)
    out = tmp_path / "out.dng"
    assert rawio.write_dng(mosaic, out, template=template) == "standalone"
    np.testing.assert_array_equal(rawio.read_dng(out).mosaic, mosaic)


# ----------------------------------------------------------------------------------------------- bad input


def _bad_file(kind: str, tmp_path: Path) -> Path:
    if kind == "missing":
        return tmp_path / "does-not-exist.dng"
    if kind == "directory":
        folder = tmp_path / "folder.dng"
        folder.mkdir()
        return folder
    if kind == "junk":
        path = tmp_path / "junk.dng"
        path.write_bytes(b"hello")
        return path
    if kind == "empty":
        path = tmp_path / "empty.dng"
        path.write_bytes(b"")
        return path
    if kind == "truncated":
        good = tmp_path / "good.dng"
        rawio.write_dng_standalone(_mosaic(50), good)
        data = good.read_bytes()
        path = tmp_path / "truncated.dng"
        path.write_bytes(data[: len(data) // 2])
        return path
    if kind == "plain-tiff":
        path = tmp_path / "plain.tif"
        tifffile.imwrite(path, np.zeros(SHAPE, dtype=np.uint16))
        return path
    if kind == "rgb-tiff":
        path = tmp_path / "rgb.tif"
        tifffile.imwrite(path, np.zeros((16, 16, 3), dtype=np.uint8))
        return path
    raise AssertionError(kind)


BAD_KINDS = ["missing", "directory", "junk", "empty", "truncated", "plain-tiff", "rgb-tiff"]


@pytest.mark.parametrize("reader", [rawio.inspect_dng, rawio.read_dng], ids=["inspect_dng", "read_dng"])
@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_file_raises_one_line_bench_error_naming_it(tmp_path, kind, reader):
    path = _bad_file(kind, tmp_path)
    with pytest.raises(BenchError) as info:
        reader(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message


@pytest.mark.parametrize("keep", [1, 4, 8, 9, 100, 300, 431, 433, -1])
def test_any_truncation_of_a_dng_raises_bench_error(tmp_path, keep):
    """Cut at every structurally different point: inside the header, the IFD, the tag values, the pixels."""
    good = tmp_path / "good.dng"
    rawio.write_dng_standalone(_mosaic(51), good)
    data = good.read_bytes()
    path = tmp_path / "cut.dng"
    path.write_bytes(data[:keep])
    for reader in (rawio.inspect_dng, rawio.read_dng):
        with pytest.raises(BenchError) as info:
            reader(path)
        assert str(path) in str(info.value)
        assert "\n" not in str(info.value)


def test_truncated_file_message_says_truncated(tmp_path):
    good = tmp_path / "good.dng"
    rawio.write_dng_standalone(_mosaic(52), good)
    path = tmp_path / "cut.dng"
    path.write_bytes(good.read_bytes()[:-1])
    with pytest.raises(BenchError, match="truncated"):
        rawio.inspect_dng(path)


@pytest.mark.parametrize("kind", ["missing", "junk", "truncated", "plain-tiff"])
def test_write_dng_with_bad_template_raises_bench_error(tmp_path, kind):
    template = _bad_file(kind, tmp_path)
    with pytest.raises(BenchError) as info:
        rawio.write_dng(_mosaic(53), tmp_path / "out.dng", template=template)
    assert str(template) in str(info.value)


def test_failed_verification_leaves_no_file(tmp_path, monkeypatch):
    """If the re-read check fails, nothing is left at the output path (nor a temporary file)."""
    original = _mosaic(49)
    template = tmp_path / "template.dng"
    rawio.write_dng_standalone(original, template)
    real_read = rawio.read_dng

    def corrupting_read(path, *args, **kwargs):
        image = real_read(path, *args, **kwargs)
        return dataclasses.replace(image, mosaic=image.mosaic + 1)

    monkeypatch.setattr(rawio, "read_dng", corrupting_read)
    with pytest.raises(BenchError, match="does not give back the written pixels"):
        rawio.write_dng_splice(template, _mosaic(50), tmp_path / "out.dng")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["template.dng"]
