"""Old-photo restoration: scratches, dust, grain and fading repaired, faces enhanced.

    result = restore_old_photo(picture, OldPhotoOptions(scratches=True, faces="bopb"))
    result.picture, result.mask, result.method, result.note
    again = rerun_with_mask(picture, corrected_mask, options)   # no detection this time

Two engines do the repair step, chosen by ``OldPhotoOptions.method``:

- ``bopb``: Microsoft's Bringing Old Photos Back to Life (Wan et al., CVPR 2020) as
  ``pipelines.backends.torch.bopb`` implements it: its detection U-Net finds the
  scratches, the VAE + latent mapping network restores the whole photo (the
  patch-attention variant, guided by the mask, when scratches are on).
- ``classical``, the offline fallback that needs no downloaded weights: the classical
  detector of ``pipelines.scratches``, the mask (grown by ``INPAINT_DILATE`` px) filled
  with an inpainting method (OpenCV Telea by default), non-local-means denoising
  scaled to the measured grain, and a fading correction that stretches the luminance
  back to full range (one gain and offset for all channels, so the tone is kept).

``auto`` (the default) uses BOPB when every checkpoint it needs is here and says in
the note that it fell back otherwise. Then, in this order: face enhancement (BOPB's
face network at 1x, or GFPGAN / CodeFormer after upscaling, as the SR tab does),
colorization (``pipelines.colorize``), and x2 / x4 upscaling with a bundled SPAN model.

A user-corrected mask (``mask=``, H×W bool at the input's size) replaces detection; the
repair step and everything after it run again. The mask used is returned, so the UI
can show it and a user can edit it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from pipelines.backends import ProgressFn, no_progress
from pipelines.errors import (
    InputImageError,
    InvalidOptionError,
    ModelUnavailableError,
    RestorationError,
)
from pipelines.images import Picture

if TYPE_CHECKING:
    from pipelines.faces import FaceEnhancer

Method = Literal["auto", "bopb", "classical"]
METHODS: tuple[str, ...] = ("auto", "bopb", "classical")
BOPB_FACES = "bopb"
UPSCALERS = {2: "span-x2-ch48", 4: "span-x4-ch48"}
"""Bundled, fast models for the optional upscale (SPAN: about 1 s for 256 px on a CPU)."""
INPAINT_DILATE = 1
"""The classical detector marks a scratch's core; one more pixel covers its JPEG halo."""
DEFAULT_INPAINT = "opencv-telea"
NOISE_TO_STRENGTH = 1.0
MAX_DENOISE = 12.0
LEVEL_PERCENTILES = (0.5, 99.5)
MAX_FADE_GAIN = 1.3
LOW_CONTRAST_RANGE = (0.3, 0.5)
FALLBACK_LABEL = "classical fallback (OpenCV; no BOPB weights used)"
NOT_INSTALLED = "the BOPB networks are not part of this installation"
CLASSICAL_CARD = "old-photo-classical"
BOPB_CARDS = {False: "bopb-restoration-quality", True: "bopb-restoration-scratch"}
BOPB_DETECTION_CARD = "bopb-scratch-detection"
BOPB_FACE_CARD = "bopb-face-enhancement"
"""The registry card of each engine (BOPB's by scratch mode): names outputs, shows licences."""
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class OldPhotoOptions:
    """What to do. ``faces``: None, ``"bopb"`` or a face model id (gfpgan-v1.4,
    codeformer); ``colorize``: None or a colorize model id; ``upscale``: 1, 2 or 4."""

    scratches: bool = False
    faces: str | None = None
    face_fidelity: float = 0.5
    colorize: str | None = None
    upscale: int = 1
    method: Method = "auto"
    inpaint_model: str = DEFAULT_INPAINT

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InvalidOptionError(
                f"Unknown method {self.method!r}; use one of {', '.join(METHODS)}."
            )
        if self.upscale not in (1, *UPSCALERS):
            raise InvalidOptionError(f"Upscale must be 1, 2 or 4, not {self.upscale!r}.")


@dataclass(frozen=True, eq=False)
class OldPhotoResult:
    """The restored picture, the scratch mask used (None without scratches), which
    engine repaired it (``bopb`` or ``classical``) and one line for the user."""

    picture: Picture
    mask: np.ndarray | None
    method: str
    note: str


# ---------------------------------------------------------------- the task


def restore_old_photo(
    picture: Picture,
    options: OldPhotoOptions = OldPhotoOptions(),
    *,
    mask: np.ndarray | None = None,
    progress: ProgressFn = no_progress,
) -> OldPhotoResult:
    """Restore an old photo; with ``mask`` (a corrected scratch mask) detection is skipped."""
    scratches = options.scratches or mask is not None
    if mask is not None:
        mask = _checked_mask(mask, picture)
    method, why = resolve_method(options.method, scratches, options.faces == BOPB_FACES)
    face_enhancer = _load_face_model(options)  # fails before the long work, not after it
    _check_colorize(options.colorize)
    notes = [why] if why else []
    progress(0.0, "looking for scratches" if scratches and mask is None else "restoring")
    if scratches and mask is None:
        mask = _detect(picture.rgb, method)
    progress(0.2, "restoring the photo")
    rgb = _repair(picture.rgb, mask, method, options.inpaint_model)
    restored = picture.with_pixels(rgb, picture.alpha)
    if options.faces == BOPB_FACES:
        restored = _bopb_faces(restored, method, notes, progress)
    if options.colorize:
        restored = _colorize(restored, options.colorize, progress)
    upscaled = _upscale(restored, options.upscale, progress)
    if face_enhancer is not None:
        upscaled = _enhance_faces(face_enhancer, upscaled, restored, notes, progress)
    progress(1.0, "done")
    return OldPhotoResult(upscaled, mask, method, _note(method, mask, notes))


def rerun_with_mask(
    picture: Picture,
    mask: np.ndarray,
    options: OldPhotoOptions = OldPhotoOptions(),
    *,
    progress: ProgressFn = no_progress,
) -> OldPhotoResult:
    """The re-run entry: repeat the repair (and every step after it) with a user-corrected
    scratch mask (H×W bool, True = scratch; empty = no scratches); detection is skipped."""
    return restore_old_photo(picture, options, mask=mask, progress=progress)


def resolve_method(method: Method, scratches: bool, faces: bool) -> tuple[str, str]:
    """(engine to use, why it was chosen when that is worth telling) for ``method``."""
    if method == "classical":
        return "classical", ""
    missing = bopb_missing(scratches, faces)
    if missing is None:
        return "bopb", ""
    if method == "bopb":
        raise ModelUnavailableError(missing)
    return "classical", f"BOPB not used: {_short_reason(missing)}"


def engine_card(method: str, scratches: bool) -> str:
    """The registry id that stands for an engine's run (``classical`` or ``bopb``)."""
    return CLASSICAL_CARD if method == "classical" else BOPB_CARDS[scratches]


def default_engine(scratches: bool, faces: bool) -> str:
    """The card of the engine ``auto`` would pick for these options (BOPB or classical)."""
    method, _ = resolve_method("auto", scratches, faces)
    return engine_card(method, scratches)


def method_for_card(model_id: str) -> Method:
    """The engine a card id asks for: the classical card, or any BOPB card."""
    from pipelines.registry import lookup

    card = lookup(model_id)
    if card.id == CLASSICAL_CARD:
        return "classical"
    if card.family == "bopb":
        return "bopb"
    raise InvalidOptionError(
        f"{card.title} does not restore old photos; use {CLASSICAL_CARD} or a BOPB model."
    )


def bopb_missing(scratches: bool, faces: bool) -> str | None:
    """None when BOPB can run with these options, else why not (one sentence).

    The cards' file states are read first: that needs no torch, so the fallback path and
    the tab's status line do not pay for importing it.
    """
    missing = _missing_card(scratches, faces)
    if missing is not None:
        return missing
    module = _bopb_module()
    if module is None:
        return NOT_INSTALLED
    try:
        return module.missing_weights(scratches, faces)
    except RestorationError as error:  # e.g. a card this checkout's registry lacks
        return str(error)


def _missing_card(scratches: bool, faces: bool) -> str | None:
    from pipelines.registry import lookup
    from pipelines.weights import card_state

    needed = [BOPB_CARDS[scratches]]
    needed += [BOPB_DETECTION_CARD] if scratches else []
    needed += [BOPB_FACE_CARD] if faces else []
    for card_id in needed:
        try:
            card = lookup(card_id)
        except RestorationError:
            return NOT_INSTALLED
        state = card_state(card)
        if not state.usable:
            return f"{card.title}: {state.detail}."
    return None


def _bopb_module() -> ModuleType | None:
    try:
        from pipelines.backends.torch import bopb
    except ImportError:
        return None
    return bopb if hasattr(bopb, "missing_weights") else None  # a partial checkout


def _short_reason(missing: str) -> str:
    """The note's version of why BOPB cannot run (the full sentence names files and paths)."""
    if missing.startswith(NOT_INSTALLED):
        return missing
    return "its weights are not here (`python -m pipelines models` says what to unzip where)"


def _checked_mask(mask: np.ndarray, picture: Picture) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != (picture.height, picture.width):
        shape = "×".join(str(n) for n in mask.shape[1::-1])
        raise InputImageError(
            f"The scratch mask is {shape} pixels but the photo is "
            f"{picture.width}×{picture.height}; they must match."
        )
    return mask.astype(bool)


def _detect(rgb: np.ndarray, method: str) -> np.ndarray:
    if method == "bopb":
        return np.asarray(_require_bopb().detect_scratches(rgb), dtype=bool)
    from pipelines.scratches import detect_scratches

    return detect_scratches(rgb)


def _require_bopb() -> ModuleType:
    module = _bopb_module()
    if module is None:
        raise ModelUnavailableError("The BOPB networks are not part of this installation.")
    return module


def _repair(
    rgb: np.ndarray, mask: np.ndarray | None, method: str, inpaint_model: str
) -> np.ndarray:
    if method == "bopb":
        return np.asarray(_require_bopb().restore_global(rgb, mask), dtype=np.float32)
    return classical_repair(rgb, mask, inpaint_model)


# ---------------------------------------------------------------- the classical engine


def classical_repair(
    rgb: np.ndarray, mask: np.ndarray | None, inpaint_model: str = DEFAULT_INPAINT
) -> np.ndarray:
    """Fill the mask, denoise, undo the fading: the offline stand-in for BOPB's network."""
    if mask is not None and mask.any():
        rgb = _inpaint(rgb, mask, inpaint_model)
    return correct_fading(denoise(rgb))


def _inpaint(rgb: np.ndarray, mask: np.ndarray, model_id: str) -> np.ndarray:
    from pipelines import inpaint

    picture = Picture(rgb, None, False, 8, None, None, "photo")
    grown = inpaint.dilate_mask(mask, INPAINT_DILATE)
    if grown.all():
        raise InputImageError(
            "The scratch mask covers the whole photo, so there is nothing to fill it from; "
            "mark only the scratches."
        )
    return inpaint.inpaint(picture, grown, model_id).rgb


def noise_level(rgb: np.ndarray) -> float:
    """The grain's standard deviation in 8-bit levels (MAD of the luma's 3×3 median residual)."""
    luma = np.clip(rgb @ _LUMA * 255.0 + 0.5, 0, 255).astype(np.uint8)
    residual = luma.astype(np.float32) - cv2.medianBlur(luma, 3)
    # A 3×3 median removes about two thirds of white noise's deviation.
    return float(1.4826 * np.median(np.abs(residual)) * 1.5)


def denoise(rgb: np.ndarray) -> np.ndarray:
    """OpenCV's non-local means, as strong as the measured grain (capped), on 8 bits."""
    strength = min(MAX_DENOISE, NOISE_TO_STRENGTH * noise_level(rgb))
    if strength < 1.0:
        return rgb
    image = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    clean = cv2.fastNlMeansDenoisingColored(image, None, strength, strength, 7, 21)
    return clean.astype(np.float32) / np.float32(255.0)


def correct_fading(rgb: np.ndarray) -> np.ndarray:
    """Widen the luminance's 0.5-99.5 % range towards 0-1 around its middle, the same gain
    on every channel, at most ``MAX_FADE_GAIN`` times, less for narrow ranges.

    Fading squeezes the levels (lifted blacks, dull whites); a fade of 0.4 leaves a
    full-range scene 0.82 wide. A range much narrower than that is a low-contrast scene
    (a moon, a misty morning), not a fade, so the gain tapers to 1 between
    ``LOW_CONTRAST_RANGE`` widths. A full stretch to 0-1 lost up to 12 dB on such
    scenes; per-channel stretching would remove a sepia tint but shifts real colours;
    CLAHE lifted local contrast but cost 1-3 dB PSNR (docs/old-photo.md).
    """
    low, high = np.percentile(rgb @ _LUMA, LEVEL_PERCENTILES)
    width = max(float(high - low), 1e-3)
    narrow, wide = LOW_CONTRAST_RANGE
    trust = float(np.clip((width - narrow) / (wide - narrow), 0.0, 1.0))
    gain = 1.0 + (min(MAX_FADE_GAIN, 1.0 / width) - 1.0) * trust
    middle = (low + high) / 2
    return np.clip((rgb - middle) * gain + middle, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------- the steps after


def _load_face_model(options: OldPhotoOptions) -> FaceEnhancer | None:
    """GFPGAN / CodeFormer loaded up front; BOPB's face network is checked by the method."""
    if not options.faces or options.faces == BOPB_FACES:
        return None
    from pipelines import faces

    return faces.load_enhancer(options.faces, options.face_fidelity)


def _check_colorize(model_id: str | None) -> None:
    if not model_id:
        return
    from pipelines import weights
    from pipelines.registry import lookup

    card = lookup(model_id)
    if "colorize" not in card.tasks:
        raise InvalidOptionError(
            f"{card.title} is not a colorization model; "
            "`python -m pipelines models` lists the models of each task."
        )
    weights.resolve(card)


def _bopb_faces(restored: Picture, method: str, notes: list[str], progress: ProgressFn) -> Picture:
    if method != "bopb":
        notes.append("faces not enhanced: BOPB's face network needs the BOPB weights")
        return restored
    progress(0.5, "enhancing faces (BOPB)")
    report = _require_bopb().enhance_faces_report(restored.rgb)
    count = "1 face" if report.faces == 1 else f"{report.faces} faces"
    notes.append(f"{count} enhanced with BOPB (found by {report.detector})")
    return restored.with_pixels(np.asarray(report.rgb, dtype=np.float32), restored.alpha)


def _colorize(restored: Picture, model_id: str, progress: ProgressFn) -> Picture:
    from pipelines.colorize import colorize

    progress(0.6, f"colorizing ({model_id})")
    return colorize(restored, model_id)


def _upscale(restored: Picture, factor: int, progress: ProgressFn) -> Picture:
    if factor == 1:
        return restored
    from pipelines.tasks import super_resolution

    progress(0.7, f"upscaling x{factor}")
    return super_resolution(restored, UPSCALERS[factor], outscale=float(factor))


def _enhance_faces(
    enhancer: FaceEnhancer,
    upscaled: Picture,
    restored: Picture,
    notes: list[str],
    progress: ProgressFn,
) -> Picture:
    progress(0.85, "enhancing faces")
    result = enhancer(upscaled.rgb, restored.rgb, upscaled.width / restored.width)
    notes.append(result.note)
    return upscaled.with_pixels(result.rgb, upscaled.alpha)


def _note(method: str, mask: np.ndarray | None, notes: list[str]) -> str:
    engine = "Bringing Old Photos Back to Life" if method == "bopb" else FALLBACK_LABEL
    parts = [engine]
    if mask is not None:
        parts.append(f"{int(mask.sum())} scratch pixels ({100 * mask.mean():.2f} %)")
    return " · ".join(parts + notes)
