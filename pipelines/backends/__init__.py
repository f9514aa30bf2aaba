"""Backends turn a card plus settings into a ready ``Restorer``.

Each backend module is imported only when one of its models is first used, so
listing models or running a classical baseline never loads a runtime it doesn't need.
"""

from __future__ import annotations

import os

from pipelines.backends.base import ProgressFn, Restorer, no_progress
from pipelines.errors import InvalidOptionError
from pipelines.registry import ModelCard

__all__ = ["ProgressFn", "Restorer", "check_options", "load_restorer", "no_progress"]


def check_options(card: ModelCard, scale: int, noise: int | None) -> None:
    """Refuse a scale or noise level the card does not offer, naming the valid ones."""
    if scale not in card.scales:
        offered = ", ".join(f"x{s}" for s in card.scales)
        raise InvalidOptionError(f"{card.title} offers {offered}, not x{scale}.")
    if noise is not None and card.noise_levels and noise not in card.noise_levels:
        offered = ", ".join(str(n) for n in card.noise_levels)
        raise InvalidOptionError(f"{card.title} takes noise levels {offered}, not {noise}.")


CONVERTIBLE_FAMILIES = ("realesrgan",)
"""Bundled ncnn families whose weights also run in PyTorch (see ``ncnn_to_torch``)."""


def prefer_torch(card: ModelCard) -> bool:
    """Whether a bundled model should run in PyTorch rather than ncnn.

    ``RESTORATION_BACKEND`` = ``ncnn`` / ``torch`` decides; by default PyTorch is used
    only when a CUDA GPU is present (ncnn is the faster CPU runtime here).
    """
    if card.family not in CONVERTIBLE_FAMILIES:
        return False
    setting = os.environ.get("RESTORATION_BACKEND", "auto").lower()
    if setting in ("ncnn", "torch"):
        return setting == "torch"
    if setting != "auto":
        raise InvalidOptionError(
            f"RESTORATION_BACKEND must be auto, ncnn or torch, not {setting!r}."
        )
    return _cuda_available()


def device_label(card: ModelCard) -> str:
    """Where a card runs: OpenCV, ncnn on the CPU or a Vulkan GPU, or a torch device."""
    if card.backend == "classical":
        return "cpu (OpenCV)"
    if card.backend == "ncnn" and not prefer_torch(card):
        from pipelines.backends.ncnn import runtime

        index = runtime.vulkan_device()
        return f"vulkan:{index} (ncnn)" if index is not None else "cpu (ncnn)"
    from pipelines.backends.torch.engine import choose_device

    return f"{choose_device()} (torch)"


def _cuda_available() -> bool:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def load_restorer(card: ModelCard, scale: int, noise: int | None = None) -> Restorer:
    """A cached, thread-safe restorer for one card at one scale and noise level."""
    check_options(card, scale, noise)
    if card.noise_levels and noise is None:
        noise = card.default_noise
    if card.backend == "classical":
        from pipelines.backends import classical

        return classical.load(card.id, scale)
    if card.backend == "torch":
        from pipelines.backends import torch as torch_backend

        return torch_backend.load(card, scale, noise)
    if card.backend == "ncnn" and prefer_torch(card):
        from pipelines.backends import ncnn_to_torch

        return ncnn_to_torch.load_converted(card, scale)
    if card.backend == "ncnn":
        from pipelines.backends import ncnn

        return ncnn.load(card, scale, noise)
    raise InvalidOptionError(f"{card.title} uses backend {card.backend!r}, which is not available.")
