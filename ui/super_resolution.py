"""Super-resolution tab: photos and general images."""

from __future__ import annotations

import gradio as gr

from pipelines import tasks
from pipelines.errors import InvalidOptionError
from pipelines.registry import MODELS
from ui import common
from ui.components import UploadedImage

SIZE_MODES = ["Scale factor", "Width", "Height", "Shortest side"]


def super_resolution(
    image: str | None,
    model: str,
    outscale: float = 4,
    size_mode: str = "Scale factor",
    size_value: int = 0,
    noise: int = -1,
    tile: int = 0,
    progress: gr.Progress = gr.Progress(),
) -> common.TabResult:
    """Upscale a photo. Returns (before/after pair, full-resolution PNG, a note)."""
    card = common.find_card(model)
    picture = common.read_upload(image)
    target = _target(size_mode, size_value)
    noise_level = int(noise) if card.noise_levels else None

    def work() -> tasks.Picture:
        return tasks.super_resolution(
            picture,
            model,
            outscale=None if target else float(outscale),
            target=target,
            noise=noise_level,
            tile=int(tile or 0),
            progress=common.gradio_progress(progress, card.title),
        )

    result, seconds = common.run_task(work)
    return common.publish(picture, result, card, seconds)


def _target(size_mode: str, size_value: int) -> tasks.TargetSize | None:
    if size_mode in (None, "", "Scale factor"):
        return None
    if size_mode not in SIZE_MODES:
        raise gr.Error(f"Unknown size mode {size_mode!r}; use one of {', '.join(SIZE_MODES)}.")
    if not size_value or int(size_value) < 1:
        raise gr.Error(f"Enter the target {size_mode.lower()} in pixels.")
    value = int(size_value)
    try:
        return tasks.TargetSize(
            width=value if size_mode == "Width" else None,
            height=value if size_mode == "Height" else None,
            shortest_side=value if size_mode == "Shortest side" else None,
        )
    except InvalidOptionError as error:
        raise gr.Error(str(error)) from None


def _model_changed(model: str) -> tuple[str, dict, dict]:
    card = common.find_card(model)
    return (
        common.model_info(model),
        gr.update(value=card.native_scale),
        gr.update(
            visible=bool(card.noise_levels),
            minimum=min(card.noise_levels, default=-1),
            maximum=max(card.noise_levels, default=3),
            value=card.default_noise if card.default_noise is not None else -1,
            info=card.noise_help,
        ),
    )


def build() -> gr.Dropdown:
    """Lay out the tab; returns the model menu so other tabs can refresh it."""
    default = MODELS.default_for("sr")
    with gr.Row():
        with gr.Column():
            image = UploadedImage(label="Input image", type="filepath", height=360)
            model = gr.Dropdown(
                common.model_choices("sr"), value=default.id, label="Model", allow_custom_value=True
            )
            info = gr.Markdown(default.summary())
            with gr.Row():
                size_mode = gr.Radio(SIZE_MODES, value="Scale factor", label="Output size by")
                size_value = gr.Number(0, precision=0, label="Target pixels", minimum=0)
            outscale = gr.Slider(1, 8, value=default.native_scale, step=0.5, label="Scale factor")
            noise = gr.Slider(-1, 10, value=-1, step=1, label="Denoise level", visible=False)
            tile = gr.Slider(
                0,
                1024,
                value=0,
                step=16,
                label="Tile size (0 = automatic)",
                info="Smaller tiles use less memory on large images.",
            )
            run = gr.Button("Upscale", variant="primary")
        with gr.Column():
            slider = gr.ImageSlider(label="Before / after", type="filepath", format="png")
            download = gr.File(label="Full-resolution PNG")
            note = gr.Markdown()
    gr.Examples(common.example_files("astronaut_small.png", "coffee_small.png"), inputs=image)
    model.change(
        _model_changed, model, [info, outscale, noise], api_visibility="private", queue=False
    )
    run.click(
        super_resolution,
        [image, model, outscale, size_mode, size_value, noise, tile],
        [slider, download, note],
        api_name="super_resolution",
        concurrency_id=common.MODEL_CONCURRENCY_ID,
    )
    return model
