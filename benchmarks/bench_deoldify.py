"""Time and peak memory of DeOldify colorization per render factor.

    python benchmarks/bench_deoldify.py [--model deoldify-artistic] [--factors 21,35]
                                        [--size 1024] [--weights-dir DIR]

Without ``--weights-dir`` (a folder holding the real ColorizeArtistic_gen.pth /
ColorizeStable_gen.pth) it writes a random-weight generator of the card's exact layout
(tests/deoldify_fixtures.py) to a temporary folder: the arithmetic is the real model's,
so the timing is what a user's run costs. The photo is a real one, grayed and resized to
SIZE on its long side. It prints the load time once, then per render factor the
seconds of a colorization (model already loaded) and the process's peak RSS so far.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines import colorize as colorize_task  # noqa: E402
from pipelines.images import Picture, load_image  # noqa: E402

PHOTO = ROOT / "examples" / "astronaut_hq.png"


def main() -> None:
    args = _parse()
    with tempfile.TemporaryDirectory() as folder:
        weights = args.weights_dir or _stand_in(args.model, Path(folder))
        os.environ["RESTORATION_WEIGHTS_DIR"] = str(weights)
        picture = _photo(args.size)
        started = time.perf_counter()
        colorize_task.colorize(picture, args.model, render_factor=7)  # import, build, load
        load_s = time.perf_counter() - started
        rows = [_measure(picture, args.model, factor) for factor in args.factors]
    report = {
        "model": args.model,
        "input": f"{picture.width}x{picture.height}",
        "load_s": round(load_s, 1),
        "runs": rows,
    }
    print(json.dumps(report, indent=2))


def _measure(picture: Picture, model: str, factor: int) -> dict:
    started = time.perf_counter()
    colorize_task.colorize(picture, model, render_factor=factor)
    return {
        "render_factor": factor,
        "model_input_px": 16 * factor,
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _stand_in(model: str, folder: Path) -> Path:
    from tests.deoldify_fixtures import write_stand_in

    write_stand_in(model, folder)
    return folder


def _photo(size: int) -> Picture:
    image = Image.open(PHOTO).convert("L")
    scale = size / max(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)))
    return load_image(image)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="deoldify-artistic")
    parser.add_argument(
        "--factors", type=lambda t: [int(v) for v in t.split(",")], default=[21, 35]
    )
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--weights-dir", type=Path)
    return parser.parse_args()


if __name__ == "__main__":
    main()
