"""Bringing Old Photos Back to Life: the networks, the official checkpoint files, the runs.

Every checkpoint is written with random weights in the official layout and format
(``tests/bopb_fixtures.py``) into a temporary weights folder and goes through the real
loader (weights-only unpickling, strict key and shape check, spectral-norm folding).
Random weights say nothing about quality: these tests check shapes, types, the
official pre/post-processing and the plumbing. The face generator is written at a
quarter of its width (the loader reads the width off the file) to keep the run short.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.transform import SimilarityTransform
from torch import nn

from pipelines.backends.torch import bopb
from pipelines.backends.torch.bopb import checkpoints, detection, faces, global_nets
from pipelines.backends.torch.bopb.face_net import FaceGenerator, fold_spectral_norm
from pipelines.backends.torch.engine import DeviceMemoryError
from pipelines.errors import InputImageError, InvalidOptionError, ModelUnavailableError
from pipelines.registry import MODELS, RemoteFile
from pipelines.weights import card_state
from tests.bopb_fixtures import (
    WEIGHTS_ENV,
    checkpoint_paths,
    using_bopb_weights,
)
from tests.conftest import EXAMPLES

FACE_PHOTO = EXAMPLES / "astronaut_hq.png"  # 256 px, one face that dlib finds


@pytest.fixture(scope="module")
def weights_root(bopb_checkpoints: Path) -> Iterator[Path]:
    with using_bopb_weights(bopb_checkpoints) as root:
        yield root


def photo(width: int, height: int) -> np.ndarray:
    crop = Image.open(FACE_PHOTO).convert("RGB").crop((20, 30, 20 + width, 30 + height))
    return np.asarray(crop, dtype=np.float32) / 255.0


# ---------------------------------------------------------------- cards and files


def test_cards_name_the_official_archives_and_layout() -> None:
    for card_id in checkpoints.CARD_IDS:
        card = MODELS.get(card_id)
        assert card.tasks == ("old_photo",) and card.license.startswith("MIT")
        for file in card.source.files:
            assert file.url.startswith(
                "https://github.com/microsoft/Bringing-Old-Photos-Back-to-Life/releases/"
                "download/v1.0/"
            )
            assert not file.pinned, "no checksum is published: never downloaded blindly"
            assert file.filename == f"bopb/{file.filename.split('/')[1]}/{file.member}"


def test_missing_weights_names_the_files_and_what_to_unzip_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    sentence = bopb.missing_weights(with_scratches=True, faces=True)
    assert sentence is not None and sentence.count(".") >= 1
    assert "FT_Epoch_latest.pt" in sentence and "and 2 more" in sentence
    assert f"unzip it in {tmp_path}/bopb/Global" in sentence
    assert f"unzip it in {tmp_path}/bopb/Face_Enhancement" in sentence
    assert "face_checkpoints.zip" in sentence
    quality = bopb.missing_weights(with_scratches=False, faces=False)
    assert quality is not None and "mapping_quality" in quality and "face" not in quality
    state = card_state(MODELS.get("bopb-scratch-detection"))
    assert state.state == "unavailable" and "global_checkpoints.zip" in state.detail


def test_missing_weights_is_none_once_unzipped(weights_root: Path) -> None:
    assert bopb.missing_weights(with_scratches=True, faces=True) is None
    assert bopb.missing_weights(with_scratches=False, faces=False) is None
    for card_id in checkpoints.CARD_IDS:
        assert card_state(MODELS.get(card_id)).state == "cached"


def test_a_run_without_weights_raises_the_same_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    checkpoints.clear_cache()
    with pytest.raises(ModelUnavailableError, match=r"unzip it in .*bopb/Global"):
        bopb.restore_global(photo(16, 16), None)


def test_every_checkpoint_loads_strictly_through_the_loader(weights_root: Path) -> None:
    expected = {
        checkpoints.DETECTION: detection.ScratchUNet,
        checkpoints.VAE_A: global_nets.VAE,
        checkpoints.VAE_B_QUALITY: global_nets.VAE,
        checkpoints.VAE_B_SCRATCH: global_nets.VAE,
        checkpoints.MAPPING_QUALITY: global_nets.QualityMapping,
        checkpoints.MAPPING_SCRATCH: global_nets.ScratchMapping,
        checkpoints.MAPPING_PATCH_ATTENTION: global_nets.PatchAttentionMapping,
        checkpoints.FACE_GENERATOR: FaceGenerator,
        checkpoints.FACE_GENERATOR_512: FaceGenerator,
    }
    paths = checkpoint_paths(weights_root)
    assert len(paths) == len(expected)
    for member, kind in expected.items():
        (path,) = [p for p in paths if p.as_posix().endswith(member)]
        card = next(c for c in checkpoints.CARD_IDS if _card_has(c, member))
        net = checkpoints.build(card, member, path)
        assert isinstance(net, kind) and not net.training
        saved = checkpoints.state_dict_for(member, checkpoints.read_checkpoint(path))
        for key, value in net.state_dict().items():
            if not key.endswith("num_batches_tracked"):
                assert torch.equal(value, saved[key]), (member, key)


def _card_has(card_id: str, member: str) -> bool:
    return any(f.member == member for f in MODELS.get(card_id).source.files)


def test_a_file_with_code_in_its_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latest_net_G.pth"
    torch.save({"encoder.1.weight": Image.new("RGB", (2, 2))}, path)  # unpickling runs PIL
    with pytest.raises(ModelUnavailableError, match="refuse to unpickle"):
        checkpoints.read_checkpoint(path)


def test_a_checkpoint_of_another_network_is_named_and_refused(tmp_path: Path) -> None:
    path = tmp_path / "latest_net_G.pth"
    torch.save(global_nets.VAE().state_dict(), path)
    with pytest.raises(ModelUnavailableError, match=r"not the official .* lacks model\.0\.weight"):
        checkpoints.build("bopb-restoration-quality", checkpoints.MAPPING_QUALITY, path)
    torch.save({"garbage": torch.zeros(1)}, path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ModelUnavailableError, match="truncated or corrupt"):
        checkpoints.read_checkpoint(path)


# ---------------------------------------------------------------- network details


def test_spectral_norm_folds_to_what_torch_computes_in_eval_mode() -> None:
    torch.manual_seed(1)
    conv = torch.nn.utils.spectral_norm(nn.Conv2d(6, 5, 3, padding=1))
    x = torch.randn(2, 6, 9, 9)
    for _ in range(3):  # power iterations move u and v away from their start
        conv(x)
    conv.eval()
    folded = fold_spectral_norm({f"c.{k}": v for k, v in conv.state_dict().items()})
    plain = nn.Conv2d(6, 5, 3, padding=1)
    plain.load_state_dict({k.removeprefix("c."): v for k, v in folded.items()})
    with torch.no_grad():
        torch.testing.assert_close(plain(x), conv(x), rtol=1e-5, atol=1e-6)


def test_non_local_attention_in_chunks_equals_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(2)
    block = global_nets.MaskedNonLocal(width=8).eval()
    x = torch.randn(1, 8, 6, 7)
    mask = torch.zeros(1, 1, 24, 28)
    mask[..., 8:12, :] = 1.0
    with torch.no_grad():
        whole = block(x, mask)
        monkeypatch.setattr(global_nets, "ATTENTION_CHUNK_ELEMENTS", 5 * 42)
        chunked = block(x, mask)
    torch.testing.assert_close(chunked, whole)
    valid = global_nets.valid_positions(mask, 6, 7)
    assert valid[0, 0, 2:3].sum() == 0 and valid[0, 0, 0].all()  # rows 8-11 of 24 -> row 2
    assert torch.equal(whole * valid, x * valid)  # context positions keep their features
    assert not torch.equal(whole * (1 - valid), x * (1 - valid))


def test_detection_input_follows_the_official_resize_policy() -> None:
    gray = detection.working_gray(photo(50, 60))
    # 50x60 -> 48x64 (multiples of 16) -> short side 256: 256 x round16(64 * 256 / 48) = 336.
    assert gray.shape == (1, 1, 336, 256)
    assert float(gray.min()) >= -1.0 and float(gray.max()) <= 1.0


def test_face_alignment_fits_the_similarity_scikit_image_fits() -> None:
    landmarks = np.array([[97, 51], [122, 52], [112, 63], [100, 69], [122, 70]], float)
    matrix = faces.crop_matrix(landmarks)
    reference = SimilarityTransform.from_estimate(faces.TEMPLATE, landmarks)
    np.testing.assert_allclose(matrix, reference.params, atol=1e-9)


def test_histogram_matching_keeps_an_image_matched_to_itself() -> None:
    rng = np.random.default_rng(3)
    face = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(faces.match_histograms(face, face), face)
    darker = (face // 2).astype(np.uint8)
    assert faces.match_histograms(face, darker).mean() < face.mean() * 0.6


# ---------------------------------------------------------------- the runs


def test_detect_scratches_returns_a_mask_at_the_input_size(weights_root: Path) -> None:
    mask = bopb.detect_scratches(photo(50, 60))
    assert mask.shape == (60, 50) and mask.dtype == bool


def test_restore_global_without_scratches(weights_root: Path) -> None:
    rgb = photo(50, 42)  # not multiples of 4: resized for the VAE and back
    out = bopb.restore_global(rgb, None)
    assert out.shape == rgb.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
    assert np.abs(out - rgb).mean() > 0.01


def test_restore_global_with_scratches(weights_root: Path) -> None:
    rgb = photo(50, 42)
    mask = np.zeros(rgb.shape[:2], bool)
    mask[20:23, 5:45] = True
    out = bopb.restore_global(rgb, mask)
    assert out.shape == rgb.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert np.abs(out - rgb).mean() > 0.01
    assert not np.array_equal(out, bopb.restore_global(rgb, None))


def test_patch_attention_fills_mostly_scratched_patches_from_clean_ones() -> None:
    torch.manual_seed(4)
    block = global_nets.PatchAttention(width=4, patch=2).eval()
    x = torch.randn(1, 4, 6, 6)
    mask = torch.zeros(1, 1, 24, 24)
    mask[..., :8, :8] = 1.0  # the top-left 2x2-latent patch
    captured: list[torch.Tensor] = []
    block.F_Combine.register_forward_hook(lambda _m, inputs, _o: captured.append(inputs[0]))
    with torch.no_grad():
        block(x, mask)
        features = block.res_block(x)
    composed = captured[0][:, 4:8]
    top_left = composed[0, :, :2, :2]
    clean = [features[0, :, r : r + 2, c : c + 2] for r in (0, 2, 4) for c in (0, 2, 4)][1:]
    assert any(torch.equal(top_left, patch) for patch in clean)  # copied, not blended
    assert torch.equal(composed[0, :, 2:, :], features[0, :, 2:, :])  # the rest untouched


def test_large_scratched_photos_use_patch_attention_when_present(
    weights_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rgb = photo(48, 40)
    mask = np.zeros(rgb.shape[:2], bool)
    mask[18:21, :] = True
    hr = bopb.restore_global(rgb, mask, hr=True)
    assert hr.shape == rgb.shape and np.isfinite(hr).all()
    assert not np.array_equal(hr, bopb.restore_global(rgb, mask, hr=False))
    monkeypatch.setattr(bopb, "HR_AUTO_PIXELS", 100)  # "large" = this 48x40 photo
    np.testing.assert_array_equal(bopb.restore_global(rgb, mask), hr)


def test_enhance_faces_changes_the_face_and_leaves_the_rest(weights_root: Path) -> None:
    rgb = np.asarray(Image.open(FACE_PHOTO).convert("RGB"), dtype=np.float32) / 255.0
    report = bopb.enhance_faces_report(rgb)
    assert report.faces == 1 and report.detector in ("dlib", "RetinaFace")
    out = report.rgb
    assert out.shape == rgb.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert np.abs(out[50:80, 95:125] - rgb[50:80, 95:125]).mean() > 0.01  # eyes to mouth
    np.testing.assert_allclose(out[200:, :40], rgb[200:, :40], atol=1e-6)  # far corner


def test_faces_larger_than_a_256_crop_use_the_512_generator(
    weights_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = Image.open(FACE_PHOTO).convert("RGB")
    large = source.resize((1152, 1152), Image.Resampling.BICUBIC)  # eyes ~100 px apart
    used: list[str] = []
    load = checkpoints.network
    monkeypatch.setattr(checkpoints, "network", lambda c, m, d: used.append(m) or load(c, m, d))
    out = bopb.enhance_faces(np.asarray(large, dtype=np.float32) / 255.0)
    assert used == [checkpoints.FACE_GENERATOR_512] and out.shape == (1152, 1152, 3)
    used.clear()
    bopb.enhance_faces(np.asarray(source, dtype=np.float32) / 255.0)
    assert used == [checkpoints.FACE_GENERATOR]
    with pytest.raises(InvalidOptionError, match="256 or 512"):
        bopb.enhance_faces(out, size=300)


def test_an_image_without_faces_comes_back_unchanged(weights_root: Path) -> None:
    flat = np.full((64, 64, 3), 0.5, np.float32)
    report = bopb.enhance_faces_report(flat)
    assert report.faces == 0
    np.testing.assert_array_equal(report.rgb, flat)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((16, 16), np.float32), r"shape \(H, W, 3\)"),
        (np.zeros((16, 16, 3), np.uint8), "float image"),
        (np.zeros((4, 16, 3), np.float32), "at least 8 px"),
        (np.full((16, 16, 3), np.nan, np.float32), "NaN"),
        (np.zeros((8, 200, 3), np.float32), "at most 16 times longer"),
    ],
)
def test_bad_images_are_refused_in_one_sentence(image: np.ndarray, message: str) -> None:
    with pytest.raises(InputImageError, match=message):
        bopb.detect_scratches(image)


def test_a_mask_of_another_size_is_refused() -> None:
    with pytest.raises(InputImageError, match="mask must be 16x12"):
        bopb.restore_global(np.zeros((12, 16, 3), np.float32), np.zeros((16, 12), bool))


def test_without_any_face_detector_the_error_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(faces, "_dlib_available", lambda: False)
    with pytest.raises(ModelUnavailableError, match=r"retinaface-resnet50.*dlib-bin"):
        faces.find_faces(np.zeros((32, 32, 3), np.float32))


def test_an_archive_member_cannot_claim_a_checksum_the_download_path_cannot_check() -> None:
    with pytest.raises(ValueError, match="archive member cannot be pinned"):
        RemoteFile(
            "bopb/Global/x.pth", "0" * 64, 1, url="https://example.org/a.zip", member="x.pth"
        )


def test_running_out_of_memory_is_one_sentence(
    weights_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def exhausted(*_: object) -> torch.Tensor:
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 9 GB")

    encoder = checkpoints.network(checkpoints.QUALITY_CARD, checkpoints.VAE_A, torch.device("cpu"))
    monkeypatch.setattr(encoder, "encode", exhausted)
    with pytest.raises(DeviceMemoryError, match="ran out of memory on cpu for a 50x42 photo"):
        bopb.restore_global(photo(50, 42), None)
