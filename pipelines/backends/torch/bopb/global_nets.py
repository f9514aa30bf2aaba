"""BOPB's global restoration networks: the two VAEs and the latent mapping networks.

Inference-only re-implementations of ``Global/models/networks.py``,
``mapping_model.py`` and ``NonLocal_feature_mapping_model.py`` of Bringing Old Photos
Back to Life (microsoft/Bringing-Old-Photos-Back-to-Life, MIT licence), with the
hyperparameters its ``Global/test.py`` sets (``parameter_set``): VAE with 64 channels
throughout, kernel 4, two stride-2 downsamplings (the latent is 1/4 of the image
size), instance norm without affine parameters; mapping with 512 channels and six
residual blocks. Module names follow the official ones so the released
``latest_net_G.pth`` / ``latest_net_mapping_net.pth`` files load strictly.

The scratch variant's non-local block attends from every latent position to the
positions outside the (downscaled) scratch mask; it is computed in row chunks so a
large photo does not need the full N x N attention matrix at once (same result).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

VAE_WIDTH = 64
MAPPING_WIDTH = 512
MAPPING_BLOCKS = 6
MULTIPLE = 4  # the VAE halves the size twice
ATTENTION_CHUNK_ELEMENTS = 1 << 24  # attention rows x positions computed at once


class ResnetBlock(nn.Module):
    """pix2pixHD's block: x + (pad, conv3, IN, ReLU, pad, conv3, IN)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            nn.InstanceNorm2d(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            nn.InstanceNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def _conv_norm_relu(cin: int, cout: int, kernel: int = 3) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, 1, kernel // 2), nn.InstanceNorm2d(cout), nn.ReLU(True)]


def _down(width: int) -> list[nn.Module]:
    return [nn.Conv2d(width, width, 4, 2, 1), nn.InstanceNorm2d(width), nn.ReLU(True)]


def _up(width: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(width, width, 4, 2, 1), nn.InstanceNorm2d(width), nn.ReLU(True)]


class VAE(nn.Module):
    """``GlobalGenerator_DCDCv2``: RGB in [-1, 1] -> 64-channel latent at 1/4 size -> RGB."""

    def __init__(self, width: int = VAE_WIDTH) -> None:
        super().__init__()
        blocks = [ResnetBlock(width) for _ in range(4)]
        self.encoder = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(3, width, 7),
            nn.InstanceNorm2d(width),
            nn.ReLU(True),
            *_down(width),
            *_down(width),
            *blocks,
        )
        self.decoder = nn.Sequential(
            *[ResnetBlock(width) for _ in range(4)],
            *_up(width),
            *_up(width),
            nn.ReflectionPad2d(3),
            nn.Conv2d(width, 3, 7),
            nn.Tanh(),
        )

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        return self.encoder(image)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.decoder(latent)


def _widen(latent: int, width: int) -> list[nn.Module]:
    """Four conv+IN+ReLU layers: latent (64) -> 128 -> 256 -> 512 -> width (capped)."""
    layers: list[nn.Module] = []
    for i in range(4):
        layers += _conv_norm_relu(min(latent * 2**i, width), min(latent * 2 ** (i + 1), width))
    return layers


def _narrow(latent: int, width: int) -> list[nn.Module]:
    """Three conv+IN+ReLU layers back down to 128, then a plain conv to the latent width."""
    layers: list[nn.Module] = []
    for i in range(3):
        layers += _conv_norm_relu(
            min(latent * 2 ** (4 - i), width), min(latent * 2 ** (3 - i), width)
        )
    return [*layers, nn.Conv2d(latent * 2, latent, 3, 1, 1)]


class QualityMapping(nn.Module):
    """``Mapping_Model``: degraded-photo latent -> clean-photo latent, no mask."""

    def __init__(self, latent: int = VAE_WIDTH, width: int = MAPPING_WIDTH) -> None:
        super().__init__()
        blocks = [ResnetBlock(width) for _ in range(MAPPING_BLOCKS)]
        self.model = nn.Sequential(*_widen(latent, width), *blocks, *_narrow(latent, width))

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.model(latent)


class MaskedNonLocal(nn.Module):
    """``NonLocalBlock2D_with_mask_Res`` as configured for scratches ("Setting_42").

    Softmax attention over all positions, restricted to those outside the mask and
    renormalised to sum to one; the attended features pass a 1x1 conv and three
    residual blocks and replace the features inside the mask ("combine" fusion).
    """

    def __init__(self, width: int = MAPPING_WIDTH) -> None:
        super().__init__()
        self.g = nn.Conv2d(width, width, 1)
        self.W = nn.Conv2d(width, width, 1)
        self.theta = nn.Conv2d(width, width, 1)
        self.phi = nn.Conv2d(width, width, 1)
        self.res_block = nn.Sequential(*[ResnetBlock(width) for _ in range(3)])

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        _, channels, height, width = x.shape
        valid = valid_positions(mask, height, width)  # 1x1xhxw, 1 = usable context
        query = self.theta(x).flatten(2)[0].T  # N x C
        key = self.phi(x).flatten(2)[0]  # C x N
        value = self.g(x).flatten(2)[0].T  # N x C
        weights = valid.flatten()[None, :]
        attended = torch.empty_like(value)
        step = max(1, ATTENTION_CHUNK_ELEMENTS // query.shape[0])
        for start in range(0, query.shape[0], step):
            scores = torch.softmax(query[start : start + step] @ key, dim=1) * weights
            scores = F.normalize(scores, p=1, dim=1)
            attended[start : start + step] = scores @ value
        y = attended.T.reshape(1, channels, height, width)
        filled = self.res_block(self.W(y))
        return valid * x + (1 - valid) * filled


def valid_positions(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The official mask handling: a latent position is usable context only when neither
    the bilinear nor the nearest downscale of the scratch mask touches it."""
    touched = F.interpolate(mask, (height, width), mode="bilinear", align_corners=False) > 0
    clean_nearest = F.interpolate(1 - mask, (height, width), mode="nearest")
    return (~touched).to(mask.dtype) * clean_nearest


class ScratchMapping(nn.Module):
    """``Mapping_Model_with_mask``: widen, masked non-local block, six residual blocks, narrow."""

    def __init__(self, latent: int = VAE_WIDTH, width: int = MAPPING_WIDTH) -> None:
        super().__init__()
        self.before_NL = nn.Sequential(*_widen(latent, width))
        self.NL = MaskedNonLocal(width)
        blocks = [ResnetBlock(width) for _ in range(MAPPING_BLOCKS)]
        self.after_NL = nn.Sequential(*blocks, *_narrow(latent, width))

    def forward(self, latent: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.after_NL(self.NL(self.before_NL(latent), mask))


class PatchAttention(nn.Module):
    """``Patch_Attention_4`` as the HR test runs it (``inference_forward``).

    Each ``patch`` x ``patch`` latent patch that is mostly (> 60 %) scratch is replaced
    by the most similar (cosine) patch outside the scratches; a 3x3 conv then fuses the
    block's input, the composed features and the mask. Where ``patch`` does not divide
    the latent size, the composed features are zero beyond the last whole patch, as
    ``F.fold`` leaves them in the official code.
    """

    def __init__(self, width: int, patch: int) -> None:
        super().__init__()
        self.patch = patch
        self.res_block = nn.Sequential(ResnetBlock(width))
        self.F_Combine = nn.Conv2d(2 * width + 1, width, 3, 1, 1)

    def forward(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.res_block(z)
        height, width = x.shape[2:]
        scratched = (F.interpolate(mask, (height, width), mode="bilinear") > 0).to(x.dtype)
        holes = F.unfold(scratched, self.patch, stride=self.patch).mean(1)[0] > 0.6
        composed = x
        if holes.any() and not holes.all():
            patches = F.unfold(x, self.patch, stride=self.patch)[0]  # (C*p*p, L)
            patches[:, holes] = patches[:, ~holes][:, _best_matches(patches, holes)]
            composed = F.fold(patches[None], (height, width), self.patch, stride=self.patch)
        return self.F_Combine(torch.cat([z, composed, scratched], 1))


def _best_matches(patches: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
    """For each hole patch, the index (among the others) of the most cosine-similar one."""
    queries = F.normalize(patches[:, holes].T, dim=1)
    keys = F.normalize(patches[:, ~holes], dim=0)
    step = max(1, ATTENTION_CHUNK_ELEMENTS // keys.shape[1])
    return torch.cat(
        [(queries[i : i + step] @ keys).argmax(1) for i in range(0, len(queries), step)]
    )


class PatchAttentionMapping(nn.Module):
    """``Mapping_Model_with_mask_2`` (HR): patch attention at 8, 4 and 2 latent pixels
    between pairs of residual blocks; cost grows with the scratched area, not N^2."""

    def __init__(self, latent: int = VAE_WIDTH, width: int = MAPPING_WIDTH) -> None:
        super().__init__()
        self.before_NL = nn.Sequential(*_widen(latent, width), *_blocks(width, 2))
        self.NL_scale_1 = PatchAttention(width, 8)
        self.res_block_1 = nn.Sequential(*_blocks(width, 2))
        self.NL_scale_2 = PatchAttention(width, 4)
        self.res_block_2 = nn.Sequential(*_blocks(width, 2))
        self.NL_scale_3 = PatchAttention(width, 2)
        self.after_NL = nn.Sequential(*_blocks(width, 2), *_narrow(latent, width))

    def forward(self, latent: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.NL_scale_1(self.before_NL(latent), mask)
        x = self.NL_scale_2(self.res_block_1(x), mask)
        x = self.NL_scale_3(self.res_block_2(x), mask)
        return self.after_NL(x)


def _blocks(width: int, count: int) -> list[nn.Module]:
    return [ResnetBlock(width) for _ in range(count)]
