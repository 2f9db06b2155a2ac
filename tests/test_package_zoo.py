"""``scripts/package_zoo.py``: a trained stage becomes a zoo file with its scores and lineage."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from napari_compand.checkpoints import average_weights, load_checkpoint
from napari_compand.evaluation import baseline, evaluate_many, grey_version, model_restorer
from napari_compand.models import ModelConfig
from napari_compand.training import Trainer, TrainingConfig, TrainingImages

from .helpers import smooth_images

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture()
def package_zoo(monkeypatch):
    """The script as a module (it imports ``train_zoo`` from its own folder)."""
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return importlib.import_module("package_zoo")


def _train(path: Path, init: Path | None = None, iterations: int = 2) -> None:
    config = TrainingConfig(
        task="expand",
        bits=3,
        loss_layer="conv1_1",
        perceptual_weight=0.0,
        pixel_weight=1.0,
        crop_size=32,
        batch_size=2,
        iterations=iterations,
        lr=1e-3,
        validate_every=0,
        checkpoint_every=0,
        device="cpu",
        model=ModelConfig(ngf=8, depth=3, max_channels=16, base="bin", bits=3),
    )
    images = TrainingImages(smooth_images(2), config.degradations, config.model.channels)
    list(Trainer(config, images, path, init=init).run())


def test_a_stage_is_scored_and_keeps_its_lineage(package_zoo, monkeypatch, tmp_path):
    early, late = tmp_path / "early.safetensors", tmp_path / "late.safetensors"
    _train(early, iterations=2)
    _train(late, iterations=3)
    first = average_weights([early, late], tmp_path / "first.safetensors")
    stage = tmp_path / "ex3_tiny.safetensors"
    _train(stage, init=first)
    evaluation_dir = tmp_path / "eval"
    evaluation_dir.mkdir()
    pictures = [image[:, :, :3] for image in smooth_images(2, size=48, seed=5)]
    for index, picture in enumerate(pictures):
        iio.imwrite(evaluation_dir / f"{index}.png", picture)
    out = tmp_path / "zoo"

    package_zoo.main(
        [str(stage), "--eval", f"tiny={evaluation_dir}", "--x2", "tiny", "--noise", "tiny"]
        + ["--noise-kinds", "shared", "--note", "A test stage.", "--out", str(out)]
        + ["--threads", "1"]
    )

    shipped = out / "expand-3bit__tiny.safetensors"
    meta = load_checkpoint(shipped).metadata
    assert meta["zoo_name"] == "expand-3bit/tiny"
    assert meta["description"].startswith("3-bit -> 8-bit expansion")
    assert meta["description"].endswith("A test stage.")
    # the stage it grew from, with that stage's own iterations
    assert meta["init"] == "see warm_starts"
    assert [s["iterations_done"] for s in meta["warm_starts"]] == [3]
    # how that stage's weights were made travels with it, and its model card says so
    assert meta["warm_starts"][0]["weight_average"]["iterations_done"] == [2, 3]
    monkeypatch.syspath_prepend(str(DOCS))
    cards = importlib.import_module("make_model_cards")
    assert "mean of 2 checkpoints" in cards._weights_in_words(meta["warm_starts"][0])
    assert cards._weights_in_words(meta) == ""  # its own last iteration
    scores = meta["evaluation"]
    for key in ("tiny", "tiny grey", "tiny baseline midbin", "tiny x2", "tiny grey x2"):
        assert math.isfinite(scores[key]["psnr"]), key
    # the stored scores are the package's own evaluation of the stage's network
    degradation = TrainingConfig.from_dict(meta["recipe"]).degradation
    readback = [iio.imread(evaluation_dir / f"{i}.png") for i in range(2)]
    found = evaluate_many(
        readback,
        degradation,
        {"net": model_restorer(stage, grey_partner=False), "mid": baseline("midbin", degradation)},
    )
    assert scores["tiny"]["psnr"] == pytest.approx(
        found["net"].psnr, abs=5e-4
    )  # stored to 3 decimals
    assert scores["tiny baseline midbin"]["psnr"] == pytest.approx(
        found["mid"].psnr, abs=5e-4
    )  # stored to 3 decimals
    network = {"net": model_restorer(stage, grey_partner=False)}
    grey = evaluate_many([grey_version(i) for i in readback], degradation, network)
    assert scores["tiny grey"]["psnr"] == pytest.approx(
        grey["net"].psnr, abs=5e-4
    )  # stored to 3 decimals
    # in bin by construction: its "consistent" scores are its own
    assert scores["tiny consistent"] == scores["tiny"]
    # noise rows of the kind asked for only, sigma 0 included
    rows = scores["tiny noise"]
    assert rows and all(row["shared"] for row in rows)
    assert min(row["sigma"] for row in rows) == 0 and len({row["sigma"] for row in rows}) > 1


def test_the_scratch_output_leaves_the_package_zoo_alone(package_zoo, tmp_path):
    assert package_zoo.ZOO.name == "weights" and package_zoo.ZOO.is_dir()
    before = {p.name: p.stat().st_mtime_ns for p in package_zoo.ZOO.glob("*.safetensors")}
    stage = tmp_path / "ex3_tiny.safetensors"
    _train(stage)
    evaluation_dir = tmp_path / "eval"
    evaluation_dir.mkdir()
    iio.imwrite(evaluation_dir / "a.png", smooth_images(1, size=48)[0][:, :, :3])
    package_zoo.main([str(stage), "--eval", f"one={evaluation_dir}", "--out", str(tmp_path / "z")])
    after = {p.name: p.stat().st_mtime_ns for p in package_zoo.ZOO.glob("*.safetensors")}
    assert after == before
    assert (tmp_path / "z" / "expand-3bit__tiny.safetensors").is_file()


def test_train_zoo_blocks_grow_the_resunet_jobs_only(monkeypatch):
    """``--blocks`` deepens the ResUNet jobs (their warm start is grown by the trainer) and
    leaves the paper U-Net jobs and the other settings as the recipe has them."""
    monkeypatch.syspath_prepend(str(SCRIPTS))
    train_zoo = importlib.import_module("train_zoo")
    common = ["--train", "t", "--val", "v", "--out", "o", "--batch-size", "64"]
    args = train_zoo.build_parser().parse_args([*common, "--blocks", "1", "2", "4", "10"])
    grown = train_zoo.job_config("ex3_resunet", args)
    assert grown.model.blocks == (1, 2, 4, 10)
    assert grown.model.widths == (16, 32, 64, 128)
    assert grown.batch_size == 64
    assert train_zoo.job_config("ih_conv1_1", args).model.arch.value == "unet"
    plain = train_zoo.job_config("ex3_resunet", train_zoo.build_parser().parse_args(common))
    assert plain.model.blocks == (1, 2, 3, 6)


def test_late_best_ignores_the_first_half_of_the_schedule(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    train_zoo = importlib.import_module("train_zoo")
    history = [
        {"iteration": 0, "psnr": 30.0},  # the warm start never counts
        {"iteration": 1000, "psnr": 29.9},  # first half: not counted however high
        {"iteration": 2000, "psnr": 29.5},
        {"iteration": 3000, "psnr": 29.6},
    ]
    assert train_zoo.late_best(history, 4000)["iteration"] == 3000
    assert train_zoo.late_best(history, 8000) is None
    history[1]["psnr"] = 28.0
    assert train_zoo.late_best(history, 2000)["iteration"] == 3000


@pytest.mark.parametrize(("late_wins", "snapshot_every"), [(False, 1), (True, 1), (True, 2)])
def test_train_zoo_late_best_exports_what_the_rule_picks(
    monkeypatch, tmp_path, late_wins, snapshot_every
):
    """A tiny real stage: the export is the weight average unless the log's best validation
    of the second half read higher (then those weights: its snapshot, or the run's best file
    where no snapshot was kept at that iteration), never a first-half best."""

    monkeypatch.syspath_prepend(str(SCRIPTS))
    train_zoo = importlib.import_module("train_zoo")
    for folder, seed in (("train", 1), ("val", 2)):
        (tmp_path / folder).mkdir()
        for index, image in enumerate(smooth_images(2, size=40, seed=seed)):
            iio.imwrite(tmp_path / folder / f"{index}.png", image[..., :3])
    out = tmp_path / "out"
    common = ["--train", str(tmp_path / "train"), "--val", str(tmp_path / "val")]
    args = train_zoo.build_parser().parse_args(
        [*common, "--out", str(out), "--crop-size", "32", "--batch-size", "2"]
        + ["--iterations", "6", "--validate-every", "1", "--snapshot-every", str(snapshot_every)]
        + ["--checkpoint-every", "0", "--lr", "1e-3", "--val-images", "2", "--late-best"]
        + ["--resunet-size", "S", "--blocks", "1", "1", "1", "1", "--validate-first"]
    )
    engine = importlib.import_module("napari_compand.training.engine")
    original = engine.Trainer.validate

    def rigged(self):
        """Iteration 5 reads far above (late_wins) or every late one far below any average."""
        fresh = all(record["iteration"] != self.iteration for record in self.history)
        result = original(self)
        shift = 0.0
        if fresh and late_wins and self.iteration == 5:
            shift = 100.0
        elif fresh and not late_wins and self.iteration >= 3:
            shift = -100.0
        self.history[-1]["psnr"] += shift
        return type(result)(result.iteration, result.psnr + shift, result.ssim)

    monkeypatch.setattr(engine.Trainer, "validate", rigged)
    train_zoo.train_one("ex3_resunet", args)
    log = (out / "ex3_resunet.log").read_text()
    exported = load_checkpoint(out / "export" / "ex3_resunet.safetensors")
    if late_wins:
        assert "exported the second half's best validation (iteration 5" in log
        snapshot = out / "snapshots" / "ex3_resunet-0000005.safetensors"
        assert snapshot.exists() == (snapshot_every == 1)
        source = load_checkpoint(
            snapshot if snapshot.exists() else out / "ex3_resunet-best.safetensors"
        )
        # how the weights were chosen, for the model card: that validation
        assert exported.metadata["best"]["iteration"] == 5
        assert exported.metadata["best"]["psnr"] > 100
    else:
        assert "exported the weight average" in log
        source = load_checkpoint(out / "export" / "average" / "ex3_resunet.safetensors")
    assert exported.model_state.keys() == source.model_state.keys()
    for key, value in exported.model_state.items():
        expected = source.model_state[key].half().float().numpy()
        assert np.array_equal(value.float().numpy(), expected)


def test_train_zoo_ends_each_job_with_its_export_when_killed(tmp_path):
    """``kill`` (SIGTERM) of a running ``train_zoo.py`` reaches its jobs, and each ends as at
    its time limit: a checkpoint, then the export."""
    import signal
    import subprocess
    import sys
    import time

    for folder, seed in (("train", 1), ("val", 2)):
        (tmp_path / folder).mkdir()
        for index, image in enumerate(smooth_images(2, size=40, seed=seed)):
            iio.imwrite(tmp_path / folder / f"{index}.png", image[..., :3])
    out = tmp_path / "out"
    command = [  # far too long to finish
        sys.executable, str(SCRIPTS / "train_zoo.py"), "--jobs", "ex3_resunet",
        "--train", str(tmp_path / "train"), "--val", str(tmp_path / "val"), "--out", str(out),
        "--crop-size", "32", "--batch-size", "2", "--iterations", "10000000",
        "--time-limit", "100000", "--validate-every", "0", "--checkpoint-every", "0",
        "--val-images", "2", "--resunet-size", "S", "--blocks", "1", "1", "1", "1",
        "--threads", "1",
    ]  # fmt: skip
    parent = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log = out / "ex3_resunet.log"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and " it 100 " not in (
        log.read_text() if log.exists() else ""
    ):
        time.sleep(0.5)
    parent.send_signal(signal.SIGTERM)
    output = parent.communicate(timeout=120)[0].decode()
    text = log.read_text()
    assert parent.returncode == 0, output + text
    stopped = [line for line in text.splitlines() if line.startswith("ex3_resunet stopped at")]
    assert stopped, text
    done = int(stopped[0].split()[-1])
    assert 100 <= done < 10000000
    assert load_checkpoint(out / "ex3_resunet.safetensors").metadata["iterations_done"] == done
    assert (out / "export" / "ex3_resunet.safetensors").exists()


def test_gpu_upload_keeps_jpeg_pixels_and_packs_warm_starts(monkeypatch, tmp_path):
    """``scripts/gpu_upload.py``: a JPEG reaches the upload with the same pixels (rewritten
    losslessly or copied), a PNG as JPEG quality 95 without chroma subsampling, and a job's
    warm start as xz that unpacks to the shipped file's bytes."""
    import lzma

    from napari_compand.metrics import psnr

    monkeypatch.syspath_prepend(str(SCRIPTS))
    upload = importlib.import_module("gpu_upload")
    source = tmp_path / "photos"
    source.mkdir()
    photo, other = smooth_images(2, size=96)
    iio.imwrite(source / "a.jpg", photo, quality=90)
    iio.imwrite(source / "b.png", other)
    upload.copy_images(source, tmp_path / "train", prefix="photos_")
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == [
        "photos_a.jpg",
        "photos_b.jpg",
    ]
    assert (iio.imread(tmp_path / "train/photos_a.jpg") == iio.imread(source / "a.jpg")).all()
    assert psnr(other, iio.imread(tmp_path / "train/photos_b.jpg"), rgb=True) > 40

    upload.pack_warm_starts(["ex4_resunet_grey"], tmp_path / "weights")
    train_zoo = importlib.import_module("train_zoo")
    shipped = train_zoo.zoo_init("ex4_resunet_grey")
    packed = tmp_path / "weights" / f"{shipped.name}.xz"
    assert lzma.decompress(packed.read_bytes()) == shipped.read_bytes()
    assert packed.stat().st_size < shipped.stat().st_size


def test_training_photos_reads_urban100_at_its_commit(monkeypatch, tmp_path):
    """``scripts/training_photos.py --urban``: the colour Urban100 files of a
    denoising_datasets clone, read at the pinned commit, become ``urban100/*.png`` with the
    same pixels; a clone without them is a clear error."""
    import subprocess

    monkeypatch.syspath_prepend(str(SCRIPTS))
    photos = importlib.import_module("training_photos")
    clone = tmp_path / "clone"
    (clone / "CUrban100").mkdir(parents=True)
    images = smooth_images(2, size=48)
    for i, image in enumerate(images, start=1):
        iio.imwrite(clone / "CUrban100" / f"img_{i:03d}.png", image)
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(clone)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "images"], check=True)
    commit = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    (clone / "CUrban100" / "img_003.png").write_bytes(b"not at the commit")
    monkeypatch.setattr(photos, "DENOISING_DATASETS_COMMIT", commit)

    assert photos.build_urban100(clone, tmp_path / "runs") == 2
    written = sorted((tmp_path / "runs" / "urban100").iterdir())
    assert [p.name for p in written] == ["img_001.png", "img_002.png"]
    for path, image in zip(written, images, strict=True):
        assert np.array_equal(iio.imread(path), image)

    subprocess.run([*git, "rm", "-q", "-r", "CUrban100"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "none"], check=True)
    empty = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    monkeypatch.setattr(photos, "DENOISING_DATASETS_COMMIT", empty)
    with pytest.raises(ValueError, match="no files under CUrban100"):
        photos.build_urban100(clone, tmp_path / "again")
