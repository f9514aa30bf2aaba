"""The old-photo task as users reach it: the command line (a subprocess per call) and the
live server through ``gradio_client`` (/restore_old_photo, /rerun_old_photo)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from tests.conftest import EXAMPLES, ROOT

OLD_PHOTO = EXAMPLES / "old_photo_small.png"


def cli(*args: str, weights: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, RESTORATION_WEIGHTS_DIR=str(weights), HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "pipelines", "run", "old-photo", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def white_pixels(path: str | Path) -> int:
    return int((np.asarray(Image.open(path).convert("L")) > 127).sum())


def test_cli_restores_with_scratches_and_writes_the_mask(tmp_path: Path) -> None:
    out, mask = tmp_path / "restored.png", tmp_path / "mask.png"
    args = ["--input", str(OLD_PHOTO), "--output", str(out), "--scratches"]
    result = cli(*args, "--upscale", "2", "--mask-output", str(mask), weights=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "classical fallback" in result.stderr  # no BOPB weights in an empty folder
    assert Image.open(out).size == (512, 512)
    assert Image.open(mask).size == (256, 256) and 0 < white_pixels(mask) < 0.05 * 256 * 256
    # the corrected mask replaces detection: an empty one means nothing is inpainted
    empty = tmp_path / "empty.png"
    Image.new("L", (256, 256), 0).save(empty)
    again = cli("--input", str(OLD_PHOTO), "--output", str(tmp_path), "--mask", str(empty),
                "--mask-output", str(tmp_path / "used.png"), weights=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "0 scratch pixels" in again.stderr
    assert (tmp_path / "old_photo_small_old-photo-classical.png").exists()


def test_cli_refuses_bopb_without_its_weights_in_one_line(tmp_path: Path) -> None:
    args = ["--input", str(OLD_PHOTO), "--output", str(tmp_path / "x.png"), "--scratches"]
    result = cli(*args, "--model", "bopb-restoration-scratch", weights=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and lines[0].startswith("error: ") and "global_checkpoints.zip" in lines[0]
    )
    wrong = cli(*args, "--model", "bicubic", weights=tmp_path)
    assert wrong.returncode == 1 and "does not restore old photos" in wrong.stderr


@pytest.fixture(scope="module")
def client(live_server: str) -> Client:
    return Client(live_server, verbose=False)


def test_restore_old_photo_and_rerun_with_a_corrected_mask_on_the_live_server(
    client: Client,
) -> None:
    pair, full, mask, note = client.predict(
        handle_file(str(OLD_PHOTO)), True, "classical", "off", "off", 1,
        api_name="/restore_old_photo",
    )  # fmt: skip
    assert len(pair) == 2 and Image.open(full).size == (256, 256)
    assert "Classical old-photo repair" in note and "classical fallback" in note
    detected = white_pixels(mask)
    assert detected > 0 and f"{detected} scratch pixels" in note
    editor = {"background": handle_file(str(OLD_PHOTO)), "layers": [], "composite": None}
    _, rerun_full, rerun_mask, rerun_note = client.predict(
        handle_file(str(OLD_PHOTO)), editor, handle_file(mask), "classical", "off", "off", 1,
        api_name="/rerun_old_photo",
    )  # fmt: skip
    assert white_pixels(rerun_mask) == detected and f"{detected} scratch pixels" in rerun_note
    first, second = (np.asarray(Image.open(p), dtype=np.int16) for p in (full, rerun_full))
    assert np.abs(first - second).max() <= 1  # same mask, same repair


def test_the_auto_engine_names_what_ran_and_bad_uploads_get_a_sentence(
    client: Client, tmp_path: Path
) -> None:
    _, _, mask, note = client.predict(
        handle_file(str(OLD_PHOTO)), False, "auto", "off", "off", 1,
        api_name="/restore_old_photo",
    )  # fmt: skip
    assert mask is None
    assert re.search(r"classical fallback|Bringing Old Photos Back to Life", note)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    with pytest.raises(Exception, match="not an image"):
        client.predict(
            handle_file(str(broken)), True, "classical", "off", "off", 1,
            api_name="/restore_old_photo",
        )  # fmt: skip


def test_editor_strokes_correct_the_mask_magenta_adds_green_removes(tmp_path: Path) -> None:
    from ui.old_photo import corrected_mask

    detected = np.zeros((60, 80), np.uint8)
    detected[10:20, :] = 255
    Image.fromarray(detected).save(tmp_path / "mask.png")
    strokes = np.zeros((30, 40, 4), np.uint8)  # the editor's canvas at half the photo's size
    strokes[20:25, 5:10] = (255, 0, 255, 255)  # a missed scratch
    strokes[5:10, 0:20] = (0, 255, 0, 255)  # not a scratch: the left half of the band
    Image.fromarray(strokes, "RGBA").save(tmp_path / "layer.png")
    editor = {"background": None, "layers": [str(tmp_path / "layer.png")], "composite": None}
    mask = corrected_mask(editor, str(tmp_path / "mask.png"), (80, 60))
    assert mask[40:50, 10:20].all() and not mask[10:20, :40].any() and mask[10:20, 40:].all()
    assert mask.sum() == 100 + 400
    assert not corrected_mask(None, None, (80, 60)).any()  # no mask at all: no scratches
