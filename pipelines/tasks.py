"""Task functions: the one code path the UI, the API, the CLI and the batch worker share.

Each task takes a decoded ``Picture`` and returns a new one with the same metadata
(ICC profile, EXIF, grayscale, bit depth); alpha is upscaled separately and
recombined, so it survives every model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipelines.backends import ProgressFn, load_restorer, no_progress
from pipelines.errors import InvalidOptionError
from pipelines.images import Picture, resize_plane
from pipelines.registry import TASK_TITLES, ModelCard, Task, lookup

MAX_OUTSCALE = 16.0
FACE_STEP_START = 0.6
"""Where the progress bar stands when face enhancement takes over from the upscaler."""


@dataclass(frozen=True)
class TargetSize:
    """An output size asked for by one of its sides instead of a scale factor."""

    width: int | None = None
    height: int | None = None
    shortest_side: int | None = None

    def outscale(self, width: int, height: int) -> float:
        given = [v for v in (self.width, self.height, self.shortest_side) if v]
        if len(given) != 1:
            raise InvalidOptionError("Give exactly one of target width, height or shortest side.")
        if given[0] < 1:
            raise InvalidOptionError("The target size must be a positive number of pixels.")
        if self.width:
            return self.width / width
        if self.height:
            return self.height / height
        return given[0] / min(width, height)


def _card_for(task: Task, model_id: str) -> ModelCard:
    card = lookup(model_id)
    if task not in card.tasks:
        raise InvalidOptionError(
            f"{card.title} is not offered for {TASK_TITLES[task].lower()}; "
            "`python -m pipelines models` lists the models of each task."
        )
    return card


def _check_outscale(outscale: float) -> float:
    if not math.isfinite(outscale) or outscale <= 0:
        raise InvalidOptionError(f"The output scale must be a positive number, not {outscale}.")
    if outscale > MAX_OUTSCALE:
        raise InvalidOptionError(f"The output scale {outscale:g} is above the limit of x16.")
    return outscale


def pick_native_scale(card: ModelCard, outscale: float) -> int:
    """The model scale to run before resizing: the smallest that reaches ``outscale``."""
    reaching = [s for s in sorted(card.scales) if s >= outscale - 1e-6]
    return reaching[0] if reaching else card.native_scale


def _upscale(
    picture: Picture,
    card: ModelCard,
    passes: list[tuple[int, int | None]],
    size: tuple[int, int] | None,
    tile: int,
    progress: ProgressFn,
) -> Picture:
    """Run the model once per (scale, noise) pass, then resize to ``size`` if given."""
    rgb = picture.rgb
    for index, (scale, noise) in enumerate(passes):
        restorer = load_restorer(card, scale, noise)

        def report(fraction: float, message: str, index: int = index) -> None:
            progress((index + fraction) / len(passes), message)

        rgb = restorer(rgb, tile=tile, progress=report)
    if size is not None:
        rgb = resize_plane(rgb, *size)
    alpha = None
    if picture.alpha is not None:
        alpha = resize_plane(picture.alpha, rgb.shape[1], rgb.shape[0])
    progress(1.0, "done")
    return picture.with_pixels(np.ascontiguousarray(rgb, dtype=np.float32), alpha)


def super_resolution(
    picture: Picture,
    model_id: str,
    *,
    outscale: float | None = None,
    target: TargetSize | None = None,
    noise: int | None = None,
    tile: int = 0,
    enhance_faces: str | None = None,
    face_fidelity: float = 0.5,
    progress: ProgressFn = no_progress,
) -> Picture:
    """Upscale a photo with an SR model.

    The model runs at the native scale that best reaches ``outscale`` (default: the
    model's largest) and the result is resized to the exact output size, as
    Real-ESRGAN's ``--outscale`` does. ``target`` asks for a width, height or
    shortest side instead. ``enhance_faces`` names a face model (``gfpgan-v1.4``,
    ``codeformer``) that then restores every detected face, with CodeFormer's
    ``face_fidelity`` (0 = strongest restoration, 1 = closest to the input); its
    outcome ("2 faces enhanced…", "no faces found…") is the last progress message.
    """
    card = _card_for("sr", model_id)
    if target is not None:
        outscale = target.outscale(picture.width, picture.height)
    outscale = _check_outscale(outscale or float(card.native_scale))
    scale = pick_native_scale(card, outscale)
    size = (max(1, round(picture.width * outscale)), max(1, round(picture.height * outscale)))
    if size == (picture.width * scale, picture.height * scale):
        size = None
    if not enhance_faces:
        return _upscale(picture, card, [(scale, noise)], size, tile, progress)
    from pipelines import faces

    # Loaded first: missing face weights fail before a long upscale, not after it.
    enhancer = faces.load_enhancer(enhance_faces, face_fidelity)
    upscaled = _upscale(
        picture, card, [(scale, noise)], size, tile, _scaled(progress, 0.0, FACE_STEP_START)
    )
    result = enhancer(
        upscaled.rgb,
        picture.rgb,
        upscaled.width / picture.width,
        _scaled(progress, FACE_STEP_START, 1.0),
    )
    return upscaled.with_pixels(result.rgb, upscaled.alpha)


def _scaled(progress: ProgressFn, start: float, end: float) -> ProgressFn:
    """``progress`` for one step of a task: the step's 0..1 mapped onto start..end."""

    def report(fraction: float, message: str) -> None:
        progress(start + (end - start) * fraction, message)

    return report


def anime_passes(card: ModelCard, scale: int, noise: int | None) -> list[tuple[int, int | None]]:
    """How to reach ``scale``: one pass when the model offers it, else repeated x2/x3/x4.

    Denoising happens on the first pass only, as waifu2x does for x4 and beyond.
    """
    if scale in card.scales:
        return [(scale, noise)]
    for step in sorted((s for s in card.scales if s > 1), reverse=True):
        count = round(math.log(scale, step))
        if count > 1 and step**count == scale:
            later_noise = _plain_noise(card)
            return [(step, noise)] + [(step, later_noise)] * (count - 1)
    offered = ", ".join(f"x{s}" for s in card.scales)
    raise InvalidOptionError(f"{card.title} offers {offered} (and their powers), not x{scale}.")


def anime_scales(card: ModelCard) -> list[int]:
    """Scales the anime task offers for a card: its own, plus x4/x8 by repeated x2 passes."""
    powers = {s**k for s in card.scales if s > 1 for k in (2, 3) if s**k <= 8}
    return sorted(set(card.scales) | powers)


def _plain_noise(card: ModelCard) -> int | None:
    """The noise level that means "no denoising" for this card, if it has levels."""
    if not card.noise_levels:
        return None
    for level in (-1, 0):
        if level in card.noise_levels:
            return level
    return card.default_noise


def anime_upscale(
    picture: Picture,
    model_id: str,
    *,
    scale: int | None = None,
    noise: int | None = None,
    tile: int = 0,
    progress: ProgressFn = no_progress,
) -> Picture:
    """Upscale (and optionally denoise) anime art or illustrations.

    ``scale`` must be one the model offers or a power of one (x4 with a x2-only model
    runs it twice); ``noise`` picks the denoise level for models that have them.
    """
    card = _card_for("anime", model_id)
    scale = scale or card.native_scale
    return _upscale(picture, card, anime_passes(card, scale, noise), None, tile, progress)
