"""The worker: claims jobs, runs them on a thread pool, keeps their leases alive.

    Worker(JobStore(), Storage(), WorkerSettings(concurrency=2)).run()

Each loop it fails the jobs abandoned on their last attempt, claims jobs while it has
free threads, and waits for one to finish. A heartbeat thread renews the leases of the
jobs it holds every third of the lease, so a job is taken over by another worker only
when this one is gone (killed, or its machine lost). A job running past its timeout is
failed and given up (its thread cannot be interrupted; its late result is discarded).
`stop()` (SIGTERM in the CLI) claims nothing more, waits ``grace_s`` for the running
jobs and releases the rest to the queue, uncounted.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

from jobs.errors import JobError
from jobs.execute import JobFailed, failure_reason, run_job
from jobs.storage import Storage
from jobs.store import Claim, JobStore
from pipelines.errors import RestorationError

LOG = logging.getLogger("jobs.worker")
T = TypeVar("T")


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise JobError(f"{name} must be a positive number of seconds, not {raw!r}.")
    return value


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker runs; the defaults read $RESTORATION_JOBS_LEASE, _POLL and _TIMEOUT."""

    concurrency: int = 1
    once: bool = False
    lease_s: float = field(default_factory=lambda: _env_seconds("RESTORATION_JOBS_LEASE", 60))
    poll_s: float = field(default_factory=lambda: _env_seconds("RESTORATION_JOBS_POLL", 1))
    job_timeout_s: float = field(
        default_factory=lambda: _env_seconds("RESTORATION_JOBS_TIMEOUT", 1800)
    )
    grace_s: float = 30.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise JobError("A worker needs a concurrency of at least 1.")
        if min(self.lease_s, self.poll_s, self.job_timeout_s) <= 0 or self.grace_s < 0:
            raise JobError("Lease, poll interval and job timeout must be positive seconds.")


@dataclass
class WorkerSummary:
    completed: int = 0
    failed: int = 0
    released: int = 0
    lost: int = 0  # finished after another worker took the job over: result discarded
    abandoned_threads: int = 0  # still running after a timeout or a stop


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        store: JobStore,
        storage: Storage,
        settings: WorkerSettings | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.settings = settings or WorkerSettings()
        self.worker_id = worker_id or new_worker_id()
        self.summary = WorkerSummary()
        self._stopping = threading.Event()
        self._running: dict[Future, tuple[Claim, float]] = {}
        self._guard = threading.Lock()
        self._pool = self._new_pool()

    def stop(self) -> None:
        """Claim nothing more; `run` returns after the grace period."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self) -> WorkerSummary:
        """Work until stopped (or, with ``once``, until nothing is left to claim)."""
        heartbeat = threading.Thread(target=self._heartbeat, name="jobs-heartbeat", daemon=True)
        heartbeat.start()
        try:
            while not self.stopping:
                claimed = self._fill()
                if self.settings.once and not claimed and not self._running:
                    break
                self._wait_for_one()
            self._drain()
        finally:
            self._stopping.set()
            self._pool.shutdown(wait=False, cancel_futures=True)
        return self.summary

    def _new_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="jobs-worker")

    def _fill(self) -> int:
        """Claim jobs for the free threads; returns how many were claimed."""
        self._guarded(self.store.fail_abandoned)
        claimed = 0
        while len(self._running) < self.settings.concurrency and not self.stopping:
            claim = self._guarded(self.store.claim, self.worker_id, self.settings.lease_s)
            if claim is None:
                break
            LOG.info(
                "job %s: %s with %s (attempt %s)",
                claim.id,
                claim.task,
                claim.model_id,
                claim.attempts,
            )
            future = self._pool.submit(self._process, claim)
            with self._guard:
                self._running[future] = (claim, time.monotonic())
            claimed += 1
        return claimed

    def _wait_for_one(self) -> None:
        with self._guard:
            futures = list(self._running)
        if futures:
            done, _ = wait(futures, timeout=self.settings.poll_s, return_when=FIRST_COMPLETED)
            self._forget(done)
            self._enforce_timeouts()
        else:
            self._stopping.wait(self.settings.poll_s)

    def _forget(self, futures: set[Future] | list[Future]) -> None:
        with self._guard:
            for future in futures:
                self._running.pop(future, None)

    def _enforce_timeouts(self) -> None:
        limit = self.settings.job_timeout_s
        with self._guard:
            late = [(f, c) for f, (c, t) in self._running.items() if time.monotonic() - t > limit]
        for future, claim in late:
            reason = f"timed out after {limit:g} s"
            if self._guarded(self.store.fail, claim, reason, limit):
                self.summary.failed += 1
            self.summary.abandoned_threads += 1
            self._forget([future])
        if late:  # the late threads keep their slots: later jobs get a pool of their own
            self._pool.shutdown(wait=False)
            self._pool = self._new_pool()

    def _drain(self) -> None:
        """On stop: give running jobs ``grace_s`` to finish, then release the rest."""
        with self._guard:
            futures = list(self._running)
        if futures:
            done, _ = wait(futures, timeout=self.settings.grace_s)
            self._forget(done)
        with self._guard:
            left = list(self._running.items())
        for future, (claim, _started) in left:
            if self._guarded(self.store.release, claim):
                self.summary.released += 1
            self.summary.abandoned_threads += 1
            self._forget([future])

    def _process(self, claim: Claim) -> None:
        started = time.perf_counter()
        try:
            outcome = run_job(claim, self.storage)
        except JobFailed as failure:
            seconds = time.perf_counter() - started
            self._count(self._guarded(self.store.fail, claim, str(failure), seconds), "failed")
            LOG.info("job %s failed: %s", claim.id, failure)
            return
        except BaseException as error:
            reason = failure_reason(error)
            self._count(self._guarded(self.store.fail, claim, reason), "failed")
            return
        recorded = self._guarded(
            self.store.complete,
            claim,
            runtime_s=outcome.runtime_s,
            output_path=outcome.output_path,
            benchmark=outcome.benchmark,
            result=outcome.result,
        )
        self._count(recorded, "completed")

    def _count(self, recorded: bool | None, what: str) -> None:
        with self._guard:  # job threads finish concurrently
            if recorded:
                setattr(self.summary, what, getattr(self.summary, what) + 1)
            else:
                self.summary.lost += 1

    def _heartbeat(self) -> None:
        interval = self.settings.lease_s / 3
        while not self._stopping.wait(interval):
            with self._guard:
                held = [claim for claim, _ in self._running.values()]
            self._guarded(self.store.renew, held, self.settings.lease_s)

    def _guarded(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Run a database call; an outage is logged and retried on the next loop."""
        try:
            return call(*args, **kwargs)
        except Exception as error:
            LOG.warning("job store error: %s", error)
            return None


_background: Worker | None = None


def start_background_worker(concurrency: int = 1) -> Worker | None:
    """One worker in a daemon thread of this process (the app's), started once. A queue
    that cannot be opened is logged, not raised: the app serves its other tabs anyway."""
    global _background
    if _background is None:
        try:
            worker = Worker(JobStore(), Storage(), WorkerSettings(concurrency=concurrency))
        except RestorationError as error:
            LOG.error("no job worker in this process: %s", error)
            return None
        threading.Thread(target=worker.run, name="jobs-background", daemon=True).start()
        _background = worker
    return _background
