"""Command line: ``python -m pipelines models | run | download | compare``.

Imports stay lazy: listing models loads neither gradio, torch nor a model runtime.
Failures end with exit status 1 and one line on stderr naming the reason.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.cli import run_command
from pipelines.errors import RestorationError
from pipelines.registry import MODELS, TASK_TITLES

if TYPE_CHECKING:
    from pipelines.images import Picture

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
TASK_ALIASES = {
    "sr": "sr",
    "super-resolution": "sr",
    "anime": "anime",
    "colorize": "colorize",
    "inpaint": "inpaint",
    "old-photo": "old_photo",
}


def _models(args: argparse.Namespace) -> int:
    from pipelines.weights import card_state

    rows = []
    for card in MODELS:
        state = card_state(card)
        rows.append(
            {
                "id": card.id,
                "title": card.title,
                "tasks": list(card.tasks),
                "family": card.family,
                "backend": card.backend,
                "scales": list(card.scales),
                "noise_levels": list(card.noise_levels),
                "default_for": list(card.default_for),
                "license": card.license,
                "non_commercial": card.non_commercial,
                "size_mb": card.size_mb,
                "state": state.state,
                "detail": state.detail,
                "guidance": card.guidance,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(row["id"]) for row in rows)
    for row in rows:
        default = (
            " (default for " + ", ".join(row["default_for"]) + ")" if row["default_for"] else ""
        )
        scales = "/".join(f"x{s}" for s in row["scales"])
        print(
            f"{row['id']:<{width}}  {row['state']:<11} {','.join(row['tasks']):<9} {scales:<9} "
            f"{row['title']}{default}"
        )
        if row["state"] == "unavailable":
            print(f"{'':<{width}}  -> {row['detail']}")
    return 0


def _inputs(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise RestorationError(f"No images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {path}.")
        return files
    if not path.exists():
        raise RestorationError(f"Input {path} does not exist.")
    return [path]


def _destination(output: Path, many: bool, name: str) -> Path:
    """A folder output gets files named after the inputs; a file output is used as is."""
    if many or output.is_dir() or output.suffix == "":
        output.mkdir(parents=True, exist_ok=True)
        return output / name
    output.parent.mkdir(parents=True, exist_ok=True)
    return output


def _run_sr(args: argparse.Namespace, picture: Picture, source: Path) -> Picture:
    from pipelines import tasks

    target = None
    if args.width or args.height or args.shortest_side:
        target = tasks.TargetSize(args.width, args.height, args.shortest_side)
    messages: list[str] = []
    result = tasks.super_resolution(
        picture,
        args.model,
        outscale=args.outscale,
        target=target,
        noise=args.noise,
        tile=args.tile,
        enhance_faces=args.faces,
        face_fidelity=args.face_fidelity,
        progress=lambda _fraction, message: messages.append(message),
    )
    if args.faces and messages:
        print(f"{source.name}: {messages[-1]}", file=sys.stderr)  # faces found, or none
    return result


def _run_anime(args: argparse.Namespace, picture: Picture, source: Path) -> Picture:
    from pipelines import tasks

    return tasks.anime_upscale(
        picture, args.model, scale=args.scale, noise=args.noise, tile=args.tile
    )


def _run_colorize(args: argparse.Namespace, picture: Picture, source: Path) -> Picture:
    from pipelines.colorize import DESATURATED_NOTE, colorize

    messages: list[str] = []
    result = colorize(
        picture,
        args.model,
        render_factor=args.render_factor,
        progress=lambda _fraction, message: messages.append(message),
    )
    if DESATURATED_NOTE in messages:
        print(f"{source.name}: {DESATURATED_NOTE}", file=sys.stderr)
    return result


def _run_inpaint(args: argparse.Namespace, picture: Picture, source: Path) -> Picture:
    from pipelines import inpaint

    if not args.mask:
        raise RestorationError("inpaint needs --mask MASK (same size as the image, white = fill).")
    mask = inpaint.mask_from_file(args.mask, (picture.width, picture.height))
    return inpaint.inpaint(picture, mask, args.model, dilate=args.dilate)


def _run_old_photo(args: argparse.Namespace, picture: Picture, source: Path) -> Picture:
    from pipelines import inpaint, old_photo
    from pipelines.images import save_png

    options = old_photo.OldPhotoOptions(
        scratches=args.scratches,
        faces=args.faces,
        face_fidelity=args.face_fidelity,
        colorize=args.colorize,
        upscale=args.upscale,
        method=old_photo.method_for_card(args.model),
    )
    mask = None
    if args.mask:  # a corrected scratch mask: detection is skipped
        mask = inpaint.mask_from_file(args.mask, (picture.width, picture.height))
    result = old_photo.restore_old_photo(picture, options, mask=mask)
    print(f"{source.name}: {result.note}", file=sys.stderr)
    if args.mask_output and result.mask is not None:
        many = Path(args.input).is_dir()
        name = f"{picture.name}_scratches.png"
        destination = _destination(Path(args.mask_output), many, name)
        save_png(inpaint.mask_picture(result.mask), destination)
    return result.picture


def _default_model(args: argparse.Namespace) -> str:
    """The task's suggested model; for old photos, the engine that can run here."""
    if args.task == "old_photo":
        from pipelines.old_photo import default_engine

        return default_engine(args.scratches, args.faces == "bopb")
    return MODELS.default_for(args.task).id


TaskRunner = Callable[[argparse.Namespace, "Picture", Path], "Picture"]
TASK_RUNNERS: dict[str, TaskRunner] = {
    "sr": _run_sr,
    "anime": _run_anime,
    "colorize": _run_colorize,
    "inpaint": _run_inpaint,
    "old_photo": _run_old_photo,
}
"""One function per task: reads the task's own options from ``args``."""


def _run_one(args: argparse.Namespace, source: Path, many: bool) -> Path:
    from pipelines.images import load_image, output_name, save_png

    result = TASK_RUNNERS[args.task](args, load_image(source), source)
    destination = _destination(Path(args.output), many, output_name(result, args.model))
    return save_png(result, destination)


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pipelines.custom import SUFFIXES, add_checkpoint
    from pipelines.registry import lookup

    args.task = TASK_ALIASES[args.task]
    args.model = args.model or _default_model(args)
    if args.model.lower().endswith(SUFFIXES):
        args.model = add_checkpoint(args.model).id
    lookup(args.model)
    sources = _inputs(Path(args.input))
    many = len(sources) > 1 or Path(args.input).is_dir()
    failures = 0
    bar = tqdm(sources, unit="image", disable=not many, file=sys.stderr)
    for source in bar:
        bar.set_postfix_str(source.name)
        started = time.perf_counter()
        try:
            destination = _run_one(args, source, many)
        except RestorationError as error:
            if not many:
                raise
            failures += 1
            tqdm.write(f"{source.name}: {error}", file=sys.stderr)
            continue
        if not many:
            print(f"{destination} ({time.perf_counter() - started:.1f} s)")
    if failures:
        raise RestorationError(f"{failures} of {len(sources)} images failed (reasons above).")
    if many:
        print(f"{len(sources)} images written to {args.output}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from pipelines import compare

    task = TASK_ALIASES[args.task]
    options = {
        "outscale": args.outscale,
        "scale": args.scale,
        "noise": args.noise,
        "render_factor": args.render_factor,
        "mask": args.mask,
        "dilate": args.dilate,
    }
    written = compare.compare_files(
        task,
        args.input,
        [m for m in args.models.split(",") if m.strip()],
        args.out,
        sweep=args.sweep or "",
        reference_path=args.reference,
        options={k: v for k, v in options.items() if v is not None},
        metrics=[m for m in (args.metrics or "").split(",") if m.strip()] or None,
        region=compare.parse_region(args.crop),
        zoom=args.zoom,
    )
    if args.save_leaderboard:
        compare.save_to_leaderboard(written.run, args.db)
    print(compare.format_report(written, as_json=args.json))
    failed = written.run.failed()
    for pane in failed:
        print(f"{pane.label}: {pane.error}", file=sys.stderr)
    if failed:
        raise RestorationError(f"{len(failed)} of {len(written.run.panes)} runs failed.")
    return 0


def _download(args: argparse.Namespace) -> int:
    from pipelines.registry import Download
    from pipelines.weights import card_state, resolve

    if not args.all and not args.ids:
        raise RestorationError("Name one or more model ids, or pass --all.")
    cards = (
        # Files without a published checksum are placed by hand, never fetched (weights.py).
        [
            c
            for c in MODELS
            if isinstance(c.source, Download) and all(f.pinned for f in c.source.files)
        ]
        if args.all
        else [MODELS.get(model_id) for model_id in args.ids]
    )
    for card in cards:
        if not isinstance(card.source, Download):
            print(f"{card.id}: {card_state(card).state}, nothing to download")
            continue
        paths = resolve(card)
        print(f"{card.id}: " + ", ".join(str(p) for p in paths))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help="list every model card and whether it can run")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    models.set_defaults(handler=_models)

    download = commands.add_parser(
        "download", help="fetch and verify model weights into the cache (weights/)"
    )
    download.add_argument("ids", nargs="*", metavar="ID", help="model ids")
    download.add_argument("--all", action="store_true", help="every downloadable model")
    download.set_defaults(handler=_download)

    run = commands.add_parser("run", help="restore one image or every image in a folder")
    run.add_argument(
        "task",
        choices=sorted(TASK_ALIASES),
        help="; ".join(f"{k}: {TASK_TITLES[k]}" for k in sorted(set(TASK_ALIASES.values()))),
    )
    run.add_argument(
        "--model",
        help="model id, or a .pth/.safetensors file (default: the task's suggested model)",
    )
    run.add_argument("--input", "-i", required=True, help="an image file or a folder of images")
    run.add_argument("--output", "-o", required=True, help="output PNG file, or a folder")
    run.add_argument("--outscale", type=float, help="sr: final scale, may differ from the model's")
    run.add_argument("--width", type=int, help="sr: output width in pixels (keeps aspect ratio)")
    run.add_argument("--height", type=int, help="sr: output height in pixels")
    run.add_argument("--shortest-side", type=int, help="sr: output shortest side in pixels")
    run.add_argument("--scale", type=int, help="anime: scale (a model scale or a power of one)")
    run.add_argument("--noise", type=int, help="denoise level for models that have one")
    run.add_argument("--tile", type=int, default=0, help="tile size in input pixels (0 = auto)")
    run.add_argument(
        "--faces",
        metavar="MODEL",
        help="sr, old-photo: enhance faces with gfpgan-v1.4 or codeformer (non-commercial); "
        "old-photo also: bopb",
    )
    run.add_argument(
        "--face-fidelity",
        type=float,
        default=0.5,
        help="sr --faces codeformer: 0 = strongest restoration, 1 = closest to the input",
    )
    run.add_argument(
        "--render-factor",
        type=int,
        help="colorize: render factor (input = 16·N px) for models with one; DDColor refuses it",
    )
    run.add_argument(
        "--mask",
        help="inpaint: mask image, same size as the input (white = fill); "
        "old-photo: a corrected scratch mask (white = scratch), skips detection",
    )
    run.add_argument(
        "--dilate", type=int, default=0, help="inpaint: grow the mask by N pixels (0-64)"
    )
    run.add_argument(
        "--scratches", action="store_true", help="old-photo: find and repair scratches and dust"
    )
    run.add_argument("--colorize", metavar="MODEL", help="old-photo: colorize afterwards")
    run.add_argument(
        "--upscale", type=int, choices=(1, 2, 4), default=1, help="old-photo: upscale x2 or x4"
    )
    run.add_argument(
        "--mask-output", metavar="FILE", help="old-photo: write the scratch mask used (PNG)"
    )
    run.set_defaults(handler=_run)
    _add_compare(commands)
    return parser


def _add_compare(commands: argparse._SubParsersAction) -> None:
    compare = commands.add_parser(
        "compare", help="run several models, or one option swept, on one image and score them"
    )
    compare.add_argument("--task", default="sr", choices=sorted(TASK_ALIASES), help="default: sr")
    compare.add_argument("--models", required=True, help="comma-separated model ids")
    compare.add_argument("--sweep", help="one option over values, e.g. noise=-1,0,1,2,3")
    compare.add_argument("--input", "-i", required=True, help="the image to restore")
    compare.add_argument("--reference", help="ground truth of the output's size (adds PSNR/SSIM)")
    compare.add_argument("--out", required=True, help="folder for outputs, crop strip, CSV, JSON")
    compare.add_argument(
        "--metrics", help="comma-separated (default: NIQE; PSNR/SSIM too with a reference)"
    )
    compare.add_argument("--outscale", type=float, help="sr: output scale (default: the models')")
    compare.add_argument("--scale", type=int, help="anime: scale (default: the models' largest)")
    compare.add_argument("--noise", type=int, help="denoise level, when it is not swept")
    compare.add_argument("--render-factor", type=int, help="colorize: render factor")
    compare.add_argument("--mask", help="inpaint: mask image (white = fill)")
    compare.add_argument("--dilate", type=int, help="inpaint: grow the mask by N pixels")
    compare.add_argument("--crop", help="crop strip region X,Y,W,H in output pixels")
    compare.add_argument("--zoom", type=int, default=2, help="crop strip magnification (1-16)")
    compare.add_argument(
        "--save-leaderboard", action="store_true", help="store as a leaderboard entry"
    )
    compare.add_argument("--db", help="leaderboard SQLite file (see evaluation)")
    compare.add_argument("--json", action="store_true", help="print the table as JSON")
    compare.set_defaults(handler=_compare)


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
