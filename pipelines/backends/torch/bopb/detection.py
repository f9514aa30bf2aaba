"""BOPB's scratch-detection U-Net and the way its test script runs it.

An inference-only re-implementation of the U-Net of Bringing Old Photos Back to Life
(microsoft/Bringing-Old-Photos-Back-to-Life, ``Global/detection_models/networks.py``,
MIT licence), laid out so the official ``FT_Epoch_latest.pt`` loads strictly: one gray
channel in, one logit out, depth 4, 64 filters doubling per level, two conv+BN+LeakyReLU
layers per block, anti-aliased (blurred, stride-2) downsampling, bilinear upsampling.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

DEPTH = 4
BASE_WIDTH = 64
MULTIPLE = 16  # 2**DEPTH: the network halves the size DEPTH times
WORKING_SHORT_SIDE = 256
THRESHOLD = 0.4


def _conv_bn_act(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]


class _Blur(nn.Module):
    """Anti-aliased stride-2 downsampling: a fixed [1 2 1]x[1 2 1]/16 filter per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = taps[:, None] * taps[None, :]
        self.register_buffer("filt", (kernel / kernel.sum()).repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(
            F.pad(x, (1, 1, 1, 1), mode="reflect"), self.filt, stride=2, groups=x.shape[1]
        )


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.block = nn.Sequential(*_conv_bn_act(cin, cout), *_conv_bn_act(cout, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class _UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.ReflectionPad2d(1),
            nn.Conv2d(cin, cout, 3),
        )
        self.conv_block = _Block(cin, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv_block(torch.cat([self.up(x), skip], 1))


class ScratchUNet(nn.Module):
    """Gray image in [-1, 1] (sides a multiple of 16) -> scratch logits of the same size."""

    def __init__(self) -> None:
        super().__init__()
        widths = [BASE_WIDTH * 2**level for level in range(DEPTH + 1)]  # 64 ... 1024
        self.first = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(1, widths[0], 7), nn.LeakyReLU(0.2)
        )
        self.down_sample = nn.ModuleList(
            nn.Sequential(*_conv_bn_act(widths[i], widths[i]), _Blur(widths[i]))
            for i in range(DEPTH)
        )
        self.down_path = nn.ModuleList(_Block(widths[i], widths[i + 1]) for i in range(DEPTH))
        self.up_path = nn.ModuleList(
            _UpBlock(widths[i + 1], widths[i]) for i in reversed(range(DEPTH))
        )
        self.last = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(widths[0], 1, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x)
        skips = []
        for down, block in zip(self.down_sample, self.down_path, strict=True):
            skips.append(x)
            x = block(down(x))
        for up, skip in zip(self.up_path, reversed(skips), strict=True):
            x = up(x, skip)
        return self.last(x)


def round_to(value: float, multiple: int) -> int:
    """The nearest multiple (at least one multiple), rounding halves to even like Python."""
    return max(multiple, round(value / multiple) * multiple)


def working_gray(rgb: np.ndarray) -> torch.Tensor:
    """The official input: 8-bit gray (PIL's "L"), bicubic to multiples of 16, then
    bilinear to a short side of 256 (rounded to 16), scaled to [-1, 1]; shape 1x1xHxW."""
    height, width = rgb.shape[:2]
    pixels = Image.fromarray(np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8))
    full = (round_to(width, MULTIPLE), round_to(height, MULTIPLE))
    if full != (width, height):
        pixels = pixels.resize(full, Image.Resampling.BICUBIC)
    gray = np.asarray(pixels.convert("L"), dtype=np.float32) / 255.0
    tensor = torch.from_numpy(gray * 2.0 - 1.0)[None, None]
    short, long = sorted(full)
    scaled_long = round_to(long * WORKING_SHORT_SIDE / short, MULTIPLE)
    size = (
        (WORKING_SHORT_SIDE, scaled_long)
        if full[1] <= full[0]
        else (scaled_long, WORKING_SHORT_SIDE)
    )
    return F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)


@torch.inference_mode()
def scratch_mask(net: ScratchUNet, rgb: np.ndarray, device: torch.device) -> np.ndarray:
    """HxW bool: where the U-Net's scratch probability is at least 0.4, at ``rgb``'s size."""
    height, width = rgb.shape[:2]
    probability = torch.sigmoid(net(working_gray(rgb).to(device))).float().cpu()
    full = (round_to(height, MULTIPLE), round_to(width, MULTIPLE))
    mask = F.interpolate(probability, size=full, mode="nearest")[0, 0] >= THRESHOLD
    if full != (height, width):
        mask = (
            F.interpolate(mask[None, None].float(), size=(height, width), mode="nearest")[0, 0]
            > 0.5
        )
    return mask.numpy()
