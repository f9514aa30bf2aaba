"""What every backend hands the tasks: a callable restorer on RGB float images."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

ProgressFn = Callable[[float, str], None]
"""Called with the fraction done (0..1) and a short description."""


def no_progress(fraction: float, message: str) -> None:
    """The default progress callback: ignores everything."""


class Restorer(Protocol):
    """A loaded model at fixed settings.

    Takes an RGB float32 array of shape (H, W, 3) with values in [0, 1] and returns
    one of shape (H * scale, W * scale, 3), also float32 in [0, 1]. ``tile`` is the
    tile edge in input pixels (0 = the backend's choice). Implementations keep no
    per-call state on the object, so one instance can serve concurrent requests.
    """

    scale: int

    def __call__(
        self, rgb: np.ndarray, *, tile: int = 0, progress: ProgressFn = no_progress
    ) -> np.ndarray: ...
