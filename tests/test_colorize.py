"""Colorization end to end: task, cards, CLI and the served API, with stand-in weights.

The real DDColor checkpoints (912 MB) cannot be downloaded here, so a random-weight
DDColor in the release format (``{"params": state_dict}``) stands in. spandrel only
recognises DDColor's four ConvNeXt encoders, so the stand-in uses the smallest
(ConvNeXt-T, which DDColor runs at 256 px) with a small colour decoder: 170 MB.
"""

from __future__ import annotations

import dataclasses
import hashlib
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
from pipelines.errors import InvalidOptionError
from pipelines.images import load_image
from pipelines.registry import MODELS, SESSION_MODELS, Download, ModelCard
from tests.conftest import natural_image

DDCOLOR_CARDS = [c for c in MODELS if "colorize" in c.tasks and c.architecture == "DDColor"]
LIGHTNESS_BOUND = (0.5, 1.5)
"""Mean and 99th percentile of |ΔL| (CIE L*, 0..100) allowed between input and output of a
mid-tone photo. The task keeps L* (not BT.601 luma, which shifts with saturation); only
OpenCV's float Lab conversion (~0.1) and colours clipped to the RGB gamut change it. Near
black or white hardly any colour fits the gamut, hence the mid-tone test photo."""


def _random_ddcolor() -> dict[str, dict[str, torch.Tensor]]:
    from spandrel_extra_arches.architectures.DDColor import DDColor

    torch.manual_seed(0)
    net = DDColor(
        encoder_name="convnext-t",
        num_output_channels=2,
        last_norm="Spectral",
        num_queries=16,
        dec_layers=1,
    ).eval()
    with torch.inference_mode():
        ab = net(torch.rand(1, 3, 64, 64))
    # Untrained spectral norms leave huge outputs. The head's weight is weight_orig / sigma,
    # sigma = u·(W v) from the stored u: scaling u brings a/b to plausible values (about ±15).
    state = net.state_dict()
    state["refine_net.0.0.weight_u"] *= float(ab.abs().max()) / 15.0
    return {"params": state}


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ddcolor") / "stand_in.pth"
    torch.save(_random_ddcolor(), path)
    return path


def _test_card(card: ModelCard, stand_in: Path, folder: Path) -> ModelCard:
    """The registry card with only its pinned size and sha256 replaced by the stand-in's."""
    (official,) = card.source.files
    os.link(stand_in, folder / official.filename)
    data = stand_in.read_bytes()
    file = dataclasses.replace(
        official, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data)
    )
    return SESSION_MODELS.add(
        dataclasses.replace(card, id=f"test-{card.id}", source=Download((file,)))
    )


@pytest.fixture()
def ddcolor(stand_in: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelCard:
    monkeypatch.setenv("RESTORATION_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return _test_card(DDCOLOR_CARDS[0], stand_in, tmp_path)


def _gray(width: int, height: int) -> Image.Image:
    """A black-and-white photo with its tones squeezed into 60..200 (L* 25..73)."""
    return natural_image(width, height).convert("L").point(lambda v: 60 + v * 140 // 255)


def _lightness(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2Lab)[:, :, 0]


def test_ddcolor_cards() -> None:
    assert {c.id for c in DDCOLOR_CARDS} >= {"ddcolor-modelscope"}
    assert MODELS.default_for("colorize").id == "ddcolor-modelscope"
    for card in DDCOLOR_CARDS:
        (file,) = card.source.files
        assert file.repo_id == "piddnad/DDColor-models" and len(file.revision) == 40
        assert card.license == "Apache-2.0"


@pytest.mark.parametrize("card", DDCOLOR_CARDS, ids=lambda c: c.id)
def test_gray_photo_gets_colour_at_full_resolution(
    card: ModelCard, stand_in: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESTORATION_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    test_card = _test_card(card, stand_in, tmp_path)
    picture = load_image(_gray(512, 512))
    assert picture.grayscale
    result = colorize_task.colorize(picture, test_card.id)
    assert (result.width, result.height) == (512, 512) and not result.grayscale
    assert np.ptp(result.rgb, axis=2).mean() > 0.05  # coloured, not gray
    change = np.abs(_lightness(result.rgb) - _lightness(picture.rgb))
    assert change.mean() < LIGHTNESS_BOUND[0]
    assert np.percentile(change, 99) < LIGHTNESS_BOUND[1]


def test_colour_input_is_desaturated_first(ddcolor: ModelCard) -> None:
    colour = load_image(natural_image(96, 64))
    gray = load_image(natural_image(96, 64).convert("L").convert("RGB"))
    messages: list[str] = []
    result = colorize_task.colorize(
        colour, ddcolor.id, progress=lambda _f, message: messages.append(message)
    )
    assert colorize_task.DESATURATED_NOTE in messages
    from_gray = colorize_task.colorize(gray, ddcolor.id)
    # The model sees the same gray copy; only the lightness (L of the original) differs.
    assert np.abs(result.rgb - from_gray.rgb).mean() < 0.02


def test_alpha_is_kept_and_render_factor_refused(ddcolor: ModelCard) -> None:
    rgba = natural_image(40, 30).convert("L").convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((40, 30)))
    picture = load_image(rgba)
    result = colorize_task.colorize(picture, ddcolor.id)
    assert result.alpha is not None
    np.testing.assert_array_equal(result.alpha, picture.alpha)
    with pytest.raises(InvalidOptionError, match="render factor"):
        colorize_task.colorize(picture, ddcolor.id, render_factor=35)


def test_cli_colorizes_a_folder(ddcolor: ModelCard, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    _gray(48, 32).save(inputs / "a.png")
    natural_image(32, 48).save(inputs / "b.jpg")
    assert (
        cli(["run", "colorize", "--model", ddcolor.id, "-i", str(inputs), "-o", str(tmp_path)]) == 0
    )
    outputs = sorted(tmp_path.glob("*.png"))
    assert [Image.open(p).size for p in outputs] == [(48, 32), (32, 48)]
    assert all(Image.open(p).mode == "RGB" for p in outputs)


def test_tab_handler_colorizes_and_reports_missing_weights(
    ddcolor: ModelCard, tmp_path: Path
) -> None:
    """The function the served /colorize runs, called in-process (the session card lives here)."""
    import gradio as gr

    from ui import colorize as tab

    photo = tmp_path / "old.png"
    natural_image(64, 48).save(photo)
    (before, after), full, note = tab.colorize(str(photo), ddcolor.id, 0)
    assert Image.open(full).size == (64, 48) and Image.open(full).mode == "RGB"
    assert Image.open(after).size == Image.open(before).size == (64, 48)
    assert colorize_task.DESATURATED_NOTE in note
    with pytest.raises(gr.Error, match=r"ddcolor_modelscope\.pth.*download ddcolor-modelscope"):
        tab.colorize(str(photo), "ddcolor-modelscope", 0)


def test_custom_ddcolor_checkpoint_becomes_a_colorize_model(
    stand_in: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.custom import add_checkpoint

    monkeypatch.setenv("RESTORATION_WEIGHTS_DIR", str(tmp_path))
    card = add_checkpoint(stand_in, "my ddcolor.pth")
    assert card.tasks == ("colorize",) and card.architecture == "DDColor"
    result = colorize_task.colorize(load_image(_gray(40, 40)), card.id)
    assert (result.width, result.height) == (40, 40) and not result.grayscale


def test_served_colorize_api(live_server: str, tmp_path: Path) -> None:
    """The served endpoint: its signature, and its errors (no real weights can be served here)."""
    client = Client(live_server, verbose=False)
    parameters = client.view_api(return_format="dict")["named_endpoints"]["/colorize"]["parameters"]
    assert [p["parameter_name"] for p in parameters] == ["image", "model", "render_factor"]
    photo = tmp_path / "old.png"
    _gray(32, 24).save(photo)
    with pytest.raises(Exception, match="not offered for colorization"):
        client.predict(handle_file(str(photo)), "bicubic", 0, api_name="/colorize")
    with pytest.raises(Exception, match="Did you mean ddcolor-modelscope"):
        client.predict(handle_file(str(photo)), "ddcolor-modelscop", 0, api_name="/colorize")
