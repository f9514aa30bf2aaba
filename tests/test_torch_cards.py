"""Every downloadable SR/anime torch card, end to end through the user's code path.

The real checkpoints cannot be downloaded here, so each card gets a random-weight
network of its own architecture and scale, saved in the file format and under the
file name the card names, in the weights cache. The card is the registry's row with
only its pinned size and sha256 replaced by the stand-in file's (the weights manager
would otherwise — correctly — delete the file as corrupt). From there the path is the
one users hit: ``tasks.super_resolution`` / ``anime_upscale`` -> ``load_restorer`` ->
``weights.resolve`` (verify) -> safe loading -> architecture check -> tiled engine.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch

from pipelines import tasks
from pipelines.images import load_image
from pipelines.registry import MODELS, SESSION_MODELS, Download
from tests.conftest import natural_image
from tests.test_torch_backend import compact, esrgan, realesrgan_keys, swinir

TORCH_CARDS = [
    card
    for card in MODELS
    if card.backend == "torch"
    and isinstance(card.source, Download)
    and {"sr", "anime"} & set(card.tasks)
]


def _stand_in(architecture: str, scale: int) -> dict[str, torch.Tensor]:
    if architecture == "ESRGAN":
        return {"params_ema": realesrgan_keys(esrgan(scale=scale), scale)}
    if architecture == "Compact":
        return {"params": compact(scale=scale)}
    if architecture == "SwinIR":
        return {"params": swinir(scale=scale)}
    raise AssertionError(f"add a stand-in network for {architecture}")


def test_every_torch_card_is_covered() -> None:
    assert {card.architecture for card in TORCH_CARDS} <= {"ESRGAN", "Compact", "SwinIR"}
    assert len(TORCH_CARDS) >= 6


@pytest.mark.parametrize("card", TORCH_CARDS, ids=lambda c: c.id)
def test_torch_card_runs_through_the_task(
    card, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESTORATION_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (official,) = card.source.files
    path = tmp_path / official.filename
    torch.save(_stand_in(card.architecture, card.native_scale), path)
    data = path.read_bytes()
    stand_in = dataclasses.replace(
        official, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data)
    )
    test_card = dataclasses.replace(card, id=f"test-{card.id}", source=Download((stand_in,)))
    SESSION_MODELS.add(test_card)
    picture = load_image(natural_image(20, 16))
    if "sr" in card.tasks:
        result = tasks.super_resolution(picture, test_card.id)
    else:
        result = tasks.anime_upscale(picture, test_card.id)
    scale = card.native_scale
    assert (result.width, result.height) == (20 * scale, 16 * scale)
    assert result.rgb.min() >= 0.0 and result.rgb.max() <= 1.0
