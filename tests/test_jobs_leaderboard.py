"""A leaderboard sent to the queue and scored by two worker processes gives the table of
the same leaderboard run locally (SQLite and PostgreSQL queues)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from evaluation import leaderboard as lb
from jobs.leaderboard import queue_leaderboard, wait_for_leaderboard
from jobs.store import JobStore
from tests import pg_fixtures
from tests.conftest import ROOT

postgres_server = pg_fixtures.postgres_server

MODELS = ["span-x4-ch48", "span-x2-ch48"]  # x2 cannot run a x4 degradation: unavailable
METRICS = ["psnr_y_sr", "ssim_y_sr", "niqe"]
SAME = ["model", "dataset", "degradation", *METRICS, "images", "device"]


@pytest.fixture(scope="module")
def local() -> lb.LeaderboardRun:
    return lb.run_leaderboard("sr", "builtin", "bicubic_x4", MODELS, METRICS, seed=0)


@pytest.fixture(scope="module", params=pg_fixtures.BACKENDS)
def queue_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A job queue with two ``python -m jobs worker`` processes on it (per backend)."""
    folder = tmp_path_factory.mktemp("queue")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{folder / 'queue.sqlite'}"
        else:
            server = request.getfixturevalue("postgres_server")
            url = stack.enter_context(pg_fixtures.fresh_database(server))
        command = [sys.executable, "-m", "jobs", "worker", "--db", url, "--poll", "0.1"]
        command += ["--storage", str(folder / "files"), "--lease", "10"]
        environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
        workers = [
            subprocess.Popen(command, cwd=ROOT, env=environment, stderr=subprocess.DEVNULL)
            for _ in range(2)
        ]
        try:
            yield url
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(60)


def test_a_queued_leaderboard_equals_the_local_one(
    local: lb.LeaderboardRun, queue_url: str, tmp_path: Path
) -> None:
    queue = JobStore(queue_url)
    queued, batch = queue_leaderboard(queue, "sr", "builtin", "bicubic_x4", MODELS, METRICS)
    assert queued[1] == ["span-x4-ch48", "bicubic", "lanczos"]  # the x2 model needs no jobs
    board = lb.LeaderboardStore(tmp_path / "lb.sqlite")
    saved_rows: list[int] = []

    def save(run: lb.LeaderboardRun) -> None:
        board.save(run)
        saved_rows.append(board.count())

    run = wait_for_leaderboard(queue, queued, batch, on_update=save, poll_s=0.2, timeout_s=240)

    expected, got = local.table(), run.table()
    pd.testing.assert_frame_equal(got[SAME], expected[SAME])
    stored = lb.leaderboard_table("sr", "builtin", "bicubic_x4", db=tmp_path / "lb.sqlite")
    pd.testing.assert_frame_equal(stored[SAME], expected[SAME], check_dtype=False)
    assert run.samples == local.samples
    assert [(m.model, m.status) for m in run.models] == [(m.model, m.status) for m in local.models]
    assert saved_rows[-1] == len(local.scores) and saved_rows == sorted(saved_rows)
    jobs = queue.jobs(batch=batch)
    assert len(jobs) == 6 and {j["status"] for j in jobs} == {"completed"}
    assert len({j["worker_id"] for j in jobs}) == 2, "both workers should have scored pairs"


def test_the_cli_sends_a_leaderboard_to_the_queue(
    local: lb.LeaderboardRun, queue_url: str, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "evaluation", "leaderboard", "--queue", "--json"]
    command += ["--jobs-db", queue_url, "--db", str(tmp_path / "lb.sqlite")]
    command += ["--models", ",".join(MODELS), "--metrics", ",".join(METRICS)]
    command += ["--queue-timeout", "240"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "queued 6 (model, image) pairs" in done.stderr
    assert "span-x2-ch48: unavailable" in done.stderr
    rows = json.loads(done.stdout)["rows"]
    expected = lb.to_json_records(local.table())
    assert [{k: r[k] for k in SAME} for r in rows] == [{k: r[k] for k in SAME} for r in expected]
