"""Where job inputs and outputs live: a local folder, or any fsspec URL (``s3://…``).

The job table stores paths relative to the storage root, so workers on several machines
find the same files under their own mount or bucket. Only paths we generate are accepted:
``[A-Za-z0-9._-]`` components, none empty, starting with a dot, or ``..``.

    storage = Storage()                      # $RESTORATION_JOBS_STORAGE or outputs/jobs/files
    storage.write("inputs/ab12/photo.png", data)
    storage.read("inputs/ab12/photo.png")
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from jobs.errors import StorageError
from pipelines.weights import REPO_ROOT

STORAGE_ENV = "RESTORATION_JOBS_STORAGE"
OPTIONS_ENV = "RESTORATION_JOBS_STORAGE_OPTIONS"
DEFAULT_ROOT = REPO_ROOT / "outputs" / "jobs" / "files"
_COMPONENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")


def storage_url(given: str | None = None) -> str:
    return (given or os.environ.get(STORAGE_ENV) or "").strip() or str(DEFAULT_ROOT)


def storage_options(given: str | None = None) -> dict[str, Any]:
    """fsspec options as JSON (e.g. ``{"endpoint_url": "http://minio:9000"}``)."""
    raw = (given or os.environ.get(OPTIONS_ENV) or "").strip()
    if not raw:
        return {}
    try:
        options = json.loads(raw)
    except json.JSONDecodeError as error:
        raise StorageError(f"Storage options must be a JSON object: {error}.") from None
    if not isinstance(options, dict):
        raise StorageError("Storage options must be a JSON object.")
    return options


def checked_path(relative: str) -> str:
    """``relative`` if it is a path we could have generated; anything else is refused."""
    parts = relative.split("/")
    if not relative or not all(_COMPONENT.fullmatch(part) for part in parts):
        raise StorageError(f"Refusing the storage path {relative!r}: not one the queue made.")
    if any(".." in part for part in parts):
        raise StorageError(f"Refusing the storage path {relative!r}: not one the queue made.")
    return relative


def safe_component(name: str, fallback: str = "file") -> str:
    """A file name reduced to [A-Za-z0-9._-], no leading dot/dash, never ``..``."""
    base = re.split(r"[\\/]", name)[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base)
    cleaned = re.sub(r"\.{2,}", ".", cleaned).strip("._-")[:120].rstrip("._-")
    return cleaned or fallback


def new_folder(kind: str) -> str:
    """A fresh folder name under ``kind`` (``inputs`` or ``outputs``)."""
    return f"{checked_path(kind)}/{uuid.uuid4().hex}"


class Storage:
    """Files under one root, addressed by checked relative paths."""

    def __init__(self, url: str | None = None, options: dict[str, Any] | None = None) -> None:
        self.url = storage_url(url)
        chosen = storage_options() if options is None else options
        try:
            self.fs, root = fsspec.core.url_to_fs(self.url, **chosen)
        except (ImportError, ValueError, TypeError) as error:
            raise StorageError(f"Cannot use the job storage {self.url}: {error}") from None
        self.root = root.rstrip("/")
        self.local = isinstance(self.fs, LocalFileSystem)
        if self.local:
            Path(self.root).mkdir(parents=True, exist_ok=True)

    def full(self, relative: str) -> str:
        return f"{self.root}/{checked_path(relative)}"

    def write(self, relative: str, data: bytes) -> str:
        """Store bytes (locally through a temporary name, so no reader sees half a file)."""
        target = self.full(relative)
        try:
            if self.local:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                partial = f"{target}.{uuid.uuid4().hex}.part"
                Path(partial).write_bytes(data)
                os.replace(partial, target)
            else:
                self.fs.pipe_file(target, data)
        except OSError as error:
            raise StorageError(f"Cannot write {relative} to the job storage: {error}") from None
        return relative

    def read(self, relative: str) -> bytes:
        try:
            return self.fs.cat_file(self.full(relative))
        except FileNotFoundError:
            raise StorageError(f"{relative} is missing from the job storage {self.url}.") from None
        except OSError as error:
            raise StorageError(f"Cannot read {relative} from the job storage: {error}") from None

    def exists(self, relative: str) -> bool:
        return bool(self.fs.exists(self.full(relative)))

    def local_path(self, relative: str) -> Path | None:
        """The file on this disk, when the storage is local (the UI serves it from there)."""
        return Path(self.full(relative)) if self.local else None
