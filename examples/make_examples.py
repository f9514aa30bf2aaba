"""Regenerate the example images (run from the repo root: ``python examples/make_examples.py``).

Photos come from scikit-image's data module (public domain / CC0 images, see
``skimage.data``); the anime-style drawing is drawn here. All are small on purpose:
they are inputs for upscalers and for the built-in evaluation set.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent


def _downscaled(array: np.ndarray, size: tuple[int, int]) -> Image.Image:
    return Image.fromarray(array).convert("RGB").resize(size, Image.Resampling.BICUBIC)


def _anime_drawing(size: int = 128) -> Image.Image:
    """A flat-coloured, line-art character face: the kind of input anime models expect."""
    big = size * 4
    image = Image.new("RGB", (big, big), (250, 236, 214))
    draw = ImageDraw.Draw(image)
    line = (40, 30, 40)
    draw.rectangle((0, int(big * 0.78), big, big), fill=(120, 170, 220))
    draw.ellipse(
        (big * 0.18, big * 0.12, big * 0.82, big * 0.86),
        fill=(255, 224, 200),
        outline=line,
        width=8,
    )
    draw.pieslice(
        (big * 0.12, big * 0.02, big * 0.88, big * 0.62),
        180,
        360,
        fill=(220, 90, 120),
        outline=line,
        width=8,
    )
    for x in (0.36, 0.64):
        cx, cy = big * x, big * 0.55
        draw.ellipse(
            (cx - 34, cy - 44, cx + 34, cy + 44), fill=(255, 255, 255), outline=line, width=6
        )
        draw.ellipse((cx - 20, cy - 30, cx + 20, cy + 30), fill=(60, 110, 190))
        draw.ellipse((cx - 8, cy - 20, cx + 4, cy - 8), fill=(255, 255, 255))
    draw.arc((big * 0.42, big * 0.66, big * 0.58, big * 0.76), 10, 170, fill=line, width=6)
    image = image.filter(ImageFilter.GaussianBlur(1.5))
    return image.resize((size, size), Image.Resampling.LANCZOS)


def inpaint_examples() -> None:
    """A stroke layer and the same region as a mask for chelsea_small.png (150x100).

    The strokes are what the editor hands back (opaque paint on a transparent layer);
    the mask is a separate upload (white = fill). Both cover the cat's left ear.
    """
    size = Image.open(HERE / "chelsea_small.png").size
    strokes = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(strokes).line([(38, 14), (50, 24), (60, 18)], fill=(255, 0, 255, 255), width=7)
    strokes.save(HERE / "chelsea_strokes.png")
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse((36, 10, 62, 30), fill=255)
    mask.save(HERE / "chelsea_mask.png")


def tiny_checkpoint() -> None:
    """A 2x SRVGGNetCompact whose last convolution is zero: it returns the nearest-neighbour
    upscale exactly (the architecture adds that to its output). 10 KB; shows /add_model."""
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(0)
    model = Compact(num_feat=8, num_conv=2, upscale=2)
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    last = max(int(name.split(".")[1]) for name in state if name.startswith("body."))
    for name in (f"body.{last}.weight", f"body.{last}.bias"):
        state[name] = torch.zeros_like(state[name])
    save_file(state, HERE / "nearest_x2_compact.safetensors")


def main() -> None:
    from skimage import data

    _downscaled(data.astronaut(), (128, 128)).save(HERE / "astronaut_small.png")
    _downscaled(data.coffee(), (150, 100)).save(HERE / "coffee_small.png")
    _downscaled(data.chelsea(), (150, 100)).save(HERE / "chelsea_small.png")
    _downscaled(data.coffee(), (300, 200)).convert("L").save(HERE / "coffee_gray.png")
    _anime_drawing().save(HERE / "anime_small.png")
    logo = _anime_drawing(96).convert("RGBA")
    alpha = Image.new("L", logo.size, 0)
    ImageDraw.Draw(alpha).ellipse((4, 4, 92, 92), fill=255)
    logo.putalpha(alpha)
    logo.save(HERE / "anime_alpha.png")
    # Reference images for the built-in evaluation set (high-quality originals).
    _downscaled(data.astronaut(), (256, 256)).save(HERE / "astronaut_hq.png")
    _downscaled(data.coffee(), (300, 200)).save(HERE / "coffee_hq.png")
    _old_photo(_downscaled(data.astronaut(), (256, 256))).save(HERE / "old_photo_small.png")


def _old_photo(image: Image.Image) -> Image.Image:
    """A scratched, dusty, faded sepia print (the seeded synthetic old-photo degradation)."""
    sys.path.insert(0, str(HERE.parent))  # run as a script, the repository is not on the path
    from evaluation.degradations import create_degradation

    rgb = np.asarray(image, dtype=np.float32) / 255.0
    damaged = create_degradation("old_photo", seed=6, sepia=1.0).apply(rgb, key="old_photo")
    return Image.fromarray(np.round(damaged.lq * 255).astype(np.uint8))
    inpaint_examples()
    tiny_checkpoint()


if __name__ == "__main__":
    main()
