"""``python -m evaluation``: score, leaderboard, show, and one-line errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evaluation", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_leaderboard_writes_exports_and_show_reads_them(tmp_path: Path) -> None:
    db, out = tmp_path / "lb.sqlite", tmp_path / "out"
    done = cli(
        "leaderboard", "--task", "sr", "--dataset", "builtin", "--degradation", "bicubic_x4",
        "--models", "span-x4-ch48", "--db", str(db), "--out", str(out), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["rows"][0]["model"] == "span-x4-ch48"
    assert {p.name for p in out.iterdir()} >= {
        "leaderboard.csv",
        "leaderboard.json",
        "bar_psnr_y_sr.html",
        "quality_vs_time.html",
        "images",
    }
    assert (out / "images" / "coffee" / "span-x4-ch48.png").is_file()
    shown = cli("show", "--task", "sr", "--db", str(db), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["rows"] == document["rows"]
    text = cli("show", "--db", str(db))
    assert "psnr_y_sr ↑" in text.stdout and "niqe ↓" in text.stdout


def test_score_two_files(tmp_path: Path) -> None:
    source = Image.open(ROOT / "examples" / "astronaut_hq.png").convert("RGB").crop((0, 0, 64, 48))
    source.save(tmp_path / "a.png")
    source.save(tmp_path / "b.png")
    done = cli("score", "--ref", str(tmp_path / "a.png"), "--dist", str(tmp_path / "b.png"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split() == ["image", "psnr", "ssim"]
    assert done.stdout.splitlines()[-1].split() == ["mean", "80.000000", "1.000000"]


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (False, ["--ref", "missing.png", "--dist", "b.png"], "missing.png does not exist"),
        (True, ["--ref", "a.png", "--dist", "small.png"], "must be the same size"),
        (True, ["--ref", "a.png", "--dist", "a.png", "--metrics", "psnr_y_sr"], "crop_border"),
        (True, ["--ref", "a.png", "--dist", "a.png", "--metrics", "psnr_x"], "Unknown metric"),
    ],
)
def test_score_errors_are_one_line(
    tmp_path: Path, make: bool, args: list[str], message: str
) -> None:
    if make:
        Image.new("RGB", (32, 24), (90, 120, 30)).save(tmp_path / "a.png")
        Image.new("RGB", (16, 12), (90, 120, 30)).save(tmp_path / "small.png")
    resolved = [str(tmp_path / a) if a.endswith(".png") else a for a in args]
    done = cli("score", *resolved)
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1
    assert message in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--models", "no-such-model"], "no-such-model"),
        (["--degradation", "bicubic_x5"], "Did you mean"),
        (["--dataset", "set5", "--dataset-dir", "/nonexistent"], "does not exist"),
    ],
)
def test_leaderboard_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    done = cli("leaderboard", "--db", str(tmp_path / "lb.sqlite"), *args)
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1
    assert message in done.stderr
