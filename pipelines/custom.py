"""Custom checkpoints: any .pth/.safetensors a user adds becomes a session model card.

The file is copied into the weights cache under a name derived from its sha256 (the
user's file name never becomes a path), loaded once through the PyTorch backend to
detect its architecture and scale, and registered in ``SESSION_MODELS`` so every task,
the UI menus and the API accept its id until the process ends.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from pipelines.errors import InvalidOptionError, RestorationError
from pipelines.registry import SESSION_MODELS, LocalCheckpoint, ModelCard, Task
from pipelines.weights import cache_dir, sha256_of

SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors")
MAX_MB_ENV = "RESTORATION_MAX_CHECKPOINT_MB"
MAX_SESSION_MODELS = 32


def max_bytes() -> int:
    return int(float(os.environ.get(MAX_MB_ENV, "2048")) * 1e6)


def slug(name: str) -> str:
    """A short, safe id fragment from a user-given name."""
    stem = Path(name.replace("\\", "/")).name
    for suffix in SUFFIXES:
        stem = stem.removesuffix(suffix)
    cleaned = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")
    return cleaned[:40] or "model"


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise InvalidOptionError(f"Checkpoint {path.name} does not exist.")
    if path.suffix.lower() not in SUFFIXES:
        raise InvalidOptionError(
            f"{path.name} is not a checkpoint: use one of {', '.join(SUFFIXES)}."
        )
    size = path.stat().st_size
    if size == 0:
        raise InvalidOptionError(f"{path.name} is empty (0 bytes).")
    if size > max_bytes():
        raise InvalidOptionError(
            f"{path.name} is {size / 1e6:.0f} MB, above the {max_bytes() / 1e6:.0f} MB limit "
            f"({MAX_MB_ENV})."
        )


def _store(path: Path, digest: str) -> Path:
    """Copy into ``weights/custom/`` atomically; the name comes from the hash only."""
    folder = cache_dir() / "custom"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{digest[:16]}{path.suffix.lower()}"
    if not target.exists():
        with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".partial") as temp:
            temp_path = Path(temp.name)
        shutil.copyfile(path, temp_path)
        os.replace(temp_path, target)
    return target


def add_checkpoint(path: str | os.PathLike, name: str | None = None) -> ModelCard:
    """Register a checkpoint as a session model; returns its card (id ``custom-…``)."""

    source = Path(path)
    _check_file(source)
    digest = sha256_of(source)
    model_id = f"custom-{slug(name or source.name)}-{digest[:8]}"
    existing = SESSION_MODELS.get(model_id)
    if existing is not None:
        return existing
    if len(list(SESSION_MODELS)) >= MAX_SESSION_MODELS:
        raise InvalidOptionError(
            f"This session already holds {MAX_SESSION_MODELS} custom models; restart to add more."
        )
    stored = _store(source, digest)
    try:
        tasks, architecture, scale, detected = _detect(stored, source)
    except RestorationError as error:
        stored.unlink(missing_ok=True)
        # The message should name the user's file, not our hash-named copy.
        raise type(error)(str(error).replace(stored.name, source.name)) from None
    card = ModelCard(
        id=model_id,
        tasks=tasks,
        title=f"{name or source.stem} (custom)",
        family=architecture.lower(),
        backend="torch",
        architecture=architecture,
        scales=(scale,),
        license="user-supplied: check the model's own licence",
        size_mb=round(stored.stat().st_size / 1e6, 1),
        source=LocalCheckpoint(str(stored), digest),
        guidance=f"Added this session; detected as {detected}.",
    )
    return SESSION_MODELS.add(card)


def _detect(stored: Path, source: Path) -> tuple[tuple[Task, ...], str, int, str]:
    """What a checkpoint is: (tasks, architecture, scale, description).

    The colorizers are told apart first: spandrel calls DDColor a restorer and does not
    know DeOldify, but both colour images.
    """
    from pipelines.backends import torch as torch_backend
    from pipelines.backends.torch import colorizers, deoldify, loader

    state_dict = loader.read_state_dict(stored)
    if colorizers.is_ddcolor(state_dict):
        colorizer = colorizers.load_file(stored, source.name)
        return ("colorize",), colorizers.DDCOLOR, 1, colorizer.describe()
    if deoldify.detect(state_dict):
        generator = deoldify.load_file(stored, source.name)
        return ("colorize",), deoldify.ARCHITECTURE, 1, generator.describe()
    restorer = torch_backend.load_checkpoint(stored)
    if restorer.plan.whole and restorer.plan.max_side:
        raise InvalidOptionError(
            f"{source.name} is a {restorer.architecture} face model: it restores aligned face "
            "crops, not whole images, so it cannot be used as an upscaler."
        )
    return ("sr", "anime"), restorer.architecture, restorer.scale, restorer.describe()
