"""Inpainting tab: paint over what to remove (or upload a mask), pick a method, fill."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import gradio as gr
import numpy as np

from pipelines import inpaint as inpainting
from pipelines.errors import RestorationError
from pipelines.gpu import on_gpu
from pipelines.images import Picture, save_png
from pipelines.registry import MODELS, lookup
from pipelines.weights import card_state
from ui import common

InpaintResult = tuple[tuple[str, str], str, str, str]
"""(before, after) for the slider, the full-resolution PNG, the mask used (PNG), a note."""


def default_method() -> str:
    """LaMa when its weights are here (the quality default), else the registry's default."""
    if "lama" in MODELS and card_state(MODELS.get("lama")).usable:
        return "lama"
    return MODELS.default_for("inpaint").id


@on_gpu
def inpaint(
    editor: dict[str, Any] | None,
    mask_file: str | None = None,
    model: str = "opencv-telea",
    dilate: int = 0,
    progress: gr.Progress = gr.Progress(),
) -> InpaintResult:
    """Fill the painted (or masked) part of an image. Returns (before/after pair,
    full-resolution PNG, the mask used as a PNG — white = filled, a note).

    Two ways to call it with ``gradio_client`` (``from gradio_client import Client,
    handle_file``; ``client = Client("http://127.0.0.1:7860/")``):

    1. An editor value: the image as background and the strokes as a transparent layer
       (painted = any pixel with alpha > 0); composite may be None::

           client.predict(
               {"background": handle_file("photo.png"),
                "layers": [handle_file("strokes.png")], "composite": None},
               None, "opencv-telea", 4, api_name="/inpaint")

    2. The image as background and a mask image of the same size (white = fill)::

           client.predict(
               {"background": handle_file("photo.png"), "layers": [], "composite": None},
               handle_file("mask.png"), "lama", 0, api_name="/inpaint")

    Strokes and mask file may be combined; ``dilate`` (0-64 px) grows the mask.
    Pixels outside the (dilated) mask are returned unchanged.
    """
    card = common.find_card(model)
    background = (editor or {}).get("background")
    picture = _opaque_as_rgb(
        common.read_upload(background if isinstance(background, str) else None)
    )
    try:
        mask = _mask(editor, mask_file, picture)
        used = inpainting.prepare_mask(mask, picture, int(dilate or 0))
    except RestorationError as error:
        raise gr.Error(str(error)) from None

    def work() -> Picture:
        return inpainting.inpaint(
            picture,
            used,
            model,
            progress=common.gradio_progress(progress, card.title),
        )

    result, seconds = common.run_task(work)
    pair, full, note = common.publish(picture, result, card, seconds)
    mask_path = save_png(
        inpainting.mask_picture(used),
        common.output_root() / f"{picture.name}_mask_{uuid.uuid4().hex[:8]}.png",
    )
    return pair, full, str(mask_path), f"{note} · {int(used.sum())} pixels filled"


def _mask(editor: dict[str, Any] | None, mask_file: str | None, picture: Picture) -> np.ndarray:
    size = (picture.width, picture.height)
    mask = inpainting.mask_from_editor(editor, size)
    if mask_file:
        mask |= inpainting.mask_from_file(mask_file, size)
    return mask


def _opaque_as_rgb(picture: Picture) -> Picture:
    """The editor hands back RGBA even for an RGB upload: a fully opaque alpha is dropped."""
    if picture.alpha is not None and float(picture.alpha.min()) >= 1.0:
        return dataclasses.replace(picture, alpha=None)
    return picture


def _model_changed(model: str) -> str:
    try:
        lookup(model)
    except RestorationError as error:
        return str(error)
    return common.model_info(model)


def build() -> gr.Dropdown:
    """Lay out the tab; returns the method menu so other tabs can refresh it."""
    default = default_method()
    with gr.Row():
        with gr.Column():
            editor = gr.ImageEditor(
                label="Image — paint over what to remove",
                type="filepath",
                image_mode="RGBA",
                format="png",
                brush=gr.Brush(colors=["#ff00ff"], color_mode="fixed"),
                eraser=gr.Eraser(),
                layers=True,
                height=480,
            )
            mask_file = gr.File(
                label="Mask image (optional, same size as the image; white = fill)",
                file_types=["image"],
                type="filepath",
            )
            model = gr.Dropdown(
                common.model_choices("inpaint"),
                value=default,
                label="Method",
                allow_custom_value=True,
            )
            info = gr.Markdown(common.model_info(default))
            dilate = gr.Slider(
                0,
                inpainting.MAX_DILATE,
                value=4,
                step=1,
                label="Grow mask (pixels)",
                info="Covers the soft edge of a scratch or an object's shadow.",
            )
            run = gr.Button("Fill", variant="primary")
        with gr.Column():
            slider = gr.ImageSlider(label="Before / after", type="filepath", format="png")
            download = gr.File(label="Full-resolution PNG")
            mask_used = gr.File(label="Mask used (PNG, white = filled; re-upload to reuse)")
            note = gr.Markdown()
    model.change(_model_changed, model, info, api_visibility="private", queue=False)
    run.click(
        inpaint,
        [editor, mask_file, model, dilate],
        [slider, download, mask_used, note],
        api_name="inpaint",
        concurrency_id=common.MODEL_CONCURRENCY_ID,
    )
    return model
