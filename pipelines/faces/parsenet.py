"""ParseNet face parsing: which pixels of an aligned face crop are face (skin, eyes, mouth...).

A re-implementation, for inference only, of the ParseNet of PSFR-GAN (chaofengc/PSFRGAN,
CC BY-NC-SA 4.0) in the module layout of facexlib's ``parsing/parsenet.py``, so
facexlib's ``parsing_parsenet.pth`` (a plain state dict) loads strictly. Its weights are
non-commercial, so face enhancement uses it only when it has been downloaded on purpose.
The configuration is facexlib's: 512 px in and out, 19 CelebAMask-HQ classes.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

SIZE = 512
CLASSES = 19
FACE_CLASSES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15)
"""Classes pasted as face, as facexlib's FaceRestoreHelper chooses them: everything but
background (0), neck (14), cloth (16), hair (17) and hat (18)."""
BLUR_KERNEL, BLUR_SIGMA, BORDER = 101, 11, 10


class _ConvLayer(nn.Module):
    """Reflect-pad, conv (stride 2 for ``down``, nearest x2 before it for ``up``), norm, act."""

    def __init__(
        self, cin: int, cout: int, scale: str = "none", norm: bool = False, act: str = "none"
    ) -> None:
        super().__init__()
        self.up = scale == "up"
        self.reflection_pad = nn.ReflectionPad2d(1)
        self.conv2d = nn.Conv2d(cin, cout, 3, 2 if scale == "down" else 1, bias=not norm)
        self.norm = _Wrapped(nn.BatchNorm2d(cout) if norm else nn.Identity())
        self.relu = _Activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.relu(self.norm(self.conv2d(self.reflection_pad(x))))


class _Wrapped(nn.Module):
    """Holds the norm as ``.norm`` (facexlib's ``NormLayer``), for its state-dict keys."""

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class _Activation(nn.Module):
    """facexlib's ``ReluLayer``: LeakyReLU(0.2) or nothing; no parameters either way."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.leaky = kind == "leaky"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, 0.2) if self.leaky else x


class _ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, scale: str = "none") -> None:
        super().__init__()
        self.shortcut_func: nn.Module = (
            nn.Identity() if scale == "none" and cin == cout else _ConvLayer(cin, cout, scale)
        )
        first, second = {"down": ("none", "down"), "up": ("up", "none")}.get(scale, ("none",) * 2)
        self.conv1 = _ConvLayer(cin, cout, first, norm=True, act="leaky")
        self.conv2 = _ConvLayer(cout, cout, second, norm=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut_func(x) + self.conv2(self.conv1(x))


class ParseNet(nn.Module):
    """Encoder (512 -> 32 px), 10 residual blocks, decoder (32 -> 512 px), two output convs."""

    def __init__(self, base: int = 64, depth: int = 10, low: int = 32, high: int = 256) -> None:
        super().__init__()

        def clip(channels: int) -> int:
            return max(low, min(channels, high))

        steps = int(np.log2(SIZE // 32))
        encoder: list[nn.Module] = [_ConvLayer(3, base)]
        head = base
        for _ in range(steps):
            encoder.append(_ResidualBlock(clip(head), clip(head * 2), "down"))
            head *= 2
        self.encoder = nn.Sequential(*encoder)
        self.body = nn.Sequential(*(_ResidualBlock(clip(head), clip(head)) for _ in range(depth)))
        decoder = []
        for _ in range(steps):
            decoder.append(_ResidualBlock(clip(head), clip(head // 2), "up"))
            head //= 2
        self.decoder = nn.Sequential(*decoder)
        self.out_img_conv = _ConvLayer(clip(head), 3)
        self.out_mask_conv = _ConvLayer(clip(head), CLASSES)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parsing logits (B, 19, H, W) and a reconstructed image, for x in [-1, 1]."""
        features = self.encoder(x)
        out = self.decoder(features + self.body(features))
        return self.out_mask_conv(out), self.out_img_conv(out)


@torch.inference_mode()
def face_mask(net: ParseNet, face: np.ndarray, device: torch.device) -> np.ndarray:
    """A soft face mask (512, 512) in [0, 1] for a restored 512 px RGB face crop.

    The parsed face classes, blurred twice (101 px, sigma 11) and cleared in a 10 px
    border, as facexlib does, so the pasted face fades out inside the crop.
    """
    if face.shape[:2] != (SIZE, SIZE):
        face = cv2.resize(face, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
    batch = torch.from_numpy(np.ascontiguousarray(face.transpose(2, 0, 1))).unsqueeze(0)
    logits, _ = net(batch.to(device=device, dtype=torch.float32) * 2 - 1)
    labels = logits[0].argmax(dim=0).cpu().numpy()
    mask = np.isin(labels, FACE_CLASSES).astype(np.float32)
    for _ in range(2):
        mask = cv2.GaussianBlur(mask, (BLUR_KERNEL, BLUR_KERNEL), BLUR_SIGMA)
    mask[:BORDER], mask[-BORDER:], mask[:, :BORDER], mask[:, -BORDER:] = 0, 0, 0, 0
    return mask
