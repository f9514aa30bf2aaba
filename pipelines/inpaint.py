"""Inpainting: fill the part of a picture a mask marks, leave every other pixel as it was.

    mask = mask_from_file("mask.png", (picture.width, picture.height))     # white = fill
    mask = mask_from_editor(editor_value, (picture.width, picture.height))  # painted = fill
    result = inpaint(picture, mask, "opencv-telea", dilate=4)

Mask rules: a mask is a bool array at the picture's resolution, True = fill. A mask
image must have exactly the picture's size (white, i.e. luma >= 50 %, and opaque =
fill). Editor layers may come back at another size (a canvas scaled from the original):
they are mapped back with nearest-neighbour (area coverage when shrinking) and any
painted pixel (alpha > 0, or non-black without alpha) counts. ``dilate`` grows the mask
by N pixels with an elliptical kernel, to cover the fringe of a scratch or an object's
shadow. An empty mask, or one that covers the whole picture, is refused.

Exactness: the result is ``where(mask, filled, original)`` at full resolution, so every
pixel outside the dilated mask keeps its value (and its 8 or 16 bits); alpha is kept.

Crop strategy (after IOPaint's "crop" HD strategy): a picture whose long side fits the
method's working size (``WORKING_SIDE``) is filled in one pass. A larger one is filled
crop by crop: each connected part of the mask gets its bounding box plus a context
margin of ``max(MIN_CONTEXT, half the box's long side)`` pixels; overlapping crops are
merged; a crop whose long side is still above the working size is shrunk to it (area),
filled, and the fill scaled back up (bicubic). A small scratch on a 4000 px photo
therefore costs a few hundred pixels of work, not 12 megapixels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import cv2
import numpy as np

from pipelines.backends import ProgressFn, no_progress
from pipelines.errors import InputImageError, InvalidOptionError
from pipelines.images import ImageSource, Picture, load_image, resize_plane
from pipelines.registry import ModelCard, lookup

Filler = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(RGB float32 HxWx3 in [0, 1], bool mask HxW) -> the image with the masked pixels filled."""

MAX_DILATE = 64
MIN_CONTEXT = 128
MAX_CROPS = 32
"""Above this many separate mask parts, one crop around all of them is cheaper."""

WORKING_SIDE = {"telea": 2048, "navier-stokes": 2048, "patchmatch": 1024, "lama": 1024}
"""Longest side, in pixels, each method fills at. LaMa was trained at 256 px but its
Fourier convolutions carry to about 1-2k; 1024 keeps a CPU run within seconds to tens of
seconds and memory under a few GB. PatchMatch slows down quadratically with the hole's
size. OpenCV's methods are cheap but blur big holes anyway, so 2048 is ample."""

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_EMPTY_MASK = (
    "The mask is empty: paint over the area to fill, or upload a mask image in which "
    "white marks it."
)


@dataclass(frozen=True)
class Box:
    """A crop ``[top:bottom, left:right]``."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.bottom), slice(self.left, self.right)

    def overlaps(self, other: Box) -> bool:
        return not (
            self.bottom <= other.top
            or other.bottom <= self.top
            or self.right <= other.left
            or other.right <= self.left
        )

    def union(self, other: Box) -> Box:
        return Box(
            min(self.top, other.top),
            min(self.left, other.left),
            max(self.bottom, other.bottom),
            max(self.right, other.right),
        )


# ---------------------------------------------------------------- masks


def mask_from_file(source: ImageSource, size: tuple[int, int]) -> np.ndarray:
    """A mask image (white = fill) as a bool array; it must be exactly ``size`` (w, h)."""
    picture = load_image(source, name="mask")
    if (picture.width, picture.height) != size:
        raise InputImageError(
            f"The mask is {picture.width}×{picture.height} pixels but the image is "
            f"{size[0]}×{size[1]}: upload a mask of the same size (white = fill)."
        )
    value = picture.rgb @ _LUMA
    if picture.alpha is not None:
        value = value * picture.alpha  # transparent counts as black
    return value >= 0.5


def mask_from_editor(value: Mapping[str, Any] | None, size: tuple[int, int]) -> np.ndarray:
    """The painted pixels of a ``gr.ImageEditor`` value's layers, at ``size`` (w, h).

    Layers may be file paths, bytes or arrays; the background and composite are ignored.
    """
    mask = np.zeros((size[1], size[0]), dtype=bool)
    for layer in (value or {}).get("layers") or []:
        if layer is not None:
            mask |= _painted(load_image(layer, name="layer"), size)
    return mask


def _painted(layer: Picture, size: tuple[int, int]) -> np.ndarray:
    painted = layer.alpha > 0 if layer.alpha is not None else layer.rgb.max(axis=2) > 0
    return scale_mask(painted, size)


def scale_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A bool mask at ``size`` (w, h): nearest-neighbour up, any coverage down.

    Refuses a mask whose aspect ratio differs from the target's by more than 2 %.
    """
    height, width = mask.shape
    if (width, height) == size:
        return mask
    if abs(width / height - size[0] / size[1]) > 0.02 * size[0] / size[1]:
        raise InputImageError(
            f"The painted mask is {width}×{height} pixels, a different shape from the "
            f"{size[0]}×{size[1]} image; paint on the image itself."
        )
    shrinking = size[0] < width or size[1] < height
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_NEAREST
    scaled = cv2.resize(mask.astype(np.float32), size, interpolation=interpolation)
    return scaled > 0


def dilate_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow a bool mask by ``pixels`` with an elliptical kernel."""
    if pixels <= 0:
        return mask.astype(bool)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def prepare_mask(mask: np.ndarray, picture: Picture, dilate: int = 0) -> np.ndarray:
    """The mask ``inpaint`` fills: checked against the picture and dilated.

    The UI saves it (``mask_picture``) so a user can download and re-upload it.
    """
    mask = np.asarray(mask)
    if mask.shape != (picture.height, picture.width):
        shape = "×".join(str(n) for n in mask.shape[1::-1])
        raise InputImageError(
            f"The mask is {shape} pixels but the image is {picture.width}×{picture.height}; "
            "they must match."
        )
    if not isinstance(dilate, (int, np.integer)) or not 0 <= dilate <= MAX_DILATE:
        raise InvalidOptionError(
            f"Dilation must be a whole number of pixels from 0 to {MAX_DILATE}, not {dilate!r}."
        )
    if not mask.any():
        raise InputImageError(_EMPTY_MASK)
    used = dilate_mask(mask, int(dilate))
    if used.all():
        raise InputImageError(
            "The mask covers the whole image, so there is nothing left to fill it from: "
            "mark only the part to replace (white = fill)."
        )
    return used


def mask_picture(mask: np.ndarray, name: str = "mask") -> Picture:
    """A bool mask as a black-and-white 8-bit picture (white = fill), ready for ``save_png``."""
    plane = mask.astype(np.float32)
    return Picture(
        rgb=np.dstack([plane, plane, plane]),
        alpha=None,
        grayscale=True,
        bit_depth=8,
        icc_profile=None,
        exif=None,
        name=name,
    )


# ---------------------------------------------------------------- crops


def crop_boxes(mask: np.ndarray, working_side: int) -> list[Box]:
    """Where to fill: the whole image when it fits ``working_side``, else crops around
    each part of the mask with context (see the module docstring)."""
    height, width = mask.shape
    if max(height, width) <= working_side:
        return [Box(0, 0, height, width)]
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    boxes = [_with_context(stats[i], height, width) for i in range(1, count)]
    if len(boxes) > MAX_CROPS:
        whole = boxes[0]
        for box in boxes[1:]:
            whole = whole.union(box)
        return [whole]
    return _merged(boxes)


def _with_context(stat: np.ndarray, height: int, width: int) -> Box:
    left, top, box_width, box_height = (int(v) for v in stat[:4])
    margin = max(MIN_CONTEXT, max(box_width, box_height) // 2)
    return Box(
        max(0, top - margin),
        max(0, left - margin),
        min(height, top + box_height + margin),
        min(width, left + box_width + margin),
    )


def _merged(boxes: list[Box]) -> list[Box]:
    """Union overlapping boxes until none overlap, so no pixel is filled twice."""
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        for i, first in enumerate(merged):
            partner = next(
                (j for j in range(i + 1, len(merged)) if first.overlaps(merged[j])), None
            )
            if partner is not None:
                merged[i] = first.union(merged.pop(partner))
                changed = True
                break
    return merged


def fill_crop(rgb: np.ndarray, mask: np.ndarray, fill: Filler, working_side: int) -> np.ndarray:
    """Fill one crop at most ``working_side`` on its long side; pixels outside ``mask`` kept."""
    height, width = mask.shape
    factor = working_side / max(height, width)
    if factor >= 1:
        filled = fill(rgb, mask)
    else:
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        small = resize_plane(rgb, *size)
        # Any coverage counts, so a thin scratch does not vanish when shrunk.
        small_mask = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
        filled = resize_plane(fill(small, small_mask), width, height)
    return np.where(mask[:, :, None], filled, rgb)


# ---------------------------------------------------------------- the task


def inpaint(
    picture: Picture,
    mask: np.ndarray,
    model_id: str,
    *,
    dilate: int = 0,
    progress: ProgressFn = no_progress,
) -> Picture:
    """Fill the pixels where ``mask`` (bool, H×W, True = fill) is set, after dilating it.

    Pixels outside the dilated mask are returned unchanged; alpha is kept as it was.
    """
    card = _card(model_id)
    used = prepare_mask(mask, picture, dilate)
    progress(0.0, "loading")
    fill = load_filler(card)
    side = WORKING_SIDE[card.family]
    boxes = crop_boxes(used, side)
    rgb = picture.rgb.copy()
    for index, box in enumerate(boxes):
        progress(index / len(boxes), f"filling region {index + 1} of {len(boxes)}")
        rgb[box.slices] = fill_crop(picture.rgb[box.slices], used[box.slices], fill, side)
    progress(1.0, "done")
    result = np.where(used[:, :, None], rgb, picture.rgb)
    return picture.with_pixels(result, picture.alpha)


def _card(model_id: str) -> ModelCard:
    card = lookup(model_id)
    if "inpaint" not in card.tasks or card.family not in WORKING_SIDE:
        raise InvalidOptionError(
            f"{card.title} is not an inpainting method; "
            "`python -m pipelines models` lists the models of each task."
        )
    return card


def load_filler(card: ModelCard) -> Filler:
    """The fill function for an inpainting card (loads LaMa's weights on first use)."""
    from pipelines.backends import classical_inpaint

    if card.family == "telea":
        return partial(classical_inpaint.opencv_fill, method="telea")
    if card.family == "navier-stokes":
        return partial(classical_inpaint.opencv_fill, method="ns")
    if card.family == "patchmatch":
        return classical_inpaint.patchmatch_fill
    from pipelines.backends.torch import lama

    return lama.load(card)
