"""Load test: a burst of concurrent ``gradio_client`` calls to ``/super_resolution``.

Run: ``.venv/bin/python benchmarks/load_test.py [--requests 20] [--size 64]
[--rss-bound-mb 1000] [--queue-size N] [--url http://127.0.0.1:PORT/ --pid PID] [--json]``.

Without ``--url`` it starts ``python app.py`` on a free loopback port (temporary output
folder, offline), as ``make demo`` would. Each caller has its own client, as separate
users would; all calls are released at once. Every call must succeed, or be refused
cleanly with gradio's "Queue is full" when more wait than RESTORATION_QUEUE_SIZE; any
other error fails the run. The server's resident memory (its process and children) is
sampled every 50 ms; a peak above ``--rss-bound-mb`` fails the run too. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
from gradio_client import Client, handle_file
from gradio_client.utils import QueueError
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MODEL = "span-x4-ch48"


@dataclass
class Outcome:
    status: str  # "ok", "queue_full" or "error"
    seconds: float
    detail: str = ""


@dataclass
class LoadReport:
    requests: int
    ok: int
    queue_full: int
    errors: list[str]
    wall_s: float
    latency_p50_s: float
    latency_max_s: float
    rss_start_mb: float
    rss_peak_mb: float
    rss_bound_mb: float
    extra: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.errors and self.rss_peak_mb <= self.rss_bound_mb


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB (0 once it is gone)."""
    try:
        process = psutil.Process(pid)
        members = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 1e6


class RssSampler:
    """Samples a process tree's RSS in a thread; ``peak_mb`` is the highest seen."""

    def __init__(self, pid: int, every_s: float = 0.05) -> None:
        self.pid, self.every_s = pid, every_s
        self.peak_mb = tree_rss_mb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, tree_rss_mb(self.pid))
            self._stop.wait(self.every_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, tree_rss_mb(self.pid))


def check_loopback(url: str) -> None:
    host = urllib.parse.urlparse(url).hostname
    if host not in LOOPBACK:
        raise SystemExit(f"error: the load test only targets this machine, not {host!r}.")


def server_pid(url: str) -> int:
    """The process listening on the URL's loopback port."""
    port = urllib.parse.urlparse(url).port
    for connection in psutil.net_connections(kind="tcp"):
        listening = connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
        if listening and connection.pid:
            return connection.pid
    raise SystemExit(f"error: no process of ours listens on port {port}; pass --pid.")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_serving(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"error: the app exited with status {process.returncode}.")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"error: the app did not serve {url} within {timeout:.0f} s.")


@contextmanager
def started_app(queue_size: int | None) -> Iterator[tuple[str, int]]:
    """``python app.py`` on a free loopback port with a temporary output folder."""
    with tempfile.TemporaryDirectory(prefix="load-test-") as folder:
        env = dict(
            os.environ,
            GRADIO_ANALYTICS_ENABLED="False",
            HF_HUB_OFFLINE="1",
            RESTORATION_OUTPUT_DIR=str(Path(folder) / "outputs"),
            RESTORATION_LEADERBOARD_DB=str(Path(folder) / "leaderboard.sqlite"),
        )
        if queue_size is not None:
            env["RESTORATION_QUEUE_SIZE"] = str(queue_size)
        port = _free_port()
        process = subprocess.Popen(
            [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            _wait_until_serving(url, process)
            yield url, process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def burst_image(folder: Path, size: int) -> Path:
    path = folder / f"load_{size}.png"
    source = Image.open(ROOT / "examples" / "astronaut_hq.png").convert("RGB")
    source.resize((size, size), Image.Resampling.BICUBIC).save(path)
    return path


def upscale_call(url: str, image: Path, model: str) -> Callable[[], tuple]:
    client = Client(url, verbose=False)

    def call() -> tuple:
        return client.predict(
            handle_file(str(image)),
            model,
            4,
            "Scale factor",
            0,
            -1,
            0,
            api_name="/super_resolution",
        )

    return call


def _timed(call: Callable[[], tuple], start: threading.Barrier) -> Outcome:
    start.wait()
    began = time.perf_counter()
    try:
        call()
    except QueueError as error:
        return Outcome("queue_full", time.perf_counter() - began, str(error))
    except Exception as error:
        return Outcome("error", time.perf_counter() - began, f"{type(error).__name__}: {error}")
    return Outcome("ok", time.perf_counter() - began)


def burst(
    url: str, pid: int, image: Path, requests: int, model: str, bound_mb: float
) -> LoadReport:
    """``requests`` callers released at once; returns their outcomes and the memory peak."""
    calls = [upscale_call(url, image, model) for _ in range(requests)]
    start = threading.Barrier(requests)
    outcomes: list[Outcome] = [Outcome("error", 0.0, "did not finish")] * requests
    rss_start = tree_rss_mb(pid)

    def run(index: int) -> None:
        outcomes[index] = _timed(calls[index], start)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(requests)]
    began = time.perf_counter()
    with RssSampler(pid) as sampler:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    wall = time.perf_counter() - began
    finished = [o.seconds for o in outcomes if o.status == "ok"] or [0.0]
    return LoadReport(
        requests=requests,
        ok=sum(o.status == "ok" for o in outcomes),
        queue_full=sum(o.status == "queue_full" for o in outcomes),
        errors=[o.detail for o in outcomes if o.status == "error"],
        wall_s=round(wall, 2),
        latency_p50_s=round(statistics.median(finished), 2),
        latency_max_s=round(max(finished), 2),
        rss_start_mb=round(rss_start),
        rss_peak_mb=round(sampler.peak_mb),
        rss_bound_mb=bound_mb,
    )


def _print(report: LoadReport, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(report) | {"passed": report.passed}, indent=2))
        return
    print(
        f"{report.requests} concurrent /super_resolution calls: {report.ok} ok, "
        f"{report.queue_full} refused cleanly (queue full), {len(report.errors)} errors"
    )
    print(
        f"wall {report.wall_s} s, latency median {report.latency_p50_s} s, "
        f"max {report.latency_max_s} s"
    )
    print(
        f"server RSS: {report.rss_start_mb:.0f} MB before, peak {report.rss_peak_mb:.0f} MB "
        f"(bound {report.rss_bound_mb:.0f} MB) -> {'PASS' if report.passed else 'FAIL'}"
    )
    for error in report.errors:
        print(f"  error: {error}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--size", type=int, default=64, help="input side in pixels")
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--rss-bound-mb", type=float, default=1000)
    parser.add_argument("--queue-size", type=int, help="RESTORATION_QUEUE_SIZE of the app")
    parser.add_argument("--url", help="a running app on this machine (default: start one)")
    parser.add_argument("--pid", type=int, help="its process id (default: found by port)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        image = burst_image(Path(folder), args.size)
        if args.url:
            check_loopback(args.url)
            pid = args.pid or server_pid(args.url)
            report = burst(args.url, pid, image, args.requests, args.model, args.rss_bound_mb)
        else:
            with started_app(args.queue_size) as (url, pid):
                warm = time.perf_counter()
                upscale_call(url, image, args.model)()  # the model's first load, not timed
                warm_s = round(time.perf_counter() - warm, 2)
                report = burst(url, pid, image, args.requests, args.model, args.rss_bound_mb)
                report.extra["first_call_s"] = warm_s
    _print(report, args.json)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
