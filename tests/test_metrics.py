"""Metric registry and known-value tests: our metrics against pyiqa 0.1.16 and basicsr 1.4.2.

References are scikit-image's bundled photos (in its wheel, no download); distorted versions
(JPEG, blur, noise) are made here. pyiqa and basicsr stay the references and run in the tests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from evaluation.metrics import (
    METRICS,
    MetricInputError,
    MetricSpec,
    MetricTable,
    MetricUnavailableError,
    UnknownMetricError,
    create_metric,
    metric_available,
    metric_names,
)
from evaluation.metrics import lpips as lpips_files
from evaluation.metrics import niqe as niqe_module
from pipelines.errors import InvalidOptionError

ROOT = Path(__file__).resolve().parent.parent
NIQE_PARAMS = ROOT / "evaluation" / "data" / "niqe_pris_params.mat"

# |ours - reference| allowed, per metric. PSNR in dB. Measured: PSNR 5e-7 dB (pyiqa averages
# in float32), SSIM 1e-13, SR rows 2e-13, NIQE 2e-6 (pyiqa's float32 resize and alpha grid).
TOLERANCE = {
    "psnr": 1e-4,
    "psnry": 1e-4,
    "ssim": 1e-6,
    "ssimc": 1e-6,
    "psnr_y_sr": 1e-6,
    "ssim_y_sr": 1e-6,
    "niqe": 1e-3,
    "colorhist": 2e-3,  # vs an independent histogram of scikit-image's CIELAB
}

DIRECTIONS = {
    "psnr": False,
    "psnry": False,
    "ssim": False,
    "ssimc": False,
    "psnr_y_sr": False,
    "ssim_y_sr": False,
    "ssim_masked": False,
    "niqe": True,
    "niqe_matlab": True,
    "colorhist": False,
    "lpips": True,
}


# ---------------------------------------------------------------- images


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 in [0, 1], exactly as pipelines.images.load_image decodes."""
    return image.astype(np.float32) / np.float32(255)


def photo(name: str, height: int = 192, width: int = 256) -> np.ndarray:
    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return np.ascontiguousarray(image[top : top + height, left : left + width])


def distort(image: np.ndarray, how: str) -> np.ndarray:
    if how == "jpeg":
        ok, data = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 30])
        assert ok
        return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])
    if how == "blur":
        return cv2.GaussianBlur(image, (0, 0), 1.5)
    sigma = {"noise": 10.0, "light_noise": 3.0, "heavy_noise": 30.0}[how]
    noise = np.random.default_rng(7).normal(0.0, sigma, image.shape)
    return np.clip(np.round(image + noise), 0, 255).astype(np.uint8)


def hue_shift(rgb: np.ndarray, degrees: float) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + degrees) % 360.0
    return np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 0.0, 1.0)


PAIRS = [
    (name, how) for name in ("astronaut", "coffee", "camera") for how in ("jpeg", "blur", "noise")
]


# ---------------------------------------------------------------- references


@pytest.fixture(scope="module")
def pyiqa_metric():
    pyiqa = pytest.importorskip("pyiqa")
    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            options = {"pretrained_model_path": str(NIQE_PARAMS)} if name == "niqe" else {}
            cache[name] = pyiqa.create_metric(name, device="cpu", **options)
        return cache[name]

    return get


def pyiqa_score(metric, output: np.ndarray, reference: np.ndarray | None = None) -> float:
    import torch

    def tensor(rgb: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]

    args = (tensor(output),) if reference is None else (tensor(output), tensor(reference))
    return float(metric(*args))


def basicsr_score(name: str, output: np.ndarray, reference: np.ndarray, border: int) -> float:
    from basicsr.metrics import calculate_psnr, calculate_ssim

    compute = calculate_psnr if name == "psnr_y_sr" else calculate_ssim
    bgr = (output[..., ::-1].astype(np.float64), reference[..., ::-1].astype(np.float64))
    return float(compute(*bgr, crop_border=border, test_y_channel=True))


# ---------------------------------------------------------------- the table


def test_every_row_states_its_direction() -> None:
    assert set(metric_names()) == set(DIRECTIONS)
    for spec in METRICS:
        assert spec.lower_better is DIRECTIONS[spec.name], spec.name
        if metric_available(spec.name)[0]:
            options = {"crop_border": 4} if spec.crop_border is None else {}
            metric = create_metric(spec.name, **options)
            assert metric.lower_better is DIRECTIONS[spec.name]
            assert metric.needs_reference is (spec.name not in ("niqe", "niqe_matlab"))


def test_a_row_without_lower_better_is_refused() -> None:
    fields = dataclasses.asdict(METRICS.get("psnr"))
    del fields["lower_better"]
    with pytest.raises(TypeError, match="lower_better"):
        MetricSpec(**fields)
    with pytest.raises(TypeError, match="lower_better"):
        dataclasses.replace(METRICS.get("psnr"), lower_better=None)


def test_duplicate_names_are_refused() -> None:
    row = METRICS.get("ssim")
    with pytest.raises(ValueError, match="duplicate metric name 'ssim'"):
        MetricTable([row, METRICS.get("psnr"), row])


def test_unknown_name_suggests_close_ones() -> None:
    with pytest.raises(UnknownMetricError, match="Did you mean psnr") as caught:
        create_metric("pnsr")
    assert "Known: psnr, psnry" in str(caught.value)
    with pytest.raises(UnknownMetricError, match=r"Did you mean .*niqe"):
        metric_available("nique")


def test_settings_are_checked_and_recorded() -> None:
    with pytest.raises(InvalidOptionError, match="no setting 'scale'"):
        create_metric("psnr", scale=4)
    with pytest.raises(InvalidOptionError, match="crop_border must be"):
        create_metric("psnr", crop_border=-1)
    with pytest.raises(InvalidOptionError, match="no setting 'crop_border'"):
        create_metric("lpips", crop_border=4)
    for name in ("psnr_y_sr", "ssim_y_sr"):
        with pytest.raises(InvalidOptionError, match="crop_border=4"):
            create_metric(name)
    row = create_metric("ssim_y_sr", crop_border=3).describe()
    assert row["settings"]["crop_border"] == 3
    assert row["settings"]["colour_space"] == "ycbcr" and row["settings"]["test_y_channel"]
    assert create_metric("psnr").describe()["settings"]["crop_border"] == 0


@pytest.mark.parametrize("name", ["psnr", "ssim", "psnr_y_sr", "niqe", "colorhist"])
def test_describe_is_a_json_record(name: str) -> None:
    options = {"crop_border": 4} if name.endswith("_sr") else {}
    row = create_metric(name, **options).describe()
    json.dumps(row, allow_nan=False)
    assert row["metric"] == name and row["lower_better"] is DIRECTIONS[name]
    assert row["implementation"] and row["version"] and row["matches"]
    assert {"channel", "crop_border", "test_y_channel"} <= set(row["settings"])
    assert row["libraries"]["numpy"] == np.__version__


def test_psnr_and_niqe_do_not_import_torch() -> None:
    script = (
        "import sys, numpy as np\n"
        "from evaluation.metrics import create_metric\n"
        "a = np.zeros((128, 128, 3), np.float32); b = a + np.float32(0.5)\n"
        "create_metric('psnr')(a, b); create_metric('ssim')(a, b)\n"
        "assert 'scipy' not in sys.modules, 'psnr/ssim imported scipy'\n"
        "create_metric('niqe')(np.random.default_rng(0).random((128, 128, 3), np.float32))\n"
        "heavy = [m for m in ('torch', 'pyiqa', 'basicsr') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=60)


# ---------------------------------------------------------------- conversions


def test_y_planes_are_bit_identical_to_pyiqa() -> None:
    import torch
    from pyiqa.utils.color_util import to_y_channel

    from evaluation.metrics.fullref import levels, luma

    # Colours whose YIQ luma is exactly k + 0.5 levels (rounding there depends on the float32
    # evaluation order), plus a million others.
    values = np.arange(256, dtype=np.int64)
    r, g, b = np.meshgrid(values, values, values, indexing="ij")
    ties = ((299 * r + 587 * g + 114 * b) % 1000 == 500).ravel()
    colours = np.stack([r, g, b], axis=-1).reshape(-1, 3)
    others = np.random.default_rng(0).integers(0, 256, (1 << 20, 3))
    picked = np.concatenate([colours[ties], others]).astype(np.uint8)
    picked = picked[: len(picked) // 1024 * 1024]
    rgb = to_float(picked.reshape(1024, -1, 3))
    batch = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    for space in ("yiq", "ycbcr"):
        theirs = to_y_channel(batch, 1.0, space)[0, 0].numpy()
        np.testing.assert_array_equal(luma(rgb, space), theirs)
        rounded = to_y_channel(batch, 255, space)[0, 0].numpy().astype(np.float64)
        np.testing.assert_array_equal(levels(luma(rgb, space)), rounded)


def test_ssim_window_is_pyiqas() -> None:
    from pyiqa.matlab_utils import fspecial

    from evaluation.metrics.fullref import fspecial_gaussian

    for size, sigma in ((11, 1.5), (7, 7 / 6)):
        theirs = fspecial(size, sigma, 1)[0, 0].numpy().astype(np.float64)
        np.testing.assert_array_equal(fspecial_gaussian(size, sigma), theirs)


# ---------------------------------------------------------------- known values


@pytest.mark.parametrize(("image", "how"), PAIRS)
@pytest.mark.parametrize("name", ["psnr", "psnry", "ssim", "ssimc"])
def test_matches_pyiqa(pyiqa_metric, name: str, image: str, how: str) -> None:
    reference = photo(image)
    output = distort(reference, how)
    ours = create_metric(name)(to_float(output), to_float(reference))
    theirs = pyiqa_score(pyiqa_metric(name), to_float(output), to_float(reference))
    assert abs(ours - theirs) <= TOLERANCE[name], (ours, theirs)


@pytest.mark.parametrize("border", [2, 3, 4])
@pytest.mark.parametrize("name", ["psnr_y_sr", "ssim_y_sr"])
def test_sr_rows_match_basicsr(name: str, border: int) -> None:
    reference = photo("chelsea", 120, 180)
    for how in ("jpeg", "blur"):
        output = distort(reference, how)
        ours = create_metric(name, crop_border=border)(to_float(output), to_float(reference))
        theirs = basicsr_score(name, output, reference, border)
        assert abs(ours - theirs) <= TOLERANCE[name], (how, ours, theirs)


def test_psnr_y_sr_is_pyiqas_ycbcr_psnr_without_its_epsilon() -> None:
    from pyiqa.archs.psnr_arch import PSNR

    reference = photo("coffee")
    output = distort(reference, "noise")
    ours = create_metric("psnr_y_sr", crop_border=4)(to_float(output), to_float(reference))
    net = PSNR(test_y_channel=True, color_space="ycbcr", crop_border=4)
    theirs = pyiqa_score(net, to_float(output), to_float(reference))
    mse = 10 ** (-ours / 10)  # on the [0, 1] scale
    assert abs(ours - 10 * math.log10(1 + 1e-8 / mse) - theirs) <= 1e-4


@pytest.mark.parametrize(
    ("image", "how"), [("astronaut", None), ("coffee", "jpeg"), ("camera", "noise")]
)
def test_niqe_matches_pyiqa_with_the_shipped_model(pyiqa_metric, image: str, how: str) -> None:
    picture = photo(image, 288, 384)
    picture = picture if how is None else distort(picture, how)
    ours = create_metric("niqe")(to_float(picture))
    theirs = pyiqa_score(pyiqa_metric("niqe"), to_float(picture))
    assert abs(ours - theirs) <= TOLERANCE["niqe"], (ours, theirs)


def test_niqe_crop_border_matches_pyiqa() -> None:
    import pyiqa

    picture = to_float(photo("chelsea", 240, 300))
    theirs = pyiqa.create_metric(
        "niqe", device="cpu", pretrained_model_path=str(NIQE_PARAMS), crop_border=7
    )
    ours = create_metric("niqe", crop_border=7)(picture)
    assert abs(ours - pyiqa_score(theirs, picture)) <= TOLERANCE["niqe"]


def test_psnr_at_div2k_size_matches_pyiqa(pyiqa_metric) -> None:
    reference = cv2.resize(skimage.data.astronaut(), (2040, 1356), interpolation=cv2.INTER_CUBIC)
    output = distort(reference, "noise")
    for name in ("psnr", "psnry"):
        ours = create_metric(name)(to_float(output), to_float(reference))
        theirs = pyiqa_score(pyiqa_metric(name), to_float(output), to_float(reference))
        assert abs(ours - theirs) <= TOLERANCE[name]


def test_same_files_give_pyiqas_values(pyiqa_metric, tmp_path) -> None:
    from PIL import Image

    from pipelines.images import load_image

    reference = photo("astronaut", 200, 240)
    paths = {"output": tmp_path / "output.png", "reference": tmp_path / "reference.png"}
    Image.fromarray(distort(reference, "jpeg")).save(paths["output"])
    Image.fromarray(reference).save(paths["reference"])
    output, ref = (load_image(paths[role]).rgb for role in ("output", "reference"))
    for name in ("psnr", "ssim", "niqe"):
        files = (str(paths["output"]),) if name == "niqe" else tuple(map(str, paths.values()))
        theirs = float(pyiqa_metric(name)(*files))
        assert abs(create_metric(name)(output, ref) - theirs) <= TOLERANCE[name], name


def test_identical_images(pyiqa_metric) -> None:
    image = to_float(photo("coffee"))
    for name in ("psnr", "psnry"):
        assert create_metric(name)(image, image) == 80.0  # pyiqa's 1e-8 floor, not inf
        assert pyiqa_score(pyiqa_metric(name), image, image) == pytest.approx(80.0)
    assert create_metric("psnr_y_sr", crop_border=2)(image, image) == math.inf  # basicsr's
    for name, options in (("ssim", {}), ("ssimc", {}), ("ssim_y_sr", {"crop_border": 2})):
        assert create_metric(name, **options)(image, image) == pytest.approx(1.0, abs=1e-12)
    assert create_metric("colorhist")(image, image) == 1.0


@pytest.mark.parametrize(
    "name", ["psnr", "psnry", "ssim", "ssimc", "psnr_y_sr", "ssim_y_sr", "niqe"]
)
def test_direction_orders_light_and_heavy_distortion(name: str) -> None:
    metric = create_metric(name, **({"crop_border": 2} if name.endswith("_sr") else {}))
    reference = photo("astronaut", 288, 288)
    light, heavy = (
        metric(to_float(distort(reference, how)), to_float(reference))
        for how in ("light_noise", "heavy_noise")
    )
    assert (light < heavy) if metric.lower_better else (light > heavy), (light, heavy)


def test_niqe_shipped_file_is_basicsrs_model_and_reproducible() -> None:
    import basicsr.metrics
    import scipy.io

    data = NIQE_PARAMS.read_bytes()
    assert hashlib.sha256(data).hexdigest() == niqe_module.SHIPPED_SHA256
    assert len(data) < 16_000
    npz = Path(basicsr.metrics.__file__).with_name("niqe_pris_params.npz")
    mat = scipy.io.loadmat(NIQE_PARAMS)
    with np.load(npz) as source:
        np.testing.assert_array_equal(mat["mu_prisparam"], source["mu_pris_param"])
        np.testing.assert_array_equal(mat["cov_prisparam"], source["cov_pris_param"])
    script = importlib.util.spec_from_file_location(
        "make_niqe", NIQE_PARAMS.parent / "make_niqe_params.py"
    )
    maker = importlib.util.module_from_spec(script)
    script.loader.exec_module(maker)
    assert maker.build() == data


def test_niqe_refuses_small_and_flat_images() -> None:
    niqe = create_metric("niqe")
    with pytest.raises(MetricInputError, match="at least 96x96"):
        niqe(np.full((80, 200, 3), 0.5, np.float32))
    with pytest.raises(MetricInputError, match="undefined"):
        niqe(np.full((100, 200, 3), 0.5, np.float32))


def test_niqe_matlab_needs_its_own_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RESTORATION_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    available, why = metric_available("niqe_matlab")
    assert not available
    assert str(tmp_path / "weights" / "niqe_matlab_params.mat") in why
    assert "create_metric('niqe_matlab'" in why
    with pytest.raises(MetricUnavailableError, match=r"niqe_matlab_params\.mat"):
        create_metric("niqe_matlab")
    assert metric_available("niqe") == (True, f"NIQE model file {NIQE_PARAMS}.")


# ---------------------------------------------------------------- masked SSIM


def test_masked_ssim_with_a_full_mask_is_ssim() -> None:
    reference = to_float(photo("coffee"))
    output = to_float(distort(photo("coffee"), "jpeg"))
    full = np.ones(reference.shape[:2], bool)
    assert create_metric("ssim_masked")(output, reference, full) == pytest.approx(
        create_metric("ssim")(output, reference), abs=1e-15
    )


def test_masked_ssim_ignores_changes_outside_the_mask() -> None:
    reference = to_float(photo("astronaut"))
    output = to_float(distort(photo("astronaut"), "blur"))
    mask = np.zeros(reference.shape[:2], np.uint8)
    mask[40:140, 60:200] = 1
    metric = create_metric("ssim_masked")
    before = metric(output, reference, mask)
    scrambled = output.copy()
    outside = mask == 0
    scrambled[outside] = np.random.default_rng(1).random((outside.sum(), 3), np.float32)
    # Exact up to the FFT OpenCV uses for an 11x11 float64 filter (rounding ~1e-13).
    assert metric(scrambled, reference, mask) == pytest.approx(before, abs=1e-12)
    inside = output.copy()
    inside[60:120, 80:180] = 0.0
    assert metric(inside, reference, mask) < before - 0.1


def test_masked_ssim_mask_errors() -> None:
    image = to_float(photo("coffee"))
    metric = create_metric("ssim_masked")
    thin = np.zeros(image.shape[:2], bool)
    thin[50:60, :] = True  # 10 px tall: no 11x11 window fits
    with pytest.raises(MetricInputError, match="no 11x11"):
        metric(image, image, thin)
    with pytest.raises(MetricInputError, match="needs a mask"):
        metric(image, image)
    with pytest.raises(MetricInputError, match=r"must be \(H, W\)"):
        metric(image, image, np.ones((10, 10), bool))
    with pytest.raises(MetricInputError, match="binary"):
        metric(image, image, np.full(image.shape[:2], 0.5))
    with pytest.raises(MetricInputError, match="does not take a mask"):
        create_metric("ssim")(image, image, np.ones(image.shape[:2], bool))


# ---------------------------------------------------------------- colour histogram


def lab_ab_intersection(output: np.ndarray, reference: np.ndarray) -> float:
    """The `colorhist` definition, computed independently with scikit-image's CIELAB."""
    from skimage.color import rgb2lab

    edges = np.linspace(-128.0, 128.0, 33)
    hists = []
    for rgb in (output, reference):
        lab = np.clip(rgb2lab(rgb.astype(np.float64)), -127.999, 127.999)
        counts, _, _ = np.histogram2d(lab[..., 1].ravel(), lab[..., 2].ravel(), [edges, edges])
        hists.append(counts / counts.sum())
    return float(np.minimum(*hists).sum())


def test_colorhist_known_values() -> None:
    metric = create_metric("colorhist")
    chelsea = to_float(photo("chelsea"))
    for other in (hue_shift(chelsea, 40.0), to_float(photo("coffee"))):
        ours = metric(other, chelsea)
        assert ours == pytest.approx(
            lab_ab_intersection(other, chelsea), abs=TOLERANCE["colorhist"]
        )
        assert ours == pytest.approx(metric(chelsea, other), abs=1e-15)  # symmetric
    assert metric(np.ascontiguousarray(chelsea[::-1, ::-1]), chelsea) == 1.0  # palette only


def test_colorhist_falls_with_hue_shift_and_lost_colour() -> None:
    metric = create_metric("colorhist")
    astronaut = to_float(photo("astronaut", 256, 256))
    small, large = (metric(hue_shift(astronaut, d), astronaut) for d in (15.0, 120.0))
    gray = np.repeat(astronaut.mean(axis=2, keepdims=True), 3, axis=2)
    assert 1.0 > small > large >= 0.0
    assert metric(gray, astronaut) < small


# ---------------------------------------------------------------- LPIPS


def test_lpips_unavailable_names_files_places_and_command(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    available, why = metric_available("lpips")
    assert not available
    hub = tmp_path / "torch" / "hub"
    assert str(hub / "checkpoints" / "alexnet-owt-7be5be79.pth") in why
    assert str(hub / "pyiqa" / "LPIPS_v0.1_alex-df73285e.pth") in why
    assert "pyiqa.create_metric('lpips'" in why and "pip download --no-deps lpips==0.1.4" in why
    with pytest.raises(MetricUnavailableError) as caught:
        create_metric("lpips")
    assert str(caught.value) == why


@pytest.fixture()
def random_lpips_files(tmp_path, monkeypatch):
    """Random-weight AlexNet and linear layers at the cache paths: a plumbing fixture only."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    generator = torch.Generator().manual_seed(0)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in torchvision.models.alexnet().state_dict().items()}
    alexnet = {k: torch.randn(s, generator=generator) * 0.01 for k, s in shapes.items()}
    linear = {
        f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=generator)
        for i, c in enumerate((64, 192, 384, 256, 256))
    }
    paths = []
    for file, state in ((lpips_files.ALEXNET, alexnet), (lpips_files.LINEAR, linear)):
        path = lpips_files.path_of(file)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, path)
        paths.append(path)
    yield paths
    for path in paths:
        path.unlink()


def test_lpips_refuses_files_that_are_not_the_pinned_ones(random_lpips_files) -> None:
    available, why = metric_available("lpips")
    assert not available and "expected 244,408,911" in why
    with pytest.raises(MetricUnavailableError, match="expected"):
        create_metric("lpips")


def test_lpips_plumbing_with_random_weights(random_lpips_files, monkeypatch) -> None:
    """Plumbing only: random weights pinned in place of the real ones. It checks that the
    files are found, verified, loaded into pyiqa's network and scored; not LPIPS values."""
    pins = []
    for file, path in zip(lpips_files.FILES, random_lpips_files, strict=True):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        pins.append(dataclasses.replace(file, size=path.stat().st_size, sha256=digest))
    monkeypatch.setattr(lpips_files, "ALEXNET", pins[0])
    monkeypatch.setattr(lpips_files, "LINEAR", pins[1])
    monkeypatch.setattr(lpips_files, "FILES", tuple(pins))
    assert metric_available("lpips")[0]
    metric = create_metric("lpips")
    reference = to_float(photo("coffee", 64, 64))
    output = to_float(distort(photo("coffee", 64, 64), "noise"))
    score = metric(output, reference)
    assert math.isfinite(score) and score > 0
    assert metric(reference, reference) == 0.0
    assert metric.describe()["weights"]["LPIPS_v0.1_alex-df73285e.pth"] == pins[1].sha256


# ---------------------------------------------------------------- inputs


def test_input_errors() -> None:
    image = to_float(photo("coffee"))
    psnr = create_metric("psnr")
    with pytest.raises(MetricInputError, match="compares against a reference"):
        psnr(image)
    with pytest.raises(MetricInputError, match="same size"):
        psnr(image, image[:100])
    with pytest.raises(MetricInputError, match="float RGB"):
        psnr(photo("coffee"), image)
    with pytest.raises(MetricInputError, match=r"\(H, W, 3\)"):
        psnr(image[..., 0], image[..., 0])
    with pytest.raises(MetricInputError, match="values in \\[0, 1\\]"):
        psnr(image * 2, image)
    with pytest.raises(MetricInputError, match="leaves nothing"):
        create_metric("psnr", crop_border=200)(image, image)
    with pytest.raises(MetricInputError, match="at least 11x11"):
        create_metric("ssim")(image[:10], image[:10])
    assert create_metric("niqe")(image, None) == create_metric("niqe")(image, image)
