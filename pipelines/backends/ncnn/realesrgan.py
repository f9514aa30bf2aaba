"""Real-ESRGAN (RRDB and Compact) and SPAN: one RGB input, output at ``scale`` times the size.

As in realesrgan-ncnn-vulkan (whose code span-ncnn-vulkan derives from): RGB in
[0, 1] into blob ``data``, 10 px of reflect padding (context from neighbours
inside the image), the padding cut off the output (``10 * scale`` px), no size
alignment. Without the padding the borders differ visibly (about 20 dB).
"""

from __future__ import annotations

from pipelines.backends.ncnn.runtime import Recipe
from pipelines.registry import Bundled, ModelCard

PAD = 10

# Peak runtime memory per padded input pixel on the CPU path, measured 2026-11
# (peak RSS growth from 96 to 192 px inputs), plus about 5 %: the RRDB nets keep
# 64-192 channels at input size and 64 at 2x/4x; the compact and SPAN nets a
# fraction of that.
_RRDB_BYTES_PER_PIXEL = {"realesrgan-x4plus": 50_000, "realesrgan-x4plus-anime": 50_000}
_SPAN_BYTES_PER_PIXEL = 6_000
_COMPACT_BYTES_PER_PIXEL = 3_000


def stem(card: ModelCard, scale: int, noise: int | None) -> str | None:
    """The file stem of the card's .param/.bin pair at ``scale``."""
    assert isinstance(card.source, Bundled)
    return card.source.stem.format(scale=scale)


def recipe(card: ModelCard, scale: int, noise: int | None) -> Recipe:
    name = stem(card, scale, noise) or ""
    default = _SPAN_BYTES_PER_PIXEL if card.family == "span" else _COMPACT_BYTES_PER_PIXEL
    return Recipe(
        input_blob="data",
        output_blob="output",
        pad=PAD,
        mode="reflect",
        bytes_per_pixel=_RRDB_BYTES_PER_PIXEL.get(name, default),
    )
