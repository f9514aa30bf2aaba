"""The Jobs tab through gradio_client against a live ``python app.py``: its in-process
worker runs what the tab queues; the report and the ZIP come back as files."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from tests.conftest import natural_image


@pytest.fixture(scope="module")
def client(live_server: str) -> Client:
    return Client(live_server, verbose=False)


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    single = tmp_path / "single.png"
    natural_image(24, 24).save(single)
    reference = tmp_path / "ref" / "single.png"
    reference.parent.mkdir()
    natural_image(96, 96).save(reference)
    archive = tmp_path / "batch.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for i in range(2):
            buffer = io.BytesIO()
            natural_image(20 + i, 20).save(buffer, "PNG")
            zipped.writestr(f"folder/zipped{i}.png", buffer.getvalue())
        zipped.writestr("broken.png", b"not an image")
    return single, reference, archive


def _completed(summary: str) -> int:
    """The completed count of the tab's summary line (``**N** completed``)."""
    return int(re.search(r"\*\*(\d+)\*\* completed", summary).group(1))


def _rows(table: dict) -> list[dict]:
    return [dict(zip(table["headers"], row, strict=True)) for row in table["data"]]


def test_the_tab_queues_files_and_zips_and_hands_back_report_and_results(
    client: Client, tmp_path: Path
) -> None:
    single, reference, archive = _files(tmp_path)
    # The live server's queue is shared with other tests (the browser tests queue jobs too).
    completed_before = _completed(client.predict(api_name="/jobs_status")[0])
    note, _summary, _table = client.predict(
        [handle_file(single), handle_file(archive)],
        [handle_file(reference)],
        "sr",
        "bicubic",
        api_name="/jobs_submit",
    )
    assert note.startswith("Queued 4 jobs")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        summary, table = client.predict(api_name="/jobs_status")
        rows = [r for r in _rows(table) if r["model"] == "bicubic"]
        if rows and all(r["status"] in ("completed", "failed") for r in rows):
            break
        time.sleep(0.5)
    by_file = {r["file"]: r for r in rows}
    assert {by_file[n]["status"] for n in ("single.png", "zipped0.png", "zipped1.png")} == {
        "completed"
    }
    assert by_file["broken.png"]["status"] == "failed"
    assert by_file["broken.png"]["error"].startswith("bad input file:")
    assert _completed(summary) == completed_before + 3

    ids = ",".join(str(by_file[n]["id"]) for n in ("single.png", "zipped0.png"))
    report = json.loads(Path(client.predict(ids, api_name="/jobs_report")).read_text())
    assert report["jobs"] == 2 and report["counts"]["completed"] == 2
    (model,) = report["models"]
    assert model["benchmarks"] == 2 and model["mean"]["psnr"] is not None  # one had a reference
    with zipfile.ZipFile(client.predict(ids, api_name="/jobs_export")) as results:
        names = sorted(results.namelist())
    assert len(names) == 3 and "benchmark_report.json" in names
    assert all(n.endswith(".png") for n in names if n.startswith("images/"))


def test_an_unsafe_zip_is_refused_with_its_reason(client: Client, tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../../escape.png", b"x")
    with pytest.raises(Exception, match="outside its folder"):
        client.predict([handle_file(archive)], None, "sr", "bicubic", api_name="/jobs_submit")
    with pytest.raises(Exception, match="not a"):
        client.predict([handle_file(archive)], None, "colorize", "bicubic", api_name="/jobs_submit")
