"""The paper's U-Net and the residual Restorer: architecture facts and shapes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from napari_compand.models import (
    ModelConfig,
    Restorer,
    ResUNet,
    UNet,
    build_model,
    deeper_version,
    grey_version,
    pad_to_multiple,
)


def convs(module):
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


@pytest.mark.parametrize("depth", [3, 5, 8])
def test_unet_layer_kinds_norms_and_activations(depth):
    net = UNet(3, 3, ngf=8, depth=depth, max_channels=32)
    encoder_convs = [convs(block)[0] for block in net.encoder]
    decoder_convs = [convs(block)[0] for block in net.decoder]
    assert all(type(c) is nn.Conv2d for c in encoder_convs)
    assert all(type(c) is nn.ConvTranspose2d for c in decoder_convs)
    for conv in encoder_convs + decoder_convs:
        assert conv.kernel_size == (4, 4) and conv.stride == (2, 2) and conv.padding == (1, 1)
    # BatchNorm after every conv except the first encoder and the last decoder layer
    has_bn = [any(isinstance(m, nn.BatchNorm2d) for m in block.modules()) for block in net.encoder]
    assert has_bn == [False] + [True] * (depth - 1)
    has_bn = [any(isinstance(m, nn.BatchNorm2d) for m in block.modules()) for block in net.decoder]
    assert has_bn == [True] * (depth - 1) + [False]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 2 * depth - 2
    for block in net.encoder:
        assert isinstance(block[-1], nn.LeakyReLU) and block[-1].negative_slope == 0.2
    for block in list(net.decoder)[:-1]:
        assert isinstance(block[-1], nn.ReLU)
    assert isinstance(net.decoder[-1], nn.ConvTranspose2d)  # linear output


def test_encoder_activations_are_concatenated_into_the_decoder():
    net = UNet(3, 2, ngf=4, depth=4, max_channels=16)
    seen = {}
    for i, block in enumerate(net.decoder):
        conv = convs(block)[0]
        conv.register_forward_hook(lambda m, inp, out, i=i: seen.__setitem__(i, inp[0].shape[1]))
    net(torch.rand(2, 3, 32, 32))
    widths = [4, 8, 16, 16]
    assert seen[0] == widths[3]  # bottleneck only
    for i in range(1, 4):  # previous decoder output + encoder activation of that level
        level = 3 - i
        assert seen[i] == 2 * widths[level]


@pytest.mark.parametrize("shape", [(1, 3, 37, 50), (2, 1, 17, 9), (1, 3, 5, 3), (1, 3, 256, 256)])
def test_any_size_comes_back_at_its_size(shape):
    net = UNet(shape[1], shape[1], ngf=4, depth=6, max_channels=16).eval()
    with torch.no_grad():
        assert net(torch.rand(shape)).shape == shape


def test_pad_to_multiple_reflects_and_keeps_content():
    x = torch.arange(12.0).view(1, 1, 3, 4)
    padded = pad_to_multiple(x, 8)
    assert padded.shape[-2:] == (8, 8)
    assert torch.equal(padded[..., :3, :4], x)
    assert torch.equal(padded[..., 0, 4], x[..., 0, 2])  # reflection, not zeros


def test_paper_size_unet_has_pix2pix_parameter_count():
    net = UNet(3, 3)  # ngf=64, depth=8, max_channels=512
    assert 54e6 < sum(p.numel() for p in net.parameters()) < 55e6


@pytest.mark.parametrize("base", ["gaussian", "midbin"])
def test_untrained_residual_restorer_equals_its_base(base):
    model = build_model(ModelConfig(ngf=4, depth=3, max_channels=8, base=base, bits=3))
    x = torch.rand(2, 3, 24, 24)
    with torch.no_grad():
        assert torch.allclose(model(x), model.base(x))
    if base == "midbin":
        assert torch.allclose(model.base(x), x + 16 / 255)


def test_gaussian_base_blurs():
    model = Restorer(ModelConfig(ngf=4, depth=2, max_channels=8, base="gaussian", sigma=1.0))
    x = torch.zeros(1, 3, 15, 15)
    x[..., 7, 7] = 1.0
    blurred = model.base(x)
    assert blurred[0, 0].sum() == pytest.approx(1.0, abs=1e-5)
    assert blurred[0, 0, 7, 7] < 0.2 and blurred[0, 0, 7, 8] > 0.05


@pytest.mark.parametrize(
    "kwargs, match",
    [({"channels": 2}, "channels"), ({"depth": 0}, "depth"), ({"base": "bicubic"}, "bicubic")],
)
def test_bad_model_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(**kwargs)


# --- the full-resolution ResUNet and the in-bin head -----------------------------


@pytest.mark.parametrize("shape", [(2, 3, 37, 50), (1, 1, 8, 8), (1, 3, 1, 17)])
def test_resunet_keeps_the_shape_of_any_input(shape):
    net = ResUNet(shape[1], shape[1], widths=(4, 8, 16), blocks=(1, 1, 2)).eval()
    assert net.multiple == 4
    assert net(torch.rand(shape)).shape == shape


def test_resunet_has_a_full_resolution_layer_and_no_normalisation():
    net = ResUNet(3, 3, widths=(8, 16), blocks=(1, 1))
    seen = []
    net.head.register_forward_hook(lambda _m, _i, out: seen.append(out.shape[-2:]))
    net(torch.rand(1, 3, 32, 48))
    assert seen == [torch.Size([32, 48])]  # the first layer works at full resolution
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) for m in net.modules())
    assert len(net.encoder) == 1 and len(net.bottom) == 1 and len(net.decoder) == 1


@pytest.mark.parametrize("bits", [1, 3, 7])
def test_bin_base_output_never_leaves_the_input_bin(bits):
    config = ModelConfig(arch="resunet", widths=(4, 8), blocks=(1, 1), base="bin", bits=bits)
    model = build_model(config).eval()
    step = 2 ** (8 - bits)
    q = torch.randint(0, 2**bits, (2, 3, 24, 24)).float() * step / 255
    with torch.no_grad():
        assert torch.allclose(model(q), q + step / 255 / 2)  # untrained: mid-bin
        for p in model.parameters():  # a trained network: any weights
            p.add_(torch.randn_like(p) * 3)
        out = model(q)
    assert (out >= q).all() and (out <= q + step / 255).all()
    assert out.std() > 0


def test_model_config_round_trips_through_json_lists():
    config = ModelConfig(arch="resunet", widths=(8, 16, 32), blocks=(1, 2, 3), base="bin")
    again = ModelConfig(**{k: v for k, v in config.to_dict().items()})
    assert again == config and isinstance(again.widths, tuple)
    assert again.multiple == 4 and ModelConfig(depth=5).multiple == 32
    assert config.same_weights_as(ModelConfig(**{**config.to_dict(), "bits": 5}))
    assert not config.same_weights_as(ModelConfig(**{**config.to_dict(), "widths": [8, 16, 64]}))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"arch": "transformer"}, "transformer"),
        ({"widths": (8, 16), "blocks": (1,)}, "same length"),
        ({"widths": (0, 16), "blocks": (1, 1)}, "widths must be between"),
        ({"base": "bin", "bits": 8}, "between 1 and 7 for the bin base"),
    ],
)
def test_bad_resunet_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(**kwargs)


@pytest.mark.parametrize(
    "config",
    [
        {"arch": "resunet", "widths": (8, 16), "blocks": (1, 1), "base": "gaussian"},
        {"ngf": 8, "depth": 3, "max_channels": 16, "base": "midbin", "bits": 3},
        {"arch": "resunet", "widths": (8, 16), "blocks": (1, 1), "base": "none"},
    ],
    ids=["resunet-gaussian", "unet-midbin", "resunet-none"],
)
def test_grey_version_computes_the_colour_model_on_grey_input(config):
    torch.manual_seed(0)
    colour = build_model(config).eval()
    for parameter in colour.parameters():  # zero-initialised heads would hide the last layer
        torch.nn.init.normal_(parameter, std=0.1)
    grey = grey_version(colour)
    assert grey.config.channels == 1 and not grey.training
    x = torch.rand(2, 1, 40, 40)
    with torch.no_grad():
        expected = colour(x.expand(-1, 3, -1, -1)).mean(1, keepdim=True)
        assert torch.allclose(grey(x), expected, atol=1e-5)
    with pytest.raises(ValueError, match="3-channel"):
        grey_version(grey)


def test_deeper_version_computes_the_smaller_model_and_adds_blocks():
    torch.manual_seed(0)
    config = {"arch": "resunet", "widths": (8, 16, 32), "blocks": (1, 1, 2), "base": "gaussian"}
    small = build_model(config).eval()
    for parameter in small.parameters():  # the zero-initialised head would hide the body
        torch.nn.init.normal_(parameter, std=0.1)
    deeper = deeper_version(small, (2, 1, 4))
    assert deeper.config.blocks == (2, 1, 4) and not deeper.training
    assert [len(level) for level in deeper.unet.encoder] == [2, 1]
    assert len(deeper.unet.bottom) == 4
    x = torch.rand(2, 3, 40, 44)
    with torch.no_grad():
        assert torch.equal(deeper(x), small(x))
    added = deeper.unet.bottom[3].conv1.weight  # new blocks: random first convolution
    assert added.abs().sum() > 0
    with pytest.raises(ValueError, match="at least"):
        deeper_version(small, (1, 1, 1))
    with pytest.raises(ValueError, match="levels"):
        deeper_version(small, (1, 1))
    with pytest.raises(ValueError, match="resunet"):
        deeper_version(build_model({"ngf": 8, "depth": 3, "max_channels": 16}), (1, 1))


def test_a_threshold_map_channel_starts_ignored_and_is_checked():
    from napari_compand.models import grey_version, with_threshold_map

    plain = build_model(
        {"arch": "resunet", "widths": (8, 16), "blocks": (1, 1), "base": "gaussian"}
    )
    for parameter in plain.parameters():
        torch.nn.init.normal_(parameter, std=0.1)
    mapped = with_threshold_map(plain)
    assert mapped.config.threshold_map and mapped.config.input_channels == 4
    x = torch.rand(2, 3, 24, 40)
    with torch.no_grad():
        expected = plain(x)
        assert torch.equal(mapped(torch.cat([x, torch.rand(2, 1, 24, 40)], 1)), expected)
        torch.nn.init.normal_(mapped.unet.head.weight, std=0.5)  # now the map matters
        a = mapped(torch.cat([x, torch.zeros(2, 1, 24, 40)], 1))
        b = mapped(torch.cat([x, torch.ones(2, 1, 24, 40)], 1))
    assert a.shape == (2, 3, 24, 40) and not torch.allclose(a, b)
    assert not mapped.config.same_weights_as(plain.config)
    with pytest.raises(ValueError, match="needs the resunet"):
        ModelConfig(threshold_map=True)
    with pytest.raises(ValueError, match="without a threshold map"):
        grey_version(mapped)
    with pytest.raises(ValueError, match="without a threshold map"):
        with_threshold_map(mapped)
