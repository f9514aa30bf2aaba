"""Leaderboard runs, the SQLite store, plots and exports, and the Evaluation tab's API."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluation import leaderboard as lb
from evaluation import plots

ROOT = Path(__file__).resolve().parent.parent
MODELS = ["span-x4-ch48", "srmd", "span-x2-ch48"]
METRICS = ["psnr_y_sr", "ssim_y_sr", "niqe"]


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> lb.LeaderboardRun:
    """Two bundled SR models and the baselines on the builtin set (64x64 / 75x50 inputs)."""
    images = tmp_path_factory.mktemp("run") / "images"
    return lb.run_leaderboard(
        "sr", "builtin", "bicubic_x4", MODELS, METRICS, seed=0, output_dir=images
    )


def test_run_reports_every_model_and_its_reason(board: lb.LeaderboardRun) -> None:
    outcomes = {m.model: m for m in board.models}
    assert list(outcomes) == [*MODELS, "bicubic", "lanczos"]
    assert {m for m, o in outcomes.items() if o.status == "ok"} == {
        "span-x4-ch48",
        "srmd",
        "bicubic",
        "lanczos",
    }
    assert "x4" in outcomes["span-x2-ch48"].reason
    assert outcomes["span-x4-ch48"].device == "cpu (ncnn)"
    assert set(board.samples) == {"astronaut", "coffee"}
    assert board.samples["coffee"]["drawn"] == {"gt_size": [300, 200], "lq_size": [75, 50]}
    assert board.metrics["psnr_y_sr"]["settings"]["crop_border"] == 4
    assert board.code_version


def test_table_is_sorted_by_the_primary_metric(board: lb.LeaderboardRun) -> None:
    table = board.table()
    assert list(table.columns[:6]) == ["model", "dataset", "degradation", *METRICS]
    assert table["psnr_y_sr"].is_monotonic_decreasing
    assert set(table["model"]) == {"span-x4-ch48", "srmd", "bicubic", "lanczos"}
    assert (table["images"] == 2).all()
    assert table.attrs["lower_better"] == {"psnr_y_sr": False, "ssim_y_sr": False, "niqe": True}
    assert "4 px border cropped" in table.attrs["convention"]
    # a real SR model beats bicubic interpolation on PSNR-Y
    by_model = table.set_index("model")
    assert by_model.loc["span-x4-ch48", "psnr_y_sr"] > by_model.loc["bicubic", "psnr_y_sr"]


def test_sorting_follows_lower_better_not_names() -> None:
    records = pd.DataFrame(
        [
            {"model": m, "dataset": "d", "degradation": "g", "config_key": "k", "image": "i",
             "metric": "made_up", "value": v, "runtime_s": 1.0, "device": "cpu",
             "code_version": "x", "created_at": "t"}
            for m, v in (("a", 3.0), ("b", 1.0), ("c", 2.0))
        ]
    )  # fmt: skip
    assert list(lb.summarize(records, {"made_up": True})["model"]) == ["b", "c", "a"]
    assert list(lb.summarize(records, {"made_up": False})["model"]) == ["a", "c", "b"]


def test_store_persists_and_rerun_replaces_rows(board: lb.LeaderboardRun, tmp_path: Path) -> None:
    db = tmp_path / "lb.sqlite"
    written = lb.LeaderboardStore(db).save(board)
    assert written == 4 * 2 * len(METRICS)
    again = lb.leaderboard_table("sr", "builtin", "bicubic_x4", db=db)  # a new store object
    pd.testing.assert_frame_equal(again, board.table(), check_dtype=False)
    assert again.attrs == board.table().attrs
    lb.LeaderboardStore(db).save(board)
    assert lb.LeaderboardStore(db).count() == written
    # a later run of the same configuration with other models adds to it, keeps the rest
    baselines_only = lb.run_leaderboard("sr", "builtin", "bicubic_x4", [], METRICS)
    lb.LeaderboardStore(db).save(baselines_only)
    assert lb.LeaderboardStore(db).count() == written
    assert set(lb.leaderboard_table(db=db)["model"]) == set(board.table()["model"])
    assert lb.leaderboard_table(task="anime", db=db).empty


def test_values_equal_the_score_command(board: lb.LeaderboardRun, tmp_path: Path) -> None:
    images = board.output_dir
    assert images is not None
    refs, dists = tmp_path / "gt", tmp_path / "span"
    refs.mkdir()
    dists.mkdir()
    for name in board.samples:
        shutil.copy(images / name / "gt.png", refs / f"{name}.png")
        shutil.copy(images / name / "span-x4-ch48.png", dists / f"{name}.png")
    scored = {}
    for metrics, border in (("psnr_y_sr,ssim_y_sr", "4"), ("niqe", "0")):
        done = subprocess.run(
            [sys.executable, "-m", "evaluation", "score", "--ref", str(refs), "--dist",
             str(dists), "--metrics", metrics, "--crop-border", border, "--json"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        document = json.loads(done.stdout)
        for row in document["images"]:
            for metric in metrics.split(","):
                scored[(row["image"], metric)] = row[metric]
    ours = {(s.image, s.metric): s.value for s in board.scores if s.model == "span-x4-ch48"}
    assert ours.keys() == scored.keys()
    for key, value in ours.items():
        assert scored[key] == pytest.approx(value, abs=1e-9), key


def test_plots_render(board: lb.LeaderboardRun) -> None:
    table = board.table()
    figures = plots.all_figures(table)
    assert set(figures) == {"bar_psnr_y_sr", "bar_ssim_y_sr", "bar_niqe", "quality_vs_time"}
    for figure in figures.values():
        assert len(figure.data) == 1 and len(figure.data[0].x) == len(table)
    assert list(figures["bar_niqe"].data[0].y) == sorted(table["niqe"])  # lower first
    assert len(plots.bars_overview(table).data) == len(METRICS)


def test_exports_parse_back(board: lb.LeaderboardRun, tmp_path: Path) -> None:
    table = board.table()
    files = lb.write_exports(table, tmp_path, board)
    csv = pd.read_csv(files["csv"])
    assert list(csv.columns) == list(table.columns)
    np.testing.assert_allclose(csv[METRICS].to_numpy(), table[METRICS].to_numpy())
    document = json.loads(files["json"].read_text())
    assert [row["model"] for row in document["rows"]] == list(table["model"])
    assert document["lower_better"]["niqe"] is True
    assert document["run"]["samples"]["astronaut"]["name"] == "bicubic_x4"
    assert "<html>" in files["quality_vs_time"].read_text()
    assert (tmp_path / "plotly.min.js").is_file()  # shared by the charts, works offline


def test_infinite_psnr_is_json_safe() -> None:
    table = pd.DataFrame({"model": ["a"], "psnr_y_sr": [float("inf")], "x": [float("nan")]})
    assert lb.to_json_records(table) == [{"model": "a", "psnr_y_sr": "inf", "x": None}]


def test_unknown_names_fail_clearly() -> None:
    from pipelines.errors import RestorationError

    with pytest.raises(RestorationError, match="Did you mean bicubic_x4"):
        lb.run_leaderboard("sr", "builtin", "bicubic_x5", [])
    with pytest.raises(RestorationError, match="leaderboards exist for"):
        lb.run_leaderboard("colour", "builtin", "bicubic_x4", [])


def test_evaluate_and_leaderboard_through_the_api(live_server: str) -> None:
    from gradio_client import Client

    client = Client(live_server, verbose=False)
    evaluated = client.predict(
        "sr", "builtin", "bicubic_x4", ["span-x4-ch48"], METRICS, 0, "", api_name="/evaluate"
    )
    header, _table, records, _bars, _scatter, files, _menu = evaluated  # the State stays
    assert "Convention" in header
    assert [row["model"] for row in records][:1] == ["span-x4-ch48"]
    assert {Path(f).suffix for f in files} == {".csv", ".json"}
    stored = client.predict("sr", "builtin", "bicubic_x4", api_name="/leaderboard")
    assert stored[2] == records
