"""The served app, called through ``gradio_client`` as API users call it."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from PIL import Image

from pipelines.registry import MODELS
from tests.conftest import natural_image


@pytest.fixture(scope="module")
def client(live_server: str) -> Client:
    return Client(live_server, verbose=False)


def _sr(client: Client, path: Path, model: str, **options):
    arguments = {
        "outscale": 0,
        "size_mode": "Scale factor",
        "size_value": 0,
        "noise": -1,
        "tile": 0,
    } | options
    if not arguments["outscale"]:
        arguments["outscale"] = MODELS.get(model).native_scale
    return client.predict(
        handle_file(str(path)), model, *arguments.values(), api_name="/super_resolution"
    )


def _anime(client: Client, path: Path, model: str, scale: int = 0, noise: int = 0):
    return client.predict(handle_file(str(path)), model, scale, noise, 0, api_name="/anime_upscale")


def _check_result(result, size: tuple[int, int]) -> None:
    pair, full, note = result
    before, after = pair
    assert Image.open(full).size == size
    assert Image.open(after).size == Image.open(before).size == size
    assert "→" in note


@pytest.mark.parametrize(
    "card", [c for c in MODELS if "sr" in c.tasks and c.backend != "torch"], ids=lambda c: c.id
)
def test_every_sr_model_through_the_api(card, client: Client, tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    natural_image(20, 16).save(path)
    scale = card.native_scale
    _check_result(_sr(client, path, card.id), (20 * scale, 16 * scale))


@pytest.mark.parametrize(
    "card", [c for c in MODELS if "anime" in c.tasks and c.backend != "torch"], ids=lambda c: c.id
)
def test_every_anime_model_through_the_api(card, client: Client, tmp_path: Path) -> None:
    path = tmp_path / "art.png"
    natural_image(20, 16, "coffee_hq.png").save(path)
    scale = card.native_scale
    noise = card.default_noise if card.default_noise is not None else 0
    _check_result(_anime(client, path, card.id, scale, noise), (20 * scale, 16 * scale))


def test_sr_target_size_through_the_api(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    natural_image(30, 20).save(path)
    result = _sr(client, path, "span-x4-ch48", size_mode="Width", size_value=75)
    _check_result(result, (75, 50))


def _huge_header_png(path: Path) -> None:
    """A real, tiny PNG whose header claims 20000x20000 pixels."""
    natural_image(8, 8).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", 20000, 20000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


def _bad_files(folder: Path) -> dict[str, Path]:
    files = {
        "empty": folder / "empty.png",
        "text": folder / "notes.png",
        "truncated": folder / "cut.png",
        "huge": folder / "huge.png",
    }
    files["empty"].write_bytes(b"")
    files["text"].write_text("this is not an image\n")
    natural_image(64, 64).save(folder / "whole.png")
    whole = (folder / "whole.png").read_bytes()
    files["truncated"].write_bytes(whole[: len(whole) // 2])
    _huge_header_png(files["huge"])
    return files


@pytest.mark.parametrize("kind", ["empty", "text", "truncated", "huge"])
def test_bad_input_gives_a_clear_error_and_the_server_keeps_serving(
    kind: str, client: Client, tmp_path: Path
) -> None:
    bad = _bad_files(tmp_path)[kind]
    with pytest.raises(Exception) as raised:
        _sr(client, bad, "bicubic")
    message = str(raised.value).lower()
    expected = {"empty": "empty", "text": "not an image", "truncated": "truncated", "huge": "20000"}
    assert expected[kind] in message, message
    good = tmp_path / "good.png"
    natural_image(10, 10).save(good)
    _check_result(_sr(client, good, "bicubic"), (40, 40))


def test_unknown_model_is_a_readable_error(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    natural_image(10, 10).save(path)
    with pytest.raises(Exception, match="no-such-model"):
        _sr(client, path, "no-such-model", outscale=2)


def test_every_component_has_a_frontend(live_server: str) -> None:
    """Gradio's browser code knows only its own components: any other type (e.g. a subclass
    that does not name gr.Image's frontend) renders as an endless "Loading..."."""
    import json
    import urllib.request

    import gradio

    with urllib.request.urlopen(live_server + "config", timeout=30) as response:
        config = json.load(response)
    types = {component["type"] for component in config["components"]}
    builtin = {
        value.__name__.lower()
        for value in vars(gradio).values()
        if isinstance(value, type) and issubclass(value, gradio.blocks.Block)
    }
    assert "image" in types and "imageslider" in types
    internal = {"tabitem", "form", "api"}  # layout helpers and gr.api endpoints
    assert types <= builtin | internal, f"no frontend for {types - builtin - internal}"
