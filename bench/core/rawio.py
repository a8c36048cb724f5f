"""Camera RAW (DNG) input and output, packing and normalisation, following the ZTE 2022 protocol.

Conventions used throughout the suite:

* a *mosaic* is the sensor image as stored in the file: ``(H, W)`` ``uint16``, black level included;
* a *packed* image is the mosaic split into its four 2x2 phases, ``(H/2, W/2, 4)``, planes in the order
  (even row, even col), (even, odd), (odd, even), (odd, odd). For the competition's BGGR sensor that is
  [B, G, G, R]; ``RawImage.cfa`` names the colour of each plane for any other sensor;
* *normalised* values are ``(raw - black) / (white - black)`` as ``float32``; the inverse clips to [0, 1],
  scales back and **truncates** to ``uint16`` exactly like the organisers' code, so scores are computed on
  the same integers a submission would contain.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.core.errors import BenchError
from bench.core.files import atomic_write

COMPETITION_BLACK_LEVEL = 1024
COMPETITION_WHITE_LEVEL = 16383
#: Largest value a 16-bit mosaic can hold, so the highest possible white level.
MAX_LEVEL = 65535
#: Row/column offset of each packed plane inside a 2x2 CFA cell.
PLANE_OFFSETS = ((0, 0), (0, 1), (1, 0), (1, 1))
_CFA_PHOTOMETRIC = 32803
_CFA_CODES = {"R": 0, "G": 1, "B": 2}


@dataclass(frozen=True)
class RawImage:
    """A RAW frame as read from disk.

    mosaic: ``(H, W)`` uint16 sensor values, black level included, H and W even.
    cfa: colour of each packed plane, e.g. ``"BGGR"`` (see module docstring for the plane order).
    black_level, white_level: the normalisation constants used for this frame.
    path: where it was read from, or None.
    """

    mosaic: np.ndarray
    cfa: str
    black_level: int
    white_level: int
    path: Path | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.mosaic.shape

    def normalized_packed(self) -> np.ndarray:
        """``(H/2, W/2, 4)`` float32 in [0, 1] (values below black / above white are clipped)."""
        return pack_normalized(self.mosaic, self.black_level, self.white_level)


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


def level_range_problem(black_level: int, white_level: int) -> str | None:
    """What is wrong with a black/white level pair for 16-bit data, as one phrase, or None when
    ``0 <= black < white <= 65535`` holds for two integers."""
    if (not isinstance(black_level, (int, np.integer)) or not isinstance(white_level, (int, np.integer))
            or isinstance(black_level, bool) or isinstance(white_level, bool)):
        return f"black level {black_level!r} and white level {white_level!r} must be integers"
    if not 0 <= black_level < white_level <= MAX_LEVEL:
        return (f"black level {black_level} and white level {white_level} must satisfy "
                f"0 <= black < white <= {MAX_LEVEL}")
    return None


def read_dng(
    path: str | os.PathLike,
    black_level: int = COMPETITION_BLACK_LEVEL,
    white_level: int = COMPETITION_WHITE_LEVEL,
    data: bytes | None = None,
) -> RawImage:
    """Read the visible Bayer mosaic of a DNG with rawpy.

    black_level / white_level: normalisation constants. The competition fixes them at 1024 / 16383
    (not read from the file); pass others for other sensors.
    data: the file's bytes when the caller already read them (e.g. to hash them); read from ``path``
    otherwise.
    Raises BenchError naming the file for anything unreadable.
    """
    import rawpy

    path = Path(path)
    inspect_dng(path)
    if data is None:
        data = path.read_bytes()
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            mosaic = np.array(raw.raw_image_visible, dtype=np.uint16, copy=True)
            pattern = np.asarray(raw.raw_pattern)
            colors = raw.color_desc.decode("ascii")
    except Exception as exc:
        raise BenchError(f"{path}: rawpy could not decode it ({type(exc).__name__}: {exc})") from None
    if mosaic.ndim != 2 or mosaic.shape[0] % 2 or mosaic.shape[1] % 2:
        raise BenchError(f"{path}: mosaic shape {mosaic.shape} is not a 2-D image with even sides")
    if pattern.shape != (2, 2):
        raise BenchError(f"{path}: CFA pattern {pattern.tolist()} is not a 2x2 Bayer pattern")
    cfa = "".join(colors[pattern[r, c]] for r, c in PLANE_OFFSETS)
    if black_level >= white_level:
        raise BenchError(f"{path}: black level {black_level} must be below white level {white_level}")
    return RawImage(mosaic=mosaic, cfa=cfa, black_level=int(black_level), white_level=int(white_level), path=path)


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


def pack_normalized(mosaic: np.ndarray, black_level: int, white_level: int) -> np.ndarray:
    """What a method receives: the ``(H, W)`` mosaic packed, normalised and clipped -> ``(H/2, W/2, 4)``
    float32 in [0, 1]."""
    return np.clip(normalize(pack(mosaic), black_level, white_level), 0.0, 1.0)


def normalize(raw: np.ndarray, black_level: int, white_level: int) -> np.ndarray:
    """Competition normalisation ``(raw - black) / (white - black)`` in float32 (not clipped)."""
    return (raw.astype(np.float32) - np.float32(black_level)) / np.float32(white_level - black_level)


def denormalize(x: np.ndarray, black_level: int, white_level: int) -> np.ndarray:
    """Competition inverse: ``clip(x, 0, 1) * (white - black) + black`` in float32, then truncating
    ``astype(uint16)`` (no rounding), exactly as the organisers' code does on a float32 network output."""
    scaled = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0) * np.float32(white_level - black_level)
    return (scaled + np.float32(black_level)).astype(np.uint16)


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
    black_level: int = COMPETITION_BLACK_LEVEL,
    white_level: int = COMPETITION_WHITE_LEVEL,
) -> None:
    """Write a minimal uncompressed 16-bit DNG (tifffile) that rawpy reads back; verified after writing.

    mosaic: ``(H, W)`` uint16. cfa: plane colours in ``PLANE_OFFSETS`` order, e.g. "BGGR".
    """
    import tifffile

    if mosaic.dtype != np.uint16 or mosaic.ndim != 2:
        raise ValueError(f"write_dng_standalone needs an (H, W) uint16 mosaic, got {mosaic.dtype} {mosaic.shape}")
    if len(cfa) != 4 or any(ch not in _CFA_CODES for ch in cfa):
        raise ValueError(f"cfa must be four letters from R, G, B, got {cfa!r}")
    identity_matrix = (1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1)  # 3x3 SRATIONAL
    tags = [
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, tuple(_CFA_CODES[ch] for ch in cfa), True),  # CFAPattern
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, "raw-bench", True),  # UniqueCameraModel
        (50714, "H", 1, (int(black_level),), True),  # BlackLevel
        (50717, "H", 1, (int(white_level),), True),  # WhiteLevel
        (50721, "2i", 9, identity_matrix, True),  # ColorMatrix1
        (50728, "2I", 3, (1, 1, 1, 1, 1, 1), True),  # AsShotNeutral
    ]
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer, mosaic, photometric=_CFA_PHOTOMETRIC, compression=None, subfiletype=0,
        metadata=None, byteorder="<", extratags=tags,
    )
    _write_verified(Path(out_path), buffer.getvalue(), mosaic, expected_size=None)


def write_dng(
    mosaic: np.ndarray,
    out_path: str | os.PathLike,
    template: str | os.PathLike | None = None,
    cfa: str = "BGGR",
    black_level: int = COMPETITION_BLACK_LEVEL,
    white_level: int = COMPETITION_WHITE_LEVEL,
) -> str:
    """Write by splicing into ``template`` when it allows, otherwise standalone.

    Returns "splice" or "standalone", saying which writer was used.
    """
    if template is not None:
        layout = inspect_dng(template)
        if layout.is_contiguous_uncompressed_16bit and (layout.height, layout.width) == mosaic.shape:
            write_dng_splice(template, mosaic, out_path)
            return "splice"
    write_dng_standalone(mosaic, out_path, cfa=cfa, black_level=black_level, white_level=white_level)
    return "standalone"


def _write_verified(path: Path, data: bytes, mosaic: np.ndarray, expected_size: int | None) -> None:
    """Write ``data`` to a temporary file beside ``path``, check it (size, and rawpy reads back exactly
    ``mosaic``), then rename it into place: a crash or a failed check never leaves a bad file at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def write_and_check(tmp: Path) -> None:
        tmp.write_bytes(data)
        size = tmp.stat().st_size
        if expected_size is not None and size != expected_size:
            raise BenchError(f"{path}: written file has {size} bytes, template had {expected_size}")
        back = read_dng(tmp).mosaic
        if back.shape != mosaic.shape or not np.array_equal(back, mosaic):
            raise BenchError(f"{path}: re-reading the written DNG does not give back the written pixels")

    atomic_write(path, write_and_check)
