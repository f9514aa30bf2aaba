"""Colorization networks: a gray photo in, predicted chroma out, at the model's working size.

Unlike a ``TorchRestorer`` these models don't map RGB to RGB: DDColor takes the
"gray RGB" of the Lab lightness (a = b = 0) at a fixed square size and predicts the
a/b planes of CIE Lab. So the whole image runs in one pass (no tiling), and the task
(``pipelines.colorize``) puts the predicted chroma back on the full-resolution lightness.

The checkpoint is read with the backend's safe reader and built by spandrel's
``DDColor`` architecture (from ``spandrel-extra-arches``), but its own call function
is bypassed: it always resizes to 256 px, where DDColor's inference runs its large
models at 512 px.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import spandrel
import torch

from pipelines.backends.torch import cached_model, loader
from pipelines.backends.torch.engine import LoadedModel
from pipelines.errors import InvalidOptionError, ModelUnavailableError
from pipelines.registry import ModelCard

DDCOLOR = "DDColor"
TINY_INPUT = 256
LARGE_INPUT = 512
"""DDColor's inference sizes: 256 px for the ConvNeXt-T ("tiny") models, 512 for the rest."""


@dataclass(frozen=True)
class Colorizer:
    """A loaded DDColor model. Holds no per-call state; the model's lock serializes calls."""

    net: LoadedModel
    input_size: int
    name: str

    def describe(self) -> str:
        tags = ", ".join(self.net.descriptor.tags)
        return f"DDColor ({tags}) · {self.input_size} px · {self.net.device} · {self.net.dtype}"

    def predict_ab(self, rgb: np.ndarray) -> np.ndarray:
        """Lab a/b planes (S, S, 2) at the working size S for an RGB image (H, W, 3) in [0, 1].

        As DDColor's ``colorization_pipeline``: resize (bilinear) to the input size,
        take the Lab lightness, build the gray RGB of (L, 0, 0), run the network.
        """
        size = self.input_size
        small = cv2.resize(rgb.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
        lightness = cv2.cvtColor(small, cv2.COLOR_RGB2Lab)[:, :, :1]
        zeros = np.zeros_like(lightness)
        gray_rgb = cv2.cvtColor(np.dstack([lightness, zeros, zeros]), cv2.COLOR_Lab2RGB)
        tensor = torch.from_numpy(gray_rgb.transpose(2, 0, 1).copy())[None]
        tensor = tensor.to(device=self.net.device, dtype=self.net.dtype)
        lock = self.net.lock or contextlib.nullcontext()
        with lock, torch.inference_mode():
            ab = self.net.descriptor.model(tensor)
        return ab[0].float().cpu().numpy().transpose(1, 2, 0)


def load(card: ModelCard) -> Colorizer:
    """The colorizer for a torch colorize ``card``, its files resolved by the weights manager."""
    from pipelines import weights

    if card.backend != "torch" or card.architecture != DDCOLOR:
        raise InvalidOptionError(f"{card.title} is not a DDColor model.")
    return load_file(_single_checkpoint(card, weights.resolve(card)), card.title)


def load_file(path: Path, name: str) -> Colorizer:
    """A colorizer for a DDColor checkpoint file (cached like every torch model)."""
    loaded = cached_model(
        path, lambda: build_ddcolor(loader.read_state_dict(path), path), hint=DDCOLOR
    )
    return Colorizer(loaded, input_size_for(loaded.descriptor), name)


def is_ddcolor(state_dict: loader.StateDict) -> bool:
    """Whether spandrel's DDColor architecture recognises these weights."""
    support = loader.registry().get(DDCOLOR)
    return support is not None and support.detect(spandrel.canonicalize_state_dict(state_dict))


def build_ddcolor(state_dict: loader.StateDict, path: Path) -> spandrel.ImageModelDescriptor:
    """Build a DDColor model on the CPU, or say what else the file is."""
    return loader.build_as(DDCOLOR, state_dict, path)


def input_size_for(descriptor: spandrel.ModelDescriptor) -> int:
    return TINY_INPUT if "convnext-t" in descriptor.tags else LARGE_INPUT


def _single_checkpoint(card: ModelCard, paths: Sequence[Path]) -> Path:
    candidates = [p for p in paths if p.suffix.lower() in loader.SUFFIXES]
    if len(candidates) != 1:
        names = ", ".join(p.name for p in paths) or "none"
        raise ModelUnavailableError(f"{card.title} needs exactly one checkpoint ({names}).")
    return candidates[0]
