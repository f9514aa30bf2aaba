"""The served app under pressure: file route, upload size, time limit, queue, pruning, load.

Most tests use a second server started with tight limits (queue of 1, 2 s per request,
100 KB uploads, outputs kept one hour) so each limit can be reached quickly.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from benchmarks.load_test import burst, burst_image, server_pid
from pipelines.errors import RestorationError
from tests.conftest import ROOT, natural_image, serve_app
from ui.limits import (
    Deadline,
    TimeLimitError,
    check_settings,
    max_output_age_s,
    prune_outputs,
)

DAY = 24 * 3600


@dataclass(frozen=True)
class Server:
    url: str
    outputs: Path
    pid: int


def _seed_outputs(outputs: Path) -> None:
    """One result from two days ago (to be pruned) and one from now (to be kept)."""
    old = outputs / "old-result"
    old.mkdir(parents=True)
    (old / "full.png").write_bytes(b"old")
    stamp = time.time() - 2 * DAY
    os.utime(old / "full.png", (stamp, stamp))
    (outputs / "fresh").mkdir()
    natural_image(8, 8).save(outputs / "fresh" / "full.png")


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    outputs = tmp_path_factory.mktemp("limited-outputs")
    _seed_outputs(outputs)
    env = {
        "RESTORATION_OUTPUT_DIR": str(outputs),
        "RESTORATION_LEADERBOARD_DB": str(tmp_path_factory.mktemp("limited-lb") / "lb.sqlite"),
        "RESTORATION_QUEUE_SIZE": "1",
        "RESTORATION_REQUEST_TIMEOUT": "2",
        "RESTORATION_MAX_UPLOAD": "100kb",
        "RESTORATION_OUTPUT_MAX_AGE_HOURS": "1",
    }
    with serve_app(env, tmp_path_factory.mktemp("limited-log")) as app:
        yield Server(app.url, outputs, app.pid)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _file_route(server: Server, path: str) -> tuple[int, bytes]:
    return _get(f"{server.url}gradio_api/file={urllib.parse.quote(path)}")


def test_files_outside_the_output_folder_are_refused(limited: Server) -> None:
    secret = ROOT / "app.py"
    outside = [
        "/etc/passwd",
        str(secret),
        str(ROOT / "requirements.txt"),
        f"{limited.outputs}/../../{secret.relative_to('/')}",  # climbing out of outputs
        "../app.py",
        "http://127.0.0.1:9/x",
    ]
    for path in outside:
        status, body = _file_route(limited, path)
        assert status == 403, (path, status)
        assert b"import gradio" not in body and b"root:" not in body
    status, _ = _get(f"{limited.url}gradio_api/file/{secret}")  # the older spelling
    assert status == 403


def test_a_result_in_the_output_folder_is_served(limited: Server) -> None:
    fresh = limited.outputs / "fresh" / "full.png"
    status, body = _file_route(limited, str(fresh))
    assert status == 200 and body == fresh.read_bytes()


def test_old_outputs_are_pruned_and_fresh_ones_kept(limited: Server) -> None:
    deadline = time.monotonic() + 15
    while (limited.outputs / "old-result").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not (limited.outputs / "old-result").exists()
    assert (limited.outputs / "fresh" / "full.png").is_file()


def test_an_upload_over_the_limit_is_refused(limited: Server) -> None:
    big = os.urandom(150_000)
    response = httpx.post(
        f"{limited.url}gradio_api/upload", files={"files": ("big.png", big)}, timeout=30
    )
    assert response.status_code == 413
    small = httpx.post(
        f"{limited.url}gradio_api/upload", files={"files": ("small.png", b"x" * 1000)}, timeout=30
    )
    assert small.status_code == 200


def _sr(client: Client, image: Path, model: str, tile: int = 0) -> tuple:
    return client.predict(
        handle_file(str(image)), model, 4, "Scale factor", 0, -1, tile, api_name="/super_resolution"
    )


def test_a_request_past_the_time_limit_stops_with_a_clear_error(
    limited: Server, tmp_path: Path
) -> None:
    image = tmp_path / "photo.png"
    natural_image(192, 192).save(image)
    client = Client(limited.url, verbose=False)
    started = time.monotonic()
    with pytest.raises(AppError, match=r"2 s time limit per request .*RESTORATION_REQUEST_TIMEOUT"):
        _sr(client, image, "realesrgan-x4plus", tile=32)  # 36 tiles, ~0.3 s each here
    assert time.monotonic() - started < 30  # stopped between tiles, not run to the end
    _, full, _ = _sr(client, tmp_path / "photo.png", "bicubic")  # the server still serves
    assert Path(full).is_file()


def test_a_burst_beyond_the_queue_is_refused_cleanly(limited: Server, tmp_path: Path) -> None:
    image = burst_image(tmp_path, 32)
    _sr(Client(limited.url, verbose=False), image, "span-x4-ch48")  # load it within the limit
    report = burst(limited.url, limited.pid, image, 5, "span-x4-ch48", 2000)
    assert not report.errors
    assert report.ok >= 1 and report.queue_full >= 1
    assert report.ok + report.queue_full == 5


def test_a_small_burst_on_the_default_queue_all_succeeds(live_server: str, tmp_path: Path) -> None:
    """A smaller run of benchmarks/load_test.py; its speed and memory bounds are checked there."""
    pid = server_pid(live_server)
    report = burst(live_server, pid, burst_image(tmp_path, 32), 6, "span-x4-ch48", 2000)
    assert report.ok == 6 and not report.errors and report.queue_full == 0
    assert 0 < report.rss_start_mb <= report.rss_peak_mb


def test_bad_uploads_get_a_reason_and_the_server_keeps_serving(
    live_server: str, tmp_path: Path
) -> None:
    client = Client(live_server, verbose=False)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    truncated = tmp_path / "cut.png"
    natural_image(40, 30).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    for bad, reason in [(empty, "empty"), (text, "not an image"), (truncated, "truncated")]:
        with pytest.raises(AppError, match=reason):
            _sr(client, bad, "bicubic")
    good = tmp_path / "good.png"
    natural_image(16, 12).save(good)
    _, full, _ = _sr(client, good, "bicubic")
    assert Path(full).is_file()


def test_deadline_checks_elapsed_time() -> None:
    Deadline(seconds=60).check()
    Deadline(seconds=0, started=0).check()  # 0 = no limit
    with pytest.raises(TimeLimitError, match=r"0\.5 s time limit"):
        Deadline(seconds=0.5, started=time.monotonic() - 1).check()


def test_prune_outputs_deletes_only_old_files_and_keeps_databases(tmp_path: Path) -> None:
    now = time.time()
    for name, age in [("a/old.png", 2 * DAY), ("a/new.png", 0), ("b/old.png", 2 * DAY)]:
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x")
        os.utime(path, (now - age, now - age))
    database = tmp_path / "leaderboard.sqlite"
    database.write_bytes(b"db")
    os.utime(database, (now - 9 * DAY, now - 9 * DAY))
    outside = tmp_path.parent / f"{tmp_path.name}-outside.png"
    outside.write_bytes(b"keep")
    os.utime(outside, (now - 9 * DAY, now - 9 * DAY))
    (tmp_path / "link.png").symlink_to(outside)
    os.utime(tmp_path / "link.png", (now - 9 * DAY, now - 9 * DAY), follow_symlinks=False)

    assert prune_outputs(tmp_path, DAY, now=now) == 3  # two old files and the old link
    assert (tmp_path / "a" / "new.png").is_file() and not (tmp_path / "b").exists()
    assert database.is_file() and outside.read_bytes() == b"keep"
    assert prune_outputs(tmp_path, 0, now=now) == 0  # 0 = keep forever


def test_a_bad_limit_setting_is_named_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESTORATION_REQUEST_TIMEOUT", "ten minutes")
    with pytest.raises(RestorationError, match="RESTORATION_REQUEST_TIMEOUT must be a number"):
        check_settings()
    monkeypatch.setenv("RESTORATION_REQUEST_TIMEOUT", "600")
    monkeypatch.setenv("RESTORATION_OUTPUT_MAX_AGE_HOURS", "1.5")
    check_settings()
    assert Deadline().seconds == 600 and max_output_age_s() == 5400


def test_evaluate_reads_dataset_folders_only_from_the_datasets_roots(
    live_server: str, tmp_path: Path
) -> None:
    """A caller naming any folder on the server (its own tmp, /etc) is refused by name."""
    outside = tmp_path / "gt"
    outside.mkdir()
    natural_image(32, 32).save(outside / "a.png")
    client = Client(live_server, verbose=False)
    for folder in (str(tmp_path), "/etc", "../../etc"):
        with pytest.raises(AppError, match="reads datasets only from"):
            client.predict(
                "sr",
                "folder",
                "bicubic_x4",
                ["bicubic"],
                ["psnr"],
                0,
                folder,
                api_name="/evaluate",
            )
