"""Worker processes against SQLite and a real PostgreSQL: concurrency, SIGKILL, bad jobs.

Each test starts ``python -m jobs worker`` processes, as an operator would, on tiny images
with short leases, and checks the outcome in the tables.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobs.storage import Storage
from jobs.store import JobStore
from jobs.submit import Upload, submit_uploads
from jobs.worker import Worker, WorkerSettings
from tests import pg_fixtures
from tests.conftest import ROOT, natural_image

db_url = pg_fixtures.db_url
postgres_server = pg_fixtures.postgres_server
postgres_url = pg_fixtures.postgres_url
LEASE_S = 2.0


def png(size: int, offset: int = 0) -> bytes:
    buffer = io.BytesIO()
    natural_image(size + offset, size).crop((offset, 0, offset + size, size)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture()
def storage_dir(tmp_path: Path) -> Path:
    return tmp_path / "storage"


class Workers:
    """Worker processes started by a test, all stopped at its end."""

    def __init__(self, db: str, storage: Path, log_dir: Path) -> None:
        self.db, self.storage, self.log_dir = db, storage, log_dir
        self.processes: list[subprocess.Popen] = []

    def start(self, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = (self.log_dir / f"worker{len(self.processes)}.log").open("w")
        command = [sys.executable, "-m", "jobs", "worker", "--db", self.db]
        command += ["--storage", str(self.storage), "--lease", str(LEASE_S), "--poll", "0.1"]
        process = subprocess.Popen(
            [*command, *extra],
            cwd=ROOT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def log(self, process: subprocess.Popen) -> str:
        return (self.log_dir / f"worker{self.processes.index(process)}.log").read_text()

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)


@pytest.fixture()
def workers(db_url: str, storage_dir: Path, tmp_path: Path) -> Iterator[Workers]:
    group = Workers(db_url, storage_dir, tmp_path)
    yield group
    group.stop_all()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_three_workers_process_thirty_jobs_exactly_once(
    workers: Workers, db_url: str, storage_dir: Path
) -> None:
    store, storage = JobStore(db_url), Storage(str(storage_dir))
    started = [workers.start() for _ in range(3)]
    wait_until(
        lambda: all("worker " in workers.log(p) for p in started), 60, "the workers to start"
    )
    uploads = [Upload(f"img{i:02d}.png", png(32, i)) for i in range(30)]
    ids = submit_uploads(store, storage, "sr", "bicubic", uploads)
    wait_until(lambda: store.counts()["completed"] == 30, 90, "30 completed jobs")
    for process in started:  # graceful stop: SIGTERM, exit status 0
        process.send_signal(signal.SIGTERM)
    assert [p.wait(30) for p in started] == [0, 0, 0]

    jobs = store.jobs(ids=ids)
    assert [j["status"] for j in jobs] == ["completed"] * 30
    assert all(j["attempts"] == 1 for j in jobs), "a job was claimed twice"
    benchmarks = store.benchmarks()
    assert sorted(b["job_id"] for b in benchmarks) == sorted(ids)
    assert len({j["output_path"] for j in jobs}) == 30
    assert all(storage.exists(j["output_path"]) for j in jobs)
    assert len({j["worker_id"] for j in jobs}) >= 2, "the jobs were not shared"
    assert all(b["niqe"] is not None and b["psnr"] is None for b in benchmarks)


def test_a_killed_workers_job_is_taken_over_after_its_lease(
    workers: Workers, db_url: str, storage_dir: Path
) -> None:
    store, storage = JobStore(db_url), Storage(str(storage_dir))
    (job,) = submit_uploads(store, storage, "sr", "span-x4-ch48", [Upload("slow.png", png(128))])
    first = workers.start()
    wait_until(
        lambda: store.jobs(ids=[job])[0]["status"] == "processing", 60, "the job to be claimed"
    )
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    killed_at = time.monotonic()
    row = store.jobs(ids=[job])[0]
    assert row["status"] == "processing" and row["worker_id"].split(":")[1] == str(first.pid)

    second = workers.start()
    wait_until(lambda: store.jobs(ids=[job])[0]["status"] == "completed", 90, "the takeover")
    assert time.monotonic() - killed_at >= LEASE_S * 0.5  # not before the lease ran out
    row = store.jobs(ids=[job])[0]
    assert row["attempts"] == 2
    assert row["worker_id"].split(":")[1] == str(second.pid)
    assert [b["job_id"] for b in store.benchmarks()] == [job]
    second.send_signal(signal.SIGTERM)
    assert second.wait(30) == 0


def test_bad_jobs_fail_with_their_reason_and_the_rest_complete(
    db_url: str, storage_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, storage = JobStore(db_url), Storage(str(storage_dir))
    uploads = [Upload(f"ok{i}.png", png(32, i)) for i in range(3)]
    good = submit_uploads(store, storage, "sr", "bicubic", uploads)
    broken = [Upload("corrupt.png", png(32)[:60])]
    (corrupt,) = submit_uploads(store, storage, "sr", "bicubic", broken)
    needs_weights = [Upload("needs_weights.png", png(32))]
    (missing,) = submit_uploads(store, storage, "sr", "realesr-general-x4v3", needs_weights)
    monkeypatch.setenv("RESTORATION_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = WorkerSettings(concurrency=2, once=True, lease_s=LEASE_S, poll_s=0.1)
    summary = Worker(store, storage, settings).run()
    assert (summary.completed, summary.failed, summary.lost) == (3, 2, 0)

    rows = {j["id"]: j for j in store.jobs()}
    assert all(rows[i]["status"] == "completed" for i in good)
    assert rows[corrupt]["status"] == "failed"
    assert rows[corrupt]["error"].startswith("bad input file:")
    assert "truncated" in rows[corrupt]["error"].lower()
    assert rows[missing]["status"] == "failed"
    assert rows[missing]["error"].startswith("missing weights:")
    assert "python -m pipelines download realesr-general-x4v3" in rows[missing]["error"]
    assert store.counts() == {"pending": 0, "processing": 0, "completed": 3, "failed": 2}


def test_sigterm_releases_the_running_job_uncounted(
    workers: Workers, db_url: str, storage_dir: Path
) -> None:
    store, storage = JobStore(db_url), Storage(str(storage_dir))
    (job,) = submit_uploads(store, storage, "sr", "span-x4-ch48", [Upload("slow.png", png(128))])
    worker = workers.start("--grace", "0")
    wait_until(lambda: store.jobs(ids=[job])[0]["status"] == "processing", 60, "the claim")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    row = store.jobs(ids=[job])[0]
    if row["status"] == "completed":  # it finished within the stop: also a graceful end
        assert row["attempts"] == 1
    else:
        assert (row["status"], row["attempts"], row["worker_id"]) == ("pending", 0, None)
    assert "released" in workers.log(worker)


def test_a_job_past_its_timeout_fails_and_the_worker_goes_on(tmp_path: Path) -> None:
    """Timeouts are the worker's own logic, the same on both backends: SQLite here."""
    store, storage = JobStore(str(tmp_path / "jobs.sqlite")), Storage(str(tmp_path / "files"))
    (warm_up,) = submit_uploads(store, storage, "sr", "bicubic", [Upload("first.png", png(32))])
    Worker(store, storage, WorkerSettings(once=True, poll_s=0.02)).run()  # imports done
    slow_upload = [Upload("slow.png", png(96))]  # Real-ESRGAN x4plus: seconds on a CPU
    (slow,) = submit_uploads(store, storage, "sr", "realesrgan-x4plus", slow_upload)
    (quick,) = submit_uploads(store, storage, "sr", "bicubic", [Upload("quick.png", png(32))])
    settings = WorkerSettings(once=True, lease_s=LEASE_S, poll_s=0.02, job_timeout_s=1.0)
    summary = Worker(store, storage, settings).run()
    rows = {j["id"]: j for j in store.jobs()}
    assert rows[slow]["status"] == "failed" and rows[slow]["error"] == "timed out after 1 s"
    assert rows[quick]["status"] == rows[warm_up]["status"] == "completed"
    assert summary.abandoned_threads == 1


def test_failure_reasons_start_with_their_kind() -> None:
    from jobs.execute import failure_reason
    from pipelines.errors import InputImageError, InvalidOptionError, ModelUnavailableError

    assert failure_reason(InputImageError("x")) == "bad input file: x"
    assert failure_reason(ModelUnavailableError("run y")) == "missing weights: run y"
    assert failure_reason(InvalidOptionError("z")) == "bad job: z"
    assert failure_reason(MemoryError()).startswith("out of memory, even after retrying")
    assert failure_reason(KeyError("k")) == "internal error: KeyError: 'k'"
