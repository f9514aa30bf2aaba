"""Face enhancement: detection decoding, alignment, paste-back and the whole SR + faces path.

The networks are the real ones (RetinaFace-ResNet50, ParseNet, spandrel's GFPGAN and
CodeFormer) with random weights, saved in their release formats under their release
file names in a weights cache at ``RESTORATION_WEIGHTS_DIR``, each with a test card
(``dataclasses.replace`` of the real card) whose sha256 and size match the file
written. Random weights find no faces, so the detector's three heads are given zero
weights and hand-set biases: whatever the image, it reports one face at a chosen box
and landmarks. That tests our decoding, alignment, restoration call and paste-back
plumbing with the real networks, not the networks' accuracy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pipelines import faces, tasks
from pipelines.errors import InvalidOptionError, ModelUnavailableError
from pipelines.faces import align, enhance, paste, retinaface
from pipelines.faces.parsenet import ParseNet
from pipelines.faces.retinaface import RetinaFace
from pipelines.images import Picture
from pipelines.registry import MODELS, SESSION_MODELS, Download, ModelCard, RemoteFile
from pipelines.weights import sha256_of
from tests.conftest import natural_image
from tests.test_torch_backend import codeformer_state, gfpgan_state

SIDE = 32
"""Test images are 32 px: RetinaFace's coarsest level then has a single position, so the
hand-set detector reports exactly one face there."""
FACE_LANDMARKS = align.FFHQ_TEMPLATE * (SIDE / align.CROP)
"""An FFHQ-aligned face filling the whole 32 px image: its crop is the image x16."""
FACE_BOX = np.array([2.0, 4.0, 30.0, 31.0])


# ---------------------------------------------------------------- checkpoints and cards


def engineered_detector(box: np.ndarray, landmarks: np.ndarray, side: int = SIDE) -> dict:
    """RetinaFace weights (Pytorch_Retinaface's ``module.`` keys) that always report one face.

    The heads' weights are zero, so they output their biases everywhere: background on
    every prior except the 256 px prior of the coarsest level, whose box and landmark
    offsets are the inverse of the decoding for ``box`` and ``landmarks``.
    """
    torch.manual_seed(0)
    state = RetinaFace().state_dict()
    for key in [k for k in state if "Head." in k]:
        state[key].zero_()
    for level in range(3):
        state[f"ClassHead.{level}.conv1x1.bias"][:] = torch.tensor([8.0, -8.0, 8.0, -8.0])
    state["ClassHead.2.conv1x1.bias"][:2] = torch.tensor([-8.0, 8.0])
    prior = 256 / side  # the prior's edge relative to the image; its centre is (0.5, 0.5)
    x0, y0, x1, y1 = box / side
    centre = ((x0 + x1) / 2 - 0.5, (y0 + y1) / 2 - 0.5)
    offsets = [c / (0.1 * prior) for c in centre]
    offsets += [math.log((x1 - x0) / prior) / 0.2, math.log((y1 - y0) / prior) / 0.2]
    state["BboxHead.2.conv1x1.bias"][:4] = torch.tensor(offsets)
    points = (np.asarray(landmarks) / side - 0.5) / (0.1 * prior)
    state["LandmarkHead.2.conv1x1.bias"][:10] = torch.from_numpy(points.reshape(-1)).float()
    return {f"module.{key}": value for key, value in state.items()}


def parser_state() -> dict:
    """ParseNet weights whose mask head says "skin" everywhere (plain state dict, as released)."""
    torch.manual_seed(0)
    state = ParseNet().state_dict()
    state["out_mask_conv.conv2d.weight"].zero_()
    state["out_mask_conv.conv2d.bias"][:] = -5.0
    state["out_mask_conv.conv2d.bias"][1] = 5.0
    return state


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    card: ModelCard
    path: Path


def save_checkpoint(folder: Path, model_id: str, state: dict, card_id: str) -> Checkpoint:
    """Save ``state`` under the real card's release file name and register a test card
    (``card_id``) whose sha256 and size are the written file's."""
    real = MODELS.get(model_id)
    assert isinstance(real.source, Download)
    release = real.source.files[0]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / release.filename
    torch.save(state, path)
    file = RemoteFile(release.filename, sha256_of(path), path.stat().st_size, url=release.url)
    card = dataclasses.replace(real, id=card_id, default_for=(), source=Download((file,)))
    return Checkpoint(SESSION_MODELS.add(card), path)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Checkpoint]:
    """Checkpoints written once per module (GFPGAN's is 350 MB), each in its own folder."""
    folder = tmp_path_factory.mktemp("store")
    made: dict[str, Checkpoint] = {}

    def get(key: str, model_id: str, make: Callable[[], dict]) -> Checkpoint:
        if key not in made:
            made[key] = save_checkpoint(folder / key, model_id, make(), f"test-{key}")
        return made[key]

    return get


@pytest.fixture()
def detector(store: Callable[..., Checkpoint]) -> Checkpoint:
    return store(
        "detector", "retinaface-resnet50", lambda: engineered_detector(FACE_BOX, FACE_LANDMARKS)
    )


@pytest.fixture()
def gfpgan(store: Callable[..., Checkpoint]) -> Checkpoint:
    return store("gfpgan", "gfpgan-v1.4", gfpgan_state)


def use_cache(
    monkeypatch: pytest.MonkeyPatch,
    folder: Path,
    *checkpoints: Checkpoint,
    detector: Checkpoint | None = None,
    parser: Checkpoint | None = None,
) -> Path:
    """A weights cache holding (hard links to) these checkpoints, and nothing else.

    Its own folder per test: the weights manager deletes a file whose sha256 is not its
    card's, so a real card must never meet a test file of the same release name. The
    test detector (and parser) stand in for the real ones.
    """
    cache = folder / "weights"
    cache.mkdir()
    for checkpoint in (*checkpoints, detector, parser):
        if checkpoint is not None:
            (cache / checkpoint.path.name).hardlink_to(checkpoint.path)
    monkeypatch.setenv("RESTORATION_WEIGHTS_DIR", str(cache))
    if detector is not None:
        monkeypatch.setattr(enhance, "DETECTOR_ID", detector.card.id)
    if parser is not None:
        monkeypatch.setattr(enhance, "PARSER_ID", parser.card.id)
    return cache


def photo(side: int = SIDE) -> np.ndarray:
    rgb = np.asarray(natural_image(side, side), dtype=np.float32) / 255
    return np.ascontiguousarray(rgb)


def picture(rgb: np.ndarray) -> Picture:
    return Picture(rgb, None, False, 8, None, None, "face")


# ---------------------------------------------------------------- detection


def test_decoding_a_hand_made_regression_gives_the_expected_box() -> None:
    """One prior of a 64x48 image scores above the threshold; its offsets move and scale it.

    Prior 2 * (1 * 8 + 2) + 1 is level 0 (stride 8), row 1, column 2, the 32 px size:
    centre (20, 12), 32x32. Offsets (0.5, -0.25, ln 2 / 0.2, 0) move the centre by
    (0.5, -0.25) * 0.1 * 32 px and double the width.
    """
    priors = retinaface.prior_boxes(48, 64)
    assert priors.shape == (2 * (8 * 6 + 4 * 3 + 2 * 2), 4)
    index = 2 * (1 * 8 + 2) + 1
    offsets = np.zeros((len(priors), 4))
    offsets[index] = [0.5, -0.25, math.log(2) / 0.2, 0.0]
    landmarks = np.zeros((len(priors), 10))
    landmarks[index, :2] = [1.0, 1.0]  # left eye: centre + 0.1 * 32 px on each axis
    scores = np.full(len(priors), 0.5)
    scores[index] = 0.99
    (face,) = retinaface.select(offsets, scores, landmarks, (64, 48))
    centre = (20 + 1.6, 12 - 0.8)
    assert face.box == pytest.approx([centre[0] - 32, centre[1] - 16, centre[0] + 32, 28.0 - 0.8])
    assert face.landmarks[0] == pytest.approx([23.2, 15.2])
    assert face.landmarks[1:] == pytest.approx(np.tile([20.0, 12.0], (4, 1)))
    assert face.score == pytest.approx(0.99)


def test_overlapping_detections_keep_the_best() -> None:
    priors = retinaface.prior_boxes(48, 64)
    scores = np.zeros(len(priors))
    scores[[21, 23, 60]] = [0.98, 0.99, 0.975]  # 32 px boxes 8 px apart; 60 is elsewhere
    found = retinaface.select(
        np.zeros((len(priors), 4)), scores, np.zeros((len(priors), 10)), (64, 48)
    )
    assert [f.score for f in found] == pytest.approx([0.99, 0.975])


def test_the_engineered_detector_reports_its_face_through_the_real_network() -> None:
    net = RetinaFace()
    state = engineered_detector(FACE_BOX, FACE_LANDMARKS)
    net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    (face,) = retinaface.detect(net.eval(), photo(), torch.device("cpu"))
    assert face.score > 0.99
    assert face.box == pytest.approx(FACE_BOX, abs=1e-3)
    assert face.landmarks == pytest.approx(FACE_LANDMARKS, abs=1e-3)


# ---------------------------------------------------------------- alignment and paste-back


def similarity(scale: float, degrees: float, shift: tuple[float, float]) -> np.ndarray:
    angle = math.radians(degrees)
    rotation = scale * np.array(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    )
    return np.hstack([rotation, np.array(shift)[:, None]])


def test_known_landmarks_map_onto_the_template() -> None:
    """A face placed by a known similarity is aligned by exactly its inverse."""
    placed = similarity(0.08, 20.0, (30.0, 12.0))  # template -> image: a 41 px face, tilted
    landmarks = align.transform_points(placed, align.FFHQ_TEMPLATE)
    matrix = align.alignment_matrix(landmarks)
    assert matrix is not None
    mapped = align.transform_points(matrix, landmarks)
    assert np.abs(mapped - align.FFHQ_TEMPLATE).max() < 1e-3  # well within 1 crop pixel
    inverse = np.linalg.inv(np.vstack([placed, [0, 0, 1]]))[:2]
    assert matrix == pytest.approx(inverse, abs=1e-4)
    # Landmarks off by up to half a source pixel still land within the ~6 px that
    # half a source pixel is in the crop (x12.5), not farther.
    jitter = np.random.default_rng(0).uniform(-0.5, 0.5, landmarks.shape)
    noisy = align.alignment_matrix(landmarks + jitter)
    error = np.abs(align.transform_points(noisy, landmarks) - align.FFHQ_TEMPLATE).max()
    assert error < 0.5 / 0.08
    assert align.alignment_matrix(np.full((5, 2), 7.0)) is None  # degenerate: one point


def smooth_image(side: int) -> np.ndarray:
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
    channels = [np.sin(3 * x + 1), np.cos(2 * y), np.sin(2 * x + 3 * y)]
    return np.ascontiguousarray(np.stack(channels, -1) * 0.4 + 0.5, dtype=np.float32)


def test_inverse_warp_round_trips_onto_the_upscaled_image() -> None:
    """Crop from the source, warp back with ``paste_matrix``: the same pixels as a x3 resize.

    The half-pixel correction matters: facexlib's ``scale / 2`` offset lands 0.5 px off.
    """
    source = smooth_image(64)
    matrix = align.alignment_matrix(
        align.transform_points(similarity(0.09, -15.0, (8.0, 6.0)), align.FFHQ_TEMPLATE)
    )
    crop = align.warp_to_template(source, matrix)
    upscaled = cv2.resize(source, (192, 192), interpolation=cv2.INTER_LINEAR)
    inverse = align.paste_matrix(matrix, 3.0)
    back = cv2.warpAffine(crop, inverse, (192, 192))
    inside = cv2.warpAffine(np.ones((512, 512), np.float32), inverse, (192, 192)) > 0.999
    inside = cv2.erode(inside.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    inside[:4], inside[-4:], inside[:, :4], inside[:, -4:] = False, False, False, False
    error = np.abs(back - upscaled)[inside].mean()
    assert error < 0.003
    facexlib = inverse.copy()
    facexlib[:, 2] += 0.5  # scale / 2 where we add (scale - 1) / 2
    worse = np.abs(cv2.warpAffine(crop, facexlib, (192, 192)) - upscaled)[inside].mean()
    assert worse > 2 * error


def test_paste_changes_only_the_face_region_and_is_feathered() -> None:
    """A black face pasted on a x2 upscale: inside the crop's footprint only, fading in
    over several pixels (a Gaussian ramp) rather than at a visible edge."""
    background = smooth_image(400)  # the x2 upscale of a 200 px source
    image = background.copy()
    placed = similarity(90 / 512, 10.0, (60.0, 40.0))  # a 90 px source face, tilted
    matrix = align.alignment_matrix(align.transform_points(placed, align.FFHQ_TEMPLATE))
    inverse = align.paste_matrix(matrix, 2.0)
    face = np.zeros((512, 512, 3), np.float32)
    region = paste.paste_face(image, face, inverse, 2.0)
    assert region is not None
    x0, y0, x1, y1 = region
    outside = np.ones(image.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(image[outside], background[outside])
    footprint = cv2.warpAffine(np.ones((512, 512), np.float32), inverse, (400, 400))
    assert np.array_equal(image[footprint == 0], background[footprint == 0])
    alpha = 1 - image[..., 0] / background[..., 0]  # the face is black: alpha = how dark
    centre = align.transform_points(inverse, [[256, 256]])[0].round().astype(int)
    assert alpha[centre[1], centre[0]] == pytest.approx(1.0, abs=1e-5)
    steps = max(np.abs(np.diff(alpha, axis=0)).max(), np.abs(np.diff(alpha, axis=1)).max())
    assert steps < 0.15  # no seam: at most 15 % more face per pixel
    assert ((alpha > 0.05) & (alpha < 0.95)).sum() > 4 * 4 * 180  # a ramp >= 4 px all round


def test_a_face_outside_the_image_is_not_pasted() -> None:
    image = smooth_image(32)
    inverse = align.paste_matrix(align.alignment_matrix(FACE_LANDMARKS + 500), 1.0)
    assert paste.paste_face(image, np.zeros((512, 512, 3), np.float32), inverse, 1.0) is None
    assert np.array_equal(image, smooth_image(32))


# ---------------------------------------------------------------- the whole path


def test_sr_with_gfpgan_enhances_the_face_through_the_task(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    store: Callable[..., Checkpoint],
    detector: Checkpoint,
    gfpgan: Checkpoint,
) -> None:
    """tasks.super_resolution(..., enhance_faces=...) with GFPGAN and the parsing mask.

    The face model runs once (about 15 s on a CPU). Outside the face the result is the
    plain upscale, inside it is changed; the last progress message counts the face.
    """
    parser = store("parser", "parsenet", parser_state)
    use_cache(monkeypatch, tmp_path, gfpgan, detector=detector, parser=parser)
    source = picture(photo())
    messages: list[tuple[float, str]] = []
    plain = tasks.super_resolution(source, "bicubic", outscale=4)
    result = tasks.super_resolution(
        source,
        "bicubic",
        outscale=4,
        enhance_faces=gfpgan.card.id,
        progress=lambda f, m: messages.append((f, m)),
    )
    assert (result.width, result.height) == (128, 128)
    assert messages[-1] == (1.0, "1 face enhanced with GFPGAN v1.4")
    fractions = [f for f, _ in messages]
    assert fractions == sorted(fractions)
    changed = np.abs(result.rgb - plain.rgb).max(axis=2) > 1e-4
    assert changed.sum() > 0.3 * changed.size
    # The parsing mask is cleared in the crop's 10 px border, 2.5 px of this image (the
    # crop covers it from pixel centre 0 to 31.9 of the source: 1.5 px to 129 here).
    assert not changed[:4].any() and not changed[:, :4].any()
    assert not changed[-1].any() and not changed[:, -1].any()


def test_sr_with_codeformer_and_the_square_mask(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    store: Callable[..., Checkpoint],
    detector: Checkpoint,
) -> None:
    """CodeFormer, its fidelity weight passed to its forward, on a reduced network run once
    (about 30 s on a CPU); without ParseNet weights the feathered square mask is used."""
    codeformer = store("codeformer", "codeformer", codeformer_state)
    use_cache(monkeypatch, tmp_path, codeformer, detector=detector)
    source = picture(photo())
    messages: list[str] = []
    plain = tasks.super_resolution(source, "bicubic", outscale=2)
    result = tasks.super_resolution(
        source,
        "bicubic",
        outscale=2,
        enhance_faces=codeformer.card.id,
        face_fidelity=0.7,
        progress=lambda _f, m: messages.append(m),
    )
    assert messages[-1].startswith("1 face enhanced with CodeFormer (fidelity 0.7); feathered")
    assert "python -m pipelines download parsenet" in messages[-1]
    changed = np.abs(result.rgb - plain.rgb).max(axis=2) > 1e-4
    assert changed[12:52, 12:52].all()
    assert not changed[0].any() and not changed[:, 0].any()


def test_no_face_leaves_the_upscale_unchanged(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    store: Callable[..., Checkpoint],
    gfpgan: Checkpoint,
) -> None:
    """The detector's only face has its eyes 2 px apart, below the 5 px limit: no face."""
    tiny = store(
        "tiny-detector",
        "retinaface-resnet50",
        lambda: engineered_detector(FACE_BOX, FACE_LANDMARKS * 0.25 + 12),
    )
    use_cache(monkeypatch, tmp_path, gfpgan, detector=tiny)
    source = picture(photo())
    messages: list[str] = []
    result = tasks.super_resolution(
        source,
        "bicubic",
        outscale=2,
        enhance_faces=gfpgan.card.id,
        progress=lambda _f, m: messages.append(m),
    )
    assert messages[-1] == faces.NO_FACES
    plain = tasks.super_resolution(source, "bicubic", outscale=2)
    assert np.array_equal(result.rgb, plain.rgb)


def test_missing_detector_offline_names_the_file_and_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_cache(monkeypatch, tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as error:
        tasks.super_resolution(picture(photo()), "bicubic", enhance_faces="gfpgan-v1.4")
    message = str(error.value)
    assert "detection_Resnet50_Final.pth" in message
    assert "`python -m pipelines download retinaface-resnet50`" in message


def test_missing_face_model_offline_names_the_file_and_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, detector: Checkpoint
) -> None:
    use_cache(monkeypatch, tmp_path, detector=detector)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as error:
        faces.load_enhancer("codeformer")
    message = str(error.value)
    assert "codeformer.pth" in message and "`python -m pipelines download codeformer`" in message


def test_a_detector_file_of_another_network_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = save_checkpoint(
        tmp_path / "store", "retinaface-resnet50", parser_state(), "test-wrong-detector"
    )
    use_cache(monkeypatch, tmp_path, detector=wrong)
    with pytest.raises(ModelUnavailableError, match="is not a RetinaFace ResNet-50"):
        faces.load_enhancer("gfpgan-v1.4")


def test_bad_face_options_are_refused() -> None:
    with pytest.raises(InvalidOptionError, match="not a face restoration model"):
        faces.load_enhancer("retinaface-resnet50")
    with pytest.raises(InvalidOptionError, match="not a face restoration model"):
        faces.load_enhancer("bicubic")
    with pytest.raises(InvalidOptionError, match="between 0"):
        faces.load_enhancer("codeformer", 1.5)
    assert [c.id for c in faces.face_models()][:2] == ["gfpgan-v1.4", "codeformer"]
