"""Command line: degrade and metrics over real files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from skimage import data

from napari_compand.cli import main
from napari_compand.degrade import halftone, quantize
from napari_compand.inference import restore
from napari_compand.metrics import psnr


def test_degrade_bits_folder(photo_dir, tmp_path, capsys):
    out = tmp_path / "low"
    assert main(["degrade", str(photo_dir), "--bits", "3", "--out", str(out)]) == 0
    written = iio.imread(out / "astronaut_3bit.png")
    np.testing.assert_array_equal(written, quantize(data.astronaut()[:96, :128], 3))
    assert (out / "camera_3bit.png").exists()
    assert "[2/2]" in capsys.readouterr().out


def test_degrade_halftone_file(photo_dir, tmp_path):
    out = tmp_path / "ht"
    assert (
        main(
            [
                "degrade",
                str(photo_dir / "camera.png"),
                "--halftone",
                "stucki",
                "--serpentine",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    written = iio.imread(out / "camera_halftone-stucki-serpentine.png")
    np.testing.assert_array_equal(written, halftone(data.camera()[:80, :64], "stucki", True))


def test_metrics_prints_table_and_csv(photo_dir, tmp_path, capsys):
    out = tmp_path / "low"
    main(["degrade", str(photo_dir / "camera.png"), "--bits", "2", "--out", str(out)])
    csv_path = tmp_path / "m.csv"
    assert main(["metrics", str(photo_dir / "camera.png"), str(out), "--csv", str(csv_path)]) == 0
    expected = psnr(data.camera()[:80, :64], quantize(data.camera()[:80, :64], 2))
    assert f"{expected:.2f}" in capsys.readouterr().out
    assert csv_path.read_text().splitlines()[0] == "test,plane,psnr_db,ssim"


def test_errors_exit_with_code_2_and_a_message(photo_dir, tmp_path, capsys):
    assert main(["degrade", str(photo_dir), "--bits", "9", "--out", str(tmp_path)]) == 2
    assert "bits must be between 1 and 7" in capsys.readouterr().err
    assert main(["metrics", str(photo_dir / "camera.png"), str(tmp_path / "missing.png")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_python_dash_m_runs_the_same_cli():
    result = subprocess.run(
        [sys.executable, "-m", "napari_compand", "degrade", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--halftone" in result.stdout and "floyd-steinberg" in result.stdout


def test_restore_folder_with_a_zoo_model(tmp_path, capsys):
    from napari_compand.evaluation import baseline
    from napari_compand.inference import restore

    folder = tmp_path / "ht"
    folder.mkdir()
    clean = data.astronaut()[:256, :256]
    iio.imwrite(folder / "astro.png", halftone(clean, rgb=True))
    iio.imwrite(folder / "cam.png", halftone(data.camera()[:128, :160]))
    out = tmp_path / "restored"
    args = ["restore", str(folder), "--model", "inverse-halftone/conv1_1", "--out", str(out)]
    assert main(args) == 0
    restored = iio.imread(out / "astro_inverse-halftone_conv1_1.png")
    np.testing.assert_array_equal(
        restored, restore(halftone(clean, rgb=True), "inverse-halftone/conv1_1")
    )
    blurred = baseline("gaussian", None)(halftone(clean, rgb=True))
    assert psnr(clean, restored, rgb=True) > psnr(clean, blurred, rgb=True)
    assert iio.imread(out / "cam_inverse-halftone_conv1_1.png").shape == (128, 160)
    assert "[2/2]" in capsys.readouterr().out


def _three_bit_folder(tmp_path, model: str) -> tuple[np.ndarray, Path, list[str]]:
    """A folder with one 3-bit image: ``(the image, the output folder, restore's args)``."""
    folder = tmp_path / "low"
    folder.mkdir()
    low = quantize(data.astronaut()[:96, :128], 3)
    iio.imwrite(folder / "astro.png", low)
    out = tmp_path / "restored"
    return low, out, ["restore", str(folder), "--model", model, "--out", str(out)]


def test_restore_consistent_keeps_pixels_in_their_bins(tmp_path):
    low, out, args = _three_bit_folder(tmp_path, "expand-3bit/conv1_1")
    assert main([*args, "--consistent"]) == 0
    restored = iio.imread(out / "astro_expand-3bit_conv1_1_consistent.png")
    np.testing.assert_array_equal(quantize(restored, 3), low)
    args[3] = "inverse-halftone/conv1_1"
    assert main([*args, "--consistent"]) == 2


def test_restore_self_ensemble_views(tmp_path):
    low, out, args = _three_bit_folder(tmp_path, "expand-3bit/resunet")
    assert main(args) == 0  # the model's default: 2 views
    np.testing.assert_array_equal(
        iio.imread(out / "astro_expand-3bit_resunet.png"),
        restore(low, "expand-3bit/resunet", self_ensemble=2),
    )
    assert main([*args, "--self-ensemble"]) == 0  # the flag alone: 8
    np.testing.assert_array_equal(
        iio.imread(out / "astro_expand-3bit_resunet_x8.png"),
        restore(low, "expand-3bit/resunet", self_ensemble=8),
    )
    assert main([*args, "--self-ensemble", "1"]) == 0
    assert (out / "astro_expand-3bit_resunet_x1.png").is_file()
    with pytest.raises(SystemExit):  # argparse: 3 is not a choice
        main([*args, "--self-ensemble", "3"])


def test_restore_unknown_model_is_a_clear_error(photo_dir, tmp_path, capsys):
    args = ["restore", str(photo_dir), "--model", "nope", "--out", str(tmp_path / "o")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "'nope' is neither a model of the zoo nor a checkpoint file" in err
    assert "expand-3bit/conv1_1" in err
    retired = ["restore", str(photo_dir), "--model", "expand-2bit/conv1_1-pixel"]
    assert main([*retired, "--out", str(tmp_path / "o")]) == 2
    assert "retired from the zoo; use 'expand-2bit/resunet'" in capsys.readouterr().err


def test_models_lists_the_zoo(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("inverse-halftone/conv1_1", "inverse-halftone/conv5_1", "expand-3bit/conv1_1"):
        assert f"| {name} |" in out
    rows = {line.split(" | ")[0].lstrip("| "): line for line in out.splitlines()}
    # the paper's Table III beside its conv1_1 model; nothing beside our pixel-loss ResUNet
    assert rows["inverse-halftone/conv1_1"].endswith("| 31.43 dB / 0.91 |")
    assert rows["expand-3bit/conv2_1"].endswith("| 30.00 dB / 0.88 |")  # Table II
    assert rows["inverse-halftone/resunet"].endswith("| - |")


def test_train_stops_with_a_checkpoint_on_sigterm(photo_dir, tmp_path):
    """``kill`` (SIGTERM) and Ctrl-C end a run with a resumable checkpoint."""
    import signal
    import time

    from napari_compand.checkpoints import load_checkpoint

    out = tmp_path / "m.safetensors"
    command = [  # a run far too long to finish
        sys.executable, "-m", "napari_compand", "train", "--data", str(photo_dir),
        "--task", "expand", "--bits", "3", "--iterations", "100000", "--batch-size", "2",
        "--crop-size", "32", "--ngf", "4", "--depth", "3", "--max-channels", "8",
        "--checkpoint-every", "0", "--validate-every", "0", "--device", "cpu", "--out", str(out),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    lines = []
    while time.monotonic() < deadline:  # wait until iterations run
        line = process.stderr.readline()
        lines.append(line)
        if "it/s" in line or "s/it" in line:
            break
    time.sleep(1)
    process.send_signal(signal.SIGTERM)
    out_text, err = process.communicate(timeout=120)
    assert process.returncode == 130, "".join(lines) + err
    assert "stopped: checkpoint of iteration" in out_text
    done = load_checkpoint(out).metadata["iterations_done"]
    assert 0 < done < 100000


def test_a_1_bit_halftone_file_is_restored(tmp_path):
    """1-bit PNGs (how halftones are usually stored) read as booleans; they are halftones."""
    from PIL import Image

    from napari_compand._io import read_image
    from napari_compand.degrade import detect_degradation

    photo = data.camera()[100:228, 150:278]
    dots = halftone(photo)
    Image.fromarray(dots > 0).convert("1").save(tmp_path / "dots.png")
    assert iio.imread(tmp_path / "dots.png").dtype == bool
    read = read_image(tmp_path / "dots.png")
    assert read.dtype == np.uint8 and (read == dots).all()
    assert detect_degradation(dots > 0).mode.value == "halftone"  # arrays too
    out = tmp_path / "out"
    assert main(["restore", str(tmp_path / "dots.png"), "--out", str(out)]) == 0
    (restored,) = [read_image(p) for p in out.iterdir()]
    assert restored.dtype == np.uint8 and restored.shape == photo.shape
    from napari_compand.evaluation import baseline
    from napari_compand.metrics import psnr

    assert psnr(photo, restored) > psnr(photo, baseline("gaussian", None)(dots)) + 1


def test_restore_auto_picks_a_model_per_image_from_its_pixels(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    photo = data.astronaut()[:64, :64]
    iio.imwrite(inputs / "scan.png", halftone(photo))
    iio.imwrite(inputs / "low.png", quantize(photo, 4))
    iio.imwrite(inputs / "dots.png", halftone(data.astronaut()[:128, :128], "bayer-8x8"))
    iio.imwrite(inputs / "fine.png", halftone(data.astronaut()[:256, :256], "stucki"))
    out = tmp_path / "out"
    assert main(["restore", str(inputs), "--out", str(out)]) == 0  # --model auto
    from napari_compand import zoo
    from napari_compand.degrade import Degradation

    names = sorted(p.name for p in out.iterdir())
    slug = lambda name: name.replace("/", "_")  # noqa: E731
    bayer = zoo.default_model(
        "inverse-halftone", halftone=Degradation("halftone", method="bayer-8x8")
    )
    assert bayer == "inverse-halftone/resunet-ordered"  # recognised from the pixels
    stucki = zoo.default_model(
        "inverse-halftone", halftone=Degradation("halftone", method="stucki")
    )
    assert stucki == "inverse-halftone/resunet-mix"  # so is the error-diffusion kernel
    assert names == [
        f"dots_{slug(bayer)}.png",
        f"fine_{slug(stucki)}.png",
        f"low_{slug(zoo.default_model('expand', 4))}.png",
        f"scan_{slug(zoo.default_model('inverse-halftone'))}.png",
    ]
    assert (
        main(
            [
                "restore",
                str(inputs / "low.png"),
                "--model",
                "expand-3bit/conv1_1",
                "--out",
                str(tmp_path / "o2"),
            ]
        )
        == 0
    )
    assert "looks like 4-bit data, but expand-3bit/conv1_1 expects 3-bit" in capsys.readouterr().err
    iio.imwrite(inputs / "clean.png", photo)
    assert main(["restore", str(inputs / "clean.png"), "--out", str(tmp_path / "o3")]) == 2
    assert "choose a model with --model" in capsys.readouterr().err


@pytest.mark.parametrize(
    "code, absent",
    [
        ("import napari_compand.cli as c; c.build_parser()", ("torch", "numba", "scipy")),
        ("import napari_compand.degrade", ("torch",)),
        ("import napari_compand.metrics", ("torch",)),
        ("import napari_compand.vocabulary", ("torch", "numba", "scipy", "numpy")),
        ("import napari_compand.training", ("torch",)),
    ],
    ids=["cli-parser", "degrade", "metrics", "vocabulary", "training-package"],
)
def test_light_imports_stay_light(code, absent):
    """``napari-compand --help`` and the classical core never load torch."""
    probe = f"import sys; {code}; print([m for m in {absent!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_halftone_names_match_the_kernels():
    from napari_compand._diffusion import DIFFUSION_KERNELS
    from napari_compand.vocabulary import DIFFUSION_METHODS

    assert tuple(DIFFUSION_KERNELS) == DIFFUSION_METHODS


def test_command_line_messages_name_the_problem(photo_dir, tmp_path, capsys):
    camera = str(photo_dir / "camera.png")
    assert main(["degrade", camera, "--bits", "0", "--out", str(tmp_path / "o")]) == 2
    assert "1-7 for uint8" in capsys.readouterr().err
    missing = str(tmp_path / "mine.safetensors")
    assert main(["restore", camera, "--model", missing, "--out", str(tmp_path / "o")]) == 2
    assert f"checkpoint file not found: {missing}" in capsys.readouterr().err
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert main(["degrade", str(damaged), "--bits", "3", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "damaged, truncated or not an image" in err and "pip install" not in err


def test_metrics_names_and_skips_mismatched_files(photo_dir, tmp_path, capsys):
    tests = tmp_path / "tests"
    tests.mkdir()
    camera = data.camera()[:80, :64]
    iio.imwrite(tests / "a_small.png", camera[:40, :40])
    iio.imwrite(tests / "b_good.png", quantize(camera, 3))
    assert main(["metrics", str(photo_dir / "camera.png"), str(tests)]) == 0
    captured = capsys.readouterr()
    assert "b_good.png" in captured.out and "a_small.png" not in captured.out
    assert "skipped" in captured.err and "a_small.png" in captured.err
    assert "differ in shape" in captured.err
    (tests / "b_good.png").unlink()
    assert main(["metrics", str(photo_dir / "camera.png"), str(tests)]) == 2
