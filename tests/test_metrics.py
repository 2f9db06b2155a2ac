"""PSNR / SSIM: values, data ranges, stacks and input checks."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from napari_compand.degrade import halftone, quantize
from napari_compand.metrics import (
    compare,
    mean_psnr,
    psnr,
    psnr_per_plane,
    ssim,
    ssim_per_plane,
)


def test_psnr_closed_form():
    ref = np.zeros((8, 8), np.uint8)
    test = ref.copy()
    test[0, 0] = 255  # MSE = 255^2 / 64
    assert psnr(ref, test) == pytest.approx(10 * np.log10(64))


def test_psnr_matches_skimage_and_identical_is_inf():
    ref = data.astronaut()
    test = quantize(ref, 3)
    assert psnr(ref, test) == pytest.approx(peak_signal_noise_ratio(ref, test, data_range=255))
    assert psnr(ref, ref) == float("inf")


def test_ssim_matches_skimage_gaussian_settings():
    ref = data.camera()
    test = halftone(ref)
    expected = structural_similarity(
        ref.astype(float),
        test.astype(float),
        data_range=255,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert ssim(ref, test) == pytest.approx(expected)
    assert ssim(ref, ref) == pytest.approx(1.0)
    assert 0.0 < ssim(ref, test) < 0.5  # a halftone is structurally far from the photo


def test_data_range_from_dtype_and_explicit_for_floats():
    ref8 = data.camera()
    test8 = quantize(ref8, 4)
    ref16, test16 = ref8.astype(np.uint16) * 257, test8.astype(np.uint16) * 257
    assert psnr(ref16, test16) == pytest.approx(psnr(ref8, test8), abs=1e-6)
    reff, testf = ref8 / 255.0, test8 / 255.0
    assert psnr(reff, testf) == pytest.approx(psnr(ref8, test8))
    assert psnr(reff * 255, testf * 255, data_range=255) == pytest.approx(psnr(ref8, test8))
    with pytest.raises(ValueError, match="need an explicit data_range"):
        psnr(reff * 255, testf * 255)
    with pytest.raises(ValueError, match="positive"):
        psnr(reff, testf, data_range=0)


def test_rgb_uses_channel_axis_and_ignores_alpha():
    rgb = data.astronaut()
    test = quantize(rgb, 3)
    alpha_a = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    alpha_b = np.dstack([test, np.zeros(rgb.shape[:2], np.uint8)])
    assert psnr(alpha_a, alpha_b) == pytest.approx(psnr(rgb, test))
    assert ssim(alpha_a, alpha_b) == pytest.approx(ssim(rgb, test))


def test_stacks_per_plane_and_mean():
    a, b = data.camera(), data.camera()[::-1].copy()
    ref = np.stack([a, b])
    test = np.stack([quantize(a, 2), quantize(b, 5)])
    per_plane = psnr_per_plane(ref, test)
    assert per_plane.shape == (2,)
    assert per_plane[0] == pytest.approx(psnr(a, quantize(a, 2)))
    assert per_plane[1] == pytest.approx(psnr(b, quantize(b, 5)))
    assert psnr(ref, test) == pytest.approx(per_plane.mean())
    assert ssim_per_plane(ref, test)[1] == pytest.approx(ssim(b, quantize(b, 5)))
    rows = compare(ref, test)
    assert [r.plane for r in rows] == [(0,), (1,)]
    assert rows[1].ssim == pytest.approx(ssim(b, quantize(b, 5)))


def test_colour_stack_planes():
    rgb = data.astronaut()[:64, :64]
    stack = np.stack([rgb, rgb, rgb])
    assert psnr_per_plane(stack, quantize(stack, 3)).shape == (3,)


@pytest.mark.parametrize(
    "ref, test, error, match",
    [
        (np.zeros((8, 8), np.uint8), np.zeros((8, 9), np.uint8), ValueError, "differ in shape"),
        (np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint16), TypeError, "differ in dtype"),
        (np.zeros((8, 8), bool), np.zeros((8, 8), bool), TypeError, "boolean"),
        (np.zeros((8, 8)), np.full((8, 8), np.nan), ValueError, "NaN"),
    ],
)
def test_bad_pairs_are_rejected(ref, test, error, match):
    with pytest.raises(error, match=match):
        psnr(ref, test)


@pytest.mark.parametrize("size", [5, 7, 8, 10])
def test_ssim_needs_its_11_pixel_window(size):
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(np.zeros((size, 20), np.uint8), np.zeros((size, 20), np.uint8))


def test_ssim_works_at_the_smallest_size():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, (11, 11), dtype=np.uint8)
    assert ssim(ref, ref) == pytest.approx(1.0)


def test_stack_mean_leaves_identical_planes_out():
    """One identical plane (PSNR inf) must not hide the others' scores."""
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 256, (3, 32, 32), dtype=np.uint8)
    test = ref.copy()
    test[1] = quantize(ref[1], 4)
    test[2] = quantize(ref[2], 2)
    planes = psnr_per_plane(ref, test)
    assert np.isinf(planes[0])
    assert psnr(ref, test) == pytest.approx((planes[1] + planes[2]) / 2)
    assert mean_psnr([float("inf")] * 2) == float("inf")


def test_grey_alpha_is_scored_on_grey():
    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    noisy = quantize(grey, 3)
    ref = np.stack([grey, np.full_like(grey, 255)], -1)
    test = np.stack([noisy, np.zeros_like(grey)], -1)  # alpha differs: ignored
    assert psnr(ref, test) == pytest.approx(psnr(grey, noisy))
    assert ssim(ref, test) == pytest.approx(ssim(grey, noisy))
