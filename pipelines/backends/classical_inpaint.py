"""Classical hole filling: OpenCV's Telea and Navier-Stokes methods, and PatchMatch.

Every filler takes an RGB float32 image in [0, 1] and a bool mask (True = fill) of the
same height and width, and returns the image with the masked pixels filled.
"""

from __future__ import annotations

import threading
from types import ModuleType

import cv2
import numpy as np

from pipelines.errors import ModelUnavailableError

OPENCV_RADIUS = 5
"""Neighbourhood radius in pixels (at the working size) that each filled pixel is taken from.

OpenCV's sample uses 3, IOPaint 4; 5 gives smoother fills on soft gradients and costs
little, since the crop strategy keeps the working image small.
"""

PATCHMATCH_PATCH_SIZE = 3
"""PatchMatch patch radius (7x7 patches), as IOPaint and the library's examples use."""

_OPENCV_FLAGS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
_patchmatch_lock = threading.Lock()
_patchmatch_seeded = False


def opencv_fill(rgb: np.ndarray, mask: np.ndarray, method: str) -> np.ndarray:
    """Telea or Navier-Stokes, channel by channel on uint16, so 16-bit inputs keep precision.

    (OpenCV takes 3 channels only as uint8; its float32 path of Telea fills garbage.)
    """
    flags = _OPENCV_FLAGS[method]
    hole = mask.astype(np.uint8)
    samples = np.clip(rgb * 65535.0 + 0.5, 0, 65535).astype(np.uint16)
    planes = [
        cv2.inpaint(np.ascontiguousarray(samples[:, :, c]), hole, OPENCV_RADIUS, flags)
        for c in range(3)
    ]
    return np.dstack(planes).astype(np.float32) / 65535.0


def patchmatch_fill(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """PatchMatch (pypatchmatch, InvokeAI's build) on 8 bits: the library takes uint8 only."""
    library = _patchmatch()
    image = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    filled = library.inpaint(image, mask, patch_size=PATCHMATCH_PATCH_SIZE)
    return filled.astype(np.float32) / 255.0


def _patchmatch() -> ModuleType:
    global _patchmatch_seeded
    try:
        import patchmatch
    except ImportError:
        raise ModelUnavailableError(
            "PatchMatch needs the pypatchmatch wheel: run `pip install pypatchmatch==2.2.0`."
        ) from None
    if not patchmatch.patchmatch_available:
        raise ModelUnavailableError(
            "pypatchmatch is installed but its native library failed to load; "
            "reinstall it with `pip install --force-reinstall pypatchmatch==2.2.0`."
        )
    with _patchmatch_lock:
        if not _patchmatch_seeded:
            patchmatch.set_random_seed(0)  # equal inputs give equal fills
            _patchmatch_seeded = True
    return patchmatch
