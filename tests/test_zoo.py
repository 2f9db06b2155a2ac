"""The shipped model zoo: names, files, metadata, session models."""

from __future__ import annotations

import shutil

import pytest

from napari_compand import zoo
from napari_compand.inference import load_model
from napari_compand.training.checkpoints import load_checkpoint

REQUIRED = ("inverse-halftone/conv1_1", "inverse-halftone/conv5_1", "expand-3bit/conv1_1")


def test_required_models_ship_small_with_full_metadata():
    assert set(REQUIRED) <= set(zoo.names())
    assert len(zoo.shipped()) == 18
    for model in zoo.shipped():
        assert model.path.stat().st_size <= 8 * 2**20, model.name  # <= 8 MB each
        meta = model.metadata
        for key in ("task", "loss_layer", "architecture", "recipe", "evaluation", "description"):
            assert key in meta, (model.name, key)
        assert meta["zoo_name"] == model.name
        assert meta["dtype"] == "float16"
        assert meta["recipe"]["crop_size"] > 0 and meta["iterations_done"] > 0
        assert "set5+set14" in model.evaluation and "set5+set14 grey" in model.evaluation
        assert meta["recipe"]["grey_fraction"] > 0  # every model learnt grey input too
        if model.task == "expand":
            assert model.bits == meta["recipe"]["bits"] == meta["architecture"]["bits"]
        checkpoint = load_checkpoint(model.path)
        assert checkpoint.optimizer_state is None  # weights only


def test_get_default_and_unknown():
    assert zoo.get("expand-3bit/conv1_1").bits == 3
    assert zoo.default_model("inverse-halftone") == "inverse-halftone/conv1_1-pixel"
    assert zoo.default_model("expand", 3) == "expand-3bit/conv1_1-pixel"
    assert zoo.default_model("expand", 4) == "expand-4bit/conv1_1"  # no pixel variant
    with pytest.raises(KeyError, match="available: .*expand-3bit/conv1_1"):
        zoo.get("expand-3bit/conv9_9")
    with pytest.raises(KeyError, match="no model for expand from 7 bits"):
        zoo.default_model("expand", 7)
    assert "conv1_1" in zoo.get("inverse-halftone/conv1_1").summary


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
