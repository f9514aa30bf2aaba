"""The PyTorch backend on random-weight checkpoints written in the real file formats.

The models are small instances of the real architectures (spandrel's own classes,
seeded), saved the way their projects publish them: Real-ESRGAN's ``params_ema``
.pth with its ``conv_first``/``body.N.rdbM`` key names, SwinIR's ``params``,
plain state dicts and .safetensors. Everything goes through the real loader,
engine and cache; the only test double is ``OomAbove``, a stand-in for a device's
memory limit.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from spandrel.architectures.Compact import Compact
from spandrel.architectures.ESRGAN import ESRGAN
from spandrel.architectures.GFPGAN import GFPGAN
from spandrel.architectures.RealCUGAN import UpCunet2x
from spandrel.architectures.SwinIR import SwinIR
from spandrel_extra_arches.architectures.CodeFormer import CodeFormer

from pipelines import weights
from pipelines.backends import load_restorer
from pipelines.backends.torch import (
    TorchRestorer,
    _load_files,
    engine,
    load_checkpoint,
    loader,
    model_cache,
)
from pipelines.backends.torch.cache import ModelCache, budget_from_env
from pipelines.errors import InputImageError, InvalidOptionError, ModelUnavailableError
from pipelines.registry import MODELS, LocalCheckpoint, ModelCard
from tests.conftest import natural_image

StateDict = dict[str, torch.Tensor]


# ---------------------------------------------------------------- tiny real architectures


def esrgan(scale: int = 4, nf: int = 16, nb: int = 1, seed: int = 0) -> StateDict:
    """RRDBNet in ESRGAN's original key names; the last conv made to output mid-grey +- detail.

    Random weights put the output around 0, which the [0, 1] clamp would flatten.
    """
    torch.manual_seed(seed)
    state = ESRGAN(num_filters=nf, num_blocks=nb, scale=scale).state_dict()
    last = f"model.{3 * int(math.log2(scale)) + 4}"
    state[f"{last}.weight"] *= 5
    state[f"{last}.bias"] = torch.full_like(state[f"{last}.bias"], 0.5)
    return state


def realesrgan_keys(state: StateDict, scale: int) -> StateDict:
    """ESRGAN's old key names as Real-ESRGAN/BasicSR's RRDBNet writes them."""
    ups = int(math.log2(scale))
    blocks = 1 + max(int(k.split(".")[3]) for k in state if ".RDB" in k)
    names = {
        "model.0": "conv_first",
        f"model.1.sub.{blocks}": "conv_body",
        f"model.{3 * ups + 2}": "conv_hr",
        f"model.{3 * ups + 4}": "conv_last",
        **{f"model.{3 * k}": f"conv_up{k}" for k in range(1, ups + 1)},
    }
    renamed = {}
    for key, value in state.items():
        rdb = re.fullmatch(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)", key)
        if rdb:
            renamed["body.{}.rdb{}.conv{}.{}".format(*rdb.groups())] = value
        else:
            prefix, kind = key.rsplit(".", 1)
            renamed[f"{names[prefix]}.{kind}"] = value
    return renamed


def compact(scale: int = 4, seed: int = 0) -> StateDict:
    """SRVGGNetCompact (realesr-animevideov3's architecture) with 16 features, 4 convs."""
    torch.manual_seed(seed)
    return Compact(num_feat=16, num_conv=4, upscale=scale).state_dict()


def swinir(scale: int = 2, seed: int = 0) -> StateDict:
    """A small classical-SR SwinIR: window 8, embed 12, two blocks."""
    torch.manual_seed(seed)
    model = SwinIR(
        upscale=scale,
        img_size=32,
        window_size=8,
        embed_dim=12,
        depths=[2],
        num_heads=[2],
        mlp_ratio=2,
        upsampler="pixelshuffle",
        resi_connection="1conv",
    )
    return model.state_dict()


def gfpgan_state() -> dict:
    torch.manual_seed(0)
    net = GFPGAN(
        out_size=512,
        num_style_feat=512,
        channel_multiplier=2,
        decoder_load_path=None,
        fix_decoder=False,
        num_mlp=8,
        input_is_latent=True,
        different_w=True,
        narrow=1,
        sft_half=True,
    )
    return {"params_ema": net.state_dict()}


def codeformer_state() -> dict:
    """A reduced CodeFormer (256-wide, 2 transformer layers) that spandrel still detects."""
    torch.manual_seed(0)
    net = CodeFormer(
        dim_embd=256,
        n_head=8,
        n_layers=2,
        codebook_size=256,
        latent_size=256,
        connect_list=["32", "64", "128", "256"],
        fix_modules=["quantize", "generator"],
    )
    return {"params_ema": net.state_dict()}


class Custom:
    """A class a pickle may reference: loading it would run this module's code."""


def save_pth(path: Path, state: object) -> Path:
    torch.save(state, path)
    return path


def save_safetensors(path: Path, state: StateDict) -> Path:
    save_file({k: v.contiguous() for k, v in state.items()}, path)
    return path


def photo(width: int, height: int) -> np.ndarray:
    return np.asarray(natural_image(width, height), dtype=np.float32) / 255


def torch_card(
    architecture: str, scales: tuple[int, ...], card_id: str = "test-torch"
) -> ModelCard:
    base = MODELS.get("realesrgan-x4plus")
    return dataclasses.replace(
        base, id=card_id, title=card_id, backend="torch", architecture=architecture, scales=scales
    )


# ---------------------------------------------------------------- loading and running

FORMATS: dict[str, tuple[Callable[[], StateDict], str, int, Callable[[Path, StateDict], Path]]] = {
    "realesrgan-params_ema.pth": (
        lambda: {"params_ema": realesrgan_keys(esrgan(), 4)},
        "ESRGAN",
        4,
        save_pth,
    ),
    "esrgan-old-keys.safetensors": (esrgan, "ESRGAN", 4, save_safetensors),
    "compact-params.pth": (lambda: {"params": compact()}, "Compact", 4, save_pth),
    "compact.safetensors": (compact, "Compact", 4, save_safetensors),
    "swinir-params.pth": (lambda: {"params": swinir()}, "SwinIR", 2, save_pth),
    "swinir.safetensors": (swinir, "SwinIR", 2, save_safetensors),
}


@pytest.mark.parametrize("name", FORMATS)
def test_checkpoint_loads_as_its_architecture_and_runs(tmp_path: Path, name: str) -> None:
    make, arch, scale, save = FORMATS[name]
    state = make()
    path = save(tmp_path / name, state)
    restorer = load_checkpoint(path)
    assert (restorer.architecture, restorer.scale) == (arch, scale)
    assert (restorer.device.type, restorer.dtype) == ("cpu", torch.float32)
    assert restorer.describe().startswith(f"{arch} x{scale}")
    # The weights are the ones saved (the loaded module uses spandrel's key names).
    loaded = restorer.net.descriptor.model.state_dict()
    original = loader.unwrap(state) if arch != "ESRGAN" else esrgan()
    assert set(original) <= set(loaded)
    assert all(torch.equal(loaded[key], value) for key, value in original.items())
    image = photo(28, 20)
    first, second = restorer(image), restorer(image)
    assert first.shape == (20 * scale, 28 * scale, 3)
    assert first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() <= 1.0 and first.std() > 0.01
    np.testing.assert_array_equal(first, second)


def test_output_is_the_network_on_the_reflect_padded_image(tmp_path: Path) -> None:
    """The engine feeds NCHW RGB in [0, 1], pads with reflection and crops the padding off."""
    state = compact()
    restorer = load_checkpoint(save_safetensors(tmp_path / "c.safetensors", state))
    image = photo(24, 16)
    module = Compact(num_feat=16, num_conv=4, upscale=4).eval()
    module.load_state_dict(state)
    pad = restorer.plan.pad
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    with torch.inference_mode():
        out = module(torch.from_numpy(padded.transpose(2, 0, 1).copy())[None]).clamp(0, 1)
    expected = out[0].permute(1, 2, 0).numpy()[4 * pad : 4 * (pad + 16), 4 * pad : 4 * (pad + 24)]
    np.testing.assert_allclose(restorer(image), expected, atol=1e-5)


def test_numpy_metadata_beside_the_weights_is_allowed(tmp_path: Path) -> None:
    """Training checkpoints store numpy scalars (``best_psnr``): data, in the allowlist."""
    state = {"params": compact(), "best_psnr": np.float64(31.5), "hist": np.zeros(3)}
    assert load_checkpoint(save_pth(tmp_path / "train.pth", state)).architecture == "Compact"


def test_realcugan_pro_is_told_apart_by_its_marker_key(tmp_path: Path) -> None:
    """Real-CUGAN "pro" files differ from the others only by a ``pro`` entry, kept on load."""
    torch.manual_seed(0)
    state = UpCunet2x(pro=True).state_dict()
    state["pro"] = True  # whatever the release files store there, its presence decides
    restorer = load_checkpoint(save_pth(tmp_path / "pro-no-denoise-up2x.pth", state))
    assert (restorer.architecture, restorer.scale, restorer.tags) == ("RealCUGAN", 2, ("pro",))
    assert restorer(photo(20, 20)).shape == (40, 40, 3)


# ---------------------------------------------------------------- refusals


def test_wrong_architecture_for_the_card(tmp_path: Path) -> None:
    path = save_pth(tmp_path / "swinir_x2.pth", {"params": swinir()})
    card = torch_card("ESRGAN", (4,), "test-esrgan")
    with pytest.raises(ModelUnavailableError) as error:
        _load_files(card, [path], 4)
    assert str(error.value) == (
        "swinir_x2.pth is SwinIR x2, but card test-esrgan expects ESRGAN x4."
    )


def test_wrong_scale_for_the_card(tmp_path: Path) -> None:
    path = save_pth(tmp_path / "esrgan_x2.pth", {"params_ema": realesrgan_keys(esrgan(2), 2)})
    with pytest.raises(
        ModelUnavailableError, match=r"is ESRGAN x2, but card test-x4 expects ESRGAN x4"
    ):
        load_checkpoint(path, torch_card("ESRGAN", (4,), "test-x4"))


def test_card_naming_an_unknown_architecture(tmp_path: Path) -> None:
    path = save_safetensors(tmp_path / "e.safetensors", esrgan())
    with pytest.raises(InvalidOptionError, match=r"'ESRGANN'.*Did you mean ESRGAN"):
        load_checkpoint(path, torch_card("ESRGANN", (4,)))


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_truncated_file(tmp_path: Path, suffix: str) -> None:
    whole = tmp_path / f"whole{suffix}"
    (save_pth if suffix == ".pth" else save_safetensors)(whole, compact())
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ModelUnavailableError, match=rf"^cut{suffix} is truncated or "):
        load_checkpoint(cut)


def test_pickle_with_a_custom_class_is_refused(tmp_path: Path) -> None:
    path = save_pth(tmp_path / "evil.pth", {"params": compact(), "meta": Custom()})
    with pytest.raises(ModelUnavailableError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert message.startswith("evil.pth contains Python objects (")
    assert "Custom" in message and "refuse to unpickle" in message


def test_legacy_pickle_with_a_custom_class_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.pth"
    torch.save({"meta": Custom()}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(ModelUnavailableError, match="refuse to unpickle"):
        load_checkpoint(path)


def test_unknown_weights_and_unknown_suffix(tmp_path: Path) -> None:
    path = save_pth(tmp_path / "mystery.pth", {"foo.weight": torch.zeros(3, 3)})
    with pytest.raises(ModelUnavailableError, match="does not recognise"):
        load_checkpoint(path)
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\0" * 16)
    with pytest.raises(ModelUnavailableError, match=r"model\.onnx is not a checkpoint type"):
        load_checkpoint(onnx)
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pth")


# ---------------------------------------------------------------- cards and their files


def test_card_files_pick_the_checkpoint_of_the_scale(tmp_path: Path) -> None:
    x2 = save_safetensors(tmp_path / "net_x2.safetensors", compact(2))
    x4 = save_safetensors(tmp_path / "net_x4.safetensors", compact(4))
    card = torch_card("Compact", (2, 4))
    assert _load_files(card, [x2, x4], 2).scale == 2
    assert _load_files(card, [x2, x4], 4).scale == 4
    with pytest.raises(InvalidOptionError, match="offers x2, x4, not x3"):
        _load_files(card, [x2, x4], 3)
    with pytest.raises(InvalidOptionError, match="not a PyTorch model"):
        _load_files(MODELS.get("realesrgan-x4plus"), [x4], 4)


def test_a_card_loads_through_the_weights_manager(tmp_path: Path) -> None:
    """``load_restorer`` -> ``torch.load`` -> ``weights.resolve`` (checksum) -> the file."""
    path = save_safetensors(tmp_path / "compact_x4.safetensors", compact(seed=7))
    source = LocalCheckpoint(str(path), weights.sha256_of(path))
    card = dataclasses.replace(torch_card("Compact", (4,), "test-local"), source=source)
    restorer = load_restorer(card, 4)
    assert isinstance(restorer, TorchRestorer) and restorer.name == "test-local"
    assert restorer(photo(12, 10)).shape == (40, 48, 3)


# ---------------------------------------------------------------- tiling


def seam_mask(height: int, width: int, tile: int, scale: int, band: int = 2) -> np.ndarray:
    """Output pixels within ``band`` of a tile border."""
    mask = np.zeros((height * scale, width * scale), dtype=bool)
    for edge in range(tile, width, tile):
        mask[:, edge * scale - band : edge * scale + band] = True
    for edge in range(tile, height, tile):
        mask[edge * scale - band : edge * scale + band, :] = True
    return mask


def test_tiled_esrgan_equals_untiled(tmp_path: Path) -> None:
    """This RRDBNet (1 block) sees 18.25 input px each side: 17 3x3 convs at 1x, one at 2x,
    three at 4x. The ESRGAN context pad (24 px) covers that, so tiles are exact up to
    float32 summation order (observed max 2.4e-7)."""
    restorer = load_checkpoint(save_pth(tmp_path / "e.pth", {"params_ema": esrgan()}))
    assert restorer.plan.pad >= 19
    image = photo(56, 40)
    whole = restorer(image, tile=0)
    tiled = restorer(image, tile=16)
    assert np.abs(whole - tiled).max() < 1e-5


def test_tiled_swinir_has_no_visible_seam(tmp_path: Path) -> None:
    """Window attention is not exactly local, so tiles can differ from the whole image.

    Tiles start on multiples of the window size (8): every tile's windows and
    shifted windows line up with the whole image's, and the 32 px context covers
    the attention's reach through these two blocks. Observed: max 5e-5/255 (with
    unaligned 20 px tiles it is 0.6/255). The bound is what "no visible seam"
    means: max < 2/255 anywhere and mean < 0.1/255 both over the image and along
    the tile borders.
    """
    restorer = load_checkpoint(save_pth(tmp_path / "s.pth", {"params": swinir()}))
    assert restorer.plan.align == 8 and restorer.plan.pad % 8 == 0
    image = photo(72, 56)
    difference = np.abs(restorer(image) - restorer(image, tile=16))
    seams = seam_mask(56, 72, 16, 2)
    assert difference.max() < 2 / 255
    assert difference.mean() < 0.1 / 255
    assert difference[seams].mean() < 0.1 / 255


class Recorder:
    """Records the tile shapes the network is given (a pass-through test double)."""

    def __init__(self, net: engine.Net) -> None:
        self.net, self.seen = net, []

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(image.shape[-2:]))
        return self.net(image)


def test_size_requirements_are_met_by_every_tile(tmp_path: Path) -> None:
    """Real-ESRGAN x2 unshuffles pixels 2x2 first: spandrel asks for multiples of 4."""
    torch.manual_seed(0)
    model = ESRGAN(in_nc=12, out_nc=3, num_filters=16, num_blocks=1, scale=4, shuffle_factor=2)
    restorer = load_checkpoint(save_pth(tmp_path / "x2.pth", model.state_dict()))
    assert restorer.scale == 2 and restorer.plan.align == 4
    recorder = Recorder(restorer.net)
    traced = dataclasses.replace(restorer, net=recorder)
    image = photo(37, 21)
    tiled, whole = traced(image, tile=16), traced(image)
    assert tiled.shape == whole.shape == (42, 74, 3)
    assert all(rows % 4 == 0 and cols % 4 == 0 for rows, cols in recorder.seen)
    assert np.abs(tiled - whole).max() < 1e-5


def test_user_tile_is_rounded_up_to_the_alignment(tmp_path: Path) -> None:
    restorer = load_checkpoint(save_pth(tmp_path / "s.pth", {"params": swinir()}))
    assert restorer.tile_for(100, 100, 20) == 24
    with pytest.raises(InvalidOptionError, match="at least 16 px"):
        restorer(photo(16, 16), tile=8)


def test_progress_is_reported_per_tile(tmp_path: Path) -> None:
    restorer = load_checkpoint(save_safetensors(tmp_path / "c.safetensors", compact()))
    calls: list[tuple[float, str]] = []
    restorer(photo(40, 20), tile=16, progress=lambda *call: calls.append(call))
    assert [fraction for fraction, _ in calls] == pytest.approx(
        [1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1]
    )
    assert calls[-1][1] == "tile 6/6"


def test_automatic_tile_follows_the_memory_budget(tmp_path: Path) -> None:
    restorer = load_checkpoint(save_pth(tmp_path / "e.pth", esrgan()))
    plan = restorer.plan
    assert engine.auto_tile(plan, 64, 64, budget=1e12) == 0
    window = 64 + 2 * plan.pad
    edge = engine.auto_tile(plan, 1000, 1000, budget=window**2 * plan.bytes_per_pixel)
    assert 0 < edge <= 64
    assert (edge + 2 * plan.pad) ** 2 * plan.bytes_per_pixel <= window**2 * plan.bytes_per_pixel


def test_bad_images_are_refused(tmp_path: Path) -> None:
    restorer = load_checkpoint(save_safetensors(tmp_path / "c.safetensors", compact()))
    with pytest.raises(InputImageError, match=r"shape \(H, W, 3\)"):
        restorer(np.zeros((8, 8), dtype=np.float32))
    with pytest.raises(InputImageError, match="empty"):
        restorer(np.zeros((0, 8, 3), dtype=np.float32))


def test_face_models_run_whole_and_take_one_face_crop(tmp_path: Path) -> None:
    """GFPGAN (spandrel) and CodeFormer (spandrel-extra-arches) load as whole-image models.

    Built at GFPGAN's only size (86 M parameters, 3 s to build, save and load here)
    and a reduced CodeFormer; running them (15 s per 512 px face on this CPU) is left
    to the benchmarks.
    """
    path = save_pth(tmp_path / "GFPGANv1.4.pth", gfpgan_state())
    restorer = load_checkpoint(path, torch_card("GFPGAN", (1,)))
    assert (restorer.architecture, restorer.scale) == ("GFPGAN", 1)
    assert restorer.plan.whole and restorer.plan.pad == 0 and restorer.plan.max_side == 512
    assert restorer.tile_for(512, 512, tile=128) == 0  # a face is never cut into tiles
    with pytest.raises(InputImageError, match="one aligned face crop of at most 512x512"):
        restorer(np.zeros((520, 600, 3), dtype=np.float32))
    path = save_pth(tmp_path / "codeformer.pth", codeformer_state())
    restorer = load_checkpoint(path)
    assert restorer.architecture == "CodeFormer" and restorer.plan.whole


def test_a_whole_image_model_is_not_retried_on_out_of_memory(tmp_path: Path) -> None:
    restorer = load_checkpoint(save_pth(tmp_path / "e.pth", {"params_ema": esrgan()}))
    whole = dataclasses.replace(restorer, plan=dataclasses.replace(restorer.plan, whole=True))
    small, double = limited(whole, 100)
    with pytest.raises(
        engine.DeviceMemoryError,
        match=r"with the whole 32x24 image, and this model cannot be tiled",
    ):
        small(photo(32, 24), tile=16)
    assert len(double.seen) == 1


# ---------------------------------------------------------------- out-of-memory retry


class OomAbove:
    """Test double of a device's memory limit: tiles above ``limit`` pixels fail as a GPU would."""

    def __init__(self, net: engine.Net, limit: int, error: Callable[[], BaseException]) -> None:
        self.net, self.limit, self.error = net, limit, error
        self.seen: list[tuple[int, int]] = []

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        rows, cols = image.shape[-2:]
        self.seen.append((rows, cols))
        if rows * cols > self.limit:
            raise self.error()
        return self.net(image)


OOM_ERRORS: dict[str, Callable[[], BaseException]] = {
    "cuda": lambda: torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
    "mps": lambda: RuntimeError("MPS backend out of memory (MPS allocated: 8 GB)"),
    "cpu-torch": lambda: RuntimeError("DefaultCPUAllocator: can't allocate memory: 9 GB"),
    "cpu-numpy": MemoryError,
}


def limited(
    restorer: TorchRestorer, limit: int, error: Callable[[], BaseException] = OOM_ERRORS["cuda"]
) -> tuple[TorchRestorer, OomAbove]:
    """The restorer on a device that fails with ``error`` above ``limit`` pixels per tile."""
    double = OomAbove(restorer.net, limit, error)
    return dataclasses.replace(restorer, net=double), double


@pytest.mark.parametrize("kind", OOM_ERRORS)
def test_out_of_memory_is_recognised(kind: str) -> None:
    assert engine.is_out_of_memory(OOM_ERRORS[kind]())
    assert not engine.is_out_of_memory(RuntimeError("Expected 4D input"))


@pytest.mark.parametrize("kind", ["cuda", "cpu-numpy"])  # a RuntimeError, and a MemoryError
def test_out_of_memory_retries_with_halved_tiles(tmp_path: Path, kind: str) -> None:
    restorer = load_checkpoint(save_pth(tmp_path / "e.pth", {"params_ema": esrgan()}))
    pad = restorer.plan.pad
    image = photo(64, 64)
    untiled = restorer(image)
    # The whole image (64 + 2 pad) and 32 px tiles are over the limit; 16 px tiles fit.
    small, double = limited(restorer, (16 + 2 * pad) ** 2, OOM_ERRORS[kind])
    messages: list[str] = []
    result = small(image, progress=lambda _, message: messages.append(message))
    windows = sorted({rows for rows, _ in double.seen}, reverse=True)
    assert windows == [64 + 2 * pad, 32 + 2 * pad, 16 + 2 * pad]
    assert "out of memory with the whole 64x64 image; retrying with 32x32 tiles" in messages
    assert "out of memory with 32x32 tiles; retrying with 16x16 tiles" in messages
    assert np.abs(result - untiled).max() < 1e-5


def test_out_of_memory_even_with_the_smallest_tile(tmp_path: Path) -> None:
    restorer = load_checkpoint(save_pth(tmp_path / "e.pth", {"params_ema": esrgan()}))
    small, double = limited(restorer, 100)
    with pytest.raises(
        engine.DeviceMemoryError, match="out of memory on cpu even with 16x16 tiles"
    ):
        small(photo(64, 64), tile=32)
    assert len(double.seen) == 2  # 32 px, then 16 px; nothing below the minimum tile


def test_retry_tile_sizes() -> None:
    assert engine.smaller_tile(0, 64, 40, 1) == 32
    assert engine.smaller_tile(512, 64, 40, 1) == 32  # a tile above the image size ran whole
    assert engine.smaller_tile(40, 64, 64, 8) == 16  # halved, then down to the alignment
    assert engine.smaller_tile(24, 64, 64, 8) is None  # 12 -> 8 is below the 16 px floor


def test_other_runtime_errors_are_not_retried(tmp_path: Path) -> None:
    restorer = load_checkpoint(save_pth(tmp_path / "e.pth", {"params_ema": esrgan()}))
    broken, double = limited(restorer, 0, lambda: RuntimeError("cuDNN error: bad param"))
    with pytest.raises(RuntimeError, match="cuDNN error"):
        broken(photo(32, 32))
    assert len(double.seen) == 1


# ---------------------------------------------------------------- the model cache


def test_same_file_twice_is_loaded_once(tmp_path: Path) -> None:
    path = save_safetensors(tmp_path / "c.safetensors", compact())
    before = model_cache().loads
    first, second = load_checkpoint(path), load_checkpoint(path)
    assert first.net is second.net
    assert model_cache().loads == before + 1
    # Another precision is another model.
    assert load_checkpoint(path, precision="bf16").net is not first.net


def test_cache_evicts_least_recently_used_over_budget(tmp_path: Path) -> None:
    paths = [save_safetensors(tmp_path / f"c{i}.safetensors", compact(seed=i)) for i in range(3)]

    def loader_of(path: Path) -> Callable[[], engine.LoadedModel]:
        def load() -> engine.LoadedModel:
            descriptor = loader.build_model(loader.read_state_dict(path), path)
            return engine.place(descriptor, torch.device("cpu"), "fp32")

        return load

    size = loader_of(paths[0])().nbytes
    cache: ModelCache[engine.LoadedModel] = ModelCache(budget=2 * size)
    weigh = lambda model: model.nbytes  # noqa: E731
    a = cache.get("a", loader_of(paths[0]), weigh)
    cache.get("b", loader_of(paths[1]), weigh)
    assert cache.get("a", loader_of(paths[0]), weigh) is a  # "a" is now the most recent
    cache.get("c", loader_of(paths[2]), weigh)
    assert cache.keys() == ["a", "c"]
    assert cache.total_bytes() == 2 * size and cache.loads == 3
    big: ModelCache[engine.LoadedModel] = ModelCache(budget=size // 2)
    big.get("a", loader_of(paths[0]), weigh)
    assert big.keys() == ["a"]  # one model over the budget still loads, alone


def test_concurrent_requests_for_one_model_load_it_once() -> None:
    cache: ModelCache[object] = ModelCache(budget=1 << 30)
    release = threading.Event()
    calls: list[int] = []

    def slow_load() -> object:
        calls.append(1)
        release.wait(5)
        return object()

    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get("k", slow_load, lambda _: 1)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # both threads are now inside get(): one loading, one waiting
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(calls) == 1 and len(results) == 2 and results[0] is results[1]


def test_a_failed_load_reaches_every_waiter_and_is_not_cached() -> None:
    cache: ModelCache[object] = ModelCache(budget=1 << 30)

    def fail() -> object:
        raise ModelUnavailableError("broken.pth is truncated")

    for _ in range(2):
        with pytest.raises(ModelUnavailableError):
            cache.get("k", fail, lambda _: 1)
    assert cache.loads == 2 and len(cache) == 0


def test_concurrent_load_checkpoint_and_calls(tmp_path: Path) -> None:
    path = save_pth(tmp_path / "e.pth", {"params_ema": esrgan(seed=3)})
    before = model_cache().loads
    image = photo(24, 24)
    restorers: list[TorchRestorer] = []
    outputs: list[np.ndarray] = []

    def work() -> None:
        restorer = load_checkpoint(path)
        restorers.append(restorer)
        outputs.append(restorer(image, tile=16))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert model_cache().loads == before + 1
    assert restorers[0].net is restorers[1].net
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_cache_budget_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RESTORATION_MODEL_CACHE_MB", raising=False)
    assert budget_from_env() == 4096 * 1024**2
    monkeypatch.setenv("RESTORATION_MODEL_CACHE_MB", "512")
    assert budget_from_env() == 512 * 1024**2
    monkeypatch.setenv("RESTORATION_MODEL_CACHE_MB", "lots")
    with pytest.raises(InvalidOptionError, match="number of megabytes"):
        budget_from_env()


# ---------------------------------------------------------------- device and precision


def test_device_choice() -> None:
    parse = engine.parse_device
    assert parse("auto", cuda_count=0, mps=False) == torch.device("cpu")
    assert parse("auto", cuda_count=2, mps=True) == torch.device("cuda:0")
    assert parse("auto", cuda_count=0, mps=True) == torch.device("mps")
    assert parse("CUDA", cuda_count=1, mps=False) == torch.device("cuda:0")
    assert parse("cuda:1", cuda_count=2, mps=False) == torch.device("cuda:1")
    with pytest.raises(InvalidOptionError, match="sees 2 CUDA GPU"):
        parse("cuda:2", cuda_count=2, mps=False)
    with pytest.raises(InvalidOptionError, match="no CUDA GPU"):
        parse("cuda", cuda_count=0, mps=False)
    with pytest.raises(InvalidOptionError, match="Metal"):
        parse("mps", cuda_count=1, mps=False)
    with pytest.raises(InvalidOptionError, match="Unknown device 'gpu0'"):
        parse("gpu0", cuda_count=1, mps=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_from_the_environment_on_a_cpu_machine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RESTORATION_DEVICE", "cuda")
    with pytest.raises(InvalidOptionError, match=r"'cuda' was asked for.*RESTORATION_DEVICE=cpu"):
        engine.choose_device()
    with pytest.raises(InvalidOptionError, match="no CUDA GPU"):
        load_checkpoint(save_safetensors(tmp_path / "c.safetensors", compact()))
    assert engine.choose_device("cpu") == torch.device("cpu")  # the argument wins
    monkeypatch.setenv("RESTORATION_DEVICE", "cpu")
    assert engine.choose_device() == torch.device("cpu")


def test_precision_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    choose = engine.choose_dtype
    assert choose("cpu", "auto", half=True, bf16=True) == torch.float32
    assert choose("cuda", "auto", half=True, bf16=True) == torch.float16
    assert choose("cuda", "auto", half=False, bf16=True) == torch.bfloat16
    assert choose("cuda", "auto", half=False, bf16=True, bf16_hardware=False) == torch.float32
    assert choose("mps", "auto", half=False, bf16=True) == torch.float32
    assert choose("cuda", "fp32", half=True, bf16=True) == torch.float32
    assert choose("cpu", "bf16", half=True, bf16=True) == torch.bfloat16
    assert choose("cuda", "fp16", half=False, bf16=True) == torch.float32
    monkeypatch.setenv("RESTORATION_PRECISION", "BF16")
    assert engine.precision_setting() == "bf16"
    assert engine.precision_setting("fp32") == "fp32"
    monkeypatch.setenv("RESTORATION_PRECISION", "fp8")
    with pytest.raises(InvalidOptionError, match="Unknown precision 'fp8'"):
        engine.precision_setting()


def test_bf16_runs_close_to_fp32_and_unsupported_fp16_falls_back(tmp_path: Path) -> None:
    path = save_pth(tmp_path / "e.pth", {"params_ema": esrgan(seed=5)})
    fp32, bf16 = load_checkpoint(path, precision="fp32"), load_checkpoint(path, precision="bf16")
    assert bf16.dtype == torch.bfloat16 and "bfloat16" in bf16.describe()
    image = photo(24, 24)
    assert np.abs(fp32(image) - bf16(image)).mean() < 0.02
    swin = load_checkpoint(save_pth(tmp_path / "s.pth", {"params": swinir()}), precision="fp16")
    assert swin.dtype == torch.float32  # spandrel: SwinIR does not support fp16
