"""Seeded degradations that turn a high-quality image into an evaluation pair.

Every degradation is a frozen, typed row in one table (`DEGRADATIONS`); a variant is a row
with other settings. `create_degradation(name, **params)` returns a row with some settings
changed. `apply(image, key=...)` gives a `DegradationResult` whose `params` hold everything
needed to redo it: the row's settings, the seed, the image key and every value drawn at
random. Randomness comes from a `numpy.random.Generator` seeded with (seed, hash of the
image key), so results do not depend on the order in which images are processed, and each
effect draws from its own stream, so changing one effect's strength leaves the others'
random choices as they were.

Images are RGB float32 arrays of shape (H, W, 3) in [0, 1] (or a `Picture`). Outputs that
the literature stores as 8-bit files (bicubic LR images, grayscale inputs, JPEG) are
quantised to the 256 levels of uint8 and returned as float32.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, ClassVar

import cv2
import numpy as np

from pipelines.errors import InvalidOptionError, RestorationError
from pipelines.images import Picture
from pipelines.tables import NamedTable, did_you_mean

ImageKey = str | int
_Degraded = tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any]]
_BT601 = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class UnknownDegradationError(RestorationError):
    """A degradation name that is not in the table."""


@dataclass(frozen=True, eq=False)
class DegradationResult:
    """A degraded image `lq`, its reference `gt` (both RGB float32 in [0, 1]), an optional
    boolean mask (True where something was removed or damaged) and the full parameters."""

    lq: np.ndarray = field(repr=False)
    gt: np.ndarray = field(repr=False)
    mask: np.ndarray | None = field(repr=False)
    params: dict[str, Any]


# ---------------------------------------------------------------- shared helpers


def image_generator(seed: int, key: ImageKey, streams: int = 1) -> list[np.random.Generator]:
    """Independent generators for one image: seeded by (seed, blake2b(str(key)))."""
    digest = hashlib.blake2b(str(key).encode("utf-8"), digest_size=8).digest()
    sequence = np.random.SeedSequence([seed, int.from_bytes(digest, "little")])
    return [np.random.default_rng(child) for child in sequence.spawn(streams)]


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of `scale`."""
    height, width = image.shape[:2]
    if height < scale or width < scale:
        raise InvalidOptionError(
            f"The image is {width}x{height}, smaller than the scale factor {scale}."
        )
    return image[: height - height % scale, : width - width % scale]


def quantize(image: np.ndarray) -> np.ndarray:
    """Round to the 256 levels of an 8-bit file (clipping first), as float32 in [0, 1]."""
    return (np.round(np.clip(image, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


@functools.cache
def _basicsr_imresize() -> Any:
    # basicsr imports torch and its architectures (seconds): only when bicubic is used.
    from basicsr.utils.matlab_functions import imresize

    return imresize


def matlab_imresize(image: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB's `imresize(image, scale, 'bicubic')` (antialiased when shrinking), through
    basicsr. Input and output are float32 HxWxC in [0, 1]; the output is neither rounded
    nor clipped (bicubic overshoots slightly), and its size is ceil(size * scale)."""
    resized = _basicsr_imresize()(np.ascontiguousarray(image, dtype=np.float32), scale)
    return np.asarray(resized, dtype=np.float32)


def _package_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _as_rgb(image: np.ndarray | Picture) -> np.ndarray:
    rgb = image.rgb if isinstance(image, Picture) else np.asarray(image)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
        raise InvalidOptionError(f"Expected an RGB image of shape (H, W, 3), got {rgb.shape}.")
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) / np.float32(255.0)
    if rgb.dtype.kind != "f":
        raise InvalidOptionError(f"Expected uint8 or float pixels, got {rgb.dtype}.")
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def _check_range(name: str, bounds: tuple[float, float], low: float, high: float) -> None:
    if len(bounds) != 2 or not low <= bounds[0] <= bounds[1] <= high:
        raise InvalidOptionError(
            f"{name} must be a (min, max) pair with {low} <= min <= max <= {high}, got {bounds}."
        )


def _check_strength(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise InvalidOptionError(f"{name} is a strength between 0 and 1, got {value}.")


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_json_value(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _gaussian_blur(image: np.ndarray, sigma: float) -> tuple[np.ndarray, int]:
    size = 2 * math.ceil(3 * sigma) + 1
    blurred = cv2.GaussianBlur(image, (size, size), sigma, borderType=cv2.BORDER_REFLECT_101)
    return blurred.reshape(image.shape), size


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    bgr = np.ascontiguousarray((quantize(image) * 255).round().astype(np.uint8)[:, :, ::-1])
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return decoded[:, :, ::-1].astype(np.float32) / np.float32(255.0)


# ---------------------------------------------------------------- the rows


@dataclass(frozen=True, kw_only=True)
class Degradation:
    """Base row: a stable name, a base seed, and the settings of its subclass."""

    name: str
    seed: int = 0

    task: ClassVar[str] = ""
    implementation: ClassVar[str] = ""
    streams: ClassVar[int] = 1
    fixed: ClassVar[tuple[str, ...]] = ()  # settings that define the row's identity

    def apply(
        self, image: np.ndarray | Picture, *, key: ImageKey | None = None
    ) -> DegradationResult:
        """Degrade one image. `key` (default: the Picture's name, else 0) picks its random
        stream; pass the image's name or index so every image gets its own."""
        if key is None:
            key = image.name if isinstance(image, Picture) else 0
        rgb = _as_rgb(image)
        lq, gt, mask, drawn = self._degrade(rgb, image_generator(self.seed, key, self.streams))
        params = {**self.describe(), "key": key, "drawn": drawn}
        return DegradationResult(lq=lq, gt=gt, mask=mask, params=params)

    def settings(self) -> dict[str, Any]:
        """The row's settings (everything but name and seed), JSON-ready."""
        return {
            f.name: _json_value(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name not in ("name", "seed")
        }

    def describe(self) -> dict[str, Any]:
        """What a leaderboard row stores about this degradation."""
        return {
            "name": self.name,
            "task": self.task,
            "params": self.settings(),
            "seed": self.seed,
            "implementation": self.implementation,
        }

    def _degrade(self, rgb: np.ndarray, rngs: list[np.random.Generator]) -> _Degraded:
        """(lq, gt, mask, values drawn at random) for one image."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class Bicubic(Degradation):
    """MATLAB-compatible bicubic downscaling (antialiased), the SR literature's "BI"
    degradation: the HR image is modcropped to a multiple of `scale`, shrunk with
    basicsr's port of MATLAB `imresize`, and (with `quantize`) rounded to 8-bit levels as
    the LR PNG files of Set5/DIV2K are. `gt` is the modcropped HR image."""

    scale: int = 4
    quantize: bool = True

    task: ClassVar[str] = "sr"
    fixed: ClassVar[tuple[str, ...]] = ("scale",)
    implementation: ClassVar[str] = (
        "basicsr.utils.matlab_functions.imresize (MATLAB imresize bicubic, antialiasing) "
        f"from basicsr-fixed {_package_version('basicsr-fixed')}"
    )

    def __post_init__(self) -> None:
        if self.scale not in (2, 3, 4, 8):
            raise InvalidOptionError(f"Bicubic scale must be 2, 3, 4 or 8, got {self.scale}.")

    def _degrade(self, rgb: np.ndarray, rngs: list[np.random.Generator]) -> _Degraded:
        gt = modcrop(rgb, self.scale)
        lq = matlab_imresize(gt, 1.0 / self.scale)
        lq = quantize(lq) if self.quantize else np.clip(lq, 0.0, 1.0)
        drawn = {"gt_size": [gt.shape[1], gt.shape[0]], "lq_size": [lq.shape[1], lq.shape[0]]}
        return lq, gt, None, drawn


@dataclass(frozen=True, kw_only=True)
class RealWorld(Degradation):
    """A first-order "real-world" chain in the spirit of Real-ESRGAN, drawn per image:
    Gaussian blur (sigma ~ U(blur_sigma) px, kernel 2*ceil(3 sigma)+1, reflect border) ->
    downscale by `scale` (mode drawn from `resize_modes`: OpenCV bicubic or area) ->
    Gaussian colour noise (sigma ~ U(noise_sigma) in 8-bit levels) -> Poisson noise
    (255 photon levels, blended by ~ U(poisson_scale)) -> 8-bit rounding -> JPEG
    (quality ~ integer U(jpeg_quality), OpenCV, 4:2:0). `gt` is the modcropped HR image."""

    scale: int = 4
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    resize_modes: tuple[str, ...] = ("bicubic", "area")
    noise_sigma: tuple[float, float] = (1.0, 25.0)
    poisson_scale: tuple[float, float] = (0.05, 2.5)
    jpeg_quality: tuple[int, int] = (30, 95)

    task: ClassVar[str] = "sr"
    implementation: ClassVar[str] = (
        f"evaluation.degradations.RealWorld (numpy PCG64, OpenCV {cv2.__version__})"
    )
    _MODES: ClassVar[dict[str, int]] = {"bicubic": cv2.INTER_CUBIC, "area": cv2.INTER_AREA}

    def __post_init__(self) -> None:
        if self.scale not in (1, 2, 3, 4, 8):
            raise InvalidOptionError(f"RealWorld scale must be 1, 2, 3, 4 or 8, got {self.scale}.")
        _check_range("blur_sigma", self.blur_sigma, 0.01, 20.0)
        _check_range("noise_sigma", self.noise_sigma, 0.0, 255.0)
        _check_range("poisson_scale", self.poisson_scale, 0.0, 10.0)
        _check_range("jpeg_quality", self.jpeg_quality, 1, 100)
        unknown = [mode for mode in self.resize_modes if mode not in self._MODES]
        if not self.resize_modes or unknown:
            raise InvalidOptionError(f"resize_modes must be among {list(self._MODES)}.")

    def _degrade(self, rgb: np.ndarray, rngs: list[np.random.Generator]) -> _Degraded:
        rng = rngs[0]
        gt = modcrop(rgb, self.scale)
        sigma = float(rng.uniform(*self.blur_sigma))
        image, kernel = _gaussian_blur(gt, sigma)
        mode = str(self.resize_modes[int(rng.integers(len(self.resize_modes)))])
        height, width = gt.shape[0] // self.scale, gt.shape[1] // self.scale
        image = cv2.resize(image, (width, height), interpolation=self._MODES[mode])
        noise = float(rng.uniform(*self.noise_sigma))
        image = image + rng.normal(0.0, noise / 255.0, image.shape).astype(np.float32)
        poisson = float(rng.uniform(*self.poisson_scale))
        clean = np.clip(image, 0.0, 1.0)
        shot = rng.poisson(clean * 255.0).astype(np.float32) / np.float32(255.0) - clean
        image = quantize(image + shot * np.float32(poisson))
        quality = int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))
        drawn = {
            "blur_sigma": sigma,
            "blur_kernel": kernel,
            "resize_mode": mode,
            "noise_sigma": noise,
            "poisson_scale": poisson,
            "jpeg_quality": quality,
        }
        return _jpeg(image, quality), gt, None, drawn


@dataclass(frozen=True, kw_only=True)
class Grayscale(Degradation):
    """Colorization input: ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B) replicated to
    three channels, rounded to 8-bit levels with `quantize` (as a saved gray photo). `gt`
    is the colour original. Nothing is random."""

    quantize: bool = True

    task: ClassVar[str] = "colorize"
    implementation: ClassVar[str] = "evaluation.degradations.Grayscale (BT.601 luma)"

    def _degrade(self, rgb: np.ndarray, rngs: list[np.random.Generator]) -> _Degraded:
        luma = rgb @ _BT601
        luma = quantize(luma) if self.quantize else luma.astype(np.float32)
        return np.repeat(luma[:, :, None], 3, axis=2), rgb, None, {}


@dataclass(frozen=True, kw_only=True)
class RandomMask(Degradation):
    """Inpainting input: a free-form mask of thick brush strokes (random walks of 4-12
    segments with round joints, as in DeepFill v2 / LaMa's irregular masks) and filled
    random polygons (3-8 vertices), added one shape at a time until the hole covers a
    target fraction drawn from U(coverage); a shape that would exceed the maximum is
    dropped and later shapes are made smaller. Holes are filled with `fill` (1.0: white).
    Stroke widths are a fraction (`stroke_width`) of the image's shorter side."""

    coverage: tuple[float, float] = (0.1, 0.4)
    stroke_width: tuple[float, float] = (0.03, 0.09)
    polygon_probability: float = 0.3
    fill: float = 1.0

    task: ClassVar[str] = "inpaint"
    implementation: ClassVar[str] = (
        f"evaluation.degradations.RandomMask (numpy PCG64, OpenCV {cv2.__version__} drawing)"
    )
    _ATTEMPTS: ClassVar[int] = 500

    def __post_init__(self) -> None:
        _check_range("coverage", self.coverage, 0.001, 0.95)
        _check_range("stroke_width", self.stroke_width, 0.001, 0.5)
        _check_strength("polygon_probability", self.polygon_probability)
        _check_strength("fill", self.fill)

    def _degrade(self, rgb: np.ndarray, rngs: list[np.random.Generator]) -> _Degraded:
        mask, drawn = self.make_mask(rgb.shape[0], rgb.shape[1], rngs[0])
        lq = rgb.copy()
        lq[mask] = np.float32(self.fill)
        return lq, rgb, mask, drawn

    def make_mask(
        self, height: int, width: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """A boolean (H, W) mask, True in the holes, and what was drawn."""
        target = float(rng.uniform(*self.coverage))
        mask = np.zeros((height, width), np.uint8)
        counts = {"strokes": 0, "polygons": 0}
        shrink = 1.0
        for _ in range(self._ATTEMPTS):
            if mask.mean() >= target:
                break
            candidate = mask.copy()
            kind = "polygons" if rng.random() < self.polygon_probability else "strokes"
            draw = _draw_polygon if kind == "polygons" else self._draw_stroke
            draw(candidate, rng, shrink)
            if candidate.mean() <= self.coverage[1]:
                mask, counts[kind] = candidate, counts[kind] + 1
            else:
                shrink *= 0.7
        coverage = float(mask.mean())
        return mask.astype(bool), {"target_coverage": target, "coverage": coverage, **counts}

    def _draw_stroke(self, mask: np.ndarray, rng: np.random.Generator, shrink: float) -> None:
        height, width = mask.shape
        short = min(height, width)
        thickness = max(1, round(rng.uniform(*self.stroke_width) * short * shrink))
        point = np.array([rng.uniform(0, width), rng.uniform(0, height)])
        heading = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(4, 13))):
            heading += rng.uniform(-np.pi / 2.5, np.pi / 2.5)
            length = rng.uniform(0.05, 0.25) * short * shrink
            step = np.array([np.cos(heading), np.sin(heading)]) * length
            end = np.clip(point + step, 0, [width - 1, height - 1])
            start_px, end_px = tuple(int(v) for v in point), tuple(int(v) for v in end)
            cv2.line(mask, start_px, end_px, 1, thickness)
            cv2.circle(mask, end_px, thickness // 2, 1, -1)
            point = end


def _draw_polygon(mask: np.ndarray, rng: np.random.Generator, shrink: float) -> None:
    height, width = mask.shape
    short = min(height, width)
    centre = np.array([rng.uniform(0, width), rng.uniform(0, height)])
    count = int(rng.integers(3, 9))
    angles = np.sort(rng.uniform(0, 2 * np.pi, count))
    radii = rng.uniform(0.05, 0.2, count) * short * shrink
    points = centre + np.stack([np.cos(angles), np.sin(angles)], axis=1) * radii[:, None]
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)


@dataclass(frozen=True, kw_only=True)
class OldPhoto(Degradation):
    """A synthetic old photograph; each effect has a strength in [0, 1] (0: off):
    sepia (blend towards BT.601 luma times the tint (1.07, 0.89, 0.69)), fade (levels
    squeezed to [0.3 f, 1 - 0.15 f]: lower contrast, lifted blacks), blur (Gaussian, sigma
    2 * strength px), grain (monochrome Gaussian noise, std 0.12 * strength, softened with
    a 0.6 px blur), noise (colour Gaussian noise, std 0.1 * strength per channel), then
    damage drawn crisp on top - scratches (round(12 * strength) thin curved lines, mostly
    near-vertical, 70 % bright / 30 % dark, about `scratch_width` * short/512 px wide) and
    dust (specks of 1 to ~short/150 px, count 0.0006 * strength * H * W) - and last a JPEG
    save at `jpeg_quality` (None: no JPEG). `mask` is True exactly where scratches and dust
    were drawn (the ground truth for scratch detection)."""

    sepia: float = 0.7
    fade: float = 0.4
    blur: float = 0.3
    grain: float = 0.3
    scratches: float = 0.5
    dust: float = 0.5
    jpeg_quality: int | None = 75
    noise: float = 0.0
    scratch_width: float = 1.0

    task: ClassVar[str] = "old_photo"
    # grain, scratches, dust, noise (spawned children keep their index: adding one
    # stream leaves the others' draws as they were)
    streams: ClassVar[int] = 4
    implementation: ClassVar[str] = (
        f"evaluation.degradations.OldPhoto (numpy PCG64, OpenCV {cv2.__version__})"
    )
    _TINT: ClassVar[np.ndarray] = np.array([1.07, 0.89, 0.69], dtype=np.float32)

    def __post_init__(self) -> None:
        for name in ("sepia", "fade", "blur", "grain", "scratches", "dust", "noise"):
            _check_strength(name, getattr(self, name))
        if not 0.25 <= self.scratch_width <= 8.0:
            raise InvalidOptionError(
                f"scratch_width must be between 0.25 and 8, got {self.scratch_width}."
            )
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 100:
            raise InvalidOptionError(
                f"jpeg_quality must be 1..100 or None, got {self.jpeg_quality}."
            )

    def _degrade(self, rgb: np.ndarray, rngs: list[np.random.Generator]) -> _Degraded:
        grain_rng, scratch_rng, dust_rng, noise_rng = rngs
        image = self._tone(rgb)
        if self.blur > 0:
            image, _ = _gaussian_blur(image, 2.0 * self.blur)
        image = self._add_grain(image, grain_rng)
        if self.noise > 0:
            colour_noise = noise_rng.normal(0.0, 0.1 * self.noise, image.shape)
            image = np.clip(image + colour_noise.astype(np.float32), 0.0, 1.0)
        mask = np.zeros(rgb.shape[:2], bool)
        count = round(12 * self.scratches)
        scratches = _draw_scratches(image, mask, scratch_rng, count, self.scratch_width)
        specks = round(0.0006 * self.dust * rgb.shape[0] * rgb.shape[1])
        _draw_dust(image, mask, dust_rng, specks)
        image = quantize(image)
        if self.jpeg_quality is not None:
            image = _jpeg(image, self.jpeg_quality)
        drawn = {"scratches": scratches, "dust_specks": specks, "mask_coverage": float(mask.mean())}
        return image, rgb, mask, drawn

    def _tone(self, rgb: np.ndarray) -> np.ndarray:
        toned = np.clip((rgb @ _BT601)[:, :, None] * self._TINT, 0.0, 1.0)
        image = (1 - self.sepia) * rgb + self.sepia * toned
        black, white = 0.3 * self.fade, 1.0 - 0.15 * self.fade
        return (black + (white - black) * image).astype(np.float32)

    def _add_grain(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.grain == 0:
            return image
        noise = rng.normal(0.0, 0.12 * self.grain, image.shape[:2]).astype(np.float32)
        noise, _ = _gaussian_blur(noise, 0.6)
        return np.clip(image + noise[:, :, None], 0.0, 1.0)


def _damage_value(rng: np.random.Generator, bright_probability: float) -> float:
    if rng.random() < bright_probability:
        return float(rng.uniform(0.82, 1.0))
    return float(rng.uniform(0.0, 0.18))


def _draw_scratches(
    image: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    count: int,
    width_factor: float = 1.0,
) -> int:
    height, width = mask.shape
    short = min(height, width)
    for _ in range(count):
        vertical = rng.random() < 0.75
        heading = np.pi / 2 + rng.normal(0, 0.08) if vertical else rng.uniform(0, np.pi)
        length = rng.uniform(0.3, 1.0) * (height if vertical else short)
        steps = 24
        point = np.array([rng.uniform(0, width), rng.uniform(0, height)])
        points = [point]
        for _ in range(steps):
            heading += rng.normal(0, 0.06)
            point = point + np.array([np.cos(heading), np.sin(heading)]) * (length / steps)
            points.append(point)
        layer = np.zeros((height, width), np.uint8)
        thickness = max(1, round(rng.uniform(0.6, 1.6) * width_factor * short / 512))
        cv2.polylines(layer, [np.round(points).astype(np.int32)], False, 1, thickness)
        _stamp(image, mask, layer, _damage_value(rng, 0.7))
    return count


def _draw_dust(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, count: int) -> None:
    height, width = mask.shape
    largest = max(1.0, min(height, width) / 150)
    for _ in range(count):
        layer = np.zeros((height, width), np.uint8)
        centre = (int(rng.integers(width)), int(rng.integers(height)))
        axes = (max(1, round(rng.uniform(0.5, largest))), max(1, round(rng.uniform(0.5, largest))))
        cv2.ellipse(layer, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        _stamp(image, mask, layer, _damage_value(rng, 0.5))


def _stamp(image: np.ndarray, mask: np.ndarray, layer: np.ndarray, value: float) -> None:
    drawn = layer.astype(bool)
    image[drawn] = np.float32(value)
    mask |= drawn


# ---------------------------------------------------------------- the table


class DegradationRegistry(NamedTable[Degradation]):
    """An immutable table of degradation rows keyed by name; refuses duplicates."""

    kind = "degradation"
    error = UnknownDegradationError

    def __init__(self, rows: Iterable[Degradation]) -> None:
        super().__init__(rows, key=lambda row: row.name)


DEGRADATIONS = DegradationRegistry(
    (
        Bicubic(name="bicubic_x2", scale=2),
        Bicubic(name="bicubic_x3", scale=3),
        Bicubic(name="bicubic_x4", scale=4),
        RealWorld(name="realworld"),
        Grayscale(name="grayscale"),
        RandomMask(name="random_mask"),
        OldPhoto(name="old_photo"),
        OldPhoto(name="old_photo_unscratched", scratches=0.0, dust=0.0, noise=0.2),
        OldPhoto(name="old_photo_heavy", scratches=1.0, dust=1.0, scratch_width=2.5, noise=0.3),
    )
)


def create_degradation(name: str, **params: Any) -> Degradation:
    """The row called `name`, with some settings (or `seed`) changed and validated."""
    row = DEGRADATIONS.get(name)
    allowed = [f.name for f in dataclasses.fields(row) if f.name != "name"]
    for key in params:
        if key not in allowed:
            raise InvalidOptionError(
                f"{name} has no setting {key!r}.{did_you_mean(key, allowed)} "
                f"Settings: {', '.join(allowed)}."
            )
        if key in row.fixed and params[key] != getattr(row, key):
            siblings = [r.name for r in DEGRADATIONS if type(r) is type(row)]
            raise InvalidOptionError(
                f"{key} is part of what {name} means; pick another row: {', '.join(siblings)}."
            )
    tuples = {k: tuple(v) for k, v in params.items() if isinstance(v, list)}
    return dataclasses.replace(row, **{**params, **tuples})
