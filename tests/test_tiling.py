"""The pure tiling functions, with simple per-tile functions whose exact answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines import tiling


@pytest.fixture()
def image() -> np.ndarray:
    return np.random.default_rng(1).random((45, 70, 3), dtype=np.float32)


def _nearest(scale: int):
    def fn(tile: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(tile, scale, axis=0), scale, axis=1)

    return fn


def _box_blur(tile: np.ndarray) -> np.ndarray:
    """A 5x5 mean that shrinks the tile by 2 px per side (a network cropping its padding)."""
    rows, cols = tile.shape[0] - 4, tile.shape[1] - 4
    return sum(tile[dy : dy + rows, dx : dx + cols] for dy in range(5) for dx in range(5)) / 25


def test_grid_covers_the_image_with_short_last_tiles() -> None:
    tiles = tiling.tile_grid(45, 70, 32)
    assert [(t.y0, t.y1, t.x0, t.x1) for t in tiles] == [
        (0, 32, 0, 32),
        (0, 32, 32, 64),
        (0, 32, 64, 70),
        (32, 45, 0, 32),
        (32, 45, 32, 64),
        (32, 45, 64, 70),
    ]
    assert tiling.tile_grid(45, 70, 0) == [tiling.Tile(0, 45, 0, 70)]


@pytest.mark.parametrize("tile", [0, 16, 32, 100])
def test_pixelwise_function_is_exact_at_any_tiling(image, tile: int) -> None:
    out = tiling.run_tiled(image, _nearest(3), scale=3, tile=tile, pad=4)
    np.testing.assert_array_equal(out, _nearest(3)(image))


@pytest.mark.parametrize(("mode", "align"), [("reflect", 1), ("edge", 2), ("edge", 4)])
def test_context_padding_makes_tiles_seamless(image, mode, align) -> None:
    """A 5x5 filter needs 2 px of context: with it, tiled and whole runs agree exactly."""
    whole = _box_blur(tiling.pad_image(image, 2, 2, mode))
    out = tiling.run_tiled(
        image, _box_blur, scale=1, tile=16, pad=2, mode=mode, align=align, trim=0
    )
    np.testing.assert_allclose(out, whole, atol=1e-6)


def test_aligned_windows_are_multiples_and_extra_is_dropped(image) -> None:
    seen: list[tuple[int, int]] = []

    def fn(tile: np.ndarray) -> np.ndarray:
        seen.append(tile.shape[:2])
        return tile

    out = tiling.run_tiled(image, fn, scale=1, tile=32, pad=3, align=4)
    assert all((rows - 6) % 4 == 0 and (cols - 6) % 4 == 0 for rows, cols in seen)
    np.testing.assert_array_equal(out, image)


def test_progress_is_reported_once_per_tile(image) -> None:
    calls: list[tuple[float, str]] = []
    tiling.run_tiled(
        image, _nearest(1), scale=1, tile=32, pad=2, progress=lambda *a: calls.append(a)
    )
    assert [done for done, _ in calls] == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1])
    assert calls[-1][1] == "tile 6/6"


def test_too_small_tile_output_raises(image) -> None:
    with pytest.raises(ValueError, match="smaller than its core"):
        tiling.run_tiled(image, lambda tile: tile[:4, :4], scale=1, tile=32, pad=2)


def test_choose_tile_is_whole_image_when_it_fits_else_even_split() -> None:
    assert tiling.choose_tile(100, 80, pad=10, bytes_per_pixel=1000, budget_bytes=2e7) == 0
    tile = tiling.choose_tile(1000, 700, pad=10, bytes_per_pixel=1000, budget_bytes=2e7, align=4)
    assert tile % 4 == 0 and (tile + 2 * 10 + 3) ** 2 * 1000 <= 2e7
    rows, cols = -(-1000 // tile), -(-700 // tile)  # tiles per side
    assert (rows, cols) == (9, 7) and rows * tile - 1000 < tile // 4  # no sliver row
