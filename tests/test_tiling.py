"""Seam-free tiling at any tile size, for every shipped architecture (issue 13)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from skimage import data

from napari_compand.degrade import halftone, quantize
from napari_compand.inference import TileSizeWarning, _TilePlan, load_model, restore
from napari_compand.models import ModelConfig, Restorer


@pytest.fixture(scope="module")
def photo_1024() -> np.ndarray:
    """A 1024x1024 natural image: the astronaut and its mirror images."""
    a = data.astronaut()
    return np.concatenate(
        [np.concatenate([a, a[:, ::-1]], 1), np.concatenate([a[::-1], a[::-1, ::-1]], 1)], 0
    )


# one shipped model per architecture and base: the paper's U-Net with a Gaussian and a
# mid-bin base, the ResUNet with a Gaussian and an in-bin head
SHIPPED = [
    ("inverse-halftone/conv1_1", "halftone"),
    ("expand-3bit/conv1_1", 3),
    ("inverse-halftone/resunet-mix", "halftone"),
    ("expand-4bit/resunet", 4),
]


@pytest.mark.parametrize("name, degradation", SHIPPED, ids=[n for n, _ in SHIPPED])
def test_smallest_tile_matches_the_untiled_result(photo_1024, name, degradation):
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    image = halftone(photo_1024) if degradation == "halftone" else quantize(photo_1024, degradation)
    model = load_model(name)
    whole = restore(image, model, tile_size=2048)
    with pytest.warns(TileSizeWarning, match="tile_size raised from 1 to"):
        tiled = restore(image, model, tile_size=1)
    with pytest.warns(TileSizeWarning):
        plan = _TilePlan.for_model(model, 1, None)
    assert plan.tile < 1024  # really tiled: several tiles per axis
    diff = np.abs(whole.astype(int) - tiled.astype(int))
    assert np.mean(diff <= 1) >= 0.999
    assert diff.max() <= 4


def test_too_small_tiles_and_overlaps_are_raised_with_a_warning():
    model = load_model("expand-4bit/resunet")
    radius = model.network.receptive_radius
    assert model.context == -(-radius // 2)
    with pytest.warns(TileSizeWarning) as caught:
        plan = _TilePlan.for_model(model, 64, 8)
    messages = " ".join(str(w.message) for w in caught)
    assert "overlap raised from 8" in messages and "tile_size raised from 64" in messages
    assert plan.overlap >= 2 * model.context and plan.tile == 2 * plan.overlap
    assert plan.overlap % model.multiple == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default tile needs no change
        default = _TilePlan.for_model(model, 1024, None)
    assert default.tile == 1024 and default.overlap >= plan.overlap


def test_blend_weights_sum_to_one_and_skip_the_margins():
    plan = _TilePlan(tile=96, overlap=48, multiple=8, margin=12)
    spans = plan.spans(300)
    weights = plan.weights(spans)
    total = np.zeros(300, np.float32)
    for (start, end), w in zip(spans, weights, strict=True):
        total[start:end] += w
        if start > 0:
            assert (w[:12] == 0).all()  # no prediction used next to an inner edge
        if end < 300:
            assert (w[-12:] == 0).all()
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(ngf=8, depth=3, max_channels=16),
        ModelConfig(arch="resunet", widths=(8, 16, 32), blocks=(1, 1, 2)),
    ],
    ids=["unet", "resunet"],
)
def test_receptive_radius_bounds_the_reach_of_a_pixel(config):
    """Changing one input pixel changes no output further away than the radius."""
    torch.manual_seed(0)
    model = Restorer(config).eval()
    for p in model.parameters():
        p.data.abs_()  # positive weights: no cancellation hides the reach
    size, centre = 160, 80
    x = torch.rand(1, 3, size, size) * 0.5
    moved = x.clone()
    moved[..., centre, centre] += 0.5
    with torch.no_grad():
        reach = (model(x) - model(moved)).abs().amax(1)[0] > 0
    ys, xs = torch.nonzero(reach, as_tuple=True)
    furthest = int(max((ys - centre).abs().max(), (xs - centre).abs().max()))
    assert 0 < furthest <= model.receptive_radius
    assert furthest >= model.receptive_radius // 2  # the bound is not loose
