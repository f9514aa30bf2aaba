"""BOPB's face-enhancement generator: a SPADE network guided by the degraded face itself.

An inference-only re-implementation of ``Face_Enhancement/models/networks/generator.py``
(``SPADEGenerator``), ``architecture.py`` and ``normalization.py`` of Bringing Old Photos
Back to Life (microsoft/Bringing-Old-Photos-Back-to-Life, MIT licence), in the
configuration its ``run.py`` uses for ``Setting_9_epoch_100``: 256 px faces, 64 base
filters, SPADE in every block, ``--no_parsing_map`` (the modulation is computed from
the degraded face, not from a parsing map), parameter-free batch norm, spectral norm
on the residual convolutions.

Spectral norm only rescales a weight by a fixed factor at inference, so
``fold_spectral_norm`` applies it once to the checkpoint's ``weight_orig`` and the
network holds plain convolutions.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

SIZE = 256
BASE = 64
HIDDEN = 128
UPSAMPLINGS = 5  # the generator starts at 1/32 of the face size (8x8 for 256 px)


class SPADE(nn.Module):
    """Batch norm without affine terms, then a per-pixel scale and shift computed from
    the degraded face resized to the features' size."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.param_free_norm = nn.BatchNorm2d(channels, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(3, HIDDEN, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(HIDDEN, channels, 3, padding=1)
        self.mlp_beta = nn.Conv2d(HIDDEN, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        guide = F.interpolate(face, size=x.shape[2:], mode="bilinear", align_corners=False)
        hidden = self.mlp_shared(guide)
        return self.param_free_norm(x) * (1 + self.mlp_gamma(hidden)) + self.mlp_beta(hidden)


class SPADEResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        middle = min(cin, cout)
        self.learned_shortcut = cin != cout
        self.conv_0 = nn.Conv2d(cin, middle, 3, padding=1)
        self.conv_1 = nn.Conv2d(middle, cout, 3, padding=1)
        self.norm_0 = SPADE(cin)
        self.norm_1 = SPADE(middle)
        if self.learned_shortcut:
            self.conv_s = nn.Conv2d(cin, cout, 1, bias=False)
            self.norm_s = SPADE(cin)

    def forward(self, x: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, face)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, face), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, face), 0.2))
        return shortcut + dx


class FaceGenerator(nn.Module):
    """An aligned face in [-1, 1] (1x3xSxS, S = ``size``: 256, or 512 for ``FaceSR_512``)
    -> the enhanced face in [-1, 1]. The weights do not depend on the size."""

    def __init__(self, nf: int = BASE, size: int = SIZE) -> None:
        super().__init__()
        self.latent_side = size // 2**UPSAMPLINGS
        self.fc = nn.Conv2d(3, 16 * nf, 3, padding=1)
        self.head_0 = SPADEResnetBlock(16 * nf, 16 * nf)
        self.G_middle_0 = SPADEResnetBlock(16 * nf, 16 * nf)
        self.G_middle_1 = SPADEResnetBlock(16 * nf, 16 * nf)
        self.up_0 = SPADEResnetBlock(16 * nf, 8 * nf)
        self.up_1 = SPADEResnetBlock(8 * nf, 4 * nf)
        self.up_2 = SPADEResnetBlock(4 * nf, 2 * nf)
        self.up_3 = SPADEResnetBlock(2 * nf, nf)
        self.conv_img = nn.Conv2d(nf, 3, 3, padding=1)

    def forward(self, face: torch.Tensor) -> torch.Tensor:
        side = (self.latent_side, self.latent_side)
        x = self.fc(F.interpolate(face, size=side, mode="bilinear", align_corners=False))
        x = self.head_0(x, face)
        x = self.G_middle_0(_up(x), face)
        x = self.G_middle_1(x, face)
        for block in (self.up_0, self.up_1, self.up_2, self.up_3):
            x = block(_up(x), face)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


def fold_spectral_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace each ``X.weight_orig`` / ``X.weight_u`` / ``X.weight_v`` triple of a
    spectrally normalised layer by the ``X.weight`` it stands for in eval mode:
    ``weight_orig / (u . (W v))`` with W the weight flattened to (out, -1)."""
    folded = {k: v for k, v in state.items() if not k.endswith((".weight_u", ".weight_v"))}
    for key in [k for k in folded if k.endswith(".weight_orig")]:
        stem = key.removesuffix("_orig")
        weight = folded.pop(key)
        matrix = weight.reshape(weight.shape[0], -1).double()
        u = state[stem + "_u"].double()
        v = state.get(stem + "_v")
        # Files from torch < 1.1 hold no v: take one power-iteration step from u instead.
        v = F.normalize(matrix.T @ u, dim=0) if v is None else v.double()
        sigma = torch.dot(u, matrix @ v)
        folded[stem] = (weight.double() / sigma).to(weight.dtype)
    return folded
