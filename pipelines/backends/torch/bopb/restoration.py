"""Running BOPB's networks the way its test scripts do, on RGB float images.

``Global/test.py`` resizes a photo to multiples of 4 (bilinear) for the quality
model; for scratches it takes the detection script's copy resized to multiples of 16
(bicubic) with the scratch pixels painted white. It saves the decoder's output with
``torchvision.utils.save_image(..., normalize=True)``, which stretches the image's
own minimum and maximum to black and white; we do the same, so results look like
the official ones. ``Face_Enhancement/test_face.py`` feeds aligned 256 px faces.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np
import torch
from PIL import Image

from pipelines.backends.torch import engine
from pipelines.backends.torch.bopb import checkpoints as files
from pipelines.backends.torch.bopb import faces
from pipelines.backends.torch.bopb.detection import MULTIPLE as DETECTION_MULTIPLE
from pipelines.backends.torch.bopb.detection import round_to
from pipelines.backends.torch.bopb.global_nets import MULTIPLE


def _rounded(height: int, width: int, multiple: int) -> tuple[int, int]:
    """(width, height) rounded to the nearest multiples, as the official scripts do."""
    return round_to(width, multiple), round_to(height, multiple)


def resize(rgb: np.ndarray, size: tuple[int, int], method: Image.Resampling) -> np.ndarray:
    """Resize each channel of a float image with PIL (``size`` = (width, height))."""
    if (rgb.shape[1], rgb.shape[0]) == size:
        return rgb
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(rgb[..., c]), mode="F").resize(size, method)
        )
        for c in range(rgb.shape[2])
    ]
    return np.stack(channels, axis=-1)


def _to_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    chw = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32))
    return (chw[None] * 2.0 - 1.0).to(device)


def _stretched(decoded: torch.Tensor) -> np.ndarray:
    """Decoder output in [-1, 1] -> HxWx3 in [0, 1], min-max stretched like ``save_image``."""
    image = (decoded[0].float().cpu() + 1.0) / 2.0
    low, high = image.min(), image.max()
    image = (image - low) / torch.clamp(high - low, min=1e-5)
    return image.permute(1, 2, 0).numpy()


@contextmanager
def memory_guard(stage: str, rgb: np.ndarray, device: torch.device) -> Iterator[None]:
    """Turn an out-of-memory failure into one sentence: BOPB runs on the whole photo."""
    try:
        yield
    except (MemoryError, RuntimeError) as error:
        if not engine.is_out_of_memory(error):
            raise
        engine.release_cached_memory(device)
        height, width = rgb.shape[:2]
        raise engine.DeviceMemoryError(
            f"BOPB's {stage} ran out of memory on {device} for a {width}x{height} photo "
            "(its networks see the whole photo at once): use a smaller photo, or another "
            f"device with {engine.DEVICE_ENV}."
        ) from None


@torch.inference_mode()
def restore_quality(rgb: np.ndarray, device: torch.device) -> np.ndarray:
    height, width = rgb.shape[:2]
    card = files.QUALITY_CARD
    working = resize(rgb, _rounded(height, width, MULTIPLE), Image.Resampling.BILINEAR)
    encoder = files.network(card, files.VAE_A, device)
    mapping = files.network(card, files.MAPPING_QUALITY, device)
    decoder = files.network(card, files.VAE_B_QUALITY, device)
    with memory_guard("global restoration", rgb, device):
        latent = mapping(encoder.encode(_to_tensor(working, device)))
        out = _stretched(decoder.decode(latent))
    return np.clip(resize(out, (width, height), Image.Resampling.BICUBIC), 0.0, 1.0)


HR_MASK_DILATION = 3  # the HR test dilates the mask with a 3x3 square this many times


@torch.inference_mode()
def restore_scratched(
    rgb: np.ndarray, mask: np.ndarray, device: torch.device, hr: bool
) -> np.ndarray:
    """The scratch variant; ``hr`` selects the patch-attention mapping (``--HR``), which
    also dilates the mask, instead of the non-local one."""
    height, width = rgb.shape[:2]
    card = files.SCRATCH_HR_CARD if hr else files.SCRATCH_RESTORATION_CARD
    size = _rounded(height, width, DETECTION_MULTIPLE)
    working = resize(rgb, size, Image.Resampling.BICUBIC)
    holes = np.asarray(
        Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)
    )
    if hr:
        holes = cv2.dilate(holes, np.ones((3, 3), np.uint8), iterations=HR_MASK_DILATION)
    holes = holes > 0
    working = np.where(holes[..., None], 1.0, np.clip(working, 0.0, 1.0)).astype(np.float32)
    mask_tensor = torch.from_numpy(holes.astype(np.float32))[None, None].to(device)
    mapping_file = files.MAPPING_PATCH_ATTENTION if hr else files.MAPPING_SCRATCH
    encoder = files.network(card, files.VAE_A, device)
    mapping = files.network(card, mapping_file, device)
    decoder = files.network(card, files.VAE_B_SCRATCH, device)
    with memory_guard("scratch restoration", rgb, device):
        latent = mapping(encoder.encode(_to_tensor(working, device)), mask_tensor)
        out = _stretched(decoder.decode(latent))
    return np.clip(resize(out, (width, height), Image.Resampling.BICUBIC), 0.0, 1.0)


def enhance_faces(
    rgb: np.ndarray, device: torch.device, size: int | None
) -> tuple[np.ndarray, int, str]:
    """(image with every face enhanced, faces enhanced, detector name).

    ``size`` 256 or 512 picks the generator; None uses the 512 px one (``FaceSR_512``,
    when its checkpoint is here) for faces a 256 px crop would shrink, else 256.
    """
    found, detector = faces.find_faces(rgb)
    if not found:
        return rgb, 0, detector
    has_512 = size == 512 or (size is None and files.present(files.FACE_512_CARD))

    def restorer_for(spread: float) -> tuple[int, faces.Restorer]:
        crop = 512 if has_512 and (size == 512 or spread > 1.0) else 256
        card, member = (
            (files.FACE_512_CARD, files.FACE_GENERATOR_512)
            if crop == 512
            else (files.FACE_CARD, files.FACE_GENERATOR)
        )
        return crop, _face_restorer(files.network(card, member, device), device)

    with memory_guard("face enhancement", rgb, device):
        out, count = faces.enhance_found(rgb, found, restorer_for)
    return out, count, detector


def _face_restorer(generator: torch.nn.Module, device: torch.device) -> faces.Restorer:
    @torch.inference_mode()
    def restore(crop: np.ndarray) -> np.ndarray:
        face = _to_tensor(crop.astype(np.float32) / 255.0, device)
        out = (generator(face)[0].float().cpu() + 1.0) / 2.0
        # save_image's rounding to 8 bits, which the blending script then reads back.
        return (out * 255.0 + 0.5).clamp(0, 255).byte().permute(1, 2, 0).numpy()

    return restore
