"""The Evaluation tab's models menu follows the task and the machine's current state."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.registry import cards_for
from ui import evaluation


def test_changing_the_task_offers_that_tasks_usable_models() -> None:
    anime = evaluation.refreshed_models("anime", ["span-x4-ch48"])
    offered = {model_id for _, model_id in anime["choices"]}
    assert "realesr-animevideov3" in offered and "span-x4-ch48" not in offered
    assert offered <= {card.id for card in cards_for("anime")}
    assert not offered & set(evaluation.BASELINES)
    assert anime["value"] == []  # the SR pick does not apply; no anime default is preferred
    sr = evaluation.refreshed_models("sr", ["span-x2-ch48", "gone-model"])
    assert sr["value"] == ["span-x2-ch48"]


def test_weights_placed_after_start_up_are_offered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A downloadable card is offered once its file is in the weights folder."""
    monkeypatch.setenv("RESTORATION_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = {model_id for _, model_id in evaluation.refreshed_models("sr", [])["choices"]}
    assert "swinir-l-realsr-x4" not in before
    (file,) = next(c for c in cards_for("sr") if c.id == "swinir-l-realsr-x4").source.files
    (tmp_path / file.filename).write_bytes(b"placed")
    after = {model_id for _, model_id in evaluation.refreshed_models("sr", [])["choices"]}
    assert after - before == {"swinir-l-realsr-x4"}
