"""The job store on SQLite and PostgreSQL (schema upgrades, leases), storage, uploads,
the report and the export."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from jobs import schema
from jobs.errors import JobError, StorageError, UnsafeUploadError
from jobs.report import REPORT_NAME, build_report, export_zip
from jobs.storage import Storage, checked_path, safe_component
from jobs.store import JobStore, NewJob, create_engine, database_url
from jobs.submit import Upload, submit_uploads, uploads_from_files, uploads_from_zip
from jobs.worker import Worker, WorkerSettings
from tests import pg_fixtures
from tests.conftest import natural_image

db_url = pg_fixtures.db_url
postgres_server = pg_fixtures.postgres_server
postgres_url = pg_fixtures.postgres_url


def png(width: int, height: int, left: int = 60) -> bytes:
    buffer = io.BytesIO()
    image = natural_image(width + left, height).crop((left, 0, left + width, height))
    image.save(buffer, "PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------- schema


def test_an_old_database_upgrades_in_place_and_keeps_its_rows(db_url: str) -> None:
    engine = create_engine(database_url(db_url))
    assert schema.upgrade(engine, target=1) == 0
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO restoration_jobs (task, model_id, options, input_name, status, "
                "attempts, max_attempts, created_at, updated_at) "
                "VALUES ('sr', 'bicubic', '{}', 'old.png', 'pending', 0, 3, :now, :now)"
            ),
            {"now": datetime(2026, 1, 1)},
        )
    engine.dispose()

    store = JobStore(db_url)  # opening it upgrades it
    with store.engine.connect() as conn:
        assert schema.current_version(conn) == schema.LATEST == 2
        columns = {c["name"] for c in sa.inspect(conn).get_columns("restoration_jobs")}
    assert columns == {c.name for c in schema.RestorationJob.__table__.columns}
    (old,) = store.jobs()
    assert (old["input_name"], old["batch"], old["result"]) == ("old.png", None, None)
    assert store.claim("w", 10).id == old["id"]  # and it still works as a job


def test_a_fresh_database_has_the_models_schema(db_url: str) -> None:
    store = JobStore(db_url)
    inspector = sa.inspect(store.engine)
    for model in (schema.RestorationJob, schema.ModelBenchmark):
        found = {c["name"] for c in inspector.get_columns(model.__tablename__)}
        assert found == {c.name for c in model.__table__.columns}
    assert JobStore(db_url).engine is not None  # a second open finds it current


# ---------------------------------------------------------------- leases


def test_leases_expire_hand_the_job_over_and_end_after_max_attempts(db_url: str) -> None:
    store = JobStore(db_url)
    (job,) = store.add([NewJob("sr", "bicubic", "a.png", "inputs/x/a.png", max_attempts=2)])
    first = store.claim("worker-a", lease_s=0.3)
    assert first is not None and first.attempts == 1
    assert store.claim("worker-b", lease_s=0.3) is None  # held
    assert store.renew([first], lease_s=0.3) == {job}
    time.sleep(0.5)
    second = store.claim("worker-b", lease_s=0.3)  # worker-a's lease ran out
    assert second is not None and (second.id, second.attempts) == (job, 2)
    assert not store.complete(first, runtime_s=1.0)  # the lost attempt cannot write
    assert store.renew([first], lease_s=10) == set()
    time.sleep(0.5)
    assert store.claim("worker-c", lease_s=0.3) is None  # no attempts left
    assert store.fail_abandoned() == 1
    (row,) = store.jobs()
    assert row["status"] == "failed" and "lease expired" in row["error"]


def test_release_puts_the_job_back_uncounted(db_url: str) -> None:
    store = JobStore(db_url)
    store.add([NewJob("sr", "bicubic", "a.png", "inputs/x/a.png")])
    claim = store.claim("w", 30)
    assert store.release(claim)
    (row,) = store.jobs()
    assert (row["status"], row["attempts"], row["worker_id"]) == ("pending", 0, None)


# ---------------------------------------------------------------- storage and uploads


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../../b", "a//b", ".hidden", "a\\b", ""])
def test_storage_refuses_paths_it_did_not_make(tmp_path: Path, bad: str) -> None:
    with pytest.raises(StorageError, match="Refusing"):
        checked_path(bad)
    with pytest.raises(StorageError):
        Storage(str(tmp_path)).read(bad)


def test_uploaded_names_cannot_leave_the_storage(tmp_path: Path, db_url: str) -> None:
    store, storage = JobStore(db_url), Storage(str(tmp_path / "files"))
    names = ["../../evil.png", "/abs/olute.png", "..", "ok name ü.png"]
    ids = submit_uploads(store, storage, "sr", "bicubic", [Upload(n, png(8, 8)) for n in names])
    for job in store.jobs(ids=ids):
        path = Path(storage.local_path(job["input_path"])).resolve()
        assert path.is_relative_to((tmp_path / "files").resolve())
    assert not (tmp_path / "evil.png").exists()
    assert safe_component("../../evil.png") == "evil.png"
    assert safe_component("..") == "file"


def _zip(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_zip_uploads_take_images_and_refuse_traversal_and_bombs() -> None:
    good = uploads_from_zip(_zip({"a/one.png": png(8, 8), "two.jpg": b"x", "notes.txt": b"t"}))
    assert [u.name for u in good] == ["one.png", "two.jpg"]
    with pytest.raises(UnsafeUploadError, match="outside"):
        uploads_from_zip(_zip({"../../etc/cron.d/x.png": b"x"}))
    with pytest.raises(UnsafeUploadError, match="outside"):
        uploads_from_zip(_zip({"/abs.png": b"x"}))
    with pytest.raises(UnsafeUploadError, match="bomb"):
        uploads_from_zip(_zip({"bomb.png": bytes(50 * 2**20)}))
    with pytest.raises(UnsafeUploadError, match="size limit"):
        uploads_from_zip(_zip({"big.png": bytes(2**20)}), max_total=2**19, max_ratio=10**9)
    with pytest.raises(UnsafeUploadError, match="files"):
        uploads_from_zip(_zip({f"{i}.png": b"x" for i in range(5)}), max_entries=4)
    with pytest.raises(UnsafeUploadError, match="not a readable ZIP"):
        uploads_from_zip(b"PK\x03\x04 truncated")


def test_references_match_files_and_zip_entries_by_name(tmp_path: Path) -> None:
    archive = tmp_path / "batch.zip"
    archive.write_bytes(_zip({"inner/a.png": png(8, 8), "b.png": png(8, 8)}))
    (tmp_path / "c.png").write_bytes(png(8, 8))
    references = tmp_path / "refs"
    references.mkdir()
    for name in ("A.png", "c.png"):
        (references / name).write_bytes(png(32, 32))
    uploads = uploads_from_files([archive, tmp_path / "c.png"], reference_dir=references)
    assert {u.name: u.reference is not None for u in uploads} == {
        "a.png": True,
        "b.png": False,
        "c.png": True,
    }


def test_submitting_checks_the_model_task_and_options(tmp_path: Path) -> None:
    store, storage = JobStore(str(tmp_path / "j.sqlite")), Storage(str(tmp_path / "files"))
    with pytest.raises(JobError, match="not a"):
        submit_uploads(store, storage, "colorize", "bicubic", [Upload("a.png", b"x")])
    with pytest.raises(JobError, match="Unknown task"):
        submit_uploads(store, storage, "paint", "bicubic", [Upload("a.png", b"x")])
    from jobs.execute import clean_options

    with pytest.raises(JobError, match="no option 'scale'"):
        clean_options("sr", {"scale": 2})
    assert clean_options("sr", {"outscale": "2", "tile": None}) == {"outscale": 2.0}


# ---------------------------------------------------------------- report and export


@pytest.fixture()
def finished(db_url: str, tmp_path: Path) -> tuple[JobStore, Storage, list[int]]:
    """Six jobs run by an in-process worker: two models, references for some, one bad file."""
    store, storage = JobStore(db_url), Storage(str(tmp_path / "files"))
    ids = []
    for model in ("bicubic", "lanczos"):
        uploads = [
            Upload(f"p{i}.png", png(30, 30, 40 + 3 * i), reference=png(120, 120, 10 * i))
            for i in range(2)
        ]
        uploads.append(Upload("plain.png", png(32, 32)))
        ids += submit_uploads(store, storage, "sr", model, uploads)
    ids += submit_uploads(store, storage, "sr", "bicubic", [Upload("bad.png", b"nope")])
    settings = WorkerSettings(concurrency=2, once=True, lease_s=5, poll_s=0.05)
    Worker(store, storage, settings).run()
    return store, storage, ids


def test_report_means_equal_the_mean_of_the_benchmark_rows(finished) -> None:  # type: ignore[no-untyped-def]
    store, _storage, _ids = finished
    report = build_report(store)
    assert report["counts"] == {"pending": 0, "processing": 0, "completed": 6, "failed": 1}
    rows = store.benchmarks()
    assert len(rows) == 6
    for entry in report["models"]:
        mine = [r for r in rows if r["model_id"] == entry["model_id"]]
        for metric in ("psnr", "ssim", "niqe", "runtime_s"):
            values = [r[metric] for r in mine if r[metric] is not None]
            assert entry["mean"][metric] == pytest.approx(sum(values) / len(values), rel=1e-9)
        assert entry["mean"]["lpips"] is None  # its weights are not cached here
    with_reference = [r for r in rows if r["psnr"] is not None]
    assert len(with_reference) == 4 and all(r["ssim"] is not None for r in with_reference)
    plain = [r for r in rows if r["psnr"] is None]
    assert all("no reference" in r["notes"] for r in plain)
    bicubic = next(m for m in report["models"] if m["model_id"] == "bicubic")
    assert (bicubic["jobs"], bicubic["completed"], bicubic["failed"]) == (4, 3, 1)
    assert report["throughput"]["completed"] == 6 and report["throughput"]["jobs_per_minute"] > 0


def test_export_holds_exactly_the_selected_outputs_and_their_report(
    finished, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    store, storage, ids = finished
    chosen = ids[:2] + ids[-1:]  # two completed jobs and the failed one
    path = export_zip(store, storage, tmp_path / "out" / "results.zip", ids=chosen)
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        report = json.loads(archive.read(REPORT_NAME))
        first = archive.read(next(n for n in names if n.startswith(f"images/{ids[0]}_")))
    jobs = {j["id"]: j for j in store.jobs(ids=ids[:2])}
    expected = sorted(f"images/{i}_{jobs[i]['output_path'].rsplit('/', 1)[-1]}" for i in ids[:2])
    assert names == sorted([*expected, REPORT_NAME])
    assert first == storage.read(jobs[ids[0]]["output_path"])
    assert report["jobs"] == 3 and report["counts"]["failed"] == 1
    everything = export_zip(store, storage, tmp_path / "all.zip", status="completed")
    with zipfile.ZipFile(everything) as archive:
        assert len(archive.namelist()) == 6 + 1
    with pytest.raises(JobError, match="No job with id"):
        export_zip(store, storage, tmp_path / "x.zip", ids=[99999])


# ---------------------------------------------------------------- S3 through fsspec


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's stand-alone S3-compatible server (``moto_server``), on a free port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (tmp_path_factory.mktemp("s3") / "moto.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            break
        except OSError:
            time.sleep(0.2)
    try:
        yield url
    finally:
        server.terminate()
        server.wait(10)


def test_jobs_run_with_their_files_in_s3(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    options = {"endpoint_url": s3_endpoint}
    storage = Storage("s3://restoration-jobs/batch-1", options)
    storage.fs.mkdir("restoration-jobs")
    assert not storage.local
    store = JobStore(str(tmp_path / "jobs.sqlite"))
    uploads = [Upload("a.png", png(24, 24), reference=png(96, 96)), Upload("b.png", b"broken")]
    ids = submit_uploads(store, storage, "sr", "bicubic", uploads)
    settings = WorkerSettings(once=True, lease_s=5, poll_s=0.05)
    summary = Worker(store, Storage("s3://restoration-jobs/batch-1", options), settings).run()
    assert (summary.completed, summary.failed) == (1, 1)
    done, bad = store.jobs(ids=ids)
    listed = storage.fs.find("restoration-jobs/batch-1")
    assert f"restoration-jobs/batch-1/{done['output_path']}" in listed
    assert storage.read(done["output_path"]).startswith(b"\x89PNG")
    assert bad["error"].startswith("bad input file:")
    archive = export_zip(store, storage, tmp_path / "s3.zip", status="completed")
    with zipfile.ZipFile(archive) as opened:
        assert len(opened.namelist()) == 2
