"""The command line, run as a user runs it: a subprocess per call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from pipelines.registry import MODELS, Builtin, Bundled, Download
from tests.conftest import ROOT, natural_image


def cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args],
        cwd=ROOT,
        env=dict(os.environ, **env),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_models_lists_every_card_with_its_state() -> None:
    result = cli("models", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {card.id for card in MODELS}
    for card in MODELS:
        expected = {Bundled: "bundled", Builtin: "builtin", Download: "downloadable"}
        state = expected[type(card.source)]
        if isinstance(card.source, Download) and not all(f.pinned for f in card.source.files):
            state = "unavailable"  # no published checksum: placed by hand, never fetched
        assert rows[card.id]["state"] == state, card.id
    table = cli("models")
    assert "realesrgan-x4plus" in table.stdout and "default for sr" in table.stdout


def test_models_imports_neither_gradio_nor_torch_nor_a_runtime() -> None:
    probe = (
        "import sys\n"
        "from pipelines.__main__ import main\n"
        "main(['models'])\n"
        "print([m for m in ('gradio', 'torch', 'ncnn', 'cv2') if m in sys.modules])"
    )
    check = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip().splitlines()[-1] == "[]", check.stdout


@pytest.mark.parametrize(
    "card", [c for c in MODELS if "sr" in c.tasks and c.backend != "torch"], ids=lambda c: c.id
)
def test_every_sr_model_runs_from_the_cli(card, tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    natural_image(20, 16).save(source)
    out = tmp_path / "out.png"
    result = cli("run", "sr", "--model", card.id, "--input", str(source), "--output", str(out))
    assert result.returncode == 0, result.stderr
    scale = card.native_scale
    assert Image.open(out).size == (20 * scale, 16 * scale)


@pytest.mark.parametrize(
    "card", [c for c in MODELS if "anime" in c.tasks and c.backend != "torch"], ids=lambda c: c.id
)
def test_every_anime_model_runs_from_the_cli(card, tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    natural_image(20, 16, "coffee_hq.png").save(source)
    out = tmp_path / "out.png"
    result = cli("run", "anime", "--model", card.id, "-i", str(source), "-o", str(out))
    assert result.returncode == 0, result.stderr
    scale = card.native_scale
    assert Image.open(out).size == (20 * scale, 16 * scale)


def test_outscale_and_a_folder_of_images(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for index in range(3):
        natural_image(16 + index, 16).save(folder / f"img{index}.png")
    out = tmp_path / "out"
    result = cli(
        "run", "sr", "--model", "span-x4-ch48", "--outscale", "2", "-i", str(folder), "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    written = sorted(out.iterdir())
    assert len(written) == 3
    assert [Image.open(p).size for p in written] == [(32, 32), (34, 32), (36, 32)]
    assert "3 images written" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"hello, I am not an image", "not an image"),
    ],
)
def test_bad_input_fails_with_one_line(content: bytes, message: str, tmp_path: Path) -> None:
    source = tmp_path / "bad.png"
    source.write_bytes(content)
    result = cli(
        "run", "sr", "--model", "bicubic", "-i", str(source), "-o", str(tmp_path / "o.png")
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0].lower()


def test_unknown_model_and_missing_input(tmp_path: Path) -> None:
    result = cli("run", "sr", "--model", "span-x5", "-i", "nope.png", "-o", str(tmp_path))
    assert result.returncode == 1 and "Did you mean" in result.stderr
    result = cli("run", "sr", "--model", "bicubic", "-i", str(tmp_path / "nope.png"), "-o", "x.png")
    assert result.returncode == 1 and "does not exist" in result.stderr


def test_a_downloadable_model_offline_fails_with_the_fetch_command(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    natural_image(16, 16).save(source)
    result = cli(
        "run",
        "sr",
        "--model",
        "realesr-general-x4v3",
        "-i",
        str(source),
        "-o",
        str(tmp_path),
        HF_HUB_OFFLINE="1",
        RESTORATION_WEIGHTS_DIR=str(tmp_path / "weights"),
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "realesr-general-x4v3.pth" in line and str(tmp_path / "weights") in line
    assert "python -m pipelines download realesr-general-x4v3" in line
