"""Leaderboard runs (models x dataset x degradation x metrics) and the SQLite store.

    run = run_leaderboard("sr", "builtin", "bicubic_x4", ["span-x4-ch48"])
    LeaderboardStore().save(run)            # replaces the same configuration's rows
    table = leaderboard_table(task="sr")    # one row per (model, dataset, degradation)

A run degrades every dataset image (its parameters recorded), runs each model through the
task function the UI and CLI use, and scores the output, rounded to 8-bit levels as a saved
PNG is, so that `python -m evaluation score` on the written files gives the same values.
Baselines are always added: ``bicubic`` and ``lanczos`` for a scale > 1, ``identity`` (the
input itself) for scale 1. A model that cannot run here (files missing, offline, a scale it
lacks, a failure on one image) is reported in `LeaderboardRun.models` with the reason and
leaves no rows; the run goes on with the others.

The store is SQLite through SQLAlchemy, at ``$RESTORATION_LEADERBOARD_DB`` or
``<repo>/outputs/leaderboard.sqlite`` (git-ignored). A configuration (task, dataset,
degradation with its settings, seed) is one `runs` row; saving a run replaces, in one
transaction, the rows of the models it measured in that configuration, and keeps the
other models' rows, so leaderboards accumulate across runs.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pipelines.backends import device_label
from pipelines.errors import InvalidOptionError, RestorationError
from pipelines.images import Picture
from pipelines.weights import REPO_ROOT

DB_ENV = "RESTORATION_LEADERBOARD_DB"
DEFAULT_DB = REPO_ROOT / "outputs" / "leaderboard.sqlite"
IDENTITY = "identity"
TASKS: dict[str, str] = {"sr": "Super-resolution", "anime": "Anime / 2D upscaling"}
DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "sr": ("psnr_y_sr", "ssim_y_sr", "niqe"),
    "anime": ("psnr_y_sr", "ssim_y_sr", "niqe"),
}
# Metrics that take the SR scale as their border (the literature's convention).
SCALE_CROPPED = ("psnr_y_sr", "ssim_y_sr")
KEY_COLUMNS = ["model", "dataset", "degradation"]

ProgressFn = Callable[[float, str], None]


class LeaderboardError(RestorationError):
    """A run that cannot start or finish as asked: one readable sentence."""


@dataclass(frozen=True)
class ModelOutcome:
    """What happened to one model in a run: ``ok``, ``unavailable`` or ``failed``."""

    model: str
    status: str
    reason: str = ""
    device: str = ""


@dataclass(frozen=True)
class Score:
    """One per-image result row."""

    model: str
    image: str
    metric: str
    value: float
    runtime_s: float
    device: str


@dataclass
class LeaderboardRun:
    """Everything one run measured and how; `table()` is its leaderboard."""

    task: str
    dataset: str
    dataset_info: dict[str, Any]
    degradation: str
    degradation_settings: dict[str, Any]
    seed: int
    scale: int
    metrics: dict[str, dict[str, Any]]  # name -> Metric.describe(), in the asked order
    models: list[ModelOutcome]
    scores: list[Score]
    samples: dict[str, dict[str, Any]]  # image -> the degradation's full params
    code_version: str
    created_at: str
    output_dir: Path | None = None
    convention: str = ""
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return config_key(self.config)

    @property
    def lower_better(self) -> dict[str, bool]:
        return {name: bool(d["lower_better"]) for name, d in self.metrics.items()}

    def records(self) -> pd.DataFrame:
        """The per-image rows, as the store holds them."""
        rows = [
            {
                **dataclasses.asdict(s),
                "task": self.task,
                "dataset": self.dataset,
                "degradation": self.degradation,
                "config_key": self.key,
                "code_version": self.code_version,
                "created_at": self.created_at,
            }
            for s in self.scores
        ]
        return pd.DataFrame(rows, columns=RECORD_COLUMNS)

    def table(self) -> pd.DataFrame:
        return summarize(self.records(), self.lower_better, list(self.metrics), self.convention)


RECORD_COLUMNS = [
    "task",
    "dataset",
    "degradation",
    "config_key",
    "model",
    "image",
    "metric",
    "value",
    "runtime_s",
    "device",
    "code_version",
    "created_at",
]


# ---------------------------------------------------------------- running


def run_leaderboard(
    task: str,
    dataset: str,
    degradation: str,
    models: Sequence[str],
    metrics: Sequence[str] | None = None,
    *,
    seed: int = 0,
    root: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
    output_dir: str | os.PathLike | None = None,
) -> LeaderboardRun:
    """Degrade each image of `dataset`, run every model (plus the baselines), score it.

    `output_dir`, when given, receives ``<image>/gt.png``, ``<image>/lq.png`` and
    ``<image>/<model>.png`` (8-bit RGB, exactly what was scored).
    """
    report = progress or (lambda fraction, message: None)
    row, scale, data = _inputs(task, dataset, degradation, seed, root)
    scorers = _metrics(metrics or DEFAULT_METRICS[task], scale)
    names = with_baselines(models, scale)
    runners, outcomes = _prepare(task, names, scale)
    out = Path(output_dir) if output_dir is not None else None
    run = _new_run(task, data, row, scale, scorers, out)
    samples = list(data)
    if not samples:
        raise LeaderboardError(f"{dataset} holds no images.")
    steps, done = len(samples) * max(len(runners), 1), 0
    for sample in samples:
        gt, lq, run.samples[sample.name] = _degraded(row, sample)
        _save(out, sample.name, {"gt": gt, "lq": _eight_bit(lq)})
        for model in list(runners):
            report(done / steps, f"{sample.name}: {model}")
            scores = _score_one(runners[model], model, lq, gt, scorers, outcomes, out)
            if scores is None:  # failed on this image: drop the model's rows altogether
                del runners[model]
                run.scores = [s for s in run.scores if s.model != model]
            else:
                run.scores += scores
            done += 1
    run.models = [outcomes[name] for name in names]
    report(1.0, "done")
    return run


def _inputs(
    task: str, dataset: str, degradation: str, seed: int, root: str | os.PathLike | None
) -> tuple[Any, int, Any]:
    """The checked degradation row, its scale and the dataset of a run."""
    from evaluation.datasets import load_dataset
    from evaluation.degradations import create_degradation

    _check_task(task)
    row = create_degradation(degradation, seed=seed)
    if row.task != "sr":
        raise LeaderboardError(f"{degradation} makes {row.task} inputs, not {task} inputs.")
    return row, int(getattr(row, "scale", 1)), load_dataset(dataset, root)


def with_baselines(models: Iterable[str], scale: int) -> list[str]:
    """The asked models (duplicates dropped, order kept) plus this scale's baselines."""
    baselines = ["bicubic", "lanczos"] if scale > 1 else [IDENTITY]
    return list(dict.fromkeys([*models, *baselines]))


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise LeaderboardError(f"Unknown task {task!r}; leaderboards exist for {', '.join(TASKS)}.")


def _metrics(names: Sequence[str], scale: int) -> dict[str, Any]:
    from evaluation.metrics import create_metric, metric_available

    scorers = {}
    for name in dict.fromkeys(names):
        ok, why = metric_available(name)
        if not ok:
            raise LeaderboardError(why)
        border = {"crop_border": scale} if name in SCALE_CROPPED else {}
        scorers[name] = create_metric(name, **border)
    if not scorers:
        raise LeaderboardError("Choose at least one metric.")
    return scorers


Runner = Callable[[Picture], Picture]


def _prepare(
    task: str, names: list[str], scale: int
) -> tuple[dict[str, tuple[Runner, str]], dict[str, ModelOutcome]]:
    """Runners (and their device) for the models that can run; an outcome for every one."""
    runners: dict[str, tuple[Runner, str]] = {}
    outcomes: dict[str, ModelOutcome] = {}
    for name in names:
        try:
            runner, device = _runner(task, name, scale)
        except _Unavailable as why:
            outcomes[name] = ModelOutcome(name, "unavailable", str(why))
            continue
        runners[name] = (runner, device)
        outcomes[name] = ModelOutcome(name, "ok", device=device)
    return runners, outcomes


class _Unavailable(Exception):
    pass


def _runner(task: str, model: str, scale: int) -> tuple[Runner, str]:
    if model == IDENTITY:
        return (lambda picture: picture), "none"
    from pipelines import tasks
    from pipelines.backends import load_restorer
    from pipelines.registry import lookup
    from pipelines.weights import card_state

    problem = _scale_problem(task, model, scale)
    if problem:
        raise _Unavailable(problem)
    card = lookup(model)
    state = card_state(card)
    if not state.usable:
        raise _Unavailable(f"{state.state}: {state.detail}")
    try:  # loading first keeps model loading out of the timed calls
        load_restorer(card, scale)
    except RestorationError as error:
        raise _Unavailable(str(error)) from None
    if task == "anime":
        return (lambda p: tasks.anime_upscale(p, model, scale=scale)), device_label(card)
    return (lambda p: tasks.super_resolution(p, model, outscale=scale)), device_label(card)


def _scale_problem(task: str, model: str, scale: int) -> str:
    """Why `model` cannot run at `scale` ("" when it can); an unknown id or a model of
    another task is the caller's mistake: it raises."""
    if model == IDENTITY:
        return ""
    from pipelines.registry import lookup

    card = lookup(model)
    if task not in card.tasks and model not in ("bicubic", "lanczos"):
        raise InvalidOptionError(f"{card.title} ({model}) is not a {TASKS[task]} model.")
    if scale not in card.scales:
        offered = ", ".join(f"x{s}" for s in card.scales)
        return f"offers {offered}, not the x{scale} of this degradation"
    return ""


def _degraded(row: Any, sample: Any) -> tuple[Picture, Picture, dict[str, Any]]:
    """(GT as scored, LQ model input, the degradation's params) for one dataset sample."""
    degraded = row.apply(sample.gt, key=sample.name)
    gt = _eight_bit(sample.gt.with_pixels(degraded.gt, None))
    return gt, sample.gt.with_pixels(degraded.lq, None), degraded.params


def _score_one(
    entry: tuple[Runner, str],
    model: str,
    lq: Picture,
    gt: Picture,
    scorers: dict[str, Any],
    outcomes: dict[str, ModelOutcome],
    out: Path | None,
) -> list[Score] | None:
    runner, device = entry
    started = time.perf_counter()
    try:
        result = runner(lq)
    except (RestorationError, MemoryError) as error:
        outcomes[model] = ModelOutcome(model, "failed", f"{lq.name}: {error}", device)
        return None
    seconds = time.perf_counter() - started
    output = _eight_bit(result)
    if output.rgb.shape != gt.rgb.shape:
        reason = f"{lq.name}: output {output.width}x{output.height}, GT {gt.width}x{gt.height}"
        outcomes[model] = ModelOutcome(model, "failed", reason, device)
        return None
    _save(out, lq.name, {model: output})
    return [
        Score(model, lq.name, name, float(metric(output.rgb, gt.rgb)), seconds, device)
        for name, metric in scorers.items()
    ]


def _eight_bit(picture: Picture) -> Picture:
    """RGB rounded to 8-bit levels, as the PNG the score is reproducible from."""
    rgb = np.round(np.clip(picture.rgb, 0.0, 1.0) * 255.0) / 255.0
    plain = dataclasses.replace(picture, grayscale=False, bit_depth=8, icc_profile=None)
    return plain.with_pixels(rgb.astype(np.float32), None)


def _save(folder: Path | None, image: str, pictures: dict[str, Picture]) -> None:
    if folder is None:
        return
    from pipelines.images import save_png

    target = folder / image
    target.mkdir(parents=True, exist_ok=True)
    for name, picture in pictures.items():
        save_png(picture, target / f"{name}.png")


def _new_run(
    task: str, data: Any, row: Any, scale: int, scorers: dict[str, Any], out: Path | None
) -> LeaderboardRun:
    metrics = {name: metric.describe() for name, metric in scorers.items()}
    info = data.describe()
    config = {
        "task": task,
        "dataset": dataset_label(info),
        "degradation": row.name,
        "degradation_settings": row.settings(),
        "seed": row.seed,
    }
    return LeaderboardRun(
        task=task,
        dataset=config["dataset"],
        dataset_info=info,
        degradation=row.name,
        degradation_settings=row.describe(),
        seed=row.seed,
        scale=scale,
        metrics=metrics,
        models=[],
        scores=[],
        samples={},
        code_version=code_version(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        output_dir=out,
        convention=convention(metrics, scale),
        config=config,
    )


# ---------------------------------------------------------------- queued runs (jobs/)


@dataclass(frozen=True)
class PairResult:
    """One (model, image) pair scored on its own, as a queued job hands it back."""

    outcome: ModelOutcome
    scores: list[Score]
    sample: dict[str, Any]  # the degradation's full params for this image


def plan_run(
    task: str,
    dataset: str,
    degradation: str,
    models: Sequence[str],
    metrics: Sequence[str] | None = None,
    *,
    seed: int = 0,
    root: str | os.PathLike | None = None,
) -> tuple[LeaderboardRun, list[str], list[str]]:
    """What `run_leaderboard` would run, checked the same way but not run: the empty run,
    the models to score (baselines included) and the image names. Models lacking the
    degradation's scale are recorded unavailable at once, as a local run records them."""
    row, scale, data = _inputs(task, dataset, degradation, seed, root)
    run = _new_run(task, data, row, scale, _metrics(metrics or DEFAULT_METRICS[task], scale), None)
    if not data.names:
        raise LeaderboardError(f"{dataset} holds no images.")
    names = with_baselines(models, scale)
    problems = {name: _scale_problem(task, name, scale) for name in names}
    run.models = [
        ModelOutcome(name, "unavailable", why) if why else ModelOutcome(name, "queued")
        for name, why in problems.items()
    ]
    return run, [name for name in names if not problems[name]], list(data.names)


def score_pair(
    task: str,
    dataset: str,
    degradation: str,
    image: str,
    metrics: Sequence[str],
    model: str,
    *,
    seed: int = 0,
    root: str | os.PathLike | None = None,
) -> PairResult:
    """One model on one image of a run, exactly as `run_leaderboard` scores it."""
    from evaluation.datasets import load_dataset
    from evaluation.degradations import create_degradation

    row = create_degradation(degradation, seed=seed)
    scale = int(getattr(row, "scale", 1))
    data = load_dataset(dataset, root)
    entries = tuple(e for e in data.entries if e.name == image)
    if not entries:
        raise LeaderboardError(f"{dataset} has no image named {image!r}.")
    sample = next(iter(dataclasses.replace(data, entries=entries, problems=())))
    gt, lq, params = _degraded(row, sample)
    scorers = _metrics(metrics, scale)
    try:
        entry = _runner(task, model, scale)
    except _Unavailable as why:
        return PairResult(ModelOutcome(model, "unavailable", str(why)), [], params)
    outcomes = {model: ModelOutcome(model, "ok", device=entry[1])}
    scores = _score_one(entry, model, lq, gt, scorers, outcomes, None)
    return PairResult(outcomes[model], scores or [], params)


def fill_run(
    run: LeaderboardRun,
    models: Sequence[str],
    images: Sequence[str],
    results: dict[tuple[str, str], PairResult],
) -> list[str]:
    """Put the pairs finished so far into `run`, as a local run would hold them: a model
    counts once all its images are scored (a failure or unavailability on any image drops
    its rows, with that reason). Returns the models finished, ok or not."""
    outcomes = {m.model: m for m in run.models}
    for model in models:
        mine = [results.get((model, image)) for image in images]
        bad = next((r for r in mine if r is not None and r.outcome.status != "ok"), None)
        if bad is not None:
            outcomes[model] = bad.outcome
        elif all(r is not None for r in mine):
            outcomes[model] = mine[0].outcome
    done = [m for m in models if outcomes[m].status != "queued"]
    run.scores = []
    for image in images:
        for model in models:
            if outcomes[model].status == "ok":
                run.scores += results[(model, image)].scores
        found = [results[(m, image)] for m in models if (m, image) in results]
        if found:
            run.samples[image] = found[0].sample
    run.models = [outcomes[m.model] for m in run.models]
    return done


def dataset_label(info: dict[str, Any]) -> str:
    """``builtin``, ``set5``…; a local folder is told apart by its folder name."""
    if info["name"] == "folder":
        return f"folder:{Path(info['root']).name}"
    return str(info["name"])


def config_key(config: dict[str, Any]) -> str:
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_CHANNELS = {
    ("y", "ycbcr"): "Y of BT.601 YCbCr",
    ("y", "yiq"): "Y of YIQ",
    ("chroma", "cielab"): "CIELAB a*b*",
}


def convention(metrics: dict[str, dict[str, Any]], scale: int) -> str:
    """One line stating how the table was measured, for its header."""
    parts = []
    for name, d in metrics.items():
        settings = d["settings"]
        where = _CHANNELS.get((settings["channel"], settings["colour_space"]), "RGB")
        border = settings.get("crop_border") or 0
        arrow = "lower is better" if d["lower_better"] else "higher is better"
        cropped = f", {border} px border cropped" if border else ""
        parts.append(f"{name}: {where}{cropped}, {arrow}")
    head = f"x{scale}; " if scale > 1 else ""
    return (
        f"{head}outputs rounded to 8-bit and scored against the modcropped GT "
        f"(MATLAB bicubic degradation where bicubic); " + "; ".join(parts) + "."
    )


@functools.cache
def code_version() -> str:
    """``git describe --always --dirty`` of the repository, else the package version."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    import tomllib

    try:
        project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
        return f"{project['name']} {project['version']}"
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


# ---------------------------------------------------------------- tables


def summarize(
    records: pd.DataFrame,
    lower_better: dict[str, bool],
    order: Sequence[str] = (),
    header: str = "",
) -> pd.DataFrame:
    """Per-image records -> one row per (model, dataset, degradation): the mean of each
    metric, the mean runtime and the image count, sorted by the primary metric (the first
    of `order` present) using its `lower_better` flag. `attrs` carry `lower_better`,
    `primary` and `convention`."""
    metrics = [m for m in dict.fromkeys([*order, *sorted(lower_better)]) if m in lower_better]
    metrics = [m for m in metrics if m in set(records["metric"])]
    if records.empty or not metrics:
        table = pd.DataFrame(columns=[*KEY_COLUMNS, *metrics, "runtime_s", "images"])
    else:
        table = _means(records, metrics)
    primary = metrics[0] if metrics else None
    if primary is not None and not table.empty:
        table = table.sort_values(
            ["dataset", "degradation", primary],
            ascending=[True, True, lower_better[primary]],
            na_position="last",
            kind="stable",
        ).reset_index(drop=True)
    table.attrs = {
        "lower_better": {m: lower_better[m] for m in metrics},
        "primary": primary,
        "convention": header,
    }
    return table


def _means(records: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    values = records.pivot_table(
        index=KEY_COLUMNS, columns="metric", values="value", aggfunc="mean"
    )
    per_image = records.drop_duplicates(["config_key", "model", "image"])
    grouped = per_image.groupby(KEY_COLUMNS)
    extra = pd.DataFrame(
        {
            "runtime_s": grouped["runtime_s"].mean(),
            "images": grouped["image"].size(),
            "device": grouped["device"].agg(lambda s: ", ".join(sorted(set(s)))),
            "code_version": grouped["code_version"].agg(lambda s: ", ".join(sorted(set(s)))),
        }
    )
    table = values.reindex(columns=metrics).join(extra).reset_index()
    table.columns.name = None
    return table


# ---------------------------------------------------------------- the store


def default_db() -> Path:
    raw = os.environ.get(DB_ENV, "").strip()
    return Path(raw).expanduser() if raw else DEFAULT_DB


class LeaderboardStore:
    """Runs and per-image results in SQLite (tables ``runs``, ``metrics``, ``samples``,
    ``results``); safe to share between processes (SQLite locks the file while saving)."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else default_db()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(
            f"sqlite:///{self.path}", connect_args={"timeout": 30}, poolclass=NullPool
        )
        _META.create_all(self.engine)

    def save(self, run: LeaderboardRun) -> int:
        """Store `run` in one transaction; returns how many result rows were written."""
        measured = [m.model for m in run.models if m.status == "ok"]
        with self.engine.begin() as conn:
            run_id = _upsert_run(conn, run)
            _upsert_metrics(conn, run_id, run.metrics)
            _upsert_samples(conn, run_id, run.samples)
            conn.execute(
                RESULTS.delete().where(RESULTS.c.run_id == run_id, RESULTS.c.model.in_(measured))
            )
            rows = [
                {
                    **dataclasses.asdict(s),
                    "run_id": run_id,
                    "code_version": run.code_version,
                    "created_at": run.created_at,
                }
                for s in run.scores
            ]
            if rows:
                conn.execute(RESULTS.insert(), rows)
        return len(rows)

    def records(
        self, task: str | None = None, dataset: str | None = None, degradation: str | None = None
    ) -> pd.DataFrame:
        """The stored per-image rows (filtered), with their configuration."""
        query = sa.select(
            RUNS.c.task,
            RUNS.c.dataset,
            RUNS.c.degradation,
            RUNS.c.config_key,
            *(RESULTS.c[name] for name in RECORD_COLUMNS[4:]),
        ).join(RUNS, RUNS.c.id == RESULTS.c.run_id)
        for column, value in (("task", task), ("dataset", dataset), ("degradation", degradation)):
            if value:
                query = query.where(RUNS.c[column] == value)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(RESULTS.c.id)).mappings().all()
        return pd.DataFrame([dict(r) for r in rows], columns=RECORD_COLUMNS)

    def table(
        self, task: str | None = None, dataset: str | None = None, degradation: str | None = None
    ) -> pd.DataFrame:
        """The leaderboard of the stored rows: see `summarize`."""
        records = self.records(task, dataset, degradation)
        keys = sorted(set(records["config_key"]))
        with self.engine.connect() as conn:
            runs = conn.execute(
                sa.select(RUNS.c.id, RUNS.c.convention).where(RUNS.c.config_key.in_(keys))
            ).all()
            metric_rows = conn.execute(
                sa.select(METRICS.c.metric, METRICS.c.position, METRICS.c.lower_better).where(
                    METRICS.c.run_id.in_([r.id for r in runs])
                )
            ).all()
        lower_better = {r.metric: bool(r.lower_better) for r in metric_rows}
        order = [r.metric for r in sorted(metric_rows, key=lambda r: (r.position, r.metric))]
        header = " | ".join(dict.fromkeys(r.convention for r in runs))
        return summarize(records, lower_better, order, header)

    def runs(self) -> pd.DataFrame:
        """One row per stored configuration (what was run, how, with which models)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(RUNS).order_by(RUNS.c.id)).mappings().all()
        return pd.DataFrame([dict(r) for r in rows])

    def count(self) -> int:
        """How many per-image result rows the store holds."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(RESULTS)).scalar())


_META = sa.MetaData()
RUNS = sa.Table(
    "runs",
    _META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("config_key", sa.String(32), nullable=False, unique=True),
    sa.Column("task", sa.String, nullable=False),
    sa.Column("dataset", sa.String, nullable=False),
    sa.Column("degradation", sa.String, nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("config", sa.Text, nullable=False),  # JSON: what config_key hashes
    sa.Column("degradation_settings", sa.Text, nullable=False),  # JSON
    sa.Column("dataset_info", sa.Text, nullable=False),  # JSON
    sa.Column("convention", sa.Text, nullable=False),
    sa.Column("models", sa.Text, nullable=False),  # JSON: the last run's ModelOutcomes
    sa.Column("code_version", sa.String, nullable=False),
    sa.Column("updated_at", sa.String, nullable=False),
)
METRICS = sa.Table(
    "metrics",
    _META,
    sa.Column("run_id", sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("metric", sa.String, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("lower_better", sa.Boolean, nullable=False),
    sa.Column("description", sa.Text, nullable=False),  # JSON: Metric.describe()
)
SAMPLES = sa.Table(
    "samples",
    _META,
    sa.Column("run_id", sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("image", sa.String, primary_key=True),
    sa.Column("params", sa.Text, nullable=False),  # JSON: the degradation's full params
)
RESULTS = sa.Table(
    "results",
    _META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("model", sa.String, nullable=False),
    sa.Column("image", sa.String, nullable=False),
    sa.Column("metric", sa.String, nullable=False),
    sa.Column("value", sa.Float),  # SQLite keeps inf (an identical image's PSNR)
    sa.Column("runtime_s", sa.Float, nullable=False),
    sa.Column("device", sa.String, nullable=False),
    sa.Column("code_version", sa.String, nullable=False),
    sa.Column("created_at", sa.String, nullable=False),
    sa.Index("results_by_model", "run_id", "model"),
)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _upsert_run(conn: sa.Connection, run: LeaderboardRun) -> int:
    values = {
        "config_key": run.key,
        "task": run.task,
        "dataset": run.dataset,
        "degradation": run.degradation,
        "seed": run.seed,
        "config": _json(run.config),
        "degradation_settings": _json(run.degradation_settings),
        "dataset_info": _json(run.dataset_info),
        "convention": run.convention,
        "models": _json([dataclasses.asdict(m) for m in run.models]),
        "code_version": run.code_version,
        "updated_at": run.created_at,
    }
    found = conn.execute(sa.select(RUNS.c.id).where(RUNS.c.config_key == run.key)).scalar()
    if found is None:
        return int(conn.execute(RUNS.insert().values(values)).inserted_primary_key[0])
    conn.execute(RUNS.update().where(RUNS.c.id == found).values(values))
    return int(found)


def _upsert_metrics(conn: sa.Connection, run_id: int, metrics: dict[str, dict]) -> None:
    names = list(metrics)
    conn.execute(METRICS.delete().where(METRICS.c.run_id == run_id, METRICS.c.metric.in_(names)))
    conn.execute(
        METRICS.insert(),
        [
            {
                "run_id": run_id,
                "metric": name,
                "position": i,
                "lower_better": bool(d["lower_better"]),
                "description": _json(d),
            }
            for i, (name, d) in enumerate(metrics.items())
        ],
    )


def _upsert_samples(conn: sa.Connection, run_id: int, samples: dict[str, dict]) -> None:
    if not samples:
        return
    images = list(samples)
    conn.execute(SAMPLES.delete().where(SAMPLES.c.run_id == run_id, SAMPLES.c.image.in_(images)))
    conn.execute(
        SAMPLES.insert(),
        [{"run_id": run_id, "image": k, "params": _json(v)} for k, v in samples.items()],
    )


def leaderboard_table(
    task: str | None = None,
    dataset: str | None = None,
    degradation: str | None = None,
    *,
    db: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """The stored leaderboard: one row per (model, dataset, degradation), filtered."""
    return LeaderboardStore(db).table(task, dataset, degradation)


def to_json_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-safe dicts (an infinite PSNR becomes the string "inf")."""
    return [{k: _json_safe(v) for k, v in row.items()} for row in table.to_dict("records")]


def _json_safe(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def table_json(table: pd.DataFrame, run: LeaderboardRun | None = None) -> dict[str, Any]:
    """The table with its convention and metric directions (and the run's details)."""
    document: dict[str, Any] = {
        "convention": table.attrs.get("convention", ""),
        "primary": table.attrs.get("primary"),
        "lower_better": table.attrs.get("lower_better", {}),
        "rows": to_json_records(table),
    }
    if run is not None:
        document["run"] = {
            "config_key": run.key,
            "config": run.config,
            "code_version": run.code_version,
            "created_at": run.created_at,
            "models": [dataclasses.asdict(m) for m in run.models],
            "metrics": run.metrics,
            "dataset": run.dataset_info,
            "degradation": run.degradation_settings,
            "samples": run.samples,
        }
    return document


def write_exports(
    table: pd.DataFrame,
    folder: str | os.PathLike,
    run: LeaderboardRun | None = None,
    *,
    plots: bool = True,
) -> dict[str, Path]:
    """``leaderboard.csv``, ``leaderboard.json`` and (with `plots`) one HTML file per chart."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = {"csv": folder / "leaderboard.csv", "json": folder / "leaderboard.json"}
    table.to_csv(written["csv"], index=False)
    written["json"].write_text(json.dumps(table_json(table, run), indent=1, default=str))
    if plots:
        from evaluation.plots import all_figures

        for name, figure in all_figures(table).items():
            path = folder / f"{name}.html"
            # one plotly.min.js beside the pages: they open offline without 4 MB each
            figure.write_html(path, include_plotlyjs="directory", full_html=True)
            written[name] = path
    return written
