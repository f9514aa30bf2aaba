"""Evaluation tab: run a leaderboard, read the stored one, drill into an image, export."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from evaluation import leaderboard as lb
from evaluation.datasets import DATASETS, DATASETS_DIR_ENV, datasets_dir
from evaluation.degradations import DEGRADATIONS
from evaluation.metrics import METRICS
from pipelines.errors import RestorationError
from pipelines.gpu import on_gpu
from pipelines.registry import cards_for
from pipelines.weights import REPO_ROOT, cache_dir, card_state
from ui import common

BASELINES = ("bicubic", "lanczos")
PREFERRED = ("span-x4-ch48",)


def _model_choices(task: str) -> list[tuple[str, str]]:
    """Usable models of the task; the baselines are always run, so they are not offered."""
    return [
        (f"{card.title} ({card.id})", card.id)
        for card in cards_for(task)  # type: ignore[arg-type]
        if card.id not in BASELINES and card_state(card).usable
    ]


def refreshed_models(task: str, current: list[str] | None) -> dict:
    """The models menu for ``task`` as the machine is now (weights may have been placed,
    downloaded or added since start-up), keeping the picks that still apply."""
    choices = _model_choices(task)
    offered = {model_id for _, model_id in choices}
    kept = [m for m in current or [] if m in offered]
    return gr.update(choices=choices, value=kept or [m for m in PREFERRED if m in offered])


def _degradations() -> list[str]:
    return [row.name for row in DEGRADATIONS if row.task == "sr"]


def styled(table: pd.DataFrame) -> Any:
    """The table with each metric's best mean in bold green, by its `lower_better` flag."""
    if table.empty:
        return table
    styler = table.style.format(precision=4)
    best = "font-weight: bold; background-color: #d9f2d9"
    for metric, lower in table.attrs.get("lower_better", {}).items():
        if metric in table:
            highlight = styler.highlight_min if lower else styler.highlight_max
            styler = highlight(subset=[metric], props=best)
    return styler


def _header(table: pd.DataFrame, notes: list[str] | None = None) -> str:
    if table.empty:
        return "No stored results for this selection yet."
    arrows = ", ".join(
        f"`{m}` {'↓' if low else '↑'}" for m, low in table.attrs["lower_better"].items()
    )
    lines = [
        f"**Convention:** {table.attrs.get('convention', '')}",
        f"Best per column highlighted ({arrows}).",
    ]
    return "\n\n".join(lines + (notes or []))


def _charts(table: pd.DataFrame) -> tuple[Any, Any]:
    from evaluation import plots

    return plots.bars_overview(table), plots.quality_vs_time(table)


@on_gpu
def evaluate(
    task: str,
    dataset: str,
    degradation: str,
    models: list[str] | None,
    metrics: list[str] | None,
    seed: float = 0,
    dataset_dir: str = "",
    progress: gr.Progress = gr.Progress(),
) -> tuple[str, Any, list[dict[str, Any]], Any, Any, list[str], dict, str]:
    """Run a leaderboard (the baselines are always added) and store it.

    Returns (header, table, the table as records, bar charts, quality-vs-time chart,
    [CSV, JSON] files, image menu, run folder). The table is the stored leaderboard of
    this task, dataset and degradation, so it includes earlier runs' other models.
    """
    root = served_dataset_folder(dataset_dir)
    folder = common.output_root() / "evaluation" / uuid.uuid4().hex
    report = common.gradio_progress(progress, "Evaluation")
    try:
        run = lb.run_leaderboard(
            task,
            dataset,
            degradation,
            list(models or []),
            list(metrics or []) or None,
            seed=int(seed or 0),
            root=root,
            progress=report,
            output_dir=folder / "images",
        )
        store = lb.LeaderboardStore()
        store.save(run)
        table = store.table(run.task, run.dataset, run.degradation)
    except RestorationError as error:
        raise gr.Error(str(error)) from None
    files = lb.write_exports(table, folder, run, plots=False)
    notes = [f"*{m.model}: {m.status} — {m.reason}*" for m in run.models if m.status != "ok"]
    images = list(run.samples)
    menu = gr.update(choices=images, value=images[0] if images else None)
    bars, scatter = _charts(table)
    return (
        _header(table, notes),
        styled(table),
        lb.to_json_records(table),
        bars,
        scatter,
        [str(files["csv"]), str(files["json"])],
        menu,
        str(folder),
    )


def dataset_roots() -> list[Path]:
    """The only folders the served app reads datasets from: ``$RESTORATION_DATASETS_DIR``
    (default ``datasets/`` in the repository) and the downloaded sets' cache."""
    return [(datasets_dir() or REPO_ROOT / "datasets").resolve(), (cache_dir() / "datasets")]


def served_dataset_folder(text: str) -> str | None:
    """A user's dataset folder, refused unless it lies inside ``dataset_roots()``: a
    request must never make the server read images from anywhere else."""
    if not (text or "").strip():
        return None
    roots = dataset_roots()
    folder = Path(text.strip()).expanduser()
    candidates = [folder] if folder.is_absolute() else [root / folder for root in roots]
    for candidate in candidates:
        resolved = candidate.resolve()
        if any(resolved.is_relative_to(root) for root in roots):
            return str(resolved)
    listed = " or ".join(str(root) for root in roots)
    raise gr.Error(
        f"The server reads datasets only from {listed}; put the folder there (a relative "
        f"name is looked up there) or set {DATASETS_DIR_ENV} before starting the app."
    )


def leaderboard(
    task: str = "", dataset: str = "", degradation: str = ""
) -> tuple[str, Any, list[dict[str, Any]], Any, Any]:
    """The stored leaderboard ("" = any task / dataset / degradation).

    Returns (header, table, the table as records, bar charts, quality-vs-time chart).
    """
    try:
        table = lb.leaderboard_table(task or None, dataset or None, degradation or None)
    except RestorationError as error:
        raise gr.Error(str(error)) from None
    bars, scatter = _charts(table)
    return _header(table), styled(table), lb.to_json_records(table), bars, scatter


def drill_down(image: str | None, folder: str | None) -> list[tuple[str, str]]:
    """GT, LQ and every model's output of one image of the last run, side by side."""
    if not image or not folder:
        return []
    root = common.output_root().resolve()
    target = (Path(folder) / "images" / image).resolve()
    if not target.is_relative_to(root) or not target.is_dir():
        return []
    first = [("gt.png", "GT (reference)"), ("lq.png", "LQ (input)")]
    items = [(str(target / name), label) for name, label in first if (target / name).is_file()]
    outputs = sorted(p for p in target.glob("*.png") if p.name not in ("gt.png", "lq.png"))
    return items + [(str(p), p.stem) for p in outputs]


def build(tab: gr.Tab | None = None) -> Callable[[gr.Blocks], None]:
    """Lay out the tab; returns a function that wires showing the stored table on page load.

    Selecting ``tab`` (or changing the task) rebuilds the models menu."""
    metric_names = METRICS.names()
    choices = _model_choices("sr")
    offered = {model_id for _, model_id in choices}
    preferred = [m for m in PREFERRED if m in offered]
    with gr.Row():
        with gr.Column(scale=1):
            task = gr.Dropdown(list(lb.TASKS), value="sr", label="Task")
            dataset = gr.Dropdown([c.id for c in DATASETS], value="builtin", label="Dataset")
            dataset_dir = gr.Textbox(
                label="Dataset folder (folder dataset / local copy of a standard set)",
                placeholder="optional: a folder name inside the datasets folder",
                info=f"Read only from {dataset_roots()[0]} (${DATASETS_DIR_ENV}) or the cache.",
            )
            degradation = gr.Dropdown(_degradations(), value="bicubic_x4", label="Degradation")
            seed = gr.Number(0, precision=0, label="Seed", minimum=0)
            models = gr.Dropdown(
                choices,
                value=preferred,
                multiselect=True,
                allow_custom_value=True,
                label="Models (bicubic and Lanczos baselines are always included)",
            )
            metrics = gr.Dropdown(
                metric_names,
                value=list(lb.DEFAULT_METRICS["sr"]),
                multiselect=True,
                label="Metrics",
            )
            run = gr.Button("Run evaluation", variant="primary")
            show = gr.Button("Show stored leaderboard")
        with gr.Column(scale=3):
            header = gr.Markdown("Run an evaluation or show the stored leaderboard.")
            table = gr.Dataframe(label="Leaderboard", interactive=False, wrap=True)
            records = gr.JSON(label="Table as records", visible=False)
            with gr.Row():
                bars = gr.Plot(label="Metrics")
                scatter = gr.Plot(label="Quality vs time")
            files = gr.File(label="Export (CSV, JSON)", file_count="multiple")
            with gr.Row():
                image = gr.Dropdown([], label="Drill down: image of the last run")
            gallery = gr.Gallery(label="GT, input and outputs", columns=5, height="auto")
    folder = gr.State("")
    run.click(
        evaluate,
        [task, dataset, degradation, models, metrics, seed, dataset_dir],
        [header, table, records, bars, scatter, files, image, folder],
        api_name="evaluate",
        concurrency_id=common.MODEL_CONCURRENCY_ID,
    ).then(drill_down, [image, folder], gallery, api_visibility="private")
    show.click(
        leaderboard,
        [task, dataset, degradation],
        [header, table, records, bars, scatter],
        api_name="leaderboard",
    )
    image.change(drill_down, [image, folder], gallery, api_visibility="private", queue=False)
    private = {"api_visibility": "private", "queue": False}
    task.change(refreshed_models, [task, models], models, **private)
    if tab is not None:
        tab.select(refreshed_models, [task, models], models, **private)

    def on_load(demo: gr.Blocks) -> None:
        demo.load(
            leaderboard,
            [task, dataset, degradation],
            [header, table, records, bars, scatter],
            api_visibility="private",
        )

    return on_load
