"""The shipped model zoo: names, files, metadata, session models."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from napari_compand import zoo
from napari_compand.checkpoints import load_checkpoint
from napari_compand.degrade import HALFTONE_SETS
from napari_compand.evaluation import classical_baseline
from napari_compand.inference import load_model
from napari_compand.vocabulary import Task

REQUIRED = ("inverse-halftone/conv1_1", "inverse-halftone/conv5_1", "expand-3bit/conv1_1")


def test_required_models_ship_small_with_full_metadata():
    assert set(REQUIRED) <= set(zoo.names())
    assert sum(m.arch == "unet" for m in zoo.shipped()) == 13  # the paper U-Net: its layer study
    resunets = [m for m in zoo.shipped() if m.arch == "resunet"]
    assert {m.name for m in resunets} >= {
        "inverse-halftone/resunet",
        "inverse-halftone/resunet-mix",
        "expand-4bit/resunet",
    }
    for model in resunets:
        if model.name.endswith("/resunet"):  # the full-resolution models are the defaults
            assert zoo.default_model(model.task, model.bits) == model.name
        elif model.name.endswith(zoo.GREY_SUFFIX):  # a default's grey-only partner
            colour = model.name.removesuffix(zoo.GREY_SUFFIX)
            assert zoo.grey_partner(colour) == model.name
            assert model.metadata["architecture"]["channels"] == 1
        else:  # the ten-halftone model and the specialists for a named set or one method
            trained_on = model.metadata["recipe"]["halftone_method"]
            assert trained_on in HALFTONE_SETS or model.name.endswith(f"/resunet-{trained_on}")
        assert model.metadata["recipe"]["perceptual_weight"] == 0  # PSNR-oriented pixel loss
    for model in zoo.shipped():
        assert model.path.stat().st_size <= 8 * 2**20, model.name  # <= 8 MB each
        meta = model.metadata
        for key in ("task", "loss_layer", "architecture", "recipe", "evaluation", "description"):
            assert key in meta, (model.name, key)
        assert meta["zoo_name"] == model.name
        # the defaults fp16; the paper's U-Nets int8, their fp16 scores kept beside
        assert meta["dtype"] == ("int8" if model.arch == "unet" else "float16"), model.name
        if meta["dtype"] == "int8":
            before = meta["float16 evaluation"]
            paper = {k for k in model.evaluation if k.startswith("paper (COCO)")}
            assert before.keys() == model.evaluation.keys() - paper
            for key in ("set5+set14", "set5+set14 grey"):
                assert abs(model.evaluation[key]["psnr"] - before[key]["psnr"]) < 0.15
        assert meta["recipe"]["crop_size"] > 0 and meta["iterations_done"] > 0
        assert "set5+set14" in model.evaluation and "set5+set14 grey" in model.evaluation
        # every model learnt grey input too (a grey partner learnt nothing else)
        assert meta["recipe"]["grey_fraction"] > 0 or meta["architecture"]["channels"] == 1
        if model.task == "expand":
            assert model.bits == meta["recipe"]["bits"] == meta["architecture"]["bits"]
        checkpoint = load_checkpoint(model.path)
        assert checkpoint.optimizer_state is None  # weights only


def test_get_default_and_unknown():
    assert zoo.get("expand-3bit/conv1_1").bits == 3
    assert zoo.default_model("inverse-halftone") == "inverse-halftone/resunet"
    assert zoo.default_model("expand", 4) == "expand-4bit/resunet"
    assert zoo.default_model("expand", 1) == "expand-1bit/resunet"
    assert zoo.default_model("expand", 2) == "expand-2bit/resunet"
    assert zoo.default_model("expand", 3) == "expand-3bit/resunet"
    from napari_compand.degrade import Degradation

    assert zoo.default_model_for(Degradation("quantize", bits=5)) == "expand-5bit/resunet"
    assert zoo.default_model_for(Degradation("halftone")) == "inverse-halftone/resunet"
    bayer = Degradation("halftone", method="bayer-8x8")
    assert zoo.default_model_for(bayer) == zoo.default_model("inverse-halftone", halftone=bayer)
    assert zoo.default_model_for(bayer) != "inverse-halftone/resunet"
    with pytest.raises(KeyError, match="available: .*expand-3bit/conv1_1"):
        zoo.get("expand-3bit/conv9_9")
    with pytest.raises(KeyError, match="no model for expand from 8 bits"):
        zoo.default_model("expand", 8)
    with pytest.raises(KeyError, match="retired from the zoo; use 'expand-2bit/resunet'"):
        zoo.get("expand-2bit/conv1_1-pixel")
    assert "conv1_1" in zoo.get("inverse-halftone/conv1_1").summary
    assert "resunet, mse loss" in zoo.get("expand-4bit/resunet").summary


def test_shipped_in_bin_models_keep_real_images_in_their_bins():
    from skimage import data

    from napari_compand.degrade import quantize
    from napari_compand.inference import restore

    photo = data.astronaut()[:64, :96]
    checked = 0
    for model in zoo.shipped():
        if model.metadata["architecture"].get("base") == "bin":
            low = quantize(photo, bits=model.bits)
            out = restore(low, model.name)
            assert np.array_equal(quantize(out, bits=model.bits), low), model.name
            assert not np.array_equal(out, low)  # moved inside the bins
            checked += 1
    assert checked >= 2


def test_session_models_join_the_zoo(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, "_SESSION", [])
    seen = []
    monkeypatch.setattr(zoo, "_LISTENERS", [seen.append])
    first = tmp_path / "a" / "mine.safetensors"
    second = tmp_path / "b" / "mine.safetensors"
    for path in (first, second):
        path.parent.mkdir()
        shutil.copy(zoo.get("expand-3bit/conv1_1").path, path)
        zoo.register_session_model(path)
    assert zoo.names()[-2:] == ["session/mine", "session/mine-2"]
    assert zoo.path_of("session/mine-2") == second.resolve()
    assert seen == [first.resolve(), second.resolve()]
    assert load_model("session/mine").bits == 3


def test_one_task_vocabulary_names_and_parses_zoo_models():
    from napari_compand.degrade import Degradation
    from napari_compand.vocabulary import Task

    assert Task.from_degradation(Degradation("quantize", bits=3)) is Task.EXPAND
    assert Task.from_degradation(Degradation("halftone", method="stucki")) is Task.INVERSE_HALFTONE
    for name in zoo.names():
        if name.startswith("session/"):
            continue
        task, bits, variant = Task.parse_model_name(name)
        assert task.model_name(variant, bits) == name
        assert zoo.get(name).task == task and zoo.get(name).bits == bits
    with pytest.raises(ValueError, match="not a zoo model name"):
        Task.parse_model_name("expand-xbit/conv1_1")
    with pytest.raises(ValueError, match="needs its input bits"):
        Task.EXPAND.model_name("resunet")


def test_the_default_follows_a_known_halftone_method():
    """Raster Floyd–Steinberg gets its own model; another known halftone the shipped model
    that scored best on it at packaging (resunet-mix where Floyd–Steinberg models fail)."""
    from napari_compand.degrade import KNOWN_HALFTONES, Degradation

    fs = Degradation("halftone", method="floyd-steinberg")
    assert zoo.default_model("inverse-halftone", halftone=fs) == "inverse-halftone/resunet"
    for method in ("stucki", "jarvis-judice-ninke"):
        other = Degradation("halftone", method=method)
        assert (
            zoo.default_model("inverse-halftone", halftone=other) == "inverse-halftone/resunet-mix"
        )
    # the specialists win their own halftones
    for method in ("bayer-4x4", "bayer-8x8"):
        bayer = Degradation("halftone", method=method)
        assert (
            zoo.default_model("inverse-halftone", halftone=bayer)
            == "inverse-halftone/resunet-ordered"
        )
    serpentine = Degradation("halftone", method="floyd-steinberg", serpentine=True)
    assert (
        zoo.default_model("inverse-halftone", halftone=serpentine)
        == "inverse-halftone/resunet-fs-scans"
    )
    riemersma = Degradation("halftone", method="riemersma")  # ImageMagick's default dither
    assert (
        zoo.default_model("inverse-halftone", halftone=riemersma)
        == "inverse-halftone/resunet-riemersma"
    )
    candidates = [
        m.name
        for m in zoo.shipped()
        if m.name.startswith("inverse-halftone/") and zoo.HALFTONE_SCORES in m.evaluation
    ]
    assert {"inverse-halftone/resunet", "inverse-halftone/resunet-mix"} <= set(candidates)
    for method, serpentine in KNOWN_HALFTONES[1:]:
        halftone = Degradation("halftone", method=method, serpentine=serpentine)
        scored = {name: zoo.get(name).evaluation[zoo.HALFTONE_SCORES] for name in candidates}
        # a model scored on some halftones only (the Bayer-only one) competes on those
        scores = {
            name: table[halftone.label]["psnr"]
            for name, table in scored.items()
            if halftone.label in table
        }
        chosen = zoo.default_model("inverse-halftone", halftone=halftone)
        assert scores[chosen] == max(scores.values()), halftone.label


def test_a_halftone_the_model_was_not_trained_on_gets_a_warning():
    """Floyd–Steinberg models fall below a blur on other kernels: picking one by hand for
    such a halftone is flagged; the pick of default_model for it never is."""
    from napari_compand.degrade import HALFTONE_MIX, Degradation
    from napari_compand.inference import fit_warning

    jjn = Degradation("halftone", method="jarvis-judice-ninke")
    warning = fit_warning("inverse-halftone/resunet", jjn)
    assert "jarvis-judice-ninke halftone" in warning
    assert "trained on floyd-steinberg halftones" in warning
    assert warning.endswith("inverse-halftone/resunet-mix restores it best")
    serpentine = Degradation("halftone", method="floyd-steinberg", serpentine=True)
    assert "floyd-steinberg serpentine" in fit_warning("inverse-halftone/resunet", serpentine)
    assert fit_warning("inverse-halftone/resunet-fs-scans", serpentine) is None
    assert fit_warning("inverse-halftone/resunet-mix", jjn) is None
    for method, scan in HALFTONE_MIX:
        halftone = Degradation("halftone", method=method, serpentine=scan)
        assert (
            fit_warning(zoo.default_model("inverse-halftone", halftone=halftone), halftone) is None
        )


def test_grey_partners_restore_the_grey_images_of_their_colour_models():
    """Measured at packaging: each partner beats its colour model on grey images."""
    from skimage import data

    from napari_compand.degrade import quantize
    from napari_compand.inference import restore

    partners = [m for m in zoo.shipped() if m.name.endswith(zoo.GREY_SUFFIX)]
    assert "expand-7bit/resunet-grey" in {m.name for m in partners}
    for partner in partners:
        colour = zoo.get(partner.name.removesuffix(zoo.GREY_SUFFIX))
        for key in ("set5+set14 grey", "bsds/test grey"):
            assert partner.evaluation[key]["psnr"] > colour.evaluation[key]["psnr"], partner.name
        low = quantize(data.camera()[:96, :128], bits=partner.bits)
        paired = restore(low, colour.name)
        assert np.array_equal(paired, restore(low, partner.name))
        assert not np.array_equal(paired, restore(low, colour.name, grey_partner=False))


def test_every_default_beats_its_classical_baseline_in_colour():
    """The scores stored at packaging: each task's default beats mid-bin (expansion) or
    the Gaussian blur (inverse halftoning) on every evaluation set it was scored on."""
    defaults = [zoo.default_model("expand", bits) for bits in range(1, 8)]
    defaults.append(zoo.default_model("inverse-halftone"))
    for name in defaults:
        model = zoo.get(name)
        classical = classical_baseline(model.task)
        sets = [key for key in model.evaluation if key in ("set5+set14", "bsds/test")]
        assert "set5+set14" in sets, name
        for data in sets:
            ours = model.evaluation[data]["psnr"]
            theirs = model.evaluation[f"{data} baseline {classical}"]["psnr"]
            assert ours > theirs + 0.3, (name, data, ours, theirs)


def test_retired_models_name_a_shipped_successor():
    for name, successor in zoo.RETIRED.items():
        assert name not in zoo.names(), f"{name} ships again: take it out of zoo.RETIRED"
        assert successor in zoo.names()
        assert zoo.get(successor).task == Task.parse_model_name(name)[0]
        assert zoo.get(successor).bits == Task.parse_model_name(name)[1]
    assert zoo.retired_note("expand-3bit/conv1_1") == ""  # ships
