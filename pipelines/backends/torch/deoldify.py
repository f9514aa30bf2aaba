"""DeOldify (Jason Antic, MIT): the artistic and stable colorization generators.

The networks are DeOldify's own ``DynamicUnetDeep`` / ``DynamicUnetWide`` from the
``deoldify`` wheel, built on fastai 1.0.61's layers. Three things the wheel's own
entry points do are avoided here:

- ``import deoldify`` runs the package's ``__init__``, which sets
  ``CUDA_VISIBLE_DEVICES=""`` (hiding every GPU from the process) and reconfigures the
  root logger. Only the network modules are loaded, under a package object whose
  ``__init__`` never runs.
- ``get_*_image_colorizer`` builds the ResNet body with ImageNet weights (a download)
  before loading the checkpoint; the body is built empty here, the checkpoint fills it.
- ``Learner.load`` unpickles anything; the checkpoint (``{"model": state_dict}``) is
  read with the backend's ``weights_only`` reader and loaded strictly, which is also
  the integrity check for files whose publisher gives no checksum.

Everything else follows DeOldify's ``ColorizerFilter``: the photo is squeezed to a
``16 * render_factor`` square, made gray, normalised with ImageNet statistics, and the
generator's output is de-normalised and clamped. The task puts that colour back on
the photo's full-resolution luminance.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import sys
import threading
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import spandrel
import torch
from PIL import Image
from torch import nn

from pipelines.backends.torch import cached_model, loader
from pipelines.backends.torch.engine import LoadedModel
from pipelines.errors import InvalidOptionError, ModelUnavailableError
from pipelines.registry import ModelCard

ARCHITECTURE = "DeOldify"
RENDER_BASE = 16
DEFAULT_RENDER_FACTOR = 35
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # PIL's "L" conversion


@dataclass(frozen=True)
class Generator:
    """One DeOldify generator layout: which U-Net, which ResNet body, how wide."""

    unet: str  # class name in deoldify.unet
    backbone: str  # torchvision.models constructor
    nf_factor: float

    @property
    def tag(self) -> str:
        kind = "deep" if self.unet == "DynamicUnetDeep" else "wide"
        return f"{self.backbone} {kind} ×{self.nf_factor:g}"


# (basic blocks?, blocks in the body's third stage) -> torchvision ResNet
_RESNETS = {(False, 2): "resnet18", (False, 6): "resnet34", (True, 6): "resnet50"}
_RESNETS |= {(True, 23): "resnet101", (True, 36): "resnet152"}
_BODY = "layers.0."
_import_lock = threading.Lock()


def _network_code() -> types.ModuleType:
    """``deoldify.unet`` from the installed wheel, without running ``deoldify/__init__``."""
    with _import_lock:
        if "deoldify.unet" in sys.modules:
            return sys.modules["deoldify.unet"]
        spec = importlib.util.find_spec("deoldify")
        if spec is None or not spec.submodule_search_locations:
            raise ModelUnavailableError(
                "DeOldify's network code is not installed: run `make setup` "
                "(it installs the `deoldify` wheel with --no-deps, then fastai 1.0.61)."
            )
        package = sys.modules.get("deoldify")
        if package is None:
            package = types.ModuleType("deoldify")
            package.__path__ = list(spec.submodule_search_locations)
            sys.modules["deoldify"] = package
        return importlib.import_module("deoldify.unet")


def detect(state_dict: loader.StateDict) -> bool:
    """Whether the weights are a DeOldify generator (either U-Net, any ResNet body)."""
    needed = ("layers.0.0.weight", "layers.3.0.0.weight_orig", "layers.4.shuf.conv.0.weight_orig")
    return all(key in state_dict for key in needed) and _final_conv(state_dict) is not None


def _final_conv(state_dict: loader.StateDict) -> str | None:
    heads = [k for k in state_dict if k.endswith(".0.weight_orig") and k.count(".") == 3]
    last = max(heads, key=lambda k: int(k.split(".")[1]), default=None)
    if last is None or state_dict[last].shape[0] != 3:
        return None
    return last


def generator_for(state_dict: loader.StateDict) -> Generator:
    """Read the generator layout off the tensor shapes."""
    bottleneck = f"{_BODY}4.0.conv3.weight" in state_dict
    third_stage = {k.split(".")[3] for k in state_dict if k.startswith(f"{_BODY}6.")}
    backbone = _RESNETS.get((bottleneck, len(third_stage)))
    if backbone is None:
        raise ValueError(f"a ResNet body with {len(third_stage)} third-stage blocks is unknown")
    if "layers.4.conv1.0.weight_orig" in state_dict:
        conv = state_dict["layers.4.conv1.0.weight_orig"]
        return Generator("DynamicUnetDeep", backbone, conv.shape[0] / conv.shape[1])
    conv = state_dict.get("layers.4.conv.0.weight_orig")
    if conv is None:
        raise ValueError("neither DeOldify's deep nor its wide U-Net blocks were found")
    return Generator("DynamicUnetWide", backbone, conv.shape[0] * 2 // 512)  # out = nf / 2


def build_network(generator: Generator) -> nn.Module:
    """An untrained generator of this layout (random weights, no download)."""
    import torchvision
    from fastai.layers import NormType

    resnet = getattr(torchvision.models, generator.backbone)(weights=None)
    body = nn.Sequential(*list(resnet.children())[:-2])  # fastai's create_body, cut=-2
    unet_class = getattr(_network_code(), generator.unet)
    nf_factor = generator.nf_factor
    if generator.unet == "DynamicUnetWide":
        nf_factor = int(nf_factor)
    with torch.no_grad():
        return unet_class(
            body,
            n_classes=3,
            blur=True,
            blur_final=True,
            self_attention=True,
            y_range=(-3.0, 3.0),
            norm_type=NormType.Spectral,
            last_cross=True,
            bottle=False,
            nf_factor=nf_factor,
        )


class DeOldifyArch(spandrel.Architecture[nn.Module]):
    """DeOldify declared the way spandrel's architectures are: detect, then load."""

    def __init__(self) -> None:
        super().__init__(id=ARCHITECTURE, detect=detect)

    def load(self, state_dict: loader.StateDict) -> spandrel.ImageModelDescriptor[nn.Module]:
        generator = generator_for(state_dict)
        network = build_network(generator)
        network.load_state_dict(state_dict, strict=True)
        return spandrel.ImageModelDescriptor(
            network,
            state_dict,
            architecture=self,
            purpose="Restoration",
            tags=[generator.tag],
            supports_half=False,  # trained and released in fp32; spectral norm in fp16 drifts
            supports_bfloat16=False,
            scale=1,
            input_channels=3,
            output_channels=3,
            tiling=spandrel.ModelTiling.INTERNAL,
        )


ARCH = DeOldifyArch()


@dataclass(frozen=True)
class DeOldifyColorizer:
    """A loaded generator. The U-Net's skip connections are forward hooks that store
    activations on the module, so calls are serialized by the model's lock."""

    net: LoadedModel
    name: str

    def describe(self) -> str:
        tags = ", ".join(self.net.descriptor.tags)
        return f"DeOldify ({tags}) · {self.net.device} · {self.net.dtype}"

    def predict_rgb(self, rgb: np.ndarray, render_factor: int) -> np.ndarray:
        """The generator's colour image (S, S, 3) in [0, 1] at S = 16 · render_factor."""
        size = RENDER_BASE * render_factor
        gray = _gray_square(rgb, size)
        normalised = (np.repeat(gray[:, :, None], 3, axis=2) - IMAGENET_MEAN) / IMAGENET_STD
        tensor = torch.from_numpy(normalised.transpose(2, 0, 1).copy())[None]
        tensor = tensor.to(device=self.net.device, dtype=self.net.dtype)
        # The module itself, not the descriptor: spandrel's call clamps to [0, 1], and
        # the generator's output is ImageNet-normalised (about -3..3).
        with self.net.lock or contextlib.nullcontext(), torch.inference_mode():
            out = self.net.descriptor.model(tensor)
        colour = out[0].float().cpu().numpy().transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN
        return np.clip(colour, 0.0, 1.0)


def _gray_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """DeOldify's model input: a bilinear stretch to a square, then gray (PIL's weights)."""
    planes = [
        np.asarray(
            Image.fromarray(rgb[:, :, c].astype(np.float32), mode="F").resize(
                (size, size), Image.Resampling.BILINEAR
            )
        )
        for c in range(3)
    ]
    return np.clip(np.tensordot(np.stack(planes, axis=2), _LUMA, axes=1), 0.0, 1.0)


def load(card: ModelCard) -> DeOldifyColorizer:
    """The colorizer for a DeOldify card, its file resolved by the weights manager."""
    from pipelines import weights

    if card.backend != "torch" or card.architecture != ARCHITECTURE:
        raise InvalidOptionError(f"{card.title} is not a DeOldify model.")
    paths = [p for p in weights.resolve(card) if p.suffix.lower() in loader.SUFFIXES]
    if len(paths) != 1:
        raise ModelUnavailableError(f"{card.title} needs exactly one checkpoint.")
    return load_file(paths[0], card.title)


def load_file(path: Path, name: str) -> DeOldifyColorizer:
    """A colorizer for a DeOldify checkpoint file (cached like every torch model)."""
    loaded = cached_model(path, functools.partial(build_from_file, path), hint=ARCHITECTURE)
    return DeOldifyColorizer(loaded, name)


def build_from_file(path: Path) -> spandrel.ImageModelDescriptor:
    """Read a checkpoint safely and build it as DeOldify, or say what it is not."""
    state_dict = loader.read_state_dict(path)
    if not detect(state_dict):
        keys = ", ".join(list(state_dict)[:3])
        raise ModelUnavailableError(
            f"{path.name} is not a DeOldify generator checkpoint (first keys: {keys})."
        )
    try:
        return ARCH.load(state_dict).eval()
    except (RuntimeError, ValueError, KeyError) as error:
        detail = str(error).strip().splitlines()[0][:200]
        raise ModelUnavailableError(
            f"{path.name} looks like a DeOldify checkpoint, but its weights do not fit the "
            f"generator ({detail}); download it again."
        ) from None
