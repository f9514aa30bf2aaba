"""Compare through gradio_client on a live server: outputs, scores equal to
`python -m evaluation score` on the same files, crop strip size, a waifu2x sweep."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from evaluation import __main__ as evaluation_cli
from pipelines import compare
from pipelines.images import load_image
from tests.conftest import natural_image

SR_MODELS = ["span-x4-ch48", "span-x4-ch52", "span-clearreality-x4", "bicubic"]


@pytest.fixture(scope="module")
def client(live_server: str) -> Client:
    return Client(live_server, verbose=False)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("pair")
    reference = natural_image(96, 96)
    reference.save(folder / "reference.png")
    reference.resize((24, 24), Image.Resampling.BICUBIC).save(folder / "small.png")
    return folder / "small.png", folder / "reference.png"


def _score(capsys: pytest.CaptureFixture, ref: Path, dist: str, *options: str) -> dict:
    argv = ["score", "--ref", str(ref), "--dist", dist, "--json", *options]
    assert evaluation_cli.main(argv) == 0
    return json.loads(capsys.readouterr().out)["images"][0]


def test_compare_endpoint_scores_equal_evaluation_score(
    client: Client, pair: tuple[Path, Path], capsys: pytest.CaptureFixture
) -> None:
    strip, outputs, table, exports, note = client.predict(
        image=handle_file(str(pair[0])),
        models=SR_MODELS,
        reference=handle_file(str(pair[1])),
        crop_x=8,
        crop_y=16,
        crop_width=32,
        crop_height=24,
        zoom=3,
        api_name="/compare",
    )
    assert [Path(path).stem for path in outputs] == SR_MODELS
    assert all(Image.open(path).size == (96, 96) for path in outputs)
    rows = {row[0]: dict(zip(table["headers"], row, strict=True)) for row in table["data"]}
    assert list(rows) == SR_MODELS
    for model, path in zip(SR_MODELS, outputs, strict=True):
        sr = _score(capsys, pair[1], path, "--metrics", "psnr_y_sr,ssim_y_sr", "--crop-border", "4")
        niqe = _score(capsys, pair[1], path, "--metrics", "niqe")
        assert rows[model]["psnr_y_sr"] == sr["psnr_y_sr"]
        assert rows[model]["ssim_y_sr"] == sr["ssim_y_sr"]
        assert rows[model]["niqe"] == niqe["niqe"]
        assert rows[model]["runtime_s"] >= 0 and rows[model]["error"] == ""
    tiles = 1 + len(SR_MODELS) + 1  # input, the outputs, reference
    expected = compare.strip_size(tiles, compare.Region(8, 16, 32, 24), 3)
    assert Image.open(strip).size == expected
    document = json.loads(Path(next(p for p in exports if p.endswith(".json"))).read_text())
    assert [row["psnr_y_sr"] for row in document["rows"]] == [
        rows[m]["psnr_y_sr"] for m in SR_MODELS
    ]
    assert "4** runs done" in note


def test_waifu2x_noise_sweep_through_the_api_gives_five_different_outputs(
    client: Client, pair: tuple[Path, Path]
) -> None:
    _, outputs, table, _, _ = client.predict(
        image=handle_file(str(pair[0])),
        models=["waifu2x-upconv7-photo"],
        sweep_option="noise",
        sweep_values="-1,0,1,2,3",
        api_name="/compare",
    )
    assert [row[0] for row in table["data"]] == [
        f"waifu2x-upconv7-photo noise={n}" for n in (-1, 0, 1, 2, 3)
    ]
    images = [load_image(path).rgb for path in outputs]
    assert len(images) == 5 and all(i.shape == (48, 48, 3) for i in images)
    for i in range(5):
        for j in range(i + 1, 5):
            assert np.abs(images[i] - images[j]).max() > 1 / 255, (i, j)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"models": ["no-such-model"]}, "Unknown model"),
        ({"models": ["bicubic"], "sweep_option": "noise", "sweep_values": "0,1"}, "no noise"),
        ({"models": ["bicubic"], "sweep_option": "outscale", "sweep_values": "a"}, "numbers"),
    ],
)
def test_bad_requests_get_a_readable_error_and_the_server_keeps_serving(
    client: Client, pair: tuple[Path, Path], kwargs: dict, words: str
) -> None:
    with pytest.raises(Exception, match=words):
        client.predict(image=handle_file(str(pair[0])), **kwargs, api_name="/compare")
    _, outputs, *_ = client.predict(
        image=handle_file(str(pair[0])), models=["bicubic"], api_name="/compare"
    )
    assert len(outputs) == 1
