"""The metric table: one typed row per metric, `create_metric` and `metric_available`.

Names and default settings mean what they mean in pyiqa 0.1.16 (``psnr``, ``psnry``,
``ssim``, ``ssimc``, ``niqe``, ``niqe_matlab``, ``lpips``); the other rows are this
project's: the super-resolution literature's convention (``psnr_y_sr``, ``ssim_y_sr``),
``ssim_masked`` for inpainting and ``colorhist`` for colorization.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from evaluation.metrics.base import (
    Compute,
    Metric,
    MetricSpec,
    MetricUnavailableError,
    UnknownMetricError,
    with_overrides,
)
from pipelines.tables import NamedTable

IMPL_VERSION = "1"  # bump when a fast path's arithmetic changes
PYIQA = "pyiqa 0.1.16"
BASICSR = "basicsr 1.4.2"
_FAST = "evaluation.metrics.{} (numpy + OpenCV)"
_FULLREF = _FAST.format("fullref")
_CROP = ("crop_border",)
_INF = float("inf")
NIQE_MATLAB_FILE = "niqe_matlab_params.mat"


class MetricTable(NamedTable[MetricSpec]):
    """An immutable table of metric rows keyed by name; refuses duplicates."""

    kind = "metric"
    error = UnknownMetricError

    def __init__(self, rows: Iterable[MetricSpec]) -> None:
        super().__init__(rows, key=lambda row: row.name)


_PSNR_DEF = "10 log10(1 / (MSE + 1e-8)), data range 1; identical images give 80 dB."
_SSIM_DEF = (
    "Mean SSIM map: planes x 255 rounded to 8-bit levels, 11x11 sigma 1.5 Gaussian "
    "window, 'valid' filtering, C1 = (0.01*255)^2, C2 = (0.03*255)^2, no downsampling."
)
_SR = "Y of MATLAB's BT.601 YCbCr, a border of `scale` px cropped (pass crop_border=scale)."

METRICS = MetricTable(
    [
        MetricSpec(
            name="psnr",
            title="PSNR (RGB)",
            lower_better=False,
            needs_reference=True,
            needs_mask=False,
            kind="psnr",
            channel="rgb",
            colour_space="rgb",
            quantized=False,
            crop_border=0,
            value_range=(0.0, 80.0),
            unit="dB",
            implementation=_FULLREF,
            version=IMPL_VERSION,
            matches=f"{PYIQA} create_metric('psnr')",
            definition=_PSNR_DEF,
            overridable=_CROP,
        ),
        MetricSpec(
            name="psnry",
            title="PSNR (Y of YIQ)",
            lower_better=False,
            needs_reference=True,
            needs_mask=False,
            kind="psnr",
            channel="y",
            colour_space="yiq",
            quantized=False,
            crop_border=0,
            value_range=(0.0, 80.0),
            unit="dB",
            implementation=_FULLREF,
            version=IMPL_VERSION,
            matches=f"{PYIQA} create_metric('psnry')",
            definition=f"On Y = 0.299 R + 0.587 G + 0.114 B (unrounded). {_PSNR_DEF}",
            overridable=_CROP,
        ),
        MetricSpec(
            name="ssim",
            title="SSIM (Y of YIQ)",
            lower_better=False,
            needs_reference=True,
            needs_mask=False,
            kind="ssim",
            channel="y",
            colour_space="yiq",
            quantized=True,
            crop_border=0,
            value_range=(0.0, 1.0),
            unit="",
            implementation=_FULLREF,
            version=IMPL_VERSION,
            matches=f"{PYIQA} create_metric('ssim')",
            definition=f"On Y = 0.299 R + 0.587 G + 0.114 B. {_SSIM_DEF}",
            overridable=_CROP,
        ),
        MetricSpec(
            name="ssimc",
            title="SSIM (RGB channels)",
            lower_better=False,
            needs_reference=True,
            needs_mask=False,
            kind="ssim",
            channel="rgb",
            colour_space="rgb",
            quantized=True,
            crop_border=0,
            value_range=(0.0, 1.0),
            unit="",
            implementation=_FULLREF,
            version=IMPL_VERSION,
            matches=f"{PYIQA} create_metric('ssimc')",
            definition=f"Mean over R, G and B. {_SSIM_DEF}",
            overridable=_CROP,
        ),
        MetricSpec(
            name="psnr_y_sr",
            title="PSNR-Y (SR convention)",
            lower_better=False,
            needs_reference=True,
            needs_mask=False,
            kind="psnr_sr",
            channel="y",
            colour_space="ycbcr",
            quantized=False,
            crop_border=None,
            value_range=(0.0, _INF),
            unit="dB",
            implementation=_FULLREF,
            version=IMPL_VERSION,
            matches=f"{BASICSR} calculate_psnr(crop_border=scale, test_y_channel=True)",
            definition=f"{_SR} Y unrounded; 10 log10(255^2 / MSE), infinite when identical.",
            overridable=_CROP,
        ),
        MetricSpec(
            name="ssim_y_sr",
            title="SSIM-Y (SR convention)",
            lower_better=False,
            needs_reference=True,
            needs_mask=False,
            kind="ssim_sr",
            channel="y",
            colour_space="ycbcr",
            quantized=False,
            crop_border=None,
            value_range=(-1.0, 1.0),
            unit="",
            implementation=_FULLREF,
            version=IMPL_VERSION,
            matches=f"{BASICSR} calculate_ssim(crop_border=scale, test_y_channel=True)",
            definition=(
                f"{_SR} Y unrounded; mean SSIM map, 11x11 sigma 1.5 Gaussian window, 'valid', "
                "C1 = (0.01*255)^2, C2 = (0.03*255)^2."
            ),
            overridable=_CROP,
        ),
        MetricSpec(
            name="ssim_masked",
            title="SSIM inside a mask (Y of YIQ)",
            lower_better=False,
            needs_reference=True,
            needs_mask=True,
            kind="ssim_masked",
            channel="y",
            colour_space="yiq",
            quantized=True,
            crop_border=0,
            value_range=(0.0, 1.0),
            unit="",
            implementation=_FULLREF,
            version=IMPL_VERSION,
            matches="equals `ssim` when the mask covers the whole image",
            definition=(
                "Mean of the `ssim` map over the positions whose whole 11x11 window lies "
                "inside the mask (the mask eroded by the window), so pixels outside the mask "
                "never influence the score; an error if no window fits."
            ),
            overridable=_CROP,
        ),
        MetricSpec(
            name="niqe",
            title="NIQE",
            lower_better=True,
            needs_reference=False,
            needs_mask=False,
            kind="niqe",
            channel="y",
            colour_space="yiq",
            quantized=True,
            crop_border=0,
            value_range=(0.0, _INF),
            unit="",
            implementation=_FAST.format("niqe"),
            version=IMPL_VERSION,
            matches=(
                f"{PYIQA} create_metric('niqe', pretrained_model_path="
                "'evaluation/data/niqe_pris_params.mat')"
            ),
            overridable=_CROP,
            definition=(
                "NIQE of the output alone with the official model (niqe_release "
                "modelparameters.mat, shipped as evaluation/data/niqe_pris_params.mat): 96 px "
                "blocks, two scales."
            ),
        ),
        MetricSpec(
            name="niqe_matlab",
            title="NIQE (MATLAB R2021b model)",
            lower_better=True,
            needs_reference=False,
            needs_mask=False,
            kind="niqe",
            channel="y",
            colour_space="yiq",
            quantized=True,
            crop_border=0,
            value_range=(0.0, _INF),
            unit="",
            implementation=_FAST.format("niqe"),
            version=IMPL_VERSION,
            matches=f"{PYIQA} create_metric('niqe_matlab')",
            overridable=_CROP,
            definition=(
                "NIQE as `niqe` but with the model of MATLAB's built-in niqe() "
                f"({NIQE_MATLAB_FILE}, pyiqa's download); not shipped."
            ),
        ),
        MetricSpec(
            name="colorhist",
            title="Colour histogram similarity (a*b*)",
            lower_better=False,
            needs_reference=True,
            needs_mask=False,
            kind="colorhist",
            channel="chroma",
            colour_space="cielab",
            quantized=False,
            crop_border=0,
            value_range=(0.0, 1.0),
            unit="",
            implementation=_FAST.format("colorhist"),
            version=IMPL_VERSION,
            matches="own definition (pyiqa has no colour-histogram metric)",
            overridable=_CROP,
            definition=(
                "Histogram intersection sum(min(p, q)) of the joint CIELAB (D65) a*b* "
                "histograms, 32x32 bins of width 8 over [-128, 128)^2, of output and reference."
            ),
        ),
        MetricSpec(
            name="lpips",
            title="LPIPS (AlexNet, v0.1)",
            lower_better=True,
            needs_reference=True,
            needs_mask=False,
            kind="lpips",
            channel="rgb",
            colour_space="rgb",
            quantized=False,
            crop_border=0,
            value_range=(0.0, _INF),
            unit="",
            implementation="pyiqa.archs.lpips_arch.LPIPS",
            version=PYIQA,
            matches=f"{PYIQA} create_metric('lpips') (the same network and weights)",
            overridable=(),
            definition="LPIPS v0.1 with the AlexNet trunk; inputs scaled to [-1, 1].",
        ),
    ]
)


def create_metric(name: str, **overrides: Any) -> Metric:
    """The metric called `name`, with allowed settings (e.g. ``crop_border``) overridden."""
    spec = with_overrides(METRICS.get(name), overrides)
    if spec.crop_border is None:
        from pipelines.errors import InvalidOptionError

        raise InvalidOptionError(
            f"{name} crops a border of the super-resolution scale: pass it, e.g. "
            f"create_metric({name!r}, crop_border=4) for x4."
        )
    compute, details = _BUILDERS[spec.kind](spec)
    return Metric(spec, compute, details)


def metric_available(name: str) -> tuple[bool, str]:
    """Whether `name` can be created here, and a sentence saying why (or why not)."""
    spec = METRICS.get(name)
    if spec.kind == "lpips":
        from evaluation.metrics import lpips

        found = lpips.problems()
        if found:
            return False, lpips.unavailable_message(found)
        return True, "LPIPS files found (their sha256 is checked when the metric is created)."
    if spec.kind == "niqe":
        return _niqe_available(spec)
    return True, "Computed here with numpy and OpenCV; nothing to download."


# ---------------------------------------------------------------- builders


def _details(*libraries: str) -> dict[str, Any]:
    import importlib

    versions = {lib: importlib.import_module(lib).__version__ for lib in ("numpy", *libraries)}
    return {"libraries": versions}


def _matrix(spec: MetricSpec) -> Any:
    return spec.colour_space if spec.channel == "y" else None


def _build_psnr(spec: MetricSpec) -> tuple[Compute, dict[str, Any]]:
    from evaluation.metrics import fullref

    matrix = _matrix(spec)

    def compute(output: Any, reference: Any, _mask: Any) -> float:
        return fullref.psnr_of(output, reference, matrix)

    return compute, {**_details("cv2"), "settings": {"data_range": 1.0, "eps": fullref.PSNR_EPS}}


def _ssim_settings() -> dict[str, Any]:
    return {"window": "gaussian 11x11 sigma 1.5, valid", "downsample": False}


def _build_ssim(spec: MetricSpec) -> tuple[Compute, dict[str, Any]]:
    from evaluation.metrics import fullref

    matrix = _matrix(spec)

    def compute(output: Any, reference: Any, _mask: Any) -> float:
        return fullref.ssim(output, reference, matrix)

    return compute, {**_details("cv2"), "settings": _ssim_settings()}


def _build_psnr_sr(spec: MetricSpec) -> tuple[Compute, dict[str, Any]]:
    from evaluation.metrics import fullref

    def compute(output: Any, reference: Any, _mask: Any) -> float:
        return fullref.sr_psnr(output, reference)

    return compute, {**_details("cv2"), "settings": {"data_range": 255.0, "eps": 0.0}}


def _build_ssim_sr(spec: MetricSpec) -> tuple[Compute, dict[str, Any]]:
    from evaluation.metrics import fullref

    def compute(output: Any, reference: Any, _mask: Any) -> float:
        return fullref.sr_ssim(output, reference)

    return compute, {**_details("cv2"), "settings": _ssim_settings()}


def _build_ssim_masked(spec: MetricSpec) -> tuple[Compute, dict[str, Any]]:
    from evaluation.metrics import fullref

    matrix = _matrix(spec)

    def compute(output: Any, reference: Any, mask: Any) -> float:
        return fullref.masked_ssim(output, reference, mask, matrix)

    settings = {**_ssim_settings(), "mask": "windows entirely inside the mask"}
    return compute, {**_details("cv2"), "settings": settings}


def _build_niqe(spec: MetricSpec) -> tuple[Compute, dict[str, Any]]:
    from evaluation.metrics import niqe

    path = _niqe_model_path(spec)
    if path is None:
        raise MetricUnavailableError(_niqe_matlab_missing())
    try:
        model = niqe.load_model(path, niqe.expected_sha256(path))
    except (OSError, ValueError) as exc:
        raise MetricUnavailableError(f"{spec.name} is unavailable: {exc}") from None

    def compute(output: Any, _reference: Any, _mask: Any) -> float:
        return niqe.niqe(output, model)

    details = _details("cv2", "scipy")
    details["model"] = {"file": path.name, "sha256": model.sha256}
    return compute, {**details, "settings": {"block": niqe.BLOCK}}


def _build_colorhist(spec: MetricSpec) -> tuple[Compute, dict[str, Any]]:
    from evaluation.metrics import colorhist

    def compute(output: Any, reference: Any, _mask: Any) -> float:
        return colorhist.colorhist(output, reference)

    return compute, {**_details("cv2"), "settings": {"bins": colorhist.BINS}}


def _build_lpips(spec: MetricSpec) -> tuple[Compute, dict[str, Any]]:
    from evaluation.metrics import lpips

    try:
        score, details = lpips.build()
    except lpips.LpipsFilesError as exc:
        raise MetricUnavailableError(str(exc)) from None

    def compute(output: Any, reference: Any, _mask: Any) -> float:
        return score(output, reference)

    return compute, details


_BUILDERS = {
    "psnr": _build_psnr,
    "ssim": _build_ssim,
    "psnr_sr": _build_psnr_sr,
    "ssim_sr": _build_ssim_sr,
    "ssim_masked": _build_ssim_masked,
    "niqe": _build_niqe,
    "colorhist": _build_colorhist,
    "lpips": _build_lpips,
}


def _niqe_model_path(spec: MetricSpec) -> Path | None:
    from evaluation.metrics import niqe

    if spec.name == "niqe":
        return niqe.SHIPPED_PARAMS
    return next((path for path in _niqe_matlab_places() if path.is_file()), None)


def _niqe_available(spec: MetricSpec) -> tuple[bool, str]:
    from evaluation.metrics import niqe

    path = _niqe_model_path(spec)
    if path is None:
        return False, _niqe_matlab_missing()
    try:
        niqe.load_model(path, niqe.expected_sha256(path))
    except (OSError, ValueError) as exc:
        return False, f"{spec.name} is unavailable: {exc}"
    return True, f"NIQE model file {path}."


def _niqe_matlab_places() -> list[Path]:
    from evaluation.metrics.lpips import torch_hub_dir
    from pipelines.weights import cache_dir

    return [cache_dir() / NIQE_MATLAB_FILE, torch_hub_dir() / "pyiqa" / NIQE_MATLAB_FILE]


def _niqe_matlab_missing() -> str:
    places = " or ".join(str(path) for path in _niqe_matlab_places())
    return (
        f"niqe_matlab is unavailable: it needs {NIQE_MATLAB_FILE} (the model of MATLAB's "
        f"built-in niqe(), which pyiqa downloads; it is not the shipped niqe model) in {places}. "
        "With internet access, `python -c \"import pyiqa; pyiqa.create_metric('niqe_matlab', "
        "device='cpu')\"` downloads it to the second place."
    )
