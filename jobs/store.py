"""The job store: SQLite by default, PostgreSQL when a URL points to one.

    store = JobStore()                       # $RESTORATION_JOBS_DB, $DATABASE_URL or SQLite
    ids = store.add([NewJob("sr", "bicubic", "a.png", "inputs/…/a.png")])
    claim = store.claim("worker-1", lease_s=60)   # atomically, or None
    store.complete(claim, output_path=…, runtime_s=…, benchmark={…})

Claiming is one conditional ``UPDATE … RETURNING``: on PostgreSQL its subquery takes the
oldest claimable row with ``FOR UPDATE SKIP LOCKED``; on SQLite every transaction starts
with ``BEGIN IMMEDIATE`` (one writer at a time, no lock-upgrade deadlocks). A claim is a
lease: the worker renews it while working; a job whose lease ran out is claimable again
(its worker died) until ``max_attempts`` claims were made, then it fails. Every write
about a claimed job is conditional on (worker, attempt), so a worker that lost its lease
can never overwrite the result of the one that took the job over.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import NullPool

from jobs.errors import JobError
from jobs.schema import STATUSES, ModelBenchmark, RestorationJob, upgrade
from pipelines.weights import REPO_ROOT

DB_ENV = "RESTORATION_JOBS_DB"
DEFAULT_DB = REPO_ROOT / "outputs" / "jobs" / "jobs.sqlite"
MAX_ATTEMPTS_ENV = "RESTORATION_JOBS_MAX_ATTEMPTS"

JOBS = RestorationJob.__table__
BENCHMARKS = ModelBenchmark.__table__


def utcnow() -> datetime:
    """Naive UTC: both backends store it as is (workers' clocks must agree, e.g. NTP)."""
    return datetime.now(UTC).replace(tzinfo=None)


def database_url(given: str | None = None) -> str:
    """``--db``, else $RESTORATION_JOBS_DB, else $DATABASE_URL, else the SQLite file.

    A plain path means a SQLite file; ``postgresql://`` uses the psycopg 3 driver."""
    raw = (given or os.environ.get(DB_ENV) or os.environ.get("DATABASE_URL") or "").strip()
    if not raw:
        return f"sqlite:///{DEFAULT_DB}"
    if "://" not in raw:
        return f"sqlite:///{Path(raw).expanduser().resolve()}"
    for prefix in ("postgresql://", "postgres://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix) :]
    return raw


def default_max_attempts() -> int:
    raw = os.environ.get(MAX_ATTEMPTS_ENV, "3").strip()
    if not raw.isdigit() or int(raw) < 1:
        raise JobError(f"{MAX_ATTEMPTS_ENV} must be a whole number of at least 1, not {raw!r}.")
    return int(raw)


@dataclass(frozen=True)
class NewJob:
    """What `JobStore.add` needs to queue one job."""

    task: str
    model_id: str
    input_name: str
    input_path: str | None
    reference_path: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    batch: str | None = None
    max_attempts: int | None = None


@dataclass(frozen=True)
class Claim:
    """A job a worker holds: its row as claimed, and the attempt number the lease is for."""

    id: int
    task: str
    model_id: str
    options: dict[str, Any]
    input_name: str
    input_path: str | None
    reference_path: str | None
    attempts: int
    worker_id: str


def _sqlite_engine(url: str) -> sa.Engine:
    path = sa.engine.make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 60}, poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    try:
        return sa.create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=4)
    except (sa.exc.ArgumentError, ImportError) as error:
        raise JobError(f"Cannot use the job database URL {safe_url(url)}: {error}") from None


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages and reports."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable URL>"


class JobStore:
    """The two tables and every query the submitter, the workers and the report need."""

    def __init__(self, url: str | None = None) -> None:
        self.url = database_url(url)
        self.engine = create_engine(self.url)
        try:
            upgrade(self.engine)
        except sa.exc.OperationalError as error:
            reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
            raise JobError(f"Cannot open the job database {safe_url(self.url)}: {reason}") from None

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def describe(self) -> str:
        return safe_url(self.url)

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------ submitting

    def add(self, jobs: Sequence[NewJob]) -> list[int]:
        """Queue jobs in one transaction; returns their ids in order."""
        now, attempts = utcnow(), default_max_attempts()
        ids = []
        with self.engine.begin() as conn:
            for job in jobs:
                values = {
                    "batch": job.batch,
                    "task": job.task,
                    "model_id": job.model_id,
                    "options": json.dumps(job.options, sort_keys=True),
                    "input_name": job.input_name[:200],
                    "input_path": job.input_path,
                    "reference_path": job.reference_path,
                    "status": "pending",
                    "attempts": 0,
                    "max_attempts": job.max_attempts or attempts,
                    "created_at": now,
                    "updated_at": now,
                }
                ids.append(int(conn.execute(JOBS.insert().values(values)).inserted_primary_key[0]))
        return ids

    # ------------------------------------------------------------ claiming

    def claim(self, worker_id: str, lease_s: float) -> Claim | None:
        """Take the oldest claimable job (pending, or processing with an expired lease)."""
        now = utcnow()
        claimable = (
            sa.select(JOBS.c.id)
            .where(
                sa.or_(
                    JOBS.c.status == "pending",
                    sa.and_(JOBS.c.status == "processing", JOBS.c.lease_expires_at < now),
                ),
                JOBS.c.attempts < JOBS.c.max_attempts,
            )
            .order_by(JOBS.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        statement = (
            JOBS.update()
            .where(JOBS.c.id == claimable)
            .values(
                status="processing",
                worker_id=worker_id,
                attempts=JOBS.c.attempts + 1,
                lease_expires_at=now + timedelta(seconds=lease_s),
                started_at=now,
                updated_at=now,
                error=None,
            )
            .returning(*JOBS.c)
        )
        with self.engine.begin() as conn:
            row = conn.execute(statement).mappings().first()
        if row is None:
            return None
        return Claim(
            id=row["id"],
            task=row["task"],
            model_id=row["model_id"],
            options=json.loads(row["options"] or "{}"),
            input_name=row["input_name"],
            input_path=row["input_path"],
            reference_path=row["reference_path"],
            attempts=row["attempts"],
            worker_id=worker_id,
        )

    def renew(self, claims: Iterable[Claim], lease_s: float) -> set[int]:
        """Extend the leases still held; returns the ids whose lease was renewed."""
        held = list(claims)
        if not held:
            return set()
        now, renewed = utcnow(), set()
        with self.engine.begin() as conn:
            for claim in held:
                done = conn.execute(
                    JOBS.update()
                    .where(_held_by(claim))
                    .values(lease_expires_at=now + timedelta(seconds=lease_s), updated_at=now)
                )
                if done.rowcount:
                    renewed.add(claim.id)
        return renewed

    def fail_abandoned(self) -> int:
        """Fail the jobs whose lease expired on their last allowed attempt."""
        now = utcnow()
        with self.engine.begin() as conn:
            done = conn.execute(
                JOBS.update()
                .where(
                    JOBS.c.status == "processing",
                    JOBS.c.lease_expires_at < now,
                    JOBS.c.attempts >= JOBS.c.max_attempts,
                )
                .values(
                    status="failed",
                    error=sa.literal("worker lost: the lease expired on each of the ")
                    + sa.cast(JOBS.c.attempts, sa.String)
                    + sa.literal(" attempts (the worker was killed or stalled)"),
                    lease_expires_at=None,
                    finished_at=now,
                    updated_at=now,
                )
            )
        return int(done.rowcount or 0)

    # ------------------------------------------------------------ finishing

    def complete(
        self,
        claim: Claim,
        *,
        runtime_s: float,
        output_path: str | None = None,
        benchmark: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
    ) -> bool:
        """Record success, if this worker still holds this attempt; False if it lost it."""
        now = utcnow()
        values = {
            "status": "completed",
            "output_path": output_path,
            "runtime_s": runtime_s,
            "result": None if result is None else json.dumps(result, default=str),
            "error": None,
            "lease_expires_at": None,
            "finished_at": now,
            "updated_at": now,
        }
        with self.engine.begin() as conn:
            done = conn.execute(JOBS.update().where(_held_by(claim)).values(values))
            if not done.rowcount:
                return False
            if benchmark is not None:
                row = {
                    "job_id": claim.id,
                    "task": claim.task,
                    "model_id": claim.model_id,
                    "runtime_s": runtime_s,
                    "created_at": now,
                    **benchmark,
                }
                conn.execute(BENCHMARKS.insert().values(row))
        return True

    def fail(self, claim: Claim, reason: str, runtime_s: float | None = None) -> bool:
        """Record a failure with its reason (final: a bad job fails the same way again)."""
        now = utcnow()
        values = {
            "status": "failed",
            "error": reason,
            "runtime_s": runtime_s,
            "lease_expires_at": None,
            "finished_at": now,
            "updated_at": now,
        }
        with self.engine.begin() as conn:
            done = conn.execute(JOBS.update().where(_held_by(claim)).values(values))
        return bool(done.rowcount)

    def release(self, claim: Claim) -> bool:
        """Give a job back untouched (graceful stop): pending again, the attempt not counted."""
        now = utcnow()
        values = {
            "status": "pending",
            "worker_id": None,
            "attempts": JOBS.c.attempts - 1,
            "lease_expires_at": None,
            "started_at": None,
            "updated_at": now,
        }
        with self.engine.begin() as conn:
            done = conn.execute(JOBS.update().where(_held_by(claim)).values(values))
        return bool(done.rowcount)

    # ------------------------------------------------------------ reading

    def jobs(
        self,
        ids: Sequence[int] | None = None,
        status: str | None = None,
        batch: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Job rows as dicts, filtered; options and result decoded from JSON."""
        query = sa.select(JOBS)
        if ids is not None:
            query = query.where(JOBS.c.id.in_(list(ids)))
        if status is not None:
            check_status(status)
            query = query.where(JOBS.c.status == status)
        if batch is not None:
            query = query.where(JOBS.c.batch == batch)
        order = JOBS.c.id.desc() if newest_first else JOBS.c.id
        query = query.order_by(order).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_decoded(row) for row in rows]

    def counts(self, ids: Sequence[int] | None = None) -> dict[str, int]:
        """How many jobs are in each status (every status listed, zeros included)."""
        query = sa.select(JOBS.c.status, sa.func.count()).group_by(JOBS.c.status)
        if ids is not None:
            query = query.where(JOBS.c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            found = dict(conn.execute(query).tuples().all())
        return {status: int(found.get(status, 0)) for status in STATUSES}

    def benchmarks(self, ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        query = sa.select(BENCHMARKS).order_by(BENCHMARKS.c.id)
        if ids is not None:
            query = query.where(BENCHMARKS.c.job_id.in_(list(ids)))
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings().all()]

    def benchmark_means(self, ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Per (task, model): the mean of each metric over its rows (NULLs left out)."""
        b = BENCHMARKS.c
        query = (
            sa.select(
                b.task,
                b.model_id,
                sa.func.count().label("benchmarks"),
                *(sa.func.avg(b[name]).label(name) for name in METRIC_COLUMNS),
                sa.func.avg(b.runtime_s).label("runtime_s"),
            )
            .group_by(b.task, b.model_id)
            .order_by(b.task, b.model_id)
        )
        if ids is not None:
            query = query.where(b.job_id.in_(list(ids)))
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings().all()]


METRIC_COLUMNS = ("psnr", "ssim", "niqe", "lpips")


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise JobError(f"Unknown status {status!r}; use one of {', '.join(STATUSES)}.")
    return status


def _held_by(claim: Claim) -> sa.ColumnElement[bool]:
    return sa.and_(
        JOBS.c.id == claim.id,
        JOBS.c.worker_id == claim.worker_id,
        JOBS.c.attempts == claim.attempts,
        JOBS.c.status == "processing",
    )


def _decoded(row: Any) -> dict[str, Any]:
    job = dict(row)
    job["options"] = json.loads(job["options"] or "{}")
    job["result"] = json.loads(job["result"]) if job["result"] else None
    return job
