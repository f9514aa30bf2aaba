"""Start-up times: ``python -m pipelines models`` and app start to first served page.

Run: ``.venv/bin/python benchmarks/bench_startup.py [--runs 3]``. Targets: under 2 s for
the CLI listing and under 10 s from starting ``app.py`` to the first HTTP 200.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def time_models_listing() -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pipelines", "models"], cwd=ROOT, check=True, capture_output=True
    )
    return time.perf_counter() - started


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_first_page(timeout: float = 60) -> float:
    port = _free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - started < timeout:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the app did not serve a page in time")
    finally:
        process.terminate()
        process.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    listing = [time_models_listing() for _ in range(args.runs)]
    page = [time_first_page() for _ in range(args.runs)]
    print(f"python -m pipelines models : median {statistics.median(listing):.2f} s (target < 2 s)")
    print(f"app start -> first page    : median {statistics.median(page):.2f} s (target < 10 s)")


if __name__ == "__main__":
    main()
