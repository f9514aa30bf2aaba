"""PyTorch checkpoints through spandrel: the hub cards and custom uploads.

    restorer = load(card, scale=4)                   # a card whose source is a Download
    restorer = load_checkpoint("4x-model.pth")       # any file, architecture auto-detected
    out = restorer(rgb)                              # HxWx3 float32 in [0, 1] -> 4Hx4Wx3
    restorer.describe()                              # "ESRGAN x4 (64nf, 23nb) · cuda:0 · float16"

``loader`` reads files safely and checks the architecture, ``engine`` picks device and
precision and runs tiles with OOM retry, ``cache`` keeps loaded models in an LRU with
a memory budget. The package is imported only when a torch model is first used.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.backends.torch import engine, loader
from pipelines.backends.torch.cache import ModelCache, budget_from_env
from pipelines.backends.torch.engine import DeviceMemoryError, LoadedModel, TorchRestorer
from pipelines.backends.torch.loader import Expected
from pipelines.errors import InvalidOptionError, ModelUnavailableError
from pipelines.registry import ModelCard

if TYPE_CHECKING:
    import spandrel

__all__ = [
    "DeviceMemoryError",
    "Expected",
    "TorchRestorer",
    "clear_cache",
    "load",
    "load_checkpoint",
    "model_cache",
]

_cache_lock = threading.Lock()
_cache: list[ModelCache[LoadedModel]] = []


def load(card: ModelCard, scale: int, noise: int | None = None) -> TorchRestorer:
    """A restorer for a torch ``card`` at ``scale``, its files resolved by the weights manager.

    Raises ``ModelUnavailableError`` (files missing, unreadable or not the model
    the card describes) and ``InvalidOptionError`` (a setting the card lacks).
    """
    if noise is not None and card.noise_levels:
        raise InvalidOptionError(f"{card.title} runs in PyTorch, which has no noise setting.")
    from pipelines import weights

    return _load_files(card, weights.resolve(card), scale)


def load_checkpoint(
    path: str | Path,
    expected: ModelCard | None = None,
    *,
    scale: int | None = None,
    device: str | None = None,
    precision: str | None = None,
) -> TorchRestorer:
    """A restorer for any checkpoint file (.pth/.pt/.ckpt/.safetensors).

    With ``expected``, the file must be that card's architecture at one of its
    scales (``scale``, when given). ``device`` (auto/cpu/cuda/cuda:N/mps) and
    ``precision`` (auto/fp32/fp16/bf16) default to ``$RESTORATION_DEVICE`` and
    ``$RESTORATION_PRECISION``.
    """
    path = Path(path)
    if expected is not None:
        scales = (scale,) if scale else expected.scales
        expectation = Expected(f"card {expected.id}", expected.architecture, scales)
    else:
        expectation = Expected("the caller", scales=(scale,)) if scale else None
    name = expected.title if expected is not None else path.name
    return _restorer(path, expectation, device, precision, name)


def _load_files(card: ModelCard, paths: Sequence[Path], scale: int) -> TorchRestorer:
    """The restorer for ``card`` at ``scale`` from the card's resolved local files."""
    if card.backend != "torch":
        raise InvalidOptionError(f"{card.title} is not a PyTorch model.")
    if scale not in card.scales:
        offered = ", ".join(f"x{s}" for s in card.scales)
        raise InvalidOptionError(f"{card.title} offers {offered}, not x{scale}.")
    path = checkpoint_for(card, paths, scale)
    expected = Expected(f"card {card.id}", card.architecture, (scale,))
    return _restorer(path, expected, None, None, card.title)


def checkpoint_for(card: ModelCard, paths: Sequence[Path], scale: int) -> Path:
    """Which of a card's files holds the model at ``scale``.

    One checkpoint: that one. Several (one per scale): the one whose name says
    ``x{scale}`` or ``{scale}x``, as release file names do.
    """
    candidates = [p for p in paths if p.suffix.lower() in loader.SUFFIXES]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        names = ", ".join(p.name for p in paths) or "none"
        raise ModelUnavailableError(f"{card.title} has no checkpoint among its files ({names}).")
    token = re.compile(rf"(?<![0-9a-z])(x{scale}|{scale}x)(?![0-9])", re.IGNORECASE)
    matching = [p for p in candidates if token.search(p.stem)]
    if len(matching) != 1:
        names = ", ".join(p.name for p in candidates)
        raise InvalidOptionError(
            f"{card.title} has several checkpoints ({names}); cannot tell which one is x{scale}."
        )
    return matching[0]


def _restorer(
    path: Path, expected: Expected | None, device: str | None, precision: str | None, name: str
) -> TorchRestorer:
    loaded = cached_model(
        path,
        lambda: loader.build_model(loader.read_state_dict(path), path, expected),
        hint=expected.architecture if expected else "",
        device=device,
        precision=precision,
    )
    # The cached model may have been loaded for another card: check it against this one.
    loader.check_model(loaded.descriptor, path, expected)
    descriptor = loaded.descriptor
    return TorchRestorer(
        net=loaded,
        scale=descriptor.scale,
        architecture=descriptor.architecture.id,
        device=loaded.device,
        dtype=loaded.dtype,
        plan=engine.plan_for(descriptor, loaded.dtype),
        tags=tuple(descriptor.tags),
        name=name,
    )


def cached_model(
    path: Path,
    build: Callable[[], spandrel.ImageModelDescriptor],
    *,
    hint: str = "",
    device: str | None = None,
    precision: str | None = None,
) -> LoadedModel:
    """The model of a checkpoint file from the shared cache, built on the CPU and placed
    on the device by ``build`` on a miss.

    The key is the file (path, size, mtime), the device, the precision setting and
    ``hint`` (what the caller built it as), so every torch model shares one memory budget.
    """
    target = engine.choose_device(device)
    setting = engine.precision_setting(precision)
    try:
        stat = path.resolve().stat()
    except OSError:
        raise ModelUnavailableError(f"The checkpoint {path} does not exist.") from None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, str(target), setting, hint)
    return model_cache().get(
        key, lambda: engine.place(build(), target, setting), lambda model: model.nbytes
    )


def model_cache() -> ModelCache[LoadedModel]:
    """The process-wide model cache, created on first use with ``$RESTORATION_MODEL_CACHE_MB``."""
    with _cache_lock:
        if not _cache:
            _cache.append(ModelCache(budget_from_env()))
        return _cache[0]


def clear_cache() -> None:
    """Drop every cached model (restorers already handed out keep theirs)."""
    model_cache().clear()
