"""Classical resampling baselines (bicubic, Lanczos) with OpenCV."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipelines.backends.base import ProgressFn, no_progress

_INTERPOLATION = {"bicubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}


@dataclass(frozen=True)
class Resampler:
    method: str
    scale: int

    def __call__(
        self, rgb: np.ndarray, *, tile: int = 0, progress: ProgressFn = no_progress
    ) -> np.ndarray:
        height, width = rgb.shape[:2]
        return resize(rgb, width * self.scale, height * self.scale, self.method)


def resize(rgb: np.ndarray, width: int, height: int, method: str = "bicubic") -> np.ndarray:
    """Resize a float image in [0, 1] and clip the overshoot of the cubic kernels."""
    if (width, height) == (rgb.shape[1], rgb.shape[0]):
        return rgb.astype(np.float32, copy=False)
    shrinking = width < rgb.shape[1] or height < rgb.shape[0]
    interpolation = cv2.INTER_AREA if shrinking else _INTERPOLATION[method]
    out = cv2.resize(
        rgb.astype(np.float32, copy=False), (width, height), interpolation=interpolation
    )
    if out.ndim == 2 and rgb.ndim == 3:
        out = out[:, :, None]
    return np.clip(out, 0.0, 1.0)


def load(method: str, scale: int) -> Resampler:
    if method not in _INTERPOLATION:
        raise ValueError(f"unknown resampling method {method!r}")
    return Resampler(method, scale)
