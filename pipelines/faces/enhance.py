"""The face enhancement step: detect, align, restore each face, paste it back.

The order is facexlib's ``FaceRestoreHelper`` as GFPGAN's and CodeFormer's inference
scripts drive it: RetinaFace finds faces and 5 landmarks on the *original* image (faces
with eyes closer than 5 px are skipped), each face is warped from the original onto
the 512 px FFHQ template, restored there, and warped back onto the *upscaled* image.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.backends.base import ProgressFn, no_progress
from pipelines.errors import InputImageError, InvalidOptionError, ModelUnavailableError
from pipelines.faces import align, paste
from pipelines.registry import ModelCard, cards_for, lookup

if TYPE_CHECKING:
    import torch

    from pipelines.backends.torch import TorchRestorer
    from pipelines.backends.torch.cache import ModelCache

FACE_ARCHITECTURES = ("GFPGAN", "CodeFormer")
"""spandrel architectures of the face restoration cards (task ``face``)."""
DETECTOR_ID = "retinaface-resnet50"
PARSER_ID = "parsenet"
MIN_EYE_DISTANCE = 5.0
"""Faces with eyes closer than this (source pixels) are too small or side-on to restore."""
DETECTION_SHARE = 0.1
NO_FACES = "no faces found; the upscaled image is unchanged"


@dataclass(frozen=True)
class FaceResult:
    """The image with its faces enhanced, how many there were, and one line for the user."""

    rgb: np.ndarray
    faces: int
    note: str


def face_models() -> list[ModelCard]:
    """The face restoration models (not the detector or the parser), built-in first."""
    return [card for card in cards_for("face") if card.architecture in FACE_ARCHITECTURES]


def face_card(model_id: str) -> ModelCard:
    """The card of a face restoration model, or an error naming the ones there are."""
    card = lookup(model_id)
    if "face" not in card.tasks or card.architecture not in FACE_ARCHITECTURES:
        offered = ", ".join(c.id for c in face_models())
        raise InvalidOptionError(
            f"{card.title} is not a face restoration model; faces are enhanced with {offered}."
        )
    return card


def check_fidelity(fidelity: float) -> float:
    if not (isinstance(fidelity, (int, float)) and 0.0 <= fidelity <= 1.0):
        raise InvalidOptionError(
            f"Face fidelity must be between 0 (strongest restoration) and 1 (closest to the "
            f"input), not {fidelity}."
        )
    return float(fidelity)


# ---------------------------------------------------------------- the step


@dataclass(frozen=True)
class FaceEnhancer:
    """A loaded face model, detector and (optional) parser. Holds no per-call state."""

    card: ModelCard
    fidelity: float
    restorer: TorchRestorer
    detector: torch.nn.Module
    parser: torch.nn.Module | None
    mask_note: str = ""

    def __call__(
        self,
        rgb_upscaled: np.ndarray,
        original_rgb: np.ndarray,
        scale: float,
        progress: ProgressFn = no_progress,
    ) -> FaceResult:
        """Enhance every face of ``original_rgb`` in ``rgb_upscaled`` (its ``scale`` x copy)."""
        from pipelines.faces import retinaface

        _check_images(rgb_upscaled, original_rgb, scale)
        progress(0.0, "detecting faces")
        found = retinaface.detect(self.detector, original_rgb, self.restorer.device)
        faces = [face for face in found if face.eye_distance >= MIN_EYE_DISTANCE]
        if not faces:
            progress(1.0, NO_FACES)
            return FaceResult(rgb_upscaled, 0, NO_FACES)
        out = np.array(rgb_upscaled, dtype=np.float32, copy=True)
        done = 0
        for index, face in enumerate(faces):
            share = DETECTION_SHARE + (1 - DETECTION_SHARE) * index / len(faces)
            progress(share, f"{self.card.title}: face {index + 1}/{len(faces)}")
            done += self._enhance_one(out, original_rgb, face.landmarks, scale)
        note = self._note(done)
        progress(1.0, note)
        return FaceResult(out, done, note)

    def _enhance_one(
        self, out: np.ndarray, original: np.ndarray, landmarks: np.ndarray, scale: float
    ) -> int:
        matrix = align.alignment_matrix(landmarks)
        if matrix is None:
            return 0
        restored = self.restore(align.warp_to_template(original, matrix))
        mask = None
        if self.parser is not None:
            from pipelines.faces import parsenet

            mask = parsenet.face_mask(self.parser, restored, self.restorer.device)
        region = paste.paste_face(out, restored, align.paste_matrix(matrix, scale), scale, mask)
        return int(region is not None)

    def restore(self, crop: np.ndarray) -> np.ndarray:
        """Run the face model on one aligned 512 px RGB crop in [0, 1]."""
        import torch

        from pipelines.backends.torch import engine

        loaded = self.restorer.net
        if not isinstance(loaded, engine.LoadedModel):
            raise TypeError("face models run from a LoadedModel")
        # spandrel's descriptor call would feed [0, 1] and clamp the output to [0, 1], but
        # both networks were trained on [-1, 1], and it cannot pass CodeFormer's weight.
        model = loaded.descriptor.model
        chw = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1), dtype=np.float32))
        batch = chw.unsqueeze(0).to(device=loaded.device, dtype=loaded.dtype) * 2 - 1
        try:
            with torch.inference_mode(), loaded.lock or nullcontext():
                out = self._forward(model, batch)
        except (MemoryError, RuntimeError) as error:
            if not engine.is_out_of_memory(error):
                raise
            raise engine.DeviceMemoryError(
                f"{self.card.title} ran out of memory on {loaded.device} restoring one 512 px "
                f"face; free memory or use another device ({engine.DEVICE_ENV}=cpu)."
            ) from None
        out = (out[0].float().clamp(-1, 1) + 1) / 2
        return out.permute(1, 2, 0).cpu().numpy()

    def _forward(self, model: Any, batch: torch.Tensor) -> torch.Tensor:
        if self.card.architecture == "CodeFormer":
            return model(batch, weight=self.fidelity)[0]
        # GFPGAN's noise inputs: the checkpoint's fixed noise maps instead of fresh samples,
        # so the same input always gives the same face (the lab compares runs).
        return model(batch, return_rgb=False, randomize_noise=False)[0]

    def _note(self, count: int) -> str:
        if count == 0:
            return NO_FACES
        faces = "1 face" if count == 1 else f"{count} faces"
        fidelity = (
            f" (fidelity {self.fidelity:g})" if self.card.architecture == "CodeFormer" else ""
        )
        note = f"{faces} enhanced with {self.card.title}{fidelity}"
        return f"{note}; {self.mask_note}" if self.mask_note else note


def _check_images(rgb_upscaled: np.ndarray, original_rgb: np.ndarray, scale: float) -> None:
    for name, rgb in (("upscaled", rgb_upscaled), ("original", original_rgb)):
        if not (isinstance(rgb, np.ndarray) and rgb.ndim == 3 and rgb.shape[2] == 3):
            shape = getattr(rgb, "shape", type(rgb).__name__)
            raise InputImageError(f"The {name} image must have shape (H, W, 3), not {shape}.")
    if not (math.isfinite(scale) and scale > 0):
        raise InvalidOptionError(f"The scale must be a positive number, not {scale}.")


# ---------------------------------------------------------------- loading


def load_enhancer(model_id: str, fidelity: float = 0.5) -> FaceEnhancer:
    """Load a face model with the detector (and the parser when its weights are here).

    Raises ``ModelUnavailableError`` naming the missing file and its download command
    when the detector or the face model cannot be had (the detector is looked for
    first: both face models need it), before any work is done.
    """
    from pipelines.backends import torch as torch_backend
    from pipelines.backends.torch.engine import choose_device
    from pipelines.faces.retinaface import RetinaFace

    card = face_card(model_id)
    fidelity = check_fidelity(fidelity)
    device = choose_device()  # the one the face model is placed on too
    detector = _load_net(lookup(DETECTOR_ID), RetinaFace, device)
    restorer = torch_backend.load(card, scale=1)
    parser, mask_note = _parser(device)
    return FaceEnhancer(card, fidelity, restorer, detector, parser, mask_note)


def enhance_faces(
    rgb_upscaled: np.ndarray,
    original_rgb: np.ndarray,
    scale: float,
    model_id: str,
    fidelity: float = 0.5,
    progress: ProgressFn = no_progress,
) -> FaceResult:
    """Enhance the faces of an upscaled image (RGB float32 in [0, 1], ``scale`` x the original).

    ``model_id`` names a face model (``gfpgan-v1.4``, ``codeformer``); ``fidelity`` is
    CodeFormer's w (0 = strongest restoration, 1 = closest to the input). Without faces
    the upscaled image comes back unchanged, with a note saying so.
    """
    enhancer = load_enhancer(model_id, fidelity)
    return enhancer(rgb_upscaled, original_rgb, scale, progress)


def _parser(device: torch.device) -> tuple[torch.nn.Module | None, str]:
    """ParseNet when its (non-commercial) weights were downloaded, else the square mask."""
    from pipelines import weights
    from pipelines.faces.parsenet import ParseNet

    card = lookup(PARSER_ID)
    hint = f"`python -m pipelines download {card.id}` adds face-parsing masks (non-commercial)"
    if weights.card_state(card).state != "cached":
        return None, f"feathered square mask; {hint}"
    try:
        return _load_net(card, ParseNet, device), ""
    except ModelUnavailableError as error:
        return None, f"feathered square mask ({error})"


_nets_lock = threading.Lock()
_nets: list[ModelCache[Any]] = []


def _net_cache() -> ModelCache[Any]:
    """Detector and parser networks, kept like the restorers (same memory budget)."""
    from pipelines.backends.torch.cache import ModelCache, budget_from_env

    with _nets_lock:
        if not _nets:
            _nets.append(ModelCache(budget_from_env()))
        return _nets[0]


def _load_net(
    card: ModelCard, build: Callable[[], torch.nn.Module], device: torch.device
) -> torch.nn.Module:
    """A card's network built by ``build`` with its verified weights, on ``device``, cached."""
    from pipelines import weights

    (path,) = weights.resolve(card)
    stat = path.stat()
    key = (card.family, str(path.resolve()), stat.st_size, stat.st_mtime_ns, str(device))
    return _net_cache().get(key, lambda: _build(card, path, build, device), _nbytes)


def _build(
    card: ModelCard, path: Path, build: Callable[[], torch.nn.Module], device: torch.device
) -> torch.nn.Module:
    from pipelines.backends.torch import loader

    state = loader.read_state_dict(path)  # safe: torch.load(weights_only=True)
    # Pytorch_Retinaface saved its detector from DataParallel: keys start with "module.".
    state = {key.removeprefix("module."): value for key, value in state.items()}
    net = build()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as error:
        detail = str(error).strip().splitlines()[0][:160]
        raise ModelUnavailableError(
            f"{path.name} is not a {card.title} checkpoint ({detail}); "
            f"run `python -m pipelines download {card.id}` to fetch the right file."
        ) from None
    return net.eval().to(device)


def _nbytes(net: torch.nn.Module) -> int:
    tensors = [*net.parameters(), *net.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)
