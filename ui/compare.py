"""Compare tab: several models, or one option swept, on one image; synced zoom; scores.

The work is ``pipelines.compare``; this module lays out and wires. The grid with
synced zoom and pan is a small HTML/JS view (``compare_view.js``) fed with JSON.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from pipelines import compare as cmp
from pipelines.errors import RestorationError
from pipelines.gpu import on_gpu
from pipelines.images import load_image, resize_plane, save_png
from pipelines.registry import TASK_TITLES, cards_for
from ui import common
from ui.components import UploadedImage

HERE = Path(__file__).resolve().parent
VIEW_JS = (HERE / "compare_view.js").read_text()
VIEW_CSS = (HERE / "compare_view.css").read_text()
NO_SWEEP = "none"
DEFAULT_NOISE = "model default"
NOISE_CHOICES = [DEFAULT_NOISE, *(str(level) for level in range(-1, 11))]
DEFAULT_MODELS: dict[str, list[str]] = {
    "sr": ["span-x4-ch48", "span-clearreality-x4", "bicubic"],
    "anime": ["realesr-animevideov3", "bicubic"],
    "colorize": ["ddcolor-modelscope"],
    "inpaint": ["opencv-telea", "opencv-ns", "patchmatch"],
}
CompareOutputs = tuple[str | None, list[str], Any, list[str], str, Any]


@on_gpu
def compare(
    image: str | None,
    models: list[str] | None,
    reference: str | None = None,
    task: str = "sr",
    sweep_option: str = NO_SWEEP,
    sweep_values: str = "",
    scale: float = 0,
    noise: str | None = DEFAULT_NOISE,
    metrics: list[str] | None = None,
    mask: str | None = None,
    crop_x: float = 0,
    crop_y: float = 0,
    crop_width: float = 0,
    crop_height: float = 0,
    zoom: float = 2,
    progress: gr.Progress = gr.Progress(),
) -> Iterator[CompareOutputs]:
    """Run every model (or the sweep) on the image, yielding after each result.

    Yields (crop strip PNG, output PNGs, score table, [CSV, JSON], a note, the run).
    ``scale`` is the SR output scale or the anime scale (0: the models' own, or the
    reference's); ``noise`` a fixed denoise level ("-1".."10", or "model default");
    crop values are output pixels (width 0: a centred square); ``mask`` is the
    inpainting mask (white = fill).
    """
    picture = common.read_upload(image)
    reference_picture = common.read_upload(reference) if reference else None
    options = _options(task, scale, noise, mask, picture)
    sweep = _sweep(task, sweep_option, sweep_values)
    region = _region(crop_x, crop_y, crop_width, crop_height)
    folder = common.output_root() / f"compare-{uuid.uuid4().hex}"
    report = common.gradio_progress(progress, "Compare")
    runs = cmp.compare(
        task,
        picture,
        models or [],
        folder,
        sweep=sweep,
        reference=reference_picture,
        options=options,
        metrics=metrics or None,
        progress=report,
    )
    try:
        for run in runs:
            yield _outputs(run, region, int(zoom or 1))
    except RestorationError as error:
        raise gr.Error(str(error)) from None
    except MemoryError:
        raise gr.Error("Out of memory: compare fewer models or a smaller image.") from None


def _options(
    task: str, scale: float, noise: str | None, mask: str | None, picture: Any
) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if scale:
        options["outscale" if task == "sr" else "scale"] = float(scale)
    if noise not in (None, "", DEFAULT_NOISE) and task in ("sr", "anime"):
        options["noise"] = _noise_level(noise)
    if task == "inpaint":
        options["mask"] = _mask(mask, picture)
    if task == "anime" and "scale" in options:
        options["scale"] = int(options["scale"])
    return options


def _noise_level(noise: str | float) -> int:
    try:
        return int(float(noise))
    except ValueError:
        raise gr.Error(f"The denoise level is a whole number, not {noise!r}.") from None


def _mask(mask: str | None, picture: Any) -> Any:
    if not mask:
        raise gr.Error("Inpainting needs a mask image (white = fill), the size of the image.")
    from pipelines.inpaint import mask_from_file

    try:
        return mask_from_file(mask, (picture.width, picture.height))
    except RestorationError as error:
        raise gr.Error(str(error)) from None


def _sweep(task: str, option: str | None, values: str | None) -> cmp.Sweep | None:
    if not option or option == NO_SWEEP:
        return None
    try:
        return cmp.make_sweep(option, values or "", task)
    except RestorationError as error:
        raise gr.Error(str(error)) from None


def _region(x: float, y: float, width: float, height: float) -> cmp.Region | None:
    if not width or not height:
        return None
    return cmp.Region(int(x or 0), int(y or 0), int(width), int(height))


def _outputs(run: cmp.CompareRun, region: cmp.Region | None, zoom: int) -> CompareOutputs:
    """What the event shows after each finished variant; the strip comes with the last."""
    done, total = len(run.panes), len(run.plan.variants)
    # the strip reads every output again: once at the end, not after each variant
    written = _finish(run, region, zoom, strip=done == total)
    files = [pane.path for pane in run.panes if pane.ok]
    strip = str(written.strip) if written.strip.is_file() else None
    note = _note(run, done, total)
    return strip, files, _styled(run), [str(written.csv), str(written.json)], note, run


def _finish(
    run: cmp.CompareRun, region: cmp.Region | None, zoom: int, *, strip: bool = True
) -> cmp.CompareFiles:
    try:
        return cmp.finish(run, region, zoom, strip=strip)
    except RestorationError as error:
        raise gr.Error(str(error)) from None


def _note(run: cmp.CompareRun, done: int, total: int) -> str:
    status = f"**{done} of {total}** done" if done < total else f"**{total}** runs done"
    lines = [status + f" · outputs in `{Path(run.folder).name}`"]
    for pane in run.failed():
        lines.append(f"- **{pane.label}** failed: {pane.error}")
    lines += [f"- {note}" for note in run.plan.notes]
    if run.panes and done == total:
        lines.append(
            "Runtime leaves out model loading; peak memory is the process's resident memory "
            "above its level before the run (a model already loaded is not counted again)."
        )
    return "\n".join(lines)


def _styled(run: cmp.CompareRun) -> Any:
    """The score table with each metric's best value in bold green."""
    table = run.table()
    styler = table.style.format(precision=4, na_rep="—")
    best = "font-weight: bold; background-color: #d9f2d9"
    for metric, lower in run.lower_better.items():
        if metric in table and table[metric].notna().any():
            highlight = styler.highlight_min if lower else styler.highlight_max
            styler = highlight(subset=[metric], props=best)
    return styler


# ---------------------------------------------------------------- the view


def view_value(run: cmp.CompareRun | None) -> str:
    """The JSON the HTML view draws: every pane (input, outputs, reference) with its scores."""
    if run is None or not any(pane.ok for pane in run.panes):
        message = "" if run is None else "Every model failed; see the note."
        return json.dumps({"panes": [], "message": message})
    first = next(pane for pane in run.panes if pane.ok)
    best = run.best()
    panes = [_image_pane("input", run.input_path)]
    panes += [_output_pane(pane, best) for pane in run.panes]
    if run.reference_path:
        panes.append(_image_pane("reference", run.reference_path))
    return json.dumps({"base": [first.width, first.height], "panes": panes})


def _url(path: str) -> str:
    return f"gradio_api/file={path}"


def _image_pane(label: str, path: str) -> dict[str, Any]:
    return {"label": label, "url": _url(path), "lines": [], "best": []}


def _output_pane(pane: cmp.Pane, best: dict[str, str]) -> dict[str, Any]:
    if not pane.ok:
        return {"label": pane.label, "url": "", "error": pane.error, "lines": [], "best": []}
    lines = [
        [name, "—" if value is None else f"{value:.4f}"] for name, value in pane.scores.items()
    ]
    lines.append(["time", f"{pane.seconds:.2f} s"])
    if pane.peak_rss_mb is not None:
        lines.append(["peak memory", f"{pane.peak_rss_mb:.0f} MB"])
    marked = [metric for metric, label in best.items() if label == pane.label]
    return {"label": pane.label, "url": _url(pane.path), "lines": lines, "best": marked}


def _slider_choices(run: cmp.CompareRun | None) -> list[str]:
    if run is None:
        return []
    labels = ["input", *(pane.label for pane in run.panes if pane.ok)]
    return labels + (["reference"] if run.reference_path else [])


def _after_run(run: cmp.CompareRun | None) -> tuple[str, dict, dict]:
    choices = _slider_choices(run)
    left = "input" if choices else None
    right = choices[1] if len(choices) > 1 else None
    return (
        view_value(run),
        gr.update(choices=choices, value=left),
        gr.update(choices=choices, value=right),
    )


def _pane_path(run: cmp.CompareRun, label: str) -> str:
    """The PNG behind a label, at the outputs' size (the input is enlarged for the slider)."""
    if label == "reference":
        return run.reference_path
    for pane in run.panes:
        if pane.label == label and pane.ok:
            return pane.path
    if label != "input":
        raise gr.Error(f"No pane called {label!r}.")
    return _enlarged_input(run)


def _enlarged_input(run: cmp.CompareRun) -> str:
    first = next(pane for pane in run.panes if pane.ok)
    target = Path(run.folder) / f"input_{first.width}x{first.height}.png"
    if not target.is_file():
        picture = load_image(run.input_path)
        rgb = resize_plane(picture.rgb, first.width, first.height)
        save_png(picture.with_pixels(rgb, None), target)
    return str(target)


def _slider(run: cmp.CompareRun | None, left: str | None, right: str | None) -> Any:
    if run is None or not left or not right or not any(p.ok for p in run.panes):
        return None
    return (_pane_path(run, left), _pane_path(run, right))


def _restrip(
    run: cmp.CompareRun | None, x: float, y: float, width: float, height: float, zoom: float
) -> str | None:
    if run is None:
        raise gr.Error("Run a comparison first.")
    written = _finish(run, _region(x, y, width, height), int(zoom or 1))
    return str(written.strip) if written.strip.is_file() else None


def _region_from_view(evt: gr.EventData) -> tuple[int, int, int, int]:
    """The region the grid shows (sent by compare_view.js), for the crop inputs."""
    data = evt._data if isinstance(evt._data, dict) else {}
    try:
        x, y, width, height = (int(data.get(key, 0)) for key in ("x", "y", "width", "height"))
    except (TypeError, ValueError):
        raise gr.Error("The view sent a region that is not four whole numbers.") from None
    return x, y, width, height


def _save(run: cmp.CompareRun | None) -> str:
    if run is None:
        raise gr.Error("Run a comparison first.")
    try:
        rows = cmp.save_to_leaderboard(run)
    except RestorationError as error:
        raise gr.Error(str(error)) from None
    dataset = cmp.leaderboard_run(run).dataset
    return f"Saved {rows} scores as the one-image leaderboard `{dataset}`."


# ---------------------------------------------------------------- layout


def _model_choices(task: str) -> list[tuple[str, str]]:
    return common.model_choices(task)  # type: ignore[arg-type]


def _task_changed(task: str) -> tuple[dict, dict, dict, dict]:
    offered = {card.id for card in cards_for(task)}  # type: ignore[arg-type]
    defaults = [m for m in DEFAULT_MODELS.get(task, []) if m in offered]
    sweeps = [NO_SWEEP, *cmp.SWEEPABLE.get(task, {})]
    scaled = task in ("sr", "anime")
    return (
        gr.update(choices=_model_choices(task), value=defaults),
        gr.update(choices=sweeps, value=NO_SWEEP),
        gr.update(visible=task == "inpaint"),
        gr.update(visible=scaled),
    )


def _refresh_models(task: str, current: list[str] | None) -> dict:
    return gr.update(choices=_model_choices(task), value=current or [])


def _metric_choices() -> list[str]:
    from evaluation.metrics import METRICS

    return [spec.name for spec in METRICS if not spec.needs_mask]


def build(tab: gr.Tab | None = None) -> None:
    """Lay out the tab; selecting ``tab`` refreshes the model menu (new custom models)."""
    gr.Markdown(
        "Run several models — or one model with an option swept over values — on one image. "
        "Outputs appear as each is ready, zoomed and panned together (scroll to zoom, drag "
        "to pan). Give a reference (ground truth of the output's size) to add PSNR/SSIM; "
        "NIQE is always scored. The best value per metric is marked ★."
    )
    with gr.Row():
        with gr.Column(scale=1):
            image = UploadedImage(label="Input image", type="filepath", height=260)
            reference = UploadedImage(
                label="Reference (optional, the output's size)", type="filepath", height=200
            )
            mask = UploadedImage(
                label="Mask (white = fill)", type="filepath", height=200, visible=False
            )
        with gr.Column(scale=1):
            task = gr.Radio(
                [(TASK_TITLES[t], t) for t in cmp.COMPARE_TASKS], value="sr", label="Task"
            )
            models = gr.Dropdown(
                _model_choices("sr"),
                value=DEFAULT_MODELS["sr"],
                multiselect=True,
                allow_custom_value=True,
                label="Models",
            )
            with gr.Row():
                sweep_option = gr.Dropdown(
                    [NO_SWEEP, *cmp.SWEEPABLE["sr"]], value=NO_SWEEP, label="Sweep option"
                )
                sweep_values = gr.Textbox("", label="Sweep values", placeholder="-1,0,1,2,3")
            with gr.Row(visible=True) as scaled_row:
                scale = gr.Number(0, label="Scale (0 = the models' / the reference's)")
                noise = gr.Dropdown(
                    NOISE_CHOICES, value=DEFAULT_NOISE, label="Denoise level (when not swept)"
                )
            metrics = gr.Dropdown(
                _metric_choices(),
                multiselect=True,
                label="Metrics (empty = NIQE, plus PSNR/SSIM/LPIPS with a reference)",
            )
            with gr.Accordion("Crop strip", open=False):
                with gr.Row():
                    crop_x = gr.Number(0, precision=0, label="x", minimum=0)
                    crop_y = gr.Number(0, precision=0, label="y", minimum=0)
                    crop_width = gr.Number(0, precision=0, label="width (0 = auto)", minimum=0)
                    crop_height = gr.Number(0, precision=0, label="height", minimum=0)
                zoom = gr.Slider(1, 8, value=2, step=1, label="Strip magnification")
                restrip = gr.Button("Update crop strip", size="sm")
            run = gr.Button("Compare", variant="primary")
    note = gr.Markdown(label="Note")
    view = gr.HTML(
        json.dumps({"panes": []}),
        html_template="<div></div>",
        css_template=VIEW_CSS,
        js_on_load=VIEW_JS,
        elem_id="compare-view",
    )
    strip = gr.Image(label="Crop strip", type="filepath", format="png", interactive=False)
    table = gr.Dataframe(label="Scores", interactive=False, wrap=True)
    with gr.Row():
        outputs = gr.File(label="Outputs (full resolution)", file_count="multiple")
        exports = gr.File(label="Table (CSV, JSON)", file_count="multiple")
    with gr.Row():
        left = gr.Dropdown([], label="Slider: left")
        right = gr.Dropdown([], label="Slider: right")
    slider = gr.ImageSlider(label="Before / after", type="filepath", format="png")
    with gr.Row():
        save = gr.Button("Save to leaderboard", size="sm")
        saved = gr.Markdown()
    state = gr.State(None)

    gr.Examples(common.example_files("astronaut_small.png", "anime_small.png"), inputs=image)
    private = {"api_visibility": "private", "queue": False}
    task.change(_task_changed, task, [models, sweep_option, mask, scaled_row], **private)
    if tab is not None:
        tab.select(_refresh_models, [task, models], models, **private)
    run.click(
        compare,
        [
            *(image, models, reference, task, sweep_option, sweep_values, scale, noise),
            *(metrics, mask, crop_x, crop_y, crop_width, crop_height, zoom),
        ],
        [strip, outputs, table, exports, note, state],
        api_name="compare",
        concurrency_id=common.MODEL_CONCURRENCY_ID,
    )
    state.change(_after_run, state, [view, left, right], **private)
    for menu in (left, right):
        menu.change(_slider, [state, left, right], slider, **private)
    restrip.click(
        _restrip, [state, crop_x, crop_y, crop_width, crop_height, zoom], strip, **private
    )
    view.region(_region_from_view, None, [crop_x, crop_y, crop_width, crop_height], **private).then(
        _restrip, [state, crop_x, crop_y, crop_width, crop_height, zoom], strip, **private
    )
    save.click(_save, state, saved, api_visibility="private")
