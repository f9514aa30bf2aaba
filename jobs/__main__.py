"""Command line: ``python -m jobs submit | worker | status | report | export``.

    python -m jobs submit --task sr --model span-x4-ch48 photos/ [--reference-dir HR/]
    python -m jobs worker [--concurrency N] [--once]
    python -m jobs status
    python -m jobs report [--out benchmark_report.json]
    python -m jobs export --status completed [--out results.zip]

Every command takes ``--db URL`` (default $RESTORATION_JOBS_DB, $DATABASE_URL, or
outputs/jobs/jobs.sqlite); those with files take ``--storage URL``. Failures end with
exit status 1 and one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from jobs.errors import JobError
from pipelines.cli import run_command

if TYPE_CHECKING:
    from jobs.storage import Storage
    from jobs.store import JobStore


def _store(args: argparse.Namespace) -> JobStore:
    from jobs.store import JobStore

    return JobStore(args.db)


def _storage(args: argparse.Namespace) -> Storage:
    from jobs.storage import Storage, storage_options

    return Storage(args.storage, storage_options(args.storage_options))


def _ids(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise JobError(f"Job ids are whole numbers separated by commas, not {text!r}.") from None


def _submit(args: argparse.Namespace) -> int:
    from jobs.execute import clean_options
    from jobs.submit import check_task, submit_uploads, uploads_from_files

    task = check_task(args.task, args.model)
    raw = {"outscale": args.outscale, "scale": args.scale, "noise": args.noise}
    raw |= {"tile": args.tile, "render_factor": args.render_factor}
    options = clean_options(task, {k: v for k, v in raw.items() if v is not None})
    uploads = uploads_from_files(args.inputs, args.reference_dir)
    store = _store(args)
    ids = submit_uploads(
        store, _storage(args), task, args.model, uploads, options, max_attempts=args.max_attempts
    )
    if args.json:
        print(json.dumps({"ids": ids}))
    else:
        print(f"queued {len(ids)} jobs (ids {ids[0]}-{ids[-1]}) in {store.describe()}")
    return 0


def _worker(args: argparse.Namespace) -> int:
    from jobs.worker import Worker, WorkerSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    settings_args = {
        "concurrency": args.concurrency,
        "once": args.once,
        "grace_s": args.grace,
    }
    for name, value in (("lease_s", args.lease), ("poll_s", args.poll)):
        if value is not None:
            settings_args[name] = value
    if args.job_timeout is not None:
        settings_args["job_timeout_s"] = args.job_timeout
    worker = Worker(_store(args), _storage(args), WorkerSettings(**settings_args))

    def graceful(_signum: int, _frame: object) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, graceful)
    signal.signal(signal.SIGINT, graceful)
    print(f"worker {worker.worker_id} on {worker.store.describe()}", file=sys.stderr)
    summary = worker.run()
    print(
        f"worker {worker.worker_id}: {summary.completed} completed, {summary.failed} failed, "
        f"{summary.released} released",
        file=sys.stderr,
        flush=True,
    )
    if summary.abandoned_threads:  # a thread still inside a job cannot be joined: leave now
        sys.stdout.flush()
        os._exit(0)
    return 0


def _status(args: argparse.Namespace) -> int:
    from jobs.report import status_text

    store = _store(args)
    if args.json:
        failed = store.jobs(status="failed", limit=args.failures, newest_first=True)
        document = {
            "counts": store.counts(),
            "failures": [
                {k: j[k] for k in ("id", "input_name", "model_id", "error")} for j in failed
            ],
        }
        print(json.dumps(document, indent=1))
    else:
        print(status_text(store, args.failures))
    return 0


def _report(args: argparse.Namespace) -> int:
    from jobs.report import build_report, write_report

    store = _store(args)
    path = write_report(store, args.out, _ids(args.job_ids))
    report = build_report(store, _ids(args.job_ids))
    for model in report["models"]:
        means = model.get("mean", {})
        shown = ", ".join(f"{k} {v:.4g}" for k, v in means.items() if isinstance(v, float))
        print(f"{model['task']:<8} {model['model_id']:<28} {shown}")
    print(f"report written to {path}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from jobs.report import export_zip

    path = export_zip(_store(args), _storage(args), args.out, _ids(args.job_ids), args.status)
    print(f"written {path}")
    return 0


def _common(parser: argparse.ArgumentParser, files: bool = True) -> None:
    parser.add_argument("--db", help="database URL or SQLite file (default: $RESTORATION_JOBS_DB)")
    if files:
        parser.add_argument("--storage", help="storage root: folder or fsspec URL (s3://…)")
        parser.add_argument(
            "--storage-options", help='fsspec options as JSON, e.g. {"anon": false}'
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jobs", description="The batch job queue.")
    commands = parser.add_subparsers(dest="command", required=True)

    submit = commands.add_parser("submit", help="queue images (files, folders, ZIPs)")
    submit.add_argument("inputs", nargs="+", metavar="FILES_OR_DIRS")
    submit.add_argument("--task", default="sr", help="sr, anime or colorize (default: sr)")
    submit.add_argument("--model", required=True, help="model id (python -m pipelines models)")
    submit.add_argument("--reference-dir", help="references matched by file name (for PSNR/SSIM)")
    submit.add_argument("--outscale", type=float, help="sr: final scale")
    submit.add_argument("--scale", type=int, help="anime: scale")
    submit.add_argument("--noise", type=int, help="denoise level, for models that have one")
    submit.add_argument("--tile", type=int, help="tile size in input pixels (0 = auto)")
    submit.add_argument("--render-factor", type=int, help="colorize: render factor")
    submit.add_argument("--max-attempts", type=int, help="claims before a job fails (default 3)")
    submit.add_argument("--json", action="store_true", help="print the job ids as JSON")
    _common(submit)
    submit.set_defaults(handler=_submit)

    worker = commands.add_parser("worker", help="process queued jobs")
    worker.add_argument("--concurrency", type=int, default=1, help="jobs at once (threads)")
    worker.add_argument("--once", action="store_true", help="exit when nothing is left to claim")
    worker.add_argument(
        "--lease", type=float, help="lease seconds (default $RESTORATION_JOBS_LEASE or 60)"
    )
    worker.add_argument("--poll", type=float, help="seconds between polls when idle (default 1)")
    worker.add_argument(
        "--job-timeout", type=float, help="seconds before a job fails (default 1800)"
    )
    worker.add_argument("--grace", type=float, default=30.0, help="on SIGTERM: seconds to finish")
    _common(worker)
    worker.set_defaults(handler=_worker)

    status = commands.add_parser("status", help="counts by status and the newest failures")
    status.add_argument("--failures", type=int, default=5, help="how many failures to show")
    status.add_argument("--json", action="store_true")
    _common(status, files=False)
    status.set_defaults(handler=_status)

    report = commands.add_parser("report", help="per-model metric means, counts, throughput")
    report.add_argument("--out", default="benchmark_report.json")
    report.add_argument("--job-ids", help="comma-separated ids (default: every job)")
    _common(report, files=False)
    report.set_defaults(handler=_report)

    export = commands.add_parser("export", help="a ZIP of restored images and the report")
    chosen = export.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--job-ids", help="comma-separated ids")
    chosen.add_argument("--status", help="pending, processing, completed or failed")
    export.add_argument("--out", default="results.zip")
    _common(export)
    export.set_defaults(handler=_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
