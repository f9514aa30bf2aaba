"""``python -m spaces build OUT_DIR`` and ``python -m spaces deploy --repo-id USER/NAME``."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from pipelines.errors import RestorationError


def _ids(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m spaces", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="write a ready Space folder")
    build.add_argument("out", type=Path, help="the folder to write (new, or a previous bundle)")
    deploy = commands.add_parser("deploy", help="build (or take --bundle) and upload a Space")
    deploy.add_argument("--repo-id", required=True, help="USER/NAME of the Space")
    deploy.add_argument("--private", action="store_true", help="create the Space as private")
    deploy.add_argument("--hardware", help="request hardware, e.g. zero-a10g or t4-small")
    deploy.add_argument("--bundle", type=Path, help="upload this built folder as it is")
    for command in (build, deploy):
        command.add_argument(
            "--with-weights",
            type=_ids,
            default=[],
            metavar="ID,...",
            help="pre-fetch these models' weights into the bundle",
        )
        command.add_argument(
            "--allow-non-commercial",
            action="store_true",
            help="allow weights whose licence is non-commercial (e.g. codeformer)",
        )
    return parser


def _build(args: argparse.Namespace, out: Path) -> Path:
    from spaces.build import build

    return build(out, args.with_weights, args.allow_non_commercial)


def _deploy(args: argparse.Namespace) -> str:
    from spaces.deploy import check_request, deploy

    check_request(args.repo_id, args.hardware)
    if args.bundle:
        result = deploy(args.bundle, args.repo_id, args.private, args.hardware)
    else:
        with tempfile.TemporaryDirectory(prefix="space-") as folder:
            bundle = _build(args, Path(folder) / "bundle")
            result = deploy(bundle, args.repo_id, args.private, args.hardware)
    hardware = f" (hardware requested: {result.hardware})" if result.hardware else ""
    return f"Deployed {result.url}{hardware}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            print(f"Space bundle written to {_build(args, args.out)}")
        else:
            print(_deploy(args))
    except (RestorationError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
