"""Colorization tab: black-and-white photos in, colour photos of the same size out."""

from __future__ import annotations

import gradio as gr

from pipelines import colorize as colorize_task
from pipelines.gpu import on_gpu
from pipelines.images import Picture
from pipelines.registry import MODELS
from ui import common
from ui.components import UploadedImage


@on_gpu
def colorize(
    image: str | None,
    model: str,
    render_factor: int = 0,
    progress: gr.Progress = gr.Progress(),
) -> common.TabResult:
    """Colour a photo. ``render_factor`` 0 means the model's default (only DeOldify has one).

    Returns (before/after pair, full-resolution PNG, a note).
    """
    card = common.find_card(model)
    picture = common.read_upload(image)
    factor = int(render_factor or 0) if colorize_task.uses_render_factor(card) else 0
    messages: list[str] = []
    report = common.gradio_progress(progress, card.title)

    def tracked(fraction: float, message: str) -> None:
        messages.append(message)
        report(fraction, message)

    def work() -> Picture:
        return colorize_task.colorize(
            picture, model, render_factor=factor or None, progress=tracked
        )

    result, seconds = common.run_task(work)
    pair, full, note = common.publish(picture, result, card, seconds)
    if colorize_task.DESATURATED_NOTE in messages:
        note += f" · {colorize_task.DESATURATED_NOTE}"
    return pair, full, note


def _model_changed(model: str) -> tuple[str, dict]:
    card = common.find_card(model)
    return common.model_info(model), gr.update(visible=colorize_task.uses_render_factor(card))


def build() -> gr.Dropdown:
    """Lay out the tab; returns the model menu so other tabs can refresh it."""
    default = MODELS.default_for("colorize")
    with gr.Row():
        with gr.Column():
            image = UploadedImage(label="Black-and-white photo", type="filepath", height=360)
            model = gr.Dropdown(
                common.model_choices("colorize"),
                value=default.id,
                label="Model",
                allow_custom_value=True,
            )
            info = gr.Markdown(default.summary())
            render_factor = gr.Slider(
                0,
                colorize_task.MAX_RENDER_FACTOR,
                value=0,
                step=1,
                label="Render factor (0 = model default)",
                info="Model input: a 16·N px square. Higher = more detail, lower = bolder.",
                visible=colorize_task.uses_render_factor(default),
            )
            gr.Markdown(
                "Colour photos are desaturated first. Colour is predicted on a small copy and "
                "laid over the photo's own full-resolution lightness."
            )
            run = gr.Button("Colorize", variant="primary")
        with gr.Column():
            slider = gr.ImageSlider(label="Before / after", type="filepath", format="png")
            download = gr.File(label="Full-resolution PNG")
            note = gr.Markdown()
    gr.Examples(common.example_files("coffee_gray.png", "astronaut_small.png"), inputs=image)
    model.change(
        _model_changed, model, [info, render_factor], api_visibility="private", queue=False
    )
    run.click(
        colorize,
        [image, model, render_factor],
        [slider, download, note],
        api_name="colorize",
        concurrency_id=common.MODEL_CONCURRENCY_ID,
    )
    return model
