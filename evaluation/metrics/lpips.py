"""LPIPS (AlexNet, v0.1) through pyiqa's implementation, from verified local files only.

Two files are needed, both where pyiqa and torchvision look for them in the torch hub cache
(``$TORCH_HOME/hub``, by default ``~/.cache/torch/hub``):

- ``checkpoints/alexnet-owt-7be5be79.pth``: torchvision's ImageNet AlexNet (IMAGENET1K_V1);
- ``pyiqa/LPIPS_v0.1_alex-df73285e.pth``: the LPIPS v0.1 linear layers, the same bytes as
  ``lpips/weights/v0.1/alex.pth`` in the PyPI ``lpips`` 0.1.4 wheel.

Nothing is downloaded here: a missing or altered file makes the metric unavailable, with a
message that names the files, where they go and the command that fetches them.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class WeightFile:
    folder: str  # under the torch hub directory
    filename: str
    size: int
    sha256: str
    what: str


ALEXNET = WeightFile(
    folder="checkpoints",
    filename="alexnet-owt-7be5be79.pth",
    size=244_408_911,
    sha256="7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
    what="torchvision's ImageNet AlexNet (IMAGENET1K_V1)",
)
LINEAR = WeightFile(
    folder="pyiqa",
    filename="LPIPS_v0.1_alex-df73285e.pth",
    size=6_009,
    sha256="df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
    what="the LPIPS v0.1 AlexNet linear layers",
)
FILES = (ALEXNET, LINEAR)
FETCH_COMMAND = "python -c \"import pyiqa; pyiqa.create_metric('lpips', device='cpu')\""
_PACKAGES = ("torch", "torchvision", "pyiqa")


class LpipsFilesError(Exception):
    """Missing, wrong-size or altered LPIPS files; the message says what to do."""


def torch_hub_dir() -> Path:
    """torch.hub.get_dir(), without importing torch when it is not loaded yet."""
    if "torch" in sys.modules:
        return Path(sys.modules["torch"].hub.get_dir())
    home = os.environ.get("TORCH_HOME")
    if not home:
        cache = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
        home = os.path.join(cache, "torch")
    return Path(os.path.expanduser(home)) / "hub"


def path_of(file: WeightFile) -> Path:
    return torch_hub_dir() / file.folder / file.filename


def _fetch_advice() -> str:
    linear = path_of(LINEAR)
    return (
        f"With internet access, `{FETCH_COMMAND}` downloads both to those places. The linear "
        "layers also ship in the PyPI lpips wheel: `pip download --no-deps lpips==0.1.4` and "
        f"copy lpips/weights/v0.1/alex.pth out of the wheel (a zip) to {linear}."
    )


def problems() -> list[str]:
    """What stops LPIPS from running here (cheap: sizes only, no hashing)."""
    found = [f"the Python package {name} is not installed" for name in _PACKAGES if not _has(name)]
    for file in FILES:
        path = path_of(file)
        if not path.is_file():
            found.append(f"{path} is missing ({file.what}, {file.size:,} bytes)")
        elif path.stat().st_size != file.size:
            found.append(f"{path} has {path.stat().st_size:,} bytes, expected {file.size:,}")
    return found


def _has(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(package) is not None


def unavailable_message(found: list[str]) -> str:
    return f"LPIPS (AlexNet, v0.1) is unavailable: {'; '.join(found)}. {_fetch_advice()}"


@lru_cache(maxsize=8)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def verify(file: WeightFile) -> str:
    """The file's sha256 if it is the pinned one; raises LpipsFilesError otherwise."""
    path = path_of(file)
    stat = path.stat()
    digest = _sha256(path, stat.st_size, stat.st_mtime_ns)
    if digest != file.sha256:
        raise LpipsFilesError(
            f"LPIPS (AlexNet, v0.1) is unavailable: {path} has sha256 {digest}, expected "
            f"{file.sha256} ({file.what}); delete it and fetch it again. {_fetch_advice()}"
        )
    return digest


def build() -> tuple[Callable[[np.ndarray, np.ndarray], float], dict[str, Any]]:
    """The LPIPS function and what to record about it; raises LpipsFilesError when unusable."""
    found = problems()
    if found:
        raise LpipsFilesError(unavailable_message(found))
    for file in FILES:
        verify(file)
    net = _load_network()
    return _scorer(net), _details()


def _load_network() -> Any:
    import torch
    from pyiqa.archs.lpips_arch import LPIPS

    # pretrained=False: pyiqa would fetch the linear layers from a URL; AlexNet itself comes
    # from the verified hub-cache file through torchvision.
    net = LPIPS(pretrained=False, net="alex", version="0.1")
    state = torch.load(path_of(LINEAR), map_location="cpu", weights_only=True)
    wanted = {key for key in net.state_dict() if re.match(r"lin\d+\.", key)}
    _, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or not wanted <= set(state):
        raise LpipsFilesError(
            f"{path_of(LINEAR)} does not hold the LPIPS AlexNet linear layers "
            f"(keys {sorted(state)})."
        )
    return net.eval()


def _scorer(net: Any) -> Callable[[np.ndarray, np.ndarray], float]:
    import torch

    def lpips(output: np.ndarray, reference: np.ndarray) -> float:
        def tensor(rgb: np.ndarray) -> Any:
            return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]

        with torch.inference_mode():
            return float(net(tensor(output), tensor(reference)).item())

    return lpips


def _details() -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "libraries": {name: version(name) for name in _PACKAGES},
        "weights": {file.filename: file.sha256 for file in FILES},
    }
