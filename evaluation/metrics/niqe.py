"""NIQE exactly as pyiqa 0.1.16 computes it (pyiqa/archs/niqe_arch.py), on numpy and OpenCV.

The steps, in pyiqa's order and precision:

1. Y = 0.299 R + 0.587 G + 0.114 B in float32, times 255, rounded (8-bit levels), float64
   (pyiqa converts to Y whatever ``test_y_channel`` says); then the border crop.
2. Crop to whole 96x96 blocks (top-left kept).
3. Two scales. At each: MSCN coefficients ``(I - mu) / (sigma + 1)`` with mu and sigma from
   the 7x7, sigma 7/6 ``fspecial`` window (float32-rounded) and replicate padding; per block
   (96 px, then 48 px) 18 features: the AGGD fit of the block (alpha, mean of the two betas)
   and of its products with itself rolled by (0,1), (1,0), (1,1), (1,-1) inside the block
   (alpha, mean, beta_l, beta_r). Alpha is the nearest of pyiqa's grid 0.2:0.001:10 (float32
   values). Between the scales, MATLAB's bicubic ``imresize(., 0.5)`` with antialiasing,
   computed in float32 as pyiqa's does.
4. The 36-feature rows give mu (NaN-ignoring mean per feature) and the covariance of the rows
   without NaN; NIQE = sqrt((mu_p - mu)^T pinv((cov_p + cov) / 2) (mu_p - mu)).

pyiqa's grid of alpha values depends on the CPU's vector width at the last float32 bit, and
its imresize sums in float32: our values differ from pyiqa's by about 1e-6 (tests: 1e-3).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from scipy.special import gammaln

from evaluation.metrics.fullref import fspecial_gaussian, levels, luma

BLOCK = 96
SHIPPED_PARAMS = Path(__file__).resolve().parent.parent / "data" / "niqe_pris_params.mat"
SHIPPED_SHA256 = "88219fdc8ddd129acd13c3faecd6ddebe5a7f2370145cd7c1f56276578300f23"

_MSCN_WINDOW = fspecial_gaussian(7, 7.0 / 6.0)
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))
_F = np.float32


@dataclass(frozen=True)
class NiqeModel:
    """A pristine multivariate Gaussian (36 features) and the file it came from."""

    mu: np.ndarray = field(repr=False)
    cov: np.ndarray = field(repr=False)
    path: Path
    sha256: str


@lru_cache(maxsize=4)
def load_model(path: Path, expected_sha256: str | None = None) -> NiqeModel:
    """Read a NIQE .mat (keys ``mu_prisparam``, ``cov_prisparam``), checking its sha256."""
    import scipy.io

    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise ValueError(
            f"{path} has sha256 {digest}, expected {expected_sha256}; restore it "
            "(git checkout, or python evaluation/data/make_niqe_params.py)."
        )
    params = scipy.io.loadmat(path)
    mu = np.ravel(params["mu_prisparam"]).astype(np.float64)
    cov = np.asarray(params["cov_prisparam"], dtype=np.float64)
    if mu.shape != (36,) or cov.shape != (36, 36):
        raise ValueError(f"{path} does not hold a NIQE model (mu 1x36, cov 36x36).")
    return NiqeModel(mu=mu, cov=cov, path=path, sha256=digest)


def expected_sha256(path: Path) -> str | None:
    """The pinned sha256 of the shipped model; None for a file found elsewhere."""
    return SHIPPED_SHA256 if path == SHIPPED_PARAMS else None


def niqe(rgb: np.ndarray, model: NiqeModel, crop_border: int = 0) -> float:
    """NIQE of a float32 RGB image in [0, 1] (lower is better)."""
    plane = levels(luma(rgb, "yiq"))
    if crop_border:
        plane = plane[crop_border:-crop_border, crop_border:-crop_border]
    return niqe_of_plane(plane, model)


def niqe_of_plane(plane: np.ndarray, model: NiqeModel) -> float:
    """NIQE of a float64 gray plane in 0..255."""
    height, width = plane.shape
    if min(height, width) < BLOCK:
        raise ValueError(
            f"NIQE needs an image of at least {BLOCK}x{BLOCK} pixels; got {width}x{height}."
        )
    image = plane[: height // BLOCK * BLOCK, : width // BLOCK * BLOCK]
    scale1 = _block_features(_mscn(image), BLOCK)
    scale2 = _block_features(_mscn(_half_size(image)), BLOCK // 2)
    return _distance(np.concatenate([scale1, scale2], axis=1), model)


def _distance(features: np.ndarray, model: NiqeModel) -> float:
    complete = features[~np.isnan(features).any(axis=1)]
    if len(complete) == 0:
        raise ValueError(
            "NIQE is undefined for this image: every 96x96 block is flat or one-sided."
        )
    mu = np.nanmean(features, axis=0)
    cov = np.cov(complete, rowvar=False, ddof=1 if len(complete) > 1 else 0)
    diff = model.mu - mu
    return float(np.sqrt(diff @ np.linalg.pinv((model.cov + cov) / 2) @ diff))


def _mscn(image: np.ndarray) -> np.ndarray:
    mu = cv2.filter2D(image, cv2.CV_64F, _MSCN_WINDOW, borderType=cv2.BORDER_REPLICATE)
    second = cv2.filter2D(image * image, cv2.CV_64F, _MSCN_WINDOW, borderType=cv2.BORDER_REPLICATE)
    sigma = np.sqrt(np.abs(second - mu * mu) + np.finfo(np.float64).eps)
    return (image - mu) / (sigma + 1)


def _block_features(image: np.ndarray, size: int) -> np.ndarray:
    """18 features per size x size block, one row per block (row-major block order)."""
    rows, cols = image.shape[0] // size, image.shape[1] // size
    blocks = image[: rows * size, : cols * size].reshape(rows, size, cols, size)
    blocks = blocks.transpose(0, 2, 1, 3).reshape(-1, size, size)
    alpha, beta_l, beta_r = _aggd(blocks)
    features = [alpha, (beta_l + beta_r) / 2]
    for shift in _SHIFTS:
        alpha, beta_l, beta_r = _aggd(blocks * np.roll(blocks, shift, axis=(1, 2)))
        mean = (beta_r - beta_l) * np.exp(gammaln(2 / alpha) - gammaln(1 / alpha))
        features += [alpha, mean, beta_l, beta_r]
    return np.stack(features, axis=1)


def _aggd(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Asymmetric generalised Gaussian fit of each block: alpha, beta_l, beta_r."""
    negative, positive = blocks < 0, blocks > 0
    squares = blocks * blocks
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.sqrt(np.where(negative, squares, 0).sum((1, 2)) / negative.sum((1, 2)))
        right = np.sqrt(np.where(positive, squares, 0).sum((1, 2)) / positive.sum((1, 2)))
        gamma_hat = left / right
        r_hat = np.abs(blocks).mean((1, 2)) ** 2 / squares.mean((1, 2))
        r_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    alpha = _nearest_alpha(r_norm)
    scale = np.sqrt(np.exp(gammaln(1 / alpha) - gammaln(3 / alpha)))
    return alpha, left * scale, right * scale


@lru_cache(maxsize=1)
def _alpha_grid() -> tuple[np.ndarray, np.ndarray]:
    # pyiqa: torch.arange(0.2, 10.001, 0.001) in float32, then float64.
    alphas = _F(0.2 + 0.001 * np.arange(9801)).astype(np.float64)
    ratios = np.exp(2 * gammaln(2 / alphas) - (gammaln(1 / alphas) + gammaln(3 / alphas)))
    if not np.all(np.diff(ratios) > 0):
        raise AssertionError("the AGGD ratio table must increase for the nearest-value search")
    return alphas, ratios


def _nearest_alpha(r_norm: np.ndarray) -> np.ndarray:
    """argmin |ratio(alpha) - r_norm| over the grid; first index on ties, 0 for NaN (torch)."""
    alphas, ratios = _alpha_grid()
    upper = np.clip(np.searchsorted(ratios, r_norm), 1, len(ratios) - 1)
    lower = upper - 1
    pick = np.where(np.abs(ratios[upper] - r_norm) < np.abs(ratios[lower] - r_norm), upper, lower)
    return alphas[np.where(np.isnan(r_norm), 0, pick)]


def _half_size(image: np.ndarray) -> np.ndarray:
    """pyiqa's ``imresize(image / 255, scale=0.5) * 255``: MATLAB bicubic, float32 inside."""
    small = (image / 255.0).astype(np.float32)
    small = _resize_rows(small, 0.5)
    small = _resize_rows(small.T, 0.5).T
    return small.astype(np.float64) * 255.0


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax * ax2
    near = (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return (near + far).astype(np.float32)


def _resize_rows(image: np.ndarray, scale: float) -> np.ndarray:
    """Resample axis 0 like pyiqa's ``resize_1d`` (antialiased cubic, symmetric padding)."""
    size_in = image.shape[0]
    size = math.ceil(size_in * scale)
    taps = math.ceil(4 / scale) + 2
    pos = (np.arange(size, dtype=np.float32) + _F(0.5)) / _F(scale) - _F(0.5)
    base = np.floor(pos) - (taps // 2) + 1
    dist = pos - base
    weights = np.stack([_cubic((dist - _F(k)) * _F(scale)) for k in range(taps)])
    weights /= weights.sum(axis=0, keepdims=True)
    start = base.astype(np.intp)
    pad_pre = max(0, -int(start.min()))
    pad_post = max(0, int(start.max()) + taps - size_in)
    padded = np.pad(image, ((pad_pre, pad_post), (0, 0)), mode="symmetric")
    start += pad_pre
    out = weights[0][:, None] * padded[start]
    for k in range(1, taps):
        out += weights[k][:, None] * padded[start + k]
    return out
