"""The metric row type, the configured `Metric` object, input checks and errors."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from pipelines.errors import RestorationError

Kind = Literal["psnr", "ssim", "psnr_sr", "ssim_sr", "ssim_masked", "niqe", "colorhist", "lpips"]
Channel = Literal["rgb", "y", "chroma"]
ColourSpace = Literal["rgb", "yiq", "ycbcr", "cielab"]
# (output, reference or None, mask or None) -> score; inputs already checked and cropped.
Compute = Callable[[np.ndarray, np.ndarray | None, np.ndarray | None], float]

_NAME = re.compile(r"[a-z][a-z0-9_]*")
# pyiqa accepts inputs within this distance of [0, 1] (InferenceModel.is_valid_input).
RANGE_SLACK = 1e-6


class UnknownMetricError(RestorationError, KeyError):
    """A metric name that is not in the table."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MetricUnavailableError(RestorationError):
    """A metric whose files are not here; the message names them and how to fetch them."""


class MetricInputError(RestorationError, ValueError):
    """Images or a mask a metric cannot score: wrong shape, range, size or content."""


@dataclass(frozen=True, kw_only=True)
class MetricSpec:
    """One row of the metric table. Every field is stated on every row: no defaults."""

    name: str
    title: str
    lower_better: bool
    needs_reference: bool
    needs_mask: bool
    kind: Kind
    channel: Channel  # what is compared: RGB channels, a Y plane, or chroma
    colour_space: ColourSpace  # the conversion that gives `channel` (pyiqa's color_space)
    quantized: bool  # planes rounded to 8-bit levels (x 255, round) before scoring
    crop_border: int | None  # None: must be given at creation (the SR scale)
    value_range: tuple[float, float]
    unit: str
    implementation: str
    version: str
    matches: str  # the reference implementation and call our values are tested against
    overridable: tuple[str, ...]  # settings create_metric(name, **overrides) may change
    definition: str

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"metric name {self.name!r} must be lower_snake_case")
        if not isinstance(self.lower_better, bool):
            raise TypeError(f"{self.name}: lower_better must be True or False")
        if self.needs_mask and not self.needs_reference:
            raise ValueError(f"{self.name}: a masked metric compares against a reference")
        if self.crop_border is not None and self.crop_border < 0:
            raise ValueError(f"{self.name}: crop_border must be >= 0")
        low, high = self.value_range
        if not low < high:
            raise ValueError(f"{self.name}: value_range must be (low, high) with low < high")

    @property
    def test_y_channel(self) -> bool:
        return self.channel == "y"

    def settings(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "colour_space": self.colour_space,
            "test_y_channel": self.test_y_channel,
            "quantized_to_8bit": self.quantized,
            "crop_border": self.crop_border,
        }


class Metric:
    """A configured metric. Call it on RGB float32 arrays (H, W, 3) in [0, 1]
    (`pipelines.images.Picture.rgb`); it returns a float. Immutable and stateless per call."""

    __slots__ = ("_compute", "_details", "spec")

    def __init__(self, spec: MetricSpec, compute: Compute, details: Mapping[str, Any]) -> None:
        if spec.crop_border is None:
            raise ValueError(f"{spec.name}: crop_border must be set")
        self.spec = spec
        self._compute = compute
        self._details = MappingProxyType(dict(details))

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def lower_better(self) -> bool:
        return self.spec.lower_better

    @property
    def needs_reference(self) -> bool:
        return self.spec.needs_reference

    @property
    def needs_mask(self) -> bool:
        return self.spec.needs_mask

    def __repr__(self) -> str:
        return f"<Metric {self.name} crop_border={self.spec.crop_border}>"

    def describe(self) -> dict[str, Any]:
        """What to record beside every score: implementation, versions, settings."""
        spec = self.spec
        return {
            "metric": spec.name,
            "title": spec.title,
            "lower_better": spec.lower_better,
            "needs_reference": spec.needs_reference,
            "needs_mask": spec.needs_mask,
            "implementation": spec.implementation,
            "version": spec.version,
            "matches": spec.matches,
            "settings": {**spec.settings(), **self._details.get("settings", {})},
            "value_range": [v if math.isfinite(v) else None for v in spec.value_range],
            "unit": spec.unit,
            "definition": spec.definition,
            **{k: v for k, v in self._details.items() if k != "settings"},
        }

    def __call__(
        self,
        output: np.ndarray,
        reference: np.ndarray | None = None,
        mask: np.ndarray | None = None,
    ) -> float:
        """Score `output` (against `reference`, inside `mask` where the metric uses them).

        A no-reference metric ignores `reference`; a mask given to a metric that does not
        use one is an error, so that no score looks masked when it is not.
        """
        out = check_rgb(output, "output")
        ref = self._reference(reference, out)
        checked_mask = self._mask(mask, out.shape[:2])
        border = self.spec.crop_border or 0
        out, ref, checked_mask = (crop(a, border) for a in (out, ref, checked_mask))
        try:
            return self._compute(out, ref, checked_mask)
        except ValueError as exc:  # sizes and contents the computation cannot score
            raise MetricInputError(f"{self.name}: {exc}") from exc

    def _reference(self, reference: np.ndarray | None, out: np.ndarray) -> np.ndarray | None:
        if not self.spec.needs_reference:
            return None
        if reference is None:
            raise MetricInputError(f"{self.name} compares against a reference image.")
        ref = check_rgb(reference, "reference")
        if ref.shape != out.shape:
            raise MetricInputError(
                f"{self.name}: the output is {_size(out)} but the reference is "
                f"{_size(ref)}; they must be the same size."
            )
        return ref

    def _mask(self, mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
        if not self.spec.needs_mask:
            if mask is not None:
                raise MetricInputError(f"{self.name} does not take a mask; use ssim_masked.")
            return None
        if mask is None:
            raise MetricInputError(f"{self.name} needs a mask (H, W) of the pixels to score.")
        return check_mask(mask, shape)


def with_overrides(spec: MetricSpec, overrides: Mapping[str, Any]) -> MetricSpec:
    """The row with allowed settings changed (validated)."""
    from pipelines.errors import InvalidOptionError

    for key, value in overrides.items():
        if key not in spec.overridable:
            allowed = ", ".join(spec.overridable) or "none"
            raise InvalidOptionError(
                f"{spec.name} has no setting {key!r} to change (changeable: {allowed})."
            )
        if key == "crop_border" and not (
            isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0
        ):
            raise InvalidOptionError(f"crop_border must be a whole number >= 0, got {value!r}.")
    changed = {k: int(v) if k == "crop_border" else v for k, v in overrides.items()}
    return dataclasses.replace(spec, **changed)


def check_rgb(image: Any, role: str) -> np.ndarray:
    """A float32 (H, W, 3) array in [0, 1] (pyiqa's slack), or MetricInputError."""
    if not isinstance(image, np.ndarray):
        raise MetricInputError(
            f"The {role} must be a numpy array (Picture.rgb), not {type(image).__name__}."
        )
    if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise MetricInputError(f"The {role} must be an RGB array (H, W, 3), got {image.shape}.")
    if image.dtype.kind != "f":
        raise MetricInputError(
            f"The {role} must be float RGB in [0, 1] (Picture.rgb), not {image.dtype}."
        )
    image = image.astype(np.float32, copy=False)
    low, high = float(image.min()), float(image.max())
    if not (low > -RANGE_SLACK and high < 1 + RANGE_SLACK):
        raise MetricInputError(
            f"The {role} must hold values in [0, 1]; it spans {low:.4g} to {high:.4g}."
        )
    return image


def check_mask(mask: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A bool (H, W) mask from a bool or 0/1 array of the image's size."""
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.shape != tuple(shape):
        raise MetricInputError(
            f"The mask is {mask.shape} but the images are {tuple(shape)}; it must be (H, W)."
        )
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise MetricInputError("The mask must be binary: bool, or numbers that are 0 or 1.")
        mask = mask.astype(bool)
    return mask


def crop(image: np.ndarray | None, border: int) -> np.ndarray | None:
    if image is None or border == 0:
        return image
    if min(image.shape[:2]) <= 2 * border:
        raise MetricInputError(
            f"A border of {border} px leaves nothing of an image of {_size(image)}."
        )
    return image[border:-border, border:-border]


def _size(image: np.ndarray) -> str:
    return f"{image.shape[1]}x{image.shape[0]}"
