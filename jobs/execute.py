"""Running one claimed job: the same task functions as the UI and CLI, then its metrics.

`run_job` returns an `Outcome` or raises `JobFailed` with the reason the table records:
a bad input file, missing weights (with the download command), a bad option, out of
memory after the tiled retries, or an internal error. PSNR and SSIM need a reference of
the output's size; NIQE is measured on every output of at least 96x96 pixels; LPIPS only
where its weights are cached. A metric that cannot be measured is NULL and ``notes`` says
why.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from jobs.errors import JobError
from jobs.storage import Storage, new_folder
from jobs.store import Claim
from pipelines.errors import (
    InputImageError,
    InvalidOptionError,
    ModelUnavailableError,
    RestorationError,
    UnknownModelError,
)
from pipelines.images import Picture, encode_png, load_image, output_name

TASK_OPTIONS: dict[str, dict[str, type]] = {
    "sr": {"outscale": float, "noise": int, "tile": int},
    "anime": {"scale": int, "noise": int, "tile": int},
    "colorize": {"render_factor": int},
    "leaderboard": {},
}
"""The options each task accepts (anything else is refused when submitting)."""


class JobFailed(Exception):
    """The job cannot succeed: its reason, in one sentence, is what the table records."""


@dataclass(frozen=True)
class Outcome:
    runtime_s: float
    output_path: str | None = None
    benchmark: dict[str, Any] | None = None
    result: dict[str, Any] | None = None


def clean_options(task: str, options: dict[str, Any]) -> dict[str, Any]:
    """Options converted to their types; unknown names and bad values are refused."""
    allowed = TASK_OPTIONS.get(task, {})
    cleaned = {}
    for name, value in options.items():
        if value is None:
            continue
        if name not in allowed:
            offered = ", ".join(allowed) or "none"
            raise JobError(f"The {task} task has no option {name!r} (it takes: {offered}).")
        try:
            cleaned[name] = allowed[name](value)
        except (TypeError, ValueError):
            raise JobError(
                f"Option {name} must be a {allowed[name].__name__}, not {value!r}."
            ) from None
    return cleaned


def failure_reason(error: BaseException) -> str:
    """The sentence a failed job shows, starting with the kind of failure."""
    if isinstance(error, JobFailed):
        return str(error)
    if isinstance(error, InputImageError):
        return f"bad input file: {error}"
    if isinstance(error, ModelUnavailableError):
        return f"missing weights: {error}"
    if isinstance(error, (InvalidOptionError, UnknownModelError, JobError)):
        return f"bad job: {error}"
    if isinstance(error, MemoryError):
        return "out of memory, even after retrying with smaller tiles: try a smaller image"
    if isinstance(error, RestorationError):
        return str(error)
    return f"internal error: {type(error).__name__}: {error}"


def run_job(claim: Claim, storage: Storage) -> Outcome:
    """Run a claimed job; every error becomes `JobFailed` with its reason."""
    try:
        if claim.task == "leaderboard":
            return _leaderboard_pair(claim)
        return _restore(claim, storage)
    except JobFailed:
        raise
    except Exception as error:  # a worker never dies of a job: every error is recorded
        raise JobFailed(failure_reason(error)) from error


def _restore(claim: Claim, storage: Storage) -> Outcome:
    options = clean_options(claim.task, claim.options)
    if claim.input_path is None:
        raise JobError("The job has no input file.")
    picture = load_image(storage.read(claim.input_path), name=claim.input_name)
    started = time.perf_counter()
    result = RUNNERS[claim.task](picture, claim.model_id, options)
    seconds = time.perf_counter() - started
    reference = None
    if claim.reference_path:
        reference = load_image(storage.read(claim.reference_path), name="reference")
    relative = f"{new_folder('outputs')}/{output_name(result, claim.model_id)}"
    storage.write(relative, encode_png(result))
    return Outcome(seconds, relative, benchmark=measure(result, reference))


def _sr(picture: Picture, model_id: str, options: dict[str, Any]) -> Picture:
    from pipelines.tasks import super_resolution

    return super_resolution(picture, model_id, **options)


def _anime(picture: Picture, model_id: str, options: dict[str, Any]) -> Picture:
    from pipelines.tasks import anime_upscale

    return anime_upscale(picture, model_id, **options)


def _colorize(picture: Picture, model_id: str, options: dict[str, Any]) -> Picture:
    from pipelines.colorize import colorize

    return colorize(picture, model_id, **options)


RUNNERS: dict[str, Callable[[Picture, str, dict[str, Any]], Picture]] = {
    "sr": _sr,
    "anime": _anime,
    "colorize": _colorize,
}


# ---------------------------------------------------------------- metrics


def measure(output: Picture, reference: Picture | None) -> dict[str, Any]:
    """The benchmark row's metrics, on the output as saved (8-bit), and why any is NULL."""
    from evaluation.metrics import create_metric, metric_available

    rgb = _eight_bit(output.rgb)
    values: dict[str, Any] = {"psnr": None, "ssim": None, "niqe": None, "lpips": None}
    notes: list[str] = []
    ref = None
    if reference is None:
        notes.append("no reference: psnr, ssim and lpips not measured")
    elif reference.rgb.shape != output.rgb.shape:
        notes.append(
            f"reference is {reference.width}x{reference.height}, output "
            f"{output.width}x{output.height}: psnr, ssim and lpips not measured"
        )
    else:
        ref = _eight_bit(reference.rgb)
    names = ["niqe"] + (["psnr", "ssim", "lpips"] if ref is not None else [])
    for name in names:
        available, why = metric_available(name)
        if not available:
            notes.append(f"{name} unavailable: {why.split('. ')[0]}")
            continue
        metric = create_metric(name)
        try:
            values[name] = float(metric(rgb, ref if metric.needs_reference else None))
        except RestorationError as error:
            notes.append(f"{name}: {error}")
    return {**values, "notes": "; ".join(notes) or None}


def _eight_bit(rgb: np.ndarray) -> np.ndarray:
    return (np.round(np.clip(rgb, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


# ---------------------------------------------------------------- leaderboard pairs


def _leaderboard_pair(claim: Claim) -> Outcome:
    from evaluation.leaderboard import score_pair

    started = time.perf_counter()
    outcome = score_pair(**claim.options, model=claim.model_id)
    payload = {
        "outcome": dataclasses.asdict(outcome.outcome),
        "scores": [dataclasses.asdict(s) for s in outcome.scores],
        "sample": outcome.sample,
    }
    return Outcome(time.perf_counter() - started, result=payload)
