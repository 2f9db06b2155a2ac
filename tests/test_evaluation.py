"""Scoring helpers: the best Gaussian blur of a halftone."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from napari_compand.degrade import Degradation
from napari_compand.evaluation import baseline, best_gaussian, evaluate


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
