"""``python -m jobs`` as an operator uses it: submit a folder with references, run a worker
once, read the status, write the report, export the ZIP (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from tests import pg_fixtures
from tests.conftest import ROOT, natural_image

db_url = pg_fixtures.db_url
postgres_server = pg_fixtures.postgres_server
postgres_url = pg_fixtures.postgres_url


def jobs_cli(*args: str, storage: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jobs", *args],
        cwd=ROOT,
        env={**os.environ, "RESTORATION_JOBS_STORAGE": str(storage), "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_submit_work_status_report_export(db_url: str, tmp_path: Path) -> None:
    url = db_url.replace("postgresql+psycopg://", "postgresql://")  # the usual URL form
    photos, references = tmp_path / "photos", tmp_path / "hr"
    photos.mkdir()
    references.mkdir()
    for i in range(2):  # inputs: references shrunk 4x
        reference = natural_image(96 - 4 * i, 96)
        reference.save(references / f"p{i}.png")
        reference.resize((24 - i, 24), Image.Resampling.BICUBIC).save(photos / f"p{i}.png")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    storage = tmp_path / "files"

    submitted = jobs_cli(
        "submit", "--db", url, "--task", "sr", "--model", "bicubic", "--outscale", "4",
        "--reference-dir", str(references), str(photos), "--json", storage=storage,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    ids = json.loads(submitted.stdout)["ids"]
    assert len(ids) == 3  # in name order: broken.jpg, p0.png, p1.png

    worked = jobs_cli("worker", "--db", url, "--once", "--concurrency", "2", storage=storage)
    assert worked.returncode == 0, worked.stderr
    assert "2 completed, 1 failed" in worked.stderr

    status = jobs_cli("status", "--db", url, storage=storage)
    assert "0 pending, 0 processing, 2 completed, 1 failed" in status.stdout
    assert "broken.jpg" in status.stdout and "bad input file" in status.stdout

    report_path = tmp_path / "benchmark_report.json"
    reported = jobs_cli("report", "--db", url, "--out", str(report_path), storage=storage)
    assert reported.returncode == 0, reported.stderr
    (model,) = json.loads(report_path.read_text())["models"]
    assert model["benchmarks"] == 2 and model["mean"]["psnr"] > 20 and model["failed"] == 1

    out = tmp_path / "results.zip"
    exported = jobs_cli(
        "export", "--db", url, "--job-ids", f"{ids[1]},{ids[2]}", "--out", str(out),
        storage=storage,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    with zipfile.ZipFile(out) as archive:
        assert len(archive.namelist()) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["submit", "--model", "nope", "x.png"], "Unknown model"),
        (["submit", "--task", "colorize", "--model", "bicubic", "x.png"], "not a colori"),
        (["submit", "--model", "bicubic", "--scale", "2", "examples"], "no option 'scale'"),
        (["submit", "--model", "bicubic", "missing/"], "does not exist"),
        (["export", "--job-ids", "1,x"], "whole numbers"),
        (["status", "--db", "mysql://nobody@localhost/none"], "Cannot use the job database"),
    ],
)
def test_mistakes_end_with_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    if "--db" not in args:
        args = [*args, "--db", str(tmp_path / "jobs.sqlite")]
    done = jobs_cli(*args, storage=tmp_path / "files")
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
