"""Nothing a user owns is overwritten or silently corrupted (issue 13).

Files on disk (every command's outputs), unusual images (grey + alpha, EXIF
orientation, big-endian, numpy scalars, float16 bins), training guards, and
checkpoints that cannot crash the loader or exhaust memory. Tiling is in
``test_tiling.py``.
"""

from __future__ import annotations

import json
import os

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from skimage import data

from napari_compand import degrade
from napari_compand._io import distinct_stems, read_image
from napari_compand.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from napari_compand.cli import main
from napari_compand.inference import load_model, restore
from napari_compand.models import ModelConfig, Restorer
from napari_compand.training import Trainer, TrainingConfig, TrainingImages
from napari_compand.training.engine import NonFiniteLossError

# --- files on disk ------------------------------------------------------------------


def _bytes(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize(
    "command",
    [
        ["metrics", "{p}/camera.png", "{p}/camera.png", "--csv", "{p}/camera.png"],
        ["metrics", "{p}/camera.png", "{p}/astronaut.png", "--csv", "{p}/astronaut.png"],
        ["metrics", "{p}/camera.png", "{p}/camera.png", "--csv", "{p}/camera.png", "--overwrite"],
        ["eval", "--data", "{p}", "--task", "expand", "--bits", "4", "--csv", "{p}/camera.png"],
        [
            "eval",
            "--data",
            "{p}",
            "--task",
            "expand",
            "--bits",
            "4",
            "--markdown",
            "{p}/camera.png",
        ],
        [
            "eval",
            "--data",
            "{p}",
            "--task",
            "expand",
            "--bits",
            "4",
            "--per-image",
            "{p}/camera.png",
        ],
        ["train", "--data", "{p}", "--out", "{p}/camera.png", "--iterations", "1"],
        ["train", "--data", "{p}", "--out", "{p}/camera.png", "--overwrite", "--iterations", "1"],
        ["degrade", "{p}/camera.png", "--bits", "3", "--out", "{p}/camera.png"],
    ],
    ids=[
        "metrics-csv-ref",
        "metrics-csv-test",
        "metrics-csv-ref-overwrite",
        "eval-csv",
        "eval-markdown",
        "eval-per-image",
        "train-out-image",
        "train-out-image-overwrite",
        "degrade-out-is-a-file",
    ],
)
def test_no_command_writes_over_an_input(photo_dir, command, capsys):
    before = _bytes(photo_dir)
    argv = [part.format(p=photo_dir) for part in command]
    assert main(argv) == 2
    assert _bytes(photo_dir) == before
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["degrade", "restore"])
def test_a_second_run_refuses_to_replace_results_unless_overwrite(
    photo_dir, tmp_path, command, capsys
):
    out = tmp_path / "out"
    how = ["--bits", "3"] if command == "degrade" else ["--model", "expand-3bit/conv1_1"]
    argv = [command, str(photo_dir), *how, "--out", str(out)]
    assert main(argv) == 0
    first = _bytes(out)
    for path in out.iterdir():
        path.write_bytes(b"the user's edits")
    assert main(argv) == 2
    assert "exist already" in capsys.readouterr().err
    assert all(p.read_bytes() == b"the user's edits" for p in out.iterdir())
    assert main([*argv, "--overwrite"]) == 0
    assert _bytes(out) == first
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_same_stem_inputs_get_distinct_outputs(tmp_path):
    one, two = tmp_path / "a", tmp_path / "b"
    one.mkdir()
    two.mkdir()
    image = data.camera()[:32, :32]
    for name in ("x.png", "x.bmp", "x.jpg"):
        iio.imwrite(one / name, image)
    iio.imwrite(one / "img.png", image)
    iio.imwrite(two / "img.png", 255 - image)
    out = tmp_path / "out"
    assert main(["degrade", str(one), str(two), "--bits", "2", "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "a_img_2bit.png",
        "b_img_2bit.png",
        "x_bmp_2bit.png",
        "x_jpg_2bit.png",
        "x_png_2bit.png",
    ]
    np.testing.assert_array_equal(
        iio.imread(out / "b_img_2bit.png"), degrade.quantize(255 - image, 2)
    )


def test_distinct_stems_falls_back_to_numbers(tmp_path):
    paths = [tmp_path / "a" / "s" / "x.png", tmp_path / "b" / "s" / "x.png"]
    assert distinct_stems(paths) == ["x-1", "x-2"]


def test_train_out_is_checked_before_training(photo_dir, tmp_path, capsys):
    tiny = ["--iterations", "1", "--crop-size", "32", "--batch-size", "2", "--device", "cpu"]
    assert main(["train", "--data", str(photo_dir), "--out", str(tmp_path), *tiny]) == 2
    assert "must name a .safetensors" in capsys.readouterr().err
    folder = tmp_path / "m.safetensors"
    folder.mkdir()
    assert main(["train", "--data", str(photo_dir), "--out", str(folder), *tiny]) == 2
    assert "is a folder" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    unwritable = blocker / "sub" / "m.safetensors"
    assert main(["train", "--data", str(photo_dir), "--out", str(unwritable), *tiny]) == 2
    assert "cannot write into" in capsys.readouterr().err


def test_csv_is_written_when_allowed(photo_dir, tmp_path):
    target = tmp_path / "scores.csv"
    argv = [
        "metrics",
        str(photo_dir / "camera.png"),
        str(photo_dir / "camera.png"),
        "--csv",
        str(target),
    ]
    assert main(argv) == 0
    assert target.read_text().startswith("test,plane,psnr_db,ssim")
    assert main(argv) == 2
    assert main([*argv, "--overwrite"]) == 0


# --- images -------------------------------------------------------------------------


def _grey_alpha(size=64):
    grey = data.camera()[:size, :size]
    alpha = np.random.default_rng(0).integers(0, 256, grey.shape, dtype=np.uint8)
    return grey, np.stack([grey, alpha], -1)


@pytest.mark.parametrize(
    "operation",
    [
        lambda image: degrade.quantize(image, 3),
        lambda image: degrade.halftone(image, "floyd-steinberg"),
        lambda image: degrade.halftone(image, "bayer-4x4"),
        lambda image: degrade.Degradation("quantize", 5).apply(image),
    ],
    ids=["quantize", "error-diffusion", "bayer", "degradation"],
)
def test_grey_alpha_keeps_alpha_and_degrades_grey(operation):
    grey, image = _grey_alpha()
    result = operation(image)
    assert result.shape == image.shape
    np.testing.assert_array_equal(result[..., 1], image[..., 1])
    np.testing.assert_array_equal(result[..., 0], operation(grey))


@pytest.mark.parametrize("model", ["expand-4bit/resunet", "inverse-halftone/conv1_1"])
def test_grey_alpha_restores_grey_and_keeps_alpha(model):
    grey, image = _grey_alpha()
    low = degrade.quantize(image, 4) if "expand" in model else degrade.halftone(image)
    result = restore(low, model)
    np.testing.assert_array_equal(result[..., 1], image[..., 1])
    np.testing.assert_array_equal(result[..., 0], restore(low[..., 0], model))


def test_grey_alpha_keep_in_bin_keeps_alpha():
    _, image = _grey_alpha()
    low = degrade.quantize(image, 3)
    restored = image.copy()
    restored[..., 1] = 7
    kept = degrade.keep_in_bin(restored, low, 3)
    assert (kept[..., 1] == 7).all()


def test_grey_alpha_png_through_the_cli(tmp_path):
    _, image = _grey_alpha()
    Image.fromarray(image, mode="LA").save(tmp_path / "la.png")
    assert read_image(tmp_path / "la.png").shape == (64, 64, 2)
    out = tmp_path / "out"
    assert main(["degrade", str(tmp_path / "la.png"), "--bits", "2", "--out", str(out)]) == 0
    written = iio.imread(out / "la_2bit.png")
    np.testing.assert_array_equal(written[..., 1], image[..., 1])
    np.testing.assert_array_equal(written[..., 0], degrade.quantize(image[..., 0], 2))


@pytest.mark.parametrize("orientation, turn", [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(tmp_path, orientation, turn):
    image = np.zeros((40, 60), np.uint8)
    image[:10, :20] = 255  # a bright block top left
    picture = Image.fromarray(image)
    exif = picture.getexif()
    exif[0x0112] = orientation
    picture.save(tmp_path / "photo.jpg", exif=exif, quality=100)
    upright = read_image(tmp_path / "photo.jpg")
    expected = np.rot90(image, turn)
    assert upright.shape == expected.shape
    assert np.abs(upright.astype(int) - expected).mean() < 3


@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_orientation_is_applied_as_pillow_does(tmp_path, orientation):
    import tifffile
    from PIL import ImageOps

    image = (np.arange(4 * 6 * 3) % 256).astype(np.uint8).reshape(4, 6, 3)
    tags = [(274, "H", 1, orientation, True)]
    tifffile.imwrite(tmp_path / "rgb.tif", image, photometric="rgb", extratags=tags)
    tifffile.imwrite(tmp_path / "grey.tif", image[..., 0], photometric="minisblack", extratags=tags)
    deep = image * np.uint16(257)
    tifffile.imwrite(tmp_path / "deep.tif", deep, photometric="rgb", extratags=tags)
    # Pillow is the reference for 8-bit RGB (its grey and 16-bit readers differ for 5-8)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "rgb.tif")))
    upright = read_image(tmp_path / "rgb.tif")
    np.testing.assert_array_equal(upright, expected)
    assert (upright.shape[:2] == image.shape[:2]) == (orientation < 5)
    np.testing.assert_array_equal(read_image(tmp_path / "grey.tif"), upright[..., 0])
    deep = read_image(tmp_path / "deep.tif")
    assert deep.dtype == np.uint16
    np.testing.assert_array_equal(deep, upright * np.uint16(257))


@pytest.mark.parametrize("method", ["floyd-steinberg", "bayer-8x8"])
def test_big_endian_images_work(method):
    native = data.camera()[:64, :64].astype(np.uint16) * 257
    swapped = native.astype(">u2")
    np.testing.assert_array_equal(
        degrade.halftone(swapped, method), degrade.halftone(native, method)
    )
    np.testing.assert_array_equal(degrade.quantize(swapped, 5), degrade.quantize(native, 5))


@pytest.mark.parametrize("bits", [np.int64(3), np.int32(3), np.uint8(3)])
def test_numpy_integer_bits(bits):
    image = data.camera()[:32, :32]
    np.testing.assert_array_equal(degrade.quantize(image, bits), degrade.quantize(image, 3))
    assert degrade.Degradation("quantize", bits).bits == 3
    assert type(degrade.Degradation("quantize", bits).bits) is int


@pytest.mark.parametrize("bits", [3.0, "3", True])
def test_non_integer_bits_are_refused(bits):
    with pytest.raises(TypeError, match="bits must be an integer"):
        degrade.quantize(data.camera()[:16, :16], bits)


@pytest.mark.parametrize("bits", [12, 13, 14, 15])
def test_float16_refuses_bins_it_cannot_hold(bits):
    image = np.random.default_rng(0).random((32, 32)).astype(np.float16)
    with pytest.raises(ValueError, match="between 1 and 11 for float16 images"):
        degrade.quantize(image, bits)
    with pytest.raises(ValueError, match="float16"):
        degrade.keep_in_bin(image, image, bits)


@pytest.mark.parametrize("bits", range(1, 12))
def test_float16_keep_in_bin_guarantee(bits):
    rng = np.random.default_rng(bits)
    low = degrade.quantize(rng.random((32, 32)).astype(np.float16), bits)
    kept = degrade.keep_in_bin(rng.random((32, 32)).astype(np.float16), low, bits)
    np.testing.assert_array_equal(degrade.quantize(kept, bits), low)


# --- models, checkpoints and training -----------------------------------------------

TINY = ModelConfig(ngf=4, depth=2, max_channels=8)


def _tiny_checkpoint(tmp_path, name="m.safetensors", **metadata):
    torch.manual_seed(0)
    model = Restorer(TINY)
    meta = {"task": "inverse-halftone", "architecture": TINY.to_dict(), **metadata}
    return save_checkpoint(tmp_path / name, model, meta), model


def _raw_checkpoint(path, tensors, metadata):
    save_file(tensors, str(path), metadata={"napari_compand": json.dumps(metadata)})
    return path


def _good_tensors():
    torch.manual_seed(0)
    return {f"model.{k}": v.contiguous() for k, v in Restorer(TINY).state_dict().items()}


GOOD_META = {
    "format": "napari-compand-checkpoint",
    "format_version": 1,
    "task": "inverse-halftone",
    "architecture": TINY.to_dict(),
}


def _with(**changes):
    return {**GOOD_META, **changes}


def _int32():
    tensors = _good_tensors()
    return {k: v.to(torch.int32) if v.is_floating_point() else v for k, v in tensors.items()}


def _nan():
    tensors = _good_tensors()
    first = next(k for k, v in tensors.items() if v.is_floating_point())
    return {**tensors, first: torch.full_like(tensors[first], float("nan"))}


@pytest.mark.parametrize(
    "tensors, metadata, match",
    [
        (_good_tensors, [1, 2], "must be a JSON object"),
        (_good_tensors, None, "must be a JSON object"),
        (_good_tensors, _with(zoo_name=7), "'zoo_name' must be text"),
        (_good_tensors, _with(architecture="big"), "'architecture' must be a JSON object"),
        (_good_tensors, _with(architecture={"ngf": "x"}), "invalid architecture"),
        (_good_tensors, _with(recipe=[1]), "'recipe' must be a JSON object"),
        (_good_tensors, _with(bits="3"), "'bits' must be an integer"),
        (_good_tensors, _with(format_version="1"), "format_version must be an integer"),
        (
            _good_tensors,
            _with(architecture={**TINY.to_dict(), "ngf": 1024, "depth": 10, "max_channels": 1024}),
            "do not fit|has shape",
        ),
        (_good_tensors, _with(architecture={**TINY.to_dict(), "ngf": 8}), "has shape"),
        (_int32, GOOD_META, "must be floating point"),
        (_nan, GOOD_META, "NaN or infinite"),
        (lambda: {}, GOOD_META, "do not fit"),
    ],
    ids=[
        "list",
        "null",
        "zoo-name-number",
        "architecture-text",
        "architecture-invalid",
        "recipe-list",
        "bits-text",
        "version-text",
        "huge-network-declared",
        "shape-mismatch",
        "int32-weights",
        "nan-weights",
        "no-weights",
    ],
)
def test_malformed_checkpoints_raise_checkpoint_error_naming_the_file(
    tmp_path, tensors, metadata, match
):
    path = _raw_checkpoint(tmp_path / "bad.safetensors", tensors(), metadata)
    with pytest.raises(CheckpointError, match=match) as caught:
        load_checkpoint(path)
    assert str(path) in str(caught.value)
    with pytest.raises(CheckpointError):
        load_model(path)


def test_a_checkpoint_without_a_recipe_cannot_be_resumed(tmp_path, photo_dir, capsys):
    path, _ = _tiny_checkpoint(tmp_path)
    argv = ["train", "--data", str(photo_dir), "--resume", str(path), "--out", str(path)]
    assert main(argv) == 2
    assert "records no training recipe" in capsys.readouterr().err


def test_load_model_reads_a_replaced_file_with_the_same_mtime(tmp_path):
    path, first = _tiny_checkpoint(tmp_path)
    stamp = os.stat(path).st_mtime_ns
    assert load_model(path).network.state_dict().keys() == first.state_dict().keys()
    before = next(iter(load_model(path).network.parameters())).detach().clone()
    torch.manual_seed(1)
    other = Restorer(TINY)
    save_checkpoint(path, other, {"task": "expand", "architecture": TINY.to_dict()})
    os.utime(path, ns=(stamp, stamp))
    after = next(iter(load_model(path).network.parameters())).detach()
    assert not torch.equal(before, after)
    assert load_model(path).task == "expand"


def test_clear_errors_for_wrong_argument_types():
    image = data.camera()[:32, :32]
    with pytest.raises(TypeError, match="device must be a name"):
        restore(image, Restorer(TINY), device=None)
    with pytest.raises(TypeError, match="model must be a ModelConfig"):
        TrainingConfig(model="big")


@pytest.mark.parametrize("flag", ["--pixel-weight", "--perceptual-weight", "--lr"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_settings_are_refused(photo_dir, tmp_path, capsys, flag, value):
    out = tmp_path / "m.safetensors"
    assert main(["train", "--data", str(photo_dir), "--out", str(out), flag, value]) == 2
    assert not out.exists()
    assert flag.lstrip("-").replace("-", "_") in capsys.readouterr().err


def test_a_non_finite_loss_stops_the_run_keeping_finite_weights(tmp_path):
    config = TrainingConfig(
        task="expand",
        bits=3,
        perceptual_weight=0,
        pixel_weight=1,
        crop_size=32,
        batch_size=2,
        iterations=10,
        validate_every=0,
        checkpoint_every=0,
        device="cpu",
        model=TINY,
    )
    images = TrainingImages([data.astronaut()[:64, :64]], config.degradations)
    out = tmp_path / "run.safetensors"
    trainer = Trainer(config, images, out)
    sample = images.sample

    def poisoned(rng, *args, **kwargs):
        inputs, targets = sample(rng, *args, **kwargs)
        if trainer.iteration == 3:
            targets = torch.full_like(targets, float("nan"))
        return inputs, targets

    images.sample = poisoned
    with pytest.raises(NonFiniteLossError, match="iteration 4") as caught:
        for _ in trainer.run():
            pass
    assert str(out) in str(caught.value)
    saved = load_checkpoint(out)  # refuses non-finite weights: loading proves them finite
    assert saved.metadata["iterations_done"] == 3


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--task", "expand"], "--task expand"),
        (["--ngf", "16"], "--ngf 16"),
        (["--depth", "2"], "--depth 2"),
        (["--lr", "0.5"], "--lr 0.5"),
    ],
)
def test_resume_refuses_flags_that_change_the_recipe(photo_dir, tmp_path, capsys, flags, named):
    out = tmp_path / "m.safetensors"
    tiny = ["--crop-size", "32", "--batch-size", "2", "--device", "cpu"]
    model = ["--ngf", "4", "--depth", "3", "--max-channels", "8"]
    assert (
        main(
            [
                "train",
                "--data",
                str(photo_dir),
                "--out",
                str(out),
                "--iterations",
                "1",
                *tiny,
                *model,
            ]
        )
        == 0
    )
    capsys.readouterr()
    argv = ["train", "--data", str(photo_dir), "--out", str(out), "--resume", str(out)]
    assert main([*argv, "--iterations", "2", *flags]) == 2
    assert named in capsys.readouterr().err
    assert load_checkpoint(out).metadata["iterations_done"] == 1
    # the same values, and the settings a resume may change, are fine
    assert main([*argv, "--iterations", "2", "--ngf", "4", "--device", "cpu"]) == 0
    assert load_checkpoint(out).metadata["iterations_done"] == 2


def test_checking_checkpoints_keeps_the_compiler_stack_out():
    """Building on the meta device must not import triton (its LLVM crashes napari
    processes that run on Mesa's software OpenGL)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from napari_compand import zoo\n"
        "from napari_compand.inference import load_model\n"
        "for name in zoo.names(): load_model(name)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('triton', 'torch._inductor'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
