"""Reading the weights out of a TorchScript archive without loading its code.

``torch.jit.load`` compiles and runs the archive's code; ``torch.load(weights_only=True)``
refuses TorchScript outright. Some official releases exist only as TorchScript (IOPaint's
``big-lama.pt``), so this reads the archive as the data it is: ``data.pkl`` is unpickled
with an allowlist — TorchScript module classes become inert records of their attributes,
tensors are rebuilt from the raw ``data/<key>`` entries — and the tensors are collected
under their attribute paths, which gives the keys ``torch.jit.load(...).state_dict()``
would. No ``code/`` entry is ever read.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from pipelines.errors import ModelUnavailableError

StateDict = dict[str, torch.Tensor]

_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class ScriptRecord:
    """What a TorchScript class instance unpickles to: its attributes, nothing callable."""

    def __init__(self, qualified_name: str) -> None:
        self.qualified_name = qualified_name
        self.attributes: dict[str, Any] = {}

    def __setstate__(self, state: object) -> None:
        if isinstance(state, dict):
            self.attributes = state


def _record_class(qualified_name: str) -> type:
    def create(cls: type) -> ScriptRecord:
        return ScriptRecord(qualified_name)

    return type("Record", (ScriptRecord,), {"__new__": create})


def _rebuild_tensor(
    storage: torch.Tensor,
    offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool = False,
    hooks: object = None,
    metadata: object = None,
) -> torch.Tensor:
    return torch.as_strided(storage, size, stride, offset).clone()


class _ArchiveUnpickler(pickle.Unpickler):
    def __init__(self, archive: zipfile.ZipFile, prefix: str, data: bytes) -> None:
        import io

        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._prefix = prefix

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return _record_class(f"{module}.{name}")
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in _DTYPES:
            return name
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        kind, storage_type, key, _location, numel = pid
        if kind != "storage" or storage_type not in _DTYPES:
            raise pickle.UnpicklingError(f"unexpected persistent id {kind!r}")
        raw = bytearray(self._archive.read(f"{self._prefix}data/{key}"))
        dtype = _DTYPES[storage_type]
        if not raw:
            return torch.empty(0, dtype=dtype)
        return torch.frombuffer(raw, dtype=dtype)[:numel]


def is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip holding ``constants.pkl``)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def read_state_dict(path: Path) -> StateDict:
    """The parameters and buffers of a TorchScript archive, keyed like ``state_dict()``."""
    try:
        with zipfile.ZipFile(path) as archive:
            data_name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
            prefix = data_name.removesuffix("data.pkl")
            root = _ArchiveUnpickler(archive, prefix, archive.read(data_name)).load()
    except StopIteration:
        raise ModelUnavailableError(f"{path.name} is not a TorchScript archive.") from None
    except pickle.UnpicklingError as error:
        raise ModelUnavailableError(
            f"{path.name} holds more than weights ({error}); we refuse to load it."
        ) from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, ValueError, RuntimeError) as error:
        raise ModelUnavailableError(
            f"{path.name} is truncated or corrupt and cannot be read ({error}); download it again."
        ) from None
    tensors: StateDict = {}
    _collect(root, "", tensors)
    if not tensors:
        raise ModelUnavailableError(f"{path.name} holds no model weights (no tensors found).")
    return tensors


def _collect(node: object, prefix: str, out: StateDict) -> None:
    if not isinstance(node, ScriptRecord):
        return
    for name, value in node.attributes.items():
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
        else:
            _collect(value, f"{prefix}{name}.", out)
