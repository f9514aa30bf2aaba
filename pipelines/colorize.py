"""Colorization: a black-and-white photo in, a colour photo of the same size out.

The model sees a small gray copy and predicts only colour; lightness is never
resampled. As DDColor's own inference does, the output is the original's CIE Lab
lightness L at full resolution with the model's a/b planes upsampled (bilinear) to it.
A colour input is desaturated first (its Lab a/b set to zero), so the model colours
the photo afresh; the progress messages and the result's note say so.
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
MAX_RENDER_FACTOR = 45
"""DeOldify's render factor range ends here (16 x 45 = 720 px); its notebooks offer 7..40."""


def colorize(
    picture: Picture,
    model_id: str,
    *,
    render_factor: int | None = None,
    progress: ProgressFn = no_progress,
) -> Picture:
    """Colour a photo with a colorize model; same size, alpha and metadata, never grayscale.

    ``render_factor`` is DeOldify's setting and is refused by models that work at a
    fixed size (DDColor: 512 px, 256 px for the tiny model).
    """
    card = _colorize_card(model_id)
    if render_factor is not None:
        raise InvalidOptionError(
            f"{card.title} works at a fixed size; render factor is a DeOldify setting."
        )
    lab = cv2.cvtColor(picture.rgb, cv2.COLOR_RGB2Lab)
    if has_colour(lab):
        progress(0.0, DESATURATED_NOTE)
    progress(0.05, "loading the model")
    from pipelines.backends.torch import colorizers

    colorizer = colorizers.load(card)
    progress(0.3, f"predicting colour at {colorizer.input_size} px")
    ab = colorizer.predict_ab(gray_from_lab(lab))
    rgb = combine_lab(lab[:, :, 0], ab)
    progress(1.0, DESATURATED_NOTE if has_colour(lab) else "done")
    return picture.with_pixels(rgb, picture.alpha, grayscale=False)


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
