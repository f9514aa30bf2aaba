"""DeOldify end to end with stand-in weights in the release format
(tests/deoldify_fixtures.py), placed where a user places the real ones: the weights
folder, under the official file names."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from PIL import Image

from pipelines import colorize as colorize_task
from pipelines.__main__ import main as cli
from pipelines.backends.torch import deoldify
from pipelines.errors import InvalidOptionError, ModelUnavailableError
from pipelines.images import load_image
from pipelines.registry import MODELS
from tests.conftest import natural_image
from tests.deoldify_fixtures import GENERATORS

LUMA_BOUND = (0.5 / 255, 2.0 / 255)
"""Mean and 99th percentile of |ΔY| (BT.601 luma, 0..1) allowed between a mid-tone gray
input and its colorized output: Y is the input's own; only colours clipped to the RGB
gamut change it (near black or white hardly any colour fits, hence mid-tones)."""


@pytest.fixture(scope="module")
def stand_ins(deoldify_stand_ins: Path) -> Path:
    return deoldify_stand_ins


@pytest.fixture()
def weights_dir(stand_ins: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RESTORATION_WEIGHTS_DIR", str(stand_ins))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return stand_ins


def _luma(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2YUV)[:, :, 0]


def test_cards_are_unpinned_and_never_downloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RESTORATION_WEIGHTS_DIR", str(tmp_path))
    for card_id in GENERATORS:
        card = MODELS.get(card_id)
        (file,) = card.source.files
        assert not file.pinned and file.url.startswith("https://")
        assert card.license == "MIT" and card.family == "deoldify"
    assert cli(["download", "deoldify-artistic"]) != 0
    error = capsys.readouterr().err
    assert "no checksum is published" in error and "data.deepai.org" in error
    assert str(tmp_path / "ColorizeArtistic_gen.pth") in error
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("card_id", GENERATORS)
def test_gray_512_photo_becomes_512_colour(card_id: str, weights_dir: Path) -> None:
    gray = natural_image(512, 512).convert("L").point(lambda v: 60 + v * 140 // 255)
    picture = load_image(gray)
    messages: list[str] = []
    result = colorize_task.colorize(
        picture, card_id, render_factor=8, progress=lambda _f, m: messages.append(m)
    )
    assert (result.width, result.height) == (512, 512) and not result.grayscale
    assert result.rgb.shape == (512, 512, 3)
    assert np.ptp(result.rgb, axis=2).mean() > 0.01  # colour, not gray
    change = np.abs(_luma(result.rgb) - _luma(picture.rgb))
    assert change.mean() < LUMA_BOUND[0] and np.percentile(change, 99) < LUMA_BOUND[1]
    assert any("128 px (render factor 8)" in m for m in messages)


def test_render_factor_sets_the_model_size_and_is_checked(weights_dir: Path) -> None:
    picture = load_image(natural_image(96, 64).convert("L"))
    small = colorize_task.colorize(picture, "deoldify-artistic", render_factor=7)
    large = colorize_task.colorize(picture, "deoldify-artistic", render_factor=10)
    assert np.abs(small.rgb - large.rgb).mean() > 1e-3
    for bad in (0, 6, 46):
        with pytest.raises(InvalidOptionError, match=r"Render factor \d+ is out of range"):
            colorize_task.colorize(picture, "deoldify-artistic", render_factor=bad)


def test_loading_keeps_the_process_settings(weights_dir: Path) -> None:
    """The wheel's ``deoldify/__init__`` would hide the GPUs and reconfigure logging."""
    before = (os.environ.get("CUDA_VISIBLE_DEVICES"), list(logging.getLogger().handlers))
    colorize_task.colorize(load_image(natural_image(32, 32)), "deoldify-artistic", render_factor=7)
    assert (os.environ.get("CUDA_VISIBLE_DEVICES"), list(logging.getLogger().handlers)) == before


def test_missing_wrong_and_broken_files_are_named(
    stand_ins: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESTORATION_WEIGHTS_DIR", str(tmp_path))
    picture = load_image(natural_image(32, 32))
    with pytest.raises(ModelUnavailableError, match=r"download https://.*ColorizeStable_gen\.pth"):
        colorize_task.colorize(picture, "deoldify-stable")
    # An interrupted download: the safe reader names the file as truncated or corrupt.
    data = (stand_ins / "ColorizeStable_gen.pth").read_bytes()
    (tmp_path / "ColorizeStable_gen.pth").write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelUnavailableError, match=r"ColorizeStable_gen\.pth"):
        colorize_task.colorize(picture, "deoldify-stable")
    # A DeOldify generator with layers missing: the strict load refuses it.
    state = torch.load(stand_ins / "ColorizeArtistic_gen.pth", weights_only=True)["model"]
    del state["layers.11.0.bias"]
    torch.save({"model": state}, tmp_path / "ColorizeArtistic_gen.pth")
    with pytest.raises(ModelUnavailableError, match="do not fit the generator"):
        colorize_task.colorize(picture, "deoldify-artistic")
    torch.save({"model": {"conv.weight": torch.zeros(3, 3, 1, 1)}}, tmp_path / "other.pth")
    os.replace(tmp_path / "other.pth", tmp_path / "ColorizeArtistic_gen.pth")
    with pytest.raises(ModelUnavailableError, match="not a DeOldify generator"):
        colorize_task.colorize(picture, "deoldify-artistic")


def test_layout_is_read_from_the_weights(stand_ins: Path) -> None:
    from pipelines.backends.torch import loader

    for card_id, generator in GENERATORS.items():
        (file,) = MODELS.get(card_id).source.files
        state = loader.read_state_dict(stand_ins / file.filename)
        assert deoldify.detect(state) and deoldify.generator_for(state) == generator


def test_custom_deoldify_checkpoint_becomes_a_colorize_model(
    stand_ins: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.custom import add_checkpoint

    monkeypatch.setenv("RESTORATION_WEIGHTS_DIR", str(tmp_path))
    card = add_checkpoint(stand_ins / "ColorizeArtistic_gen.pth", "my deoldify.pth")
    assert card.tasks == ("colorize",) and colorize_task.uses_render_factor(card)
    assert "resnet34 deep" in card.guidance
    result = colorize_task.colorize(load_image(natural_image(40, 40)), card.id, render_factor=7)
    assert (result.width, result.height) == (40, 40) and not result.grayscale


def test_cli_colorizes_with_render_factor(weights_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "old.png"
    natural_image(48, 32).convert("L").save(source)
    out = tmp_path / "colour.png"
    args = ["run", "colorize", "--model", "deoldify-artistic", "--render-factor", "7"]
    assert cli([*args, "-i", str(source), "-o", str(out)]) == 0
    assert Image.open(out).size == (48, 32) and Image.open(out).mode == "RGB"


def test_served_colorize_with_deoldify(served_deoldify: str, tmp_path: Path) -> None:
    """A user places the file in the server's weights folder; /colorize then uses it."""
    photo = tmp_path / "old.png"
    natural_image(64, 48).convert("L").save(photo)
    client = Client(served_deoldify, verbose=False)
    (before, after), full, note = client.predict(
        handle_file(str(photo)), "deoldify-artistic", 7, api_name="/colorize"
    )
    assert Image.open(full).size == (64, 48) and Image.open(full).mode == "RGB"
    assert Image.open(after).size == Image.open(before).size == (64, 48)
    assert "DeOldify artistic" in note
    with pytest.raises(Exception, match="Render factor 3 is out of range"):
        client.predict(handle_file(str(photo)), "deoldify-artistic", 3, api_name="/colorize")
