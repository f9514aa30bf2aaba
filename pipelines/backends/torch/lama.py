"""LaMa inpainting through spandrel: a masked model, kept apart from the image-to-image engine.

spandrel's ``LaMa.forward(image, mask)`` takes RGB in [0, 1] and a 1-channel mask
(1 = hole), blanks the hole itself, and returns the full image with the hole filled and
the rest passed through; sides must be multiples of 8 (at least 16), so the input is
padded symmetrically (as IOPaint's ``pad_img_to_modulo`` does) and the pad cropped off.

The official file (IOPaint's ``big-lama.pt``) is a TorchScript archive: its weights are
read as data (``torchscript``), never run. ``.pth``/``.safetensors`` state dicts load
through the usual safe loader.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pipelines.backends.torch import cached_model, loader, torchscript
from pipelines.registry import ModelCard

if TYPE_CHECKING:
    import spandrel

MULTIPLE = 8
MINIMUM = 16


@dataclass(frozen=True)
class LamaFiller:
    """A loaded LaMa network; calling it fills an RGB float image where ``mask`` is True."""

    net: Any
    device: torch.device

    def __call__(self, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        height, width = mask.shape
        pad_h, pad_w = _padding(height), _padding(width)
        image = np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="symmetric")
        hole = np.pad(mask, ((0, pad_h), (0, pad_w)), mode="symmetric")
        image_t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
        mask_t = torch.from_numpy(hole.astype(np.float32))[None, None]
        with torch.inference_mode():
            out = self.net(image_t.to(self.device), mask_t.to(self.device))
        filled = out[0].float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        return np.ascontiguousarray(filled[:height, :width])


def _padding(side: int) -> int:
    target = max(MINIMUM, -(-side // MULTIPLE) * MULTIPLE)
    return target - side


def load(card: ModelCard) -> LamaFiller:
    """The LaMa filler of ``card``, its file resolved (and checksummed) by the weights manager."""
    from pipelines import weights

    (path,) = weights.resolve(card)
    # fp32 as before: the filler feeds float32 tensors; the shared cache bounds memory.
    loaded = cached_model(path, lambda: _build(path, card.title), hint="LaMa", precision="fp32")
    return LamaFiller(loaded.descriptor.model, loaded.device)


def read_weights(path: Path) -> loader.StateDict:
    """LaMa's tensors from a TorchScript archive or a plain checkpoint, read as data."""
    if torchscript.is_torchscript(path):
        return torchscript.read_state_dict(path)
    return loader.read_state_dict(path)


def _build(path: Path, title: str) -> spandrel.ImageModelDescriptor:
    return loader.build_as("LaMa", read_weights(path), path, needed_by=title)
