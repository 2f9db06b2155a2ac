"""Scoring helpers: the best Gaussian blur of a halftone, scores on noisy images."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from napari_compand.degrade import Degradation
from napari_compand.evaluation import (
    baseline,
    best_gaussian,
    evaluate,
    noise_robustness,
    noisy_versions,
)


@pytest.fixture(scope="module")
def photos():
    return [data.astronaut()[:128, :128], data.chelsea()[:128, :128]]


def test_best_gaussian_picks_the_sigma_with_the_highest_mean_psnr(photos):
    bayer = Degradation("halftone", method="bayer-8x8")
    sigmas = (0.5, 1.2, 2.6)
    sigma, scores = best_gaussian(photos, bayer, sigmas)
    each = {s: evaluate(photos, bayer, baseline("gaussian", bayer, s)).psnr for s in sigmas}
    assert sigma == max(each, key=each.get)
    assert scores.psnr == pytest.approx(each[sigma]) and scores.images == 2
    assert sigma > 0.5  # an 8x8 dither needs more than a light blur
    with pytest.raises(ValueError, match="at least one sigma"):
        best_gaussian(photos, bayer, ())


def test_best_gaussian_of_grey_images_works_too(photos):
    grey = [np.mean(p, axis=-1).astype(np.uint8) for p in photos]
    sigma, scores = best_gaussian(grey, Degradation("halftone"), (1.0, 1.5))
    assert sigma in (1.0, 1.5) and 15 < scores.psnr < 40


def test_scores_keep_each_images_psnr_in_input_order(photos):
    three_bits = Degradation("quantize", bits=3)
    scores = evaluate(photos, three_bits, baseline("midbin", three_bits))
    assert len(scores.per_image) == 2
    alone = [evaluate([p], three_bits, baseline("midbin", three_bits)).psnr for p in photos]
    assert [p for p, _ in scores.per_image] == pytest.approx(alone)
    assert scores.psnr == pytest.approx(np.mean(alone))
    assert alone[0] != pytest.approx(alone[1])  # two different images, two scores


def test_noisy_versions_add_seeded_noise_of_the_given_level(photos):
    noisy = noisy_versions(photos, 6.0, seed=1)
    assert [n.dtype for n in noisy] == [np.uint8, np.uint8]
    difference = noisy[0].astype(float) - photos[0]
    assert 5.0 < difference.std() < 7.0 and abs(difference.mean()) < 0.5
    assert np.array_equal(noisy_versions(photos, 6.0, seed=1)[1], noisy[1])
    assert not np.array_equal(noisy_versions(photos, 6.0, seed=2)[1], noisy[1])
    assert noisy_versions(photos, 0.0)[0] is photos[0]
    with pytest.raises(ValueError, match="noise sigma must be >= 0"):
        noisy_versions(photos, -1.0)
    # shared: one field for all channels of a pixel (away from clipping)
    (luminance,) = noisy_versions(photos[:1], 6.0, shared=True)
    noise = luminance.astype(float) - photos[0]
    inside = ((photos[0] > 20) & (photos[0] < 235)).all(axis=-1)
    assert np.array_equal(noise[..., 0][inside], noise[..., 2][inside])
    assert 5.0 < noise[..., 1][inside].std() < 7.0


def test_noise_robustness_scores_each_level_against_the_noisy_truth(photos):
    six_bits = Degradation("quantize", bits=6)

    def blur(image):  # a smoothing "restorer": good on clean images, poor on noisy ones
        return baseline("gaussian", six_bits, 1.0)(baseline("midbin", six_bits)(image))

    restorers = {"midbin": baseline("midbin", six_bits), "blur": blur}
    found = noise_robustness(photos, six_bits, restorers, sigmas=(0, 8))
    assert list(found) == [0.0, 8.0]
    clean = evaluate(photos, six_bits, restorers["midbin"])
    assert found[0.0]["midbin"].psnr == pytest.approx(clean.psnr)
    # mid-bin's error is the quantization's whatever the noise; a blur removes the truth's noise
    assert abs(found[8.0]["midbin"].psnr - clean.psnr) < 0.5
    assert found[8.0]["blur"].psnr < found[0.0]["blur"].psnr - 2
    assert found[8.0]["blur"].images_below(found[8.0]["midbin"]) == 2
    assert found[8.0]["midbin"].images_below(found[8.0]["blur"]) == 0
