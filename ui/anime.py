"""Anime / 2D tab: illustrations, anime frames, line art."""

from __future__ import annotations

import gradio as gr

from pipelines import tasks
from pipelines.gpu import on_gpu
from pipelines.registry import MODELS
from ui import common
from ui.components import UploadedImage


@on_gpu
def anime_upscale(
    image: str | None,
    model: str,
    scale: int = 0,
    noise: int = 0,
    tile: int = 0,
    progress: gr.Progress = gr.Progress(),
) -> common.TabResult:
    """Upscale anime art. ``scale`` 0 means the model's native scale."""
    card = common.find_card(model)
    picture = common.read_upload(image)
    noise_level = int(noise) if card.noise_levels else None

    def work() -> tasks.Picture:
        return tasks.anime_upscale(
            picture,
            model,
            scale=int(scale) or None,
            noise=noise_level,
            tile=int(tile or 0),
            progress=common.gradio_progress(progress, card.title),
        )

    result, seconds = common.run_task(work)
    return common.publish(picture, result, card, seconds)


def _model_changed(model: str) -> tuple[str, dict, dict]:
    card = common.find_card(model)
    scales = tasks.anime_scales(card)
    return (
        common.model_info(model),
        gr.update(choices=scales, value=card.native_scale),
        gr.update(
            visible=bool(card.noise_levels),
            minimum=min(card.noise_levels, default=-1),
            maximum=max(card.noise_levels, default=3),
            value=card.default_noise if card.default_noise is not None else 0,
            info=card.noise_help,
        ),
    )


def build() -> gr.Dropdown:
    """Lay out the tab; returns the model menu so other tabs can refresh it."""
    default = MODELS.default_for("anime")
    with gr.Row():
        with gr.Column():
            image = UploadedImage(label="Input image", type="filepath", height=360)
            model = gr.Dropdown(
                common.model_choices("anime"),
                value=default.id,
                label="Model",
                allow_custom_value=True,
            )
            info = gr.Markdown(default.summary())
            scale = gr.Radio(tasks.anime_scales(default), value=default.native_scale, label="Scale")
            noise = gr.Slider(-1, 3, value=0, step=1, label="Denoise level", visible=False)
            tile = gr.Slider(0, 1024, value=0, step=16, label="Tile size (0 = automatic)")
            run = gr.Button("Upscale", variant="primary")
        with gr.Column():
            slider = gr.ImageSlider(label="Before / after", type="filepath", format="png")
            download = gr.File(label="Full-resolution PNG")
            note = gr.Markdown()
    gr.Examples(common.example_files("anime_small.png"), inputs=image)
    model.change(_model_changed, model, [info, scale, noise], api_visibility="private", queue=False)
    run.click(
        anime_upscale,
        [image, model, scale, noise, tile],
        [slider, download, note],
        api_name="anime_upscale",
        concurrency_id=common.MODEL_CONCURRENCY_ID,
    )
    return model
