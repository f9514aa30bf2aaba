"""ZeroGPU support: ``on_gpu`` is Hugging Face's ``spaces.GPU`` on Spaces, a no-op elsewhere.

On a ZeroGPU Space a GPU is attached only while a function decorated with ``spaces.GPU``
runs. The ``spaces`` package exists only there (Hugging Face installs it); this repo's own
``spaces/`` folder (the bundle builder) is never shipped in a Space, and when it is the
one found here it has no ``GPU``, so the decorator leaves functions unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

DURATION_ENV = "RESTORATION_GPU_DURATION"
DEFAULT_DURATION_S = 120


def zero_gpu_decorator() -> Callable[..., Any] | None:
    """Hugging Face's ``spaces.GPU`` when that package is importable, else None."""
    try:
        import spaces
    except ImportError:
        return None
    return getattr(spaces, "GPU", None)


def gpu_duration() -> int:
    """Seconds of GPU a ZeroGPU call may hold (the Space's quota is charged by it)."""
    return int(os.environ.get(DURATION_ENV, DEFAULT_DURATION_S))


def on_gpu(function: F) -> F:
    """Run ``function`` with a GPU attached on ZeroGPU Spaces; unchanged anywhere else."""
    decorator = zero_gpu_decorator()
    if decorator is None:
        return function
    return decorator(duration=gpu_duration())(function)
