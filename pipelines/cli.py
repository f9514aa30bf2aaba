"""What both command lines (``python -m pipelines``, ``python -m evaluation``) share."""

from __future__ import annotations

import argparse
import logging
import sys

from pipelines.errors import RestorationError


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed command's handler: our errors end as one line on stderr and status 1."""
    # Our errors already say what failed; the hub client's retry chatter would bury them.
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    try:
        return args.handler(args)
    except RestorationError as error:
        print(f"error: {str(error).splitlines()[0] if str(error) else error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
