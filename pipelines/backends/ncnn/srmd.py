"""SRMD: non-blind x2/x3/x4 super-resolution told the blur and the noise level.

As in srmd-ncnn-vulkan (GPU only there): the net's input blob ``input`` stacks the
RGB tile in [0, 1], 15 constant maps holding the degradation vector (the PCA
projection of the assumed blur kernel, values from the shader) and, for the
``srmd_x{s}`` models (noise 0-10), one more constant map of ``noise / 255``. The
noise-free models ``srmdnf_x{s}`` (noise -1) take the 18 maps without it. 12 px of
edge padding (the shader clamps coordinates), output ``output`` trimmed by
``12 * scale``; no alignment.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipelines.backends.ncnn.runtime import Recipe
from pipelines.registry import ModelCard

PAD = 12

DEGRADATION = np.array(
    [
        -1.12360956e-08,
        -1.36899159e-08,
        1.85637958e-02,
        2.86066886e-08,
        3.35292965e-02,
        8.37272935e-08,
        -2.54424009e-07,
        -3.16234976e-02,
        -1.35169253e-02,
        -1.10466090e-08,
        3.84753793e-02,
        3.79465739e-08,
        -2.44916752e-01,
        -8.02213490e-01,
        -5.40549755e-01,
    ],
    dtype=np.float32,
)

# Peak runtime memory per padded input pixel on the CPU path (measured, plus ~5 %).
_BYTES_PER_PIXEL = 9_000


def stem(card: ModelCard, scale: int, noise: int | None) -> str | None:
    return f"srmdnf_x{scale}" if noise is None or noise == -1 else f"srmd_x{scale}"


def recipe(card: ModelCard, scale: int, noise: int | None) -> Recipe:
    return Recipe(
        input_blob="input",
        output_blob="output",
        pad=PAD,
        mode="edge",
        prepare=_stacker(noise),
        bytes_per_pixel=_BYTES_PER_PIXEL,
    )


def _stacker(noise: int | None) -> Callable[[np.ndarray], np.ndarray]:
    """The preprocessing for one noise level: RGB planes plus the constant maps."""
    levels = DEGRADATION if noise is None or noise < 0 else np.append(DEGRADATION, noise / 255)
    levels = levels.astype(np.float32)

    def prepare(tile: np.ndarray) -> np.ndarray:
        rows, cols = tile.shape[:2]
        planes = np.empty((3 + len(levels), rows, cols), dtype=np.float32)
        planes[:3] = tile.transpose(2, 0, 1)
        planes[3:] = levels[:, None, None]
        return planes

    return prepare
