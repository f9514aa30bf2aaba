"""The full BOPB pipeline through the user path: synthetic random-weight checkpoints in the
official layout (tests/bopb_fixtures.py), picked by the ``auto`` engine, both modes, faces on.

Random weights say nothing about quality: this checks that every stage runs end to end
from the command line, what comes out (size, mask, note) and that the engine is named.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.__main__ import main
from pipelines.old_photo import OldPhotoOptions, default_engine, restore_old_photo
from tests.bopb_fixtures import using_bopb_weights
from tests.conftest import EXAMPLES

FACE_PHOTO = EXAMPLES / "astronaut_hq.png"  # 256 px, one face


@pytest.fixture(scope="module")
def bopb_weights(bopb_checkpoints: Path) -> Iterator[Path]:
    with using_bopb_weights(bopb_checkpoints) as root:
        yield root


@pytest.mark.parametrize("scratches", [True, False], ids=["with-scratches", "without"])
def test_full_bopb_pipeline_from_the_command_line(
    scratches: bool,
    bopb_weights: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    engine = default_engine(scratches, faces=True)
    assert engine.startswith("bopb-")  # auto picks BOPB once its files are in place
    out, mask = tmp_path / "out.png", tmp_path / "mask.png"
    args = ["run", "old-photo", "--input", str(FACE_PHOTO), "--output", str(out)]
    args += ["--faces", "bopb", "--mask-output", str(mask)]
    assert main(args + (["--scratches"] if scratches else [])) == 0
    note = capsys.readouterr().err
    assert "Bringing Old Photos Back to Life" in note and "enhanced with BOPB" in note
    restored = np.asarray(Image.open(out).convert("RGB"))
    original = np.asarray(Image.open(FACE_PHOTO).convert("RGB"))
    assert restored.shape == original.shape and np.abs(restored - original.astype(int)).mean() > 1
    assert mask.exists() == scratches
    if scratches:
        assert Image.open(mask).size == (256, 256)


def test_a_corrected_mask_reruns_bopb_restoration_without_detection(bopb_weights: Path) -> None:
    from pipelines.images import load_image

    picture = load_image(Image.open(FACE_PHOTO).convert("RGB").crop((0, 0, 64, 48)))
    corrected = np.zeros((48, 64), bool)
    corrected[20:23, 5:60] = True
    result = restore_old_photo(picture, OldPhotoOptions(method="bopb"), mask=corrected)
    assert result.method == "bopb" and np.array_equal(result.mask, corrected)
    assert result.picture.rgb.shape == picture.rgb.shape
    assert np.isfinite(result.picture.rgb).all()
