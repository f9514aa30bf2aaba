"""Shared fixtures: small real images and a live app server started per test session."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def natural_image(width: int, height: int, name: str = "astronaut_hq.png") -> Image.Image:
    """A crop of a real photo (a natural image, not noise) of the given size."""
    source = Image.open(EXAMPLES / name).convert("RGB")
    return source.crop((60, 40, 60 + width, 40 + height))


@pytest.fixture()
def photo_path(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    natural_image(32, 24).save(path)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_serving(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"app did not serve {url} within {timeout} s")


@pytest.fixture(scope="session")
def live_weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The live server's weights folder: tests place checkpoints there as a user would."""
    return tmp_path_factory.mktemp("live-weights")


@dataclass(frozen=True)
class ServedApp:
    url: str
    pid: int


@contextlib.contextmanager
def serve_app(env: dict[str, str], log_dir: Path, cwd: Path = ROOT) -> Iterator[ServedApp]:
    """``python app.py`` in ``cwd`` on a free loopback port with ``env`` added to this
    process's environment (offline, no analytics); stopped on exit."""
    port = _free_port()
    log = log_dir / "server.log"
    environment = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1") | env
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
            cwd=cwd,
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_serving(url, process, timeout=120)
    except RuntimeError as error:
        process.kill()
        pytest.fail(f"{error}\n--- server log ---\n{log.read_text()[-4000:]}")
    try:
        yield ServedApp(url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, live_weights_dir: Path) -> Iterator[str]:
    """``python app.py`` on a free port, as a user would start it; yields its URL."""
    env = {
        "RESTORATION_OUTPUT_DIR": str(tmp_path_factory.mktemp("outputs")),
        "RESTORATION_WEIGHTS_DIR": str(live_weights_dir),
        "RESTORATION_LEADERBOARD_DB": str(tmp_path_factory.mktemp("leaderboard") / "lb.sqlite"),
        # The app's in-process job worker uses its own queue (tests/test_jobs_ui.py).
        "RESTORATION_JOBS_DB": str(tmp_path_factory.mktemp("jobs") / "jobs.sqlite"),
        "RESTORATION_JOBS_STORAGE": str(tmp_path_factory.mktemp("job-files")),
        "RESTORATION_JOBS_POLL": "0.2",
    }
    with serve_app(env, tmp_path_factory.mktemp("server")) as app:
        yield app.url


@pytest.fixture(scope="session")
def bopb_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-weight BOPB checkpoints in the official layout, written once per session
    (read-only for tests: copy a file before damaging it)."""
    from tests.bopb_fixtures import FAST_FACE_WIDTH, write_bopb_checkpoints

    root = tmp_path_factory.mktemp("bopb-weights")
    write_bopb_checkpoints(root, face_width=FAST_FACE_WIDTH)
    return root


@pytest.fixture(scope="session")
def deoldify_stand_ins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-weight DeOldify generators at their official names, written once per session
    (read-only for tests)."""
    from tests.deoldify_fixtures import GENERATORS, write_stand_in

    folder = tmp_path_factory.mktemp("deoldify-weights")
    for card_id in GENERATORS:
        write_stand_in(card_id, folder)
    return folder


@pytest.fixture(scope="session")
def served_deoldify(live_server: str, live_weights_dir: Path, deoldify_stand_ins: Path) -> str:
    """The live server with DeOldify artistic's stand-in placed in its weights folder, as a
    user places the real file; yields the server's URL."""
    name = "ColorizeArtistic_gen.pth"
    if not (live_weights_dir / name).exists():
        os.link(deoldify_stand_ins / name, live_weights_dir / name)
    return live_server


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
