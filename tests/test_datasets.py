"""Datasets from real folders built from scikit-image photos, the built-in set, standard
sets from local folders, the offline errors and a Hub download from a loopback server."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from evaluation import datasets
from evaluation.datasets import (
    DATASETS,
    LAYOUTS,
    DatasetCard,
    DatasetError,
    DatasetRegistry,
    DatasetUnavailableError,
    HubArchive,
    Sample,
    Skipped,
    UnknownDatasetError,
    base_name,
    install_archive,
    load_dataset,
)
from pipelines.images import Picture
from tests.http_fixtures import FileServer, serve_files

PHOTOS = {
    "baby": data.astronaut,
    "bird": data.coffee,
    "butterfly": data.chelsea,
    "head": data.rocket,
    "woman": data.camera,  # a gray photo
}


def _save(path: Path, name: str, size: int = 48) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(PHOTOS[name]()[:size, :size]).save(path)
    return path


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty weights cache, no shared datasets folder, and no Hub."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("RESTORATION_WEIGHTS_DIR", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(datasets.DATASETS_DIR_ENV, raising=False)
    return cache


# ---------------------------------------------------------------- table


def test_registry_did_you_mean_and_duplicates() -> None:
    assert {"builtin", "folder", "set5", "set14", "bsd100", "urban100", "manga109"} <= {
        card.id for card in DATASETS
    }
    assert DATASETS.get("Set5").id == "set5"
    with pytest.raises(UnknownDatasetError, match="Did you mean set5"):
        load_dataset("sett5")
    with pytest.raises(UnknownDatasetError, match="Did you mean urban100"):
        DATASETS.get("urban-100")
    card = DATASETS.get("set5")
    with pytest.raises(ValueError, match="duplicate"):
        DatasetRegistry([card, card])


def test_pinned_sources_are_complete() -> None:
    for card in DATASETS:
        source = card.source
        if source and source.pinned:
            assert len(source.revision) == 40 and len(source.sha256) == 64
            assert source.page.startswith("https://huggingface.co/datasets/")


# ---------------------------------------------------------------- builtin and folders


def test_builtin_set_is_the_examples_references() -> None:
    dataset = load_dataset("builtin")
    assert dataset.names == ["astronaut", "coffee"]
    samples = list(dataset)
    assert all(isinstance(s.gt, Picture) and s.lq is None for s in samples)
    assert samples[0].gt.rgb.shape == (256, 256, 3) and samples[1].gt.rgb.shape == (200, 300, 3)
    assert dataset.describe()["images"] == 2


def test_folder_of_hq_images(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    for name in ("bird", "baby", "woman"):
        _save(folder / f"{name}.png", name)
    (folder / "README.txt").write_text("not an image")
    (folder / "._baby.png").write_bytes(b"macOS resource fork")
    dataset = load_dataset("folder", folder)
    assert dataset.layout == "hq" and dataset.names == ["baby", "bird", "woman"]
    samples = list(dataset)
    assert [s.path.name for s in samples] == ["baby.png", "bird.png", "woman.png"]
    assert samples[2].gt.grayscale and samples[2].gt.rgb.shape == (48, 48, 3)


@pytest.mark.parametrize(
    ("gt_folder", "lq_folder", "lq_suffix"),
    [("gt", "lq", ""), ("HR", "LR", "x4"), ("GT", "LQ", "_LR"), ("hr", "lr", "_SRF_4_LR")],
)
def test_folder_of_pairs_in_two_subfolders(
    tmp_path: Path, gt_folder: str, lq_folder: str, lq_suffix: str
) -> None:
    for name in ("baby", "bird"):
        _save(tmp_path / gt_folder / f"{name}.png", name, 48)
        _save(tmp_path / lq_folder / f"{name}{lq_suffix}.png", name, 12)
    dataset = load_dataset("folder", tmp_path)
    assert dataset.layout == "pair-folders" and dataset.names == ["baby", "bird"]
    for sample in dataset:
        assert sample.gt.rgb.shape == (48, 48, 3) and sample.lq.rgb.shape == (12, 12, 3)
        assert sample.lq_path.parent.name == lq_folder


def test_set5_style_pairs_side_by_side(tmp_path: Path) -> None:
    for name in ("baby", "bird"):
        _save(tmp_path / f"img_{name}_SRF_4_HR.png", name, 48)
        _save(tmp_path / f"img_{name}_SRF_4_LR.png", name, 12)
    dataset = load_dataset("folder", tmp_path)
    assert dataset.layout == "pair-suffixes"
    assert dataset.names == ["img_baby", "img_bird"]
    assert all(s.lq.rgb.shape == (12, 12, 3) for s in dataset)


def test_base_name_strips_role_and_scale_tags_only() -> None:
    cases = {
        "img_001_SRF_4_HR": "img_001",
        "0801x4": "0801",
        "baby_LR": "baby",
        "baby-x2": "baby",
        "box2": "box2",
        "matrix": "matrix",
        "hr": "hr",
    }
    for stem, expected in cases.items():
        assert base_name(stem) == expected


def test_bad_and_unpaired_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    for name in ("baby", "bird", "head"):
        _save(tmp_path / "gt" / f"{name}.png", name)
    _save(tmp_path / "lq" / "baby.png", "baby", 12)
    (tmp_path / "lq" / "bird.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    _save(tmp_path / "lq" / "orphan.png", "woman", 12)
    dataset = load_dataset("folder", tmp_path)
    items = list(dataset.iter_with_skips())
    samples = [i for i in items if isinstance(i, Sample)]
    skipped = {i.name: i for i in items if isinstance(i, Skipped)}
    assert [s.name for s in samples] == ["baby"]
    assert set(skipped) == {"bird", "head", "orphan"}
    assert skipped["bird"].path == tmp_path / "lq" / "bird.png"
    assert "truncated or corrupt" in skipped["bird"].reason or "header" in skipped["bird"].reason
    assert "no matching input" in skipped["head"].reason
    assert "no matching reference" in skipped["orphan"].reason
    with pytest.raises(DatasetError, match="iter_with_skips"):
        list(dataset)


def test_same_names_are_not_silently_merged(tmp_path: Path) -> None:
    _save(tmp_path / "baby.png", "baby")
    Image.fromarray(data.astronaut()[:32, :32]).save(tmp_path / "baby.jpg")
    dataset = load_dataset("folder", tmp_path)
    assert dataset.names == ["baby"]
    assert "same name as" in dataset.problems[0].reason


def test_folders_without_images_say_what_is_recognised(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="Recognised folder layouts") as error:
        load_dataset("folder", tmp_path / "empty")
    assert "DIR/gt/*.png + DIR/lq/*.png" in str(error.value) and LAYOUTS in str(error.value)
    with pytest.raises(DatasetError, match="needs a folder"):
        load_dataset("folder")
    with pytest.raises(DatasetError, match="is not a folder"):
        load_dataset("folder", tmp_path / "missing")


# ---------------------------------------------------------------- standard sets


def _set5(parent: Path, layout: str = "flat") -> Path:
    folder = parent / "Set5"
    for name in PHOTOS:
        if layout == "flat":
            _save(folder / f"{name}.png", name)
        elif layout == "hr-folder":
            _save(folder / "Set5_HR" / f"{name}.png", name)
        else:  # the LR files of the set come along; only the references are used
            _save(folder / f"{name}_HR.png", name)
            _save(folder / f"{name}_LR.png", name, 12)
    return folder


@pytest.mark.parametrize("layout", ["flat", "hr-folder", "suffix-pairs"])
def test_standard_set_from_a_local_folder(tmp_path: Path, layout: str) -> None:
    folder = _set5(tmp_path, layout)
    for root in (tmp_path, folder):  # the parent or the set's own folder
        dataset = load_dataset("set5", root)
        assert dataset.names == sorted(PHOTOS) and dataset.layout == "hq"
        assert all(sample.lq is None for sample in dataset)


def test_standard_set_from_the_environment_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set5(tmp_path / "shared")
    monkeypatch.setenv(datasets.DATASETS_DIR_ENV, str(tmp_path / "shared"))
    assert len(load_dataset("SET5")) == 5


def test_standard_set_must_be_complete_and_readable(tmp_path: Path) -> None:
    folder = _set5(tmp_path)
    (folder / "woman.png").unlink()
    with pytest.raises(DatasetError, match="holds 4 images but Set5 has 5"):
        load_dataset("set5", tmp_path)
    (folder / "woman.png").write_bytes(b"")
    dataset = load_dataset("set5", tmp_path)
    with pytest.raises(DatasetError, match=r"Set5: .*woman\.png.*empty"):
        list(dataset.iter_with_skips())


def test_missing_standard_set_offline_says_where_and_how(isolated: Path) -> None:
    with pytest.raises(DatasetUnavailableError) as error:
        load_dataset("set5")
    message = str(error.value)
    assert "HF_HUB_OFFLINE is set" in message
    assert "DIR/Set5/" in message and "Set5/HR/*.png" in message
    assert "--dataset-dir" in message and datasets.DATASETS_DIR_ENV in message
    assert "python -m evaluation download set5" in message
    assert str(isolated / "datasets" / "Set5") in message


def test_unpinned_and_restricted_sets_are_never_fetched() -> None:
    with pytest.raises(DatasetUnavailableError, match="no pinned sha256") as error:
        load_dataset("set14")
    assert "eugenesiow/Set14" in str(error.value) and "by hand" in str(error.value)
    with pytest.raises(DatasetUnavailableError, match="no redistributable copy"):
        load_dataset("manga109")


# ------------------------------------------- download (a loopback server speaking the Hub protocol)


def _tarball(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            bundle.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def _png(name: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(PHOTOS[name]()[:40, :40]).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture()
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FileServer]:
    """``huggingface_hub`` pointed at a real HTTP server on loopback."""
    with serve_files() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        yield server


def _publish(hub: FileServer, archive: bytes, name: str = "Tiny") -> HubArchive:
    revision = "a" * 40
    hub.add(f"datasets/someone/{name}/resolve/{revision}/data/Tiny_HR.tar.gz", archive)
    digest = hashlib.sha256(archive).hexdigest()
    return HubArchive(f"someone/{name}", "data/Tiny_HR.tar.gz", revision, digest, 0.01)


def test_pinned_archive_is_verified_extracted_and_loaded(hub: FileServer, isolated: Path) -> None:
    archive = _tarball(
        {
            "Tiny_HR/baby.png": _png("baby"),
            "Tiny_HR/bird.png": _png("bird"),
            "Tiny_HR/._bird.png": b"resource fork",
            "Tiny_HR/notes.txt": b"ignored",
        }
    )
    source = _publish(hub, archive)
    card = DatasetCard("tiny", "Tiny", "standard", "test set", folder="Tiny", images=2)
    target = install_archive(card, source, datasets.dataset_cache(card))
    assert target == isolated / "datasets" / "Tiny"
    assert sorted(p.name for p in (target / "Tiny_HR").iterdir()) == ["baby.png", "bird.png"]
    dataset = datasets._from_folder(card, target)
    assert dataset.names == ["baby", "bird"]
    assert dataset.describe()["downloaded_from"]["sha256"] == source.sha256
    assert not (isolated / ".partial").exists() or not any((isolated / ".partial").iterdir())


def test_archive_with_wrong_hash_or_unsafe_paths_is_not_kept(
    tmp_path: Path, hub: FileServer, isolated: Path
) -> None:
    card = DatasetCard("tiny", "Tiny", "standard", "test set", folder="Tiny", images=1)
    source = _publish(hub, _tarball({"baby.png": _png("baby")}))
    wrong = HubArchive(source.repo_id, source.path_in_repo, source.revision, "0" * 64, 0.01)
    with pytest.raises(DatasetUnavailableError, match="instead of 000000000000"):
        install_archive(card, wrong, datasets.dataset_cache(card))
    unsafe = _publish(hub, _tarball({"../evil.png": _png("baby")}), name="Evil")
    with pytest.raises(DatasetUnavailableError, match="could not be extracted"):
        install_archive(card, unsafe, datasets.dataset_cache(card))
    assert not datasets.dataset_cache(card).exists()
    assert not (tmp_path / "evil.png").exists() and not (isolated / "evil.png").exists()


def test_arrays_of_pictures_match_the_files(tmp_path: Path) -> None:
    path = _save(tmp_path / "baby.png", "baby")
    sample = next(iter(load_dataset("folder", tmp_path)))
    expected = np.asarray(Image.open(path), dtype=np.float32) / 255
    assert np.allclose(sample.gt.rgb, expected)
