"""Training engine: config checks, learning, stop/resume, checkpoints, CLI, torchrun."""

from __future__ import annotations

import pickle
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from napari_compand._device import resolve_device
from napari_compand.checkpoints import (
    CheckpointError,
    average_weights,
    export_weights,
    int8_rows,
    load_checkpoint,
    quantize_weights,
)
from napari_compand.cli import main
from napari_compand.metrics import psnr
from napari_compand.models import ModelConfig
from napari_compand.training import (
    Progress,
    StateChange,
    Trainer,
    TrainingConfig,
    TrainingImages,
    Validation,
    best_path,
)
from napari_compand.training.data import batch_rng, to_tensor

from .helpers import smooth_images

TINY = ModelConfig(ngf=8, depth=3, max_channels=16)


def tiny_config(**changes):
    settings = dict(
        task="inverse-halftone",
        loss_layer="conv1_1",
        crop_size=32,
        batch_size=4,
        iterations=6,
        lr=1e-3,
        validate_every=0,
        checkpoint_every=0,
        device="cpu",
        model=TINY,
    )
    settings.update(changes)
    return TrainingConfig(**settings)


def images_for(config, count=3):
    return TrainingImages(smooth_images(count), config.degradations, config.model.channels)


# --- config ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, error, match",
    [
        ({"bits": 0}, ValueError, "bits must be between 1 and 7"),
        ({"halftone_method": "dots"}, ValueError, "valid methods"),
        ({"loss_layer": "conv6_1"}, ValueError, "conv1_1, conv2_1"),
        ({"task": "denoise"}, ValueError, "expand, inverse-halftone"),
        ({"crop_size": 8}, ValueError, "crop_size must be between"),
        ({"iterations": 2.5}, TypeError, "iterations must be an integer"),
        ({"lr": 0}, ValueError, "lr must be"),
        (
            {"batch_size": 1, "crop_size": 16, "model": ModelConfig(depth=4)},
            ValueError,
            "BatchNorm",
        ),
        ({"device": "tpu"}, ValueError, "auto, cpu, cuda, mps"),
        ({"noise_fraction": -0.1}, ValueError, "noise_fraction must be in"),
        ({"noise_sigma": 0}, ValueError, "noise_sigma must be in"),
        (
            {
                "halftone_method": "ordered",
                "noise_fraction": 0.5,
                "model": ModelConfig(
                    arch="resunet", widths=(4, 8), blocks=(1, 1), threshold_map=True
                ),
            },
            ValueError,
            "noise_fraction 0 with a threshold-map model",
        ),
    ],
)
def test_config_rejects_bad_values(changes, error, match):
    with pytest.raises(error, match=match):
        tiny_config(**changes)


def test_config_round_trips_through_json_form():
    config = tiny_config(
        task="expand", bits=2, loss_after_relu=False, model=ModelConfig(base="midbin", bits=2)
    )
    assert TrainingConfig.from_dict(config.to_dict()) == config
    loss = Trainer(config, images_for(config)).loss_fn
    assert not loss.after_relu and isinstance(loss.features[-1], torch.nn.Conv2d)
    with pytest.raises(ValueError, match="unknown training settings"):
        TrainingConfig.from_dict({**config.to_dict(), "epochs": 3})


def test_missing_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="'cuda' was requested but is not available"):
        resolve_device("cuda")
    assert resolve_device("auto").type in ("cpu", "mps")


# --- data -----------------------------------------------------------------------


def test_batches_are_degraded_crops_and_repeatable():
    config = tiny_config()
    data = images_for(config)
    rng = np.random.default_rng([0, 0, 5])
    inputs, targets = data.sample(rng, 4, 32)
    assert inputs.shape == targets.shape == (4, 3, 32, 32)
    assert set(torch.unique(inputs).tolist()) <= {0.0, 1.0}  # halftone
    assert float(targets.std()) > 0
    again = data.sample(np.random.default_rng([0, 0, 5]), 4, 32)
    assert torch.equal(again[0], inputs) and torch.equal(again[1], targets)


def test_to_tensor_is_planes_over_255_wherever_it_is_converted():
    batch = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    planes = to_tensor(batch)
    assert planes.shape == (2, 3, 5, 7) and planes.dtype == torch.float32
    assert planes.is_contiguous()
    expected = torch.from_numpy(batch.transpose(0, 3, 1, 2).astype(np.float32) / 255)
    assert torch.equal(planes, expected)
    assert torch.equal(to_tensor(batch, "cpu"), planes)


def test_crops_asked_for_on_a_device_are_the_same_crops():
    """``sample(device=...)`` (the trainer asks for its own device: on a GPU the uint8 crops
    are converted there) gives the crops of a plain call, threshold maps and noise too."""
    config = tiny_config(halftone_method="ordered", model=replace(RES_TINY, threshold_map=True))
    data = TrainingImages(smooth_images(2), config.degradations, 3)
    options = {"grey_fraction": 0.5, "threshold_map": True, "noise_fraction": 0.5}
    plain = data.sample(np.random.default_rng(9), 4, 32, **options)
    placed = data.sample(np.random.default_rng(9), 4, 32, device="cpu", **options)
    assert plain[0].shape == (4, 4, 32, 32)
    assert all(torch.equal(a, b) for a, b in zip(plain, placed, strict=True))


def test_batches_made_by_worker_processes_are_the_batches_of_the_loop():
    """``batches(workers=2)`` makes in two processes exactly the batches :meth:`sample`
    draws in the loop for the same iterations: threshold maps, grey and noisy crops too."""
    config = tiny_config(halftone_method="ordered", model=replace(RES_TINY, threshold_map=True))
    data = TrainingImages(smooth_images(2), config.degradations, 3)
    options = {"grey_fraction": 0.5, "threshold_map": True, "noise_fraction": 0.5}
    expected = [
        data.sample(batch_rng(3, 1, iteration), 4, 32, **options) for iteration in (7, 8, 9, 10)
    ]
    stream = data.batches(3, 1, 7, 4, 32, workers=2, **options)
    made = [next(stream) for _ in expected]
    stream.close()
    assert made[0][0].shape == (4, 4, 32, 32)
    for (inputs, targets), (want_in, want_target) in zip(made, expected, strict=True):
        assert torch.equal(inputs, want_in) and torch.equal(targets, want_target)
    with pytest.raises(ValueError, match="workers must be 0 or more"):
        next(data.batches(3, 1, 0, 4, 32, workers=-1))


def test_grey_training_images_and_small_images_are_handled():
    config = tiny_config(
        task="expand", bits=2, model=ModelConfig(channels=1, ngf=8, depth=3, max_channels=16)
    )
    data = TrainingImages([smooth_images(1, size=20)[0]], config.degradation, channels=1)
    inputs, targets = data.sample(np.random.default_rng(0), 2, 32)  # crop larger than image
    assert inputs.shape == (2, 1, 32, 32)
    levels = torch.unique(torch.round(inputs * 255)).tolist()
    assert set(levels) <= {0.0, 64.0, 128.0, 192.0}


def test_grey_fraction_makes_grey_crops_for_colour_models():
    config = tiny_config()
    data = images_for(config)
    assert not torch.equal(*data.sample(np.random.default_rng(1), 4, 32)[1][:, :2].unbind(1))
    inputs, targets = data.sample(np.random.default_rng(1), 4, 32, grey_fraction=1.0)
    for batch in (inputs, targets):  # the same grey plane in every channel
        assert torch.equal(batch[:, 0], batch[:, 1]) and torch.equal(batch[:, 1], batch[:, 2])
    assert set(torch.unique(inputs).tolist()) <= {0.0, 1.0}  # halftoned as grey
    mixed = data.sample(np.random.default_rng(2), 64, 16, grey_fraction=0.5)[1]
    grey = [bool(torch.equal(t[0], t[1])) for t in mixed]
    assert 16 < sum(grey) < 48
    with pytest.raises(ValueError, match="grey_fraction"):
        tiny_config(grey_fraction=1.5)


def test_noisy_crops_are_noisy_targets_degraded_as_given():
    config = tiny_config(task="expand", bits=4, model=ModelConfig(base="midbin", bits=4))
    data = images_for(config)
    clean_in, clean = data.sample(np.random.default_rng(3), 8, 32, grey_fraction=0.5)
    inputs, targets = data.sample(
        np.random.default_rng(3), 8, 32, grey_fraction=0.5, noise_fraction=1.0, noise_sigma=6
    )
    levels = torch.round(targets * 255)
    assert torch.equal(torch.round(inputs * 255), torch.div(levels, 16, rounding_mode="floor") * 16)
    # the noise: about 6 / sqrt(3) levels on average over sigma ~ U(0, 6), at most a few crops
    # nearly clean (smooth images, so the difference is the noise, not the crop)
    difference = (levels - torch.round(clean * 255)).std(dim=(1, 2, 3))
    assert 1.0 < float(difference.mean()) < 6.0
    # a grey crop stays grey: the same noise in every channel
    greys = [n for n in range(8) if torch.equal(clean[n, 0], clean[n, 1])]
    assert greys, "grey_fraction 0.5 should give a grey crop among 8"
    for n in greys:
        assert torch.equal(targets[n, 0], targets[n, 1]) and torch.equal(inputs[n, 1], inputs[n, 2])
    # without noise, the crops (and the random stream) are those of a run without the option
    same = data.sample(np.random.default_rng(3), 8, 32, grey_fraction=0.5, noise_fraction=0.0)
    assert torch.equal(same[0], clean_in) and torch.equal(same[1], clean)


def test_shared_noise_is_one_field_for_all_channels():
    config = tiny_config(task="expand", bits=4, model=ModelConfig(base="midbin", bits=4))
    data = images_for(config)
    _, clean = data.sample(np.random.default_rng(5), 8, 32)
    noise = {}
    for shared in (0.0, 1.0):
        _, targets = data.sample(
            np.random.default_rng(5), 8, 32, noise_fraction=1.0, noise_sigma=8, noise_shared=shared
        )
        noise[shared] = torch.round(targets * 255) - torch.round(clean * 255)
    # away from clipping (levels 8..247), the channels of a crop got the same noise
    inside = ((clean * 255 > 8) & (clean * 255 < 247)).all(dim=1)
    for n in range(8):
        same = noise[1.0][n, 0] == noise[1.0][n, 2]
        assert bool(same[inside[n]].all())
    # independent noise per channel differs between channels on most pixels of a noisy crop
    agree = (noise[0.0][:, 0] == noise[0.0][:, 2])[inside].float().mean()
    assert float(agree) < 0.6
    with pytest.raises(ValueError, match="noise_shared must be in"):
        tiny_config(noise_shared=1.5)


def test_noise_settings_are_part_of_the_recipe(tmp_path):
    config = tiny_config(iterations=2, noise_fraction=0.5, noise_sigma=4.0, noise_shared=0.5)
    list(Trainer(config, images_for(config), tmp_path / "n.safetensors").run())
    recipe = load_checkpoint(tmp_path / "n.safetensors").metadata["recipe"]
    assert recipe["noise_fraction"] == 0.5 and recipe["noise_sigma"] == 4.0
    assert recipe["noise_shared"] == 0.5
    assert TrainingConfig.from_dict(recipe) == config


# --- learning -------------------------------------------------------------------


def test_loss_falls_in_a_tiny_training_run():
    config = tiny_config(iterations=60)
    trainer = Trainer(config, images_for(config))
    losses = [u.loss for u in trainer.run() if isinstance(u, Progress)]
    assert len(losses) == 60
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])


@pytest.mark.parametrize("native_bf16", [True, False])
def test_mixed_precision_on_the_cpu(native_bf16, monkeypatch):
    """amp trains in bf16 on a CPU that computes it natively (not on one that emulates
    it, nor with amp off); the weights stay float32 and validation scores in float32."""
    from napari_compand import _device

    monkeypatch.setattr(_device, "cpu_has_native_bf16", lambda: native_bf16)
    config = tiny_config(loss_layer="conv1_1", perceptual_weight=0.0, pixel_weight=1.0)
    data = images_for(config)
    seen: list[torch.dtype] = []
    for amp in (True, False):
        trainer = Trainer(replace(config, amp=amp), data, val_data=data)
        assert trainer.mixed_precision == (amp and native_bf16)
        expected = "bf16 mixed" if amp and native_bf16 else "float32"
        assert trainer.metadata()["precision"] == expected  # what ran, not what was asked
        seen.clear()
        first = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
        hook = first.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
        trainer.step(*data.sample(np.random.default_rng(0), 4, 32))
        assert seen == [torch.bfloat16 if amp and native_bf16 else torch.float32]
        assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
        seen.clear()
        scored = trainer.validate()
        assert seen[0] == torch.float32
        hook.remove()
        inputs, targets = trainer._val_batch
        with torch.inference_mode():
            restored = trainer.model.eval()(inputs).clamp(0, 1)
        expected = np.mean(
            [psnr(_uint8(t), _uint8(r), rgb=True) for t, r in zip(targets, restored, strict=True)]
        )
        assert scored.psnr == pytest.approx(expected, abs=1e-9)


def _uint8(image: torch.Tensor) -> np.ndarray:
    return (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def test_updates_and_validation(tmp_path):
    config = tiny_config(iterations=4, validate_every=2, checkpoint_every=2)
    data = images_for(config)
    updates = list(Trainer(config, data, tmp_path / "m.safetensors", val_data=data).run())
    kinds = [type(u).__name__ if not isinstance(u, StateChange) else u.state for u in updates]
    validation = [u for u in updates if isinstance(u, Validation)]
    improved = ["best"] if validation[1].psnr > validation[0].psnr else []
    assert kinds == [
        "started",
        "Progress",
        "Progress",
        "Validation",
        "best",  # the first validation is the best so far
        "checkpoint",
        "Progress",
        "Progress",
        "Validation",
        *improved,
        "finished",
    ]
    progress = [u for u in updates if isinstance(u, Progress)]
    assert [p.iteration for p in progress] == [1, 2, 3, 4]
    assert progress[-1].eta_s == 0 and all(p.images_per_s > 0 for p in progress)
    assert all(0 < v.psnr < 60 and 0 < v.ssim <= 1 for v in validation)


def test_the_best_validation_keeps_its_weights(tmp_path, monkeypatch):
    config = tiny_config(iterations=6, validate_every=2)
    data = images_for(config)
    out = tmp_path / "m.safetensors"
    scores = iter([20.0, 25.0, 22.0])  # iterations 2, 4, 6: the best is in the middle
    weights = {}
    measure = Trainer.validate

    def scripted(self):
        result = replace(measure(self), psnr=next(scores))
        self.history[-1]["psnr"] = result.psnr
        weights[result.iteration] = {k: v.clone() for k, v in self.model.state_dict().items()}
        return result

    monkeypatch.setattr(Trainer, "validate", scripted)
    updates = list(Trainer(config, data, out, val_data=data).run())
    best = [u for u in updates if isinstance(u, StateChange) and u.state == "best"]
    assert [u.iteration for u in best] == [2, 4]
    assert best[-1].path == best_path(out) == tmp_path / "m-best.safetensors"
    assert "25.00 dB, the best so far" in best[-1].message
    kept = load_checkpoint(best_path(out))
    assert kept.metadata["best"] == {
        "iteration": 4,
        "psnr": 25.0,
        "ssim": pytest.approx(kept.metadata["validation"][1]["ssim"]),
    }
    assert kept.optimizer_state is None  # weights to use, not a run to resume
    assert all(torch.equal(kept.model_state[k], v) for k, v in weights[4].items())
    last = load_checkpoint(out).model_state
    assert not all(torch.equal(last[k], v) for k, v in weights[4].items())


def test_no_best_file_without_validation(tmp_path):
    config = tiny_config(iterations=2)
    list(Trainer(config, images_for(config), tmp_path / "m.safetensors").run())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def test_stop_then_resume_matches_an_uninterrupted_run(tmp_path):
    config = tiny_config(iterations=6)
    straight = Trainer(config, images_for(config), tmp_path / "straight.safetensors")
    list(straight.run())

    first = Trainer(config, images_for(config), tmp_path / "part.safetensors")
    updates = []
    for update in first.run():
        updates.append(update)
        if isinstance(update, Progress) and update.iteration == 3:
            first.stop()
    assert updates[-1].state == "stopped" and updates[-1].iteration == 3
    assert load_checkpoint(tmp_path / "part.safetensors").metadata["iterations_done"] == 3

    resumed = Trainer(
        config,
        images_for(config),
        tmp_path / "part.safetensors",
        resume=tmp_path / "part.safetensors",
    )
    assert resumed.iteration == 3
    progress = [u.iteration for u in resumed.run() if isinstance(u, Progress)]
    assert progress == [4, 5, 6]
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    params = zip(straight.model.parameters(), resumed.model.parameters(), strict=True)
    for a, b in params:
        assert torch.equal(
            straight.optimizer.state[a]["exp_avg"], resumed.optimizer.state[b]["exp_avg"]
        )
        assert torch.equal(straight.optimizer.state[a]["step"], resumed.optimizer.state[b]["step"])


def test_worker_processes_train_the_same_weights_and_stop_with_the_run(tmp_path):
    """A trainer whose batches come from worker processes ends with the weights of one
    that makes them in its loop; stopping the run stops the processes."""
    import multiprocessing

    config = tiny_config(iterations=4)
    in_loop = Trainer(config, images_for(config))
    list(in_loop.run())
    ahead = Trainer(config, images_for(config), workers=2)
    for update in ahead.run():
        if isinstance(update, Progress) and update.iteration == 2:
            assert len(multiprocessing.active_children()) >= 2  # the workers run
    for key, value in in_loop.model.state_dict().items():
        assert torch.equal(value, ahead.model.state_dict()[key]), key
    assert ahead.data_seconds > 0

    stopped = Trainer(config, images_for(config), workers=2)
    updates = []
    for update in stopped.run():
        updates.append(update)
        if isinstance(update, Progress) and update.iteration == 1:
            stopped.stop()
    assert updates[-1].state == "stopped" and updates[-1].iteration == 1
    for child in multiprocessing.active_children():
        child.join(timeout=10)
    assert multiprocessing.active_children() == []
    with pytest.raises(ValueError, match="workers must be 0 or more"):
        Trainer(config, images_for(config), workers=-1)


def test_resume_needs_the_same_recipe(tmp_path):
    config = tiny_config(iterations=2)
    list(Trainer(config, images_for(config), tmp_path / "a.safetensors").run())
    other = tiny_config(iterations=4, loss_layer="conv2_1")
    with pytest.raises(CheckpointError, match="loss_layer"):
        Trainer(other, images_for(other), resume=tmp_path / "a.safetensors")


def test_warm_start_copies_weights_and_checks_architecture(tmp_path):
    config = tiny_config(iterations=2)
    source = Trainer(config, images_for(config), tmp_path / "a.safetensors")
    list(source.run())
    conv5 = tiny_config(iterations=1, loss_layer="conv5_1", seed=7)
    warm = Trainer(conv5, images_for(conv5), init=tmp_path / "a.safetensors")
    for key, value in source.model.state_dict().items():
        assert torch.equal(value, warm.model.state_dict()[key])
    assert warm.iteration == 0 and warm.metadata()["init"].endswith("a.safetensors")
    wider = tiny_config(model=ModelConfig(ngf=16, depth=3, max_channels=16))
    with pytest.raises(CheckpointError, match="same architecture"):
        Trainer(wider, images_for(wider), init=tmp_path / "a.safetensors")


def test_a_grey_model_warm_starts_from_a_colour_one(tmp_path):
    """Its first run restores grey images as the colour model did (three equal channels)."""
    config = tiny_config(iterations=3)
    source = Trainer(config, images_for(config), tmp_path / "colour.safetensors")
    list(source.run())
    grey = tiny_config(iterations=1, model=replace(TINY, channels=1))
    warm = Trainer(grey, images_for(grey), init=tmp_path / "colour.safetensors")
    assert warm.model.config.channels == 1
    assert warm.metadata()["init"].endswith("colour.safetensors")
    x = torch.rand(2, 1, 32, 32)
    colour, mono = source.model.eval(), warm.model.eval()
    with torch.no_grad():
        expected = colour(x.expand(-1, 3, -1, -1)).mean(1, keepdim=True)
        assert torch.allclose(mono(x), expected, atol=1e-5)
    back = tiny_config(iterations=1)  # but not a colour model from a grey one
    list(Trainer(grey, images_for(grey), tmp_path / "grey.safetensors").run())
    with pytest.raises(CheckpointError, match="same architecture"):
        Trainer(back, images_for(back), init=tmp_path / "grey.safetensors")


def test_a_deeper_resunet_warm_starts_from_a_smaller_one(tmp_path):
    """The grown model starts from the small one's result; a shallower one cannot."""
    small = tiny_config(iterations=2, model=RES_TINY, perceptual_weight=0.0, pixel_weight=1.0)
    source = Trainer(small, images_for(small), tmp_path / "small.safetensors")
    list(source.run())
    big = replace(small, model=replace(RES_TINY, blocks=(2, 3)))
    warm = Trainer(big, images_for(big), tmp_path / "big.safetensors", init=source.out)
    assert warm.model.config.blocks == (2, 3)
    assert warm.metadata()["init"].endswith("small.safetensors")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(warm.model.eval()(x), source.model.eval()(x), atol=1e-6)
    list(warm.run())
    with pytest.raises(CheckpointError, match="fewer blocks"):
        Trainer(small, images_for(small), init=tmp_path / "big.safetensors")


# --- checkpoints ----------------------------------------------------------------


def test_checkpoint_round_trip_and_metadata(tmp_path):
    config = tiny_config(iterations=2, validate_every=1)
    data = images_for(config)
    trainer = Trainer(config, data, tmp_path / "m.safetensors", val_data=data)
    list(trainer.run())
    checkpoint = load_checkpoint(tmp_path / "m.safetensors")
    assert (tmp_path / "m.safetensors").stat().st_mode & 0o044 == 0o044  # readable by others
    meta = checkpoint.metadata
    assert meta["task"] == "inverse-halftone" and meta["halftone_method"] == "floyd-steinberg"
    assert meta["loss_layer"] == "conv1_1" and meta["iterations_done"] == 2
    assert meta["architecture"] == TINY.to_dict()
    assert TrainingConfig.from_dict(meta["recipe"]) == config
    assert len(meta["validation"]) == 2 and meta["package_version"]
    assert meta["precision"] == ("bf16 mixed" if trainer.mixed_precision else "float32")
    model = checkpoint.build_model()
    x = torch.rand(1, 3, 24, 24)
    trainer.model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), trainer.model(x))
    assert checkpoint.optimizer_state is not None
    exported = load_checkpoint(
        export_weights(tmp_path / "m.safetensors", tmp_path / "e.safetensors", half=True)
    )
    assert exported.optimizer_state is None and exported.metadata["dtype"] == "float16"
    assert (tmp_path / "e.safetensors").stat().st_size < (
        tmp_path / "m.safetensors"
    ).stat().st_size / 2


def test_average_weights_is_the_mean_of_one_models_checkpoints(tmp_path):
    config = tiny_config(iterations=2, checkpoint_every=1)
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    list(Trainer(config, images_for(config), first).run())
    list(Trainer(tiny_config(iterations=3, seed=1), images_for(config), second).run())
    mean = load_checkpoint(average_weights([first, second], tmp_path / "m.safetensors"))
    a, b = load_checkpoint(first).model_state, load_checkpoint(second).model_state
    assert set(mean.model_state) == set(a)
    for key, value in mean.model_state.items():
        if value.is_floating_point():
            assert torch.allclose(value, (a[key] + b[key]) / 2, atol=1e-6), key
        else:  # BatchNorm's step counter: the last source's
            assert torch.equal(value, b[key]), key
    # two different networks were averaged
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
    assert mean.optimizer_state is None
    assert mean.metadata["weight_average"] == {
        "files": ["a.safetensors", "b.safetensors"],
        "iterations_done": [2, 3],
        # two runs: where the first's recipe differs from the last's
        "recipe_differences": [{"checkpoint_every": 1, "seed": 0}, {}],
    }
    assert mean.metadata["iterations_done"] == 3  # the last source's record
    half = load_checkpoint(average_weights([first, second], tmp_path / "h.safetensors", True))
    assert half.metadata["dtype"] == "float16"
    with pytest.raises(CheckpointError, match="at least two"):
        average_weights([first], tmp_path / "x.safetensors")
    other = tmp_path / "other.safetensors"
    config = tiny_config(iterations=1, task="expand", bits=3)
    list(Trainer(config, images_for(config), other).run())
    with pytest.raises(CheckpointError, match="differ in task"):
        average_weights([first, other], tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()
    before = second.read_bytes()
    same_file = tmp_path / "." / "b.safetensors"  # another path to a source
    with pytest.raises(CheckpointError, match="one of the checkpoints being read"):
        average_weights([first, second], same_file)
    with pytest.raises(CheckpointError, match="one of the checkpoints being read"):
        export_weights(second, second)
    assert second.read_bytes() == before


def test_int8_files_hold_the_weights_to_half_a_step_at_half_of_fp16s_size(tmp_path):
    config = tiny_config(iterations=2)
    trained, half = tmp_path / "m.safetensors", tmp_path / "h.safetensors"
    list(Trainer(config, images_for(config), trained).run())
    export_weights(trained, half, half=True)
    small = load_checkpoint(quantize_weights(half, tmp_path / "q.safetensors"))
    assert small.metadata["dtype"] == "int8" and small.optimizer_state is None
    assert small.metadata["recipe"] == load_checkpoint(trained).metadata["recipe"]
    original = load_checkpoint(half).model_state
    for name, value in original.items():
        if value.is_floating_point() and value.ndim >= 2:  # quantised: within half a step
            step = value.float().reshape(len(value), -1).abs().amax(1) / 127
            error = (small.model_state[name] - value.float()).reshape(len(value), -1).abs()
            assert (error <= step[:, None] / 2 + 1e-6).all(), name
            assert not torch.equal(small.model_state[name], value.float()), name
        else:
            assert torch.equal(small.model_state[name], value), name
    weights = sum(v.numel() for v in original.values() if v.ndim >= 2)
    saved = half.stat().st_size - (tmp_path / "q.safetensors").stat().st_size
    assert saved > 0.9 * weights  # one byte per weight less
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        a, b = load_checkpoint(half).build_model().float()(x), small.build_model()(x)
    assert 0 < (a - b).abs().max() < 0.05
    # the rows of a zero row, and a scale for a weight that is not there, are caught
    rows, scale = int8_rows(torch.zeros(2, 3))
    assert rows.abs().sum() == 0 and scale.tolist() == [0.0, 0.0]
    with safe_open(str(tmp_path / "q.safetensors"), "pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        header = handle.metadata()
    stray = {**tensors, "scale.nothing": torch.ones(2)}
    save_file(stray, tmp_path / "stray.safetensors", metadata=header)
    with pytest.raises(CheckpointError, match="scales of no weight"):
        load_checkpoint(tmp_path / "stray.safetensors")
    name = next(k for k in tensors if k.startswith("scale."))
    wrong = {**tensors, name: torch.ones(1)}
    save_file(wrong, tmp_path / "wrong.safetensors", metadata=header)
    with pytest.raises(CheckpointError, match="one float32 scale per row"):
        load_checkpoint(tmp_path / "wrong.safetensors")
    with pytest.raises(CheckpointError, match="one of the checkpoints being read"):
        quantize_weights(half, half)


def test_bad_checkpoint_files_are_rejected_without_unpickling(tmp_path):
    config = tiny_config(iterations=1)
    good = tmp_path / "good.safetensors"
    list(Trainer(config, images_for(config), good).run())
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01not a checkpoint" * 10)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, foreign)

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    pickled = tmp_path / "model.pt"
    pickled.write_bytes(pickle.dumps(Exploit()))
    for path, match in [
        (truncated, "corrupt or truncated"),
        (garbage, "not a readable"),
        (foreign, "not a napari-compand checkpoint"),
        (pickled, "not a readable"),
    ]:
        with pytest.raises(CheckpointError, match=match):
            load_checkpoint(path)
    assert not marker.exists()
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.safetensors")


# --- command line ---------------------------------------------------------------


@pytest.fixture()
def image_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(smooth_images(3)):
        iio.imwrite(folder / f"img{i}.png", image)
    return folder


def tiny_cli(folder, out, *extra):
    return [
        "train",
        "--data",
        str(folder),
        "--out",
        str(out),
        "--crop-size",
        "32",
        "--batch-size",
        "2",
        "--ngf",
        "8",
        "--depth",
        "3",
        "--max-channels",
        "16",
        "--device",
        "cpu",
        *extra,
    ]


def test_cli_train_then_resume(image_folder, tmp_path, capsys):
    out = tmp_path / "cli.safetensors"
    assert (
        main(tiny_cli(image_folder, out, "--iterations", "2", "--task", "expand", "--bits", "3"))
        == 0
    )
    printed = capsys.readouterr().out
    assert "trained expand (3-bit) with conv1_1 loss: 2 iterations" in printed
    assert "training on cpu" in printed  # and the precision, where it is bf16
    assert (
        main(
            [
                "train",
                "--data",
                str(image_folder),
                "--out",
                str(out),
                "--resume",
                str(out),
                "--iterations",
                "4",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    meta = load_checkpoint(out).metadata
    assert meta["iterations_done"] == 4 and meta["bits"] == 3


def test_cli_reports_and_protects_the_best_validation_file(image_folder, tmp_path, capsys):
    out = tmp_path / "v.safetensors"
    best_path(out).write_bytes(b"a file of the user's")
    run = tiny_cli(image_folder, out, "--iterations", "2", "--val-data", str(image_folder))
    assert main(run) == 2
    assert "v-best.safetensors exists already" in capsys.readouterr().err
    assert best_path(out).read_bytes() == b"a file of the user's"
    best_path(out).unlink()
    assert main(run) == 0
    printed = capsys.readouterr().out
    assert f"best validation: {best_path(out)} (iteration " in printed
    assert load_checkpoint(best_path(out)).metadata["best"]["iteration"] in (1, 2)


def test_cli_train_errors_are_clear(image_folder, tmp_path, capsys):
    assert main(tiny_cli(image_folder, tmp_path / "x.safetensors", "--bits", "9")) == 2
    assert "bits must be between 1 and 7" in capsys.readouterr().err
    assert main(tiny_cli(image_folder, tmp_path / "y.safetensors", "--workers", "-1")) == 2
    assert "workers must be 0 or more" in capsys.readouterr().err
    assert not (tmp_path / "y.safetensors").exists()


def test_torchrun_two_cpu_processes(image_folder, tmp_path):
    out = tmp_path / "ddp.safetensors"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "napari_compand",
        *tiny_cli(image_folder, out, "--iterations", "3"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    # the ranks' own errors come first, torchrun's summary last
    assert result.returncode == 0, f"{result.stderr[:3000]}\n...\n{result.stderr[-1500:]}"
    meta = load_checkpoint(out).metadata
    assert meta["world_size"] == 2 and meta["iterations_done"] == 3
    assert result.stdout.count("trained inverse-halftone") == 1  # only rank 0 reports


def test_cosine_schedule_decays_to_a_hundredth_and_is_applied():
    config = tiny_config(lr_schedule="cosine", iterations=10)
    rates = [config.lr_at(i) for i in range(11)]
    assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-5)
    assert rates[5] == pytest.approx((1e-3 + 1e-5) / 2)
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))
    assert tiny_config().lr_at(7) == 1e-3  # constant: the paper
    trainer = Trainer(config, TrainingImages(smooth_images(), config.degradation))
    for update in trainer.run():
        if isinstance(update, Progress) and update.iteration == 4:
            break
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(config.lr_at(3))
    with pytest.raises(ValueError, match="unknown lr schedule"):
        tiny_config(lr_schedule="linear")


# --- pixel losses, the ResUNet, in-bin expansion, the halftone mix ----------------

RES_TINY = ModelConfig(arch="resunet", widths=(4, 8), blocks=(1, 1))


@pytest.mark.parametrize("pixel_loss", ["mse", "l1"])
def test_pixel_loss_only_trains_a_resunet_without_vgg(pixel_loss):
    config = tiny_config(
        task="expand",
        bits=3,
        perceptual_weight=0.0,
        pixel_weight=1.0,
        pixel_loss=pixel_loss,
        iterations=40,
        lr=2e-3,
        model=ModelConfig(**{**RES_TINY.to_dict(), "base": "bin", "bits": 3}),
    )
    trainer = Trainer(config, images_for(config))
    assert trainer.loss_fn is None  # no VGG19 built
    inputs, targets = images_for(config).sample(np.random.default_rng(1), 8, 32)
    with torch.no_grad():
        before = torch.nn.functional.mse_loss(trainer.model(inputs), targets)
    list(trainer.run())
    with torch.no_grad():
        after = torch.nn.functional.mse_loss(trainer.model.eval()(inputs), targets)
    assert after < before  # learned something beyond the mid-bin start
    meta = trainer.metadata()
    assert meta["loss"] == pixel_loss and meta["loss_layer"] == "none"
    assert meta["architecture"]["arch"] == "resunet"


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"perceptual_weight": 0.0}, "nothing to learn"),
        ({"pixel_weight": float("nan")}, "finite number"),
        ({"perceptual_weight": float("inf")}, "finite number"),
        ({"pixel_loss": "huber"}, "mse, l1"),
        ({"model": ModelConfig(base="bin", bits=3)}, "bin base needs task 'expand'"),
    ],
)
def test_loss_and_base_settings_are_checked(changes, match):
    with pytest.raises(ValueError, match=match):
        tiny_config(**changes)


def test_mixed_halftones_draw_one_of_ten_methods_per_crop():
    config = tiny_config(halftone_method="mixed")
    assert config.degradation_label == "halftone mix (10 methods)"
    labels = [d.label for d in config.degradations]
    assert "halftone floyd-steinberg serpentine" in labels and "halftone bayer-8x8" in labels
    data = TrainingImages(smooth_images(2), config.degradations)
    data.sample(np.random.default_rng(0), 32, 32)
    kinds = {key[-1] for key in data._cache}
    assert len(kinds) >= 6  # 32 crops drew many of the 10 methods
    # each crop is the method's halftone of the whole (flipped) image, cut at one place
    for key, pair in data._cache.items():
        index, flip_h, flip_v, grey, kind = key
        if not (flip_h or flip_v or grey):
            expected = config.degradations[kind].apply(data.images[index], rgb=True)
            assert np.array_equal(pair.degraded, expected)
    with pytest.raises(ValueError, match="degraded as"):
        Trainer(config, images_for(tiny_config()))  # Floyd-Steinberg data, mixed recipe


@pytest.mark.parametrize(
    ("name", "members"),
    [
        ("ordered", ["halftone bayer-4x4", "halftone bayer-8x8"]),
        (
            "floyd-steinberg-scans",
            ["halftone floyd-steinberg", "halftone floyd-steinberg serpentine"],
        ),
    ],
)
def test_named_halftone_sets_draw_their_members(name, members):
    config = tiny_config(halftone_method=name)
    assert [d.label for d in config.degradations] == members
    assert config.degradation_label == f"halftone {name} (2 methods)"
    data = TrainingImages(smooth_images(2), config.degradations)
    data.sample(np.random.default_rng(0), 16, 32)
    assert {key[-1] for key in data._cache} == {0, 1}
    with pytest.raises(ValueError, match="unknown halftone method"):
        tiny_config(halftone_method="bayer-16x16")


def test_degraded_image_cache_is_bounded():
    config = tiny_config(halftone_method="mixed")
    one = smooth_images(1)[0].nbytes
    data = TrainingImages(smooth_images(3), config.degradations, cache_bytes=3 * one)
    for seed in range(5):
        data.sample(np.random.default_rng(seed), 8, 32)
    assert len(data._cache) <= 3 and data._cached_bytes <= 3 * one


def test_grey_versions_count_their_own_clean_image_in_the_cache():
    config = tiny_config(halftone_method="floyd-steinberg")
    data = TrainingImages(smooth_images(1), config.degradations)
    colour = data.pair(0)
    assert data._cached_bytes == colour.degraded.nbytes  # its clean image is the source's
    grey = data.pair(0, grey=True)
    assert data._cached_bytes == colour.degraded.nbytes + grey.degraded.nbytes + grey.clean.nbytes


def test_freed_memory_is_handed_back_while_versions_are_made(monkeypatch):
    from napari_compand.training import data as data_module

    calls = []
    monkeypatch.setattr(data_module, "release_freed_memory", lambda: calls.append(1))
    config = tiny_config(halftone_method="mixed")
    data = TrainingImages(smooth_images(1), config.degradations)
    data.release_every = 4
    for kind in range(10):
        data.pair(0, kind=kind)
    assert len(calls) == 2  # after the 4th and the 8th new version
    data.pair(0, kind=9)  # cached: nothing new made
    assert len(calls) == 2
    assert data.prepare(threads=1) == 80  # one release per 4 versions made, one at the end
    assert len(calls) == 80 // 4 + 1
    monkeypatch.undo()
    data_module.release_freed_memory()  # the real one runs here without error


def test_prepare_degrades_every_version_ahead_and_batches_stay_the_same():
    config = tiny_config(halftone_method="mixed")
    prepared = TrainingImages(smooth_images(2), config.degradations)
    # 2 images x 2 x 2 flips x colour/grey x 10 halftones
    assert prepared.prepare(threads=2) == 2 * 4 * 2 * 10
    on_demand = TrainingImages(smooth_images(2), config.degradations)
    for seed in range(3):
        a = prepared.sample(np.random.default_rng(seed), 8, 32, grey_fraction=0.5)
        b = on_demand.sample(np.random.default_rng(seed), 8, 32, grey_fraction=0.5)
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert len(prepared._cache) == 160  # sampling found every version ready
    one = smooth_images(1)[0].nbytes
    bounded = TrainingImages(smooth_images(2), config.degradations, cache_bytes=5 * one)
    assert bounded.prepare(threads=2) == 5 and bounded._cached_bytes <= 5 * one


def test_warm_start_across_bit_depths_keeps_weights(tmp_path):
    def config(bits):
        model = ModelConfig(**{**RES_TINY.to_dict(), "base": "bin", "bits": bits})
        return tiny_config(
            task="expand",
            bits=bits,
            perceptual_weight=0,
            pixel_weight=1,
            model=model,
            iterations=1,
        )

    source = Trainer(config(4), images_for(config(4)), tmp_path / "ex4.safetensors")
    list(source.run())
    warm = Trainer(config(2), images_for(config(2)), init=tmp_path / "ex4.safetensors")
    for key, value in source.model.state_dict().items():
        assert torch.equal(value, warm.model.state_dict()[key])
    assert warm.model.config.bits == 2


def test_cli_trains_a_resunet_with_a_pixel_loss(image_folder, tmp_path, capsys):
    out = tmp_path / "res.safetensors"
    args = [
        "train",
        "--data",
        str(image_folder),
        "--scales",
        "1",
        "0.5",
        "--out",
        str(out),
        "--task",
        "expand",
        "--bits",
        "4",
        "--arch",
        "resunet",
        "--widths",
        "4,8",
        "--blocks",
        "1,1",
        "--base",
        "bin",
        "--perceptual-weight",
        "0",
        "--pixel-weight",
        "1",
        "--pixel-loss",
        "l1",
        "--iterations",
        "2",
        "--batch-size",
        "2",
        "--crop-size",
        "32",
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    assert "with l1 loss: 2 iterations" in capsys.readouterr().out
    meta = load_checkpoint(out).metadata
    assert meta["data"].endswith("at scales 1, 0.5")
    assert meta["architecture"]["widths"] == [4, 8] and meta["architecture"]["base"] == "bin"
    assert meta["architecture"]["bits"] == 4
    with pytest.raises(SystemExit) as exit_info:
        main([*args[:-6], "--widths", "4,x"])
    assert exit_info.value.code == 2
    assert "comma-separated integers" in capsys.readouterr().err


def test_from_paths_adds_downscaled_copies_and_names_them(tmp_path):
    images = smooth_images(2, size=48)
    for index, image in enumerate(images):
        iio.imwrite(tmp_path / f"{index}.png", image)
    config = tiny_config()
    data = TrainingImages.from_paths([tmp_path], config.degradations, scales=(1.0, 0.5))
    height, width = images[0].shape[:2]
    assert len(data) == 4
    assert data.images[2].shape[:2] == (round(height / 2), round(width / 2))
    assert np.array_equal(data.images[0], images[0])
    assert "at scales 1, 0.5" in data.description
    # a Lanczos-downscaled smooth image keeps its mean brightness
    assert abs(float(data.images[2].mean()) - float(images[0].mean())) < 2.0
    with pytest.raises(ValueError, match="scales"):
        TrainingImages.from_paths([tmp_path], config.degradations, scales=(1.5,))


# --- ordered dithers with their threshold map ----------------------------------------


def test_threshold_map_crops_hold_the_thresholds_that_made_each_pixel():
    """Every degraded pixel is on exactly where its clean value exceeds the map beside it."""
    config = tiny_config(
        halftone_method="ordered",
        model=replace(RES_TINY, threshold_map=True),
        perceptual_weight=0.0,
        pixel_weight=1.0,
    )
    data = TrainingImages(smooth_images(3), config.degradations, 3)
    rng = np.random.default_rng(4)
    inputs, targets = data.sample(rng, 8, 32, grey_fraction=0.5, threshold_map=True)
    assert inputs.shape == (8, 4, 32, 32) and targets.shape == (8, 3, 32, 32)
    on = inputs[:, :3] > 0.5
    clean = torch.round(targets * 255) / 255
    assert torch.equal(on, clean > inputs[:, 3:])
    val_inputs, val_targets = data.center_crops(32, 3, threshold_map=True)
    assert torch.equal(
        val_inputs[:, :3] > 0.5, torch.round(val_targets * 255) / 255 > val_inputs[:, 3:]
    )
    plain, _ = data.sample(np.random.default_rng(4), 8, 32, grey_fraction=0.5)
    assert torch.equal(plain, inputs[:, :3])  # the same crops without the map
    with pytest.raises(ValueError, match="needs ordered-dither inputs"):
        replace(config, halftone_method="floyd-steinberg")


def test_a_threshold_map_model_warm_starts_from_one_without(tmp_path):
    """It starts from the plain model's result and training then reads the map."""
    plain = tiny_config(
        halftone_method="ordered",
        iterations=2,
        model=RES_TINY,
        perceptual_weight=0.0,
        pixel_weight=1.0,
    )
    source = Trainer(plain, images_for(plain), tmp_path / "plain.safetensors")
    list(source.run())
    mapped = replace(plain, model=replace(RES_TINY, threshold_map=True), iterations=3)
    warm = Trainer(mapped, images_for(mapped), tmp_path / "map.safetensors", init=source.out)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        start = warm.model.eval()(torch.cat([x, torch.rand(1, 1, 32, 32)], 1))
        assert torch.allclose(start, source.model.eval()(x), atol=1e-6)
    list(warm.run())
    head = warm.model.unet.head.weight.detach()
    assert head.shape[1] == 4 and float(head[:, 3].abs().max()) > 0  # it learned to read it
    assert load_checkpoint(warm.out).model_config.threshold_map
    from napari_compand.degrade import Degradation
    from napari_compand.inference import fit_warning

    error_diffusion = Degradation("halftone", method="floyd-steinberg")
    assert "Bayer ordered dithers only" in fit_warning(warm.out, error_diffusion)
    assert fit_warning(warm.out, Degradation("halftone", method="bayer-4x4")) is None
