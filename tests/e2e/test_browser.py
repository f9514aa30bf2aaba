"""End-to-end: every tab of the live app in Chromium, as a user clicks through it.

Each test leaves ``artifacts/screenshots/<tab id>.png``. A tab whose action is "upload an
image, pick a model, press the button, get a before/after and a PNG" is one row of
IMAGE_TABS; other tabs have their own test below, and a tab no test knows fails
``test_every_tab_on_the_page_has_a_test``.
"""

from __future__ import annotations

import dataclasses
import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Locator, expect

from tests.conftest import EXAMPLES
from tests.e2e.app_page import MODEL_TIMEOUT_MS, AppPage

pytestmark = pytest.mark.slow


@dataclasses.dataclass(frozen=True)
class ImageTab:
    tab: str  # the tab's id in app.py
    upload: str  # label of the image input
    example: str  # file in examples/
    model: str  # a fast model that works offline (or shows the offline error)
    button: str
    scale: int  # output size / input size
    weights: str = ""  # a fixture that places the model's weights on the live server


IMAGE_TABS = [
    ImageTab("sr", "Input image", "astronaut_small.png", "span-x4-ch48", "Upscale", 4),
    ImageTab("anime", "Input image", "anime_small.png", "realesr-animevideov3", "Upscale", 4),
    # No colorizer ships with weights: DeOldify's random-weight stand-in is placed in the
    # live server's weights folder first, as a user places the real file.
    ImageTab(
        "colorize",
        "Black-and-white photo",
        "coffee_gray.png",
        "deoldify-artistic",
        "Colorize",
        1,
        weights="served_deoldify",
    ),
]
OWN_TESTS = {"old_photo", "inpaint", "jobs", "compare", "evaluation", "models"}


def test_every_tab_on_the_page_has_a_test(app: AppPage) -> None:
    """A tab added to app.py needs a row in IMAGE_TABS or its own test (and OWN_TESTS)."""
    expected = {row.tab for row in IMAGE_TABS} | OWN_TESTS
    assert set(app.tab_ids()) == expected


@pytest.mark.parametrize("row", IMAGE_TABS, ids=lambda row: row.tab)
def test_image_tab_runs_a_model(
    app: AppPage, row: ImageTab, request: pytest.FixtureRequest
) -> None:
    if row.weights:
        request.getfixturevalue(row.weights)
    panel = app.open_tab(row.tab)
    app.upload_image(panel, row.upload, EXAMPLES / row.example)
    app.choose(panel, "Model", row.model)
    # Opening the tab refreshed the menu: weights placed after start-up count as present.
    menu = panel.get_by_role("combobox", name=re.compile("^Model"))
    expect(menu).to_have_value(re.compile(rf"\({re.escape(row.model)}\)$"))  # no "— unavailable"
    app.click(panel, row.button)
    download = app.block(panel, "Full-resolution PNG")
    app.wait_for(app.download_link(download))
    for image in app.block(panel, "Before / after").locator("img").all():
        app.expect_loaded(image)
    source = Image.open(EXAMPLES / row.example)
    result = app.fetch_download(download)
    assert result.size == (source.width * row.scale, source.height * row.scale)
    app.finish(row.tab)


def test_old_photo_restores_and_shows_the_scratch_mask(app: AppPage) -> None:
    panel = app.open_tab("old_photo")
    app.upload_image(panel, "Old photo", EXAMPLES / "old_photo_small.png")
    app.click(panel, "Restore")  # defaults: scratches on, "auto" = the offline fallback here
    download = app.block(panel, "Full-resolution PNG")
    app.wait_for(app.download_link(download))
    for image in app.block(panel, "Before / after").locator("img").all():
        app.expect_loaded(image)
    source = Image.open(EXAMPLES / "old_photo_small.png")
    assert app.fetch_download(download).size == source.size
    mask_block = app.block(panel, "Scratch mask used")
    app.expect_loaded(mask_block.locator("img"))
    mask = np.asarray(app.fetch_shown(mask_block.locator("img")).convert("L")) > 127
    assert mask.shape == (source.height, source.width)
    assert 0 < mask.mean() < 0.5, "the example's scratches should be found, not the whole photo"

    # Correct the mask: the editor now holds the photo and the detected scratches; paint
    # one more stroke across the middle and re-run the repair with it.
    panel.get_by_text("Correct the scratch mask and re-run the repair").click()
    editor = app.block(panel, "Scratch mask", exact=True)
    expect(editor.get_by_role("button", name="Brush", exact=True)).to_be_visible()
    editor.get_by_role("button", name="Brush", exact=True).click()
    _paint_horizontal_stroke(app, editor)
    shown = mask_block.locator("img").get_attribute("src")
    app.click(panel, "Re-run the repair with this mask")
    app.wait_for(mask_block.locator(f"img:not([src='{shown}'])"))
    corrected = np.asarray(app.fetch_shown(mask_block.locator("img")).convert("L")) > 127
    assert corrected[source.height // 2].any(), "the painted stroke crosses the middle row"
    # Gradio 6.31's editor draws a value's background but not its layers, so the tab
    # paints the detected scratches into the picture (magenta): they must survive a re-run.
    assert corrected[mask].all(), "the detected scratches are kept in the corrected mask"
    app.finish("old_photo")


def test_inpainting_fills_a_mask_painted_with_the_mouse(app: AppPage) -> None:
    panel = app.open_tab("inpaint")
    editor = app.block(panel, "paint over what to remove")
    editor.locator("input[type=file]").set_input_files(EXAMPLES / "coffee_small.png")
    # The editor switches to the brush once the image is on the canvas.
    expect(editor.get_by_role("button", name="Brush", exact=True)).to_have_class(
        re.compile(r"\bhighlight\b")
    )
    _paint_horizontal_stroke(app, editor)
    app.choose(panel, "Method", "opencv-telea")
    app.click(panel, "Fill")
    mask_block = app.block(panel, "Mask used")
    app.wait_for(app.download_link(mask_block))
    app.expect_loaded(app.block(panel, "Before / after").locator("img").last)

    source = np.asarray(Image.open(EXAMPLES / "coffee_small.png").convert("RGB"))
    mask = np.asarray(app.fetch_download(mask_block).convert("L")) > 127
    result = np.asarray(app.fetch_download(app.block(panel, "Full-resolution PNG")).convert("RGB"))
    assert mask.shape == result.shape[:2] == source.shape[:2]
    assert 0.01 < mask.mean() < 0.9, "the stroke should cover part of the image"
    rows, cols = np.nonzero(mask)
    # The stroke crosses the middle of the canvas, where the image is centred.
    assert rows.min() < source.shape[0] / 2 < rows.max()
    assert cols.min() < source.shape[1] / 2 < cols.max()
    assert np.array_equal(result[~mask], source[~mask]), "pixels outside the mask changed"
    assert np.abs(result[mask].astype(int) - source[mask]).mean() > 1, "nothing was filled"
    app.finish("inpaint")


def _paint_horizontal_stroke(app: AppPage, editor: Locator) -> None:
    box = editor.locator(".pixi-target canvas").bounding_box()
    assert box, "the editor canvas is not on screen"
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    app.page.mouse.move(x - 60, y)
    app.page.mouse.down()
    app.page.mouse.move(x + 60, y, steps=3)
    app.page.mouse.up()


BATCH = ("astronaut_small.png", "coffee_small.png")


def test_jobs_queue_images_and_export_the_results(app: AppPage) -> None:
    panel = app.open_tab("jobs")
    uploads = app.block(panel, "Images, or a ZIP of images")
    uploads.locator("input[type=file]").set_input_files([EXAMPLES / name for name in BATCH])
    for name in BATCH:
        expect(uploads).to_contain_text(Path(name).stem)
    app.choose(panel, "Model", "span-x4-ch48")
    app.click(panel, "Queue jobs")
    queued = panel.get_by_text(re.compile(r"Queued 2 jobs \(ids \d+–\d+\)"))
    app.wait_for(queued)
    first, last = map(int, re.findall(r"\d+", queued.inner_text().split("ids")[1])[:2])
    ids = list(range(first, last + 1))
    table = app.table(panel, "Jobs (newest first")
    for job in ids:  # the table refreshes itself every 3 s while the app's worker runs them
        row = table.get_by_role("row").filter(has_text=re.compile(rf"^\s*{job}\s"))
        expect(row).to_contain_text("completed", timeout=MODEL_TIMEOUT_MS)

    panel.get_by_label("Job ids for the downloads").fill(",".join(map(str, ids)))
    app.click(panel, "Results (ZIP)")
    archive = app.block(panel, "results.zip")
    app.wait_for(app.download_link(archive))
    names = zipfile.ZipFile(io.BytesIO(app.download_bytes(archive))).namelist()
    assert sum(name.endswith(".png") for name in names) == len(BATCH), names
    assert any(name.endswith(".json") for name in names), names
    app.finish("jobs")


COMPARED = ("span-x4-ch48", "span-clearreality-x4", "bicubic")  # the tab's defaults for sr


def test_compare_runs_three_models_and_zooms_them_together(app: AppPage) -> None:
    panel = app.open_tab("compare")
    app.upload_image(panel, "Input image", EXAMPLES / "astronaut_small.png")
    models = app.block(panel, "Models")
    for model in COMPARED:
        expect(models).to_contain_text(f"({model})")
    app.click(panel, "Compare")
    outputs = app.block(panel, "Outputs (full resolution)")
    app.wait_for(app.download_link(outputs))
    expect(outputs.get_by_test_id("download-link")).to_have_count(3, timeout=MODEL_TIMEOUT_MS)
    assert app.fetch_download(outputs).size == (512, 512)

    scores = app.table(panel, "Scores")
    for model in COMPARED:
        expect(scores.get_by_role("row").filter(has_text=model).first).to_be_visible()
    app.expect_loaded(app.block(panel, "Crop strip").locator("img"))
    images = panel.locator("#compare-view .cmp-frame img")
    expect(images).to_have_count(1 + len(COMPARED))  # the input, then each output
    for image in images.all():
        app.expect_loaded(image)
    _zoom_in_on(app, images.first)
    sizes = {image.evaluate("i => i.style.width + ' ' + i.style.left") for image in images.all()}
    assert len(sizes) == 1, f"panes zoomed differently: {sizes}"
    app.finish("compare")


def _zoom_in_on(app: AppPage, image: Locator) -> None:
    """Scroll the mouse wheel over one pane; waits until that pane's image grew."""
    before = image.evaluate("i => i.getBoundingClientRect().width")
    image.hover()
    for _ in range(3):  # each wheel event zooms by 1.25
        app.page.mouse.wheel(0, -100)
    app.page.wait_for_function(
        "([i, w]) => i.getBoundingClientRect().width > w * 1.9",
        arg=[image.element_handle(), before],
    )


def test_evaluation_runs_a_small_leaderboard(app: AppPage) -> None:
    panel = app.open_tab("evaluation")
    models = app.block(panel, "Models (bicubic and Lanczos")
    models.get_by_title("Clear").click()
    app.choose(panel, "Models", "span-x4-ch48")
    app.click(panel, "Run evaluation")
    exports = app.block(panel, "Export (CSV, JSON)")
    app.wait_for(app.download_link(exports))
    expect(exports.get_by_test_id("download-link")).to_have_count(2)
    table = app.table(panel, "Leaderboard")
    for model in ("span-x4-ch48", "bicubic", "lanczos"):
        expect(table.get_by_role("row").filter(has_text=model).first).to_be_visible()
    expect(table.get_by_role("columnheader").filter(has_text="psnr_y_sr")).to_be_visible()
    gallery = app.block(panel, "GT, input and outputs")
    expect(gallery.locator("img").first).to_be_visible()
    app.expect_loaded(gallery.locator("img").first)
    app.finish("evaluation")


def test_models_tab_lists_the_cards(app: AppPage) -> None:
    panel = app.open_tab("models")
    table = app.table(panel, "Model cards")
    for header in ("id", "state", "license"):
        expect(table.get_by_role("columnheader", name=header, exact=True)).to_be_visible()
    first_rows = table.get_by_role("row")
    expect(first_rows.filter(has_text="realesrgan-x4plus").first).to_be_visible()
    expect(first_rows.filter(has_text="bundled").first).to_be_visible()
    app.finish("models")
