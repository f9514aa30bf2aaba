"""Colorization: a black-and-white photo in, a colour photo of the same size out.

The model sees a small gray copy and predicts only colour; lightness is never
resampled. Each family puts colour back as its own inference does: DDColor's a/b
planes (CIE Lab) are upsampled onto the original's full-resolution L; DeOldify's
colour image is upsampled and its YUV chroma laid over the original's Y.
A colour input is desaturated first, so the model colours the photo afresh; the
progress messages and the result's note say so.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipelines.backends import ProgressFn, no_progress
from pipelines.errors import InvalidOptionError
from pipelines.images import Picture
from pipelines.registry import TASK_TITLES, ModelCard, lookup

COLOUR_TOLERANCE = 2.0
"""Largest Lab chroma (sqrt(a² + b²)) still counted as gray: JPEG tints gray scans a little."""
DESATURATED_NOTE = "input had colour: desaturated first"
DEFAULT_RENDER_FACTOR = 35
MIN_RENDER_FACTOR = 7
MAX_RENDER_FACTOR = 45
"""DeOldify's render factor range (16·7 = 112 px to 16·45 = 720 px); its notebooks offer 7..40."""


def colorize(
    picture: Picture,
    model_id: str,
    *,
    render_factor: int | None = None,
    progress: ProgressFn = no_progress,
) -> Picture:
    """Colour a photo with a colorize model; same size, alpha and metadata, never grayscale.

    ``render_factor`` is DeOldify's setting (default 35) and is refused by models that
    work at a fixed size (DDColor: 512 px, 256 px for the tiny model).
    """
    card = _colorize_card(model_id)
    factor = _render_factor(card, render_factor)
    lab = cv2.cvtColor(picture.rgb, cv2.COLOR_RGB2Lab)
    coloured_input = has_colour(lab)
    if coloured_input:
        progress(0.0, DESATURATED_NOTE)
    progress(0.05, "loading the model")
    gray = gray_from_lab(lab)
    if uses_render_factor(card):
        from pipelines.backends.torch import deoldify

        generator = deoldify.load(card)
        side = deoldify.RENDER_BASE * factor
        progress(0.3, f"predicting colour at {side} px (render factor {factor})")
        rgb = combine_yuv(gray, generator.predict_rgb(gray, factor))
    else:
        from pipelines.backends.torch import colorizers

        colorizer = colorizers.load(card)
        progress(0.3, f"predicting colour at {colorizer.input_size} px")
        rgb = combine_lab(lab[:, :, 0], colorizer.predict_ab(gray))
    progress(1.0, DESATURATED_NOTE if coloured_input else "done")
    return picture.with_pixels(rgb, picture.alpha, grayscale=False)


def _render_factor(card: ModelCard, render_factor: int | None) -> int:
    if not uses_render_factor(card):
        if render_factor is not None:
            raise InvalidOptionError(
                f"{card.title} works at a fixed size; render factor is a DeOldify setting."
            )
        return 0
    if render_factor is None:
        return DEFAULT_RENDER_FACTOR
    if not MIN_RENDER_FACTOR <= render_factor <= MAX_RENDER_FACTOR:
        raise InvalidOptionError(
            f"Render factor {render_factor} is out of range: use "
            f"{MIN_RENDER_FACTOR}–{MAX_RENDER_FACTOR} (the model sees a 16·N px square)."
        )
    return render_factor


def _colorize_card(model_id: str) -> ModelCard:
    card = lookup(model_id)
    if "colorize" not in card.tasks:
        raise InvalidOptionError(
            f"{card.title} is not offered for {TASK_TITLES['colorize'].lower()}; "
            "`python -m pipelines models` lists the models of each task."
        )
    return card


def uses_render_factor(card: ModelCard) -> bool:
    """Whether a colorize model has DeOldify's render factor (its working size)."""
    return card.family == "deoldify"


def has_colour(lab: np.ndarray) -> bool:
    """Whether any pixel is clearly coloured (beyond ``COLOUR_TOLERANCE``)."""
    chroma = np.hypot(lab[:, :, 1], lab[:, :, 2])
    return bool(np.percentile(chroma, 99.5) > COLOUR_TOLERANCE)


def gray_from_lab(lab: np.ndarray) -> np.ndarray:
    """The RGB image with the same lightness and no colour (a = b = 0)."""
    gray = lab.copy()
    gray[:, :, 1:] = 0.0
    return np.clip(cv2.cvtColor(gray, cv2.COLOR_Lab2RGB), 0.0, 1.0)


def combine_lab(lightness: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Full-resolution RGB from the original L and the model's a/b, upsampled bilinearly."""
    height, width = lightness.shape
    ab = cv2.resize(ab.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    lab = np.dstack([lightness.astype(np.float32), ab])
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0.0, 1.0)


def combine_yuv(original: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """DeOldify's post-processing: the model's colour image, upsampled bilinearly, gives
    U/V; the full-resolution original gives Y (BT.601, as OpenCV's YUV)."""
    height, width = original.shape[:2]
    colour = cv2.resize(colour.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    yuv = cv2.cvtColor(colour, cv2.COLOR_RGB2YUV)
    yuv[:, :, 0] = cv2.cvtColor(original.astype(np.float32), cv2.COLOR_RGB2YUV)[:, :, 0]
    return np.clip(cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB), 0.0, 1.0)
