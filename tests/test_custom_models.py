"""Custom checkpoints: added from the CLI and through the live app, then used by tasks."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from gradio_client import Client, handle_file
from PIL import Image

from tests.conftest import ROOT, natural_image
from tests.test_torch_backend import compact


def save_compact(path: Path, scale: int = 2) -> Path:
    """A random-weight SRVGGNetCompact saved as Real-ESRGAN does: {"params": state_dict}."""
    torch.save({"params": compact(scale=scale, seed=3)}, path)
    return path


def test_cli_runs_a_checkpoint_file_as_the_model(tmp_path: Path) -> None:
    checkpoint = save_compact(tmp_path / "my_upscaler.pth")
    source = tmp_path / "in.png"
    natural_image(20, 12).save(source)
    out = tmp_path / "out.png"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines",
            "run",
            "sr",
            "--model",
            str(checkpoint),
            "-i",
            str(source),
            "-o",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "RESTORATION_WEIGHTS_DIR": str(tmp_path / "w")},
    )
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (40, 24)


@pytest.fixture(scope="module")
def client(live_server: str) -> Client:
    return Client(live_server, verbose=False)


def test_an_added_checkpoint_is_usable_in_the_sr_tab_and_the_api(
    client: Client, tmp_path: Path
) -> None:
    checkpoint = save_compact(tmp_path / "tiny-x2.pth")
    model_id, note = client.predict(handle_file(str(checkpoint)), "Tiny x2", api_name="/add_model")
    assert model_id.startswith("custom-tiny-x2-") and "Compact x2" in note
    assert model_id in {row["id"] for row in client.predict(api_name="/models")}
    photo = tmp_path / "photo.png"
    natural_image(18, 14).save(photo)
    _, full, _ = client.predict(
        handle_file(str(photo)),
        model_id,
        2,
        "Scale factor",
        0,
        -1,
        0,
        api_name="/super_resolution",
    )
    assert Image.open(full).size == (36, 28)


class Payload:
    """Anything that is not plain tensors: a real checkpoint must never unpickle it."""


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"definitely not a checkpoint", "bad.pth"),
        (pickle.dumps({"params": Payload()}), "refuse to unpickle"),
    ],
)
def test_bad_checkpoints_are_refused_with_a_reason(
    content: bytes, expected: str, client: Client, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(content)
    with pytest.raises(Exception) as raised:
        client.predict(handle_file(str(bad)), "", api_name="/add_model")
    message = str(raised.value).lower()
    assert "bad.pth" in message and expected in message, message
