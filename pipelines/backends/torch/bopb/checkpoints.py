"""The official BOPB checkpoint files: where they live, reading them safely, building nets.

The weights ship as two release archives, unzipped by hand into the weights cache in
the official layout (``Global/`` and ``Face_Enhancement/`` under ``bopb/``)::

    bopb/Global/checkpoints/detection/FT_Epoch_latest.pt
    bopb/Global/checkpoints/restoration/VAE_A_quality/latest_net_G.pth
    bopb/Global/checkpoints/restoration/{VAE_B_quality,VAE_B_scratch}/latest_net_G.pth
    bopb/Global/checkpoints/restoration/{mapping_quality,mapping_scratch}/latest_net_mapping_net.pth
    bopb/Face_Enhancement/checkpoints/Setting_9_epoch_100/latest_net_G.pth

Files are read with ``torch.load(weights_only=True)`` (tensors and plain containers
only) and loaded strictly: every tensor the network needs must be there with its exact
shape, which is how a file without a published checksum is checked. Tensors the
network does not use are ignored, as the official ``load_network`` does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipelines import weights
from pipelines.backends.torch import loader
from pipelines.backends.torch.bopb.detection import ScratchUNet
from pipelines.backends.torch.bopb.face_net import FaceGenerator, fold_spectral_norm
from pipelines.backends.torch.bopb.global_nets import (
    VAE,
    PatchAttentionMapping,
    QualityMapping,
    ScratchMapping,
)
from pipelines.backends.torch.cache import ModelCache, budget_from_env
from pipelines.errors import ModelUnavailableError
from pipelines.registry import Download, RemoteFile, lookup

FOLDER = "bopb"
"""The weights cache's sub-folder holding the official ``Global`` and ``Face_Enhancement``."""
GLOBAL_ARCHIVE_DIR = f"{FOLDER}/Global"
FACE_ARCHIVE_DIR = f"{FOLDER}/Face_Enhancement"

DETECTION = "checkpoints/detection/FT_Epoch_latest.pt"
VAE_A = "checkpoints/restoration/VAE_A_quality/latest_net_G.pth"
VAE_B_QUALITY = "checkpoints/restoration/VAE_B_quality/latest_net_G.pth"
VAE_B_SCRATCH = "checkpoints/restoration/VAE_B_scratch/latest_net_G.pth"
MAPPING_QUALITY = "checkpoints/restoration/mapping_quality/latest_net_mapping_net.pth"
MAPPING_SCRATCH = "checkpoints/restoration/mapping_scratch/latest_net_mapping_net.pth"
MAPPING_PATCH_ATTENTION = (
    "checkpoints/restoration/mapping_Patch_Attention/latest_net_mapping_net.pth"
)
FACE_GENERATOR = "checkpoints/Setting_9_epoch_100/latest_net_G.pth"
FACE_GENERATOR_512 = "checkpoints/FaceSR_512/latest_net_G.pth"

SCRATCH_CARD = "bopb-scratch-detection"
QUALITY_CARD = "bopb-restoration-quality"
SCRATCH_RESTORATION_CARD = "bopb-restoration-scratch"
FACE_CARD = "bopb-face-enhancement"
SCRATCH_HR_CARD = "bopb-restoration-scratch-hr"
FACE_512_CARD = "bopb-face-enhancement-512"
CARD_IDS = (
    SCRATCH_CARD,
    QUALITY_CARD,
    SCRATCH_RESTORATION_CARD,
    FACE_CARD,
    SCRATCH_HR_CARD,
    FACE_512_CARD,
)

StateDict = dict[str, torch.Tensor]


def _face_generator(state: StateDict, size: int = 256) -> nn.Module:
    """The face generator at the checkpoint's width (16 x base filters in its first conv)."""
    first = state.get("fc.weight")
    width = 64 if first is None else max(1, first.shape[0] // 16)
    return FaceGenerator(width, size)


_BUILDERS: dict[str, Callable[[StateDict], nn.Module]] = {
    DETECTION: lambda _: ScratchUNet(),
    VAE_A: lambda _: VAE(),
    VAE_B_QUALITY: lambda _: VAE(),
    VAE_B_SCRATCH: lambda _: VAE(),
    MAPPING_QUALITY: lambda _: QualityMapping(),
    MAPPING_SCRATCH: lambda _: ScratchMapping(),
    MAPPING_PATCH_ATTENTION: lambda _: PatchAttentionMapping(),
    FACE_GENERATOR: _face_generator,
    FACE_GENERATOR_512: lambda state: _face_generator(state, 512),
}


def needed_cards(with_scratches: bool, faces: bool) -> list[str]:
    """The card ids one restoration needs, in the order they run."""
    cards = [SCRATCH_CARD, SCRATCH_RESTORATION_CARD] if with_scratches else [QUALITY_CARD]
    return [*cards, FACE_CARD] if faces else cards


def present(card_id: str) -> bool:
    """Whether every file of a card is in the weights folder (optional extras)."""
    source = lookup(card_id).source
    files = source.files if isinstance(source, Download) else ()
    return all(weights.local_path(file).exists() for file in files)


def missing_sentence(card_ids: list[str]) -> str | None:
    """None when every file of these cards is here; else one sentence naming the missing
    files and the archives to unzip, each once."""
    missing: dict[str, RemoteFile] = {}
    for card_id in card_ids:
        source = lookup(card_id).source
        files = source.files if isinstance(source, Download) else ()
        for file in files:
            if not weights.local_path(file).exists():
                missing.setdefault(file.filename, file)
    if not missing:
        return None
    names = [file.member or file.filename for file in missing.values()]
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    steps = {
        file.url: f"download {file.url} and unzip it in {_unzip_folder(file)}"
        for file in missing.values()
    }
    return (
        f"Bringing Old Photos Back to Life needs {shown}: "
        + ", and ".join(steps.values())
        + " (no checksum is published for these release archives, so they are not "
        "downloaded automatically; each file is checked by a strict load instead)."
    )


def _unzip_folder(file: RemoteFile) -> str:
    return weights.local_path(file).as_posix().removesuffix("/" + file.member)


def file_path(card_id: str, member: str) -> Path:
    """The verified local path of one of a card's files (raises when it is missing)."""
    card = lookup(card_id)
    paths = weights.resolve(card)
    for path in paths:
        if path.as_posix().endswith(member):
            return path
    raise KeyError(f"{card_id} has no file {member}")


def read_checkpoint(path: Path) -> Mapping[str, Any]:
    """A checkpoint's top-level mapping, unpickled in weights-only mode (no code runs)."""
    content = loader.read_pickle(path)
    if not isinstance(content, Mapping):
        raise ModelUnavailableError(
            f"{path.name} holds no state dict (a {type(content).__name__})."
        )
    return content


def state_dict_for(member: str, content: Mapping[str, Any]) -> StateDict:
    """The network's tensors in a checkpoint, in the layout our modules use."""
    if member == DETECTION:  # the detection file is a training snapshot: weights + optimizer
        content = content.get("model_state", content)
        if not isinstance(content, Mapping):
            return {}
    state = {
        str(key).removeprefix("module."): value
        for key, value in content.items()
        if isinstance(value, torch.Tensor)
    }
    return fold_spectral_norm(state) if member in (FACE_GENERATOR, FACE_GENERATOR_512) else state


def build(card_id: str, member: str, path: Path) -> nn.Module:
    """The network a file holds, loaded strictly, in eval mode on the CPU."""
    state = state_dict_for(member, read_checkpoint(path))
    net = _BUILDERS[member](state)
    expected = net.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or wrong:
        key = (missing or wrong)[0]
        problem = "lacks" if missing else "has another shape for"
        raise ModelUnavailableError(
            f"{path} is not the official {lookup(card_id).title} checkpoint: it {problem} "
            f"{key} ({len(missing)} missing, {len(wrong)} of another shape); "
            "unzip it again from the official archive."
        )
    net.load_state_dict({k: state[k] for k in expected if k in state}, strict=False)
    return net.eval()


_cache_lock = threading.Lock()
_caches: list[ModelCache[nn.Module]] = []


def _cache() -> ModelCache[nn.Module]:
    with _cache_lock:
        if not _caches:
            _caches.append(ModelCache(budget_from_env()))
        return _caches[0]


def clear_cache() -> None:
    """Forget loaded networks (tests swap checkpoint folders)."""
    _cache().clear()


def cached(key: Hashable, load: Callable[[], nn.Module]) -> nn.Module:
    """A network from the shared memory-budgeted cache, loaded by ``load`` on a miss."""
    return _cache().get(key, load, _nbytes)


def network(card_id: str, member: str, device: torch.device) -> nn.Module:
    """A loaded network, cached by file (path, size, mtime) and device."""
    path = file_path(card_id, member)
    stat = path.stat()
    key = ("bopb", str(path.resolve()), stat.st_size, stat.st_mtime_ns, str(device))
    return cached(key, lambda: build(card_id, member, path).to(device))


def _nbytes(net: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*net.parameters(), *net.buffers()])
