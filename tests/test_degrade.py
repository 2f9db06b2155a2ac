"""Degradations: Eq. 2 quantization and halftoning against textbook references."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from skimage import data

from napari_compand._diffusion import DIFFUSION_KERNELS, bayer_matrix
from napari_compand.degrade import (
    HALFTONE_METHODS,
    KNOWN_HALFTONES,
    Degradation,
    DegradationMode,
    halftone,
    quantize,
)

# Kernels as printed in the literature (rows below the current pixel; "X" marks
# the current pixel, weights right of it in the first row), typed in again here
# so that a typo in the package's table cannot go unnoticed.
TEXTBOOK = {
    "floyd-steinberg": (16, ["X 7", "3 5 1"], 1),
    "jarvis-judice-ninke": (48, ["X 7 5", "3 5 7 5 3", "1 3 5 3 1"], 2),
    "stucki": (42, ["X 8 4", "2 4 8 4 2", "1 2 4 2 1"], 2),
    "burkes": (32, ["X 8 4", "2 4 8 4 2"], 2),
    "sierra": (32, ["X 5 3", "2 4 5 4 2", "0 2 3 2 0"], 2),
    "sierra-lite": (4, ["X 2", "1 1 0"], 1),
    "atkinson": (8, ["X 1 1", "1 1 1 0", "0 1 0 0"], 1),
}


def textbook_entries(method: str) -> list[tuple[int, int, float]]:
    divisor, rows, centre = TEXTBOOK[method]
    entries = []
    first = rows[0].split()[1:]
    for i, w in enumerate(first, start=1):
        entries.append((0, i, int(w) / divisor))
    for dy, row in enumerate(rows[1:], start=1):
        for col, w in enumerate(row.split()):
            if int(w):
                entries.append((dy, col - centre, int(w) / divisor))
    return entries


def reference_diffusion(image: np.ndarray, method: str, serpentine: bool = False) -> np.ndarray:
    """Slow textbook error diffusion on a full float64 copy of the image."""
    maxval = float(np.iinfo(image.dtype).max) if image.dtype.kind == "u" else 1.0
    work = image.astype(np.float64) / maxval
    height, width = work.shape
    out = np.zeros(image.shape, dtype=image.dtype)
    entries = textbook_entries(method)
    for y in range(height):
        reverse = serpentine and y % 2 == 1
        xs = range(width - 1, -1, -1) if reverse else range(width)
        for x in xs:
            old = work[y, x]
            new = 1.0 if old >= 0.5 else 0.0
            out[y, x] = maxval if new else 0
            error = old - new
            for dy, dx, weight in entries:
                yy, xx = y + dy, x + (-dx if reverse else dx)
                if 0 <= yy < height and 0 <= xx < width:
                    work[yy, xx] += error * weight
    return out


@pytest.fixture(scope="module")
def gray_crop() -> np.ndarray:
    return data.camera()[200:237, 180:233].copy()  # 37 x 53, odd sizes


# --- quantize -------------------------------------------------------------------


@pytest.mark.parametrize("bits", range(1, 8))
def test_quantize_uint8_matches_eq2_on_every_value(bits):
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    step = 2 ** (8 - bits)
    expected = (np.floor(values / step) * step).astype(np.uint8)
    out = quantize(values, bits)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)
    assert len(np.unique(out)) == 2**bits


def test_quantize_known_values():
    row = np.array([[0, 31, 32, 127, 128, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(quantize(row, 3), [[0, 0, 32, 96, 128, 224]])
    np.testing.assert_array_equal(quantize(row, 1), [[0, 0, 0, 0, 128, 128]])
    wide = np.array([[0, 4095, 4096, 65535]], dtype=np.uint16)
    np.testing.assert_array_equal(quantize(wide, 4), [[0, 0, 4096, 61440]])
    assert quantize(wide, 4).dtype == np.uint16


def test_quantize_float_uses_same_rule_on_2_to_the_l_levels():
    image = np.array([[0.0, 0.24, 0.25, 0.5, 0.99, 1.0]], dtype=np.float32)
    out = quantize(image, 2)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.0, 0.0, 0.25, 0.5, 0.75, 0.75]])


def test_quantize_is_idempotent_and_keeps_input():
    image = data.astronaut()
    before = image.copy()
    once = quantize(image, 3)
    np.testing.assert_array_equal(quantize(once, 3), once)
    np.testing.assert_array_equal(image, before)
    assert once is not image


@pytest.mark.parametrize(
    "bits, dtype", [(0, np.uint8), (8, np.uint8), (16, np.uint16), (-1, np.uint8)]
)
def test_quantize_rejects_bits_out_of_range(bits, dtype):
    with pytest.raises(ValueError, match="bits must be between 1 and"):
        quantize(np.zeros((4, 4), dtype), bits)


def test_quantize_accepts_up_to_15_bits_for_uint16():
    image = np.array([[65535, 3]], dtype=np.uint16)
    np.testing.assert_array_equal(quantize(image, 15), [[65534, 2]])


def test_quantize_rejects_non_integer_bits():
    with pytest.raises(TypeError, match="bits must be an integer"):
        quantize(np.zeros((4, 4), np.uint8), 2.5)


def test_rgba_alpha_passes_through():
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (20, 24, 4), dtype=np.uint8)
    for out in (quantize(rgba, 2), halftone(rgba)):
        np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
        assert not np.array_equal(out[..., :3], rgba[..., :3])
    # the same data taken as a 4-plane grey stack quantizes "alpha" too
    assert not np.array_equal(quantize(rgba, 2, rgb=False)[..., 3], rgba[..., 3])


# --- error diffusion ------------------------------------------------------------


def test_package_kernels_match_the_textbook_tables():
    for method in DIFFUSION_KERNELS:
        ours = sorted((dy, dx, float(w)) for dy, dx, w in DIFFUSION_KERNELS[method])
        assert ours == sorted(textbook_entries(method)), method


def test_kernel_weights_sum_to_one_except_atkinson():
    for method, entries in DIFFUSION_KERNELS.items():
        total = sum(w for _, _, w in entries)
        expected = Fraction(3, 4) if method == "atkinson" else Fraction(1)
        assert total == expected, method


@pytest.mark.parametrize("serpentine", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_floyd_steinberg_equals_textbook_loop(gray_crop, dtype, serpentine):
    if dtype == np.uint16:
        image = gray_crop.astype(np.uint16) * 257
    elif dtype in (np.float32, np.float64):
        image = (gray_crop / 255.0).astype(dtype)
    else:
        image = gray_crop
    out = halftone(image, "floyd-steinberg", serpentine)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, reference_diffusion(image, "floyd-steinberg", serpentine))


@pytest.mark.parametrize("method", [m for m in DIFFUSION_KERNELS if m != "floyd-steinberg"])
@pytest.mark.parametrize("serpentine", [False, True])
def test_other_kernels_equal_textbook_loop(gray_crop, method, serpentine):
    out = halftone(gray_crop, method, serpentine)
    np.testing.assert_array_equal(out, reference_diffusion(gray_crop, method, serpentine))


def test_threshold_is_greater_or_equal_half():
    # a single pixel of exactly 0.5 turns on
    np.testing.assert_array_equal(halftone(np.array([[0.5, 0.0]])), [[1.0, 0.0]])


@pytest.mark.parametrize("method", HALFTONE_METHODS)
def test_halftone_is_binary_and_keeps_mean(method):
    image = data.camera()
    out = halftone(image, method)
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert set(np.unique(out)) <= {0, 255}
    if method.startswith("bayer-"):  # n*n + 1 levels: bias below half a level step
        n = int(method[-1])
        tolerance = 255 / n**2 / 2
    else:  # diffusion keeps the mean, except Atkinson, which drops 1/4 of the error
        tolerance = 12 if method == "atkinson" else 2
    assert abs(out.mean() - image.mean()) < tolerance


def _riemersma_by_the_book(image: np.ndarray) -> np.ndarray:
    """Riemersma dithering written as the paper's recursion (ImageMagick's variant:
    16 errors, weights decaying by 65536 ** (1/15), normalised; values clipped)."""
    weights = 65536.0 ** (-np.arange(15, -1, -1) / 15)
    weights /= weights.sum()
    weights[0] += 1.0 - weights.sum()
    height, width = image.shape
    out = np.zeros_like(image)
    state = {"x": 0, "y": 0, "errors": [0.0] * 16}
    step = {"W": (0, -1), "E": (0, 1), "N": (-1, 0), "S": (1, 0), None: (0, 0)}

    def visit(direction):
        y, x = state["y"], state["x"]
        if 0 <= y < height and 0 <= x < width:
            value = image[y, x] / 255 + float(np.dot(weights, state["errors"]))
            value = min(max(value, 0.0), 1.0)
            on = value >= 0.5
            out[y, x] = 255 if on else 0
            state["errors"] = [*state["errors"][1:], value - on]
        state["y"], state["x"] = y + step[direction][0], x + step[direction][1]

    parts = {  # heading: (sub-curves, moves between them)
        "W": ("NWWS", "ESW"),
        "E": ("SEEN", "WNE"),
        "N": ("WNNE", "SEN"),
        "S": ("ESSW", "NWS"),
    }

    def curve(level, heading):
        subs, moves = parts[heading]
        for i in range(4):
            if level > 1:
                curve(level - 1, subs[i])
            if i < 3:
                visit(moves[i])

    curve(max(height, width).bit_length(), "N")
    visit(None)
    return out


def test_riemersma_follows_the_hilbert_curve_recursion():
    image = data.camera()[100:123, 200:237]  # not square, not a power of two
    np.testing.assert_array_equal(halftone(image, "riemersma"), _riemersma_by_the_book(image))
    colour = halftone(data.astronaut()[:40, :33], "riemersma")  # channels on their own
    np.testing.assert_array_equal(
        colour[..., 1], _riemersma_by_the_book(data.astronaut()[:40, :33, 1])
    )


def test_float_halftone_holds_zero_and_one():
    out = halftone(data.camera()[:64, :64] / 255.0)
    assert set(np.unique(out)) == {0.0, 1.0}


def test_rgb_and_stacks_are_done_plane_by_plane():
    rgb = data.astronaut()[:40, :50]
    out = halftone(rgb)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], halftone(np.ascontiguousarray(rgb[..., c])))
    stack = np.stack([data.camera()[:30, :30], data.camera()[100:130, 100:130]] * 2).reshape(
        2, 2, 30, 30
    )
    out_stack = halftone(stack, "stucki", rgb=False)
    for idx in np.ndindex(2, 2):
        np.testing.assert_array_equal(out_stack[idx], halftone(stack[idx], "stucki"))


def test_thread_count_does_not_change_the_result():
    rgb = data.astronaut()[:64, :64]
    np.testing.assert_array_equal(halftone(rgb, workers=1), halftone(rgb, workers=3))


def test_halftone_leaves_input_untouched():
    image = data.astronaut()[:64, :64].copy()
    before = image.copy()
    halftone(image)
    halftone(image, "bayer-4x4")
    np.testing.assert_array_equal(image, before)


def test_progress_reports_every_plane():
    calls = []
    halftone(
        np.zeros((5, 16, 16), np.uint8), progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(i, 5) for i in range(1, 6)]


# --- ordered dithering ----------------------------------------------------------


def test_bayer_matrices():
    np.testing.assert_array_equal(bayer_matrix(2), [[0, 2], [3, 1]])
    np.testing.assert_array_equal(
        bayer_matrix(4), [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]]
    )
    assert sorted(bayer_matrix(8).ravel()) == list(range(64))


@pytest.mark.parametrize("level", [0, 3, 8, 15, 16])
def test_bayer_4x4_reproduces_grey_levels_exactly(level):
    image = np.full((16, 16), level / 16.0)
    out = halftone(image, "bayer-4x4")
    assert out.mean() == pytest.approx(level / 16.0)


# --- bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (np.zeros((0, 5), np.uint8), ValueError, "empty"),
        (np.array([[0.1, np.nan]]), ValueError, "NaN"),
        (np.array([[0.1, np.inf]]), ValueError, "infinite"),
        (np.zeros((4, 4), complex), TypeError, "complex"),
        (np.zeros((4, 4), bool), TypeError, "boolean"),
        (np.zeros((4, 4), np.int32), TypeError, "label images are not supported"),
        (np.zeros(5, np.uint8), ValueError, "at least 2 dimensions"),
        (np.full((4, 4), 2.0), ValueError, r"must lie in \[0, 1\]"),
    ],
)
@pytest.mark.parametrize("func", [lambda x: quantize(x, 2), lambda x: halftone(x)])
def test_bad_input_gets_a_clear_error(func, bad, error, match):
    with pytest.raises(error, match=match):
        func(bad)


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(ValueError, match="floyd-steinberg.*bayer-8x8"):
        halftone(np.zeros((4, 4), np.uint8), "floyd")


def test_rgb_true_needs_colour_axis():
    with pytest.raises(ValueError, match=r"last axis of length 2 \(grey \+ alpha\), 3 or 4"):
        halftone(np.zeros((4, 4), np.uint8), rgb=True)


# --- Degradation spec -----------------------------------------------------------


def test_degradation_labels_and_metadata_round_trip():
    three = Degradation(DegradationMode.QUANTIZE, bits=3)
    fs = Degradation("halftone", method="floyd-steinberg")
    assert three.label == "3-bit"
    assert fs.label == "halftone floyd-steinberg"
    assert (
        Degradation("halftone", method="atkinson", serpentine=True).label
        == "halftone atkinson serpentine"
    )
    for spec in (three, fs):
        assert Degradation.from_layer_metadata(spec.layer_metadata("src")) == spec
    assert Degradation.from_layer_metadata({}) is None
    image = data.camera()[:32, :32]
    np.testing.assert_array_equal(three.apply(image), quantize(image, 3))
    np.testing.assert_array_equal(fs.apply(image), halftone(image))


# -- keep_in_bin: consistency of an expansion with its low-bit input ------------------


@pytest.mark.parametrize(
    ("dtype", "bits"), [(np.uint8, 1), (np.uint8, 3), (np.uint16, 5), (np.float32, 3)]
)
def test_keep_in_bin_requantizes_to_the_input_and_never_moves_away_from_truth(dtype, bits):
    from napari_compand.degrade import keep_in_bin

    rng = np.random.default_rng(bits)
    if dtype is np.float32:
        truth = rng.random((40, 50)).astype(dtype)
        guess = rng.random((40, 50)).astype(dtype)
    else:
        top = np.iinfo(dtype).max
        truth = rng.integers(0, top + 1, (40, 50)).astype(dtype)
        guess = rng.integers(0, top + 1, (40, 50)).astype(dtype)
    low = quantize(truth, bits)
    before = guess.copy()
    kept = keep_in_bin(guess, low, bits)
    np.testing.assert_array_equal(guess, before)  # input untouched
    assert kept.dtype == dtype
    np.testing.assert_array_equal(quantize(kept, bits), low)
    error_before = np.abs(guess.astype(np.float64) - truth)
    error_after = np.abs(kept.astype(np.float64) - truth)
    assert np.all(error_after <= error_before + 1e-6)
    assert np.any(error_after < error_before)


def test_keep_in_bin_rgba_keeps_alpha_and_checks_inputs():
    from napari_compand.degrade import keep_in_bin

    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 3] = 200
    restored = np.full((4, 4, 4), 90, np.uint8)
    kept = keep_in_bin(restored, rgba, 3)
    assert np.all(kept[..., :3] == 31) and np.all(kept[..., 3] == 90)
    with pytest.raises(ValueError, match="same shape and dtype"):
        keep_in_bin(restored, rgba[..., :3], 3)
    with pytest.raises(ValueError, match="bits"):
        keep_in_bin(restored, rgba, 8)


# --- degradation detected from the pixels ---------------------------------------------


@pytest.mark.parametrize("bits", range(1, 8))
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_detect_degradation_finds_the_bit_depth(bits, dtype):
    from napari_compand.degrade import detect_degradation

    photo = data.astronaut()
    if dtype is np.uint16:
        photo = photo.astype(np.uint16) * 257
    elif dtype is np.float32:
        photo = photo.astype(np.float32) / 255
    found = detect_degradation(quantize(photo, bits))
    assert found == Degradation("quantize", bits=bits)


@pytest.mark.parametrize("method", ["floyd-steinberg", "atkinson", "bayer-8x8"])
def test_detect_degradation_finds_halftones(method):
    from napari_compand.degrade import detect_degradation

    for image in (data.camera(), data.astronaut(), data.astronaut().astype(np.float32) / 255):
        assert detect_degradation(halftone(image, method)).mode is DegradationMode.HALFTONE


def test_detect_degradation_ignores_alpha_and_clean_images():
    from napari_compand.degrade import detect_degradation

    rgba = np.dstack([quantize(data.astronaut(), 2), np.full((512, 512), 77, np.uint8)])
    assert detect_degradation(rgba) == Degradation("quantize", bits=2)  # alpha 77 is odd
    assert detect_degradation(data.astronaut()) is None
    assert detect_degradation(data.camera().astype(np.float64) / 255) is None
    assert detect_degradation(np.zeros((8, 8), np.uint8)) is None


# --- ordered dithers: threshold maps and detection --------------------------------


@pytest.mark.parametrize("method", ["bayer-4x4", "bayer-8x8"])
def test_dither_thresholds_are_the_thresholds_halftone_uses(method):
    from napari_compand.degrade import dither_thresholds

    image = data.camera()
    thresholds = dither_thresholds(method, image.shape)
    expected = np.where(image / 255 > thresholds, 255, 0)
    np.testing.assert_array_equal(halftone(image, method), expected)
    # an offset is where a crop starts in the matrix
    crop = dither_thresholds(method, (20, 30), (11, 6))
    np.testing.assert_array_equal(crop, thresholds[11:31, 6:36])
    with pytest.raises(ValueError, match="not an ordered dither"):
        dither_thresholds("floyd-steinberg", (4, 4))


@pytest.mark.parametrize("method", ["bayer-4x4", "bayer-8x8"])
def test_detect_ordered_dither_finds_method_and_offset(method):
    from napari_compand.degrade import detect_ordered_dither, dither_thresholds

    size = int(method[-1])
    for image in (data.camera(), data.astronaut(), data.coffee()):
        dithered = halftone(image, method)
        assert detect_ordered_dither(dithered) == (method, (0, 0), False)
        for dy, dx in ((3, 5), (7, 2), (1, 0)):
            found = detect_ordered_dither(dithered[dy:, dx:])
            assert found == (method, (dy % size, dx % size), False), (image.shape, dy, dx)
        grey_float = halftone(image[..., 0] if image.ndim == 3 else image, method) / 255.0
        assert detect_ordered_dither(grey_float[5:, 3:]) == (method, (5 % size, 3 % size), False)
        # the transposed matrix (ImageMagick's o8x8): the transpose is our dither
        transposed = np.swapaxes(halftone(np.swapaxes(image, 0, 1), method), 0, 1)
        assert detect_ordered_dither(transposed) == (method, (0, 0), True)
        found = detect_ordered_dither(transposed[dy:, dx:])
        assert found == (method, (dy % size, dx % size), True), (image.shape, dy, dx)
        # its thresholds re-create the dither
        thresholds = dither_thresholds(method, image.shape[:2], transposed=True)
        if image.ndim == 3:
            thresholds = thresholds[..., None]
        np.testing.assert_array_equal(transposed > 0, image / 255 > thresholds)


def test_bayer_fits_are_the_direct_comparison_at_every_offset():
    """The per-phase count gives exactly the share of pixels where the tiled threshold
    map at that offset and orientation re-creates the dither."""
    from scipy.ndimage import uniform_filter

    from napari_compand.degrade import _bayer_fits, dither_thresholds

    dots = halftone(data.camera()[150:351, 100:277], "bayer-8x8") > 0  # not a multiple of 8
    level = uniform_filter(dots.astype(np.float32), 8, mode="reflect")
    for size in (4, 8):
        fits = _bayer_fits(level, dots, size)
        for transposed in (False, True):
            for dy, dx in ((0, 0), (3, 1), (size - 1, 2)):
                thresholds = dither_thresholds(
                    f"bayer-{size}x{size}", dots.shape, (dy, dx), transposed
                )
                direct = np.mean((level > thresholds) == dots)
                assert fits[transposed][dy, dx] == pytest.approx(direct, abs=1e-12)
    assert fits[False].max() > fits[True].max() + 0.02


def test_detect_ordered_dither_rejects_error_diffusion_and_small_images():
    from napari_compand.degrade import detect_degradation, detect_ordered_dither

    for method in ("floyd-steinberg", "atkinson", "stucki", "jarvis-judice-ninke"):
        assert detect_ordered_dither(halftone(data.astronaut(), method)) is None
    assert detect_ordered_dither(halftone(data.camera(), "bayer-8x8")[:12, :40]) is None
    for method in ("bayer-4x4", "bayer-8x8"):  # detect_degradation names the dither
        assert detect_degradation(halftone(data.astronaut(), method)).method == method
    # a 2x2 dither is a 4x4 one of the image at 5 grey levels
    assert detect_ordered_dither(halftone(data.camera(), "bayer-2x2"))[0] == "bayer-4x4"


# --- error diffusion: which kernel --------------------------------------------------


ERROR_DIFFUSION = [m for m in KNOWN_HALFTONES if m[0] not in ("bayer-4x4", "bayer-8x8")]


@pytest.mark.parametrize(("method", "serpentine"), ERROR_DIFFUSION)
def test_detect_error_diffusion_names_kernel_and_scan(method, serpentine):
    from napari_compand.degrade import detect_degradation, detect_error_diffusion

    colour = halftone(data.astronaut(), method, serpentine)
    grey = halftone(data.camera(), method, serpentine)
    assert detect_error_diffusion(colour) == (method, serpentine)
    assert detect_error_diffusion(grey) == (method, serpentine)
    assert detect_error_diffusion(grey[100:400, 50:350].astype(np.float32) / 255) == (
        method,
        serpentine,
    )
    found = detect_degradation(colour)
    assert (found.method, found.serpentine) == (method, serpentine)


def test_detect_error_diffusion_needs_a_halftone_with_enough_mid_tones():
    from napari_compand.degrade import (
        ERROR_DIFFUSION_MIN_PIXELS,
        detect_degradation,
        detect_error_diffusion,
        error_diffusion_signature,
    )

    assert detect_error_diffusion(data.camera()) is None  # not two levels
    assert detect_error_diffusion(quantize(data.camera(), 1)) is None  # 0 and 128
    small = halftone(data.camera(), "stucki")[:96, :96]
    assert error_diffusion_signature(small)[1] < ERROR_DIFFUSION_MIN_PIXELS
    assert detect_error_diffusion(small) is None
    # where the kernel cannot be told, detect_degradation says the common one
    assert detect_degradation(small).method == "floyd-steinberg"


def test_error_diffusion_discriminant_matches_the_signature():
    """The shipped discriminant was fitted on the signature the code computes now."""
    import json

    from safetensors import safe_open

    from napari_compand import _diffusion, degrade

    path = Path(degrade.__file__).parent / "_data" / "error_diffusion.safetensors"
    with safe_open(str(path), "np") as handle:
        meta = json.loads(handle.metadata()["napari_compand"])
        centroids = handle.get_tensor("centroids")
    assert [tuple(c) for c in meta["classes"]] == ERROR_DIFFUSION
    assert [tuple(lag) for lag in meta["lags"]] == list(_diffusion.SIGNATURE_LAGS)
    assert meta["levels"] == list(_diffusion.SIGNATURE_LEVELS)
    assert meta["window"] == _diffusion.SIGNATURE_WINDOW
    assert meta["detection_size"] == degrade.DITHER_DETECTION_SIZE
    signature, _ = degrade.error_diffusion_signature(halftone(data.camera()))
    assert centroids.shape == (len(ERROR_DIFFUSION), signature.size)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_keep_in_dither_never_moves_a_pixel_away_and_dithers_back(dtype):
    from napari_compand.degrade import keep_in_dither

    photo = data.astronaut()[:96, :80]
    if dtype is np.uint16:
        photo = photo.astype(np.uint16) * 257
    elif dtype is np.float32:
        photo = photo.astype(np.float32) / 255
    dots = halftone(photo, "bayer-8x8")[3:, 5:]
    clean = photo[3:, 5:]
    rng = np.random.default_rng(0)
    high = 1.0 if dtype is np.float32 else np.iinfo(dtype).max
    guess = np.clip(clean + rng.normal(0, 0.2 * high, clean.shape), 0, high).astype(dtype)
    kept = keep_in_dither(guess, dots, "bayer-8x8", (3, 5))
    assert kept.dtype == dtype
    error = lambda x: np.abs(x.astype(np.float64) - clean)  # noqa: E731
    assert (error(kept) <= error(guess) + 1e-6).all()
    assert (error(kept) < error(guess)).mean() > 0.1  # many were outside their interval
    if dtype is not np.float32:  # integer bounds: the result dithers back exactly
        redone = halftone(np.pad(kept, ((3, 0), (5, 0), (0, 0))), "bayer-8x8")[3:, 5:]
        np.testing.assert_array_equal(redone, dots)
    assert keep_in_dither(clean, dots, "bayer-8x8", (3, 5)).tolist() == clean.tolist()
    # a demand for agreement that the guess does not meet leaves it as it is
    share = np.mean(kept != guess)
    assert keep_in_dither(guess, dots, "bayer-8x8", (3, 5), min_agreement=1 - share / 2) is guess
    assert (
        keep_in_dither(guess, dots, "bayer-8x8", (3, 5), min_agreement=1 - 2 * share).tolist()
        == kept.tolist()
    )


def test_keep_in_dither_passes_alpha_and_checks_its_inputs():
    from napari_compand.degrade import keep_in_dither

    rgba = np.dstack([data.astronaut()[:32, :32], np.full((32, 32), 7, np.uint8)])
    dots = halftone(rgba, "bayer-4x4", rgb=True)
    kept = keep_in_dither(np.zeros_like(rgba), dots, "bayer-4x4", rgb=True)
    assert (kept[..., 3] == 0).all()  # alpha of restored, unchanged
    assert (kept[..., :3][dots[..., :3] > 0] > 0).all()  # "on" pixels lifted above T
    with pytest.raises(ValueError, match="same shape and dtype"):
        keep_in_dither(rgba[:16], dots, "bayer-4x4")
    with pytest.raises(ValueError, match="not an ordered dither"):
        keep_in_dither(rgba, dots, "floyd-steinberg")


def test_small_planes_are_degraded_without_a_thread_pool(monkeypatch):
    """Training degrades thousands of crops and photographs: starting a thread pool for
    each costs more than the work, so planes under THREADED_PLANE_PIXELS run in the
    calling thread; large planes still spread over the cores, with the same result."""
    import napari_compand.degrade as degrade_module

    pools = []

    class CountingPool(degrade_module.ThreadPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(kwargs.get("max_workers", args[0] if args else None))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(degrade_module, "ThreadPoolExecutor", CountingPool)
    monkeypatch.setattr(degrade_module, "_available_cores", lambda: 4)
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    side = int(np.sqrt(degrade_module.THREADED_PLANE_PIXELS)) + 1
    large = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    for method in ("floyd-steinberg", "bayer-4x4"):
        halftone(small, method=method, rgb=True)
    quantize(small, bits=3, rgb=True)
    assert pools == []
    threaded = quantize(large, bits=3, rgb=True)
    assert pools == [3]  # one worker per plane, at most the cores
    one_thread = Degradation("quantize", bits=3).apply(large, rgb=True, workers=1)
    assert np.array_equal(threaded, one_thread) and pools == [3]


def test_bayer_matrix_is_built_once_and_read_only():
    assert bayer_matrix(8) is bayer_matrix(8)
    with pytest.raises(ValueError, match="read-only"):
        bayer_matrix(8)[0, 0] = 1
