"""The bundled Real-ESRGAN ncnn weights converted for spandrel, against the ncnn backend.

Each converted model runs in PyTorch (fp32, CPU) on a small natural image with the
ncnn backend's pre/post-processing (10 px reflect padding, ``10 * scale`` px cropped,
animevideov3 x2/x3's bicubic downscale) and must give the ncnn backend's output to
PSNR >= 40 dB (measured: > 130 dB). Also: the cache, spandrel's detection, and
corrupt or unexpected files being refused with a message naming them.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import spandrel
import torch
from safetensors.torch import load_file

from pipelines.backends import ncnn, ncnn_to_torch
from pipelines.backends.ncnn.realesrgan import PAD
from pipelines.errors import InvalidOptionError, ModelUnavailableError
from pipelines.registry import MODELS
from tests.conftest import natural_image

MIN_PSNR = 40.0
# card id, scale, spandrel architecture, the network's own scale, resize after it, blocks
CASES = [
    ("realesrgan-x4plus", 4, "ESRGAN", 4, 1.0, "23nb"),
    ("realesrgan-x4plus-anime", 4, "ESRGAN", 4, 1.0, "6nb"),
    ("realesr-animevideov3", 2, "Compact", 4, 0.5, "16nc"),
    ("realesr-animevideov3", 3, "Compact", 4, 0.75, "16nc"),
    ("realesr-animevideov3", 4, "Compact", 4, 1.0, "16nc"),
]
IDS = [f"{case[0]}-x{case[1]}" for case in CASES]
Loader = Callable[[str, int], spandrel.ImageModelDescriptor]


@pytest.fixture(scope="module")
def load_converted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loader]:
    """Loads a card's converted checkpoint (from a private cache) with spandrel, once."""
    loaded: dict[tuple[str, int], spandrel.ImageModelDescriptor] = {}

    def load(card_id: str, scale: int) -> spandrel.ImageModelDescriptor:
        if (card_id, scale) not in loaded:
            path = ncnn_to_torch.converted_checkpoint(MODELS.get(card_id), scale)
            descriptor = spandrel.ModelLoader().load_from_state_dict(load_file(path))
            assert isinstance(descriptor, spandrel.ImageModelDescriptor)
            loaded[card_id, scale] = descriptor.eval()
        return loaded[card_id, scale]

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RESTORATION_WEIGHTS_DIR", str(tmp_path_factory.mktemp("weights")))
        yield load


def run_converted(model: torch.nn.Module, rgb: np.ndarray, scale: int, factor: float) -> np.ndarray:
    """The ncnn backend's Real-ESRGAN processing, in PyTorch, as one tile."""
    batch = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    batch = torch.nn.functional.pad(batch, (PAD, PAD, PAD, PAD), mode="reflect")
    with torch.inference_mode():
        out = ncnn_to_torch.resize_output(model(batch), factor)
    crop = PAD * scale
    return out[0, :, crop:-crop, crop:-crop].clamp(0, 1).permute(1, 2, 0).numpy()


def float_psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("card_id", "scale", "arch", "net_scale", "factor", "blocks"), CASES, ids=IDS
)
def test_converted_matches_ncnn(
    load_converted: Loader,
    card_id: str,
    scale: int,
    arch: str,
    net_scale: int,
    factor: float,
    blocks: str,
) -> None:
    card = MODELS.get(card_id)
    rgb = np.asarray(natural_image(27, 21), dtype=np.float32) / 255  # odd sizes on purpose
    assert ncnn_to_torch.output_resize(card, scale) == factor
    ours = run_converted(load_converted(card_id, scale).model, rgb, scale, factor)
    reference = ncnn.load(card, scale, None)(rgb)
    assert ours.shape == reference.shape == (21 * scale, 27 * scale, 3)
    assert float_psnr(ours, reference) >= MIN_PSNR


@pytest.mark.parametrize(
    ("card_id", "scale", "arch", "net_scale", "factor", "blocks"), CASES, ids=IDS
)
def test_spandrel_detects_the_converted_dict(
    load_converted: Loader,
    card_id: str,
    scale: int,
    arch: str,
    net_scale: int,
    factor: float,
    blocks: str,
) -> None:
    descriptor = load_converted(card_id, scale)
    assert (descriptor.architecture.id, descriptor.scale) == (arch, net_scale)
    assert blocks in descriptor.tags
    assert (descriptor.input_channels, descriptor.output_channels) == (3, 3)


def test_checkpoint_is_written_once_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESTORATION_WEIGHTS_DIR", str(tmp_path))
    card = MODELS.get("realesr-animevideov3")
    first = ncnn_to_torch.converted_checkpoint(card, 4)
    before = first.stat()
    second = ncnn_to_torch.converted_checkpoint(card, 4)
    after = second.stat()

    assert first == second
    assert first.parent == tmp_path.resolve() / "converted"
    assert first.name.startswith("realesr-animevideov3-x4-") and first.suffix == ".safetensors"
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert list(first.parent.iterdir()) == [first]  # no temporary files left behind
    stored, fresh = load_file(first), ncnn_to_torch.convert(card, 4)
    assert stored.keys() == fresh.keys()
    assert all(torch.equal(stored[key], fresh[key]) for key in fresh)


def test_concurrent_first_calls_share_one_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESTORATION_WEIGHTS_DIR", str(tmp_path))
    card = MODELS.get("realesr-animevideov3")
    paths: list[Path] = []
    threads = [
        threading.Thread(target=lambda: paths.append(ncnn_to_torch.converted_checkpoint(card, 3)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(paths) == 3 and len(set(paths)) == 1
    assert list(paths[0].parent.iterdir()) == [paths[0]]


def copy_files(card_id: str, folder: Path) -> tuple[Path, Path]:
    """A card's x4 .param/.bin copied where a test may damage them."""
    param, weights = ncnn.model_files(MODELS.get(card_id), 4)
    return Path(shutil.copy(param, folder)), Path(shutil.copy(weights, folder))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[: len(data) // 2], "truncated or corrupt.*file ends at"),
        (lambda data: data[:-3], "truncated or corrupt.*file ends at"),
        (lambda data: data + b"\0" * 8, "truncated or corrupt.*8 bytes are left"),
        (lambda data: b"\x12\x34\x56\x78" + data[4:], "truncated or corrupt.*storage tag"),
    ],
    ids=["half", "three-bytes-short", "extra-bytes", "bad-tag"],
)
def test_damaged_bin_is_refused_naming_the_file(
    tmp_path: Path, damage: Callable[[bytes], bytes], message: str
) -> None:
    param, weights = copy_files("realesr-animevideov3", tmp_path)
    weights.write_bytes(damage(weights.read_bytes()))
    with pytest.raises(ModelUnavailableError, match=message) as error:
        ncnn_to_torch.convert_files(param, weights)
    assert weights.name in str(error.value) and str(weights.parent) in str(error.value)


@pytest.mark.parametrize(
    ("card_id", "pattern", "replacement", "message"),
    [
        # The input's upsampling made bilinear (0=2) instead of nearest (0=1).
        ("realesr-animevideov3", r"(Resize_37\s+1 1 \S+ \S+) 0=1 ", r"\1 0=2 ", "nearest-up"),
        # One residual scaled by 0.3 instead of spandrel's 0.2.
        ("realesrgan-x4plus-anime", r"=2,2.000000e-01,", "=2,3.000000e-01,", "0.2 \\* branch"),
    ],
    ids=["compact-bilinear-base", "rrdb-residual-scale"],
)
def test_graph_spandrel_does_not_compute_is_refused(
    tmp_path: Path, card_id: str, pattern: str, replacement: str, message: str
) -> None:
    param, weights = copy_files(card_id, tmp_path)
    text, changed = re.subn(pattern, replacement, param.read_text(), count=1)
    assert changed == 1
    param.write_text(text)
    with pytest.raises(ModelUnavailableError, match=message) as error:
        ncnn_to_torch.convert_files(param, weights)
    assert param.name in str(error.value)


def test_other_families_have_no_conversion() -> None:
    with pytest.raises(InvalidOptionError, match="no PyTorch conversion"):
        ncnn_to_torch.convert(MODELS.get("span-x4-ch48"), 4)


@pytest.mark.parametrize(
    ("model_id", "scale"), [("realesrgan-x4plus", 4), ("realesr-animevideov3", 2)]
)
def test_the_task_path_runs_bundled_weights_in_pytorch_and_agrees_with_ncnn(
    model_id: str, scale: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """RESTORATION_BACKEND picks the runtime; the two backends check each other."""
    from pipelines import tasks
    from pipelines.images import load_image
    from tests.conftest import natural_image, psnr

    monkeypatch.setenv("RESTORATION_WEIGHTS_DIR", str(tmp_path))
    picture = load_image(natural_image(30, 22))
    task = tasks.super_resolution if model_id == "realesrgan-x4plus" else tasks.anime_upscale
    options = {"outscale": scale} if task is tasks.super_resolution else {"scale": scale}
    monkeypatch.setenv("RESTORATION_BACKEND", "torch")
    torch_out = task(picture, model_id, **options).rgb
    monkeypatch.setenv("RESTORATION_BACKEND", "ncnn")
    ncnn_out = task(picture, model_id, **options).rgb
    assert torch_out.shape == ncnn_out.shape == (22 * scale, 30 * scale, 3)
    to_uint8 = lambda a: np.round(a * 255).astype(np.uint8)  # noqa: E731
    assert psnr(to_uint8(torch_out), to_uint8(ncnn_out)) >= 40
