"""bench/core/cfa.py: which CFAs are Bayer patterns (a file or input with another is one clear error), where
each colour lies, and moving an image between Bayer layouts and back without losing or recolouring a pixel."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from bench.core.cfa import (BAYER_CFAS, bayer_offset, bayer_problem, cfa_padding, check_bayer, colour_order,
                            from_cfa, to_cfa)
from bench.core.errors import BenchError
from bench.core.rawio import PLANE_OFFSETS, pack, read_dng, unpack, write_dng_standalone
from methods.base import NoisyRaw
from tests.helpers import smooth_clean_mosaic

#: Every arrangement of one R, one B and two G.
ARRANGEMENTS = sorted({"".join(p) for p in itertools.permutations("BGGR")})


def _colours(shape: tuple[int, int], cfa: str) -> np.ndarray:
    """The ``(H, W)`` array of each sensor pixel's colour letter for layout ``cfa``."""
    letters = np.empty(shape, dtype="<U1")
    for letter, (r, c) in zip(cfa, PLANE_OFFSETS):
        letters[r::2, c::2] = letter
    return letters


def test_the_bayer_patterns_are_the_arrangements_with_diagonal_greens():
    bayer = [cfa for cfa in ARRANGEMENTS if bayer_problem(cfa) is None]
    assert sorted(bayer) == sorted(BAYER_CFAS)
    for cfa in bayer:
        colours = _colours((2, 2), cfa)
        assert colours[0, 0] == colours[1, 1] or colours[0, 1] == colours[1, 0]
        assert check_bayer(cfa, "x.dng") == cfa


@pytest.mark.parametrize("cfa", ["RGBG", "RRGB", "GGRB", "BGRG", "RGB", "BGGRX", "bggr", "CMYG", None])
def test_a_cfa_that_is_not_bayer_is_a_clear_error_naming_the_source(cfa):
    with pytest.raises(BenchError, match=r"^camera\.dng: CFA pattern .* is not a 2x2 Bayer pattern \(.+\); "
                                         r"supported: BGGR, RGGB, GRBG, GBRG$"):
        check_bayer(cfa, "camera.dng")


def test_bayer_offset_and_colour_order():
    assert [bayer_offset(cfa) for cfa in BAYER_CFAS] == [(0, 0), (1, 1), (1, 0), (0, 1)]
    assert [bayer_offset(cfa, "R") for cfa in BAYER_CFAS] == [(1, 1), (0, 0), (0, 1), (1, 0)]
    with pytest.raises(ValueError, match="two G"):
        bayer_offset("BGGR", "G")
    with pytest.raises(ValueError, match="not a 2x2 Bayer pattern"):
        colour_order("RGBG")
    assert colour_order("BGGR") == (0, 1, 2, 3)
    for cfa in BAYER_CFAS:
        order = colour_order(cfa)
        assert "".join(cfa[k] for k in order) == "BGGR"
        b, g_row, g_column, r = (PLANE_OFFSETS[k] for k in order)
        assert g_row[0] == b[0] and g_column[1] == b[1] and r == (1 - b[0], 1 - b[1])


def test_own_packing_follows_plane_offsets():
    from bench.core import cfa as cfa_module

    mosaic = np.arange(6 * 8, dtype=np.uint16).reshape(6, 8)
    np.testing.assert_array_equal(cfa_module._packed_of(mosaic), pack(mosaic))
    np.testing.assert_array_equal(cfa_module._mosaic_of(pack(mosaic)), mosaic)


@pytest.mark.parametrize("cfa,target", list(itertools.product(BAYER_CFAS, BAYER_CFAS)))
def test_to_cfa_keeps_every_colour_and_from_cfa_gives_back_the_pixels(cfa, target):
    rng = np.random.default_rng(0)
    mosaic = rng.integers(0, 65535, size=(10, 14), dtype=np.uint16)
    moved = to_cfa(mosaic, cfa, target)
    rows, cols = cfa_padding(cfa, target)
    assert moved.shape == (10 + 2 * rows, 14 + 2 * cols) and moved.dtype == mosaic.dtype
    # every pixel, original or added, is one of the original pixels of its own colour
    assert (_colours(moved.shape, target) == to_cfa(_colours(mosaic.shape, cfa), cfa, target)).all()
    np.testing.assert_array_equal(moved[rows:rows + 10, cols:cols + 14], mosaic)
    np.testing.assert_array_equal(from_cfa(moved, cfa, target), mosaic)
    # packed images: the same, plane by plane
    packed = rng.random((5, 7, 4), dtype=np.float32)
    moved_packed = to_cfa(packed, cfa, target)
    np.testing.assert_array_equal(moved_packed, pack(to_cfa(unpack(packed), cfa, target)))
    np.testing.assert_array_equal(from_cfa(moved_packed, cfa, target), packed)
    if cfa == target:
        assert to_cfa(packed, cfa, target) is packed and from_cfa(packed, cfa, target) is packed


def test_a_twin_brought_to_bggr_is_the_original_inside():
    """Cutting one row and/or column off a BGGR mosaic gives an RGGB / GRBG / GBRG one; padding it back to BGGR
    puts every pixel where it was in the original."""
    original = smooth_clean_mosaic(12, 16, seed=1)
    for cfa, (top, left) in {"RGGB": (1, 1), "GRBG": (1, 0), "GBRG": (0, 1)}.items():
        twin = original[top:12 - top, left:16 - left]
        back = to_cfa(twin, cfa, "BGGR")
        assert back.shape == original.shape
        np.testing.assert_array_equal(back[top:12 - top, left:16 - left], original[top:12 - top, left:16 - left])


def _with_cfa_pattern(path, pattern: bytes) -> None:
    """Overwrite the CFAPattern tag (BYTE x 4, stored in its IFD entry) of a ``write_dng_standalone`` file."""
    data = path.read_bytes()
    entry = (33422).to_bytes(2, "little") + (1).to_bytes(2, "little") + (4).to_bytes(4, "little")
    start = data.index(entry) + len(entry)
    path.write_bytes(data[:start] + pattern + data[start + 4:])


@pytest.mark.parametrize("codes,cfa", [(bytes([0, 1, 2, 1]), "RGBG"), (bytes([0, 0, 1, 2]), "RRGB")],
                         ids=["RGBG", "RRGB"])
def test_read_dng_refuses_a_cfa_that_is_not_bayer(tmp_path, codes, cfa):
    path = tmp_path / "odd.dng"
    write_dng_standalone(smooth_clean_mosaic(32, 32, seed=0), path)
    _with_cfa_pattern(path, codes)
    with pytest.raises(BenchError, match=rf"^{re.escape(str(path))}: CFA pattern '{cfa}' is not a 2x2 Bayer pattern"):
        read_dng(path)


def test_read_dng_reads_every_bayer_layout(tmp_path):
    mosaic = smooth_clean_mosaic(32, 32, seed=0)
    for cfa in BAYER_CFAS:
        write_dng_standalone(mosaic, tmp_path / f"{cfa}.dng", cfa=cfa)
        assert read_dng(tmp_path / f"{cfa}.dng").cfa == cfa


def test_a_method_input_with_a_non_bayer_cfa_is_refused():
    frames = np.zeros((1, 16, 16, 4), dtype=np.float32)
    with pytest.raises(BenchError, match=r"^image 7: CFA pattern 'RGBG' is not a 2x2 Bayer pattern"):
        NoisyRaw(frames, "RGBG", lambda: None, "7")
    assert NoisyRaw(frames, "GBRG", lambda: None, "7").cfa == "GBRG"
