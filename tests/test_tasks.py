"""Task functions on real bundled models: sizes, modes, outscale, and real model output."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipelines import tasks
from pipelines.errors import InvalidOptionError
from pipelines.images import load_image, to_pil
from tests.conftest import natural_image, psnr


@pytest.fixture(scope="module")
def small_photo():
    return load_image(natural_image(64, 64), name="photo")


def test_x4_model_upscales_64_to_256(small_photo) -> None:
    result = tasks.super_resolution(small_photo, "span-x4-ch48")
    assert (result.width, result.height) == (256, 256)


def test_outscale_2_with_a_x4_model_gives_128(small_photo) -> None:
    result = tasks.super_resolution(small_photo, "span-x4-ch48", outscale=2)
    assert (result.width, result.height) == (128, 128)


def test_multi_scale_model_runs_the_scale_that_reaches_outscale() -> None:
    from pipelines.registry import MODELS

    card = MODELS.get("srmd")
    assert tasks.pick_native_scale(card, 2) == 2
    assert tasks.pick_native_scale(card, 2.5) == 3
    assert tasks.pick_native_scale(card, 6) == 4


def test_target_width_keeps_the_aspect_ratio() -> None:
    picture = load_image(natural_image(40, 20))
    result = tasks.super_resolution(picture, "span-x2-ch48", target=tasks.TargetSize(width=100))
    assert (result.width, result.height) == (100, 50)


def test_alpha_and_grayscale_come_back_in_their_mode() -> None:
    rgba = natural_image(24, 20).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((24, 20)))
    result = to_pil(tasks.super_resolution(load_image(rgba), "span-x4-ch48"))
    assert result.mode == "RGBA" and result.size == (96, 80)
    alpha = np.asarray(result.getchannel("A"))
    assert alpha.min() < 40 and alpha.max() > 215

    gray = natural_image(24, 20).convert("L")
    result = to_pil(tasks.anime_upscale(load_image(gray), "realesr-animevideov3", scale=2))
    assert result.mode == "L" and result.size == (48, 40)


@pytest.mark.parametrize("model_id", ["realesrgan-x4plus", "span-x4-ch48"])
def test_models_produce_real_output_not_a_resized_copy(model_id: str) -> None:
    reference = natural_image(128, 128)
    low = reference.resize((32, 32), Image.Resampling.BICUBIC)
    picture = load_image(low)
    first = np.asarray(to_pil(tasks.super_resolution(picture, model_id)))
    second = np.asarray(to_pil(tasks.super_resolution(picture, model_id)))
    bicubic = np.asarray(low.resize((128, 128), Image.Resampling.BICUBIC))
    assert np.array_equal(first, second), "model output must be deterministic"
    assert psnr(first, bicubic) < 35, "output is too close to plain bicubic upscaling"
    # ... but it is still the same picture, restored (not noise).
    assert psnr(first, np.asarray(reference)) > 18


def test_anime_x4_with_a_x2_model_runs_two_passes() -> None:
    picture = load_image(natural_image(16, 12))
    result = tasks.anime_upscale(picture, "waifu2x-upconv7-anime", scale=4, noise=1)
    assert (result.width, result.height) == (64, 48)


def test_unsupported_options_are_refused_clearly(small_photo) -> None:
    with pytest.raises(InvalidOptionError, match="x3"):
        tasks.anime_upscale(small_photo, "waifu2x-upconv7-anime", scale=3)
    with pytest.raises(InvalidOptionError, match="noise levels"):
        tasks.anime_upscale(small_photo, "realcugan-pro", scale=2, noise=7)
    with pytest.raises(InvalidOptionError, match="not offered for super-resolution"):
        tasks.super_resolution(small_photo, "realcugan-se")
    with pytest.raises(InvalidOptionError, match="limit"):
        tasks.super_resolution(small_photo, "bicubic", outscale=100)
