"""Super-resolution tab: photos and general images."""

from __future__ import annotations

import gradio as gr

from pipelines import tasks
from pipelines.errors import InvalidOptionError
from pipelines.faces import face_models
from pipelines.gpu import on_gpu
from pipelines.registry import MODELS
from ui import common
from ui.components import UploadedImage

SIZE_MODES = ["Scale factor", "Width", "Height", "Shortest side"]
FACES_OFF = "off"


@on_gpu
def super_resolution(
    image: str | None,
    model: str,
    outscale: float = 4,
    size_mode: str = "Scale factor",
    size_value: int = 0,
    noise: int = -1,
    tile: int = 0,
    faces: str = FACES_OFF,
    face_fidelity: float = 0.5,
    progress: gr.Progress = gr.Progress(),
) -> common.TabResult:
    """Upscale a photo, optionally enhancing its faces (``faces``: off, gfpgan-v1.4, codeformer).

    Returns (before/after pair, full-resolution PNG, a note).
    """
    card = common.find_card(model)
    picture = common.read_upload(image)
    target = _target(size_mode, size_value)
    noise_level = int(noise) if card.noise_levels else None
    face_model = None if faces in (None, "", FACES_OFF) else faces
    messages: list[str] = []
    report = common.gradio_progress(progress, card.title)

    def tracked(fraction: float, message: str) -> None:
        messages.append(message)
        report(fraction, message)

    def work() -> tasks.Picture:
        return tasks.super_resolution(
            picture,
            model,
            outscale=None if target else float(outscale),
            target=target,
            noise=noise_level,
            tile=int(tile or 0),
            enhance_faces=face_model,
            face_fidelity=float(face_fidelity),
            progress=tracked,
        )

    result, seconds = common.run_task(work)
    pair, full, note = common.publish(picture, result, card, seconds)
    if face_model and messages:
        note += f" · {messages[-1]}"  # the face step's outcome: how many faces, which mask
    return pair, full, note


def _face_choices() -> list[tuple[str, str]]:
    choices = [("Off", FACES_OFF)]
    for card in face_models():
        mark = " — non-commercial" if card.non_commercial else ""
        choices.append((f"{card.title}{mark}", card.id))
    return choices


def _faces_changed(faces: str) -> dict:
    """The fidelity slider is CodeFormer's w: shown only when CodeFormer is chosen."""
    architecture = ""
    if faces and faces != FACES_OFF:
        architecture = common.find_card(faces).architecture
    return gr.update(visible=architecture == "CodeFormer")


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
            faces = gr.Dropdown(
                _face_choices(),
                value=FACES_OFF,
                label="Enhance faces",
                info="Restore each detected face after upscaling (GFPGAN or CodeFormer).",
            )
            face_fidelity = gr.Slider(
                0,
                1,
                value=0.5,
                step=0.05,
                label="Face fidelity (CodeFormer)",
                info="0 = strongest restoration, 1 = closest to the input.",
                visible=False,
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
    faces.change(_faces_changed, faces, face_fidelity, api_visibility="private", queue=False)
    run.click(
        super_resolution,
        [image, model, outscale, size_mode, size_value, noise, tile, faces, face_fidelity],
        [slider, download, note],
        api_name="super_resolution",
        concurrency_id=common.MODEL_CONCURRENCY_ID,
    )
    return model
