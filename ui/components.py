"""Custom Gradio components (Gradio writes a ``.pyi`` stub beside this file; it is ignored)."""

from __future__ import annotations

from typing import Any

import gradio as gr


class UploadedImage(gr.Image):
    """``gr.Image`` that hands over the uploaded file untouched.

    Gradio's own preprocessing opens the file with PIL first, so a broken upload fails
    with an opaque error before our code runs and 16-bit data, ICC profiles and EXIF
    are lost. Validation and decoding happen in ``pipelines.images`` instead.
    """

    def get_block_name(self) -> str:
        return "image"  # the browser renders it with gr.Image's own frontend

    def preprocess(self, payload: Any) -> Any:
        if payload is None:
            return None
        if payload.path is None:
            return super().preprocess(payload)
        return payload.path
