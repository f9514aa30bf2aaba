"""Bringing Old Photos Back to Life (Wan et al., CVPR 2020) as a torch backend.

    missing_weights(with_scratches=True, faces=True)   # None when ready, else how to fix it
    mask = detect_scratches(rgb)                        # HxWx3 float32 [0, 1] -> HxW bool
    restored = restore_global(rgb, mask)                # or restore_global(rgb, None)
    final = enhance_faces(restored)

Inference-only re-implementations of the official networks (microsoft/Bringing-Old-
Photos-Back-to-Life, MIT licence): ``detection`` (scratch U-Net), ``global_nets`` (VAEs
and the latent mapping networks, the scratch one with its masked non-local block),
``face_net`` (SPADE face generator); ``checkpoints`` reads the official files safely,
``faces`` finds, aligns and blends faces. Every function takes and returns RGB float32
images in [0, 1] at the input's size and raises a ``RestorationError`` subclass with
one readable sentence on missing weights or bad input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipelines.errors import InputImageError, InvalidOptionError

if TYPE_CHECKING:
    import torch

BOPB_CARD_IDS: tuple[str, ...] = (
    "bopb-scratch-detection",
    "bopb-restoration-quality",
    "bopb-restoration-scratch",
    "bopb-face-enhancement",
)
BOPB_HR_CARD_ID = "bopb-restoration-scratch-hr"
"""Optional: the patch-attention mapping BOPB's ``--HR`` uses for large scratched photos."""
BOPB_FACE_512_CARD_ID = "bopb-face-enhancement-512"
"""Optional: the 512 px face generator (``FaceSR_512``) of BOPB's ``--HR``."""
HR_AUTO_PIXELS = 512 * 512
"""Above this many pixels a scratched photo uses the patch-attention mapping when its
file is here: the non-local block's cost grows with the square of the pixel count
(about a minute at 512 x 512 on a 2-core CPU, 16 times that at 1024 x 1024)."""
MIN_SIDE = 8
MAX_DETECTION_ASPECT = 16
"""Detection scales the short side to 256 px; a longer strip would be a huge image."""


@dataclass(frozen=True)
class FaceReport:
    rgb: np.ndarray
    faces: int
    detector: str


def missing_weights(with_scratches: bool, faces: bool) -> str | None:
    """None when every checkpoint one run needs is in place; else one sentence naming
    the missing files and how to get them (the official archives, unzipped by hand)."""
    from pipelines.backends.torch.bopb import checkpoints

    return checkpoints.missing_sentence(checkpoints.needed_cards(with_scratches, faces))


def detect_scratches(rgb: np.ndarray) -> np.ndarray:
    """BOPB's scratch mask (HxW bool) of an RGB float image, as its detection script
    computes it: gray, short side 256, probability >= 0.4, back at the input's size."""
    from pipelines.backends.torch.bopb import checkpoints, detection
    from pipelines.backends.torch.bopb.restoration import memory_guard

    image = _checked_rgb(rgb)
    height, width = image.shape[:2]
    if max(height, width) > MAX_DETECTION_ASPECT * min(height, width):
        raise InputImageError(
            f"The image is {width}x{height}; BOPB's scratch detection takes photos at most "
            f"{MAX_DETECTION_ASPECT} times longer than wide."
        )
    device = _device()
    net = checkpoints.network(checkpoints.SCRATCH_CARD, checkpoints.DETECTION, device)
    with memory_guard("scratch detection", image, device):
        return detection.scratch_mask(net, image, device)


def restore_global(
    rgb: np.ndarray, scratch_mask: np.ndarray | None, *, hr: bool | None = None
) -> np.ndarray:
    """Stage 1 of BOPB: VAE A encoder -> latent mapping -> VAE B decoder.

    Without a mask: the quality variant, on the image resized to multiples of 4. With
    a mask (HxW, true = scratch): the scratch variant, on the image resized to multiples
    of 16 with the masked pixels painted white, the mapping attending to the rest:
    the non-local block, or with ``hr`` the patch-attention mapping of BOPB's ``--HR``
    (mask dilated by 3 px). ``hr=None`` picks patch attention above ``HR_AUTO_PIXELS``
    when its checkpoint is here. The result is resized back to the input's size.
    """
    from pipelines.backends.torch.bopb import checkpoints, restoration

    image = _checked_rgb(rgb)
    if scratch_mask is None:
        return restoration.restore_quality(image, _device())
    mask = _checked_mask(scratch_mask, image)
    if hr is None:
        hr = image.shape[0] * image.shape[1] > HR_AUTO_PIXELS and checkpoints.present(
            BOPB_HR_CARD_ID
        )
    return restoration.restore_scratched(image, mask, _device(), hr)


def enhance_faces(rgb: np.ndarray, *, size: int | None = None) -> np.ndarray:
    """Every face found, aligned to 256 px, run through BOPB's face generator and
    blended back; the image unchanged when there is none. ``size=512`` uses the
    ``FaceSR_512`` generator (``--HR``); None uses it for faces larger than a 256 px
    crop when its checkpoint is here."""
    return enhance_faces_report(rgb, size=size).rgb


def enhance_faces_report(rgb: np.ndarray, *, size: int | None = None) -> FaceReport:
    """``enhance_faces`` plus how many faces were enhanced and which detector found them."""
    from pipelines.backends.torch.bopb import restoration

    image = _checked_rgb(rgb)
    if size not in (None, 256, 512):
        raise InvalidOptionError(f"BOPB's face size is 256 or 512 px, not {size}.")
    out, count, detector = restoration.enhance_faces(image, _device(), size)
    return FaceReport(out, count, detector)


def _device() -> torch.device:
    from pipelines.backends.torch.engine import choose_device

    return choose_device()


def _checked_rgb(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", type(rgb).__name__)
        raise InputImageError(f"BOPB needs an RGB image of shape (H, W, 3), not {shape}.")
    if not np.issubdtype(rgb.dtype, np.floating):
        raise InputImageError(f"BOPB needs a float image in [0, 1], not {rgb.dtype}.")
    if min(rgb.shape[:2]) < MIN_SIDE:
        raise InputImageError(
            f"The image is {rgb.shape[1]}x{rgb.shape[0]}; BOPB needs at least {MIN_SIDE} px a side."
        )
    if not np.all(np.isfinite(rgb)):
        raise InputImageError("The image holds NaN or infinite values.")
    return np.clip(rgb, 0.0, 1.0).astype(np.float32, copy=False)


def _checked_mask(mask: np.ndarray, image: np.ndarray) -> np.ndarray:
    if not isinstance(mask, np.ndarray) or mask.shape != image.shape[:2]:
        shape = getattr(mask, "shape", type(mask).__name__)
        raise InputImageError(
            f"The scratch mask must be {image.shape[1]}x{image.shape[0]} (H, W) like the image, "
            f"not {shape}."
        )
    return mask.astype(bool, copy=False)
