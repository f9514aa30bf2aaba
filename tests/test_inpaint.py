"""Inpainting: exact pixels outside the mask, plausible fills inside, masks, crops, LaMa,
the API and the CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from pipelines import inpaint as inpainting
from pipelines.errors import InputImageError, InvalidOptionError
from pipelines.images import load_image
from pipelines.registry import MODELS, SESSION_MODELS, Download
from tests.test_cli import cli

OFFLINE_METHODS = ["opencv-telea", "opencv-ns", "patchmatch"]
FILL_TOLERANCE = 0.05
"""Mean absolute error allowed inside the hole of a smooth image (values in [0, 1])."""


def smooth(width: int = 128, height: int = 96) -> np.ndarray:
    """A low-frequency sinusoid in each channel: the truth every method should approach."""
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    planes = [
        0.5 + 0.3 * np.sin(2 * x + y),
        0.5 + 0.3 * np.cos(1.5 * y + 0.5 * x),
        0.3 + 0.4 * x * y,
    ]
    return (np.dstack(planes) * 255 + 0.5).astype(np.uint8)


def hole(shape: tuple[int, int], top: int, left: int, size: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + size[0], left : left + size[1]] = True
    return mask


def test_inpaint_cards_are_listed() -> None:
    ids = {card.id for card in MODELS.for_task("inpaint")}
    assert {"opencv-telea", "opencv-ns", "patchmatch", "lama"} <= ids
    assert MODELS.default_for("inpaint").id == "opencv-telea"  # always runs, unlike LaMa
    result = cli("models", "--json")
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert all(rows[i]["tasks"] == ["inpaint"] for i in ids)
    assert rows["patchmatch"]["state"] == "bundled"


@pytest.mark.parametrize("method", OFFLINE_METHODS)
def test_fill_is_exact_outside_and_close_inside(method: str) -> None:
    truth = smooth()
    damaged = truth.copy()
    mask = hole(truth.shape[:2], 40, 56, (14, 18))
    damaged[mask] = (255, 0, 255)
    picture = load_image(damaged)
    result = inpainting.inpaint(picture, mask, method, dilate=2)
    used = inpainting.dilate_mask(mask, 2)
    assert np.array_equal(result.rgb[~used], picture.rgb[~used])
    assert not np.array_equal(result.rgb[used], picture.rgb[used])
    error = np.abs(result.rgb[used] - truth[used] / 255.0).mean()
    assert error < FILL_TOLERANCE, error


def test_alpha_and_16_bit_pixels_are_kept(tmp_path: Path) -> None:
    rgba = np.dstack([smooth().astype(np.uint16) * 257, np.full((96, 128), 40000, np.uint16)])
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), rgba[:, :, [2, 1, 0, 3]])  # OpenCV writes 16-bit RGBA PNGs as BGRA
    picture = load_image(path)
    mask = hole((96, 128), 30, 30, (10, 10))
    result = inpainting.inpaint(picture, mask, "opencv-telea")
    assert result.bit_depth == 16 and result.alpha is not None
    assert np.array_equal(result.alpha, picture.alpha)
    assert np.array_equal(result.rgb[~mask], picture.rgb[~mask])


def test_large_image_fills_only_a_crop_around_a_small_mask() -> None:
    image = np.random.default_rng(0).integers(0, 256, (2000, 3000, 3), dtype=np.uint8)
    picture = load_image(image)
    mask = hole((2000, 3000), 1000, 1500, (20, 30))
    (box,) = inpainting.crop_boxes(mask, inpainting.WORKING_SIDE["telea"])
    assert (box.bottom - box.top, box.right - box.left) == (20 + 256, 30 + 256)
    started = time.perf_counter()
    result = inpainting.inpaint(picture, mask, "opencv-telea")
    assert time.perf_counter() - started < 20  # a whole-image fill would take minutes
    assert np.array_equal(result.rgb[~mask], picture.rgb[~mask])


def test_far_apart_marks_get_separate_crops() -> None:
    mask = hole((2000, 3000), 100, 100, (10, 10)) | hole((2000, 3000), 1800, 2800, (10, 10))
    boxes = inpainting.crop_boxes(mask, 1024)
    assert len(boxes) == 2 and all(b.bottom - b.top < 300 for b in boxes)


def test_editor_layer_from_a_smaller_canvas_maps_to_the_original(tmp_path: Path) -> None:
    layer = np.zeros((400, 600, 4), dtype=np.uint8)
    layer[100:150, 200:260] = (255, 0, 255, 255)
    path = tmp_path / "layer.png"
    Image.fromarray(layer).save(path)
    value = {"background": None, "layers": [str(path)], "composite": None}
    mask = inpainting.mask_from_editor(value, (1200, 800))
    assert mask.shape == (800, 1200)
    assert np.array_equal(mask, hole((800, 1200), 200, 400, (100, 120)))


def test_mask_file_white_is_fill_and_size_must_match(tmp_path: Path) -> None:
    path = tmp_path / "mask.png"
    Image.fromarray(hole((20, 30), 5, 5, (4, 6)).astype(np.uint8) * 255).save(path)
    assert inpainting.mask_from_file(path, (30, 20)).sum() == 24
    with pytest.raises(InputImageError, match="30×20 pixels but the image is 60×40"):
        inpainting.mask_from_file(path, (60, 40))


def test_bad_masks_and_options_are_refused() -> None:
    picture = load_image(smooth(32, 24))
    with pytest.raises(InputImageError, match="empty"):
        inpainting.inpaint(picture, np.zeros((24, 32), bool), "opencv-telea")
    with pytest.raises(InputImageError, match="whole image"):
        inpainting.inpaint(picture, np.ones((24, 32), bool), "opencv-telea")
    with pytest.raises(InputImageError, match="must match"):
        inpainting.inpaint(picture, np.ones((10, 10), bool), "opencv-telea")
    with pytest.raises(InvalidOptionError, match="0 to 64"):
        inpainting.inpaint(picture, hole((24, 32), 2, 2, (3, 3)), "opencv-telea", dilate=99)
    with pytest.raises(InvalidOptionError, match="not an inpainting method"):
        inpainting.inpaint(picture, hole((24, 32), 2, 2, (3, 3)), "bicubic")
    with pytest.raises(InputImageError, match="different shape"):
        inpainting.scale_mask(np.ones((10, 10), bool), (40, 20))


# ---------------------------------------------------------------- LaMa


@pytest.fixture(scope="session")
def lama_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight big-lama in the official format: a traced TorchScript archive of
    spandrel's LaMa (keys ``model.model.*``, ~206 MB, like IOPaint's file)."""
    import torch
    from spandrel.architectures.LaMa import LaMa

    torch.manual_seed(0)
    net = LaMa(in_nc=4, out_nc=3).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, (torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32)))
    path = tmp_path_factory.mktemp("lama") / "big-lama.pt"
    traced.save(str(path))
    return path


def test_torchscript_weights_are_read_as_data(lama_file: Path) -> None:
    import torch

    from pipelines.backends.torch import torchscript

    ours = torchscript.read_state_dict(lama_file)
    reference = torch.jit.load(str(lama_file)).state_dict()  # our own file: safe to run here
    assert ours.keys() == reference.keys()
    assert all(torch.equal(ours[k], reference[k]) for k in reference)


def test_lama_card_fills_through_the_weights_manager(
    lama_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESTORATION_WEIGHTS_DIR", str(lama_file.parent))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    card = MODELS.get("lama")
    (official,) = card.source.files
    data = lama_file.read_bytes()
    stand_in = dataclasses.replace(
        official, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data)
    )
    SESSION_MODELS.add(dataclasses.replace(card, id="test-lama", source=Download((stand_in,))))
    picture = load_image(smooth(45, 37))  # odd sizes: padded to multiples of 8 and back
    mask = hole((37, 45), 10, 12, (9, 11))
    result = inpainting.inpaint(picture, mask, "test-lama", dilate=1)
    used = inpainting.dilate_mask(mask, 1)
    assert np.array_equal(result.rgb[~used], picture.rgb[~used])
    assert np.isfinite(result.rgb).all() and not np.array_equal(result.rgb, picture.rgb)


# ---------------------------------------------------------------- API and CLI


@pytest.fixture(scope="module")
def client(live_server: str) -> Client:
    return Client(live_server, verbose=False)


def _files(tmp_path: Path) -> tuple[Path, Path, Path, np.ndarray]:
    image = smooth(64, 48)
    mask = hole((48, 64), 16, 20, (10, 12))
    image_path, layer_path, mask_path = (tmp_path / n for n in ("in.png", "l.png", "m.png"))
    Image.fromarray(image).save(image_path)
    strokes = np.zeros((48, 64, 4), np.uint8)
    strokes[mask] = (255, 0, 255, 255)
    Image.fromarray(strokes).save(layer_path)
    Image.fromarray(mask.astype(np.uint8) * 255).save(mask_path)
    return image_path, layer_path, mask_path, mask


@pytest.mark.parametrize("style", ["editor layer", "mask file"])
def test_api_fills_and_keeps_the_rest(client: Client, tmp_path: Path, style: str) -> None:
    image_path, layer_path, mask_path, mask = _files(tmp_path)
    layers = [handle_file(str(layer_path))] if style == "editor layer" else []
    editor = {"background": handle_file(str(image_path)), "layers": layers, "composite": None}
    mask_file = handle_file(str(mask_path)) if style == "mask file" else None
    _pair, full, used, note = client.predict(
        editor, mask_file, "opencv-telea", 2, api_name="/inpaint"
    )
    original = np.asarray(Image.open(image_path))
    result = np.asarray(Image.open(full))
    dilated = inpainting.dilate_mask(mask, 2)
    assert result.shape == original.shape  # no alpha added by the editor's RGBA
    assert np.array_equal(result[~dilated], original[~dilated])
    assert not np.array_equal(result[dilated], original[dilated])
    assert np.array_equal(np.asarray(Image.open(used)) > 127, dilated)
    assert "filled" in note


def test_api_refuses_an_empty_mask(client: Client, tmp_path: Path) -> None:
    image_path, *_ = _files(tmp_path)
    editor = {"background": handle_file(str(image_path)), "layers": [], "composite": None}
    with pytest.raises(Exception, match="mask is empty"):
        client.predict(editor, None, "opencv-telea", 0, api_name="/inpaint")


def test_cli_inpaints_with_a_mask(tmp_path: Path) -> None:
    image_path, _, mask_path, mask = _files(tmp_path)
    output = tmp_path / "out.png"
    result = cli(
        "run", "inpaint", "--model", "opencv-ns", "--input", str(image_path),
        "--mask", str(mask_path), "--output", str(output), "--dilate", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    dilated = inpainting.dilate_mask(mask, 1)
    original, filled = np.asarray(Image.open(image_path)), np.asarray(Image.open(output))
    assert np.array_equal(filled[~dilated], original[~dilated])
    missing = cli("run", "inpaint", "--input", str(image_path), "--output", str(output))
    assert missing.returncode == 1 and "--mask" in missing.stderr
