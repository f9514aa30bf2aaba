"""Compare: the CLI on real bundled models, scores equal to `python -m evaluation score`,
sweeps (distinct outputs, one model load), crop strip size, leaderboard entry, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluation import __main__ as evaluation_cli
from evaluation.leaderboard import LeaderboardStore
from pipelines import __main__ as pipelines_cli
from pipelines import compare
from pipelines.backends.ncnn import runtime
from pipelines.errors import InvalidOptionError, UnknownModelError
from pipelines.images import load_image
from tests.conftest import ROOT, natural_image

SR_MODELS = ["span-x4-ch48", "span-x4-ch52", "span-clearreality-x4", "bicubic"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 24x24 input and its 96x96 ground truth (a crop of a real photo)."""
    folder = tmp_path_factory.mktemp("pair")
    reference = natural_image(96, 96)
    reference.save(folder / "reference.png")
    reference.resize((24, 24), Image.Resampling.BICUBIC).save(folder / "small.png")
    return folder / "small.png", folder / "reference.png"


@pytest.fixture(scope="module")
def cli_run(pair: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``python -m pipelines compare`` as a user runs it: 3 bundled SR models + bicubic."""
    small, reference = pair
    out = tmp_path_factory.mktemp("compare")
    command = [
        sys.executable, "-m", "pipelines", "compare", "--task", "sr",
        "--models", ",".join(SR_MODELS), "--input", str(small), "--reference", str(reference),
        "--out", str(out), "--crop", "8,16,32,24", "--zoom", "3", "--json",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return {"out": out, "document": json.loads(done.stdout)}


def test_cli_gives_one_output_per_model_all_the_same_size(cli_run: dict) -> None:
    rows = cli_run["document"]["rows"]
    assert [row["model"] for row in rows] == SR_MODELS
    for row in rows:
        assert (row["width"], row["height"]) == (96, 96)
        assert Image.open(row["file"]).size == (96, 96)
        assert row["runtime_s"] >= 0 and row["peak_rss_mb"] >= 0
        assert row["error"] == ""
    assert len({Path(row["file"]).read_bytes() for row in rows}) == len(SR_MODELS)


def _score(capsys: pytest.CaptureFixture, ref: Path, dist: Path, *options: str) -> dict:
    argv = ["score", "--ref", str(ref), "--dist", str(dist), "--json", *options]
    assert evaluation_cli.main(argv) == 0
    return {row["image"]: row for row in json.loads(capsys.readouterr().out)["images"]}


def test_cli_table_equals_evaluation_score_on_the_same_files(
    cli_run: dict, pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    rows = cli_run["document"]["rows"]
    references = tmp_path / "refs"  # the reference once per output name: a folder pair
    references.mkdir()
    for row in rows:
        shutil.copy(pair[1], references / Path(row["file"]).name)
    sr = _score(
        capsys, references, cli_run["out"], "--metrics", "psnr_y_sr,ssim_y_sr", "--crop-border", "4"
    )
    niqe = _score(capsys, references, cli_run["out"], "--metrics", "niqe")
    assert cli_run["document"]["metrics"]["psnr_y_sr"]["settings"]["crop_border"] == 4
    for row in rows:
        stem = Path(row["file"]).stem
        assert row["psnr_y_sr"] == sr[stem]["psnr_y_sr"]
        assert row["ssim_y_sr"] == sr[stem]["ssim_y_sr"]
        assert row["niqe"] == niqe[stem]["niqe"]
    best = cli_run["document"]["best"]
    assert best["psnr_y_sr"] == max(rows, key=lambda r: r["psnr_y_sr"])["model"]
    assert best["niqe"] == min(rows, key=lambda r: r["niqe"])["model"]


def test_cli_writes_a_crop_strip_of_the_stated_size(cli_run: dict) -> None:
    out = cli_run["out"]
    strip = Image.open(out / "crop_strip.png")
    tiles = 1 + len(SR_MODELS) + 1  # input, every output, reference
    expected = compare.strip_size(tiles, compare.Region(8, 16, 32, 24), 3)
    assert strip.size == expected == (tiles * 96 + (tiles - 1) * compare.STRIP_GAP, 22 + 72)
    # the first output's tile is its crop, magnified x3 with nearest-neighbour
    pixels = np.asarray(strip.convert("RGB"))
    left = 96 + compare.STRIP_GAP
    tile = pixels[compare.STRIP_LABEL_HEIGHT :, left : left + 96]
    crop = np.asarray(Image.open(out / "span-x4-ch48.png").convert("RGB"))[16:40, 8:40]
    assert np.array_equal(tile, np.repeat(np.repeat(crop, 3, axis=0), 3, axis=1))
    assert {"compare.csv", "compare.json", "input.png", "reference.png"} <= {
        p.name for p in out.iterdir()
    }


def test_waifu2x_noise_sweep_gives_five_different_outputs(
    pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = [
        "compare", "--task", "sr", "--models", "waifu2x-upconv7-photo",
        "--sweep", "noise=-1,0,1,2,3", "--input", str(pair[0]), "--out", str(tmp_path), "--json",
    ]  # fmt: skip
    assert pipelines_cli.main(argv) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [row["model"] for row in rows] == [
        f"waifu2x-upconv7-photo noise={n}" for n in (-1, 0, 1, 2, 3)
    ]
    outputs = [load_image(row["file"]).rgb for row in rows]
    assert all(o.shape == (48, 48, 3) for o in outputs)
    for i in range(5):
        for j in range(i + 1, 5):
            assert np.abs(outputs[i] - outputs[j]).max() > 1 / 255, (i, j)


def test_a_sweep_loads_its_model_once(pair: tuple[Path, Path], tmp_path: Path) -> None:
    picture = load_image(pair[0])
    runtime.clear_cache()
    sweep = compare.parse_sweep("noise=0,1,2", "sr")  # SRMD takes noise as an input map
    *_, run = compare.compare("sr", picture, ["srmd"], tmp_path / "srmd", sweep=sweep)
    assert [p.ok for p in run.panes] == [True] * 3
    assert len(runtime._cache) == 1
    runtime.clear_cache()
    sweep = compare.parse_sweep("outscale=2,3,4", "sr")
    *_, run = compare.compare("sr", picture, ["span-x4-ch48"], tmp_path / "span", sweep=sweep)
    assert [p.width for p in run.panes] == [48, 72, 96]
    assert len(runtime._cache) == 1
    strip, region = compare.crop_strip(run, zoom=1)  # mixed sizes: same relative place
    assert (strip.width, strip.height) == compare.strip_size(4, region, 1)


def test_save_to_leaderboard_stores_a_one_image_entry(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    picture, reference = load_image(pair[0]), load_image(pair[1])
    models = ["span-x4-ch48", "bicubic"]
    *_, run = compare.compare("sr", picture, models, tmp_path / "out", reference=reference)
    db = tmp_path / "lb.sqlite"
    assert compare.save_to_leaderboard(run, db) == 2 * len(run.plan.metrics)
    records = LeaderboardStore(db).records(task="sr")
    assert set(records["dataset"]) == {compare.leaderboard_run(run).dataset}
    for pane in run.panes:
        stored = records[records["model"] == pane.label].set_index("metric")["value"]
        assert stored.to_dict() == pane.scores
    compare.save_to_leaderboard(run, db)  # saving again replaces, never duplicates
    assert LeaderboardStore(db).count() == 2 * len(run.plan.metrics)


def test_a_failing_variant_is_reported_and_the_others_still_run(
    pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # realesr-general-x4v3 needs a download, which is not here: its pane fails
    argv = [
        "compare", "--models", "bicubic,realesr-general-x4v3", "--input", str(pair[0]),
        "--out", str(tmp_path),
    ]  # fmt: skip
    assert pipelines_cli.main(argv) == 1
    captured = capsys.readouterr()
    assert "realesr-general-x4v3:" in captured.err and "1 of 2 runs failed" in captured.err
    assert (tmp_path / "bicubic.png").is_file() and (tmp_path / "crop_strip.png").is_file()


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"models": ["nope"]}, UnknownModelError, "Unknown model"),
        ({"models": []}, InvalidOptionError, "at least one model"),
        ({"models": ["ddcolor-modelscope"]}, InvalidOptionError, "not offered"),
        ({"models": ["bicubic"], "sweep": "noise=0,1"}, InvalidOptionError, "no noise levels"),
        ({"models": ["waifu2x-upconv7-photo"], "sweep": "noise=7"}, InvalidOptionError, "not 7"),
        ({"models": ["bicubic"], "sweep": "tile=1,2"}, InvalidOptionError, "cannot be swept"),
        ({"models": ["bicubic"], "sweep": "outscale=2,x"}, InvalidOptionError, "numbers"),
        ({"models": ["bicubic"], "sweep": "outscale=2,2"}, InvalidOptionError, "repeats"),
        ({"models": ["bicubic"], "options": {"scale": 2}}, InvalidOptionError, "not an option"),
        ({"models": ["bicubic"], "metrics": ["psnr"]}, InvalidOptionError, "reference"),
        ({"models": ["bicubic"], "metrics": ["nope"]}, Exception, "nope"),
    ],
)
def test_bad_requests_get_one_clear_sentence(
    pair: tuple[Path, Path], tmp_path: Path, kwargs: dict, error: type, words: str
) -> None:
    models = kwargs.pop("models")
    with pytest.raises(error, match=words):
        compare.compare_files("sr", pair[0], models, tmp_path, **kwargs)


@pytest.mark.parametrize(
    ("text", "words"),
    [("1,2,3", "X,Y,WIDTH,HEIGHT"), ("90,0,32,32", "outside"), ("0,0,0,4", "1 px")],
)
def test_a_bad_crop_region_gets_one_clear_sentence(
    pair: tuple[Path, Path], tmp_path: Path, text: str, words: str
) -> None:
    with pytest.raises(InvalidOptionError, match=words):
        region = compare.parse_region(text)
        compare.compare_files("sr", pair[0], ["bicubic"], tmp_path, region=region)


def test_a_reference_of_the_wrong_size_is_refused(pair: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionError, match="reference is 96x96 but the outputs will be"):
        compare.compare_files(
            "sr", pair[0], ["bicubic"], tmp_path, reference_path=pair[1], options={"outscale": 2}
        )


def test_inpaint_compare_needs_a_mask_and_keeps_the_size(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    with pytest.raises(InvalidOptionError, match="needs a mask"):
        compare.compare_files("inpaint", pair[1], ["opencv-telea"], tmp_path)
    mask = np.zeros((96, 96), np.uint8)
    mask[40:56, 40:56] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    written = compare.compare_files(
        "inpaint",
        pair[1],
        ["opencv-telea", "opencv-ns"],
        tmp_path / "out",
        sweep="dilate=0,4",
        reference_path=pair[1],
        options={"mask": str(tmp_path / "mask.png")},
    )
    assert [(p.label, p.width, p.height) for p in written.run.panes] == [
        ("opencv-telea dilate=0", 96, 96),
        ("opencv-telea dilate=4", 96, 96),
        ("opencv-ns dilate=0", 96, 96),
        ("opencv-ns dilate=4", 96, 96),
    ]
    assert all(p.scores["psnr"] > 20 for p in written.run.panes)


def test_the_view_gets_every_pane_with_its_scores_and_best_marks(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    from ui.compare import view_value

    picture, reference = load_image(pair[0]), load_image(pair[1])
    models = ["span-x4-ch48", "bicubic", "realesr-general-x4v3"]  # the last is not here
    *_, run = compare.compare("sr", picture, models, tmp_path, reference=reference)
    view = json.loads(view_value(run))
    assert view["base"] == [96, 96]
    assert [pane["label"] for pane in view["panes"]] == ["input", *models, "reference"]
    by_label = {pane["label"]: pane for pane in view["panes"]}
    assert (
        by_label["realesr-general-x4v3"]["url"] == "" and by_label["realesr-general-x4v3"]["error"]
    )
    assert by_label["span-x4-ch48"]["url"] == f"gradio_api/file={run.panes[0].path}"
    best = run.best()
    for metric, label in best.items():
        assert metric in by_label[label]["best"]
    assert json.loads(view_value(None)) == {"panes": [], "message": ""}
