"""The old-photo task on seeded synthetic old photos: the offline (classical) engine, the
mask re-run, the options and the steps after the repair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.errors import InputImageError, InvalidOptionError, ModelUnavailableError
from pipelines.images import Picture
from pipelines.old_photo import (
    FALLBACK_LABEL,
    OldPhotoOptions,
    correct_fading,
    rerun_with_mask,
    restore_old_photo,
)
from tests.test_scratches import clean_photo, degraded

PSNR_SET = ("astronaut", "camera", "chelsea", "moon", "coins")
MIN_MEAN_GAIN_DB = 2.0
"""Measured mean gain on PSNR_SET: +2.8 dB (docs/old-photo.md); each photo must gain."""
CLASSICAL = OldPhotoOptions(scratches=True, method="classical")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


def as_picture(rgb: np.ndarray, name: str = "photo") -> Picture:
    return Picture(rgb, None, False, 8, None, None, name)


@pytest.fixture()
def no_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty weights folder and no network: the state of a fresh offline install."""
    monkeypatch.setenv("RESTORATION_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def test_restored_photos_are_closer_to_the_clean_originals_than_the_damaged_ones() -> None:
    gains = []
    for name in PSNR_SET:
        result = degraded(name, seed=0)
        restored = restore_old_photo(as_picture(result.lq, name), CLASSICAL)
        before, after = psnr(result.lq, result.gt), psnr(restored.picture.rgb, result.gt)
        assert after > before, f"{name}: {before:.2f} -> {after:.2f} dB"
        gains.append(after - before)
    assert np.mean(gains) >= MIN_MEAN_GAIN_DB, gains


def test_the_fallback_is_chosen_and_labelled_when_bopb_weights_are_missing(
    no_weights: Path,
) -> None:
    result = degraded("coins", seed=1)
    restored = restore_old_photo(as_picture(result.lq), OldPhotoOptions(scratches=True))
    assert restored.method == "classical"
    assert restored.note.startswith(FALLBACK_LABEL) and "BOPB not used" in restored.note
    assert restored.mask is not None and restored.mask.shape == result.mask.shape
    assert (restored.mask & result.mask).sum() > 0.5 * result.mask.sum()
    with pytest.raises(ModelUnavailableError):
        restore_old_photo(as_picture(result.lq), OldPhotoOptions(method="bopb"))


def test_a_corrected_mask_replaces_detection_and_repeats_the_repair() -> None:
    result = degraded("chelsea", seed=0)
    picture = as_picture(result.lq)
    with_truth = rerun_with_mask(picture, result.mask, CLASSICAL)
    assert np.array_equal(with_truth.mask, result.mask)
    assert psnr(with_truth.picture.rgb, result.gt) > psnr(result.lq, result.gt) + 2.0
    empty = np.zeros_like(result.mask)
    without = restore_old_photo(picture, OldPhotoOptions(method="classical"))
    rerun = restore_old_photo(picture, CLASSICAL, mask=empty)
    assert without.mask is None and not rerun.mask.any()
    assert np.array_equal(rerun.picture.rgb, without.picture.rgb)
    with pytest.raises(InputImageError, match="must match"):
        restore_old_photo(picture, CLASSICAL, mask=result.mask[:-1])


def test_scratches_themselves_are_repaired_not_only_the_tone() -> None:
    result = degraded("cat", seed=1)
    restored = restore_old_photo(as_picture(result.lq), CLASSICAL).picture.rgb
    untouched = restore_old_photo(as_picture(result.lq), OldPhotoOptions(method="classical"))
    damage = result.mask
    error_repaired = np.abs(restored - result.gt)[damage].mean()
    error_kept = np.abs(untouched.picture.rgb - result.gt)[damage].mean()
    assert error_repaired < 0.5 * error_kept, (error_repaired, error_kept)


def test_fading_correction_widens_a_squeezed_range_but_never_beyond_its_cap() -> None:
    photo = clean_photo("camera")
    faded = 0.2 + 0.6 * photo
    corrected = correct_fading(faded)
    assert corrected.std() == pytest.approx(faded.std() * 1.3, rel=0.05)
    assert psnr(corrected, photo) > psnr(faded, photo)
    misty = 0.45 + 0.25 * photo  # a range this narrow is a low-contrast scene, not a fade
    assert np.allclose(correct_fading(misty), misty, atol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"upscale": 3}, "Upscale must be 1, 2 or 4"),
        ({"method": "magic"}, "Unknown method 'magic'"),
    ],
)
def test_bad_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        OldPhotoOptions(**options)


def test_upscaling_with_the_bundled_model_keeps_gray_photos_gray() -> None:
    gray = np.repeat(degraded("moon", seed=0).lq[:48, :64].mean(axis=2, keepdims=True), 3, 2)
    picture = Picture(gray.astype(np.float32), None, True, 8, None, None, "gray")
    result = restore_old_photo(picture, OldPhotoOptions(method="classical", upscale=2))
    assert (result.picture.width, result.picture.height) == (128, 96)
    assert result.picture.grayscale and result.mask is None


def test_missing_face_or_colour_weights_fail_before_any_work(no_weights: Path) -> None:
    picture = as_picture(degraded("astronaut", seed=0).lq)
    messages: list[str] = []
    for options in (
        OldPhotoOptions(method="classical", faces="gfpgan-v1.4"),
        OldPhotoOptions(method="classical", colorize="ddcolor-modelscope"),
    ):
        with pytest.raises(ModelUnavailableError, match="python -m pipelines download"):
            restore_old_photo(picture, options, progress=lambda _f, m: messages.append(m))
    assert messages == []
    with pytest.raises(InvalidOptionError, match="not a colorization model"):
        restore_old_photo(picture, OldPhotoOptions(method="classical", colorize="bicubic"))


def test_bopb_faces_without_bopb_say_so_in_the_note(no_weights: Path) -> None:
    picture = as_picture(degraded("astronaut", seed=0).lq)
    result = restore_old_photo(picture, OldPhotoOptions(faces="bopb"))
    assert result.method == "classical"
    assert "faces not enhanced" in result.note
