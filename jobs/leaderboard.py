"""A leaderboard run sent to the queue: one job per (model, image) pair.

    run, batch = queue_leaderboard(store, "sr", "builtin", "bicubic_x4", ["span-x4-ch48"])
    run = wait_for_leaderboard(store, run, batch, on_update=LeaderboardStore().save)

Workers score each pair with `evaluation.leaderboard.score_pair`, the code a local run
uses, and return the scores as the job's result. The waiting side folds the finished
pairs into the run (`fill_run`) and saves it whenever a model finishes, so the stored
leaderboard fills as the queue drains and ends with the rows a local run gives.
Jobs go in model by model, so models finish one after another. Workers need the dataset
where the submitter has it (``builtin`` ships with the code; folders must be shared).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from jobs.errors import JobError
from jobs.store import JobStore, NewJob

QueuedRun = tuple[Any, list[str], list[str]]


def queue_leaderboard(
    store: JobStore,
    task: str,
    dataset: str,
    degradation: str,
    models: Sequence[str],
    metrics: Sequence[str] | None = None,
    *,
    seed: int = 0,
    root: str | None = None,
) -> tuple[QueuedRun, str]:
    """Check the run as a local one would be checked, queue its pairs; (plan, batch id)."""
    from evaluation.leaderboard import plan_run

    run, queued, images = plan_run(
        task, dataset, degradation, models, metrics, seed=seed, root=root
    )
    batch = f"leaderboard-{uuid.uuid4().hex[:12]}"
    options = {
        "task": task,
        "dataset": dataset,
        "degradation": degradation,
        "metrics": list(run.metrics),
        "seed": seed,
        "root": None if root is None else str(root),
    }
    store.add(
        [
            NewJob(
                "leaderboard", model, image, None, options={**options, "image": image}, batch=batch
            )
            for model in queued
            for image in images
        ]
    )
    return (run, queued, images), batch


def pair_results(store: JobStore, batch: str) -> dict[tuple[str, str], Any]:
    """The finished pairs of a batch; a job that failed counts as its model failing."""
    from evaluation.leaderboard import ModelOutcome, PairResult, Score

    results = {}
    for job in store.jobs(batch=batch):
        key = (job["model_id"], job["options"]["image"])
        if job["status"] == "completed" and job["result"]:
            found = job["result"]
            results[key] = PairResult(
                ModelOutcome(**found["outcome"]),
                [Score(**score) for score in found["scores"]],
                found["sample"],
            )
        elif job["status"] == "failed":
            reason = f"{job['options']['image']}: {job['error']}"
            results[key] = PairResult(ModelOutcome(job["model_id"], "failed", reason), [], {})
    return results


def wait_for_leaderboard(
    store: JobStore,
    queued: QueuedRun,
    batch: str,
    *,
    on_update: Callable[[Any], Any] | None = None,
    progress: Callable[[float, str], None] | None = None,
    poll_s: float = 1.0,
    timeout_s: float | None = None,
) -> Any:
    """Fill the run as its pairs finish, calling ``on_update(run)`` when a model is done."""
    from evaluation.leaderboard import fill_run

    run, models, images = queued
    total, finished = len(models) * len(images), -1
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        results = pair_results(store, batch)
        done = fill_run(run, models, images, results)
        if len(done) != finished:
            finished = len(done)
            if on_update is not None:
                on_update(run)
        if progress is not None:
            progress(len(results) / max(total, 1), f"{len(results)}/{total} pairs scored")
        if finished == len(models):
            return run
        if deadline is not None and time.monotonic() > deadline:
            raise JobError(
                f"The leaderboard batch {batch} is not finished after {timeout_s:g} s "
                f"({len(results)}/{total} pairs); are workers running (`python -m jobs worker`)?"
            )
        time.sleep(poll_s)
