"""Camera RAW (DNG) input and output, packing and normalisation, following the ZTE 2022 protocol.

Conventions used throughout the suite:

* a *mosaic* is the sensor image as stored in the file: ``(H, W)`` ``uint16``, black level included;
* a *packed* image is the mosaic split into its four 2x2 phases, ``(H/2, W/2, 4)``, planes in the order
  (even row, even col), (even, odd), (odd, even), (odd, odd). For the competition's BGGR sensor that is
  [B, G, G, R]; ``RawImage.cfa`` names the colour of each plane for any other sensor;
* *normalised* values are ``(raw - black) / (white - black)`` as ``float32``; the inverse clips to [0, 1],
  scales back and **truncates** to ``uint16`` exactly like the organisers' code, so scores are computed on
  the same integers a submission would contain. Which black (per plane) and white level a file gets is
  its ``LevelPolicy``'s choice: the competition's fixed 1024 / 16383, or the file's own DNG tags
  (``bench.core.levels``).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.core.cfa import check_bayer
from bench.core.errors import BenchError
from bench.core.files import atomic_write
from bench.core.levels import (COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL, MAX_LEVEL,  # noqa: F401 (for callers)
                               LevelPolicy, Levels, denormalize, level_range_problem, normalize)

#: Row/column offset of each packed plane inside a 2x2 CFA cell.
PLANE_OFFSETS = ((0, 0), (0, 1), (1, 0), (1, 1))
_CFA_PHOTOMETRIC = 32803
_CFA_CODES = {"R": 0, "G": 1, "B": 2}


@dataclass(frozen=True)
class RawImage:
    """A RAW frame as read from disk.

    mosaic: ``(H, W)`` uint16 sensor values, black level included, H and W even.
    cfa: colour of each packed plane, e.g. ``"BGGR"`` (see module docstring for the plane order).
    levels: the levels this frame is normalised with (``bench.core.levels``: chosen by the reader's
    ``LevelPolicy`` from the competition's or the file's own).
    path: where it was read from, or None.
    tags: the levels the file's DNG tags give, ``(black per plane, white)``, or None when not read from a file.
    """

    mosaic: np.ndarray
    cfa: str
    levels: Levels
    path: Path | None = None
    tags: tuple[tuple[int, int, int, int], int] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.mosaic.shape

    @property
    def black_level(self):
        """The black level (the four per plane where they differ)."""
        return self.levels.black_level

    @property
    def white_level(self) -> int:
        return self.levels.white

    def normalized_packed(self) -> np.ndarray:
        """``(H/2, W/2, 4)`` float32 in [0, 1] (values below black / above white are clipped)."""
        return pack_normalized(self.mosaic, self.levels.black_level, self.levels.white)


@dataclass(frozen=True)
class DngLayout:
    """Where and how the CFA image is stored inside a DNG/TIFF file."""

    height: int
    width: int
    bits_per_sample: int
    compression: int
    byteorder: str  # "<" or ">"
    tiled: bool
    data_offsets: tuple[int, ...]
    data_byte_counts: tuple[int, ...]
    file_size: int

    @property
    def is_contiguous_uncompressed_16bit(self) -> bool:
        """True when the pixels are one uncompressed 16-bit run of rows (strips, not tiles), the case the
        byte splice supports."""
        if self.compression != 1 or self.bits_per_sample != 16 or self.tiled:
            return False
        expected = self.height * self.width * 2
        ends = [o + n for o, n in zip(self.data_offsets, self.data_byte_counts)]
        contiguous = all(ends[i] == self.data_offsets[i + 1] for i in range(len(ends) - 1))
        return contiguous and sum(self.data_byte_counts) == expected

    @property
    def payload_offset(self) -> int:
        return self.data_offsets[0]


def inspect_dng(path: str | os.PathLike) -> DngLayout:
    """Parse the TIFF structure of ``path`` and locate its CFA image; check the file is complete.

    Raises BenchError (naming the file) when the file is missing, is not a TIFF/DNG, has no CFA image,
    or is shorter than its image data says (truncated).
    """
    import tifffile

    path = Path(path)
    if path.is_dir():
        raise BenchError(f"{path}: is a folder, not a DNG file")
    if not path.is_file():
        raise BenchError(f"{path}: file not found")
    size = path.stat().st_size
    try:
        with tifffile.TiffFile(path) as tif:
            page = _find_cfa_page(tif)
            if page is None:
                raise BenchError(f"{path}: no CFA (Bayer) image in this DNG")
            layout = DngLayout(
                height=int(page.imagelength),
                width=int(page.imagewidth),
                bits_per_sample=int(page.bitspersample),
                compression=int(page.compression),
                byteorder=tif.byteorder,
                tiled=bool(page.is_tiled),
                data_offsets=tuple(int(o) for o in page.dataoffsets),
                data_byte_counts=tuple(int(n) for n in page.databytecounts),
                file_size=size,
            )
    except BenchError:
        raise
    except Exception as exc:  # tifffile raises several types for corrupt headers
        raise BenchError(f"{path}: not a readable DNG/TIFF file ({type(exc).__name__}: {exc})") from None
    needed = max((o + n for o, n in zip(layout.data_offsets, layout.data_byte_counts)), default=0)
    if needed > size:
        raise BenchError(f"{path}: truncated: file has {size} bytes but its image data ends at byte {needed}")
    return layout


def _find_cfa_page(tif):
    """The full-resolution CFA page of an open TiffFile, looking into SubIFDs as DNG allows."""
    import tifffile

    candidates = []
    for page in tif.pages:
        candidates.append(page)
        for offset in page.subifds or ():
            tif.filehandle.seek(offset)
            candidates.append(tifffile.TiffPage(tif, index=0))
    cfa_pages = [p for p in candidates if int(p.photometric) == _CFA_PHOTOMETRIC]
    if not cfa_pages:
        return None
    return max(cfa_pages, key=lambda p: int(p.imagelength) * int(p.imagewidth))


def read_dng(
    path: str | os.PathLike,
    levels: LevelPolicy | Levels | None = None,
    data: bytes | None = None,
) -> RawImage:
    """Read the visible Bayer mosaic of a DNG with rawpy.

    levels: the ``LevelPolicy`` that chooses this file's levels (default: the competition's 1024 / 16383,
    not read from the file, as the organisers did), or the ``Levels`` themselves.
    data: the file's bytes when the caller already read them (e.g. to hash them); read from ``path``
    otherwise.
    Raises BenchError naming the file for anything unreadable, or for tags that give no valid levels
    where the policy takes them from the file.
    """
    import rawpy

    path = Path(path)
    inspect_dng(path)
    if data is None:
        data = path.read_bytes()
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            pattern = np.asarray(raw.raw_pattern)
            colors = raw.color_desc.decode("ascii")
            per_channel, white = list(raw.black_level_per_channel), int(raw.white_level)
            mosaic = np.array(raw.raw_image_visible, dtype=np.uint16, copy=True)
    except Exception as exc:
        raise BenchError(f"{path}: rawpy could not decode it ({type(exc).__name__}: {exc})") from None
    if mosaic.ndim != 2 or mosaic.shape[0] % 2 or mosaic.shape[1] % 2:
        raise BenchError(f"{path}: mosaic shape {mosaic.shape} is not a 2-D image with even sides")
    tags = _plane_levels(path, per_channel, white, pattern)
    cfa = "".join(colors[pattern[r, c]] for r, c in PLANE_OFFSETS)
    check_bayer(cfa, path)
    if not isinstance(levels, Levels):
        levels = (levels or LevelPolicy()).resolve(path, *tags)
    return RawImage(mosaic=mosaic, cfa=cfa, levels=levels, path=path, tags=tags)


def read_dng_levels(path: str | os.PathLike, levels: LevelPolicy | None = None,
                    data: bytes | None = None) -> tuple[Levels, tuple]:
    """The levels ``levels`` (default: the competition's) gives the DNG at ``path``, and the
    ``(black per plane, white)`` its tags give, read like ``read_dng`` reads them but without copying out the
    pixels (rawpy unpacks the file to give its levels). data: the file's bytes when the caller already read
    them. Raises BenchError naming the file as ``read_dng`` does."""
    import rawpy

    path = Path(path)
    try:
        with rawpy.RawPy() as raw:
            if data is None:
                raw.open_file(str(path))
            else:
                raw.open_buffer(io.BytesIO(data))
            pattern = np.asarray(raw.raw_pattern)
            per_channel, white = list(raw.black_level_per_channel), int(raw.white_level)
    except Exception as exc:
        raise BenchError(f"{path}: rawpy could not decode it ({type(exc).__name__}: {exc})") from None
    tags = _plane_levels(path, per_channel, white, pattern)
    return (levels or LevelPolicy()).resolve(path, *tags), tags


def _plane_levels(path: Path, per_channel: list, white: int,
                  pattern: np.ndarray) -> tuple[tuple[int, int, int, int], int]:
    """``(black of each packed plane, white)`` from rawpy's tags: ``black_level_per_channel`` is indexed by
    colour index, which ``raw_pattern`` gives for each position of the 2x2 CFA cell. BenchError naming the
    file for a pattern that is not 2x2."""
    if pattern.shape != (2, 2):
        raise BenchError(f"{path}: CFA pattern {pattern.tolist()} is not a 2x2 Bayer pattern")
    return tuple(int(per_channel[int(pattern[r, c])]) for r, c in PLANE_OFFSETS), int(white)


def pack(mosaic: np.ndarray) -> np.ndarray:
    """``(H, W)`` -> ``(H/2, W/2, 4)``, planes in ``PLANE_OFFSETS`` order; dtype kept."""
    if mosaic.ndim != 2 or mosaic.shape[0] % 2 or mosaic.shape[1] % 2:
        raise ValueError(f"pack needs a 2-D mosaic with even sides, got shape {mosaic.shape}")
    return np.stack([mosaic[r::2, c::2] for r, c in PLANE_OFFSETS], axis=-1)


def unpack(packed: np.ndarray) -> np.ndarray:
    """``(H/2, W/2, 4)`` -> ``(H, W)``; the inverse of :func:`pack`; dtype kept."""
    if packed.ndim != 3 or packed.shape[2] != 4:
        raise ValueError(f"unpack needs an (h, w, 4) array, got shape {packed.shape}")
    h, w, _ = packed.shape
    mosaic = np.empty((2 * h, 2 * w), dtype=packed.dtype)
    for plane, (r, c) in enumerate(PLANE_OFFSETS):
        mosaic[r::2, c::2] = packed[..., plane]
    return mosaic


def pack_normalized(mosaic: np.ndarray, black_level, white_level: int) -> np.ndarray:
    """What a method receives: the ``(H, W)`` mosaic packed, normalised and clipped -> ``(H/2, W/2, 4)``
    float32 in [0, 1]; ``black_level`` one level or four, one per plane."""
    return np.clip(normalize(pack(mosaic), black_level, white_level), 0.0, 1.0)


def write_dng_splice(template: str | os.PathLike, mosaic: np.ndarray, out_path: str | os.PathLike) -> None:
    """Write ``mosaic`` into a byte-for-byte copy of ``template`` (the competition's method).

    Only the pixel payload is replaced, so every tag of the template (size, CFA, colour data) is kept.
    Verified: the output has the template's size and rawpy reads back exactly ``mosaic``.
    Raises BenchError when the template is not an uncompressed contiguous 16-bit DNG of the same shape.
    """
    template = Path(template)
    layout = inspect_dng(template)
    if not layout.is_contiguous_uncompressed_16bit:
        raise BenchError(
            f"{template}: cannot splice into it (compression {layout.compression}, "
            f"{layout.bits_per_sample} bits, {len(layout.data_offsets)} strips); use the standalone writer"
        )
    if mosaic.shape != (layout.height, layout.width):
        raise BenchError(f"{template}: template is {layout.height}x{layout.width}, image is {mosaic.shape}")
    data = bytearray(template.read_bytes())
    payload = np.ascontiguousarray(mosaic, dtype=layout.byteorder + "u2").tobytes()
    start = layout.payload_offset
    data[start : start + len(payload)] = payload
    _write_verified(Path(out_path), bytes(data), mosaic, expected_size=layout.file_size)


def write_dng_standalone(
    mosaic: np.ndarray,
    out_path: str | os.PathLike,
    cfa: str = "BGGR",
    black_level=COMPETITION_BLACK_LEVEL,
    white_level: int = COMPETITION_WHITE_LEVEL,
) -> None:
    """Write a minimal uncompressed 16-bit DNG (tifffile) that rawpy reads back; verified after writing
    (pixels, CFA and levels).

    mosaic: ``(H, W)`` uint16. cfa: plane colours in ``PLANE_OFFSETS`` order, e.g. "BGGR".
    black_level: one black level, or four, one per packed plane: then written as a 2x2 BlackLevelRepeatDim
    with the four values in ``PLANE_OFFSETS`` order (the cell's row-major order), which rawpy reads back
    as the same ``black_level_per_channel`` through ``raw_pattern``. white_level: the WhiteLevel tag.
    """
    import tifffile

    if mosaic.dtype != np.uint16 or mosaic.ndim != 2:
        raise ValueError(f"write_dng_standalone needs an (H, W) uint16 mosaic, got {mosaic.dtype} {mosaic.shape}")
    if len(cfa) != 4 or any(ch not in _CFA_CODES for ch in cfa):
        raise ValueError(f"cfa must be four letters from R, G, B, got {cfa!r}")
    levels = Levels.of(black_level, white_level)  # ValueError for impossible levels
    if levels.uniform:
        black_tags = [(50714, "H", 1, (levels.black[0],), True)]  # BlackLevel
    else:
        black_tags = [(50713, "H", 2, (2, 2), True),  # BlackLevelRepeatDim
                      (50714, "H", 4, levels.black, True)]  # BlackLevel, one per position of the 2x2 cell
    identity_matrix = (1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1)  # 3x3 SRATIONAL
    tags = [
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, tuple(_CFA_CODES[ch] for ch in cfa), True),  # CFAPattern
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, "raw-bench", True),  # UniqueCameraModel
        *black_tags,
        (50717, "H", 1, (levels.white,), True),  # WhiteLevel
        (50721, "2i", 9, identity_matrix, True),  # ColorMatrix1
        (50728, "2I", 3, (1, 1, 1, 1, 1, 1), True),  # AsShotNeutral
    ]
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer, mosaic, photometric=_CFA_PHOTOMETRIC, compression=None, subfiletype=0,
        metadata=None, byteorder="<", extratags=tags,
    )
    _write_verified(Path(out_path), buffer.getvalue(), mosaic, expected_size=None, expected=(cfa, levels))


def write_dng(
    mosaic: np.ndarray,
    out_path: str | os.PathLike,
    template: str | os.PathLike | None = None,
    cfa: str = "BGGR",
    black_level=COMPETITION_BLACK_LEVEL,
    white_level: int = COMPETITION_WHITE_LEVEL,
) -> str:
    """Write by splicing into ``template`` when it allows (the copy keeps the template's tags, levels
    included), otherwise standalone with ``cfa`` and the levels given (one black level or four per plane).

    Returns "splice" or "standalone", saying which writer was used.
    """
    if template is not None:
        layout = inspect_dng(template)
        if layout.is_contiguous_uncompressed_16bit and (layout.height, layout.width) == mosaic.shape:
            write_dng_splice(template, mosaic, out_path)
            return "splice"
    write_dng_standalone(mosaic, out_path, cfa=cfa, black_level=black_level, white_level=white_level)
    return "standalone"


def _write_verified(path: Path, data: bytes, mosaic: np.ndarray, expected_size: int | None,
                    expected: tuple[str, Levels] | None = None) -> None:
    """Write ``data`` to a temporary file beside ``path``, check it (size, rawpy reads back exactly
    ``mosaic`` and, when ``expected`` is given, that CFA and the levels in its tags), then rename it into
    place: a crash or a failed check never leaves a bad file at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def write_and_check(tmp: Path) -> None:
        tmp.write_bytes(data)
        size = tmp.stat().st_size
        if expected_size is not None and size != expected_size:
            raise BenchError(f"{path}: written file has {size} bytes, template had {expected_size}")
        back = read_dng(tmp)
        if back.shape != mosaic.shape or not np.array_equal(back.mosaic, mosaic):
            raise BenchError(f"{path}: re-reading the written DNG does not give back the written pixels")
        if expected is not None and (back.cfa, back.tags) != (expected[0], (expected[1].black, expected[1].white)):
            raise BenchError(f"{path}: re-reading the written DNG gives CFA {back.cfa} and tags {back.tags}, not "
                             f"{expected[0]} and {expected[1].describe()}")

    atomic_write(path, write_and_check)
