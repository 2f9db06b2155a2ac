"""The restoration networks: the paper's U-Net, a full-resolution residual U-Net, and a head.

:class:`UNet` is the generator of Hou & Qiu (pix2pix-style): 4x4 stride-2
convolutions down to a bottleneck, 4x4 stride-2 transposed convolutions up,
BatchNorm after every convolution except the first encoder and the last decoder
layer, LeakyReLU(0.2) in the encoder, ReLU in the decoder, and every encoder
activation concatenated into the decoder layer of the same resolution. Its first
layer already halves the resolution, so no layer sees the image at full resolution.

:class:`ResUNet` is the plugin's restoration network: 3x3 convolutions and ReLU
residual blocks at full, 1/2, 1/4 ... resolution (few channels at full
resolution, most of the compute at the coarsest level), stride-2 convolutions
down, pixel-shuffle up, additive skips, no normalisation.

:class:`Restorer` wraps either for training and inference: optional fixed *base*
reconstruction (Gaussian blur of a halftone, mid-bin value of a quantized image)
to which the network adds a learned, zero-initialised correction, or, for
bit-depth expansion, the position inside each pixel's quantization bin
(``Base.BIN``), so every output lies inside its input's bin by construction.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .vocabulary import BIT_BASES, HALFTONE_BLUR_SIGMA, LIMITS, Arch, Base

__all__ = [
    "RESUNET_SIZES",
    "THRESHOLD_MAP_GAIN",
    "Arch",
    "Base",
    "ModelConfig",
    "ResUNet",
    "Restorer",
    "UNet",
    "build_model",
    "deeper_version",
    "grey_version",
    "pad_to_multiple",
    "with_threshold_map",
]


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

    @property
    def receptive_radius(self) -> int:
        r"""Pixels on each side that can influence one output pixel.

        Each 4x4 stride-2 layer at input stride :math:`2^l` reaches
        :math:`1.5 \cdot 2^l` pixels further, on the way down and on the way up:
        :math:`r = 3 (2^{depth} - 1)`.
        """
        return 3 * (2**self.depth - 1)

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


#: Named :class:`ResUNet` sizes, ``(widths, blocks)``, measured in the CPU
#: ablation of ``docs/results.md`` (parameters; seconds per 768x512 RGB image
#: on 2 CPU cores): S 1.54 M, 0.49 s; M 2.22 M, 0.53 s; L 3.44 M, 0.80 s.
RESUNET_SIZES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "S": ((16, 32, 64, 128), (1, 1, 2, 4)),
    "M": ((16, 32, 64, 128), (1, 2, 3, 6)),
    "L": ((16, 48, 96, 192), (1, 1, 2, 4)),
}


class ResidualBlock(nn.Module):
    """``x + conv3x3(relu(conv3x3(x)))`` at constant width."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x), inplace=True))


class ResUNet(nn.Module):
    """Full-resolution residual U-Net (the plugin's restoration network).

    Level ``i`` works at ``1 / 2**i`` of the input resolution with ``widths[i]``
    channels::

        head:     conv3x3(in -> widths[0])                       full resolution
        encoder:  blocks[i] residual blocks, then conv2x2 stride 2 to level i+1
        bottom:   blocks[-1] residual blocks at the coarsest level
        decoder:  conv1x1 + pixel shuffle up to level i, + encoder features,
                  one residual block
        tail:     conv3x3(widths[0] -> out)

    Parameters
    ----------
    in_channels, out_channels
        1 for grey, 3 for colour.
    widths
        Channels per level, finest first.
    blocks
        Residual blocks per level (same length as ``widths``).

    Examples
    --------
    >>> net = ResUNet(3, 3, widths=(8, 16), blocks=(1, 1))
    >>> net(torch.rand(2, 3, 37, 50)).shape
    torch.Size([2, 3, 37, 50])
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        widths: tuple[int, ...] = RESUNET_SIZES["S"][0],
        blocks: tuple[int, ...] = RESUNET_SIZES["S"][1],
    ) -> None:
        super().__init__()
        if len(widths) != len(blocks) or not widths:
            raise ValueError(f"widths {widths} and blocks {blocks} need the same, nonzero length")
        self.levels = len(widths)
        self.head = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        self.encoder = nn.ModuleList(
            nn.Sequential(*(ResidualBlock(widths[i]) for _ in range(n)))
            for i, n in enumerate(blocks[:-1])
        )
        self.down = nn.ModuleList(
            nn.Conv2d(widths[i], widths[i + 1], 2, stride=2) for i in range(self.levels - 1)
        )
        self.bottom = nn.Sequential(*(ResidualBlock(widths[-1]) for _ in range(blocks[-1])))
        self.up = nn.ModuleList(
            nn.Sequential(nn.Conv2d(widths[i + 1], 4 * widths[i], 1), nn.PixelShuffle(2))
            for i in range(self.levels - 1)
        )
        self.decoder = nn.ModuleList(ResidualBlock(widths[i]) for i in range(self.levels - 1))
        self.tail = nn.Conv2d(widths[0], out_channels, 3, padding=1)

    @property
    def multiple(self) -> int:
        """Input sizes must be multiples of this (``2**(levels - 1)``); forward pads."""
        return 2 ** (self.levels - 1)

    @property
    def receptive_radius(self) -> int:
        r"""Pixels on each side that can influence one output pixel.

        A 3x3 convolution at level :math:`i` reaches :math:`2^i` pixels further, a
        2x2 stride-2 one :math:`2^i` (rounded up): head and tail 1 each, then per
        level :math:`2^i (2 b_i + 1 + 2)` (blocks, down, decoder block) and
        :math:`2^{L-1} \cdot 2 b_{L-1}` at the bottom.
        """
        blocks = [len(level) for level in self.encoder]
        radius = 2 + 2 * len(self.bottom) * 2 ** (self.levels - 1)
        for i, count in enumerate(blocks):
            radius += 2**i * (2 * count + 1 + 2)
        return radius

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = self.head(pad_to_multiple(x, self.multiple))
        skips = []
        for blocks, down in zip(self.encoder, self.down, strict=True):
            x = blocks(x)
            skips.append(x)
            x = down(x)
        x = self.bottom(x)
        for level in reversed(range(self.levels - 1)):
            x = self.decoder[level](self.up[level](x) + skips[level])
        return self.tail(x)[..., :height, :width]


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


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network (stored in checkpoint metadata).

    Parameters
    ----------
    channels
        1 (grey) or 3 (colour).
    arch
        :class:`Arch`: ``unet`` (the paper's, sized by ``ngf``, ``depth``,
        ``max_channels``) or ``resunet`` (sized by ``widths`` and ``blocks``).
    ngf, depth, max_channels
        :class:`UNet` size.
    widths, blocks
        :class:`ResUNet` channels and residual blocks per level, finest first.
    base
        :class:`Base`: ``none`` (the paper's plain U-Net), ``gaussian`` (blur of
        the input with ``sigma``), ``midbin`` (``q + 2**(8 - bits - 1)`` for a
        ``bits``-bit input) or ``bin`` (position inside the bin); the network's
        last layer then starts at zero so the untrained model equals the base
        (the mid-bin value for ``bin``).
    sigma
        Gaussian sigma in pixels for ``base="gaussian"``.
    bits
        Input bit depth for ``base="midbin"`` and ``base="bin"``.
    threshold_map
        ResUNet only: the network also sees the ordered dither's threshold map
        (:func:`~napari_compand.degrade.dither_thresholds`, aligned with the
        halftone) as one more input channel after the image's; a halftone pixel
        is set where the original exceeds it, so the two bound each pixel's value.
    """

    channels: int = 3
    arch: Arch = Arch.UNET
    ngf: int = 32
    depth: int = 7
    max_channels: int = 256
    widths: tuple[int, ...] = RESUNET_SIZES["S"][0]
    blocks: tuple[int, ...] = RESUNET_SIZES["S"][1]
    base: Base = Base.NONE
    sigma: float = HALFTONE_BLUR_SIGMA
    bits: int = 3
    threshold_map: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "base", Base(self.base))
        set_(self, "arch", Arch(self.arch))
        set_(self, "widths", tuple(int(w) for w in self.widths))
        set_(self, "blocks", tuple(int(b) for b in self.blocks))
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (colour), got {self.channels}")
        for name in ("depth", "ngf", "max_channels"):
            low, high = LIMITS[name]
            if not low <= getattr(self, name) <= high:
                raise ValueError(
                    f"{name} must be between {low} and {high}, got {getattr(self, name)}"
                )
        low, high = LIMITS["levels"]
        if not low <= len(self.widths) <= high or len(self.widths) != len(self.blocks):
            raise ValueError(
                f"widths {self.widths} and blocks {self.blocks} need the same length, "
                f"{low} to {high}"
            )
        low, high = LIMITS["width"]
        if not all(low <= w <= high for w in self.widths):
            raise ValueError(f"widths must be between {low} and {high}, got {self.widths}")
        low, high = LIMITS["blocks"]
        if not all(low <= b <= high for b in self.blocks):
            raise ValueError(f"blocks must be between {low} and {high}, got {self.blocks}")
        if self.threshold_map and self.arch is not Arch.RESUNET:
            raise ValueError("threshold_map needs the resunet architecture")
        if self.base is Base.GAUSSIAN and not 0 < self.sigma <= 10:
            raise ValueError(f"sigma must be in (0, 10], got {self.sigma}")
        if self.base in BIT_BASES and not LIMITS["bits"][0] <= self.bits <= LIMITS["bits"][1]:
            raise ValueError(
                f"bits must be between 1 and 7 for the {self.base.value} base, got {self.bits}"
            )

    @property
    def multiple(self) -> int:
        """The network pads inputs to multiples of this; tiles start on it."""
        if self.arch is Arch.RESUNET:
            return 2 ** (len(self.widths) - 1)
        return 2**self.depth

    @property
    def input_channels(self) -> int:
        """Channels the network reads: the image's, plus one for the threshold map."""
        return self.channels + int(self.threshold_map)

    def same_weights_as(self, other: ModelConfig) -> bool:
        """Whether both configs build networks with the same weights' shapes."""
        keys = ("channels", "arch", "widths", "blocks", "threshold_map")
        if self.arch is Arch.UNET:
            keys = ("channels", "arch", "ngf", "depth", "max_channels")
        return all(getattr(self, k) == getattr(other, k) for k in keys)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        data = asdict(self)
        data["base"] = self.base.value
        data["arch"] = self.arch.value
        data["widths"] = list(self.widths)
        data["blocks"] = list(self.blocks)
        return data


#: The network reads a threshold map ``T`` as ``THRESHOLD_MAP_GAIN * (T - 0.5)``. Adam moves
#: every weight by about the learning rate per step, so the gain makes the zero-initialised
#: weights that read the map (:func:`with_threshold_map`) change the result 10x faster:
#: after 800 steps at lr 1e-4 they averaged 0.003 against 0.1 for the image's.
THRESHOLD_MAP_GAIN = 10.0


class Restorer(nn.Module):
    """A network with an optional fixed base reconstruction.

    ``out = base(x) + net(x)``, or for ``Base.BIN`` ``out = x + w * sigmoid(4 * net(x) / w)``
    with the bin width ``w = 2**(8 - bits) / 255`` (slope 1 at mid-bin: a sigmoid of the
    raw output learned about 60x slower at 4 bits). Inputs and outputs are
    ``(N, C, H, W)`` tensors in [0, 1] (not clamped); with ``config.threshold_map``
    the input has one more channel, the threshold map, which only the network reads.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        channels = config.channels
        if config.arch is Arch.RESUNET:
            self.unet: nn.Module = ResUNet(
                config.input_channels, channels, config.widths, config.blocks
            )
            last = self.unet.tail
        else:
            self.unet = UNet(channels, channels, config.ngf, config.depth, config.max_channels)
            last = self.unet.decoder[-1]
        if config.base is not Base.NONE:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        if config.base is Base.GAUSSIAN:
            radius = max(1, math.ceil(3 * config.sigma))
            # on the CPU explicitly: under torch.device("meta") (checkpoint checks) arange
            # would pull in torch's compiler stack, and with it triton's LLVM
            grid = torch.arange(-radius, radius + 1, dtype=torch.float32, device="cpu")
            kernel = torch.exp(-(grid**2) / (2 * config.sigma**2))
            self.register_buffer("kernel", kernel / kernel.sum(), persistent=False)

    @property
    def multiple(self) -> int:
        """Input sizes that need no padding are multiples of this."""
        return self.config.multiple

    @property
    def receptive_radius(self) -> int:
        """Pixels on each side that can influence one output pixel (network and base)."""
        base = self.kernel.numel() // 2 if self.config.base is Base.GAUSSIAN else 0
        return self.unet.receptive_radius + base

    @property
    def bin_width(self) -> float:
        """Width of one quantization bin on the [0, 1] scale (bit bases)."""
        return 2.0 ** (8 - self.config.bits) / 255.0

    def base(self, x: torch.Tensor) -> torch.Tensor:
        """The fixed reconstruction the network corrects (zeros for ``none``)."""
        config = self.config
        if config.base is Base.GAUSSIAN:
            return gaussian_blur(x, self.kernel)
        if config.base in BIT_BASES:
            return x + self.bin_width / 2
        return torch.zeros_like(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = self.config.channels
        if self.config.threshold_map:  # centred and scaled, see THRESHOLD_MAP_GAIN
            x = torch.cat([x[:, :channels], (x[:, channels:] - 0.5) * THRESHOLD_MAP_GAIN], 1)
        correction = self.unet(x)
        x = x[:, :channels]  # the image, without the threshold map
        if self.config.base is Base.BIN:
            width = self.bin_width
            return x + width * torch.sigmoid(correction * (4 / width))
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


def grey_version(model: Restorer) -> Restorer:
    r"""The one-channel network that computes what colour ``model`` computes on grey input.

    A grey image reaches a colour network as three equal channels ``g``, and its
    result is the channel mean. So the first layer's weights are summed over
    their input channels, :math:`W'_{o} = \sum_c W_{o,c}`, and the last layer's
    weights and bias are averaged over its outputs, :math:`W' = \tfrac13 \sum_c W_c`.
    The result is exact for the additive bases; with ``Base.BIN`` the mean moves
    inside the bin's sigmoid (equal wherever the three channels agree). Used to
    warm-start grey-only models from colour ones.

    Examples
    --------
    >>> colour = build_model({"arch": "resunet", "widths": (8, 16), "blocks": (1, 1)})
    >>> grey_version(colour).config.channels
    1
    """
    if model.config.channels != 3 or model.config.threshold_map:
        raise ValueError(
            f"grey_version needs a 3-channel model without a threshold map, got "
            f"{model.config.channels} channels{' + map' if model.config.threshold_map else ''}"
        )
    grey = Restorer(replace(model.config, channels=1))
    state = {}
    modules = dict(model.named_modules())
    for key, value in model.state_dict().items():
        module = modules[key.rpartition(".")[0]]
        transposed = isinstance(module, nn.ConvTranspose2d)
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and module.in_channels == 3:
            if key.endswith("weight"):  # the first layer: sum over the input channels
                value = value.sum(0 if transposed else 1, keepdim=True)
        elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and module.out_channels == 3:
            # the last layer: mean over the outputs
            axis = 1 if transposed and key.endswith("weight") else 0
            value = value.mean(axis, keepdim=True)
        state[key] = value
    grey.load_state_dict(state)
    return grey.train(model.training)


def deeper_version(model: Restorer, blocks: tuple[int, ...]) -> Restorer:
    r"""The ResUNet with more residual blocks per level that computes what ``model`` computes.

    The blocks ``model`` has keep their weights; each added block, appended at the
    end of its level, gets a zero second convolution, so it is the identity,
    :math:`x + 0 \cdot \mathrm{conv}(\mathrm{relu}(\mathrm{conv}(x))) = x`, and
    training can start from the smaller network's result with the larger one's
    capacity. Used to warm-start a larger size (e.g. ``M`` from ``S``).

    Raises
    ------
    ValueError
        If ``model`` is not a ResUNet, or ``blocks`` has another number of levels
        or fewer blocks than ``model`` at some level.

    Examples
    --------
    >>> small = build_model({"arch": "resunet", "widths": (8, 16), "blocks": (1, 1)})
    >>> deeper_version(small, (2, 3)).config.blocks
    (2, 3)
    """
    config = model.config
    blocks = tuple(int(b) for b in blocks)
    if config.arch is not Arch.RESUNET:
        raise ValueError(f"deeper_version needs a resunet, got {config.arch.value}")
    if len(blocks) != len(config.blocks) or any(
        new < old for new, old in zip(blocks, config.blocks, strict=True)
    ):
        raise ValueError(
            f"blocks {blocks} must have {len(config.blocks)} levels and at least "
            f"{config.blocks} blocks per level"
        )
    deeper = Restorer(replace(config, blocks=blocks))
    kept = model.state_dict()
    state = deeper.state_dict()
    for key, value in state.items():
        if key in kept:
            state[key] = kept[key]
        elif ".conv2." in key:  # conv2 of an added block: zero, so the block is the identity
            state[key] = torch.zeros_like(value)
    deeper.load_state_dict(state)
    return deeper.train(model.training)


def with_threshold_map(model: Restorer) -> Restorer:
    r"""``model`` with one more input channel for the threshold map, computing the same.

    The first convolution's weights for the new channel are zero,
    :math:`W' = [W, 0]`, so the result ignores the map until training teaches the
    network to read it. Used to warm-start an ordered-dither model that sees its
    halftone's thresholds (:attr:`ModelConfig.threshold_map`) from one that does not.

    Examples
    --------
    >>> plain = build_model({"arch": "resunet", "widths": (8, 16), "blocks": (1, 1)})
    >>> with_threshold_map(plain).config.input_channels
    4
    """
    config = model.config
    if config.arch is not Arch.RESUNET or config.threshold_map:
        raise ValueError("with_threshold_map needs a resunet without a threshold map")
    mapped = Restorer(replace(config, threshold_map=True))
    state = model.state_dict()
    head = state["unet.head.weight"]
    state["unet.head.weight"] = torch.cat([head, torch.zeros_like(head[:, :1])], dim=1)
    mapped.load_state_dict(state)
    return mapped.train(model.training)
