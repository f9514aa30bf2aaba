"""Aligning a face to the FFHQ template and mapping the restored crop back.

Coordinates follow OpenCV's ``warpAffine``: pixel centres sit on integer coordinates.
A 2x3 matrix maps a point of the source image to the crop; ``paste_matrix`` maps a
crop point to the upscaled image.
"""

from __future__ import annotations

import cv2
import numpy as np

CROP = 512
FFHQ_TEMPLATE = np.array(
    [
        [192.98138, 239.94708],  # eye on the left
        [318.90277, 240.19360],  # eye on the right
        [256.63416, 314.01935],  # nose tip
        [201.26117, 371.41043],  # mouth corner on the left
        [313.08905, 371.15118],  # mouth corner on the right
    ]
)
"""Where the 5 landmarks of an FFHQ face sit in a 512 px crop (facexlib's template)."""
BORDER_RGB = (132 / 255, 133 / 255, 135 / 255)
"""The grey facexlib fills crop pixels outside the image with."""


def alignment_matrix(landmarks: np.ndarray) -> np.ndarray | None:
    """The similarity transform (2x3) that best maps 5 landmarks onto the template.

    Least median of squares, as facexlib fits it, so one badly placed landmark does
    not skew the crop. None when the landmarks are degenerate (e.g. all one point).
    """
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    matrix, _ = cv2.estimateAffinePartial2D(points, FFHQ_TEMPLATE, method=cv2.LMEDS)
    if (
        matrix is None
        or not np.all(np.isfinite(matrix))
        or abs(np.linalg.det(matrix[:, :2])) < 1e-9
    ):
        return None
    return matrix


def warp_to_template(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The aligned 512 px face crop of an RGB float image."""
    crop = cv2.warpAffine(
        np.ascontiguousarray(rgb, dtype=np.float32),
        matrix,
        (CROP, CROP),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=BORDER_RGB,
    )
    return crop


def paste_matrix(matrix: np.ndarray, scale: float) -> np.ndarray:
    """Maps crop pixels to the image upscaled ``scale`` times from the one ``matrix`` cropped.

    The inverse of ``matrix`` maps to source pixels; a source pixel centre x lands at
    ``scale * x + (scale - 1) / 2`` in the upscaled image, as every resampler that aligns
    pixel centres puts it (facexlib adds ``scale / 2``, half a pixel off).
    """
    inverse = cv2.invertAffineTransform(matrix) * scale
    inverse[:, 2] += (scale - 1) / 2
    return inverse


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 matrix to (N, 2) points."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]
