"""Restore, Compare models and the Inverse halftone command in a real napari viewer."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from skimage import data

from napari_compand import zoo
from napari_compand.degrade import halftone, quantize
from napari_compand.inference import least_tile_size, restore
from napari_compand.metrics import psnr

from .helpers import PLUGIN, dock, wait_for

HALFTONE = "astronaut [halftone floyd-steinberg]"


def test_restore_widget_follows_metadata_and_adds_layer(viewer, qtbot):
    viewer.open_sample(PLUGIN, "astronaut-halftone")
    source = viewer.layers[HALFTONE]
    source.scale, source.translate = (0.5, 2.0), (3, 4)
    before = source.data.copy()
    widget = dock(viewer, "Restore")
    widget._image.value = source
    assert widget._task.value == "inverse-halftone"
    assert widget._model.value == zoo.default_model("inverse-halftone")  # the best is preselected
    widget._model.value = "inverse-halftone/conv1_1"
    assert widget._bits.native.isHidden()
    assert widget._consistent.native.isHidden()  # only for expansion
    assert not widget._ensemble.native.isHidden()  # shifted copies for halftones
    assert widget._ensemble.value == 2
    assert widget.run() is not None
    wait_for(qtbot, widget)
    name = "astronaut [halftone floyd-steinberg] [inverse halftone conv1_1]"
    qtbot.waitUntil(lambda: name in viewer.layers)
    out = viewer.layers[name]
    assert out.rgb and out.data.dtype == np.uint8
    assert tuple(out.scale) == (0.5, 2.0) and tuple(out.translate) == (3, 4)
    np.testing.assert_array_equal(out.data, restore(before, "inverse-halftone/conv1_1"))
    np.testing.assert_array_equal(source.data, before)  # input untouched
    assert out.metadata["napari_compand"]["restoration"]["model"] == "inverse-halftone/conv1_1"
    assert psnr(data.astronaut(), out.data, rgb=True) > 27


def test_restore_widget_picks_expansion_for_3bit_layers(viewer, qtbot):
    viewer.open_sample(PLUGIN, "astronaut-3bit")
    widget = dock(viewer, "Restore")
    widget._image.value = viewer.layers["astronaut [3-bit]"]
    assert (widget._task.value, widget._bits.value) == ("expand", 3)
    assert widget._model.value == zoo.default_model("expand", 3)
    assert not widget._bits.native.isHidden()
    assert not widget._consistent.native.isHidden()
    assert not widget._ensemble.native.isHidden()
    widget._model.value = "expand-3bit/conv1_1"
    widget._consistent.value = True
    assert widget.run() is not None
    wait_for(qtbot, widget)
    name = "astronaut [3-bit] [expand 3-bit conv1_1, in bin]"
    qtbot.waitUntil(lambda: name in viewer.layers)
    low = viewer.layers["astronaut [3-bit]"].data
    np.testing.assert_array_equal(quantize(viewer.layers[name].data, 3, rgb=True), low)
    np.testing.assert_array_equal(
        viewer.layers[name].data, restore(low, "expand-3bit/conv1_1", consistent=True)
    )
    # two views are the default; another count is named in the layer
    assert widget._ensemble.value == 2
    widget._ensemble.value = 1
    assert widget.run() is not None
    wait_for(qtbot, widget)
    single = "astronaut [3-bit] [expand 3-bit conv1_1, in bin, 1 view]"
    qtbot.waitUntil(lambda: single in viewer.layers)
    np.testing.assert_array_equal(
        viewer.layers[single].data,
        restore(low, "expand-3bit/conv1_1", consistent=True, self_ensemble=1),
    )
    assert np.abs(viewer.layers[single].data.astype(int) - viewer.layers[name].data).max() > 0


def test_restore_widget_reports_a_bad_checkpoint(viewer, qtbot, tmp_path):
    viewer.add_image(data.camera(), name="camera")
    widget = dock(viewer, "Restore")
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x00" * 64)
    widget._model.value = "checkpoint file..."
    widget._file.value = bad
    assert not widget._file.native.isHidden()
    assert widget.run() is None
    status = widget._status.value
    assert status.startswith("error:") and "broken.safetensors" in status
    assert len(viewer.layers) == 1


def test_inverse_halftone_command_from_the_layers_menu(viewer, qtbot):
    from napari._app_model import get_app_model

    app = get_app_model()
    command = "napari-compand.inverse_halftone"
    # Layers > Filter; napari 0.9 lets plugins add nothing to the layer list's context menu
    items = [getattr(item, "command", None) for item in app.menus.get_menu("napari/layers/filter")]
    assert command in [c.id for c in items if c is not None]
    image = halftone(data.camera()[:256, :256])
    layer = viewer.add_image(image, name="camera ht")
    viewer.layers.selection.active = layer
    app.commands.execute_command(command).result()
    variant = zoo.default_model("inverse-halftone").split("/")[1]
    name = f"camera ht [inverse halftone {variant}]"
    qtbot.waitUntil(lambda: name in viewer.layers, timeout=120_000)
    out = viewer.layers[name].data
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(layer.data, image)
    # a boolean layer (napari's reader gives one for a 1-bit file) is a halftone too
    bits = viewer.add_image(image > 0, name="camera bits")
    viewer.layers.selection.active = bits
    app.commands.execute_command(command).result()
    qtbot.waitUntil(lambda: f"camera bits [inverse halftone {variant}]" in viewer.layers)
    np.testing.assert_array_equal(
        viewer.layers[f"camera bits [inverse halftone {variant}]"].data, out
    )
    assert bits.data.dtype == bool


def test_compare_widget_stacks_one_plane_per_model(viewer, qtbot):
    viewer.open_sample(PLUGIN, "astronaut-halftone")
    source = viewer.layers[HALFTONE]
    before = source.data.copy()
    widget = dock(viewer, "Compare models")
    widget._image.value = source
    assert list(widget._models.value) == ["inverse-halftone/conv1_1", "inverse-halftone/conv5_1"]
    widget._reference.value = viewer.layers["astronaut"]
    assert widget.run() is not None
    wait_for(qtbot, widget)
    name = f"{HALFTONE} [compare inverse halftone conv1_1 | inverse halftone conv5_1]"
    qtbot.waitUntil(lambda: name in viewer.layers)
    stack = viewer.layers[name]
    assert stack.data.shape == (2, *before.shape) and stack.rgb
    assert stack.axis_labels[0] == "model"
    np.testing.assert_array_equal(stack.data[0], restore(before, "inverse-halftone/conv1_1"))
    np.testing.assert_array_equal(source.data, before)
    (l1, p1, s1), (l5, p5, s5) = widget.scores
    assert "conv1_1" in l1 and "conv5_1" in l5
    assert p1 > p5  # the paper's finding: conv1_1 beats conv5_1 in PSNR
    assert "PSNR" in widget._status.value
    # the viewer names the plane's model and its scores as the slider moves
    overlay = viewer.canvas.overlays.text
    assert overlay.visible and overlay.text.startswith(f"model: {l1}")
    assert f"PSNR {p1:.2f} dB" in overlay.text
    viewer.dims.set_current_step(0, 1)
    assert overlay.text.startswith(f"model: {l5}") and f"PSNR {p5:.2f} dB" in overlay.text
    viewer.layers.remove(stack)
    assert not overlay.visible


def test_compare_lists_the_preselected_models_first(viewer):
    viewer.open_sample(PLUGIN, "astronaut-3bit")
    widget = dock(viewer, "Compare models")
    choices = [value for value in widget._models.choices]
    selected = list(widget._models.value)
    assert selected == ["expand-3bit/conv1_1", "expand-3bit/conv5_1"]
    assert choices[:2] == selected  # visible without scrolling
    same_task = sum(name.startswith("expand-3bit/") for name in choices)
    assert 2 < same_task < len(choices)
    # every model for the layer's own task and depth comes before any other
    assert all(name.startswith("expand-3bit/") for name in choices[:same_task])


def test_session_models_appear_and_closed_widgets_are_not_called(
    make_napari_viewer, qtbot, tmp_path, monkeypatch
):
    import shutil

    from napari_compand import zoo

    monkeypatch.setattr(zoo, "_SESSION", [])
    monkeypatch.setattr(zoo, "_LISTENERS", [])
    first = make_napari_viewer()
    closed = dock(first, "Restore")
    first.close()
    qtbot.waitUntil(lambda: not zoo._LISTENERS, timeout=5_000)  # disconnected on close
    viewer = make_napari_viewer()
    widget = dock(viewer, "Restore")
    assert len(zoo._LISTENERS) == 1 and closed is not widget
    path = tmp_path / "mine.safetensors"
    shutil.copy(zoo.get("inverse-halftone/conv1_1").path, path)
    zoo.register_session_model(path)  # must not reach the closed widget
    assert "session/mine" in widget._model.choices


def test_restore_can_be_cancelled_from_the_progress_bar(viewer, qtbot):
    image = halftone(np.tile(data.camera(), (2, 2)))  # 1024 x 1024
    viewer.add_image(image, name="big")
    widget = dock(viewer, "Restore")
    widget._tile.value = widget._tile.min  # the model's smallest seam-free tile
    assert widget._tile.value == least_tile_size(widget.selected_model()) > 128
    worker = widget.run()
    steps = []

    def cancel_after_first(_):
        steps.append(1)
        worker.progress_bar.cancel()  # what the activity dock's Cancel button does

    worker.yielded.connect(cancel_after_first)
    wait_for(qtbot, widget)
    total = worker.progress_bar.total
    from napari_compand.inference import tile_count, tiling

    tile, overlap = tiling(widget.selected_model(), widget._tile.value)  # used unchanged
    expected = tile_count(image.shape, widget.selected_model(), rgb=False, tile_size=tile)
    assert tile == widget._tile.value > 128 and total == expected > 4 and len(steps) < total
    qtbot.wait(200)
    assert [layer.name for layer in viewer.layers] == ["big"]  # nothing added


def test_restore_widget_detects_the_degradation_from_pixels(viewer):
    """A user's own file has no metadata: the task and bits come from its pixels."""
    viewer.add_image(quantize(data.camera(), 5), name="my 5-bit file")
    widget = dock(viewer, "Restore")
    widget._image.value = viewer.layers["my 5-bit file"]
    assert (widget._task.value, widget._bits.value) == ("expand", 5)
    assert widget._model.value == zoo.default_model("expand", 5)
    viewer.add_image(halftone(data.camera()), name="my scan")
    widget._image.value = viewer.layers["my scan"]
    assert widget._task.value == "inverse-halftone"


def test_a_model_that_does_not_fit_the_pixels_is_warned_about(viewer, qtbot, monkeypatch):
    from napari_compand._widgets import _restoration

    warned = []
    monkeypatch.setattr(_restoration, "show_warning", warned.append)
    layer = viewer.add_image(quantize(data.camera()[:128, :128], 3), name="three bits")
    viewer.layers.selection.active = layer
    from napari_compand._widgets.inverse_halftone_command import inverse_halftone

    job = inverse_halftone(viewer)
    assert job is not None
    names = lambda: " ".join(layer.name for layer in viewer.layers)  # noqa: E731
    qtbot.waitUntil(lambda: "three bits [inverse halftone" in names(), timeout=60_000)
    assert warned and "looks like 3-bit data" in warned[0] and "three bits" in warned[0]


def test_running_twice_replaces_the_earlier_result_unless_renamed(viewer, qtbot):
    from napari_compand._widgets.inverse_halftone_command import inverse_halftone

    source = viewer.add_image(halftone(data.camera()[:96, :96]), name="scan")
    count = lambda: len(viewer.layers)  # noqa: E731
    for expected in (2, 2):  # the second run replaces the first result
        viewer.layers.selection.active = source
        inverse_halftone(viewer)
        qtbot.waitUntil(lambda e=expected: count() == e and "scan [" in viewer.layers[-1].name)
        qtbot.wait(200)
        assert count() == expected
    result = viewer.layers[-1]
    assert "[1]" not in " ".join(layer.name for layer in viewer.layers)
    result.name = "my favourite"  # renamed by the user: kept, a new result is added
    viewer.layers.selection.active = source
    inverse_halftone(viewer)
    qtbot.waitUntil(lambda: count() == 3, timeout=60_000)
    assert "my favourite" in viewer.layers
    np.testing.assert_array_equal(viewer.layers["my favourite"].data, viewer.layers[-1].data)


def test_restore_preselects_the_mix_model_for_other_halftones(viewer):
    from napari_compand.degrade import Degradation

    spec = Degradation("halftone", method="jarvis-judice-ninke")
    image = spec.apply(data.camera()[:64, :64])
    viewer.add_image(image, name="jjn", metadata=spec.layer_metadata("camera"))
    widget = dock(viewer, "Restore")
    widget._image.value = viewer.layers["jjn"]
    assert widget._task.value == "inverse-halftone"
    assert widget._model.value == "inverse-halftone/resunet-mix"
    # without metadata the kernel is read from the pixels (on enough of them)
    assert widget._status.value == "'jjn': halftone jarvis-judice-ninke (from its metadata)"
    viewer.add_image(spec.apply(data.camera()[:256, :256]), name="unlabelled")
    widget._image.value = viewer.layers["unlabelled"]
    assert widget._model.value == "inverse-halftone/resunet-mix"
    assert widget._status.value == "'unlabelled': halftone jarvis-judice-ninke (from its pixels)"
    viewer.add_image(halftone(data.camera()[:256, :256]), name="fs")
    widget._image.value = viewer.layers["fs"]
    assert widget._model.value == zoo.default_model("inverse-halftone")


def test_the_tile_size_stops_at_each_models_seam_free_minimum(viewer, tmp_path):
    viewer.add_image(halftone(data.camera()), name="scan")
    widget = dock(viewer, "Restore")
    minimum = {}
    for name in ("inverse-halftone/resunet", "inverse-halftone/conv1_1"):
        widget._model.value = name
        minimum[name] = widget._tile.min
        assert minimum[name] == least_tile_size(name)
        with pytest.raises(ValueError, match="outside of the allowed range"):
            widget._tile.value = minimum[name] - 8
        assert f"{minimum[name]} px" in widget._tile.tooltip
    assert minimum["inverse-halftone/conv1_1"] > minimum["inverse-halftone/resunet"]
    path = tmp_path / "mine.safetensors"  # a checkpoint file gets its own minimum
    shutil.copy(zoo.get("inverse-halftone/resunet").path, path)
    widget._model.value = "checkpoint file..."
    widget._file.value = path
    assert widget._tile.min == minimum["inverse-halftone/resunet"]
