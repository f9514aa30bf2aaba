"""Build a ready Hugging Face Space folder from this repository.

The bundle holds ``app.py`` and every local package it imports (found by reading the
imports, so a new package is picked up without editing a list), the example images,
a README.md whose front matter configures the Space, ``requirements.txt``,
``packages.txt`` and, on request, pre-fetched weights. It never holds this ``spaces/``
folder: on a Space, ``import spaces`` must find Hugging Face's ZeroGPU package.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import RestorationError
from pipelines.registry import Download, ModelCard

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_FILE = "app.py"
PYTHON_VERSION = "3.11"
MARKER = ".restoration-space-bundle"
DATA_FOLDERS = ("examples",)
SKIPPED_NAMES = {"__pycache__", ".DS_Store"}
SKIPPED_SUFFIXES = (".pyc", ".pyi")
# A Space's pip installs requirements.txt alone, so the --no-deps split of
# requirements-nodeps.txt cannot be expressed there: those wheels come with their
# declared dependencies. They ask for the GUI build of OpenCV, which is pinned to the
# same version as our headless one (both provide `cv2`) and needs the GL/GLib libraries.
OPENCV_HEADLESS = "opencv-python-headless"
OPENCV_GUI = "opencv-python"
OPENCV_GUI_DEBIAN = ("libgl1", "libglib2.0-0")
# What the ncnn model wheels load (scripts/bootstrap.sh installs them for the tests too).
# Not mesa's software Vulkan device (a test fixture) nor PostgreSQL (jobs use SQLite here).
MODEL_DEBIAN = ("libvulkan1", "libomp5")
# Installed from pre-requirements.txt, before requirements.txt: the deoldify wheel ships an
# old copy of fastai's files, and only a later install of the pinned fastai (it has no
# dist-info of its own there) puts the right ones back. torch is pinned in the same file
# so deoldify's `torch>=2` cannot pull another build first.
PRE_INSTALLED = ("deoldify",)
TORCH_PACKAGES = ("torch", "torchvision")
SPACE_COLOURS = ("red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray")
MAX_SHORT_DESCRIPTION = 60


class BundleError(RestorationError):
    """The bundle cannot be built as asked (output folder, weights, licences)."""


@dataclass(frozen=True)
class SpaceCard:
    """The Space's README front matter (https://huggingface.co/docs/hub/spaces-config-reference)."""

    title: str = "Restoration Lab"
    emoji: str = "🪄"
    color_from: str = "indigo"
    color_to: str = "pink"
    short_description: str = "Upscale, restore, inpaint and colorize images"
    license: str = "other"

    def front_matter(self, sdk_version: str) -> str:
        if self.color_from not in SPACE_COLOURS or self.color_to not in SPACE_COLOURS:
            raise BundleError(f"Space colours must be one of {', '.join(SPACE_COLOURS)}.")
        if len(self.short_description) > MAX_SHORT_DESCRIPTION:
            raise BundleError(f"The short description is over {MAX_SHORT_DESCRIPTION} characters.")
        fields = {
            "title": self.title,
            "emoji": self.emoji,
            "colorFrom": self.color_from,
            "colorTo": self.color_to,
            "sdk": "gradio",
            "sdk_version": sdk_version,
            "python_version": PYTHON_VERSION,
            "app_file": APP_FILE,
            "pinned": False,
            "short_description": self.short_description,
            "license": self.license,
        }
        # JSON scalars are valid YAML; quoting keeps versions like 3.10 strings.
        lines = [f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in fields.items()]
        return "---\n" + "\n".join(lines) + "\n---\n"


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a pip requirements file, without comments or blanks."""
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def requirement_name(line: str) -> str:
    """The normalised project name of a requirement line (``Foo_Bar>=1`` -> ``foo-bar``)."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
    if not match:
        raise BundleError(f"Cannot read the requirement {line!r}.")
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def pinned_version(package: str, root: Path = REPO_ROOT) -> str:
    """The ``==`` version of ``package`` in requirements.txt."""
    for line in requirement_lines(root / "requirements.txt"):
        if requirement_name(line) == requirement_name(package) and "==" in line:
            return line.split("==", 1)[1].strip()
    raise BundleError(f"requirements.txt does not pin {package} with ==.")


def space_requirements(root: Path = REPO_ROOT) -> str:
    """requirements.txt for the Space: ours, then the no-deps wheels with their dependencies
    (except ``PRE_INSTALLED``, which ``space_pre_requirements`` holds)."""
    runtime = requirement_lines(root / "requirements.txt")
    nodeps = [
        line
        for line in requirement_lines(root / "requirements-nodeps.txt")
        if requirement_name(line) not in PRE_INSTALLED
    ]
    opencv = f"{OPENCV_GUI}=={pinned_version(OPENCV_HEADLESS, root)}"
    return "\n".join(
        [
            "# Generated by `python -m spaces build` from requirements.txt and",
            "# requirements-nodeps.txt (a Space's pip cannot install those with --no-deps).",
            *runtime,
            f"{opencv}  # what the wheels below ask for; same version as the headless build",
            *nodeps,
            "",
        ]
    )


def space_pre_requirements(root: Path = REPO_ROOT) -> str:
    """pre-requirements.txt: installed by the Space before requirements.txt."""
    torch = [f"{name}=={pinned_version(name, root)}" for name in TORCH_PACKAGES]
    early = [
        line
        for line in requirement_lines(root / "requirements-nodeps.txt")
        if requirement_name(line) in PRE_INSTALLED
    ]
    return "\n".join(
        [
            "# Generated by `python -m spaces build`: installed before requirements.txt, whose",
            "# fastai then replaces the old fastai files the deoldify wheel carries.",
            *torch,
            *early,
            "",
        ]
    )


def space_debian_packages() -> list[str]:
    """packages.txt: the bundled models' runtime libraries and OpenCV's GUI build's."""
    return [*MODEL_DEBIAN, *OPENCV_GUI_DEBIAN]


def imported_modules(path: Path) -> set[str]:
    """Absolute module names a Python file imports (at any depth, lazy ones included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _python_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.py") if not SKIPPED_NAMES & set(p.parts)]


def local_packages(root: Path = REPO_ROOT, entry: str = APP_FILE) -> list[str]:
    """Top-level local packages the app imports, following imports between them."""
    found: list[str] = []
    pending = [root / entry]
    while pending:
        for module in imported_modules(pending.pop()):
            top = module.split(".", 1)[0]
            if top in found or top == "spaces" or not (root / top / "__init__.py").is_file():
                continue
            found.append(top)
            pending += _python_files(root / top)
    return sorted(found)


def _copy_tree(source: Path, target: Path, skip_suffixes: Sequence[str] = ()) -> None:
    def ignored(folder: str, names: list[str]) -> set[str]:
        return {
            name
            for name in names
            if name in SKIPPED_NAMES or name.endswith((*SKIPPED_SUFFIXES, *skip_suffixes))
        }

    shutil.copytree(source, target, ignore=ignored)


def _prepare_output(out: Path, root: Path, sources: Sequence[str]) -> None:
    """An empty folder, or a previous bundle (recognised by its marker) emptied.

    ``sources`` are the repository folders copied into it, which it must not be inside.
    """
    out = out.resolve()
    inside = [name for name in (*sources, "spaces") if out.is_relative_to(root / name)]
    if out == root or out in root.parents or inside:
        raise BundleError(f"{out} would overwrite the repository; choose another folder.")
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise BundleError(f"{out} is not empty and not a Space bundle; choose a new folder.")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("Made by `python -m spaces build`; rebuilt in place.\n")


def readme(card: SpaceCard, sdk_version: str, weights: Sequence[str]) -> str:
    shipped = ", ".join(weights) if weights else "none (downloaded on first use)"
    body = f"""
# {card.title}

AI image restoration in the browser: super-resolution for photos and anime art,
inpainting with a mask brush, colorization, and an evaluation lab with leaderboards.
The bundled ncnn models run on the CPU; PyTorch models download their weights on first
use and run on the GPU when the Space has one (with ZeroGPU, inside `spaces.GPU`).

Every tab is also an API endpoint: see *Use via API* at the bottom of the page, or
call it with `gradio_client`.

Each model's licence is on its card in the **Models** tab; non-commercial weights are
flagged there. Pre-fetched weights in this Space: {shipped}.
"""
    return card.front_matter(sdk_version) + body


def _weight_cards(ids: Iterable[str]) -> list[ModelCard]:
    from pipelines.registry import MODELS

    return [MODELS.get(model_id) for model_id in ids]


def check_licence(card: ModelCard, allow_non_commercial: bool) -> None:
    if card.non_commercial and not allow_non_commercial:
        raise BundleError(
            f"{card.id} is licensed {card.license!r} for non-commercial use only; pass "
            "--allow-non-commercial to ship its weights in the Space anyway."
        )


def add_weights(out: Path, cards: Sequence[ModelCard], allow_non_commercial: bool) -> list[str]:
    """Copy each card's verified weights (fetched if missing) into ``out/weights``.

    Returns the ids whose weights were added; cards without downloadable files (bundled
    wheels, classical methods) need none and are skipped.
    """
    from pipelines.weights import cache_dir, resolve

    for card in cards:  # every licence first, so nothing is fetched for a refused list
        check_licence(card, allow_non_commercial)
    added = []
    for card in cards:
        if not isinstance(card.source, Download):
            continue
        for path in resolve(card):
            target = out / "weights" / path.relative_to(cache_dir())
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        added.append(card.id)
    return added


def build(
    out: Path,
    weights: Sequence[str] = (),
    allow_non_commercial: bool = False,
    card: SpaceCard = SpaceCard(),
    root: Path = REPO_ROOT,
) -> Path:
    """Write the Space folder ``out``; returns its path."""
    cards = _weight_cards(weights)
    for model in cards:
        check_licence(model, allow_non_commercial)
    packages = local_packages(root)
    _prepare_output(out, root, [*packages, *DATA_FOLDERS])
    shutil.copy2(root / APP_FILE, out / APP_FILE)
    for package in packages:
        _copy_tree(root / package, out / package)
    for folder in DATA_FOLDERS:
        _copy_tree(root / folder, out / folder, skip_suffixes=(".py",))
    shipped = add_weights(out, cards, allow_non_commercial)
    sdk_version = pinned_version("gradio", root)
    (out / "README.md").write_text(readme(card, sdk_version, shipped))
    (out / "requirements.txt").write_text(space_requirements(root))
    (out / "pre-requirements.txt").write_text(space_pre_requirements(root))
    (out / "packages.txt").write_text("\n".join(space_debian_packages()) + "\n")
    return out
