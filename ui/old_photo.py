"""Old photos tab: repair scratches, dust, grain and fading; correct the scratch mask, re-run."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from pipelines import inpaint as inpainting
from pipelines import old_photo as task
from pipelines.errors import RestorationError
from pipelines.faces import face_models
from pipelines.gpu import on_gpu
from pipelines.images import Picture, load_image, save_png
from pipelines.registry import lookup
from ui import common
from ui.components import UploadedImage

OFF = "off"
OldPhotoTabResult = tuple[tuple[str, str], str, str | None, str]
"""(before, after) for the slider, the full-resolution PNG, the scratch mask PNG, a note."""

METHOD_CHOICES = [
    ("Auto: BOPB when its weights are here, else the classical fallback", "auto"),
    ("Bringing Old Photos Back to Life (BOPB)", "bopb"),
    ("Classical fallback (offline, no weights)", "classical"),
]
UPSCALE_CHOICES = [("x1 (same size)", 1), ("x2", 2), ("x4", 4)]
_MASK_COLOUR = np.array([255, 0, 255], np.uint8)


def _options(
    scratches: bool, method: str, faces: str, colorize: str, upscale: int
) -> task.OldPhotoOptions:
    try:
        return task.OldPhotoOptions(
            scratches=bool(scratches),
            faces=None if faces in (None, "", OFF) else faces,
            colorize=None if colorize in (None, "", OFF) else colorize,
            upscale=int(upscale or 1),
            method=method or "auto",
        )
    except RestorationError as error:
        raise gr.Error(str(error)) from None


@on_gpu
def restore_old_photo(
    image: str | None,
    scratches: bool = True,
    method: str = "auto",
    faces: str = OFF,
    colorize: str = OFF,
    upscale: int = 1,
    progress: gr.Progress = gr.Progress(),
) -> OldPhotoTabResult:
    """Restore an old photo. ``method``: auto, bopb or classical; ``faces``: off, bopb,
    gfpgan-v1.4 or codeformer; ``colorize``: off or a colorize model id; ``upscale``: 1, 2, 4.

    Returns (before/after pair, full-resolution PNG, the scratch mask as a PNG — white =
    repaired, None without scratches — and a note naming the engine that ran).
    """
    options = _options(scratches, method, faces, colorize, upscale)
    return _restore(common.read_upload(image), options, None, progress)


@on_gpu
def rerun_old_photo(
    image: str | None,
    editor: dict[str, Any] | None,
    mask_file: str | None = None,
    method: str = "auto",
    faces: str = OFF,
    colorize: str = OFF,
    upscale: int = 1,
    progress: gr.Progress = gr.Progress(),
) -> OldPhotoTabResult:
    """Repeat the repair with a corrected scratch mask instead of detecting one.

    The mask starts from ``mask_file`` (white = scratch, the photo's size; the tab puts
    the detected mask there) and the editor's strokes correct it: green strokes remove,
    strokes of any other colour add (painted = alpha > 0). An empty mask means "no
    scratches". Through ``gradio_client``: ``{"background": handle_file(photo),
    "layers": [], "composite": None}`` as the editor and ``handle_file(mask)``.
    """
    options = _options(True, method, faces, colorize, upscale)
    picture = common.read_upload(image)
    try:
        mask = corrected_mask(editor, mask_file, (picture.width, picture.height))
    except RestorationError as error:
        raise gr.Error(str(error)) from None
    return _restore(picture, options, mask, progress)


def corrected_mask(
    editor: dict[str, Any] | None, mask_file: str | None, size: tuple[int, int]
) -> np.ndarray:
    """(the mask file, or nothing) + non-green strokes − green strokes, at ``size`` (w, h)."""
    mask = np.zeros((size[1], size[0]), bool)
    if mask_file:
        mask = inpainting.mask_from_file(mask_file, size)
    for layer in (editor or {}).get("layers") or []:
        if layer is not None:
            add, remove = _strokes(load_image(layer, name="layer"), size)
            mask = (mask | add) & ~remove
    return mask


def _strokes(layer: Picture, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    rgb = layer.rgb
    painted = layer.alpha > 0 if layer.alpha is not None else rgb.max(axis=2) > 0
    green = (rgb[:, :, 1] > rgb[:, :, 0] + 0.2) & (rgb[:, :, 1] > rgb[:, :, 2] + 0.2)
    add = inpainting.scale_mask(painted & ~green, size)
    return add, inpainting.scale_mask(painted & green, size)


def _restore(
    picture: Picture,
    options: task.OldPhotoOptions,
    mask: np.ndarray | None,
    progress: gr.Progress,
) -> OldPhotoTabResult:
    report = common.gradio_progress(progress, "Old photo")

    def work() -> task.OldPhotoResult:
        return task.restore_old_photo(picture, options, mask=mask, progress=report)

    result, seconds = common.run_task(work)
    card = lookup(task.engine_card(result.method, result.mask is not None))
    pair, full, note = common.publish(picture, result.picture, card, seconds)
    mask_path = _save_mask(result.mask, picture.name)
    return pair, full, mask_path, f"{note}\n\n{result.note}"


def _save_mask(mask: np.ndarray | None, name: str) -> str | None:
    if mask is None:
        return None
    path = common.output_root() / f"{name}_scratches_{uuid.uuid4().hex[:8]}.png"
    return str(save_png(inpainting.mask_picture(mask), path))


def _editor_value(image: str | None, mask_path: str | None) -> tuple[Any, Any]:
    """The photo with the mask drawn in magenta, for the editor; the mask, for the re-run.

    (Gradio's editor does not draw layers handed to it by the server, so the mask is
    drawn into the picture and corrections are strokes: magenta adds, green removes.)
    """
    if not image or not mask_path:
        return gr.update(), gr.update()
    from PIL import Image

    photo = np.asarray(Image.open(image).convert("RGB")).copy()
    mask = np.asarray(Image.open(mask_path).convert("L")) > 127
    if mask.shape == photo.shape[:2]:
        photo[mask] = _MASK_COLOUR
    path = Path(mask_path).with_name(f"{Path(mask_path).stem}_shown.png")
    Image.fromarray(photo).save(path)
    return {"background": str(path), "layers": [], "composite": str(path)}, mask_path


def bopb_status() -> str:
    """One line for the tab: whether BOPB can run here, else why the fallback will."""
    missing = task.bopb_missing(scratches=True, faces=False)
    if missing is None:
        return "BOPB weights found: *Auto* runs Bringing Old Photos Back to Life."
    return (
        "BOPB's weights are not here, so *Auto* runs the **classical fallback**; the note "
        f"under the result always names the engine that ran.\n\n<small>{missing}</small>"
    )


def _face_choices() -> list[tuple[str, str]]:
    choices = [("Off", OFF), ("BOPB face network (needs BOPB weights)", task.BOPB_FACES)]
    for card in face_models():
        mark = " — non-commercial" if card.non_commercial else ""
        choices.append((f"{card.title}{mark}", card.id))
    return choices


def build() -> None:
    """Lay out the tab (its menus list built-in models only: "Off" comes first)."""
    with gr.Row():
        with gr.Column():
            image = UploadedImage(label="Old photo", type="filepath", height=360)
            scratches = gr.Checkbox(True, label="The photo has scratches, tears or dust")
            method = gr.Dropdown(METHOD_CHOICES, value="auto", label="Engine")
            gr.Markdown(bopb_status())
            faces = gr.Dropdown(_face_choices(), value=OFF, label="Enhance faces")
            colorize = gr.Dropdown(
                [("Off", OFF), *common.model_choices("colorize")],
                value=OFF,
                label="Colorize afterwards",
            )
            upscale = gr.Radio(UPSCALE_CHOICES, value=1, label="Upscale (bundled SPAN model)")
            run = gr.Button("Restore", variant="primary")
        with gr.Column():
            slider = gr.ImageSlider(label="Before / after", type="filepath", format="png")
            download = gr.File(label="Full-resolution PNG")
            mask = gr.Image(
                label="Scratch mask used (white = repaired)", type="filepath", interactive=False
            )
            note = gr.Markdown()
    with gr.Accordion("Correct the scratch mask and re-run the repair", open=False):
        gr.Markdown(
            "The detected scratches are drawn in magenta. Paint **magenta** over scratches "
            "that were missed and **green** over marks that are not scratches, then re-run "
            "(the mask below is the starting point; replace it to start from another). "
            "The same options apply."
        )
        editor = gr.ImageEditor(
            label="Scratch mask",
            type="filepath",
            image_mode="RGBA",
            format="png",
            brush=gr.Brush(
                colors=["#ff00ff", "#00ff00"],
                default_color="#ff00ff",
                default_size=6,
                color_mode="fixed",
            ),
            eraser=gr.Eraser(),
            layers=True,
            height=480,
        )
        mask_file = gr.File(
            label="Scratch mask to start from (same size as the photo; white = scratch)",
            file_types=["image"],
            type="filepath",
        )
        rerun = gr.Button("Re-run the repair with this mask")
    gr.Examples(common.example_files("old_photo_small.png"), inputs=image)
    options = [method, faces, colorize, upscale]
    outputs = [slider, download, mask, note]
    run.click(
        restore_old_photo,
        [image, scratches, *options],
        outputs,
        api_name="restore_old_photo",
        concurrency_id=common.MODEL_CONCURRENCY_ID,
    ).success(
        _editor_value, [image, mask], [editor, mask_file], api_visibility="private", queue=False
    )
    rerun.click(
        rerun_old_photo,
        [image, editor, mask_file, *options],
        outputs,
        api_name="rerun_old_photo",
        concurrency_id=common.MODEL_CONCURRENCY_ID,
    )
