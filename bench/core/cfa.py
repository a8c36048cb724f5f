"""Bayer colour filter arrays: checking one, where its colours lie, and moving an image to another Bayer layout.

A CFA is named by four letters, the colour of each packed plane in ``bench.core.rawio.PLANE_OFFSETS``
order, which is the 2x2 cell read row by row: (even row, even col), (even, odd), (odd, even), (odd, odd).
"BGGR" is the competition's sensor. A 2x2 *Bayer* pattern has one R, one B and two G, the two Gs on a
diagonal of the cell (so R and B are on the other): "BGGR", "RGGB", "GRBG" and "GBRG".

Any Bayer layout is the BGGR one shifted by a row and/or a column. :func:`to_cfa` makes that shift by padding
the mosaic with one reflected row on top (and one at the bottom, keeping the sides even) and/or one reflected
column on the left (and right): a reflected row is the row two rows further in, of the same colours, so every
pixel, original or added, keeps its colour and the result is a true mosaic of the target layout holding all the
original pixels. :func:`from_cfa` crops them back. A method built for one layout (the networks, trained on
BGGR) thus runs on any other and its output lines up pixel for pixel with its input.

Numpy only; this module does not import ``bench.core.rawio`` (which imports it to check the files it reads),
so it packs with its own two lines, which follow ``PLANE_OFFSETS``.
"""

from __future__ import annotations

import numpy as np

from bench.core.errors import BenchError

#: The Bayer layouts, in ``PLANE_OFFSETS`` order.
BAYER_CFAS = ("BGGR", "RGGB", "GRBG", "GBRG")


def bayer_problem(cfa: object) -> str | None:
    """What keeps ``cfa`` from being a 2x2 Bayer pattern, as one phrase, or None when it is one."""
    if not isinstance(cfa, str) or len(cfa) != 4 or any(letter not in "RGB" for letter in cfa):
        return "it must be four letters R, G, B (one per 2x2 position)"
    if sorted(cfa) != ["B", "G", "G", "R"]:
        return "a Bayer pattern has one R, one B and two G"
    if cfa[0] != cfa[3] and cfa[1] != cfa[2]:  # the Gs on neither diagonal, (0, 0)-(1, 1) nor (0, 1)-(1, 0)
        return "its two G share a row or a column instead of a diagonal"
    return None


def check_bayer(cfa: object, source: object) -> str:
    """``cfa`` when it is a 2x2 Bayer pattern; otherwise BenchError ``"<source>: CFA pattern ... is not a 2x2
    Bayer pattern (why)"``, ``source`` being the file (or image) it came from."""
    problem = bayer_problem(cfa)
    if problem is not None:
        raise BenchError(f"{source}: CFA pattern {cfa!r} is not a 2x2 Bayer pattern ({problem}); "
                         f"supported: {', '.join(BAYER_CFAS)}")
    return cfa


def _checked_bayer(cfa: str) -> str:
    problem = bayer_problem(cfa)
    if problem is not None:
        raise ValueError(f"CFA {cfa!r} is not a 2x2 Bayer pattern ({problem})")
    return cfa


def bayer_offset(cfa: str, colour: str = "B") -> tuple[int, int]:
    """``(row, col)`` of the ``colour`` ("R" or "B", the colours a Bayer cell has once) inside the 2x2 cell of
    the Bayer pattern ``cfa``; e.g. ``bayer_offset("RGGB") == (1, 1)``."""
    if colour not in ("R", "B"):
        raise ValueError(f"colour must be 'R' or 'B' (a Bayer cell has two G), not {colour!r}")
    return divmod(_checked_bayer(cfa).index(colour), 2)


def colour_order(cfa: str) -> tuple[int, int, int, int]:
    """The plane permutation that puts the planes of a ``cfa`` image in BGGR order: ``packed[...,
    colour_order(cfa)]`` has planes B, the G in B's row, the G in B's column, R (the identity for "BGGR").
    Its inverse is ``numpy.argsort`` of it."""
    row, col = bayer_offset(cfa, "B")
    return (2 * row + col, 2 * row + 1 - col, 2 * (1 - row) + col, 2 * (1 - row) + 1 - col)


def cfa_padding(cfa: str, target: str = "BGGR") -> tuple[int, int]:
    """Rows added on top (and at the bottom) and columns added on the left (and right) by
    ``to_cfa(image, cfa, target)``: each 0 or 1."""
    row, col = bayer_offset(cfa, "B")
    target_row, target_col = bayer_offset(target, "B")
    return (row - target_row) % 2, (col - target_col) % 2


def to_cfa(image: np.ndarray, cfa: str, target: str = "BGGR") -> np.ndarray:
    """The pixels of ``image`` (an ``(H, W)`` mosaic or an ``(h, w, 4)`` packed image, of Bayer layout ``cfa``)
    as an image of Bayer layout ``target``, padded by reflection as the module docstring says: up to one row
    (packed: half a row) more on each side. ``image`` itself when the layouts are the same; dtype kept."""
    rows, cols = cfa_padding(cfa, target)
    if not (rows or cols):
        return image
    image = np.asarray(image)
    mosaic = _mosaic_of(image) if image.ndim == 3 else image
    padded = np.pad(mosaic, ((rows, rows), (cols, cols)), mode="reflect")
    return _packed_of(padded) if image.ndim == 3 else padded


def from_cfa(image: np.ndarray, cfa: str, target: str = "BGGR") -> np.ndarray:
    """The inverse of :func:`to_cfa`: an image of layout ``target`` made by ``to_cfa(original, cfa, target)``
    (or one that lines up with it, such as a denoised version) -> the original pixels, of layout ``cfa``."""
    rows, cols = cfa_padding(cfa, target)
    if not (rows or cols):
        return image
    image = np.asarray(image)
    mosaic = _mosaic_of(image) if image.ndim == 3 else image
    cropped = mosaic[rows:mosaic.shape[0] - rows, cols:mosaic.shape[1] - cols]
    return _packed_of(cropped) if image.ndim == 3 else cropped


def _packed_of(mosaic: np.ndarray) -> np.ndarray:
    """``(H, W)`` -> ``(H/2, W/2, 4)``, planes in ``PLANE_OFFSETS`` order (the cell read row by row)."""
    height, width = mosaic.shape
    if height % 2 or width % 2:
        raise ValueError(f"a mosaic needs even sides, got shape {mosaic.shape}")
    cells = mosaic.reshape(height // 2, 2, width // 2, 2).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(cells.reshape(height // 2, width // 2, 4))


def _mosaic_of(packed: np.ndarray) -> np.ndarray:
    """``(h, w, 4)`` -> ``(2h, 2w)``: the inverse of :func:`_packed_of`."""
    if packed.ndim != 3 or packed.shape[2] != 4:
        raise ValueError(f"a packed image is (h, w, 4), got shape {packed.shape}")
    height, width, _ = packed.shape
    cells = packed.reshape(height, width, 2, 2).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(cells.reshape(2 * height, 2 * width))
