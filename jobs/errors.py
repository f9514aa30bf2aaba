"""The job queue's errors: one readable sentence each, like the rest of the project."""

from __future__ import annotations

from pipelines.errors import RestorationError


class JobError(RestorationError):
    """A queue request that cannot be done as asked (bad id, bad option, bad URL)."""


class UnsafeUploadError(JobError):
    """An upload that could escape its folder or expand without bound (ZIP traversal, bomb)."""


class StorageError(JobError):
    """The job storage cannot be reached, or a stored path is not one we generated."""
