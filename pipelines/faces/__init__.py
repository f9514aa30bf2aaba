"""Optional face enhancement after super-resolution, as GFPGAN and CodeFormer do it.

    result = enhance_faces(upscaled_rgb, original_rgb, 4.0, "gfpgan-v1.4")
    result.rgb, result.faces, result.note

RetinaFace (``retinaface``) finds each face and its 5 landmarks on the original image,
``align`` warps it onto the FFHQ 512 px template, GFPGAN v1.4 or CodeFormer restores
the crop, and ``paste`` warps it back onto the upscaled image with a feathered mask, or
with ParseNet's face mask (``parsenet``) when those weights were downloaded.

The two network modules are re-implementations with their origin and licence named
in their docstrings; torch is imported only when a model is loaded.
"""

from __future__ import annotations

from pipelines.faces.enhance import (
    DETECTOR_ID,
    FACE_ARCHITECTURES,
    NO_FACES,
    PARSER_ID,
    FaceEnhancer,
    FaceResult,
    enhance_faces,
    face_card,
    face_models,
    load_enhancer,
)

__all__ = [
    "DETECTOR_ID",
    "FACE_ARCHITECTURES",
    "NO_FACES",
    "PARSER_ID",
    "FaceEnhancer",
    "FaceResult",
    "enhance_faces",
    "face_card",
    "face_models",
    "load_enhancer",
]
