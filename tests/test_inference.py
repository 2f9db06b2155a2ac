"""Tiled restoration: equivalence, dtypes and shapes, devices, cancel, OOM retry, quality."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from napari_compand import zoo
from napari_compand.checkpoints import CheckpointError
from napari_compand.degrade import halftone, quantize
from napari_compand.evaluation import baseline
from napari_compand.inference import (
    DITHER_AGREEMENT,
    LoadedModel,
    RestorationCancelled,
    default_views,
    ensemble_views,
    least_tile_size,
    load_model,
    restore,
    restore_steps,
    tiling,
)
from napari_compand.metrics import psnr
from napari_compand.models import THRESHOLD_MAP_GAIN, ModelConfig, Restorer

IH = "inverse-halftone/conv1_1"
EX3 = "expand-3bit/conv1_1"


@pytest.fixture(scope="module")
def astronaut_ht() -> np.ndarray:
    return halftone(data.astronaut()[:512, :512], "floyd-steinberg", rgb=True)


def _small(channels: int = 3, seed: int = 0) -> Restorer:
    """A random, untrained network (non-zero last layer) small enough for fast tests."""
    torch.manual_seed(seed)
    model = Restorer(ModelConfig(channels=channels, ngf=8, depth=3, max_channels=16))
    return model.eval()


def test_tiles_start_on_the_network_grid():
    """With a shallow network whose receptive field fits the overlap, tiling is exact."""
    model = _small()
    image = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    whole = restore(image, model, tile_size=1024)
    tiled = restore(image, model, tile_size=96, overlap=40)  # the smallest plan: 80 / 40
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float16, np.float32, np.float64])
def test_dtype_and_range_round_trip(dtype):
    model = _small()
    base = data.astronaut()[:96, :128]
    if dtype == np.uint8:
        image = base
    elif dtype == np.uint16:
        image = base.astype(np.uint16) * 257
    else:
        image = (base / 255).astype(dtype)
    out = restore(image, model)
    assert out.dtype == image.dtype and out.shape == image.shape
    reference = restore(base, model).astype(np.float64) / 255
    scale = 65535 if dtype == np.uint16 else (255 if dtype == np.uint8 else 1)
    tolerance = 1 / 255 + (1e-3 if dtype == np.float16 else 1e-6)
    assert np.abs(out.astype(np.float64) / scale - reference).max() <= tolerance


def test_shapes_grey_rgba_and_stacks():
    model = _small()
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (70, 90), dtype=np.uint8)
    rgba = rng.integers(0, 256, (70, 90, 4), dtype=np.uint8)
    stack = rng.integers(0, 256, (3, 70, 90), dtype=np.uint8)
    rgb_stack = rng.integers(0, 256, (2, 70, 90, 3), dtype=np.uint8)
    out_grey = restore(grey, model)
    assert out_grey.shape == grey.shape
    out_rgba = restore(rgba, model)
    assert np.array_equal(out_rgba[..., 3], rgba[..., 3])  # alpha passes through
    assert np.array_equal(out_rgba[..., :3], restore(rgba[..., :3], model))
    out_stack = restore(stack, model)
    for i in range(3):  # plane by plane
        assert np.array_equal(out_stack[i], restore(stack[i], model))
    out_rgb_stack = restore(rgb_stack, model)
    assert np.array_equal(out_rgb_stack[1], restore(rgb_stack[1], model))


def test_grey_image_through_colour_model_is_the_channel_mean():
    model = _small()
    grey = data.camera()[:64, :96]
    as_rgb = np.repeat(grey[..., None], 3, axis=-1)
    expected = restore(as_rgb, model).astype(np.float64).mean(axis=-1)
    assert np.abs(restore(grey, model) - expected).max() <= 1.0


def test_colour_image_through_grey_model_channel_by_channel():
    model = _small(channels=1)
    rgb = data.astronaut()[:64, :96]
    out = restore(rgb, model)
    for c in range(3):
        assert np.array_equal(out[..., c], restore(np.ascontiguousarray(rgb[..., c]), model))


def test_input_is_not_modified(astronaut_ht):
    before = astronaut_ht.copy()
    restore(astronaut_ht, _small(), tile_size=128, overlap=40)
    assert np.array_equal(before, astronaut_ht)


def test_progress_and_cancel():
    model = _small()
    image = np.zeros((256, 256), np.uint8)
    seen = []
    restore(image, model, tile_size=96, overlap=40, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] == len(seen) == 16  # 4 x 4 tiles (stride 56)
    calls = []
    with pytest.raises(RestorationCancelled):
        restore(image, model, tile_size=96, overlap=40, should_stop=lambda: calls.append(1) or True)
    assert len(calls) == 1  # stopped after the first tile


def test_closing_the_generator_stops_between_tiles():
    steps = restore_steps(np.zeros((256, 256), np.uint8), _small(), tile_size=96, overlap=40)
    assert next(steps) == (1, 16)
    steps.close()  # what a napari worker's quit() does
    with pytest.raises(StopIteration):
        next(steps)


class _OutOfMemoryAbove(Restorer):
    """Raises CUDA's out-of-memory error for tiles wider than ``limit`` or batches > 1."""

    def __init__(self, limit: int) -> None:
        torch.manual_seed(0)  # the weights of _small()
        super().__init__(ModelConfig(ngf=8, depth=3, max_channels=16))
        self.limit = limit
        self.widths: list[int] = []

    def forward(self, x):
        if x.shape[-1] > self.limit or x.shape[0] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        self.widths.append(x.shape[-1])
        return super().forward(x)


def test_out_of_memory_retries_with_smaller_batches_and_tiles():
    model = _OutOfMemoryAbove(limit=128).eval()
    image = np.random.default_rng(2).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    out = restore(image, model, tile_size=256, overlap=40, batch_size=4)
    assert out.shape == image.shape and max(model.widths) <= 128
    exact = restore(image, _small(), tile_size=1024)  # the same weights (seed 0), untiled
    assert np.abs(out.astype(int) - exact.astype(int)).max() <= 1
    with pytest.raises(MemoryError, match="smallest without seams"):
        restore(image, _OutOfMemoryAbove(limit=8).eval(), tile_size=96, overlap=40)


def test_out_of_memory_retry_shrinks_the_overlap_of_a_large_tile():
    # a 512 px tile overlaps by a quarter (128 px), but this network needs only 40 px: the
    # retry reaches 128 px tiles (found on a GPU capped at 1,200 MiB with a 3072 px tile)
    model = _OutOfMemoryAbove(limit=130).eval()
    assert least_tile_size(model) == 80 and tiling(model, 512) == (512, 128)
    image = np.random.default_rng(3).integers(0, 256, (512, 512), dtype=np.uint8)
    out = restore(image, model, tile_size=512)
    assert max(model.widths) == 128
    exact = restore(image, _small(), tile_size=1024)
    assert np.abs(out.astype(int) - exact.astype(int)).max() <= 1


def test_devices_and_precision():
    model = _small()
    image = data.camera()[:64, :64]
    missing = "mps" if torch.cuda.is_available() else "cuda"
    if missing == "mps" and torch.backends.mps.is_available():
        pytest.skip("every device exists here")
    with pytest.raises(RuntimeError, match="not available"):
        restore(image, model, device=missing)
    with pytest.raises(ValueError, match="unknown precision"):
        restore(image, model, precision="int8")
    exact = restore(image, model, device="cpu", precision="float32")
    assert np.array_equal(restore(image, model, device="auto"), exact) or torch.cuda.is_available()
    half = restore(image, model, device="cpu", precision="bfloat16")  # autocast path
    assert np.abs(half.astype(int) - exact.astype(int)).mean() < 2


def test_bad_models_and_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="zoo models: .*inverse-halftone/conv1_1"):
        restore(np.zeros((8, 8), np.uint8), "no/such-model")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        restore(np.zeros((8, 8), np.uint8), bad)
    with pytest.raises(TypeError, match="model must be"):
        load_model(42)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        restore(np.full((8, 8), 2.0), _small())
    with pytest.raises(ValueError, match="overlap >= 0"):
        restore(np.zeros((8, 8), np.uint8), _small(), tile_size=64, overlap=-8)


def test_load_model_reads_metadata_and_caches():
    first = load_model(IH)
    assert isinstance(first, LoadedModel)
    assert (first.task, first.loss_layer, first.name) == ("inverse-halftone", "conv1_1", IH)
    assert load_model(IH) is first
    assert load_model(zoo.get(IH).path) is first  # same file, same cache entry
    assert load_model(EX3).bits == 3


def test_shipped_inverse_halftoning_beats_gaussian_blur():
    clean = data.astronaut()
    halftoned = halftone(clean, "floyd-steinberg", rgb=True)
    restored = restore(halftoned, IH)
    blurred = baseline("gaussian", None)(halftoned)
    assert psnr(clean, restored, rgb=True) > psnr(clean, blurred, rgb=True) + 1.5
    grey = data.camera()  # grey input through the colour model
    grey_restored = restore(halftone(grey, "floyd-steinberg"), IH)
    assert psnr(grey, grey_restored) > psnr(grey, baseline("gaussian", None)(halftone(grey)))


def test_shipped_expansion_beats_midbin():
    from napari_compand.degrade import Degradation, DegradationMode

    clean = data.astronaut()
    low = quantize(clean, 3, rgb=True)
    midbin = baseline("midbin", Degradation(DegradationMode.QUANTIZE, bits=3))(low)
    assert psnr(clean, restore(low, EX3), rgb=True) > psnr(clean, midbin, rgb=True) + 0.5


def test_consistent_expansion_stays_in_the_input_bins():
    clean = data.astronaut()[:128, :160]
    low = quantize(clean, 3, rgb=True)
    free = restore(low, EX3)
    kept = restore(low, EX3, consistent=True)
    np.testing.assert_array_equal(quantize(kept, 3, rgb=True), low)
    assert psnr(clean, kept, rgb=True) >= psnr(clean, free, rgb=True)
    assert np.any(quantize(free, 3, rgb=True) != low)  # the free network leaves some bins


def test_consistent_needs_an_expansion_model(astronaut_ht):
    with pytest.raises(ValueError, match="needs a bit-depth expansion model"):
        restore(astronaut_ht[:64, :64], IH, consistent=True)
    with pytest.raises(ValueError, match="unknown task"):
        restore(np.zeros((32, 32, 3), np.uint8), _small(), consistent=True)


@pytest.mark.parametrize(
    ("setting", "views"),
    [(True, [(k, f) for k in range(4) for f in (False, True)]), (2, [(0, False), (1, False)])],
)
def test_self_ensemble_averages_rotations_and_flips(setting, views):
    model = _small()  # no task recorded: one view by default
    image = np.random.default_rng(1).random((64, 96, 3)).astype(np.float32)
    manual = np.zeros_like(image)
    for k, flip in views:
        view = np.rot90(image, k)
        view = view[:, ::-1] if flip else view
        out = restore(np.ascontiguousarray(view), model, rgb=True)
        out = out[:, ::-1] if flip else out
        manual += np.rot90(out, -k)
    ensembled = restore(image, model, rgb=True, self_ensemble=setting)
    np.testing.assert_allclose(ensembled, manual / len(views), atol=1e-5)
    assert np.abs(ensembled - restore(image, model, rgb=True)).max() > 1e-3
    np.testing.assert_array_equal(
        restore(image, model, rgb=True), restore(image, model, rgb=True, self_ensemble=False)
    )


def test_self_ensemble_helps_expansion_and_two_views_are_its_default():
    # a whole photograph: on one small crop a view's gain is within the noise of that crop
    clean = data.chelsea()
    low = quantize(clean, 2, rgb=True)
    model = "expand-2bit/resunet"
    one, default = restore(low, model, self_ensemble=1), restore(low, model)
    np.testing.assert_array_equal(default, restore(low, model, self_ensemble=2))
    eight = restore(low, model, self_ensemble=True)
    assert eight.dtype == np.uint8 and eight.shape == clean.shape
    assert psnr(clean, one, rgb=True) < psnr(clean, default, rgb=True)
    assert psnr(clean, one, rgb=True) < psnr(clean, eight, rgb=True)
    assert default_views(load_model(model)) == 2
    for wrong in (3, 0, "x8"):
        with pytest.raises(ValueError, match="averages 1, 2 or 8 views"):
            restore(low, model, self_ensemble=wrong)


def test_inverse_halftoning_views_are_pixel_shifts():
    """A halftoning model's views are shifted copies (error diffusion has a direction, so
    a turned halftone is another halftone), mapped back and averaged where they exist."""
    network = _small()
    model = LoadedModel(network, "test halftone model", {"task": "inverse-halftone"})
    image = np.random.default_rng(2).random((64, 96, 3)).astype(np.float32)
    one = restore(image, model, rgb=True, self_ensemble=1)
    shifted_in = np.pad(image, ((1, 0), (1, 0), (0, 0)), mode="reflect")[:64, :96]
    shifted_out = restore(shifted_in, model, rgb=True, self_ensemble=1)[1:, 1:]
    two = restore(image, model, rgb=True, self_ensemble=2)
    np.testing.assert_array_equal(two, restore(image, model, rgb=True))  # 2: the default
    manual = one.copy()
    manual[:-1, :-1] = (one[:-1, :-1] + shifted_out) / 2  # the last row/column: one view
    np.testing.assert_allclose(two, manual, atol=1e-5)
    assert np.abs(two - one).max() > 1e-3
    assert [v.turns for v in ensemble_views(model, 8)] == [0] * 8  # never turned
    assert len(set(ensemble_views(model, 8))) == 8
    turned = ensemble_views(load_model("expand-2bit/resunet"), 2)
    assert [(v.turns, v.dy, v.dx) for v in turned] == [(0, 0, 0), (1, 0, 0)]


def test_shifted_views_help_a_real_halftone(astronaut_ht):
    clean = data.astronaut()[:256, :256]
    halftoned = astronaut_ht[:256, :256]
    model = "inverse-halftone/resunet"
    one = psnr(clean, restore(halftoned, model, self_ensemble=1), rgb=True)
    two = psnr(clean, restore(halftoned, model), rgb=True)
    assert two > one + 0.01, (one, two)


# --- in-bin expansion models (Base.BIN) at 8 and 16 bits ---------------------------


def _bin_model(bits: int, trained: bool = True) -> Restorer:
    torch.manual_seed(0)
    config = ModelConfig(arch="resunet", widths=(4, 8), blocks=(1, 1), base="bin", bits=bits)
    model = Restorer(config)
    if trained:  # any weights: the output must stay in the bin anyway
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.02)
    return model.eval()


@pytest.mark.parametrize("dtype, scale", [(np.uint8, 1), (np.uint16, 257)])
def test_bin_models_keep_every_pixel_in_its_bin_at_8_and_16_bits(dtype, scale):
    photo = data.astronaut()[:96, :128].astype(dtype) * dtype(scale)
    low = quantize(photo, bits=3)  # Eq. 2 with h = 8 or 16
    out = restore(low, _bin_model(3))
    assert out.dtype == dtype and out.shape == low.shape
    assert np.array_equal(quantize(out, bits=3), low)  # the result re-quantizes to the input
    assert len(np.unique(out)) > 8 * 3  # values between the 8 levels, not the grid


def test_untrained_bin_model_gives_mid_bin_on_the_16_bit_scale():
    photo = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)  # a ramp
    low = quantize(photo, bits=2)  # bins of 2**14 on the 16-bit scale
    out = restore(low, _bin_model(2, trained=False))
    offset = out.astype(int) - low
    assert np.abs(offset - 2**13).max() <= 2**13 // 128  # mid-bin (8-bit vs 16-bit scale)
    assert psnr(photo, out, data_range=65535) > psnr(photo, low, data_range=65535) + 3


def test_restore_options_object_and_keywords_agree():
    from napari_compand.inference import RestoreOptions

    image = data.camera()[:64, :64]
    model = _small()
    options = RestoreOptions(tile_size=128, precision="float32")
    by_object = restore(image, model, options)
    by_keywords = restore(image, model, tile_size=128, precision="float32")
    np.testing.assert_array_equal(by_object, by_keywords)
    assert RestoreOptions.of(options, {"consistent": True}).tile_size == 128  # keywords replace
    with pytest.raises(TypeError, match="unknown restore option.*tile"):
        restore(image, model, tile=128)
    with pytest.raises(ValueError, match="unknown precision"):
        RestoreOptions(precision="int8")


# --- grey partners: a colour model's grey-only twin restores its grey images -------------


@pytest.fixture
def zoo_pair(tmp_path, monkeypatch):
    """A temporary zoo with ``expand-3bit/pair`` and its ``expand-3bit/pair-grey``."""
    from napari_compand.checkpoints import save_checkpoint
    from napari_compand.models import grey_version

    colour = _bin_model(3)
    grey = grey_version(colour)
    with torch.no_grad():  # make the twin distinguishable from the colour model
        for p in grey.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    shipped = {}
    for name, model in (("expand-3bit/pair", colour), ("expand-3bit/pair-grey", grey)):
        meta = {"task": "expand", "bits": 3, "zoo_name": name}
        meta["architecture"] = model.config.to_dict()
        path = save_checkpoint(tmp_path / f"{name.replace('/', '__')}.safetensors", model, meta)
        shipped[name] = zoo.ZooModel(name, path, zoo._read_metadata(path))
    monkeypatch.setattr(zoo, "_shipped", lambda: shipped)
    return shipped


def test_grey_images_go_through_the_grey_partner(zoo_pair):
    assert zoo.grey_partner("expand-3bit/pair") == "expand-3bit/pair-grey"
    assert zoo.grey_partner("expand-3bit/pair-grey") is None
    loaded = load_model("expand-3bit/pair")
    assert loaded.grey is not None and loaded.grey.name == "expand-3bit/pair-grey"
    grey = quantize(data.camera()[:96, :128], bits=3)
    paired = restore(grey, "expand-3bit/pair")
    assert np.array_equal(paired, restore(grey, "expand-3bit/pair-grey"))
    alone = restore(grey, "expand-3bit/pair", grey_partner=False)
    assert not np.array_equal(paired, alone)  # the colour model, three equal channels
    with_alpha = np.stack([grey, np.full_like(grey, 7)], axis=-1)  # grey + alpha
    out = restore(with_alpha, "expand-3bit/pair")
    assert np.array_equal(out[..., 0], paired) and (out[..., 1] == 7).all()
    colour = quantize(data.astronaut()[:96, :128], bits=3)  # colour images: the colour model
    assert np.array_equal(
        restore(colour, "expand-3bit/pair"), restore(colour, "expand-3bit/pair", grey_partner=False)
    )


def test_a_grey_partner_must_fit_its_colour_model(zoo_pair, tmp_path):
    from napari_compand.checkpoints import save_checkpoint

    other = Restorer(ModelConfig(channels=1, arch="resunet", widths=(4, 8), blocks=(1, 1)))
    meta = {"task": "expand", "bits": 3, "zoo_name": "expand-3bit/pair-grey"}
    meta["architecture"] = other.config.to_dict()  # a Gaussian base, not the bin
    path = save_checkpoint(tmp_path / "wrong.safetensors", other, meta)
    zoo_pair["expand-3bit/pair-grey"] = zoo.ZooModel("expand-3bit/pair-grey", path, meta)
    with pytest.raises(CheckpointError, match="cannot be the grey partner"):
        load_model("expand-3bit/pair")  # not loaded before: each test writes its own files


def test_a_deeper_colour_model_keeps_its_grey_partner(zoo_pair, tmp_path):
    """A colour model grown deeper (models.deeper_version) sees further than its partner:
    the pair still loads and grey images still go through the partner; a partner that
    sees further than its colour model is refused."""
    from napari_compand.checkpoints import load_checkpoint, save_checkpoint
    from napari_compand.models import deeper_version

    def ship(name: str, model: Restorer, file: str) -> None:
        meta = {"task": "expand", "bits": 3, "zoo_name": name}
        meta["architecture"] = model.config.to_dict()
        path = save_checkpoint(tmp_path / file, model, meta)
        zoo_pair[name] = zoo.ZooModel(name, path, meta)

    grey_path = zoo_pair["expand-3bit/pair-grey"].path
    shallow = load_checkpoint(zoo_pair["expand-3bit/pair"].path).build_model()
    deep = deeper_version(shallow, (2, 3))
    assert deep.receptive_radius > shallow.receptive_radius
    ship("expand-3bit/pair", deep, "deep.safetensors")
    loaded = load_model("expand-3bit/pair")
    assert loaded.grey is not None and loaded.grey.name == "expand-3bit/pair-grey"
    low = quantize(data.camera()[:96, :128], bits=3)
    assert np.array_equal(restore(low, "expand-3bit/pair"), restore(low, grey_path))

    wide = deeper_version(load_checkpoint(grey_path).build_model(), (3, 4))
    ship("expand-3bit/pair-grey", wide, "wide-grey.safetensors")
    ship("expand-3bit/pair", deep, "deep-again.safetensors")  # a file not loaded before
    with pytest.raises(CheckpointError, match="sees further"):
        load_model("expand-3bit/pair")


class _EchoMap(torch.nn.Module):
    """A stand-in network that outputs the threshold map it is given, on every channel."""

    multiple = 8
    receptive_radius = 8

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))  # restore moves the parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, 3:4] / THRESHOLD_MAP_GAIN + 0.5).repeat(1, 3, 1, 1)  # the map, undone


def _echo_model() -> Restorer:
    model = Restorer(ModelConfig(arch="resunet", widths=(4, 8), blocks=(1, 1), threshold_map=True))
    model.unet = _EchoMap()
    return model.eval()


@pytest.mark.parametrize("views", [1, 2])
@pytest.mark.parametrize("method", ["bayer-4x4", "bayer-8x8"])
def test_threshold_map_models_get_the_map_of_each_tile(method, views):
    """Tiles, shifted views and grey input all see the dither's own thresholds."""
    from napari_compand.degrade import dither_thresholds

    dithered = halftone(data.astronaut(), method)[5:300, 3:290]  # starts inside the matrix
    expected = np.rint(dither_thresholds(method, dithered.shape[:2], (5, 3)) * 255)
    model = _echo_model()  # (its echo disagrees with the dither too often to be clamped)
    for image in (dithered, dithered[..., 1]):
        result = restore(image, model, tile_size=64, overlap=32, self_ensemble=views)
        planes = result if result.ndim == 2 else result[..., 0]
        np.testing.assert_array_equal(planes, expected)


def test_a_foreign_ordered_dither_is_not_clamped_to_our_thresholds():
    """A dither by another 8x8 matrix (here ours with 16 thresholds swapped around) passes
    for a Bayer one, but too many of its pixels disagree with its thresholds to clamp the
    restoration to them."""
    from napari_compand.degrade import detect_ordered_dither, dither_thresholds

    photo = data.camera()[:256, :256]
    matrix = dither_thresholds("bayer-8x8", (8, 8)).ravel()
    rng = np.random.default_rng(0)
    moved = rng.choice(64, 16, replace=False)
    matrix[moved] = matrix[rng.permutation(moved)]
    foreign = np.tile(matrix.reshape(8, 8), (32, 32))
    dots = np.where(photo / 255 > foreign, 255, 0).astype(np.uint8)
    found = detect_ordered_dither(dots)
    assert found is not None
    restored = restore(dots, "inverse-halftone/resunet-ordered")
    ours = dither_thresholds(found.method, dots.shape, found.offset)
    assert np.mean((restored / 255 > ours) != (dots > 0)) > 1 - DITHER_AGREEMENT


@pytest.mark.parametrize("size", [4, 8])
def test_a_transposed_bayer_dither_is_restored_through_its_transpose(size):
    """ImageMagick's ``-ordered-dither o8x8`` uses the transposed Bayer matrix: the
    specialist restores it as well as our own dither, and the result dithers back."""
    from napari_compand.degrade import dither_thresholds

    photo = data.astronaut()[7:199, 3:195]  # starts inside the matrix
    method = f"bayer-{size}x{size}"
    transposed = dither_thresholds(method, photo.shape[:2], (7, 3), transposed=True)
    dots = np.where(photo / 255 > transposed[..., None], 255, 0).astype(np.uint8)
    restored = restore(dots, "inverse-halftone/resunet-ordered")
    assert restored.shape == dots.shape and restored.flags.c_contiguous
    np.testing.assert_array_equal(np.where(restored / 255 > transposed[..., None], 255, 0), dots)
    ours = restore(halftone(photo, method), "inverse-halftone/resunet-ordered")
    assert psnr(photo, restored, rgb=True) > psnr(photo, ours, rgb=True) - 0.5
    assert psnr(photo, restored, rgb=True) > psnr(photo, baseline("gaussian", None)(dots), rgb=True)


@pytest.mark.parametrize("method", ["bayer-4x4", "bayer-8x8"])
def test_the_ordered_specialist_restores_what_dithers_back_to_its_input(method):
    photo = data.astronaut()[:192, :192]
    dots = halftone(photo, method)
    restored = restore(dots, "inverse-halftone/resunet-ordered")
    np.testing.assert_array_equal(halftone(restored, method), dots)
    assert psnr(photo, restored, rgb=True) > psnr(photo, baseline("gaussian", None)(dots), rgb=True)


def test_a_riemersma_halftone_is_recognised_and_restored_above_a_blur():
    """ImageMagick's default dither: named from its pixels, routed to its specialist."""
    from napari_compand import zoo
    from napari_compand.degrade import detect_degradation

    photo = data.astronaut()[100:292, 150:342]
    dots = halftone(photo, "riemersma")
    name = zoo.default_model("inverse-halftone", halftone=detect_degradation(dots))
    assert name == "inverse-halftone/resunet-riemersma"
    blur = psnr(photo, baseline("gaussian", None)(dots), rgb=True)
    assert psnr(photo, restore(dots, name), rgb=True) > blur + 1.5
    assert psnr(photo, restore(dots, "inverse-halftone/resunet-mix"), rgb=True) < blur


def test_threshold_map_models_refuse_other_halftones_clearly():
    model = _echo_model()
    with pytest.raises(ValueError, match="does not look like a Bayer 4x4 or 8x8 dither"):
        restore(halftone(data.camera()), model)
