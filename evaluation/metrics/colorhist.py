"""Colour-histogram similarity for colorization: how alike two images' colour palettes are.

Definition (``colorhist``, higher is better, in [0, 1]):

1. Both images (float32 RGB in [0, 1], taken as sRGB) go to CIELAB, D65, with OpenCV's
   float conversion (L* 0..100; a*, b* about -128..127).
2. Each image's chroma (a*, b*) falls into a joint 2-D histogram of 32 x 32 bins of width 8
   over [-128, 128) on both axes (values outside go to the edge bins); lightness is left out
   because a colorizer takes L* from its gray input.
3. The score is the histogram intersection of the two normalised histograms,
   ``sum_bins min(p, q)``: 1 when the colour distributions are the same (whatever the pixel
   arrangement), lower when hues or saturations differ, 0 when they share no bin.
"""

from __future__ import annotations

import cv2
import numpy as np

BINS = 32
_LOW, _HIGH = -128.0, 128.0


def chroma_counts(rgb: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Pixel counts of the joint (a*, b*) histogram, flattened (a* major)."""
    lab = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.float32), cv2.COLOR_RGB2Lab)
    width = (_HIGH - _LOW) / bins
    index = np.clip(np.floor((lab[..., 1:] - _LOW) / width), 0, bins - 1).astype(np.intp)
    return np.bincount((index[..., 0] * bins + index[..., 1]).ravel(), minlength=bins * bins)


def colorhist(output: np.ndarray, reference: np.ndarray) -> float:
    """Histogram intersection of the a*b* histograms of two same-size images."""
    pixels = output.shape[0] * output.shape[1]
    shared = np.minimum(chroma_counts(output), chroma_counts(reference)).sum()
    return float(shared / pixels)
