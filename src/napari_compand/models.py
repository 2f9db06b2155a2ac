"""The restoration networks: the paper's U-Net and an optional residual head.

:class:`UNet` is the generator of Hou & Qiu (pix2pix-style): 4x4 stride-2
convolutions down to a bottleneck, 4x4 stride-2 transposed convolutions up,
BatchNorm after every convolution except the first encoder and the last decoder
layer, LeakyReLU(0.2) in the encoder, ReLU in the decoder, and every encoder
activation concatenated into the decoder layer of the same resolution.

:class:`Restorer` wraps it for training and inference: optional fixed *base*
reconstruction (Gaussian blur of a halftone, mid-bin value of a quantized image)
to which the U-Net adds a learned, zero-initialised correction.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import Enum

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Base", "ModelConfig", "Restorer", "UNet", "build_model", "pad_to_multiple"]


class UNet(nn.Module):
    """The paper's U-Net.

    Parameters
    ----------
    in_channels, out_channels
        1 for grey, 3 for colour.
    ngf
        Channels of the first encoder layer; each level doubles them up to
        ``max_channels``.
    depth
        Number of stride-2 levels; inputs are padded to a multiple of ``2**depth``.
        The paper (and pix2pix) use 8 with ``ngf=64``, ``max_channels=512``.
    max_channels
        Channel cap of the deeper levels.

    The output is linear (no final activation): images live in [0, 1] and are
    clamped by the caller when converted back to pixels.

    Examples
    --------
    >>> net = UNet(3, 3, ngf=8, depth=3)
    >>> net(torch.rand(2, 3, 37, 50)).shape
    torch.Size([2, 3, 37, 50])
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        depth: int = 8,
        max_channels: int = 512,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        if min(in_channels, out_channels, ngf, max_channels) < 1:
            raise ValueError("channel counts must be positive")
        self.depth = depth
        widths = [min(ngf * 2**level, max_channels) for level in range(depth)]
        self.encoder = nn.ModuleList()
        previous = in_channels
        for level, width in enumerate(widths):
            layers: list[nn.Module] = [nn.Conv2d(previous, width, 4, 2, 1, bias=level == 0)]
            if level > 0:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(0.2))
            self.encoder.append(nn.Sequential(*layers))
            previous = width
        self.decoder = nn.ModuleList()
        for level in reversed(range(depth)):
            # the innermost decoder sees only the bottleneck; the others also the skip
            incoming = widths[level] if level == depth - 1 else 2 * widths[level]
            if level == 0:
                self.decoder.append(nn.ConvTranspose2d(incoming, out_channels, 4, 2, 1))
            else:
                width = widths[level - 1]
                self.decoder.append(
                    nn.Sequential(
                        nn.ConvTranspose2d(incoming, width, 4, 2, 1, bias=False),
                        nn.BatchNorm2d(width),
                        nn.ReLU(),
                    )
                )

    @property
    def multiple(self) -> int:
        """Input sizes must be multiples of this (``2**depth``); forward pads."""
        return 2**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = pad_to_multiple(x, self.multiple)
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for i, block in enumerate(self.decoder):
            if i > 0:
                x = torch.cat([x, skips.pop()], dim=1)
            x = block(x)
        return x[..., :height, :width]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the last two axes at the bottom/right up to a multiple, by reflection.

    Reflection needs the pad to be smaller than the size, so large pads of small
    images are done in several reflections.
    """
    height, width = x.shape[-2:]
    target_h = math.ceil(height / multiple) * multiple
    target_w = math.ceil(width / multiple) * multiple
    while x.shape[-2] < target_h or x.shape[-1] < target_w:
        pad_h = min(target_h - x.shape[-2], x.shape[-2] - 1)
        pad_w = min(target_w - x.shape[-1], x.shape[-1] - 1)
        if pad_h <= 0 and pad_w <= 0:  # 1-pixel axes cannot reflect
            return F.pad(
                x, (0, target_w - x.shape[-1], 0, target_h - x.shape[-2]), mode="replicate"
            )
        x = F.pad(x, (0, max(pad_w, 0), 0, max(pad_h, 0)), mode="reflect")
    return x


class Base(str, Enum):
    """Fixed reconstruction that the network corrects (``none``: plain U-Net)."""

    NONE = "none"
    GAUSSIAN = "gaussian"
    MIDBIN = "midbin"


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network (stored in checkpoint metadata).

    Parameters
    ----------
    channels
        1 (grey) or 3 (colour).
    ngf, depth, max_channels
        :class:`UNet` size.
    base
        :class:`Base`: ``none`` (the paper's plain U-Net), ``gaussian`` (blur of
        the input with ``sigma``) or ``midbin`` (``q + 2**(8 - bits - 1)`` for a
        ``bits``-bit input); the U-Net's last layer then starts at zero so the
        untrained model equals the base.
    sigma
        Gaussian sigma in pixels for ``base="gaussian"``.
    bits
        Input bit depth for ``base="midbin"``.
    """

    channels: int = 3
    ngf: int = 32
    depth: int = 7
    max_channels: int = 256
    base: Base = Base.NONE
    sigma: float = 1.5
    bits: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", Base(self.base))
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (colour), got {self.channels}")
        if not 1 <= self.depth <= 10:
            raise ValueError(f"depth must be between 1 and 10, got {self.depth}")
        if not 1 <= self.ngf <= 1024 or not 1 <= self.max_channels <= 4096:
            raise ValueError(f"ngf ({self.ngf}) or max_channels ({self.max_channels}) out of range")
        if self.base is Base.GAUSSIAN and not 0 < self.sigma <= 10:
            raise ValueError(f"sigma must be in (0, 10], got {self.sigma}")
        if self.base is Base.MIDBIN and not 1 <= self.bits <= 7:
            raise ValueError(f"bits must be between 1 and 7 for the mid-bin base, got {self.bits}")

    def to_dict(self) -> dict:
        """JSON-ready form."""
        data = asdict(self)
        data["base"] = self.base.value
        return data


class Restorer(nn.Module):
    """U-Net with an optional fixed base reconstruction: ``out = base(x) + unet(x)``.

    Inputs and outputs are ``(N, C, H, W)`` tensors in [0, 1] (not clamped).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.unet = UNet(
            config.channels, config.channels, config.ngf, config.depth, config.max_channels
        )
        if config.base is not Base.NONE:
            last = self.unet.decoder[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        if config.base is Base.GAUSSIAN:
            radius = max(1, math.ceil(3 * config.sigma))
            grid = torch.arange(-radius, radius + 1, dtype=torch.float32)
            kernel = torch.exp(-(grid**2) / (2 * config.sigma**2))
            self.register_buffer("kernel", kernel / kernel.sum(), persistent=False)

    def base(self, x: torch.Tensor) -> torch.Tensor:
        """The fixed reconstruction the network corrects (zeros for ``none``)."""
        config = self.config
        if config.base is Base.GAUSSIAN:
            return gaussian_blur(x, self.kernel)
        if config.base is Base.MIDBIN:
            return x + 2.0 ** (8 - config.bits - 1) / 255.0
        return torch.zeros_like(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        correction = self.unet(x)
        if self.config.base is Base.NONE:
            return correction
        return self.base(x) + correction


def gaussian_blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable blur with a 1D kernel, reflect padding, channel by channel."""
    channels = x.shape[1]
    radius = kernel.numel() // 2
    k = kernel.to(dtype=x.dtype, device=x.device)
    x = F.pad(
        x,
        (radius, radius, radius, radius),
        mode="reflect" if min(x.shape[-2:]) > radius else "replicate",
    )
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def build_model(config: ModelConfig | dict) -> Restorer:
    """A fresh :class:`Restorer` from a config (or its dict form)."""
    if isinstance(config, dict):
        config = ModelConfig(**config)
    return Restorer(config)
