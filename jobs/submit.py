"""Turning files, folders and ZIP archives into queued jobs.

Inputs are copied into the storage under ``inputs/<random>/<cleaned name>``, so a file
name can never point outside it. ZIP entries are refused when their path is absolute or
climbs (``..``), and the archive when it holds too many entries, expands past a size
budget or compresses suspiciously well (a bomb); sizes are counted while reading, not
taken from the archive's own header. Images are decoded by the worker, where a bad file
becomes a failed job with its reason, not a refused batch.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from jobs.errors import JobError, UnsafeUploadError
from jobs.storage import Storage, new_folder, safe_component
from jobs.store import JobStore, NewJob

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
TASKS = {"sr": "sr", "super-resolution": "sr", "anime": "anime", "colorize": "colorize"}
MAX_FILE_BYTES = 200 * 1024 * 1024
ZIP_MAX_ENTRIES = 10_000
ZIP_MAX_TOTAL_BYTES = 4 * 1024**3
ZIP_MAX_RATIO = 200
"""Uncompressed / compressed size above which an entry is treated as a bomb (PNG: ~1-3)."""


@dataclass(frozen=True)
class Upload:
    """One input image: its display name and bytes, with an optional reference image."""

    name: str
    data: bytes
    reference: bytes | None = None


def check_task(task: str, model_id: str) -> str:
    """The canonical task name; the model must exist and offer it."""
    from pipelines.registry import TASK_TITLES, lookup

    canonical = TASKS.get(task)
    if canonical is None:
        raise JobError(f"Unknown task {task!r}; the queue runs {', '.join(sorted(TASKS))}.")
    card = lookup(model_id)
    if canonical not in card.tasks:
        raise JobError(
            f"{card.title} ({model_id}) is not a {TASK_TITLES[canonical].lower()} model; "
            "`python -m pipelines models` lists each task's models."
        )
    return canonical


def images_in(paths: Iterable[str | Path]) -> list[Path]:
    """The image files named, and those directly inside the folders named (sorted)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise JobError(f"{path} does not exist.")
    if not found:
        raise JobError("No images to submit (" + ", ".join(IMAGE_SUFFIXES) + ").")
    return found


def _read_limited(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise JobError(
            f"{path.name} is {size / 1e6:.0f} MB, above the {MAX_FILE_BYTES // 2**20} MiB limit."
        )
    return path.read_bytes()


def uploads_from_files(
    paths: Sequence[str | Path],
    reference_dir: str | Path | None = None,
    reference_files: Sequence[str | Path] = (),
) -> list[Upload]:
    """Uploads for files and folders; ``.zip`` files are opened. References (a folder, or
    files) are matched to inputs by file name without the extension."""
    references = _references(reference_dir)
    references |= {Path(p).stem.lower(): Path(p) for p in reference_files}
    uploads: list[Upload] = []
    for path in images_in_or_zips(paths):
        if path.suffix.lower() == ".zip":
            uploads += uploads_from_zip(_read_limited(path))
        else:
            uploads.append(Upload(path.name, _read_limited(path)))
    return [_with_reference(upload, references) for upload in uploads]


def _with_reference(upload: Upload, references: dict[str, Path]) -> Upload:
    found = references.get(PurePosixPath(upload.name).stem.lower())
    if found is None:
        return upload
    return Upload(upload.name, upload.data, _read_limited(found))


def images_in_or_zips(paths: Sequence[str | Path]) -> list[Path]:
    zips = [Path(p) for p in paths if str(p).lower().endswith(".zip") and Path(p).is_file()]
    others = [p for p in paths if Path(p) not in zips]
    return zips + (images_in(others) if others else [])


def _references(folder: str | Path | None) -> dict[str, Path]:
    if folder is None:
        return {}
    if not Path(folder).is_dir():
        raise JobError(f"The reference folder {folder} does not exist.")
    return {p.stem.lower(): p for p in images_in([folder])}


def uploads_from_zip(
    data: bytes,
    *,
    max_entries: int = ZIP_MAX_ENTRIES,
    max_total: int = ZIP_MAX_TOTAL_BYTES,
    max_ratio: float = ZIP_MAX_RATIO,
) -> list[Upload]:
    """The images in a ZIP (other files skipped); unsafe archives are refused whole."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise UnsafeUploadError("The upload is not a readable ZIP archive.") from None
    entries = [e for e in archive.infolist() if not e.is_dir()]
    if len(entries) > max_entries:
        raise UnsafeUploadError(
            f"The ZIP holds {len(entries)} files, above the limit of {max_entries}."
        )
    for entry in entries:
        _check_entry_name(entry.filename)
    uploads, total = [], 0
    for entry in entries:
        if PurePosixPath(entry.filename).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        ratio = entry.file_size / max(entry.compress_size, 1)
        if ratio > max_ratio and entry.file_size > 1 << 20:
            raise UnsafeUploadError(f"{entry.filename} expands {ratio:.0f}x: refusing a ZIP bomb.")
        content = _read_entry(archive, entry, min(MAX_FILE_BYTES, max_total - total))
        total += len(content)
        uploads.append(Upload(PurePosixPath(entry.filename).name, content))
    if not uploads:
        raise JobError("The ZIP holds no images (" + ", ".join(IMAGE_SUFFIXES) + ").")
    return uploads


def _check_entry_name(name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UnsafeUploadError(
            f"The ZIP entry {name!r} points outside its folder; refusing the archive."
        )


def _read_entry(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, budget: int) -> bytes:
    """At most ``budget`` bytes, counted as they are inflated (headers can lie)."""
    with archive.open(entry) as stream:
        content = stream.read(budget + 1)
    if len(content) > budget:
        raise UnsafeUploadError(f"{entry.filename} expands past the size limit: refusing the ZIP.")
    return content


def submit_uploads(
    store: JobStore,
    storage: Storage,
    task: str,
    model_id: str,
    uploads: Sequence[Upload],
    options: dict[str, Any] | None = None,
    *,
    batch: str | None = None,
    max_attempts: int | None = None,
) -> list[int]:
    """Copy each upload into the storage and queue one job per image; returns the ids."""
    canonical = check_task(task, model_id)
    if not uploads:
        raise JobError("No images to submit.")
    batch = batch or uuid.uuid4().hex[:12]
    jobs = []
    for upload in uploads:
        folder = new_folder("inputs")
        name = safe_component(upload.name, "image")
        input_path = storage.write(f"{folder}/{name}", upload.data)
        reference_path = None
        if upload.reference is not None:
            reference_path = storage.write(f"{folder}/reference_{name}", upload.reference)
        jobs.append(
            NewJob(
                task=canonical,
                model_id=model_id,
                input_name=upload.name,
                input_path=input_path,
                reference_path=reference_path,
                options=dict(options or {}),
                batch=batch,
                max_attempts=max_attempts,
            )
        )
    return store.add(jobs)
