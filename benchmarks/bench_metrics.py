"""Seconds per image pair: our metrics against pyiqa 0.1.16 on the same images.

Run: ``.venv/bin/python benchmarks/bench_metrics.py [--size 2040x1356] [--repeat 3]``.
The reference is scikit-image's astronaut resized (bicubic) to the size, DIV2K's by default;
the output is the reference with seeded Gaussian noise (sigma 8) then JPEG quality 40. Both
sides get float32 RGB in [0, 1] already in memory (pyiqa as a (1, 3, H, W) tensor), so the
times are of the metric alone; each is the median of `repeat` calls after one warm-up call on
a small image. Target: at least 5x pyiqa's throughput at equal values (|diff| <= 1e-4).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaluation.metrics import create_metric  # noqa: E402

NIQE_PARAMS = ROOT / "evaluation" / "data" / "niqe_pris_params.mat"
METRICS = ("psnr", "psnry", "ssim", "ssimc", "niqe")


def make_pair(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    import skimage.data

    reference = cv2.resize(skimage.data.astronaut(), (width, height), interpolation=cv2.INTER_CUBIC)
    noise = np.random.default_rng(0).normal(0.0, 8.0, reference.shape)
    noisy = np.clip(np.round(reference + noise), 0, 255).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", noisy[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 40])
    assert ok
    output = cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]
    return _float(output), _float(reference)


def _float(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image).astype(np.float32) / np.float32(255)


def timed(call: Callable[[], float], repeat: int) -> tuple[float, float]:
    """(median seconds, value) over `repeat` calls."""
    times, value = [], 0.0
    for _ in range(repeat):
        started = time.perf_counter()
        value = call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), value


def ours(name: str, output: np.ndarray, reference: np.ndarray) -> Callable[[], float]:
    metric = create_metric(name)
    metric(output[:192, :192], reference[:192, :192])  # warm-up: lazy imports, tables
    return lambda: metric(output, reference)


def theirs(name: str, output: np.ndarray, reference: np.ndarray) -> Callable[[], float]:
    import pyiqa
    import torch

    options = {"pretrained_model_path": str(NIQE_PARAMS)} if name == "niqe" else {}
    metric = pyiqa.create_metric(name, device="cpu", **options)
    out, ref = (
        torch.from_numpy(a).permute(2, 0, 1)[None].contiguous() for a in (output, reference)
    )
    args = (out,) if name == "niqe" else (out, ref)
    metric(*(a[..., :192, :192] for a in args))  # warm-up
    return lambda: float(metric(*args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="2040x1356", help="WIDTHxHEIGHT")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--metrics", default=",".join(METRICS), help="comma-separated names")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    output, reference = make_pair(width, height)
    print(f"{width}x{height}, median of {args.repeat} calls; seconds per image pair")
    print(f"{'metric':8} {'ours s':>9} {'pyiqa s':>9} {'speed-up':>9} {'max |diff|':>11}  value")
    for name in args.metrics.split(","):
        our_s, our_v = timed(ours(name, output, reference), args.repeat)
        their_s, their_v = timed(theirs(name, output, reference), args.repeat)
        print(
            f"{name:8} {our_s:9.4f} {their_s:9.3f} {their_s / our_s:8.1f}x "
            f"{abs(our_v - their_v):11.2e}  {our_v:.6f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
