"""waifu2x (CUNet, upconv_7): x2 upscaling and/or JPEG denoising.

As in waifu2x-ncnn-vulkan's CPU path: RGB in [0, 1] into blob ``Input1``, output
``Eltwise4``. The border is padded by repeating the edge pixel (not reflected).
The networks crop their own padding, so the output needs no trim. Context padding
(``prepadding``): CUNet 18 px at x2 (with or without denoising) and 28 px for the
denoise-only x1 models; upconv_7 7 px. Each tile's core is rounded up to a multiple
of 2 at x2 and of 4 at x1 (CUNet's U-Net downsamples), the extra taken from the
image or the padding at the bottom/right and dropped from the output.

Files: ``scale2.0x_model`` (noise -1, x2 only: the wrapper silently switches a
noise -1 x1 request to x2, which we refuse), ``noise{n}_scale2.0x_model`` and, for
CUNet only, ``noise{n}_model`` (x1).
"""

from __future__ import annotations

from pipelines.backends.ncnn.runtime import Recipe
from pipelines.registry import Bundled, ModelCard

# Peak runtime memory per padded input pixel on the CPU path (measured, plus ~5 %).
_CUNET_BYTES_PER_PIXEL = {1: 3_500, 2: 13_000}
_UPCONV_BYTES_PER_PIXEL = 9_000


def stem(card: ModelCard, scale: int, noise: int | None) -> str | None:
    if noise is None or noise == -1:
        return "scale2.0x_model" if scale == 2 else None
    return f"noise{noise}_model" if scale == 1 else f"noise{noise}_scale2.0x_model"


def recipe(card: ModelCard, scale: int, noise: int | None) -> Recipe:
    cunet = _is_cunet(card)
    pad = (28 if scale == 1 else 18) if cunet else 7
    return Recipe(
        input_blob="Input1",
        output_blob="Eltwise4",
        pad=pad,
        mode="edge",
        align=4 if scale == 1 else 2,
        trim=0,
        bytes_per_pixel=_CUNET_BYTES_PER_PIXEL[scale] if cunet else _UPCONV_BYTES_PER_PIXEL,
    )


def _is_cunet(card: ModelCard) -> bool:
    assert isinstance(card.source, Bundled)
    return "cunet" in card.source.folder
