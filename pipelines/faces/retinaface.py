"""RetinaFace with a ResNet-50 backbone: the face detector of GFPGAN's and CodeFormer's pipelines.

A re-implementation, for inference only, of the network of biubug6/Pytorch_Retinaface
(MIT licence) in the module layout facexlib (MIT) gives it, so the released
``detection_Resnet50_Final.pth`` loads strictly: backbone ``body`` (torchvision's
ResNet-50 up to ``layer4``), ``fpn``, ``ssh1..3`` and the ``ClassHead`` / ``BboxHead``
/ ``LandmarkHead`` lists. facexlib itself is not a dependency: importing any part of it
imports its tracking and alignment modules (filterpy, numba, opencv-python).

The network takes BGR pixels in 0..255 minus the training mean (104, 117, 123) and
predicts, for every prior box, a face score, a box offset and 5 landmark offsets.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

MIN_SIZES = ((16, 32), (64, 128), (256, 512))
"""Prior box edges in pixels, two per pyramid level."""
STEPS = (8, 16, 32)
"""Pyramid level strides: the priors of level k sit on a grid of ``STEPS[k]`` pixels."""
VARIANCES = (0.1, 0.2)
"""Scales of the regressed centre and size offsets (Pytorch_Retinaface's ``cfg['variance']``)."""
BGR_MEAN = (104.0, 117.0, 123.0)
SCORE_THRESHOLD = 0.97
"""The confidence facexlib's FaceRestoreHelper keeps faces at."""
NMS_IOU = 0.4
MAX_SIDE = 2150
"""Larger images are detected on a downscaled copy (RetinaFace's own ``max_size``)."""


# ---------------------------------------------------------------- network


def _conv_bn(cin: int, cout: int, kernel: int, relu: bool) -> nn.Sequential:
    """Conv (no bias) + BatchNorm (+ ReLU): keys ``.0.weight``, ``.1.running_mean``..."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        # LeakyReLU(0): the released net has 256 channels, where the original uses slope 0.
        layers.append(nn.LeakyReLU(0.0, inplace=True))
    return nn.Sequential(*layers)


class _Backbone(nn.ModuleDict):
    """ResNet-50 without its pooling and classifier, returning layer2..layer4 features."""

    RETURNED = ("layer2", "layer3", "layer4")

    def __init__(self) -> None:
        resnet = torchvision.models.resnet50(weights=None)  # never downloads: no weights
        kept = {k: m for k, m in resnet.named_children() if k not in ("avgpool", "fc")}
        super().__init__(kept)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for name, module in self.items():
            x = module(x)
            if name in self.RETURNED:
                features.append(x)
        return features


class _FPN(nn.Module):
    def __init__(self, in_channels: tuple[int, int, int], out: int) -> None:
        super().__init__()
        self.output1 = _conv_bn(in_channels[0], out, 1, relu=True)
        self.output2 = _conv_bn(in_channels[1], out, 1, relu=True)
        self.output3 = _conv_bn(in_channels[2], out, 1, relu=True)
        self.merge1 = _conv_bn(out, out, 3, relu=True)
        self.merge2 = _conv_bn(out, out, 3, relu=True)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        out1 = self.output1(features[0])
        out2 = self.output2(features[1])
        out3 = self.output3(features[2])
        out2 = self.merge2(out2 + F.interpolate(out3, size=out2.shape[-2:], mode="nearest"))
        out1 = self.merge1(out1 + F.interpolate(out2, size=out1.shape[-2:], mode="nearest"))
        return [out1, out2, out3]


class _SSH(nn.Module):
    """Single-stage context module: 3x3, 5x5 and 7x7 receptive fields, concatenated."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv3X3 = _conv_bn(cin, cout // 2, 3, relu=False)
        self.conv5X5_1 = _conv_bn(cin, cout // 4, 3, relu=True)
        self.conv5X5_2 = _conv_bn(cout // 4, cout // 4, 3, relu=False)
        self.conv7X7_2 = _conv_bn(cout // 4, cout // 4, 3, relu=True)
        self.conv7x7_3 = _conv_bn(cout // 4, cout // 4, 3, relu=False)  # sic: lower-case x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch5 = self.conv5X5_1(x)
        branch7 = self.conv7x7_3(self.conv7X7_2(branch5))
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(branch5), branch7], dim=1))


class _Head(nn.Module):
    """A 1x1 conv predicting ``values`` numbers for each of the 2 priors at every position."""

    def __init__(self, cin: int, values: int) -> None:
        super().__init__()
        self.values = values
        self.conv1x1 = nn.Conv2d(cin, 2 * values, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1)  # (B, H, W, priors * values): row-major priors
        return out.reshape(out.shape[0], -1, self.values)


class RetinaFace(nn.Module):
    """RetinaFace-ResNet50: ``forward`` gives (box offsets, face scores, landmark offsets)."""

    def __init__(self, width: int = 256) -> None:
        super().__init__()
        self.body = _Backbone()
        self.fpn = _FPN((512, 1024, 2048), width)
        self.ssh1, self.ssh2, self.ssh3 = _SSH(width, width), _SSH(width, width), _SSH(width, width)
        self.ClassHead = nn.ModuleList(_Head(width, 2) for _ in STEPS)
        self.BboxHead = nn.ModuleList(_Head(width, 4) for _ in STEPS)
        self.LandmarkHead = nn.ModuleList(_Head(width, 10) for _ in STEPS)

    def forward(self, bgr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pyramid = self.fpn(self.body(bgr))
        sshs = (self.ssh1, self.ssh2, self.ssh3)
        levels = [ssh(level) for ssh, level in zip(sshs, pyramid, strict=True)]

        def predict(heads: nn.ModuleList) -> torch.Tensor:
            return torch.cat([head(x) for head, x in zip(heads, levels, strict=True)], dim=1)

        logits = predict(self.ClassHead)
        return predict(self.BboxHead), F.softmax(logits, dim=-1)[..., 1], predict(self.LandmarkHead)


# ---------------------------------------------------------------- priors and decoding


def prior_boxes(height: int, width: int) -> np.ndarray:
    """Every prior as (cx, cy, w, h) relative to the image, in the order the heads predict.

    Level by level; within a level row by row, column by column, then the level's two
    sizes, as Pytorch_Retinaface's ``PriorBox`` lays them out.
    """
    priors = []
    for step, sizes in zip(STEPS, MIN_SIZES, strict=True):
        rows, cols = -(-height // step), -(-width // step)
        cy, cx = np.meshgrid(
            (np.arange(rows) + 0.5) * step / height,
            (np.arange(cols) + 0.5) * step / width,
            indexing="ij",
        )
        for_level = [
            np.stack([cx, cy, np.full_like(cx, s / width), np.full_like(cy, s / height)], -1)
            for s in sizes
        ]
        priors.append(np.stack(for_level, axis=2).reshape(-1, 4))
    return np.concatenate(priors).astype(np.float64)


def decode_boxes(offsets: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """Box offsets (N, 4) on priors (N, 4) as (x0, y0, x1, y1), relative to the image."""
    centres = priors[:, :2] + offsets[:, :2] * VARIANCES[0] * priors[:, 2:]
    sizes = priors[:, 2:] * np.exp(offsets[:, 2:] * VARIANCES[1])
    return np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)


def decode_landmarks(offsets: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """Landmark offsets (N, 10) on priors as (N, 5, 2) points, relative to the image."""
    points = offsets.reshape(-1, 5, 2)
    return priors[:, None, :2] + points * VARIANCES[0] * priors[:, None, 2:]


@dataclass(frozen=True)
class Face:
    """One detected face, in the pixel coordinates of the image it was found in.

    ``landmarks`` (5, 2): the eye on the image's left, the other eye, the nose tip, the
    mouth corner on the left, the other corner.
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.landmarks[0] - self.landmarks[1]))


def select(
    offsets: np.ndarray,
    scores: np.ndarray,
    landmark_offsets: np.ndarray,
    size: tuple[int, int],
    *,
    threshold: float = SCORE_THRESHOLD,
    nms_iou: float = NMS_IOU,
) -> list[Face]:
    """Decode one image's predictions (``size`` = (width, height)) and keep the best faces.

    Priors scoring above ``threshold`` are decoded to pixels, then non-maximum
    suppression keeps the best of overlapping boxes; faces come back best first.
    """
    width, height = size
    keep = np.flatnonzero(scores > threshold)
    if keep.size == 0:
        return []
    priors = prior_boxes(height, width)[keep]
    boxes = decode_boxes(offsets[keep], priors) * [width, height, width, height]
    points = decode_landmarks(landmark_offsets[keep], priors) * [width, height]
    chosen = torchvision.ops.nms(
        torch.from_numpy(boxes).float(), torch.from_numpy(scores[keep]).float(), nms_iou
    ).numpy()
    return [Face(boxes[i], float(scores[keep][i]), points[i]) for i in chosen]


@torch.inference_mode()
def detect(net: RetinaFace, rgb: np.ndarray, device: torch.device) -> list[Face]:
    """Faces in an RGB float image (H, W, 3) in [0, 1], best first."""
    height, width = rgb.shape[:2]
    factor = min(1.0, MAX_SIDE / max(height, width))
    image = rgb
    if factor < 1.0:
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        image = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    bgr = image[:, :, ::-1] * 255.0 - np.array(BGR_MEAN, dtype=np.float32)
    batch = torch.from_numpy(np.ascontiguousarray(bgr.transpose(2, 0, 1))).unsqueeze(0)
    offsets, scores, landmarks = net(batch.to(device=device, dtype=torch.float32))
    faces = select(
        offsets[0].double().cpu().numpy(),
        scores[0].double().cpu().numpy(),
        landmarks[0].double().cpu().numpy(),
        (image.shape[1], image.shape[0]),
    )
    if factor == 1.0:
        return faces
    return [Face(f.box / factor, f.score, f.landmarks / factor) for f in faces]
