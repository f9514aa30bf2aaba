"""The queue's tables as SQLAlchemy models, and the migrations that build them in place.

The models describe the newest schema. A database records its version in
``schema_version``; `upgrade` applies the missing steps of `MIGRATIONS` in order, in one
transaction that holds a lock (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite), so workers starting together on an empty database build it once. Each step is
written against the schema of its time, never against the models, so an old database
upgrades to exactly what a new one is created as.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

STATUSES = ("pending", "processing", "completed", "failed")
ADVISORY_LOCK_ID = 7_305_214_001  # any constant: serializes migrations on PostgreSQL


class Base(DeclarativeBase):
    pass


class RestorationJob(Base):
    """One image to restore (or one leaderboard pair to score)."""

    __tablename__ = "restoration_jobs"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    batch: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    task: Mapped[str] = mapped_column(sa.String(32))
    model_id: Mapped[str] = mapped_column(sa.String(200))
    options: Mapped[str] = mapped_column(sa.Text, default="{}")  # JSON
    input_name: Mapped[str] = mapped_column(sa.String(200))  # the uploaded name, for display
    input_path: Mapped[str | None] = mapped_column(sa.String(500))  # relative to storage
    reference_path: Mapped[str | None] = mapped_column(sa.String(500))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=3)
    error: Mapped[str | None] = mapped_column(sa.Text)
    output_path: Mapped[str | None] = mapped_column(sa.String(500))
    result: Mapped[str | None] = mapped_column(sa.Text)  # JSON (leaderboard pairs' scores)
    worker_id: Mapped[str | None] = mapped_column(sa.String(200))
    lease_expires_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    runtime_s: Mapped[float | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (sa.Index("restoration_jobs_claim", "status", "id"),)


class ModelBenchmark(Base):
    """Quality and speed of one completed job: PSNR/SSIM need a reference, NIQE never does."""

    __tablename__ = "model_benchmarks"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(sa.ForeignKey("restoration_jobs.id"), index=True)
    task: Mapped[str] = mapped_column(sa.String(32))
    model_id: Mapped[str] = mapped_column(sa.String(200))
    psnr: Mapped[float | None]
    ssim: Mapped[float | None]
    niqe: Mapped[float | None]
    lpips: Mapped[float | None]
    runtime_s: Mapped[float]
    notes: Mapped[str | None] = mapped_column(sa.Text)  # why a metric is NULL
    created_at: Mapped[datetime]


VERSION_TABLE = sa.Table(
    "schema_version", sa.MetaData(), sa.Column("version", sa.Integer, nullable=False)
)


def _v1(conn: sa.Connection) -> None:
    """The first schema: jobs without batches or results, benchmarks."""
    meta = sa.MetaData()
    sa.Table(
        "restoration_jobs",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task", sa.String(32), nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("input_name", sa.String(200), nullable=False),
        sa.Column("input_path", sa.String(500)),
        sa.Column("reference_path", sa.String(500)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("output_path", sa.String(500)),
        sa.Column("worker_id", sa.String(200)),
        sa.Column("lease_expires_at", sa.DateTime),
        sa.Column("started_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("runtime_s", sa.Float),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Index("restoration_jobs_claim", "status", "id"),
    )
    sa.Table(
        "model_benchmarks",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("restoration_jobs.id"), nullable=False),
        sa.Column("task", sa.String(32), nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("psnr", sa.Float),
        sa.Column("ssim", sa.Float),
        sa.Column("niqe", sa.Float),
        sa.Column("lpips", sa.Float),
        sa.Column("runtime_s", sa.Float, nullable=False),
        sa.Column("notes", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Index("ix_model_benchmarks_job_id", "job_id"),
    )
    meta.create_all(conn)


def _v2(conn: sa.Connection) -> None:
    """Batches (a leaderboard sent to the queue is one) and a JSON result per job."""
    conn.exec_driver_sql("ALTER TABLE restoration_jobs ADD COLUMN batch VARCHAR(64)")
    conn.exec_driver_sql("ALTER TABLE restoration_jobs ADD COLUMN result TEXT")
    conn.exec_driver_sql("CREATE INDEX ix_restoration_jobs_batch ON restoration_jobs (batch)")


MIGRATIONS: list[Callable[[sa.Connection], None]] = [_v1, _v2]
LATEST = len(MIGRATIONS)


def current_version(conn: sa.Connection) -> int:
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.execute(sa.select(VERSION_TABLE.c.version)).scalar() or 0)


def upgrade(engine: sa.Engine, target: int = LATEST) -> int:
    """Bring the database to schema ``target`` in place; returns the version it had."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": ADVISORY_LOCK_ID})
        found = current_version(conn)
        if found == 0:
            VERSION_TABLE.create(conn, checkfirst=True)
            conn.execute(VERSION_TABLE.insert().values(version=0))
        for step in range(found, target):
            MIGRATIONS[step](conn)
            conn.execute(VERSION_TABLE.update().values(version=step + 1))
        return found
