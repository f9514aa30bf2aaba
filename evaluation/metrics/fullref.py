"""PSNR and SSIM exactly as pyiqa 0.1.16 (and, for SR rows, basicsr) compute them.

What is reproduced (pyiqa/archs/psnr_arch.py, ssim_arch.py, utils/color_util.py):

- Inputs are float32 RGB in [0, 1]; a border crop happens before any conversion.
- Y channel: ``yiq`` is 0.299 R + 0.587 G + 0.114 B (pyiqa's default colour space, full
  range); ``ycbcr`` is MATLAB's BT.601 ``(16 + 65.481 R + 128.553 G + 24.966 B) / 255``. Both
  are evaluated in float32 in the order torch evaluates them, which makes them bit-identical
  to pyiqa's on all 2^24 8-bit colours (checked by the tests).
- PSNR: data range 1, MSE over all pixels and channels, ``10 log10(1 / (MSE + 1e-8))``; so
  identical images score 80 dB, not infinity. No rounding to 8-bit levels.
- SSIM: each plane scaled to 0..255 in float32 and rounded half-to-even (MATLAB's uint8
  levels), then float64; the 11x11, sigma 1.5 Gaussian window of MATLAB's ``fspecial``, rounded
  to float32 as pyiqa rounds it; 'valid' filtering (the map is 10 px smaller each way);
  C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2; the contrast-structure term clipped at 0; the
  score is the mean of the map over pixels and channels. No 2x downsampling (pyiqa's
  ``ssim`` and ``ssimc`` rows set ``downsample=False``).

The super-resolution rows follow basicsr 1.4.2 instead (``calculate_psnr`` / ``calculate_ssim``
with ``test_y_channel=True``), the code behind most published SR tables: Y of BT.601 YCbCr
computed in float64 and stored as float32, never rounded; PSNR ``10 log10(255^2 / MSE)``
without epsilon (infinite for identical images); SSIM with the exact float64 Gaussian window
and without clipping the contrast-structure term.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

YMatrix = Literal["yiq", "ycbcr"]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
PSNR_EPS = 1e-8
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
_F = np.float32


def fspecial_gaussian(size: int, sigma: float) -> np.ndarray:
    """MATLAB's ``fspecial('gaussian')`` rounded to float32 as pyiqa does, held as float64."""
    half = (size - 1) / 2.0
    y, x = np.ogrid[-half : half + 1, -half : half + 1]
    window = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    window[window < np.finfo(window.dtype).eps * window.max()] = 0
    window /= window.sum()
    return window.astype(np.float32).astype(np.float64)


_WINDOW = fspecial_gaussian(SSIM_WINDOW, SSIM_SIGMA)
_MARGIN = SSIM_WINDOW // 2
_SR_GAUSS = cv2.getGaussianKernel(SSIM_WINDOW, SSIM_SIGMA)
_SR_WINDOW = _SR_GAUSS @ _SR_GAUSS.T  # basicsr: np.outer of cv2.getGaussianKernel(11, 1.5)


def luma(rgb: np.ndarray, matrix: YMatrix) -> np.ndarray:
    """The Y plane (float32, 0..1 scale) of pyiqa's ``to_y_channel`` before any rounding."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    if matrix == "yiq":
        return r * _F(0.299) + g * _F(0.587) + b * _F(0.114)
    if matrix == "ycbcr":
        return (r * _F(65.481) + g * _F(128.553) + b * _F(24.966) + _F(16)) / _F(255)
    raise ValueError(f"unknown Y matrix {matrix!r}")


def levels(plane: np.ndarray) -> np.ndarray:
    """pyiqa's 8-bit quantisation: times 255 in float32, rounded half-to-even, as float64."""
    return np.round(plane * _F(255)).astype(np.float64)


def psnr(output: np.ndarray, reference: np.ndarray) -> float:
    """PSNR in dB of two float32 arrays of one shape, data range 1."""
    mse = cv2.norm(output, reference, cv2.NORM_L2SQR) / output.size
    return float(10.0 * np.log10(1.0 / (mse + PSNR_EPS)))


def psnr_of(output: np.ndarray, reference: np.ndarray, matrix: YMatrix | None) -> float:
    """PSNR on RGB (`matrix` None) or on the unrounded Y plane of `matrix`."""
    if matrix is None:
        return psnr(np.ascontiguousarray(output), np.ascontiguousarray(reference))
    return psnr(luma(output, matrix), luma(reference, matrix))


def sr_luma(rgb: np.ndarray) -> np.ndarray:
    """basicsr's ``to_y_channel``: BT.601 Y in 0..255, float64 arithmetic stored as float32."""
    r, g, b = (rgb[..., c].astype(np.float64) for c in range(3))
    y = ((b * 24.966 + g * 128.553 + r * 65.481 + 16.0) / 255.0).astype(np.float32)
    return (y * _F(255)).astype(np.float64)


def sr_psnr(output: np.ndarray, reference: np.ndarray) -> float:
    """basicsr's PSNR-Y: 10 log10(255^2 / MSE) on `sr_luma`; infinite when equal."""
    mse = cv2.norm(sr_luma(output), sr_luma(reference), cv2.NORM_L2SQR) / output[..., 0].size
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0 * 255.0 / mse))


def sr_ssim(output: np.ndarray, reference: np.ndarray) -> float:
    """basicsr's SSIM-Y: exact Gaussian window, no clipping, on `sr_luma`."""
    check_ssim_size(*output.shape[:2])
    x, y = sr_luma(output), sr_luma(reference)
    mu1, mu2 = _filter(x, _SR_WINDOW), _filter(y, _SR_WINDOW)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = _filter(x * x, _SR_WINDOW) - mu1_sq
    sigma2_sq = _filter(y * y, _SR_WINDOW) - mu2_sq
    sigma12 = _filter(x * y, _SR_WINDOW) - mu1_mu2
    numerator = (2 * mu1_mu2 + _C1) * (2 * sigma12 + _C2)
    return float((numerator / ((mu1_sq + mu2_sq + _C1) * (sigma1_sq + sigma2_sq + _C2))).mean())


def _filter(plane: np.ndarray, window: np.ndarray = _WINDOW) -> np.ndarray:
    full = cv2.filter2D(plane, cv2.CV_64F, window, borderType=cv2.BORDER_CONSTANT)
    return full[_MARGIN:-_MARGIN, _MARGIN:-_MARGIN]


def ssim_map(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The SSIM map of two float64 planes in 0..255 ('valid': 10 px smaller each way)."""
    mu1, mu2 = _filter(x), _filter(y)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = _filter(x * x) - mu1_sq
    sigma2_sq = _filter(y * y) - mu2_sq
    sigma12 = _filter(x * y) - mu1_mu2
    cs = np.maximum((2 * sigma12 + _C2) / (sigma1_sq + sigma2_sq + _C2), 0.0)
    return ((2 * mu1_mu2 + _C1) / (mu1_sq + mu2_sq + _C1)) * cs


def ssim_planes(
    output: np.ndarray, reference: np.ndarray, matrix: YMatrix | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The quantised float64 plane pairs SSIM compares: Y alone, or R, G and B."""
    if matrix is not None:
        return [(levels(luma(output, matrix)), levels(luma(reference, matrix)))]
    return [(levels(output[..., c]), levels(reference[..., c])) for c in range(3)]


def check_ssim_size(height: int, width: int) -> None:
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after the "
            f"border crop; got {width}x{height}."
        )


def ssim(output: np.ndarray, reference: np.ndarray, matrix: YMatrix | None) -> float:
    """Mean SSIM over the map and the compared planes (Y if `matrix`, else R, G, B)."""
    check_ssim_size(*output.shape[:2])
    means = [ssim_map(x, y).mean() for x, y in ssim_planes(output, reference, matrix)]
    return float(np.mean(means))


def window_inside(mask: np.ndarray) -> np.ndarray:
    """Which SSIM map positions have their whole 11x11 window inside `mask` (bool HxW)."""
    kernel = np.ones((SSIM_WINDOW, SSIM_WINDOW), np.uint8)
    eroded = cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE)
    return eroded[_MARGIN:-_MARGIN, _MARGIN:-_MARGIN].astype(bool)


def masked_ssim(
    output: np.ndarray, reference: np.ndarray, mask: np.ndarray, matrix: YMatrix | None
) -> float:
    """Mean of the SSIM map over the positions whose whole window lies inside `mask`."""
    check_ssim_size(*output.shape[:2])
    inside = window_inside(mask)
    if not inside.any():
        raise ValueError(
            f"The mask holds no {SSIM_WINDOW}x{SSIM_WINDOW} square of pixels (away from the "
            "image border), so masked SSIM has no window to average."
        )
    planes = ssim_planes(output, reference, matrix)
    return float(np.mean([ssim_map(x, y)[inside].mean() for x, y in planes]))
