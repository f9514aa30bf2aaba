"""The weights manager: downloads, resume, checksums, hand-placed files, offline errors."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import weights
from pipelines.errors import ChecksumError, ModelUnavailableError
from pipelines.registry import CARDS, Download, RemoteFile
from tests.conftest import ROOT
from tests.http_fixtures import serve_files

CHECKPOINT = os.urandom(300_000)
SHA = hashlib.sha256(CHECKPOINT).hexdigest()


def card_for(file: RemoteFile):
    return dataclasses.replace(
        CARDS[0], id="test-model", title="Test model", backend="torch", source=Download((file,))
    )


@pytest.fixture(autouse=True)
def weights_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "weights"
    monkeypatch.setenv("RESTORATION_WEIGHTS_DIR", str(folder))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return folder


def test_url_download_is_verified_and_renamed_into_place(weights_dir: Path) -> None:
    with serve_files() as server:
        url = server.add("releases/model.pth", CHECKPOINT)
        card = card_for(RemoteFile("model.pth", SHA, len(CHECKPOINT), url=url))
        assert weights.card_state(card).state == "downloadable"
        seen: list[tuple[int, int]] = []
        (path,) = weights.resolve(
            card, progress=lambda done, total, name: seen.append((done, total))
        )
    assert path == weights_dir / "model.pth"
    assert path.read_bytes() == CHECKPOINT
    assert seen and seen[-1] == (len(CHECKPOINT), len(CHECKPOINT))
    assert weights.card_state(card).state == "cached"
    assert not list((weights_dir / ".partial").iterdir())


def test_an_interrupted_download_resumes(weights_dir: Path) -> None:
    staging = weights_dir / ".partial"
    staging.mkdir(parents=True)
    (staging / "model.pth.incomplete").write_bytes(CHECKPOINT[:100_000])
    with serve_files() as server:
        url = server.add("model.pth", CHECKPOINT)
        (path,) = weights.resolve(card_for(RemoteFile("model.pth", SHA, len(CHECKPOINT), url=url)))
        ranges = [r for method, _, r in server.requests if method == "GET"]
    assert path.read_bytes() == CHECKPOINT
    assert ranges == ["bytes=100000-"]


def test_a_download_with_the_wrong_checksum_is_deleted_and_reported(weights_dir: Path) -> None:
    with serve_files() as server:
        url = server.add("model.pth", CHECKPOINT[::-1])
        card = card_for(RemoteFile("model.pth", SHA, len(CHECKPOINT), url=url))
        with pytest.raises(ChecksumError, match=r"sha256 .* instead of") as raised:
            weights.resolve(card)
    assert "python -m pipelines download test-model" in str(raised.value)
    assert not (weights_dir / "model.pth").exists()
    assert not list((weights_dir / ".partial").iterdir())


def test_a_file_placed_by_hand_is_found_and_verified_offline(
    weights_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    weights_dir.mkdir()
    (weights_dir / "model.pth").write_bytes(CHECKPOINT)
    card = card_for(RemoteFile("model.pth", SHA, len(CHECKPOINT), url="http://127.0.0.1:9/x"))
    assert weights.card_state(card).state == "cached"
    assert weights.resolve(card) == [weights_dir / "model.pth"]


def test_a_truncated_file_placed_by_hand_is_refused(weights_dir: Path) -> None:
    weights_dir.mkdir()
    (weights_dir / "model.pth").write_bytes(CHECKPOINT[:1000])
    card = card_for(RemoteFile("model.pth", SHA, len(CHECKPOINT), url="http://127.0.0.1:9/x"))
    with pytest.raises(ChecksumError, match="1000 bytes instead of 300000"):
        weights.resolve(card)
    assert not (weights_dir / "model.pth").exists()


def test_offline_and_missing_names_the_file_the_path_and_the_command(
    weights_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    card = card_for(
        RemoteFile(
            "model.pth",
            SHA,
            len(CHECKPOINT),
            repo_id="org/repo",
            path_in_repo="m.pth",
            revision="0" * 40,
        )
    )
    assert weights.card_state(card).state == "unavailable"
    with pytest.raises(ModelUnavailableError) as raised:
        weights.resolve(card)
    message = str(raised.value)
    assert "model.pth" in message and str(weights_dir / "model.pth") in message
    assert "python -m pipelines download test-model" in message and "HF_HUB_OFFLINE" in message


def test_an_unreachable_server_is_one_readable_error(weights_dir: Path) -> None:
    with serve_files() as server:
        url = server.add("other.pth", CHECKPOINT) + "-missing"
    card = card_for(RemoteFile("model.pth", SHA, len(CHECKPOINT), url=url))
    with pytest.raises(ModelUnavailableError, match="cannot be downloaded now"):
        weights.resolve(card)


HUB_SCRIPT = """
import dataclasses, json, sys
from pipelines import weights
from pipelines.registry import CARDS, Download, RemoteFile
file = RemoteFile(**json.loads(sys.argv[1]))
card = dataclasses.replace(CARDS[0], id="hub-model", backend="torch", source=Download((file,)))
print(weights.resolve(card)[0])
"""


def test_hub_download_at_a_pinned_revision(weights_dir: Path) -> None:
    """huggingface_hub itself fetches from a loopback endpoint that speaks the Hub's protocol."""
    revision = "1" * 40
    with serve_files() as server:
        server.add(f"org/sr-models/resolve/{revision}/weights/model.pth", CHECKPOINT)
        file = {
            "filename": "hub-model.pth",
            "sha256": SHA,
            "size_bytes": len(CHECKPOINT),
            "repo_id": "org/sr-models",
            "path_in_repo": "weights/model.pth",
            "revision": revision,
        }
        env = dict(os.environ, HF_ENDPOINT=server.url, RESTORATION_WEIGHTS_DIR=str(weights_dir))
        result = subprocess.run(
            [sys.executable, "-c", HUB_SCRIPT, json.dumps(file)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        paths = [path for method, path, _ in server.requests if method == "GET"]
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).read_bytes() == CHECKPOINT
    assert f"/org/sr-models/resolve/{revision}/weights/model.pth" in paths


def test_remote_files_must_be_pinned() -> None:
    with pytest.raises(ValueError, match="pinned revision"):
        RemoteFile("m.pth", SHA, 1, repo_id="org/repo", path_in_repo="m.pth")
    with pytest.raises(ValueError, match="exactly one"):
        RemoteFile("m.pth", SHA, 1)
