"""Tiled inference as pure functions: cut, pad, run, paste.

A network sees each tile with ``pad`` pixels of context on every side: real pixels
from the neighbouring tiles inside the image, border padding (reflect or edge)
outside it. Only each tile's core goes into the output, so seams vanish as long as
the context covers the network's receptive field. This is the tiling the ncnn
wrappers (Real-ESRGAN, waifu2x, Real-CUGAN, SRMD) use, written once for any
backend: nothing here knows about ncnn, and nothing keeps state between calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from pipelines.backends.base import ProgressFn, no_progress

PadMode = Literal["reflect", "edge"]
TileFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Tile:
    """One tile's core, in input pixels: rows ``y0:y1``, columns ``x0:x1``."""

    y0: int
    y1: int
    x0: int
    x1: int


def tile_grid(height: int, width: int, tile: int) -> list[Tile]:
    """Row-major cores of edge ``tile`` covering the image; the last row/column may be short.

    ``tile <= 0`` means one tile for the whole image.
    """
    if tile <= 0:
        return [Tile(0, height, 0, width)]
    return [
        Tile(y0, min(y0 + tile, height), x0, min(x0 + tile, width))
        for y0 in range(0, height, tile)
        for x0 in range(0, width, tile)
    ]


def align_extra(size: int, align: int) -> int:
    """Pixels to add after a core of ``size`` to reach a multiple of ``align``."""
    return -size % align


def pad_image(image: np.ndarray, before: int, after: int, mode: PadMode) -> np.ndarray:
    """Pad the two spatial axes of an HxWxC array: ``before`` top/left, ``after`` bottom/right.

    ``reflect`` mirrors without repeating the edge pixel (ncnn's and OpenCV's
    REFLECT_101); ``edge`` repeats it (replicate).
    """
    if before == after == 0:
        return image
    widths = ((before, after), (before, after)) + ((0, 0),) * (image.ndim - 2)
    return np.pad(image, widths, mode=mode)


def run_tiled(
    image: np.ndarray,
    fn: TileFn,
    *,
    scale: int,
    tile: int,
    pad: int,
    mode: PadMode = "reflect",
    align: int = 1,
    trim: int | None = None,
    progress: ProgressFn = no_progress,
) -> np.ndarray:
    """Run ``fn`` tile by tile over an HxWxC image and assemble the (H*scale)x(W*scale) result.

    Each tile handed to ``fn`` is its core grown by ``pad`` on every side, plus
    ``align_extra(core, align)`` more at the bottom/right so the core reaches a
    multiple of ``align`` (networks with strided down/up-sampling need it). ``fn``
    returns that tile's output; its core starts ``trim`` output pixels from the
    top-left (default ``pad * scale``: the network keeps the padding and it is cut
    here; 0 when the network crops the padding itself) and must be at least
    ``core * scale`` large. ``progress`` is called after each tile.

    The image is border-padded once, up front; the wrappers pad each tile's crop
    instead, which gives the same pixels (for ``reflect`` as long as the image is
    wider and taller than ``pad``).
    """
    height, width = image.shape[:2]
    offset = pad * scale if trim is None else trim
    tiles = tile_grid(height, width, tile)
    most_extra = max(align_extra(t.y1 - t.y0, align) for t in tiles)
    most_extra = max(most_extra, *(align_extra(t.x1 - t.x0, align) for t in tiles))
    padded = pad_image(image, pad, pad + most_extra, mode)
    out: np.ndarray | None = None
    for index, core, window in _windows(padded, tiles, pad, align):
        result = fn(window)
        rows, cols = (core.y1 - core.y0) * scale, (core.x1 - core.x0) * scale
        if result.shape[0] < offset + rows or result.shape[1] < offset + cols:
            raise ValueError(
                f"tile output {result.shape[:2]} is smaller than its core {rows}x{cols} "
                f"after a trim of {offset}"
            )
        if out is None:
            out = np.empty((height * scale, width * scale, result.shape[2]), dtype=result.dtype)
        out[core.y0 * scale : core.y1 * scale, core.x0 * scale : core.x1 * scale] = result[
            offset : offset + rows, offset : offset + cols
        ]
        progress((index + 1) / len(tiles), f"tile {index + 1}/{len(tiles)}")
    assert out is not None  # an image has at least one tile
    return out


def _windows(
    padded: np.ndarray, tiles: list[Tile], pad: int, align: int
) -> Iterator[tuple[int, Tile, np.ndarray]]:
    """Each tile's input window, as a view into the padded image."""
    for index, core in enumerate(tiles):
        rows = core.y1 - core.y0 + 2 * pad + align_extra(core.y1 - core.y0, align)
        cols = core.x1 - core.x0 + 2 * pad + align_extra(core.x1 - core.x0, align)
        # In padded coordinates the window starts at the core's own origin.
        yield index, core, padded[core.y0 : core.y0 + rows, core.x0 : core.x0 + cols]


def choose_tile(
    height: int,
    width: int,
    *,
    pad: int,
    bytes_per_pixel: float,
    budget_bytes: float,
    align: int = 1,
    minimum: int = 32,
) -> int:
    """The tile edge (input pixels) that keeps one tile's inference under a memory budget.

    ``bytes_per_pixel`` is the runtime's peak memory per pixel of padded tile input.
    Returns 0 (the whole image as one tile) when it fits; otherwise a multiple of
    ``align`` that splits the longer side into near-equal square tiles, so no sliver
    tile wastes a run on mostly padding.
    """
    extra = align - 1
    if (height + 2 * pad + extra) * (width + 2 * pad + extra) * bytes_per_pixel <= budget_bytes:
        return 0
    largest = max(int(math.sqrt(budget_bytes / bytes_per_pixel)) - 2 * pad - extra, minimum)
    largest = max(largest - largest % align, align)
    rows, cols = math.ceil(height / largest), math.ceil(width / largest)
    edge = max(math.ceil(height / rows), math.ceil(width / cols))
    return edge + align_extra(edge, align)
