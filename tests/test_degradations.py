"""Degradations on real images: definitions, seeding, recorded parameters, masks, and the
MATLAB-bicubic agreement with an independent implementation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage import data

from evaluation.degradations import (
    DEGRADATIONS,
    DegradationRegistry,
    Grayscale,
    UnknownDegradationError,
    create_degradation,
    matlab_imresize,
    quantize,
)
from pipelines.errors import InvalidOptionError
from pipelines.images import load_image
from tests.conftest import EXAMPLES

RANDOM = ("realworld", "random_mask", "old_photo")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """A real photo, 256x256 RGB float32 (the repository's built-in reference)."""
    return load_image(EXAMPLES / "astronaut_hq.png").rgb


# ---------------------------------------------------------------- table and parameters


def test_registry_answers_unknown_names_and_refuses_duplicates() -> None:
    assert {"bicubic_x2", "bicubic_x3", "bicubic_x4", "realworld", "grayscale"} <= set(
        DEGRADATIONS.names()
    )
    with pytest.raises(UnknownDegradationError, match="Did you mean bicubic_x"):
        DEGRADATIONS.get("bicubic_x5")
    with pytest.raises(UnknownDegradationError, match="Did you mean random_mask"):
        create_degradation("random-mask")
    with pytest.raises(ValueError, match="duplicate"):
        DegradationRegistry([Grayscale(name="gray"), Grayscale(name="gray")])


def test_create_degradation_overrides_and_validates_settings() -> None:
    row = create_degradation("realworld", scale=2, seed=7, jpeg_quality=[50, 60])
    assert (row.scale, row.seed, row.jpeg_quality) == (2, 7, (50, 60))
    assert DEGRADATIONS.get("realworld").scale == 4  # the table row is untouched
    with pytest.raises(InvalidOptionError, match="Did you mean blur_sigma"):
        create_degradation("realworld", blur_sigmas=(1, 2))
    with pytest.raises(InvalidOptionError, match="bicubic_x2"):
        create_degradation("bicubic_x4", scale=2)
    with pytest.raises(InvalidOptionError, match="coverage"):
        create_degradation("random_mask", coverage=(0.5, 0.2))
    with pytest.raises(InvalidOptionError, match="strength"):
        create_degradation("old_photo", sepia=1.5)


@pytest.mark.parametrize("name", DEGRADATIONS.names())
def test_each_degradation_gives_float_rgb_and_records_everything(
    name: str, astronaut: np.ndarray
) -> None:
    row = create_degradation(name, seed=3)
    result = row.apply(astronaut, key="astronaut")
    for image in (result.lq, result.gt):
        assert image.dtype == np.float32 and image.ndim == 3 and image.shape[2] == 3
        assert image.min() >= 0.0 and image.max() <= 1.0
    scale = getattr(row, "scale", 1)
    assert result.lq.shape[:2] == (result.gt.shape[0] // scale, result.gt.shape[1] // scale)
    if result.mask is not None:
        assert result.mask.dtype == bool and result.mask.shape == result.gt.shape[:2]
    params = json.loads(json.dumps(result.params))  # storable as it is
    assert params["name"] == name and params["seed"] == 3 and params["key"] == "astronaut"
    assert params["implementation"] and params["task"] and "drawn" in params
    rebuilt = create_degradation(name, seed=params["seed"], **params["params"])
    assert rebuilt == row
    assert np.array_equal(rebuilt.apply(astronaut, key="astronaut").lq, result.lq)


@pytest.mark.parametrize("name", RANDOM)
def test_seeding_is_reproducible_per_image_and_order_independent(
    name: str, astronaut: np.ndarray
) -> None:
    row = create_degradation(name, seed=11)
    first = row.apply(astronaut, key="a").lq
    row.apply(astronaut[::-1].copy(), key="b")  # another image in between changes nothing
    assert np.array_equal(row.apply(astronaut, key="a").lq, first)
    assert not np.array_equal(row.apply(astronaut, key="b").lq, first)
    other_seed = create_degradation(name, seed=12).apply(astronaut, key="a")
    assert not np.array_equal(other_seed.lq, first)


def test_picture_name_is_the_default_key() -> None:
    picture = load_image(EXAMPLES / "coffee_hq.png")
    row = create_degradation("realworld")
    assert np.array_equal(row.apply(picture).lq, row.apply(picture.rgb, key=picture.name).lq)


def test_bad_input_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match="RGB"):
        create_degradation("grayscale").apply(np.zeros((8, 8), np.float32))
    with pytest.raises(InvalidOptionError, match="smaller than the scale"):
        create_degradation("bicubic_x4").apply(np.zeros((3, 8, 3), np.float32))


# ---------------------------------------------------------------- bicubic


def _y_bt601(rgb: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr's Y on 8-bit levels (16..235), as the SR literature scores."""
    return 16.0 + rgb.astype(np.float64) @ np.array([65.481, 128.553, 24.966])


def _psnr_ssim_y(output: np.ndarray, reference: np.ndarray, border: int) -> tuple[float, float]:
    from basicsr.metrics import calculate_psnr, calculate_ssim

    y_out, y_ref = _y_bt601(output), _y_bt601(reference)
    psnr = calculate_psnr(y_out, y_ref, crop_border=border, input_order="HWC")
    ssim = calculate_ssim(y_out, y_ref, crop_border=border, input_order="HWC")
    return float(psnr), float(ssim)


def test_bicubic_x4_agrees_with_an_independent_matlab_imresize() -> None:
    """The LR made by `bicubic_x4` (basicsr's port of MATLAB imresize) is compared with the
    LR made by pyiqa's `pyiqa.matlab_utils.imresize`, an independent implementation (Sanghyun
    Son's torch `bicubic_pytorch` resampler, vectorised with unfold, sharing no code with
    basicsr's loop over weight rows). Both LRs are rounded to 8 bits, upscaled x4 back with
    basicsr's bicubic, rounded again, and scored against the modcropped HR on BT.601 Y with
    a 4-pixel border: PSNR within 0.01 dB and SSIM within 1e-4, LRs within one 8-bit level."""
    import torch
    from pyiqa.matlab_utils import imresize as pyiqa_imresize

    photo = data.astronaut()[:510, :507]  # not a multiple of 4: modcrop must happen
    result = create_degradation("bicubic_x4").apply(photo, key="astronaut")
    hr = result.gt
    assert hr.shape == (508, 504, 3) and result.lq.shape == (127, 126, 3)
    assert np.allclose(hr, photo[:508, :504] / 255.0)

    tensor = torch.from_numpy(np.ascontiguousarray(hr.transpose(2, 0, 1)))[None]
    independent = pyiqa_imresize(tensor, scale=1 / 4)[0].numpy().transpose(1, 2, 0)
    independent = quantize(independent)
    assert independent.shape == result.lq.shape
    assert np.abs(independent - result.lq).max() * 255 <= 1.0 + 1e-4

    scores = []
    for lq in (result.lq, independent):
        upscaled = quantize(matlab_imresize(lq, 4))
        scores.append(_psnr_ssim_y(upscaled, hr, border=4))
    (psnr_a, ssim_a), (psnr_b, ssim_b) = scores
    assert abs(psnr_a - psnr_b) <= 0.01
    assert abs(ssim_a - ssim_b) <= 1e-4
    assert 24.0 < psnr_a < 32.0  # bicubic x4 on a natural photo: a sane value


def test_bicubic_lq_is_on_8bit_levels_unless_asked_otherwise(astronaut: np.ndarray) -> None:
    lq = create_degradation("bicubic_x2").apply(astronaut).lq
    assert np.allclose(lq * 255, np.round(lq * 255), atol=1e-4)
    raw = create_degradation("bicubic_x2", quantize=False).apply(astronaut).lq
    assert not np.allclose(raw * 255, np.round(raw * 255), atol=1e-4)
    assert np.abs(raw - lq).max() <= 0.5 / 255 + 1e-6


# ---------------------------------------------------------------- the others


def test_realworld_draws_inside_its_ranges(astronaut: np.ndarray) -> None:
    row = create_degradation("realworld", scale=2)
    for key in range(6):
        drawn = row.apply(astronaut, key=key).params["drawn"]
        assert row.blur_sigma[0] <= drawn["blur_sigma"] <= row.blur_sigma[1]
        assert row.noise_sigma[0] <= drawn["noise_sigma"] <= row.noise_sigma[1]
        assert row.poisson_scale[0] <= drawn["poisson_scale"] <= row.poisson_scale[1]
        assert row.jpeg_quality[0] <= drawn["jpeg_quality"] <= row.jpeg_quality[1]
        assert drawn["resize_mode"] in row.resize_modes


def test_grayscale_is_bt601_luma_on_8bit_levels(astronaut: np.ndarray) -> None:
    result = create_degradation("grayscale").apply(astronaut)
    assert np.array_equal(result.gt, astronaut)
    assert np.array_equal(result.lq[..., 0], result.lq[..., 1])
    assert np.array_equal(result.lq[..., 1], result.lq[..., 2])
    luma = astronaut @ np.array([0.299, 0.587, 0.114], np.float32)
    assert np.abs(result.lq[..., 0] - luma).max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize("coverage", [(0.1, 0.4), (0.05, 0.12)])
def test_random_mask_coverage_stays_in_range(coverage: tuple[float, float]) -> None:
    photo = load_image(EXAMPLES / "coffee_hq.png").rgb  # 300x200, not square
    row = create_degradation("random_mask", coverage=coverage)
    for key in range(10):
        result = row.apply(photo, key=key)
        fraction = result.mask.mean()
        assert coverage[0] <= fraction <= coverage[1]
        assert result.params["drawn"]["coverage"] == pytest.approx(fraction)
        assert np.all(result.lq[result.mask] == row.fill)
        assert np.array_equal(result.lq[~result.mask], photo[~result.mask])


def test_old_photo_mask_marks_exactly_the_drawn_damage(astronaut: np.ndarray) -> None:
    damaged = create_degradation("old_photo", jpeg_quality=None, seed=5)
    clean = create_degradation("old_photo", jpeg_quality=None, seed=5, scratches=0, dust=0)
    with_damage = damaged.apply(astronaut, key="x")
    without = clean.apply(astronaut, key="x")
    mask = with_damage.mask
    assert 0 < mask.mean() < 0.1 and not without.mask.any()
    assert with_damage.params["drawn"]["scratches"] == 6
    # grain and tone use their own random streams: outside the mask nothing moved
    assert np.array_equal(with_damage.lq[~mask], without.lq[~mask])
    changed = np.abs(with_damage.lq - without.lq).max(axis=2) > 0.02
    assert changed[mask].mean() > 0.8
    # with the default JPEG save, damage still shows inside the mask far more than outside
    jpeg = create_degradation("old_photo", seed=5).apply(astronaut, key="x").lq
    jpeg_clean = create_degradation("old_photo", seed=5, scratches=0, dust=0)
    difference = np.abs(jpeg - jpeg_clean.apply(astronaut, key="x").lq).mean(axis=2)
    assert difference[mask].mean() > 10 * difference[~mask].mean()


def test_old_photo_tone_fades_and_lifts_blacks(astronaut: np.ndarray) -> None:
    row = create_degradation("old_photo", scratches=0, dust=0, grain=0, blur=0, jpeg_quality=None)
    lq = row.apply(astronaut).lq
    assert lq.min() >= 0.3 * row.fade - 1 / 255
    assert lq.std() < astronaut.std()
    assert lq[..., 0].mean() > lq[..., 2].mean()  # sepia: warmer than blue
