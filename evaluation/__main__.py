"""Command line: ``python -m evaluation score | leaderboard | show | download``.

    python -m evaluation score --ref GT_DIR --dist OUT_DIR --metrics psnr_y_sr,ssim_y_sr \
        --crop-border 4
    python -m evaluation leaderboard --task sr --dataset builtin --degradation bicubic_x4 \
        --models span-x4-ch48,realesrgan-x4plus --out results/
    python -m evaluation show --task sr
    python -m evaluation download set5

Imports stay lazy (never gradio). Failures end with exit status 1 and one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelines.cli import run_command
from pipelines.errors import RestorationError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def _names(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


# ---------------------------------------------------------------- score


def _images(path: Path) -> dict[str, Path]:
    if path.is_dir():
        found = {
            p.stem.lower(): p for p in sorted(path.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES
        }
        if not found:
            raise RestorationError(f"No images in {path}.")
        return found
    if not path.is_file():
        raise RestorationError(f"{path} does not exist.")
    return {path.stem.lower(): path}


def _pairs(ref: Path, dist: Path) -> list[tuple[str, Path, Path]]:
    """(name, reference, distorted): two files, or the files of two folders matched by name."""
    refs, dists = _images(ref), _images(dist)
    if not ref.is_dir() and not dist.is_dir():
        return [(dist.stem, ref, dist)]
    if ref.is_dir() != dist.is_dir():
        raise RestorationError("Give two files or two folders (--ref and --dist).")
    common = sorted(set(refs) & set(dists))
    if not common:
        raise RestorationError(f"No file names in {dist} match those in {ref}.")
    unmatched = sorted(set(refs) ^ set(dists))
    if unmatched:
        print(f"note: {len(unmatched)} unmatched: {', '.join(unmatched[:5])}", file=sys.stderr)
    return [(dists[k].stem, refs[k], dists[k]) for k in common]


def _score(args: argparse.Namespace) -> int:
    from evaluation.metrics import create_metric
    from pipelines.images import load_image

    pairs = _pairs(Path(args.ref), Path(args.dist))
    overrides = {} if args.crop_border is None else {"crop_border": args.crop_border}
    metrics = {
        name: create_metric(name, **(overrides if "crop_border" in _overridable(name) else {}))
        for name in _names(args.metrics) or ["psnr", "ssim"]
    }
    rows = []
    for name, ref_path, dist_path in pairs:
        ref, dist = load_image(ref_path).rgb, load_image(dist_path).rgb
        values = {m: float(metric(dist, ref)) for m, metric in metrics.items()}
        rows.append({"image": name, "ref": str(ref_path), "dist": str(dist_path), **values})
    mean = {m: sum(r[m] for r in rows) / len(rows) for m in metrics}
    if args.json:
        document = {
            "metrics": {m: metric.describe() for m, metric in metrics.items()},
            "images": [{k: _safe(v) for k, v in r.items()} for r in rows],
            "mean": {k: _safe(v) for k, v in mean.items()},
        }
        print(json.dumps(document, indent=1))
        return 0
    width = max(len("mean"), *(len(r["image"]) for r in rows))
    print(f"{'image':<{width}}  " + "  ".join(f"{m:>12}" for m in metrics))
    for row in [*rows, {"image": "mean", **mean}]:
        print(f"{row['image']:<{width}}  " + "  ".join(f"{row[m]:>12.6f}" for m in metrics))
    return 0


def _overridable(name: str) -> tuple[str, ...]:
    from evaluation.metrics import METRICS

    return METRICS.get(name).overridable


def _safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else None
    return value


# ---------------------------------------------------------------- leaderboards


def _progress(fraction: float, message: str) -> None:
    print(f"\r[{fraction:4.0%}] {message:<60.60}", end="", file=sys.stderr, flush=True)


def _print_table(table: Any) -> None:
    import pandas as pd

    if table.empty:
        print("No stored results.")
        return
    arrows = {m: ("↓" if low else "↑") for m, low in table.attrs["lower_better"].items()}
    shown = table.rename(columns={m: f"{m} {a}" for m, a in arrows.items()})
    print(table.attrs.get("convention", ""))
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def _leaderboard(args: argparse.Namespace) -> int:
    from evaluation.leaderboard import (
        LeaderboardStore,
        run_leaderboard,
        table_json,
        write_exports,
    )

    models = _names(args.models)
    out = Path(args.out) if args.out else None
    if args.queue:
        run = _queued_run(args, models)
    else:
        run = run_leaderboard(
            args.task,
            args.dataset,
            args.degradation,
            models,
            _names(args.metrics) or None,
            seed=args.seed,
            root=args.dataset_dir,
            progress=_progress if sys.stderr.isatty() and not args.json else None,
            output_dir=out / "images" if out else None,
        )
    if sys.stderr.isatty() and not args.json:
        print(file=sys.stderr)
    LeaderboardStore(args.db).save(run)
    table = run.table()
    if out:
        write_exports(table, out, run)
    for outcome in run.models:
        if outcome.status != "ok":
            print(f"{outcome.model}: {outcome.status}: {outcome.reason}", file=sys.stderr)
    if args.json:
        print(json.dumps(table_json(table, run), indent=1, default=str))
    else:
        _print_table(table)
    if out:
        print(f"written to {out}", file=sys.stderr)
    return 0


def _queued_run(args: argparse.Namespace, models: list[str]) -> Any:
    """Each (model, image) pair as a job; the stored leaderboard fills as workers finish."""
    from evaluation.leaderboard import LeaderboardStore
    from jobs.leaderboard import queue_leaderboard, wait_for_leaderboard
    from jobs.store import JobStore

    queue = JobStore(args.jobs_db)
    queued, batch = queue_leaderboard(
        queue,
        args.task,
        args.dataset,
        args.degradation,
        models,
        _names(args.metrics) or None,
        seed=args.seed,
        root=args.dataset_dir,
    )
    pairs = len(queued[1]) * len(queued[2])
    print(
        f"queued {pairs} (model, image) pairs as batch {batch} in {queue.describe()}; "
        "waiting for workers (`python -m jobs worker`)",
        file=sys.stderr,
    )
    return wait_for_leaderboard(
        queue,
        queued,
        batch,
        on_update=LeaderboardStore(args.db).save,
        progress=_progress if sys.stderr.isatty() and not args.json else None,
        timeout_s=args.queue_timeout,
    )


def _show(args: argparse.Namespace) -> int:
    from evaluation.leaderboard import leaderboard_table, table_json

    table = leaderboard_table(args.task, args.dataset, args.degradation, db=args.db)
    if args.json:
        print(json.dumps(table_json(table), indent=1, default=str))
    else:
        _print_table(table)
    return 0


def _download(args: argparse.Namespace) -> int:
    from evaluation.datasets import download_dataset

    print(download_dataset(args.dataset))
    return 0


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation", description="Score images, run and show leaderboards."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    score = commands.add_parser("score", help="score distorted images against references")
    score.add_argument("--ref", required=True, help="reference image, or a folder of them")
    score.add_argument("--dist", required=True, help="image to score, or a folder (same names)")
    score.add_argument("--metrics", help="comma-separated metric names (default: psnr,ssim)")
    score.add_argument("--crop-border", type=int, help="pixels cropped from each side first")
    score.add_argument("--json", action="store_true", help="machine-readable output")
    score.set_defaults(handler=_score)

    board = commands.add_parser("leaderboard", help="run models on a dataset and store scores")
    board.add_argument("--task", default="sr", help="sr or anime (default: sr)")
    board.add_argument("--dataset", default="builtin", help="dataset id (default: builtin)")
    board.add_argument("--degradation", default="bicubic_x4", help="default: bicubic_x4")
    board.add_argument("--models", default="", help="comma-separated model ids")
    board.add_argument("--metrics", help="comma-separated (default: psnr_y_sr,ssim_y_sr,niqe)")
    board.add_argument("--seed", type=int, default=0, help="degradation seed (default: 0)")
    board.add_argument("--dataset-dir", help="folder of the dataset (folder / standard sets)")
    _store_options(board)
    board.add_argument("--out", help="folder for CSV, JSON, HTML charts and the images")
    board.add_argument(
        "--queue",
        action="store_true",
        help="send each (model, image) pair to the job queue; any workers run them and the "
        "stored leaderboard fills as they finish (--out then writes no images)",
    )
    board.add_argument(
        "--jobs-db", help="job queue database URL (default: $RESTORATION_JOBS_DB, $DATABASE_URL)"
    )
    board.add_argument(
        "--queue-timeout", type=float, help="with --queue: seconds to wait (default: no limit)"
    )
    board.set_defaults(handler=_leaderboard)

    show = commands.add_parser("show", help="print the stored leaderboards")
    show.add_argument("--task")
    show.add_argument("--dataset")
    show.add_argument("--degradation")
    _store_options(show)
    show.set_defaults(handler=_show)

    download = commands.add_parser("download", help="fetch a standard dataset into the cache")
    download.add_argument("dataset", help="set5, bsd100, ...")
    download.set_defaults(handler=_download)
    return parser


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        help="SQLite file (default: $RESTORATION_LEADERBOARD_DB or outputs/leaderboard.sqlite)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
