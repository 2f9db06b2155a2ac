"""The Train widget in a real viewer: start, live updates, stop, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_compand.checkpoints import load_checkpoint
from napari_compand.zoo import session_models

from .helpers import smooth_images


@pytest.fixture()
def widget(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    for i, image in enumerate(smooth_images(2, size=48)):
        viewer.add_image(image, name=f"img{i}")
    _, widget = viewer.window.add_plugin_dock_widget("napari-compand", "Train")
    widget._layers.value = [viewer.layers["img0"], viewer.layers["img1"]]
    widget._batch.value = 2
    widget._crop.value = 32
    widget._width.value = 4
    widget._depth.value = 3
    widget._device.value = "cpu"
    widget._out.value = tmp_path / "model.safetensors"
    return widget


def test_start_then_stop_saves_a_checkpoint(widget, qtbot, tmp_path):
    widget._iterations.value = 10_000
    assert widget.start() is not None
    assert not widget._start.enabled and widget._stop.enabled
    qtbot.waitUntil(lambda: widget.progress.value >= 3, timeout=60_000)
    widget.stop()
    qtbot.waitUntil(lambda: widget._start.enabled, timeout=60_000)  # worker finished
    assert widget._start.enabled and not widget._stop.enabled
    path = tmp_path / "model.safetensors"
    done = load_checkpoint(path).metadata["iterations_done"]
    assert 3 <= done < 10_000
    assert path.resolve() in session_models()  # offered to restore tools at once
    # the session model is light (fp16 weights only); the resumable state is kept apart
    light, state = load_checkpoint(path), load_checkpoint(tmp_path / "model.resume.safetensors")
    assert light.optimizer_state is None and state.optimizer_state is not None
    assert state.metadata["iterations_done"] == done
    assert all(
        t.dtype == torch.float16 for t in light.model_state.values() if t.is_floating_point()
    )
    assert path.stat().st_size < (tmp_path / "model.resume.safetensors").stat().st_size / 4
    assert widget.progress.native.text() == f"{widget.progress.value} / 10000 iterations"
    assert "model.resume.safetensors" in widget._status.value
    plot = widget.loss_plot
    last = plot.curves[0][-1][0]
    assert plot.x_ticks() == sorted({0, last // 2, last})  # iteration ticks
    assert not plot.grab().isNull()  # paints axes, ticks, raw and smoothed curves
    assert len(widget.loss_plot.curves[0]) >= 3
    assert {"img0", "img1"} <= set(
        load_checkpoint(path).metadata["data"].split(": ")[1].split(", ")
    )


def test_two_loss_layers_train_one_after_another(widget, qtbot, tmp_path):
    widget._iterations.value = 2
    widget._task.value = "expand"
    widget._bits.value = 2
    widget._loss_layers.value = ["conv1_1", "conv2_1"]
    assert widget.start() is not None
    qtbot.waitUntil(lambda: widget._start.enabled, timeout=120_000)  # worker finished
    qtbot.waitUntil(lambda: len(widget.finished_paths) == 2, timeout=10_000)
    layers = [load_checkpoint(p).metadata["loss_layer"] for p in widget.finished_paths]
    assert layers == ["conv1_1", "conv2_1"]
    assert widget.finished_paths[0].name == "model_conv1_1.safetensors"
    assert load_checkpoint(widget.finished_paths[1]).metadata["bits"] == 2
    assert widget.progress.value == 4


def test_errors_are_shown(widget, qtbot, tmp_path):
    widget._loss_layers.value = []
    assert widget.start() is None
    assert "at least one loss" in widget._status.value
    widget._loss_layers.value = ["pixel"]
    widget._source.value = "folder"
    widget._folder.value = tmp_path  # exists, but holds no images: fails in the worker
    assert widget.start() is not None
    qtbot.waitUntil(lambda: widget._start.enabled, timeout=60_000)  # worker finished
    qtbot.waitUntil(lambda: "training failed" in widget._status.value, timeout=10_000)
    assert "no image files" in widget._status.value
    assert np.isfinite(widget.progress.value)


def test_training_after_napari_opengl_does_not_crash(tmp_path):
    """Mesa's llvmpipe (no GPU driver) loads libLLVM; triton's LLVM would then crash."""
    import subprocess
    import sys

    code = f"""
import napari
viewer = napari.Viewer(show=False)  # OpenGL context first, as in a real session
_, widget = viewer.window.add_plugin_dock_widget("napari-compand", "Train")
from napari_compand.losses import PerceptualLoss
from napari_compand.training import Trainer, TrainingConfig, TrainingImages
from napari_compand.models import ModelConfig
from skimage import data
config = TrainingConfig(iterations=1, batch_size=2, crop_size=32, device="cpu",
                        model=ModelConfig(ngf=4, depth=3, max_channels=8))
images = TrainingImages([data.astronaut()], config.degradation)
updates = list(Trainer(config, images, {str(tmp_path / "m.safetensors")!r}).run())
print("state:", updates[-1].state)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "state: finished" in result.stdout


def test_recipe_controls_reach_the_configs(widget):
    ((config, _),) = widget.configs()
    assert config.model.base.value == "gaussian" and config.model.sigma == 1.2
    assert config.model.arch.value == "resunet" and config.model.widths == (16, 32, 64, 128)
    assert (config.perceptual_weight, config.pixel_weight) == (0, 1)  # the pixel loss
    widget._method.value = "mixed"
    ((config, _),) = widget.configs()
    assert len(config.degradations) == 10
    widget._arch.value = "unet"
    assert not widget._width.native.isHidden() and widget._size.native.isHidden()
    widget._loss_layers.value = ["conv3_1"]
    ((config, _),) = widget.configs()
    assert (config.model.arch.value, config.model.ngf, config.model.depth) == ("unet", 4, 3)
    assert config.loss_layer.value == "conv3_1" and config.perceptual_weight == 1
    assert config.grey_fraction == pytest.approx(0.3) and config.lr_schedule.value == "cosine"
    assert config.noise_fraction == 0
    widget._noisy.value = 0.5
    ((config, _),) = widget.configs()
    assert config.noise_fraction == pytest.approx(0.5) and config.noise_sigma == 10
    assert config.noise_shared == pytest.approx(0.5)
    widget._task.value = "expand"
    widget._bits.value = 2
    widget._grey.value = 0.0
    widget._schedule.value = "constant"
    ((config, _),) = widget.configs()
    assert (config.model.base.value, config.model.bits) == ("bin", 2)
    assert config.grey_fraction == 0 and config.lr_schedule.value == "constant"
    widget._residual.value = False  # the paper's plain U-Net
    ((config, _),) = widget.configs()
    assert config.model.base.value == "none"


def test_smaller_copies_reach_the_training_images(widget, tmp_path):
    import imageio.v3 as iio

    for i, image in enumerate(smooth_images(2)):
        iio.imwrite(tmp_path / f"{i}.png", image)
    widget._source.value = "folder"
    widget._folder.value = str(tmp_path)
    ((config, _),) = widget.configs()
    images, validation = widget._image_source(config)()
    assert len(images) == 2 and validation is None
    widget._copies.value = True
    images, _ = widget._image_source(config)()
    assert len(images) == 6 and "at scales 1, 0.7, 0.5" in images.description
    assert images.images[4].shape[0] == round(images.images[0].shape[0] * 0.5)
    # a held-out file is neither trained on nor copied; it is validated at its own size
    widget._held_out.value = 1
    images, validation = widget._image_source(config)()
    assert len(images) == 3 and len(validation) == 1
    assert "0.png" in images.description and "1.png" in validation.description
    widget._held_out.value = 2
    with pytest.raises(ValueError, match="leave none of the 2 images"):
        widget._image_source(config)


def test_widget_cli_and_config_share_one_recipe(widget):
    """Bounds and defaults are declared once (vocabulary.LIMITS, ModelConfig) and read
    by the config, the command line and the widget."""
    import argparse

    from napari_compand.cli import build_parser
    from napari_compand.models import ModelConfig
    from napari_compand.training.cli import config_from_args
    from napari_compand.vocabulary import HALFTONE_BLUR_SIGMA, LIMITS

    for name, box in [
        ("bits", widget._bits),
        ("iterations", widget._iterations),
        ("batch_size", widget._batch),
        ("crop_size", widget._crop),
        ("ngf", widget._width),
        ("depth", widget._depth),
    ]:
        assert (box.min, box.max) == LIMITS[name], name
    args = build_parser().parse_args(
        ["train", "--data", ".", "--out", "m.safetensors", "--base", "gaussian"]
    )
    assert isinstance(args, argparse.Namespace)
    assert config_from_args(args).model.sigma == HALFTONE_BLUR_SIGMA  # as the widget and zoo
    assert ModelConfig(base="gaussian").sigma == HALFTONE_BLUR_SIGMA
    widget._residual.value = True
    config, _ = widget.configs()[0]
    assert config.model.sigma == HALFTONE_BLUR_SIGMA
    from napari_compand.training import TrainingConfig

    high = LIMITS["batch_size"][1]
    with pytest.raises(ValueError, match=f"between 1 and {high}"):
        TrainingConfig(batch_size=high + 1)


def test_existing_outputs_are_not_replaced_without_asking(widget, qtbot, tmp_path):
    out = tmp_path / "model.safetensors"
    out.write_bytes(b"the user's earlier model")
    widget._iterations.value = 2
    assert widget.start() is None  # refused before any work
    assert "exists already" in widget._status.value
    assert "replace existing files" in widget._status.value
    assert out.read_bytes() == b"the user's earlier model"
    # the resumable state beside it counts too
    out.unlink()
    (tmp_path / "model.resume.safetensors").write_bytes(b"state")
    assert widget.start() is None
    assert "model.resume.safetensors exists already" in widget._status.value
    # an image name is never a checkpoint name
    widget._out.value = tmp_path / "photo.png"
    assert widget.start() is None
    assert ".safetensors" in widget._status.value
    assert not (tmp_path / "photo.png").exists()
    # ticking the box allows it; then the next run proposes a fresh name
    widget._out.value = out
    widget._replace.value = True
    assert widget.start() is not None
    qtbot.waitUntil(lambda: widget._start.enabled, timeout=120_000)
    assert load_checkpoint(out).metadata["iterations_done"] == 2
    assert load_checkpoint(tmp_path / "model.resume.safetensors").optimizer_state is not None
    assert widget._out.value == tmp_path / "model_2.safetensors"


def test_unused_path_skips_companions(tmp_path):
    from napari_compand._io import unused_path

    assert unused_path(tmp_path / "m.safetensors") == tmp_path / "m.safetensors"
    (tmp_path / "m.safetensors").touch()
    (tmp_path / "m_2.x").touch()  # a companion of m_2
    companions = lambda p: (p.with_suffix(".x"),)  # noqa: E731
    assert unused_path(tmp_path / "m.safetensors", companions) == tmp_path / "m_3.safetensors"


def test_held_out_images_keep_the_best_weights(widget, qtbot, tmp_path):
    from napari_compand.checkpoints import read_metadata

    widget._held_out.value = 1
    widget._iterations.value = 4
    ((config, _),) = widget.configs()
    assert config.validate_every == 1  # ten validations per run, at least one per iteration
    assert widget.start() is not None
    qtbot.waitUntil(lambda: widget._start.enabled, timeout=120_000)  # worker finished
    best = tmp_path / "model-best.safetensors"
    assert widget.best_paths == [best]
    meta = read_metadata(best)
    scores = [v["psnr"] for v in read_metadata(tmp_path / "model.safetensors")["validation"]]
    assert len(scores) == 4 and meta["best"]["psnr"] == max(scores)
    assert meta["best"]["iteration"] == 1 + scores.index(max(scores))
    assert "the last 1 of their 2 planes" in meta["validation_data"]
    assert "without the last 1" in meta["data"]
    light = load_checkpoint(best)
    assert light.optimizer_state is None
    assert all(t.dtype == torch.float16 for t in light.model_state.values())
    assert not (tmp_path / "model.resume-best.safetensors").exists()  # only while training
    assert best.resolve() in session_models()
    assert "best validation: model-best.safetensors (" in widget._status.value
    # the next run proposes a name whose best file is free too, and a kept best is protected
    assert widget._out.value == tmp_path / "model_2.safetensors"
    widget._out.value = tmp_path / "other.safetensors"
    (tmp_path / "other-best.safetensors").write_bytes(b"the user's file")
    assert widget.start() is None
    assert "other-best.safetensors exists already" in widget._status.value
    assert (tmp_path / "other-best.safetensors").read_bytes() == b"the user's file"


def test_too_many_held_out_images_are_refused(widget):
    widget._held_out.value = 2  # the fixture's two layers hold two planes
    assert widget.start() is None
    assert "leave none of the 2 image planes" in widget._status.value


def test_crop_workers_train_the_same_run_in_worker_processes(widget, qtbot, tmp_path):
    """The crop-workers box reaches the trainer; its processes end with the run."""
    import multiprocessing

    widget._iterations.value = 3
    widget._workers.value = 1
    assert widget.start() is not None
    qtbot.waitUntil(lambda: widget._start.enabled, timeout=120_000)  # worker finished
    assert widget._queue_holder[0].current.workers == 1
    assert widget._queue_holder[0].current.data_seconds > 0
    qtbot.waitUntil(lambda: len(widget.finished_paths) == 1, timeout=10_000)
    done = load_checkpoint(widget.finished_paths[0]).metadata["iterations_done"]
    assert done == 3
    qtbot.waitUntil(lambda: not multiprocessing.active_children(), timeout=10_000)
