"""Running any spandrel model: device and precision choice, tiling plan, OOM retry.

Every torch model runs through ``TorchRestorer``: the image stays a CPU numpy array,
``pipelines.tiling.run_tiled`` cuts it into tiles with context padding, and only
the current tile is moved to the device, so a huge image never has to fit on the
GPU. When the device runs out of memory the whole image is run again with tiles
of half the edge, down to ``MIN_TILE``.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import spandrel
import torch

from pipelines import tiling
from pipelines.backends.base import ProgressFn, no_progress
from pipelines.errors import InputImageError, InvalidOptionError, RestorationError

DEVICE_ENV = "RESTORATION_DEVICE"
PRECISION_ENV = "RESTORATION_PRECISION"
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
MIN_TILE = 16
CPU_BUDGET_CAP = 4 * 1024**3
"""Largest tile memory on the CPU: bigger tiles are no faster there, and smaller ones
leave RAM for the full-size output and for concurrent requests."""

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class DeviceMemoryError(RestorationError):
    """The device ran out of memory even with the smallest tiles (or a model that can't tile)."""


class Net(Protocol):
    """A tile network: NCHW RGB in [0, 1] on the model's device and dtype, the same out."""

    def __call__(self, image: torch.Tensor) -> torch.Tensor: ...


# ---------------------------------------------------------------- device and precision


def choose_device(requested: str | None = None) -> torch.device:
    """The device to run on: ``requested``, else ``$RESTORATION_DEVICE``, else the best here.

    ``auto`` (the default) picks cuda, then mps, then cpu. Asking for a device
    this machine lacks raises ``InvalidOptionError``.
    """
    setting = requested or os.environ.get(DEVICE_ENV, "") or "auto"
    mps = getattr(torch.backends, "mps", None)
    return parse_device(
        setting,
        cuda_count=torch.cuda.device_count() if torch.cuda.is_available() else 0,
        mps=bool(mps and mps.is_available()),
    )


def parse_device(setting: str, *, cuda_count: int, mps: bool) -> torch.device:
    """``setting`` (auto/cpu/cuda/cuda:N/mps) as a device available here."""
    setting = setting.strip().lower()
    if setting == "auto":
        return torch.device("cuda:0" if cuda_count else "mps" if mps else "cpu")
    try:
        device = torch.device(setting)
    except (RuntimeError, ValueError):
        raise InvalidOptionError(
            f"Unknown device {setting!r}; use auto, cpu, cuda, cuda:N or mps."
        ) from None
    if device.type == "cuda":
        index = device.index or 0
        if index >= cuda_count:
            seen = f"{cuda_count} CUDA GPU(s)" if cuda_count else "no CUDA GPU"
            raise InvalidOptionError(
                f"Device {setting!r} was asked for, but PyTorch sees {seen} here; "
                f"use cpu (set {DEVICE_ENV}=cpu) or auto."
            )
        return torch.device("cuda", index)
    if device.type == "mps" and not mps:
        raise InvalidOptionError(
            f"Device 'mps' was asked for, but Apple's Metal backend is not available here; "
            f"use cpu (set {DEVICE_ENV}=cpu) or auto."
        )
    if device.type not in ("cpu", "mps"):
        raise InvalidOptionError(f"Device {setting!r} is not supported; use cpu, cuda or mps.")
    return device


def precision_setting(requested: str | None = None) -> str:
    """``requested``, else ``$RESTORATION_PRECISION``, else ``auto``; validated."""
    setting = (requested or os.environ.get(PRECISION_ENV, "") or "auto").strip().lower()
    if setting not in PRECISIONS:
        raise InvalidOptionError(
            f"Unknown precision {setting!r}; use one of {', '.join(PRECISIONS)}."
        )
    return setting


def choose_dtype(
    device_type: str, setting: str, *, half: bool, bf16: bool, bf16_hardware: bool = True
) -> torch.dtype:
    """The compute dtype for a model on a device.

    ``auto``: fp16 on CUDA and MPS where the model supports it (spandrel's
    ``supports_half``), else bf16 on CUDA where model and GPU support it, else
    fp32; always fp32 on the CPU, where half precision is slower. An explicit
    fp16/bf16 the model does not support falls back to fp32 (never to a dtype
    the model may produce garbage in).
    """
    if setting == "fp16":
        return torch.float16 if half else torch.float32
    if setting == "bf16":
        return torch.bfloat16 if bf16 else torch.float32
    if setting == "fp32" or device_type == "cpu":
        return torch.float32
    if half:
        return torch.float16
    if device_type == "cuda" and bf16 and bf16_hardware:
        return torch.bfloat16
    return torch.float32


def dtype_for(
    device: torch.device, setting: str, descriptor: spandrel.ModelDescriptor
) -> torch.dtype:
    bf16_hardware = device.type != "cuda" or torch.cuda.is_bf16_supported()
    return choose_dtype(
        device.type,
        setting,
        half=descriptor.supports_half,
        bf16=descriptor.supports_bfloat16,
        bf16_hardware=bf16_hardware,
    )


def memory_budget(device: torch.device) -> int:
    """Bytes one tile's inference may take on ``device``: most of what is free now."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        # Memory PyTorch has cached but not handed out is free for us too.
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int((free + cached) * 0.8)
    if device.type == "mps":
        limit = torch.mps.recommended_max_memory()
        return int(max(limit - torch.mps.driver_allocated_memory(), limit // 4) * 0.6)
    return int(min(available_ram() * 0.5, CPU_BUDGET_CAP))


def available_ram() -> int:
    """MemAvailable from /proc/meminfo (Linux), else free physical pages, else 4 GiB."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 * 1024**3


# ---------------------------------------------------------------- tiling plan


@dataclass(frozen=True)
class Footprint:
    """Peak fp32 inference memory per padded input pixel: ``base + per_output * scale**2``.

    Measured on the CPU as the growth of peak RSS between 64 px and 128 px inputs,
    at the released model sizes: ESRGAN (23 blocks) x4 13.3 KB/px and x2
    (pixel-unshuffle) 2.6; Compact (32 convs) x4 1.1; SwinIR-M x4 18.8 and x2
    13.3; Real-CUGAN x2 6.5 and x4 8.4; SPAN x4 6.2. The table keeps about 1.5x
    headroom over those; HAT, DAT and Swin2SR are estimates from SwinIR. CUDA
    kernels need workspace of their own: a wrong estimate there costs one
    out-of-memory retry, not a failure.
    """

    base: float
    per_output: float

    def bytes_per_pixel(self, scale: int, dtype: torch.dtype) -> float:
        return (self.base + self.per_output * scale**2) * dtype.itemsize / 4


@dataclass(frozen=True)
class ArchTiling:
    """Per-architecture context padding (input px) and memory footprint."""

    pad: int
    footprint: Footprint


ARCH_TILING: dict[str, ArchTiling] = {
    # Real-ESRGAN pads 10 px; 24 covers most of a trained RRDB's effective field.
    "ESRGAN": ArchTiling(24, Footprint(3_000, 1_100)),
    # Compact with 16 convs sees 18 px each side: 20 px makes its tiles exact.
    "Compact": ArchTiling(20, Footprint(1_000, 60)),
    "SPAN": ArchTiling(16, Footprint(4_500, 300)),
    # Its squeeze-excitation blocks average over the whole tile: no pad makes it exact.
    "RealCUGAN": ArchTiling(32, Footprint(9_000, 250)),
    "SwinIR": ArchTiling(32, Footprint(17_000, 700)),
    "Swin2SR": ArchTiling(32, Footprint(20_000, 700)),
    "HAT": ArchTiling(32, Footprint(30_000, 700)),
    "DAT": ArchTiling(32, Footprint(25_000, 700)),
}
DEFAULT_TILING = ArchTiling(32, Footprint(16_000, 1_000))


@dataclass(frozen=True)
class TilePlan:
    """How one loaded model is tiled.

    ``align`` is what tile edges and padding are multiples of: spandrel's
    ``size_requirements.multiple_of`` and, for window-attention models, the
    window size, so every tile's attention windows line up with the whole
    image's. ``whole`` models (spandrel ``ModelTiling.INTERNAL`` and face
    models, which take one aligned face crop) always see the entire image,
    unpadded; ``max_side`` (0 = none) is the largest image they accept.
    """

    pad: int
    align: int
    bytes_per_pixel: float
    whole: bool = False
    discouraged: bool = False
    max_side: int = 0


def plan_for(descriptor: spandrel.ModelDescriptor, dtype: torch.dtype) -> TilePlan:
    """The tiling plan of a loaded model at a compute dtype."""
    arch = ARCH_TILING.get(descriptor.architecture.id, DEFAULT_TILING)
    req = descriptor.size_requirements
    align = math.lcm(req.multiple_of, _window_size(descriptor.model))
    bytes_per_pixel = arch.footprint.bytes_per_pixel(descriptor.scale, dtype)
    face = descriptor.purpose == "FaceSR"
    if face or descriptor.tiling == spandrel.ModelTiling.INTERNAL:
        max_side = max(req.minimum, req.multiple_of if req.square else 0) if face else 0
        return TilePlan(0, align, bytes_per_pixel, whole=True, max_side=max_side)
    pad = math.ceil(arch.pad / align) * align
    discouraged = descriptor.tiling == spandrel.ModelTiling.DISCOURAGED
    return TilePlan(pad, align, bytes_per_pixel, discouraged=discouraged)


def _window_size(model: torch.nn.Module) -> int:
    size = getattr(model, "window_size", 1)
    if isinstance(size, (tuple, list)):
        size = max(size)
    return size if isinstance(size, int) and size > 0 else 1


def auto_tile(plan: TilePlan, height: int, width: int, budget: float) -> int:
    """The tile edge for an image when the caller leaves it to us (0 = whole image)."""
    if plan.whole:
        return 0
    minimum = max(MIN_TILE, plan.align)
    if plan.discouraged:
        # Tiles change what a global model sees: keep them as large as memory allows.
        minimum = max(minimum, 64)
    return tiling.choose_tile(
        height,
        width,
        pad=plan.pad,
        bytes_per_pixel=plan.bytes_per_pixel,
        budget_bytes=budget,
        align=plan.align,
        minimum=minimum,
    )


def smaller_tile(edge: int, height: int, width: int, align: int) -> int | None:
    """The next tile edge after an out-of-memory with ``edge`` (0 = whole), or None at the floor."""
    # A tile larger than the image is the whole image: halve what actually ran.
    current = min(edge, max(height, width)) if edge > 0 else max(height, width)
    half = current // 2
    half -= half % align
    return half if half >= max(MIN_TILE, align) else None


# ---------------------------------------------------------------- the restorer


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A spandrel model on its device and dtype, shared by every restorer that uses it.

    Calling it runs one tile. ``lock`` serializes architectures whose forward
    writes to the module (see ``NOT_REENTRANT``); the rest run concurrently.
    """

    descriptor: spandrel.ImageModelDescriptor
    device: torch.device
    dtype: torch.dtype
    nbytes: int
    lock: threading.Lock | None = field(default=None, repr=False)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if self.lock is None:
            return self.descriptor(image)
        with self.lock:
            return self.descriptor(image)


NOT_REENTRANT = frozenset(
    {"CRAFT", "DDColor", "DeOldify", "HVICIDNet", "IPT", "M3SNet", "MAT", "SPAN"}
)
"""Architectures whose forward stores per-call values on the module (found by reading
spandrel's sources: ``self.h = ...``, feature hooks, SPAN's re-parameterisation; DeOldify's
U-Net keeps its skip activations in forward hooks)."""


def place(
    descriptor: spandrel.ImageModelDescriptor, device: torch.device, setting: str
) -> LoadedModel:
    """Move a CPU-built model to ``device`` at the dtype ``setting`` resolves to."""
    dtype = dtype_for(device, setting, descriptor)
    descriptor.to(device=device, dtype=dtype).eval()
    tensors = [*descriptor.model.parameters(), *descriptor.model.buffers()]
    nbytes = sum(t.numel() * t.element_size() for t in tensors)
    lock = threading.Lock() if descriptor.architecture.id in NOT_REENTRANT else None
    return LoadedModel(descriptor, device, dtype, nbytes, lock)


@dataclass(frozen=True)
class TorchRestorer:
    """A ``Restorer`` for one loaded torch model. Holds no per-call state.

    ``net`` runs one NCHW tile (the shared ``LoadedModel``); ``plan`` says how to
    tile for it.
    """

    net: Net
    scale: int
    architecture: str
    device: torch.device
    dtype: torch.dtype
    plan: TilePlan
    tags: tuple[str, ...] = ()
    name: str = ""

    def describe(self) -> str:
        """One line for the UI, e.g. ``ESRGAN x4 (64nf, 23nb) · cuda:0 · float16``."""
        tags = f" ({', '.join(self.tags)})" if self.tags else ""
        dtype = str(self.dtype).removeprefix("torch.")
        return f"{self.architecture} x{self.scale}{tags} · {self.device} · {dtype}"

    def __call__(
        self, rgb: np.ndarray, *, tile: int = 0, progress: ProgressFn = no_progress
    ) -> np.ndarray:
        image = _checked(rgb, self.plan)
        height, width = image.shape[:2]
        edge = self.tile_for(height, width, tile)
        while True:
            try:
                return self._run(image, edge, progress)
            except (MemoryError, RuntimeError) as error:
                if not is_out_of_memory(error):
                    raise
            # Outside the except block, so the failed tile's tensors are released.
            release_cached_memory(self.device)
            edge = self._after_oom(edge, height, width, progress)

    def tile_for(self, height: int, width: int, tile: int = 0) -> int:
        """The tile edge a call with ``tile`` starts with on this image (0 = whole image)."""
        if tile < 0 or 0 < tile < MIN_TILE:
            raise InvalidOptionError(f"Tile size must be 0 (automatic) or at least {MIN_TILE} px.")
        if self.plan.whole:
            return 0
        if tile:
            return tile + tiling.align_extra(tile, self.plan.align)
        return auto_tile(self.plan, height, width, memory_budget(self.device))

    def _run(self, image: np.ndarray, edge: int, progress: ProgressFn) -> np.ndarray:
        out = tiling.run_tiled(
            image,
            self._run_tile,
            scale=self.scale,
            tile=edge,
            pad=self.plan.pad,
            mode="reflect",
            align=self.plan.align,
            progress=progress,
        )
        return np.clip(out, 0.0, 1.0, out=out)

    def _run_tile(self, tile: np.ndarray) -> np.ndarray:
        chw = torch.from_numpy(np.ascontiguousarray(tile.transpose(2, 0, 1)))
        with torch.inference_mode():
            batch = chw.unsqueeze(0).to(device=self.device, dtype=self.dtype)
            out = self.net(batch)
            return out[0].permute(1, 2, 0).float().cpu().numpy()

    def _after_oom(self, edge: int, height: int, width: int, progress: ProgressFn) -> int:
        size = f"{edge}x{edge} tiles" if edge else f"the whole {width}x{height} image"
        name = f"{self.name or self.architecture} ran out of memory on {self.device}"
        advice = f"use a smaller image, free memory, or another device ({DEVICE_ENV}=cpu)"
        if self.plan.whole:
            raise DeviceMemoryError(
                f"{name} with {size}, and this model cannot be tiled; {advice}."
            )
        smaller = smaller_tile(edge, height, width, self.plan.align)
        if smaller is None:
            raise DeviceMemoryError(f"{name} even with {size}; {advice}.")
        progress(0.0, f"out of memory with {size}; retrying with {smaller}x{smaller} tiles")
        return smaller


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA/MPS out-of-memory, or a failed CPU allocation."""
    if isinstance(error, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    message = str(error).lower()
    return "out of memory" in message or "can't allocate memory" in message


def release_cached_memory(device: torch.device) -> None:
    """Hand the allocator's cached blocks back, so the retry starts from a clean device."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def _checked(rgb: np.ndarray, plan: TilePlan) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", type(rgb).__name__)
        raise InputImageError(f"Expected an RGB image of shape (H, W, 3), got {shape}.")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InputImageError("The image is empty.")
    if plan.max_side and max(rgb.shape[:2]) > plan.max_side:
        raise InputImageError(
            f"This face model restores one aligned face crop of at most {plan.max_side}x"
            f"{plan.max_side} px, not a {rgb.shape[1]}x{rgb.shape[0]} image; crop and align "
            "the face first."
        )
    return rgb.astype(np.float32, copy=False)
