"""What keeps the served app bounded: a per-request time limit and pruning old outputs.

The queue limits (waiting requests, one model run at a time) and the upload limit are
set in ``app.py``; Gradio's own cache is cleaned by ``delete_cache`` there.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.errors import RestorationError

TIMEOUT_ENV = "RESTORATION_REQUEST_TIMEOUT"
DEFAULT_TIMEOUT_S = 900.0
MAX_AGE_ENV = "RESTORATION_OUTPUT_MAX_AGE_HOURS"
DEFAULT_MAX_AGE_HOURS = 24.0
# Databases may live in the output folder (the leaderboard); they are state, not results.
KEPT_SUFFIXES = (".sqlite", ".sqlite-journal", ".sqlite-wal", ".sqlite-shm", ".db")


class TimeLimitError(RestorationError):
    """A request ran past RESTORATION_REQUEST_TIMEOUT and was stopped."""


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise RestorationError(f"{name} must be a number, not {raw!r}.") from None


def request_timeout() -> float:
    """Seconds a request's model work may run; 0 turns the limit off."""
    return max(0.0, _env_float(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))


@dataclass
class Deadline:
    """A request's time limit, checked whenever its task reports progress (between tiles)."""

    seconds: float = field(default_factory=request_timeout)
    started: float = field(default_factory=time.monotonic)

    def check(self) -> None:
        if self.seconds and time.monotonic() - self.started > self.seconds:
            raise TimeLimitError(
                f"Stopped after the {self.seconds:g} s time limit per request "
                f"({TIMEOUT_ENV}): try a smaller image or a faster model."
            )


def check_settings() -> None:
    """Read every limit once, so a bad value fails at start-up rather than mid-request."""
    request_timeout()
    max_output_age_s()


def max_output_age_s() -> float:
    """Results older than this are deleted from the output folder; 0 keeps them forever."""
    return max(0.0, _env_float(MAX_AGE_ENV, DEFAULT_MAX_AGE_HOURS)) * 3600


def prune_outputs(root: Path, max_age_s: float, now: float | None = None) -> int:
    """Delete files under ``root`` older than ``max_age_s`` and the folders left empty.

    Returns how many files were deleted. Symlinks are removed, never followed.
    """
    if max_age_s <= 0 or not root.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - max_age_s
    deleted = 0
    for folder, subfolders, files in os.walk(root, topdown=False):
        here = Path(folder)
        for name in files:
            path = here / name
            if name.endswith(KEPT_SUFFIXES):
                continue
            try:
                if path.lstat().st_mtime < cutoff:
                    path.unlink()
                    deleted += 1
            except FileNotFoundError:
                continue  # a concurrent request or pruner removed it first
        for name in subfolders:
            with contextlib.suppress(OSError):  # not empty, or gone: nothing to do
                (here / name).rmdir()
    return deleted


def start_output_pruner(root: Path, max_age_s: float | None = None) -> threading.Thread | None:
    """Prune ``root`` now and then periodically (every quarter of the age, at most hourly)."""
    age = max_output_age_s() if max_age_s is None else max_age_s
    if age <= 0:
        return None
    interval = min(3600.0, max(1.0, age / 4))

    def loop() -> None:
        while True:
            prune_outputs(root, age)
            time.sleep(interval)

    thread = threading.Thread(target=loop, name="output-pruner", daemon=True)
    thread.start()
    return thread
