"""Speed and peak memory of the PyTorch backend on one large image.

    python benchmarks/bench_torch.py [--device cuda] [--size 2048] [--fp16] [--tile 0]
                                     [--checkpoint PATH] [--runs 1]

Without ``--checkpoint`` it builds a random-weight RRDBNet x4 at the real Real-ESRGAN
x4plus size (23 blocks, 64 features, 16.7 M parameters), saves it as .safetensors and
loads it through the real loader, so the timing covers what a user's run does. The
input is a real photo resized to SIZE x SIZE. It prints the device, dtype, tile plan,
seconds per run (after a small warm-up), output megapixels per second and the peak
memory: ``torch.cuda.max_memory_allocated`` (and reserved) on CUDA, the process's
peak RSS on the CPU. On this 2-core CPU use ``--size 256`` (about a minute).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.backends.torch import TorchRestorer, engine, load_checkpoint  # noqa: E402

PHOTO = ROOT / "examples" / "astronaut_hq.png"


def main() -> None:
    args = _parse()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(args.checkpoint) if args.checkpoint else _random_rrdbnet(Path(folder))
        precision = "fp16" if args.fp16 else args.precision
        restorer = load_checkpoint(path, device=args.device, precision=precision)
        image = _photo(args.size)
        restorer(image[:64, :64])  # warm-up: CUDA context, cuDNN algorithm choice
        results = [_measure(restorer, image, args.tile) for _ in range(args.runs)]
    best = min(results, key=lambda r: r["seconds"])
    report = {
        "model": restorer.describe(),
        "input": f"{args.size}x{args.size}",
        "tile": restorer.tile_for(args.size, args.size, args.tile),
        "pad": restorer.plan.pad,
        **best,
    }
    for key, value in report.items():
        print(f"{key:>18}: {value}")
    print(json.dumps(report))


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="auto/cpu/cuda/cuda:N/mps")
    parser.add_argument("--size", type=int, default=2048, help="input edge in pixels")
    parser.add_argument("--fp16", action="store_true", help="same as --precision fp16")
    parser.add_argument("--precision", default=None, choices=engine.PRECISIONS)
    parser.add_argument("--tile", type=int, default=0, help="tile edge (0: from free memory)")
    parser.add_argument("--checkpoint", default=None, help="a .pth/.safetensors to load instead")
    parser.add_argument("--runs", type=int, default=1)
    return parser.parse_args()


def _random_rrdbnet(folder: Path) -> Path:
    from safetensors.torch import save_file
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    state = ESRGAN(num_filters=64, num_blocks=23, scale=4).state_dict()
    path = folder / "rrdbnet_x4_random.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, path)
    return path


def _photo(size: int) -> np.ndarray:
    picture = Image.open(PHOTO).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(picture, dtype=np.float32) / 255


def _measure(restorer: TorchRestorer, image: np.ndarray, tile: int) -> dict[str, object]:
    device = restorer.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    _reset_peak_rss()
    tiles: list[str] = []
    started = time.perf_counter()
    out = restorer(image, tile=tile, progress=lambda _, message: tiles.append(message))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    result: dict[str, object] = {
        "seconds": round(seconds, 3),
        "tiles": len(tiles),
        "output_mpix_per_s": round(out.shape[0] * out.shape[1] / 1e6 / seconds, 2),
        "peak_rss_mib": round(_peak_rss() / 2**20),
    }
    if device.type == "cuda":
        result["peak_gpu_allocated_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20)
        result["peak_gpu_reserved_mib"] = round(torch.cuda.max_memory_reserved(device) / 2**20)
    return result


def _reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark (Linux), so each run reports its own peak."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":
    main()
