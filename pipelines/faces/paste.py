"""Pasting a restored face crop back onto the upscaled image with a feathered mask.

Only the region the warped crop covers is touched: the face and its mask are warped into
that region's bounding box, never into a full-size canvas, so memory stays bounded by the
face, not by the image. Two masks, as facexlib's FaceRestoreHelper has them:

- without face parsing, the whole crop square, eroded by a twentieth of its side and
  Gaussian-feathered over as much, so the crop's edges never show;
- with face parsing, the parsed face region (already soft, see ``parsenet.face_mask``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from pipelines.faces.align import CROP, transform_points

Region = tuple[int, int, int, int]
"""x0, y0, x1, y1 (exclusive) in the upscaled image."""

MARGIN = 2


def footprint(inverse: np.ndarray, width: int, height: int) -> Region | None:
    """The bounding box of the crop square in the upscaled image, clipped; None if outside."""
    corners = transform_points(inverse, [[-1, -1], [CROP, -1], [-1, CROP], [CROP, CROP]])
    x0 = max(0, math.floor(corners[:, 0].min()) - MARGIN)
    y0 = max(0, math.floor(corners[:, 1].min()) - MARGIN)
    x1 = min(width, math.ceil(corners[:, 0].max()) + MARGIN + 1)
    y1 = min(height, math.ceil(corners[:, 1].max()) + MARGIN + 1)
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def _warp(plane: np.ndarray, inverse: np.ndarray, region: Region, border: int) -> np.ndarray:
    """Warp a crop-space plane into ``region`` of the upscaled image."""
    x0, y0, x1, y1 = region
    local = inverse.copy()
    local[:, 2] -= (x0, y0)
    return cv2.warpAffine(
        np.ascontiguousarray(plane, dtype=np.float32),
        local,
        (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR,
        borderMode=border,
        borderValue=0,
    )


def square_mask(inverse: np.ndarray, region: Region, scale: float) -> np.ndarray:
    """facexlib's mask without parsing: the warped crop square, eroded and feathered."""
    inside = _warp(np.ones((CROP, CROP), np.float32), inverse, region, cv2.BORDER_CONSTANT)
    # Drop the half-covered rim the bilinear warp leaves around the square.
    rim = max(1, int(2 * scale))
    inside = cv2.erode(inside, np.ones((rim, rim), np.uint8))
    edge = int(math.sqrt(float(inside.sum()))) // 20
    if edge < 1:
        return inside
    centre = cv2.erode(inside, np.ones((2 * edge, 2 * edge), np.uint8))
    feathered = cv2.GaussianBlur(centre, (2 * edge + 1, 2 * edge + 1), 0)
    # The blur's last tail can pass the rim by a pixel; facexlib then blends in black there.
    return feathered * inside


def paste_face(
    image: np.ndarray,
    face: np.ndarray,
    inverse: np.ndarray,
    scale: float,
    face_mask: np.ndarray | None = None,
) -> Region | None:
    """Blend a restored crop into ``image`` (H, W, 3 float32, changed in place).

    ``inverse`` maps crop pixels to ``image`` (``align.paste_matrix``); ``face_mask``
    is a soft (512, 512) mask in crop space, or None for the feathered square.
    Returns the region that may have changed, None when the face lies outside.
    """
    height, width = image.shape[:2]
    region = footprint(inverse, width, height)
    if region is None:
        return None
    if face_mask is None:
        mask = square_mask(inverse, region, scale)
    else:
        mask = _warp(face_mask, inverse, region, cv2.BORDER_CONSTANT)
    # Replicated edges: wherever the mask reaches, the face has real pixels, not black.
    warped = _warp(face, inverse, region, cv2.BORDER_REPLICATE)
    x0, y0, x1, y1 = region
    target = image[y0:y1, x0:x1]
    alpha = np.clip(mask, 0.0, 1.0)[:, :, None]
    target += alpha * (warped - target)
    return region
