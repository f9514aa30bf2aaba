"""Reading checkpoint files safely and turning them into checked spandrel models.

Nothing here unpickles code: .safetensors files are read with safetensors, pickled
files (.pth/.pt/.ckpt/.bin) with ``torch.load(weights_only=True)``, which only
rebuilds tensors and plain containers (plus the numpy scalars and arrays in
``SAFE_GLOBALS``, data that training scripts often store beside the weights). The
architecture is detected from the state dict by spandrel and checked against what
the caller expects (a model card's architecture and scale).
"""

from __future__ import annotations

import pickle
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import spandrel
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from pipelines.errors import InvalidOptionError, ModelUnavailableError
from pipelines.tables import did_you_mean

StateDict = dict[str, torch.Tensor]

PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")
SUFFIXES = (*PICKLE_SUFFIXES, ".safetensors")

CONTAINER_KEYS = (
    "params_ema",  # BasicSR / Real-ESRGAN / GFPGAN / CodeFormer: the EMA weights are the release
    "params-ema",
    "params",  # BasicSR without EMA (SwinIR)
    "net_g",
    "state_dict",
    "model_state_dict",
    "model",
    "net",
    "generator",
)
"""Keys under which training scripts nest the weights, most preferred first."""

MARKER_KEYS = ("pro",)
"""Non-tensor entries an architecture detects the variant by (spandrel's RealCUGAN)."""

SAFE_GLOBALS: tuple[Any, ...] = (
    np.ndarray,
    np.dtype,
    *(type(np.dtype(code)) for code in "?bhilqBHILQefdgFDG"),  # numpy.dtypes.Float64DType...
    np._core.multiarray.scalar,
    np._core.multiarray._reconstruct,
    # Files written with numpy 1.x name the same functions under ``numpy.core``.
    (np._core.multiarray.scalar, "numpy.core.multiarray.scalar"),
    (np._core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
)
"""The allowlist beyond torch's own: numpy scalars and arrays (data, never code)."""

_UNSAFE_GLOBAL = re.compile(r"GLOBAL ([\w.]+) was not an allowed|but got <class '([\w.]+)'>")
_setup_lock = threading.Lock()
_setup_done = False


@dataclass(frozen=True)
class Expected:
    """What a checkpoint must be: ``architecture`` (a spandrel id, "" = any) at one of ``scales``.

    ``owner`` names who expects it in messages (a card id).
    """

    owner: str
    architecture: str = ""
    scales: tuple[int, ...] = ()

    def describe(self) -> str:
        """E.g. ``ESRGAN x4``, ``SwinIR x2/x4`` or, without an architecture, ``scale x4``."""
        scales = "/".join(f"x{s}" for s in self.scales)
        if not self.architecture:
            return f"scale {scales}" if scales else "any model"
        return f"{self.architecture} {scales}".strip()


def read_state_dict(path: Path) -> StateDict:
    """The tensors of a checkpoint file, unwrapped from their training container.

    Raises ``ModelUnavailableError`` naming the file when it is missing, of an
    unknown type, truncated or corrupt, holds no tensors, or would need code to
    be unpickled.
    """
    if not path.is_file():
        raise ModelUnavailableError(f"The checkpoint {path} does not exist.")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        raw: object = _read_safetensors(path)
    elif suffix in PICKLE_SUFFIXES:
        raw = read_pickle(path)
    else:
        raise ModelUnavailableError(
            f"{path.name} is not a checkpoint type we load; use one of {', '.join(SUFFIXES)}."
        )
    return _tensors(unwrap(raw), path)


def unwrap(obj: object) -> object:
    """Descend into the container a training script saved the weights in.

    Follows ``CONTAINER_KEYS`` (and a dict's only value) until the weights are
    reached; spandrel's own canonicalization then strips ``module.`` prefixes.
    """
    for _ in range(4):
        if not isinstance(obj, Mapping):
            return obj
        inner = next((obj[k] for k in CONTAINER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None and len(obj) == 1 and isinstance(next(iter(obj.values())), Mapping):
            inner = next(iter(obj.values()))
        if inner is None:
            return obj
        obj = inner
    return obj


def _read_safetensors(path: Path) -> StateDict:
    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelUnavailableError(
            f"{path.name} is truncated or not a valid .safetensors file ({error}); "
            "download it again."
        ) from None


def read_pickle(path: Path) -> object:
    """A pickled checkpoint unpickled in weights-only mode with ``SAFE_GLOBALS`` allowed
    (no code runs); refusals and damage become one ``ModelUnavailableError`` sentence."""
    _allow_safe_globals()
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only load failed" not in str(error).lower():
            raise _corrupt(path, error) from None
        found = _UNSAFE_GLOBAL.search(str(error))
        culprit = f" ({found.group(1) or found.group(2)})" if found else ""
        raise ModelUnavailableError(
            f"{path.name} contains Python objects{culprit} that would run code "
            "when unpickled, and we refuse to unpickle it. Re-save its state_dict as "
            ".safetensors (or as a plain .pth of tensors) from a trusted environment."
        ) from None
    except RuntimeError as error:
        if "TorchScript" in str(error):
            raise ModelUnavailableError(
                f"{path.name} is a TorchScript archive (compiled code), which we do not load; "
                "export its state_dict as .safetensors or .pth."
            ) from None
        raise _corrupt(path, error) from None
    except (EOFError, KeyError, ValueError, OSError, IndexError, TypeError) as error:
        raise _corrupt(path, error) from None


def _corrupt(path: Path, error: BaseException) -> ModelUnavailableError:
    detail = _first_sentence(error)
    return ModelUnavailableError(
        f"{path.name} is truncated or corrupt and cannot be read ({detail}); download it again."
    )


def _first_sentence(error: BaseException) -> str:
    """The start of an exception's message, short enough for a one-sentence error."""
    text = str(error).strip()
    if not text:
        return type(error).__name__
    return text.splitlines()[0].split(". ")[0][:160]


def _allow_safe_globals() -> None:
    global _setup_done
    with _setup_lock:
        if not _setup_done:
            torch.serialization.add_safe_globals(list(SAFE_GLOBALS))
            _setup_done = True


def _tensors(obj: object, path: Path) -> StateDict:
    """The tensors only: metadata left beside them would fail a strict ``load_state_dict``."""
    if isinstance(obj, Mapping):
        tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            # Real-CUGAN "pro" files are told apart by this key alone, whatever its value.
            tensors.update({k: obj[k] for k in MARKER_KEYS if k in obj})
            return tensors
    raise ModelUnavailableError(f"{path.name} holds no model weights (no tensors found).")


_extra_lock = threading.Lock()
_extra_installed = False


def registry() -> spandrel.ArchRegistry:
    """spandrel's registry with the extra architectures (CodeFormer, DDColor, MAT...) added.

    They are installed once, on first use: they live in a separate package
    (``spandrel-extra-arches``) and are registered after the main ones, so the
    main architectures keep detection priority.
    """
    global _extra_installed
    with _extra_lock:
        if not _extra_installed:
            import spandrel_extra_arches

            spandrel_extra_arches.install(ignore_duplicates=True)
            _extra_installed = True
    return spandrel.MAIN_REGISTRY


def build_model(
    state_dict: StateDict, path: Path, expected: Expected | None = None
) -> spandrel.ImageModelDescriptor:
    """Detect the architecture, build the model on the CPU and check it against ``expected``.

    When the expected architecture recognises the weights it is used directly, so
    a looser detector earlier in spandrel's order cannot claim them.
    """
    arches = registry()
    state_dict = spandrel.canonicalize_state_dict(state_dict)
    support = _expected_support(arches, expected)
    if support is not None and support.detect(state_dict):
        descriptor = _load_with(support.architecture, state_dict, path)
    else:
        descriptor = _detect(arches, state_dict, path)
    check_model(descriptor, path, expected)
    return descriptor.eval()


def _expected_support(
    arches: spandrel.ArchRegistry, expected: Expected | None
) -> spandrel.ArchSupport | None:
    if expected is None or not expected.architecture:
        return None
    support = arches.get(expected.architecture)
    if support is None:
        ids = [a.architecture.id for a in arches.architectures()]
        raise InvalidOptionError(
            f"{expected.owner} names architecture {expected.architecture!r}, which spandrel "
            f"does not know.{did_you_mean(expected.architecture, ids)}"
        )
    return support


def _detect(
    arches: spandrel.ArchRegistry, state_dict: StateDict, path: Path
) -> spandrel.ModelDescriptor:
    for support in arches.architectures("detection"):
        if support.detect(state_dict):
            return _load_with(support.architecture, state_dict, path)
    keys = ", ".join(list(state_dict)[:4])
    raise ModelUnavailableError(
        f"{path.name} holds weights of an architecture spandrel does not recognise "
        f"(first keys: {keys})."
    )


def build_as(
    arch_id: str, state_dict: StateDict, path: Path, needed_by: str = ""
) -> spandrel.ImageModelDescriptor:
    """Build the weights as one named architecture (for models the generic path refuses:
    colorizers, masked inpainting models), or say what the file is not."""
    state_dict = spandrel.canonicalize_state_dict(state_dict)
    support = registry().get(arch_id)
    if support is None or not support.detect(state_dict):
        keys = ", ".join(list(state_dict)[:3])
        who = f", which {needed_by} needs" if needed_by else ""
        raise ModelUnavailableError(
            f"{path.name} is not a {arch_id} checkpoint{who} (first keys: {keys})."
        )
    return _load_with(support.architecture, state_dict, path).eval()


def _load_with(
    arch: spandrel.Architecture, state_dict: StateDict, path: Path
) -> spandrel.ModelDescriptor:
    try:
        return arch.load(state_dict)
    except (KeyError, RuntimeError, ValueError, IndexError, AssertionError, TypeError) as error:
        detail = _first_sentence(error)
        raise ModelUnavailableError(
            f"{path.name} looks like a {arch.id} checkpoint, but its weights do not fit that "
            f"architecture ({detail})."
        ) from None


def check_model(
    descriptor: spandrel.ModelDescriptor, path: Path, expected: Expected | None
) -> None:
    """Refuse masked (inpainting) models, non-RGB models and a mismatch with ``expected``."""
    found = describe(descriptor)
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise ModelUnavailableError(
            f"{path.name} is {found}, an {descriptor.purpose.lower()} model that needs a mask; "
            "this backend runs image-to-image models only."
        )
    if (descriptor.input_channels, descriptor.output_channels) != (3, 3):
        raise ModelUnavailableError(
            f"{path.name} is {found} with {descriptor.input_channels} input and "
            f"{descriptor.output_channels} output channels; only RGB (3 to 3) models run here."
        )
    if expected is None:
        return
    arch_ok = not expected.architecture or descriptor.architecture.id == expected.architecture
    scale_ok = not expected.scales or descriptor.scale in expected.scales
    if not (arch_ok and scale_ok):
        raise ModelUnavailableError(
            f"{path.name} is {found}, but {expected.owner} expects {expected.describe()}."
        )


def describe(descriptor: spandrel.ModelDescriptor) -> str:
    """Architecture id and scale, e.g. ``SwinIR x2``."""
    return f"{descriptor.architecture.id} x{descriptor.scale}"
