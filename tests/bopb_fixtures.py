"""Synthetic random-weight BOPB checkpoints, in the official file layout and format.

    write_bopb_checkpoints(tmp_path)                      # every file, official shapes
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))        # the weights manager looks there
    bopb_checkpoints.clear_cache()                        # forget nets loaded from elsewhere

The files are what the release archives unzip to, under ``bopb/Global`` and
``bopb/Face_Enhancement`` of the weights folder: plain state dicts for the VAEs and the
mapping networks, a training snapshot (``{"epoch", "model_state", "optimizer_state"}``)
for the scratch detector, and for the face generator the keys spectral norm leaves in a
state dict (``weight_orig``, ``weight_u``, ``weight_v``) and the batch-norm running
statistics. ``face_width`` (official: 64) shrinks the face generator, which takes
about 20 s per face on a CPU at full width; the loader reads the width off the file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from pipelines.backends.torch.bopb import checkpoints as layout
from pipelines.backends.torch.bopb.detection import ScratchUNet
from pipelines.backends.torch.bopb.face_net import FaceGenerator
from pipelines.backends.torch.bopb.global_nets import (
    VAE,
    PatchAttentionMapping,
    QualityMapping,
    ScratchMapping,
)

WEIGHTS_ENV = "RESTORATION_WEIGHTS_DIR"
FAST_FACE_WIDTH = 16


def write_bopb_checkpoints(
    root: Path, *, face_width: int = 64, with_hr: bool = True, seed: int = 0
) -> None:
    """Write every BOPB checkpoint under ``root`` (the weights folder) with random weights;
    ``with_hr=False`` leaves out the optional ``--HR`` files (patch-attention mapping,
    512 px face generator)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        files = {
            layout.DETECTION: _detection_snapshot(),
            layout.VAE_A: VAE().state_dict(),
            layout.VAE_B_QUALITY: VAE().state_dict(),
            layout.VAE_B_SCRATCH: VAE().state_dict(),
            layout.MAPPING_QUALITY: QualityMapping().state_dict(),
            layout.MAPPING_SCRATCH: ScratchMapping().state_dict(),
        }
        if with_hr:
            files[layout.MAPPING_PATCH_ATTENTION] = PatchAttentionMapping().state_dict()
        faces = {
            layout.FACE_GENERATOR: _official_face_state(FaceGenerator(face_width).state_dict())
        }
        if with_hr:
            faces[layout.FACE_GENERATOR_512] = _official_face_state(
                FaceGenerator(face_width).state_dict()
            )
    for member, content in files.items():
        _save(root / layout.GLOBAL_ARCHIVE_DIR / member, content)
    for member, content in faces.items():
        _save(root / layout.FACE_ARCHIVE_DIR / member, content)


@contextlib.contextmanager
def using_bopb_weights(root: Path) -> Iterator[Path]:
    """Point the weights manager at ``root`` (on the CPU) and forget nets loaded elsewhere."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(WEIGHTS_ENV, str(root))
        patch.setenv("RESTORATION_DEVICE", "cpu")
        layout.clear_cache()
        yield root
    layout.clear_cache()


def checkpoint_paths(root: Path) -> list[Path]:
    """Every file ``write_bopb_checkpoints`` writes."""
    members = [
        layout.DETECTION,
        layout.VAE_A,
        layout.VAE_B_QUALITY,
        layout.VAE_B_SCRATCH,
        layout.MAPPING_QUALITY,
        layout.MAPPING_SCRATCH,
        layout.MAPPING_PATCH_ATTENTION,
    ]
    paths = [root / layout.GLOBAL_ARCHIVE_DIR / m for m in members]
    faces = [layout.FACE_GENERATOR, layout.FACE_GENERATOR_512]
    return [*paths, *(root / layout.FACE_ARCHIVE_DIR / m for m in faces)]


def _save(path: Path, content: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(content, path)


def _detection_snapshot() -> dict[str, object]:
    net = ScratchUNet()
    for name, buffer in net.named_buffers():
        if name.endswith("running_var"):
            buffer.uniform_(0.5, 2.0)
        elif name.endswith("running_mean"):
            buffer.normal_(0.0, 0.1)
    optimizer = {"state": {}, "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "params": [0]}]}
    return {"epoch": 100, "model_state": net.state_dict(), "optimizer_state": optimizer}


def _official_face_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our plain-conv face generator's weights as spectral norm stores them, plus
    random batch-norm statistics."""
    official: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        is_spectral = key.endswith((".conv_0.weight", ".conv_1.weight", ".conv_s.weight"))
        if is_spectral:
            matrix = value.reshape(value.shape[0], -1)
            u = F.normalize(torch.randn(matrix.shape[0]), dim=0)
            official[key + "_orig"] = value * 3.0
            official[key + "_u"] = u
            official[key + "_v"] = F.normalize(matrix.T @ u, dim=0)
        elif key.endswith("running_var"):
            official[key] = torch.empty_like(value).uniform_(0.5, 2.0)
        else:
            official[key] = value
    return official
