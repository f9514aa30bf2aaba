"""Classical scratch and dust detection for old photos: RGB in, a bool mask out.

    mask = detect_scratches(rgb)          # H×W bool, True on scratches and dust specks

The offline counterpart of BOPB's detection U-Net, built from morphology and tuned on
the synthetic scratches of ``evaluation.degradations.OldPhoto``:

1. Residual: the luma minus its 5×5 median. A median keeps edges and smooth shading
   but removes lines and specks thinner than half its window, so scratches stand out
   (bright ones positive, dark ones negative; each sign is handled on its own).
2. Local contrast: the residual divided by a robust local noise level (a box average
   of the clipped absolute residual over ``NOISE_WINDOW`` px, never below the global
   MAD estimate), so film grain and fine texture need more contrast to count.
3. Scratches: pixels above ``LOW_Z`` with the thick blobs removed (an opening with a
   disk), then kept only where a straight run of ``LINE_LENGTH`` px in one of
   ``ANGLES`` directions fits (directional line openings): thin and elongated. A kept
   segment must span ``MIN_LENGTH_SHARE`` of the short side and peak above ``HIGH_Z``
   (hysteresis); it then takes back the contrasted pixels touching it (its width).
4. Dust: compact specks (area up to ~(short/75)² px, aspect ratio at most 2.5) that
   peak above ``SPECK_Z``.
5. Wide scratches: a 5×5 median keeps a line 3 px wide, so steps 1-4 also run at half
   size; what they find there counts at full size where the residual from a 9×9
   median is above ``WIDE_Z`` (which keeps the mask as thin as the scratch).

Large photos are searched at a working size (short side ``WORKING_SHORT_SIDE``) and
the mask is scaled back up, since the window sizes are tuned for that resolution.
Measured precision and recall are in docs/old-photo.md.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipelines.errors import InputImageError

MEDIAN_SIZE = 5
NOISE_WINDOW = 31
LOW_Z = 4.5
HIGH_Z = 10.0
SPECK_Z = 10.0
LINE_LENGTH = 15
ANGLES = 12
BLOB_SIZE = 5
MIN_LENGTH_SHARE = 0.06
SPECK_ASPECT = 2.5
WORKING_SHORT_SIDE = 768
MIN_SIDE = 16
WIDE_MEDIAN_SIZE = 9
WIDE_Z = 6.0
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_SQUARE = np.ones((3, 3), np.uint8)


def detect_scratches(rgb: np.ndarray) -> np.ndarray:
    """The scratches and dust specks of a photo (RGB float32 H×W×3 in [0, 1]) as a bool mask."""
    _check_rgb(rgb)
    height, width = rgb.shape[:2]
    factor = WORKING_SHORT_SIDE / min(height, width)
    if factor >= 1:
        return _detect(rgb @ _LUMA)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    small = cv2.resize(rgb @ _LUMA, size, interpolation=cv2.INTER_AREA)
    found = _detect(small).astype(np.float32)
    return cv2.resize(found, (width, height), interpolation=cv2.INTER_LINEAR) > 0.25


def _check_rgb(rgb: np.ndarray) -> None:
    if not (isinstance(rgb, np.ndarray) and rgb.ndim == 3 and rgb.shape[2] == 3):
        shape = getattr(rgb, "shape", type(rgb).__name__)
        raise InputImageError(f"Scratch detection needs an RGB image (H, W, 3), not {shape}.")
    if min(rgb.shape[:2]) < MIN_SIDE:
        raise InputImageError(
            f"The photo is {rgb.shape[1]}×{rgb.shape[0]} pixels; scratch detection needs at "
            f"least {MIN_SIDE} pixels on each side."
        )


def _detect(gray: np.ndarray) -> np.ndarray:
    """Thin damage at this size, plus wide damage found at half size (step 5)."""
    gray = np.ascontiguousarray(gray, dtype=np.float32)
    height, width = gray.shape
    half = cv2.resize(gray, (max(1, width // 2), max(1, height // 2)), interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(_detect_one_scale(half).astype(np.float32), (width, height)) > 0.1
    residual = gray - _median(gray, WIDE_MEDIAN_SIZE)
    wide = coarse & (np.abs(residual) / _local_noise(residual) > WIDE_Z)
    return _detect_one_scale(gray) | wide


def _detect_one_scale(gray: np.ndarray) -> np.ndarray:
    residual = gray - _median(gray, MEDIAN_SIZE)
    noise = _local_noise(residual)
    short = min(gray.shape)
    mask = np.zeros(gray.shape, bool)
    for sign in (1.0, -1.0):
        contrast = sign * residual / noise
        candidates = (contrast > LOW_Z).astype(np.uint8)
        mask |= _lines(candidates, contrast, short) | _specks(candidates, contrast, short)
    return mask


def _median(gray: np.ndarray, size: int) -> np.ndarray:
    # medianBlur takes float32 only up to 5×5 and is exact on 8 bits: use 8 bits.
    levels = np.clip(gray * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.medianBlur(levels, size).astype(np.float32) / 255.0


def _local_noise(residual: np.ndarray) -> np.ndarray:
    """Robust noise level per pixel: clipped |residual| averaged around it (MAD-scaled)."""
    global_sigma = 1.4826 * float(np.median(np.abs(residual))) + 1e-4
    # Clipping keeps a scratch from raising the noise estimate around itself.
    capped = np.minimum(np.abs(residual), 3.0 * global_sigma) * np.float32(1.26)
    local = cv2.blur(capped, (NOISE_WINDOW, NOISE_WINDOW))
    return np.maximum(local, np.float32(global_sigma))


def _line_kernel(angle: float) -> np.ndarray:
    kernel = np.zeros((LINE_LENGTH, LINE_LENGTH), np.uint8)
    centre = (LINE_LENGTH - 1) / 2
    dx, dy = np.cos(angle) * centre, np.sin(angle) * centre
    start = (round(centre - dx), round(centre - dy))
    end = (round(centre + dx), round(centre + dy))
    cv2.line(kernel, start, end, 1, 1)
    return kernel


_LINE_KERNELS = [_line_kernel(np.pi * index / ANGLES) for index in range(ANGLES)]
_BLOB_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (BLOB_SIZE, BLOB_SIZE))


def _peaks(labels: np.ndarray, count: int, contrast: np.ndarray) -> np.ndarray:
    peak = np.zeros(count, np.float32)
    np.maximum.at(peak, labels.ravel(), contrast.ravel())
    return peak


def _lines(candidates: np.ndarray, contrast: np.ndarray, short: int) -> np.ndarray:
    blobs = cv2.dilate(cv2.morphologyEx(candidates, cv2.MORPH_OPEN, _BLOB_KERNEL), _BLOB_KERNEL)
    thin = candidates & (1 - blobs)
    # A jagged one-pixel line rarely matches a rasterised kernel exactly: thicken first.
    thick = cv2.dilate(thin, _SQUARE)
    linear = np.zeros_like(thin)
    for kernel in _LINE_KERNELS:
        linear |= cv2.morphologyEx(thick, cv2.MORPH_OPEN, kernel)
    linear &= thin
    count, labels, stats, _ = cv2.connectedComponentsWithStats(linear, connectivity=8)
    extent = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    keep = (_peaks(labels, count, contrast) >= HIGH_Z) & (
        extent >= max(10.0, MIN_LENGTH_SHARE * short)
    )
    keep[0] = False
    lines = keep[labels].astype(np.uint8)
    return (cv2.dilate(lines, _SQUARE) & candidates).astype(bool) | lines.astype(bool)


def _specks(candidates: np.ndarray, contrast: np.ndarray, short: int) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(candidates, connectivity=8)
    width, height = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    largest_area = max(12.0, 4.0 * (short / 150) ** 2)
    compact = np.maximum(width, height) <= SPECK_ASPECT * np.minimum(width, height) + 1
    keep = (
        (_peaks(labels, count, contrast) >= SPECK_Z)
        & (stats[:, cv2.CC_STAT_AREA] <= largest_area)
        & compact
    )
    keep[0] = False
    return keep[labels]
