"""What the queue did: counts by status, per-model metric means, throughput, and a ZIP.

The means are computed by the database (``AVG`` over `model_benchmarks`, NULLs left out),
so they are the mean of the rows the table holds. Throughput is completed jobs per
minute between the first start and the last finish of the selected jobs.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from jobs.errors import JobError
from jobs.schema import STATUSES
from jobs.storage import Storage, safe_component
from jobs.store import METRIC_COLUMNS, JobStore, check_status, utcnow

REPORT_NAME = "benchmark_report.json"


def build_report(store: JobStore, ids: Sequence[int] | None = None) -> dict[str, Any]:
    """The report of the selected jobs (all when ``ids`` is None)."""
    jobs = store.jobs(ids=ids)
    models: dict[tuple[str, str], dict[str, Any]] = {}
    for job in jobs:
        entry = models.setdefault(
            (job["task"], job["model_id"]),
            {"task": job["task"], "model_id": job["model_id"], "jobs": 0}
            | dict.fromkeys(STATUSES, 0),
        )
        entry["jobs"] += 1
        entry[job["status"]] += 1
    for row in store.benchmark_means(ids):
        entry = models.setdefault(
            (row["task"], row["model_id"]), {"task": row["task"], "model_id": row["model_id"]}
        )
        entry["benchmarks"] = int(row["benchmarks"])
        entry["mean"] = {name: _number(row[name]) for name in (*METRIC_COLUMNS, "runtime_s")}
    return {
        "generated_at": utcnow().isoformat(timespec="seconds") + "Z",
        "database": store.describe(),
        "jobs": len(jobs),
        "counts": store.counts(ids),
        "models": list(models.values()),
        "throughput": _throughput(jobs),
        "metrics": {
            "psnr": "dB, RGB, against the reference (higher is better)",
            "ssim": "pyiqa ssim, Y channel, against the reference (higher is better)",
            "niqe": "no-reference, on the output (lower is better)",
            "lpips": "AlexNet v0.1 against the reference, when its weights are cached "
            "(lower is better)",
        },
    }


def _number(value: Any) -> float | str | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")


def _throughput(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    done = [j for j in jobs if j["status"] == "completed" and j["finished_at"]]
    starts = [j["started_at"] for j in done if j["started_at"]]
    if not done or not starts:
        return {"completed": len(done), "seconds": None, "jobs_per_minute": None}
    span = (max(j["finished_at"] for j in done) - min(starts)).total_seconds()
    rate = len(done) / (span / 60) if span > 0 else None
    return {"completed": len(done), "seconds": round(span, 3), "jobs_per_minute": rate}


def write_report(store: JobStore, out: str | Path, ids: Sequence[int] | None = None) -> Path:
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(build_report(store, ids), indent=1, default=_json_default))
    return path


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def select_jobs(store: JobStore, ids: Sequence[int] | None, status: str | None) -> list[int]:
    """Job ids chosen by id list or by status (exactly one of them)."""
    if (ids is None) == (status is None):
        raise JobError("Choose the jobs by ids or by status (one of them).")
    if status is not None:
        return [job["id"] for job in store.jobs(status=check_status(status))]
    found = {job["id"] for job in store.jobs(ids=ids)}
    missing = [i for i in ids or [] if i not in found]
    if missing:
        raise JobError(f"No job with id {', '.join(map(str, missing[:10]))}.")
    return list(dict.fromkeys(ids or []))


def export_zip(
    store: JobStore,
    storage: Storage,
    out: str | Path,
    ids: Sequence[int] | None = None,
    status: str | None = None,
) -> Path:
    """A ZIP of the selected jobs' restored images (``images/<id>_<name>.png``) and the
    report of those jobs (``benchmark_report.json``); jobs without an output are skipped."""
    chosen = select_jobs(store, ids, status)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for job in store.jobs(ids=chosen):
            if job["status"] == "completed" and job["output_path"]:
                name = safe_component(job["output_path"].rsplit("/", 1)[-1], "output.png")
                archive.writestr(f"images/{job['id']}_{name}", storage.read(job["output_path"]))
        report = json.dumps(build_report(store, chosen), indent=1, default=_json_default)
        archive.writestr(REPORT_NAME, report)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return path


def status_text(store: JobStore, failures: int = 5) -> str:
    """Counts by status and the newest failures with their reasons."""
    counts = store.counts()
    lines = [f"{store.describe()}: " + ", ".join(f"{n} {s}" for s, n in counts.items())]
    for job in store.jobs(status="failed", limit=failures, newest_first=True):
        lines.append(f"  job {job['id']} ({job['input_name']}, {job['model_id']}): {job['error']}")
    return "\n".join(lines)
