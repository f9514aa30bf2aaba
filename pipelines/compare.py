"""Compare: several models, or one option swept over values, on one image, scored.

    plan = plan_compare("sr", picture, ["span-x4-ch48", "bicubic"], reference=ref)
    for pane in run_compare(plan, picture, out_dir, reference=ref):   # one per variant,
        print(pane.label, pane.scores)                                # as each is ready
    run = CompareRun(plan, panes, ...); run.table(); crop_strip(run, region)

Variants run one after another, model by model, so each model is loaded once (from
the backends' caches) and the torch model cache's memory budget holds; options that
pick other weights (waifu2x's noise levels are separate networks) load each once.
Each output is written as a PNG and scored on that file as ``python -m evaluation
score`` reads it, so the table's values equal the command's on the same files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.backends import ProgressFn, device_label, no_progress
from pipelines.errors import InvalidOptionError, RestorationError
from pipelines.images import Picture, load_image, save_png
from pipelines.registry import TASK_TITLES, ModelCard, lookup

COMPARE_TASKS = ("sr", "anime", "colorize", "inpaint")
SWEEPABLE: dict[str, dict[str, type]] = {
    "sr": {"noise": int, "outscale": float},
    "anime": {"noise": int, "scale": int},
    "colorize": {"render_factor": int},
    "inpaint": {"dilate": int},
}
"""The options a sweep may vary, per task, with the type of their values."""
TASK_OPTIONS: dict[str, tuple[str, ...]] = {
    "sr": ("outscale", "noise"),
    "anime": ("scale", "noise"),
    "colorize": ("render_factor",),
    "inpaint": ("mask", "dilate"),
}
"""The options every variant of a task shares (a sweep varies one of them)."""
MAX_VARIANTS = 16
NO_REFERENCE_METRICS = ("niqe", "niqe_matlab")
REFERENCE_METRICS: dict[str, tuple[str, ...]] = {
    "sr": ("psnr_y_sr", "ssim_y_sr", "lpips"),
    "anime": ("psnr_y_sr", "ssim_y_sr", "lpips"),
    "colorize": ("psnr", "ssim", "colorhist", "lpips"),
    "inpaint": ("psnr", "ssim", "lpips"),
}
SCALE_CROPPED = ("psnr_y_sr", "ssim_y_sr")
"""Metrics that crop a border of the SR scale, as the super-resolution literature does."""
STRIP_LABEL_HEIGHT = 22
STRIP_GAP = 4
DEFAULT_CROP_SIDE = 128


@dataclass(frozen=True)
class Sweep:
    """One option varied over a list of values, e.g. ``noise=-1,0,1,2,3``."""

    option: str
    values: tuple[float | int, ...]


@dataclass(frozen=True)
class Variant:
    """One run of the comparison: a model with the swept option's value (if any)."""

    model: str
    option: str = ""
    value: float | int | None = None

    @property
    def label(self) -> str:
        return f"{self.model} {self.option}={self.value:g}" if self.option else self.model

    @property
    def file_stem(self) -> str:
        return f"{self.model}_{self.option}_{self.value:g}" if self.option else self.model


@dataclass(frozen=True)
class ComparePlan:
    """What to run: validated variants, the options they share, the metrics and their border."""

    task: str
    variants: tuple[Variant, ...]
    options: dict[str, Any]
    metrics: tuple[str, ...]
    crop_border: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pane:
    """One variant's outcome: its PNG, size, runtime, peak memory and scores, or an error."""

    variant: Variant
    path: str = ""
    width: int = 0
    height: int = 0
    seconds: float | None = None
    peak_rss_mb: float | None = None
    peak_gpu_mb: float | None = None
    device: str = ""
    scores: dict[str, float | None] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    error: str = ""

    @property
    def label(self) -> str:
        return self.variant.label

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class CompareRun:
    """A finished (or partial) comparison: the plan, its panes and where its files are."""

    plan: ComparePlan
    panes: list[Pane]
    folder: str
    input_path: str
    image_name: str
    reference_path: str = ""
    metric_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def lower_better(self) -> dict[str, bool]:
        return {name: bool(info["lower_better"]) for name, info in self.metric_info.items()}

    def best(self) -> dict[str, str]:
        """The label of the best pane per metric (by the metric's ``lower_better``)."""
        return best_per_metric(self.panes, self.lower_better)

    def table(self) -> Any:
        return compare_table(self)

    def failed(self) -> list[Pane]:
        return [pane for pane in self.panes if not pane.ok]


# ---------------------------------------------------------------- planning


def parse_sweep(text: str, task: str) -> Sweep | None:
    """``"noise=-1,0,1"`` -> Sweep("noise", (-1, 0, 1)); an empty text is no sweep."""
    text = (text or "").strip()
    if not text:
        return None
    option, sep, raw = text.partition("=")
    return make_sweep(option.strip(), raw if sep else "", task)


def make_sweep(option: str, values: str | Sequence[float | int], task: str) -> Sweep:
    """A checked sweep of ``option`` over ``values`` (a comma-separated text or a list)."""
    offered = SWEEPABLE.get(task, {})
    if option not in offered:
        names = ", ".join(offered) or "none"
        raise InvalidOptionError(
            f"{option!r} cannot be swept for {TASK_TITLES.get(task, task)}; sweepable: {names}."
        )
    parts = values.split(",") if isinstance(values, str) else list(values)
    parsed = tuple(_option_value(option, offered[option], part) for part in parts if str(part))
    if not parsed:
        raise InvalidOptionError(f"Give the values to sweep, e.g. {option}=1,2,3.")
    if len(set(parsed)) != len(parsed):
        raise InvalidOptionError(f"The {option} sweep repeats a value: {values}.")
    return Sweep(option, parsed)


def _option_value(option: str, kind: type, text: Any) -> float | int:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise InvalidOptionError(f"{option} takes numbers, not {str(text).strip()!r}.") from None
    if not math.isfinite(value) or (kind is int and value != int(value)):
        raise InvalidOptionError(f"{option} takes whole numbers, not {str(text).strip()!r}.")
    return int(value) if kind is int else value


def plan_compare(
    task: str,
    picture: Picture,
    models: Sequence[str],
    *,
    sweep: Sweep | None = None,
    reference: Picture | None = None,
    options: dict[str, Any] | None = None,
    metrics: Sequence[str] | None = None,
) -> ComparePlan:
    """Check the request and settle the shared options (output scale, metrics)."""
    if task not in COMPARE_TASKS:
        raise InvalidOptionError(
            f"Unknown task {task!r}; compare offers {', '.join(COMPARE_TASKS)}."
        )
    cards = _cards(task, models)
    _check_options(task, options or {})
    if sweep is not None:
        _check_sweep(sweep, cards, options or {})
    variants = _variants(cards, sweep)
    shared = _shared_options(task, cards, picture, reference, dict(options or {}), sweep)
    # the SR convention's border is the scale the reference was made at (a swept scale
    # has outputs of other sizes, which a full-reference metric leaves unscored)
    scale = _scale_from(picture, reference) or shared.get("outscale") or shared.get("scale") or 1
    chosen, notes = _metrics(task, reference is not None, metrics)
    return ComparePlan(task, variants, shared, chosen, round(scale), notes)


def _cards(task: str, models: Sequence[str]) -> list[ModelCard]:
    ids = list(dict.fromkeys(m.strip() for m in models if m and m.strip()))
    if not ids:
        raise InvalidOptionError("Choose at least one model to compare.")
    cards = [lookup(model_id) for model_id in ids]
    for card in cards:
        if task not in card.tasks:
            raise InvalidOptionError(
                f"{card.title} ({card.id}) is not offered for {TASK_TITLES[task].lower()}."
            )
    return cards


def _check_options(task: str, options: dict[str, Any]) -> None:
    for name, value in options.items():
        if value is not None and name not in TASK_OPTIONS[task]:
            offered = ", ".join(TASK_OPTIONS[task])
            raise InvalidOptionError(
                f"{name} is not an option of {TASK_TITLES[task].lower()} (options: {offered})."
            )


def _check_sweep(sweep: Sweep, cards: list[ModelCard], options: dict[str, Any]) -> None:
    if options.get(sweep.option) is not None:
        raise InvalidOptionError(f"{sweep.option} is swept; do not also fix it.")
    if sweep.option != "noise":
        return
    for card in cards:
        wrong = [v for v in sweep.values if v not in card.noise_levels]
        if not card.noise_levels:
            raise InvalidOptionError(f"{card.title} has no noise levels to sweep.")
        if wrong:
            offered = ", ".join(str(n) for n in card.noise_levels)
            raise InvalidOptionError(f"{card.title} takes noise levels {offered}, not {wrong[0]}.")


def _variants(cards: list[ModelCard], sweep: Sweep | None) -> tuple[Variant, ...]:
    if sweep is None:
        variants = tuple(Variant(card.id) for card in cards)
    else:  # model-major: one model's values run back to back, so it is loaded once
        variants = tuple(
            Variant(card.id, sweep.option, value) for card in cards for value in sweep.values
        )
    if len(variants) > MAX_VARIANTS:
        raise InvalidOptionError(
            f"That is {len(variants)} runs; compare at most {MAX_VARIANTS} at once."
        )
    return variants


def _shared_options(
    task: str,
    cards: list[ModelCard],
    picture: Picture,
    reference: Picture | None,
    options: dict[str, Any],
    sweep: Sweep | None,
) -> dict[str, Any]:
    """Fill in the output scale so every output has one size (that of the reference)."""
    swept = sweep.option if sweep else ""
    if task == "sr" and swept != "outscale" and not options.get("outscale"):
        options["outscale"] = _scale_from(picture, reference) or _largest_scale(cards)
    if task == "anime" and swept != "scale" and not options.get("scale"):
        options["scale"] = int(_scale_from(picture, reference) or _largest_scale(cards))
    if task == "inpaint" and options.get("mask") is None:
        raise InvalidOptionError("Inpainting needs a mask (white = fill), the size of the image.")
    if reference is not None and swept not in ("outscale", "scale"):
        _check_reference_size(task, picture, reference, options)
    return {k: v for k, v in options.items() if v is not None}


def _scale_from(picture: Picture, reference: Picture | None) -> float | None:
    if reference is None:
        return None
    return reference.width / picture.width


def _largest_scale(cards: list[ModelCard]) -> int:
    """The largest native scale of the learned models (baselines follow them)."""
    learned = [card for card in cards if card.backend != "classical"] or cards
    return max(card.native_scale for card in learned)


def _check_reference_size(
    task: str, picture: Picture, reference: Picture, options: dict[str, Any]
) -> None:
    factor = float(options.get("outscale") or options.get("scale") or 1)
    size = (max(1, round(picture.width * factor)), max(1, round(picture.height * factor)))
    if size != (reference.width, reference.height):
        raise InvalidOptionError(
            f"The reference is {reference.width}x{reference.height} but the outputs will be "
            f"{size[0]}x{size[1]} ({picture.width}x{picture.height} x{factor:g}); "
            "give a reference of the output size."
        )


def _metrics(
    task: str, has_reference: bool, asked: Sequence[str] | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The metrics to score: the asked ones (all must work), or the task's defaults that do."""
    from evaluation.metrics import METRICS, metric_available

    names = [m.strip() for m in asked or [] if m and m.strip()]
    if names:
        for name in names:
            spec = METRICS.get(name)
            if spec.needs_mask:
                raise InvalidOptionError(
                    f"{name} needs a mask of the scored pixels; compare has none."
                )
            if spec.needs_reference and not has_reference:
                raise InvalidOptionError(f"{name} compares against a reference: give one.")
            ok, why = metric_available(name)
            if not ok:
                raise InvalidOptionError(why)
        return tuple(dict.fromkeys(names)), ()
    defaults = list(NO_REFERENCE_METRICS)
    if has_reference:
        defaults = [*REFERENCE_METRICS[task], *defaults]
    chosen, notes = [], []
    for name in defaults:
        ok, why = metric_available(name)
        if ok:
            chosen.append(name)
        elif name != "niqe_matlab":  # an optional extra; its absence is no news
            # the first clause names the metric and why; the rest is how to fetch files
            notes.append(f"{name} not scored: {why.split(': ')[0]}.")
    return tuple(chosen), tuple(notes)


# ---------------------------------------------------------------- running


def run_compare(
    plan: ComparePlan,
    picture: Picture,
    folder: str | os.PathLike,
    *,
    reference: Picture | None = None,
    progress: ProgressFn = no_progress,
) -> Iterator[Pane]:
    """Run every variant in turn, yielding each pane as soon as it is written and scored.

    A variant that fails (model unavailable, option it lacks, out of memory) yields a
    pane with ``error`` set; the others still run.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    scorers = create_scorers(plan)
    total = len(plan.variants)
    for index, variant in enumerate(plan.variants):

        def report(fraction: float, message: str, index: int = index) -> None:
            done = (index + min(max(fraction, 0.0), 1.0)) / total
            progress(done, f"{plan.variants[index].label}: {message}")

        report(0.0, "starting")
        yield _run_variant(plan, variant, picture, out, reference, scorers, report)
    progress(1.0, "done")


def create_scorers(plan: ComparePlan) -> dict[str, Any]:
    from evaluation.metrics import create_metric

    return {
        name: create_metric(
            name, **({"crop_border": plan.crop_border} if name in SCALE_CROPPED else {})
        )
        for name in plan.metrics
    }


def _run_variant(
    plan: ComparePlan,
    variant: Variant,
    picture: Picture,
    out: Path,
    reference: Picture | None,
    scorers: dict[str, Any],
    progress: ProgressFn,
) -> Pane:
    card = lookup(variant.model)
    options = dict(plan.options)
    if variant.option:
        options[variant.option] = variant.value
    try:
        with peak_memory() as peak:
            preload(plan.task, card, options)
            started = time.perf_counter()
            result = run_task(plan.task, picture, variant.model, options, progress)
            seconds = time.perf_counter() - started
    except (RestorationError, MemoryError) as error:
        message = str(error) or "out of memory"
        return Pane(variant, device=device_label(card), error=message.splitlines()[0])
    path = save_png(result, out / f"{_safe_stem(variant.file_stem)}.png")
    scores, notes = score_file(path, reference, scorers)
    return Pane(
        variant,
        path=str(path),
        width=result.width,
        height=result.height,
        seconds=seconds,
        peak_rss_mb=peak.rss_mb,
        peak_gpu_mb=peak.gpu_mb,
        device=device_label(card),
        scores=scores,
        notes=notes,
    )


def _safe_stem(stem: str) -> str:
    """A file name from a label: custom model ids may hold any character."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", stem).strip("._") or "output"


def run_task(
    task: str, picture: Picture, model: str, options: dict[str, Any], progress: ProgressFn
) -> Picture:
    """The task function the tabs and the CLI use, with this variant's options."""
    if task == "sr":
        from pipelines import tasks

        noise = options.get("noise")
        return tasks.super_resolution(
            picture, model, outscale=float(options["outscale"]), noise=noise, progress=progress
        )
    if task == "anime":
        from pipelines import tasks

        scale = int(options["scale"])
        return tasks.anime_upscale(
            picture, model, scale=scale, noise=options.get("noise"), progress=progress
        )
    if task == "colorize":
        from pipelines.colorize import colorize

        factor = options.get("render_factor")
        return colorize(picture, model, render_factor=factor, progress=progress)
    from pipelines.inpaint import inpaint

    mask = options["mask"]
    return inpaint(picture, mask, model, dilate=int(options.get("dilate", 0)), progress=progress)


def preload(task: str, card: ModelCard, options: dict[str, Any]) -> None:
    """Load the variant's model(s) into the backend cache, so runtimes leave loading out."""
    from pipelines import tasks
    from pipelines.backends import load_restorer

    if task == "sr":
        scale = tasks.pick_native_scale(card, float(options["outscale"]))
        load_restorer(card, scale, options.get("noise"))
    elif task == "anime":
        for scale, noise in tasks.anime_passes(card, int(options["scale"]), options.get("noise")):
            load_restorer(card, scale, noise)


def score_file(
    path: Path, reference: Picture | None, scorers: dict[str, Any]
) -> tuple[dict[str, float | None], tuple[str, ...]]:
    """Score the written file as ``python -m evaluation score`` does; None where it can't."""
    from evaluation.metrics import MetricInputError

    rgb = load_image(path).rgb
    ref = reference.rgb if reference is not None else None
    scores: dict[str, float | None] = {}
    notes = []
    for name, metric in scorers.items():
        try:
            scores[name] = float(metric(rgb, ref))
        except MetricInputError as error:
            scores[name] = None
            notes.append(str(error))
    return scores, tuple(notes)


# ---------------------------------------------------------------- memory


@dataclass
class PeakMemory:
    """Peak resident memory above the level at the start (MB), and the CUDA peak (MB)."""

    rss_mb: float | None = None
    gpu_mb: float | None = None


@contextmanager
def peak_memory() -> Iterator[PeakMemory]:
    """Measure the process's peak RSS (all native memory: ncnn, torch, numpy) over a block.

    Linux's VmHWM is reset through ``/proc/self/clear_refs`` first; elsewhere ``rss_mb``
    stays None. With CUDA in use, ``gpu_mb`` is torch's peak allocation.
    """
    holder = PeakMemory()
    start = _status_kib("VmRSS")
    reset = start is not None and _reset_peak_rss()
    cuda = _cuda_module()
    if cuda is not None:
        cuda.reset_peak_memory_stats()
    try:
        yield holder
    finally:
        peak = _status_kib("VmHWM")
        if reset and peak is not None and start is not None:
            holder.rss_mb = max(0, peak - start) / 1024
        if cuda is not None:
            holder.gpu_mb = cuda.max_memory_allocated() / 1024**2


def _status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _cuda_module() -> Any:
    torch = sys.modules.get("torch")  # never import torch just to ask
    if torch is None or not torch.cuda.is_available():
        return None
    return torch.cuda


# ---------------------------------------------------------------- results


def best_per_metric(panes: Sequence[Pane], lower_better: dict[str, bool]) -> dict[str, str]:
    best: dict[str, str] = {}
    for metric, lower in lower_better.items():
        scored = [(p.scores[metric], p.label) for p in panes if p.scores.get(metric) is not None]
        scored = [(v, label) for v, label in scored if not math.isnan(v)]
        if scored:
            pick = min if lower else max
            best[metric] = pick(scored, key=lambda item: item[0])[1]
    return best


def compare_table(run: CompareRun) -> Any:
    """One row per variant: size, runtime, peak memory, every metric, any error.

    ``attrs`` carry ``lower_better`` and ``best`` (metric -> label of the best row).
    """
    import pandas as pd

    rows = [_row(pane, run.plan.metrics) for pane in run.panes]
    columns = ["model", "width", "height", "runtime_s", "peak_rss_mb", *run.plan.metrics]
    columns += ["device", "error"]
    table = pd.DataFrame(rows, columns=columns)
    table.attrs = {"lower_better": run.lower_better, "best": run.best()}
    return table


def _row(pane: Pane, metrics: Sequence[str]) -> dict[str, Any]:
    return {
        "model": pane.label,
        "width": pane.width or None,
        "height": pane.height or None,
        "runtime_s": pane.seconds,
        "peak_rss_mb": pane.peak_rss_mb,
        **{name: pane.scores.get(name) for name in metrics},
        "device": pane.device,
        "error": pane.error or "; ".join(pane.notes),
    }


def table_document(run: CompareRun) -> dict[str, Any]:
    """The run as JSON: image, options, metrics with their settings, one row per variant."""
    options = {k: v for k, v in run.plan.options.items() if k != "mask"}
    return {
        "task": run.plan.task,
        "image": run.image_name,
        "input": run.input_path,
        "reference": run.reference_path or None,
        "options": options,
        "metrics": run.metric_info,
        "best": run.best(),
        "notes": list(run.plan.notes),
        "created_at": run.created_at,
        "rows": [
            {
                **_row(pane, run.plan.metrics),
                "file": pane.path or None,
                "gpu_peak_mb": pane.peak_gpu_mb,
            }
            for pane in run.panes
        ],
    }


def write_table(run: CompareRun, folder: str | os.PathLike) -> tuple[Path, Path]:
    """``compare.csv`` and ``compare.json`` in ``folder``."""
    folder = Path(folder)
    csv_path, json_path = folder / "compare.csv", folder / "compare.json"
    run.table().to_csv(csv_path, index=False)
    document = _json_safe(table_document(run))
    json_path.write_text(json.dumps(document, indent=1, default=str))
    return csv_path, json_path


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


# ---------------------------------------------------------------- crop strip


@dataclass(frozen=True)
class Region:
    """A rectangle in output pixels (of the first output's size)."""

    x: int
    y: int
    width: int
    height: int


def default_region(width: int, height: int) -> Region:
    """A centred square of up to ``DEFAULT_CROP_SIDE`` px."""
    side = min(DEFAULT_CROP_SIDE, width, height)
    return Region((width - side) // 2, (height - side) // 2, side, side)


def check_region(region: Region, width: int, height: int) -> Region:
    if region.width < 1 or region.height < 1:
        raise InvalidOptionError("The crop needs a width and height of at least 1 px.")
    if region.x < 0 or region.y < 0 or region.x + region.width > width:
        raise InvalidOptionError(_outside(region, width, height))
    if region.y + region.height > height:
        raise InvalidOptionError(_outside(region, width, height))
    return region


def _outside(region: Region, width: int, height: int) -> str:
    return (
        f"The crop {region.width}x{region.height} at ({region.x}, {region.y}) reaches outside "
        f"the {width}x{height} outputs."
    )


def strip_size(tiles: int, region: Region, zoom: int) -> tuple[int, int]:
    """(width, height) of a strip: tiles side by side with gaps, a label band above each."""
    width = tiles * region.width * zoom + (tiles - 1) * STRIP_GAP
    return width, STRIP_LABEL_HEIGHT + region.height * zoom


MAX_STRIP_PIXELS = 40_000_000


def crop_strip(
    run: CompareRun, region: Region | None = None, zoom: int = 1, *, with_context: bool = True
) -> tuple[Picture, Region]:
    """The same region of the input, every output and the reference, in one labelled row.

    ``region`` is in pixels of the first output (default: a centred square); other
    images are cropped at the same relative place and scaled to the tile size with
    nearest-neighbour, so pixels stay visible. ``zoom`` magnifies every tile.
    """
    panes = [pane for pane in run.panes if pane.ok]
    if not panes:
        raise InvalidOptionError("No output to crop: every model failed.")
    width, height = panes[0].width, panes[0].height
    region = check_region(region or default_region(width, height), width, height)
    if not 1 <= zoom <= 16:
        raise InvalidOptionError(f"The crop strip's zoom must be 1 to 16, not {zoom}.")
    tiles = [(pane.label, pane.path) for pane in panes]
    if with_context:
        tiles.insert(0, ("input", run.input_path))
        if run.reference_path:
            tiles.append(("reference", run.reference_path))
    size = strip_size(len(tiles), region, zoom)
    if size[0] * size[1] > MAX_STRIP_PIXELS:
        raise InvalidOptionError("That crop strip would be too large: pick a smaller crop or zoom.")
    canvas = np.ones((size[1], size[0], 3), np.float32)
    for index, (_, path) in enumerate(tiles):
        tile = _tile(load_image(path).rgb, region, (width, height), zoom)
        left = index * (region.width * zoom + STRIP_GAP)
        canvas[STRIP_LABEL_HEIGHT:, left : left + tile.shape[1]] = tile
    canvas = _draw_labels(canvas, [label for label, _ in tiles], region.width * zoom)
    picture = Picture(canvas, None, False, 8, None, None, f"{run.image_name}_crop_strip")
    return picture, region


def _tile(rgb: np.ndarray, region: Region, size: tuple[int, int], zoom: int) -> np.ndarray:
    """The region of ``rgb`` (mapped from ``size`` to its own size), nearest-scaled."""
    import cv2

    fx, fy = rgb.shape[1] / size[0], rgb.shape[0] / size[1]
    left, top = math.floor(region.x * fx), math.floor(region.y * fy)
    right = max(left + 1, math.ceil((region.x + region.width) * fx))
    bottom = max(top + 1, math.ceil((region.y + region.height) * fy))
    crop = rgb[top:bottom, left:right]
    target = (region.width * zoom, region.height * zoom)
    return cv2.resize(crop, target, interpolation=cv2.INTER_NEAREST)


def _draw_labels(canvas: np.ndarray, labels: list[str], tile_width: int) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(np.round(canvas * 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    for index, label in enumerate(labels):
        left = index * (tile_width + STRIP_GAP)
        text = _fit(draw, label, font, tile_width - 4)
        draw.text((left + 2, 4), text, fill=(0, 0, 0), font=font)
    return np.asarray(image, dtype=np.float32) / 255.0


def _fit(draw: Any, text: str, font: Any, width: int) -> str:
    """The label, shortened with an ellipsis until it fits the tile."""
    while text and draw.textlength(text, font=font) > width:
        text = text[:-2] + "…" if len(text) > 2 else ""
    return text


# ---------------------------------------------------------------- the whole thing


def compare(
    task: str,
    picture: Picture,
    models: Sequence[str],
    folder: str | os.PathLike,
    *,
    sweep: Sweep | None = None,
    reference: Picture | None = None,
    options: dict[str, Any] | None = None,
    metrics: Sequence[str] | None = None,
    progress: ProgressFn = no_progress,
) -> Iterator[CompareRun]:
    """Plan and run a comparison, yielding the run so far after each variant.

    The input (and reference) are copied into ``folder`` as PNGs, so the strip and the
    view read every image from one place.
    """
    plan = plan_compare(
        task, picture, models, sweep=sweep, reference=reference, options=options, metrics=metrics
    )
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    run = CompareRun(
        plan=plan,
        panes=[],
        folder=str(out),
        input_path=str(save_png(picture, out / "input.png")),
        image_name=picture.name,
        reference_path=str(save_png(reference, out / "reference.png")) if reference else "",
        metric_info={name: m.describe() for name, m in create_scorers(plan).items()},
    )
    for pane in run_compare(plan, picture, out, reference=reference, progress=progress):
        run.panes.append(pane)
        yield dataclasses.replace(run, panes=list(run.panes))  # a snapshot, not a live view


# ---------------------------------------------------------------- leaderboard


def leaderboard_run(run: CompareRun) -> Any:
    """The comparison as a one-image leaderboard entry (dataset ``image:<name>:<hash>``)."""
    from evaluation.leaderboard import LeaderboardRun, ModelOutcome, Score, code_version

    digest = _digest(run.input_path)
    dataset = f"image:{run.image_name}:{digest[:8]}"
    degradation = f"reference:{_digest(run.reference_path)[:8]}" if run.reference_path else "none"
    options = {k: v for k, v in run.plan.options.items() if k != "mask"}
    config = {
        "task": run.plan.task,
        "dataset": dataset,
        "degradation": degradation,
        "options": options,
    }
    scores = [
        Score(pane.label, run.image_name, metric, value, pane.seconds or 0.0, pane.device)
        for pane in run.panes
        if pane.ok
        for metric, value in pane.scores.items()
        if value is not None
    ]
    outcomes = [
        ModelOutcome(p.label, "ok" if p.ok else "failed", p.error, p.device) for p in run.panes
    ]
    return LeaderboardRun(
        task=run.plan.task,
        dataset=dataset,
        dataset_info={"name": "single image", "image": run.image_name, "sha256": digest},
        degradation=degradation,
        degradation_settings={"options": options},
        seed=0,
        scale=run.plan.crop_border,
        metrics=run.metric_info,
        models=outcomes,
        scores=scores,
        samples={run.image_name: {"input": run.input_path, "reference": run.reference_path}},
        code_version=code_version(),
        created_at=run.created_at,
        convention=_convention(run),
        config=config,
    )


def _convention(run: CompareRun) -> str:
    """The leaderboard header: how this one image was scored."""
    parts = []
    for name, info in run.metric_info.items():
        border = info["settings"].get("crop_border") or 0
        cropped = f", {border} px border cropped" if border else ""
        arrow = "lower is better" if info["lower_better"] else "higher is better"
        parts.append(f"{name}: {info['title']}{cropped}, {arrow}")
    against = "against the given reference" if run.reference_path else "without a reference"
    return f"Compare, one image: the written PNGs scored {against}; " + "; ".join(parts) + "."


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else ""


def save_to_leaderboard(run: CompareRun, db: str | os.PathLike | None = None) -> int:
    """Store the run in the leaderboard database; returns how many result rows it wrote."""
    from evaluation.leaderboard import LeaderboardStore

    if not any(pane.ok for pane in run.panes):
        raise InvalidOptionError("Nothing to save: every model failed.")
    return LeaderboardStore(db).save(leaderboard_run(run))


# ---------------------------------------------------------------- files in, files out


@dataclass(frozen=True)
class CompareFiles:
    """What a finished comparison wrote: outputs, crop strip, table (CSV, JSON)."""

    run: CompareRun
    strip: Path
    csv: Path
    json: Path


def compare_files(
    task: str,
    input_path: str | os.PathLike,
    models: Sequence[str],
    folder: str | os.PathLike,
    *,
    sweep: str = "",
    reference_path: str | os.PathLike | None = None,
    options: dict[str, Any] | None = None,
    metrics: Sequence[str] | None = None,
    region: Region | None = None,
    zoom: int = 2,
    progress: ProgressFn = no_progress,
) -> CompareFiles:
    """Compare on image files and write everything into ``folder`` (the CLI's path)."""
    picture = load_image(input_path)
    reference = load_image(reference_path) if reference_path else None
    options = dict(options or {})
    if task == "inpaint" and isinstance(options.get("mask"), str | os.PathLike):
        from pipelines.inpaint import mask_from_file

        options["mask"] = mask_from_file(options["mask"], (picture.width, picture.height))
    *_, run = compare(
        task,
        picture,
        models,
        folder,
        sweep=parse_sweep(sweep, task),
        reference=reference,
        options=options,
        metrics=metrics,
        progress=progress,
    )
    return finish(run, region, zoom)


def finish(
    run: CompareRun, region: Region | None = None, zoom: int = 2, *, strip: bool = True
) -> CompareFiles:
    """Write the table and (with ``strip``, when any output exists) the crop strip.

    The region is checked in any case, so a bad one is refused after the first output.
    """
    first = next((pane for pane in run.panes if pane.ok), None)
    if region is not None and first is not None:
        check_region(region, first.width, first.height)
    csv_path, json_path = write_table(run, run.folder)
    strip_path = Path(run.folder) / "crop_strip.png"
    if strip and any(pane.ok for pane in run.panes):
        strip, _ = crop_strip(run, region, zoom)
        save_png(strip, strip_path)
    return CompareFiles(run, strip_path, csv_path, json_path)


def parse_region(text: str | None) -> Region | None:
    """``"X,Y,W,H"`` in output pixels -> Region; empty -> None (a centred square)."""
    if not text:
        return None
    parts = text.split(",")
    try:
        x, y, width, height = (int(part) for part in parts)
    except ValueError:
        raise InvalidOptionError(f"The crop is X,Y,WIDTH,HEIGHT in pixels, not {text!r}.") from None
    return Region(x, y, width, height)


def format_report(written: CompareFiles, *, as_json: bool = False) -> str:
    """The CLI's printout: the table (or its JSON) and where the files are."""
    run = written.run
    if as_json:
        return json.dumps(_json_safe(table_document(run)), indent=1, default=str)
    table = run.table().drop(columns=["error"])
    best = run.best()
    lines = [table.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-")]
    for metric, label in best.items():
        arrow = "lower" if run.lower_better[metric] else "higher"
        lines.append(f"best {metric} ({arrow} is better): {label}")
    lines += [f"note: {note}" for note in run.plan.notes]
    lines.append(f"outputs, crop strip, compare.csv and compare.json in {run.folder}")
    return "\n".join(lines)
