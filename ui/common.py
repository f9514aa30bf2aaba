"""What every tab shares: reading the upload, running a task, shaping the outputs."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import gradio as gr
import numpy as np

from pipelines.errors import RestorationError
from pipelines.images import Picture, load_image, output_name, resize_plane, save_png
from pipelines.registry import ModelCard, Task, cards_for, lookup
from pipelines.weights import card_state
from ui.limits import Deadline

DISPLAY_MAX_SIDE = 2048
MODEL_CONCURRENCY_ID = "model"

TabResult = tuple[tuple[str, str], str, str]
"""What an upscaling tab returns: (before, after) for the slider, the full PNG, a note."""


def output_root() -> Path:
    """Where results are written; the only folder besides Gradio's cache we serve from."""
    default = Path(tempfile.gettempdir()) / "restoration-lab" / "outputs"
    root = Path(os.environ.get("RESTORATION_OUTPUT_DIR", default))
    root.mkdir(parents=True, exist_ok=True)
    return root


def _choice_label(card: ModelCard) -> str:
    state = card_state(card).state
    mark = {"downloadable": f" — download {card.size_mb:g} MB", "unavailable": " — unavailable"}
    return f"{card.title} ({card.id}){mark.get(state, '')}"


def model_choices(task: Task) -> list[tuple[str, str]]:
    """Dropdown choices for a task, built-in and session models, with their state."""
    return [(_choice_label(card), card.id) for card in cards_for(task)]


def refreshed_menu(task: Task, current: str) -> dict:
    """A model menu's choices rebuilt (new custom models, weights placed or downloaded
    since the page was built), keeping the user's pick."""
    return gr.update(choices=model_choices(task), value=current)


def find_card(model_id: str) -> ModelCard:
    """The card for a dropdown or API value, or a readable ``gr.Error``."""
    try:
        return lookup(model_id)
    except RestorationError as error:
        raise gr.Error(str(error)) from None


def model_info(model_id: str) -> str:
    try:
        card = lookup(model_id)
    except RestorationError as error:
        return str(error)
    state = card_state(card)
    note = "" if state.usable else f"\n\n*{state.state}: {state.detail}*"
    return card.summary() + note


def read_upload(path: str | None) -> Picture:
    if not path:
        raise gr.Error("Upload an image first.")
    try:
        return load_image(path, name=Path(path).stem)
    except RestorationError as error:
        raise gr.Error(str(error)) from None


def gradio_progress(progress: gr.Progress, title: str) -> Callable[[float, str], None]:
    """Report to the browser; raises TimeLimitError once the request's time limit passed."""
    deadline = Deadline()

    def report(fraction: float, message: str) -> None:
        deadline.check()
        progress(min(max(fraction, 0.0), 1.0), desc=f"{title}: {message}")

    return report


def _display_copy(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """The same pixels at most DISPLAY_MAX_SIDE wide, for the browser slider."""
    factor = min(1.0, DISPLAY_MAX_SIDE / max(width, height))
    return resize_plane(rgb, max(1, round(width * factor)), max(1, round(height * factor)))


def publish(before: Picture, after: Picture, card: ModelCard, seconds: float) -> TabResult:
    """Write the full-resolution PNG and a before/after pair for the slider."""
    folder = output_root() / uuid.uuid4().hex
    folder.mkdir(parents=True)
    full = save_png(after, folder / output_name(after, card.id))
    width, height = after.width, after.height
    before_view = before.with_pixels(_display_copy(before.rgb, width, height), None)
    after_view = after.with_pixels(_display_copy(after.rgb, width, height), None)
    before_path = save_png(before_view, folder / "before.png")
    after_path = save_png(after_view, folder / "after.png")
    note = (
        f"**{card.title}** · {before.width}×{before.height} → {width}×{height} · "
        f"{seconds:.1f} s · full resolution PNG below"
    )
    return (str(before_path), str(after_path)), str(full), note


def run_task(task: Callable[[], Picture]) -> tuple[Picture, float]:
    """Run a task, turning our errors into readable ``gr.Error`` messages."""
    started = time.perf_counter()
    try:
        result = task()
    except RestorationError as error:
        raise gr.Error(str(error)) from None
    except MemoryError:
        raise gr.Error("Out of memory: try a smaller tile size or a smaller image.") from None
    return result, time.perf_counter() - started


def example_files(*names: str) -> list[str]:
    folder = Path(__file__).resolve().parent.parent / "examples"
    return [str(folder / name) for name in names if (folder / name).exists()]
