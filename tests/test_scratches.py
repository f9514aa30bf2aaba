"""The classical scratch detector against the ground-truth masks of seeded synthetic old photos.

``python -m tests.test_scratches`` prints the per-image table quoted in docs/old-photo.md.
"""

from __future__ import annotations

import functools
import sys

import cv2
import numpy as np
import pytest
from skimage import data

from evaluation.degradations import DegradationResult, create_degradation
from pipelines.errors import InputImageError
from pipelines.scratches import detect_scratches

TUNING = ("astronaut", "coffee", "camera", "rocket")
"""The photos the thresholds were tuned on."""
HELD_OUT = ("chelsea", "moon", "coins", "cat", "brick")
"""Photos never looked at while tuning."""
SEEDS = (0, 1)
LONG_SIDE = 384

# Measured (docs/old-photo.md) minus a margin of 0.05: (precision, recall) per set and row.
FLOORS = {
    ("old_photo", TUNING): (0.73, 0.80),  # measured 0.781 / 0.853
    ("old_photo", HELD_OUT): (0.88, 0.89),  # measured 0.933 / 0.943
    ("old_photo_heavy", TUNING): (0.87, 0.50),  # measured 0.921 / 0.553
    ("old_photo_heavy", HELD_OUT): (0.92, 0.62),  # measured 0.973 / 0.679
}


@functools.cache
def clean_photo(name: str, long_side: int = LONG_SIDE) -> np.ndarray:
    """A scikit-image sample photo as RGB float32, its long side resized to ``long_side``."""
    pixels = getattr(data, name)()
    if pixels.ndim == 2:
        pixels = np.dstack([pixels] * 3)
    pixels = pixels[:, :, :3]
    height, width = pixels.shape[:2]
    factor = long_side / max(height, width)
    size = (round(width * factor), round(height * factor))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def degraded(name: str, seed: int, row: str = "old_photo") -> DegradationResult:
    return create_degradation(row, seed=seed).apply(clean_photo(name), key=name)


def precision_recall(found: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    hits = float((found & truth).sum())
    return hits / max(int(found.sum()), 1), hits / max(int(truth.sum()), 1)


def measure(row: str, names: tuple[str, ...]) -> tuple[float, float]:
    """Mean pixel precision and recall over ``names`` x ``SEEDS``."""
    scores = []
    for name in names:
        for seed in SEEDS:
            result = degraded(name, seed, row)
            scores.append(precision_recall(detect_scratches(result.lq), result.mask))
    precision, recall = np.mean(scores, axis=0)
    return float(precision), float(recall)


@pytest.mark.parametrize(("row", "names"), list(FLOORS))
def test_precision_and_recall_against_ground_truth(row: str, names: tuple[str, ...]) -> None:
    precision, recall = measure(row, names)
    floor_precision, floor_recall = FLOORS[(row, names)]
    assert precision >= floor_precision, f"precision {precision:.3f}"
    assert recall >= floor_recall, f"recall {recall:.3f}"


def test_an_undamaged_old_photo_gives_an_almost_empty_mask() -> None:
    result = create_degradation("old_photo_unscratched", seed=0).apply(clean_photo("astronaut"))
    mask = detect_scratches(result.lq)
    assert mask.dtype == bool and mask.shape == result.lq.shape[:2]
    assert mask.mean() < 0.003


def test_a_large_photo_is_searched_at_working_size_and_masked_at_full_size() -> None:
    photo = clean_photo("coffee", long_side=1260)  # short side 840 > 768
    row = create_degradation("old_photo", seed=2, dust=0.0, jpeg_quality=None)
    result = row.apply(photo, key="big")
    mask = detect_scratches(result.lq)
    assert mask.shape == photo.shape[:2]
    precision, recall = precision_recall(mask, result.mask)
    assert precision > 0.5 and recall > 0.5, (precision, recall)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((32, 32), np.float32), "RGB image"),
        (np.zeros((8, 40, 3), np.float32), "at least 16 pixels"),
    ],
)
def test_unusable_input_is_refused_with_a_sentence(image: np.ndarray, message: str) -> None:
    with pytest.raises(InputImageError, match=message):
        detect_scratches(image)


def _table() -> None:
    for row in ("old_photo", "old_photo_heavy"):
        for names in (TUNING, HELD_OUT):
            for name in names:
                for seed in SEEDS:
                    result = degraded(name, seed, row)
                    precision, recall = precision_recall(detect_scratches(result.lq), result.mask)
                    print(
                        f"{row} {name} seed {seed}: precision {precision:.3f} recall {recall:.3f}"
                    )
            precision, recall = measure(row, names)
            print(f"{row} {'+'.join(names)}: precision {precision:.3f} recall {recall:.3f}")


if __name__ == "__main__":
    _table()
    sys.exit(0)
