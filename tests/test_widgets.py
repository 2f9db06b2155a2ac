"""The widgets in a real napari viewer, docked from the manifest."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from napari_compand.degrade import Degradation, halftone, quantize
from napari_compand.metrics import psnr, ssim

from .helpers import PLUGIN, dock, wait_for


def test_degrade_quantize_adds_a_new_layer(viewer, qtbot):
    image = data.astronaut()
    source = viewer.add_image(image, name="astronaut", scale=(0.5, 2.0), translate=(3, 4))
    widget = dock(viewer, "Degrade")
    widget._image.value = source
    widget._mode.value = "quantize"
    widget._bits.value = 3
    worker = widget.run()
    assert worker is not None
    wait_for(qtbot, widget)
    qtbot.waitUntil(lambda: "astronaut [3-bit]" in viewer.layers)
    out = viewer.layers["astronaut [3-bit]"]
    np.testing.assert_array_equal(out.data, quantize(image, 3))
    np.testing.assert_array_equal(source.data, data.astronaut())  # input untouched
    assert out.rgb and tuple(out.scale) == (0.5, 2.0) and tuple(out.translate) == (3, 4)
    assert Degradation.from_layer_metadata(out.metadata) == Degradation("quantize", bits=3)
    assert out.metadata["napari_compand"]["source"] == "astronaut"


def test_degrade_halftone_stack_with_progress(viewer, qtbot):
    stack = np.stack([data.camera()[:128, :128], data.camera()[200:328, 200:328]])
    viewer.add_image(stack, name="stack")
    widget = dock(viewer, "Degrade")
    widget._mode.value = "halftone"
    widget._method.value = "jarvis-judice-ninke"
    assert widget._bits.native.isHidden() and not widget._method.native.isHidden()
    worker = widget.run()
    assert worker.progress_bar.total == 2
    wait_for(qtbot, widget)
    qtbot.waitUntil(lambda: "stack [halftone jarvis-judice-ninke]" in viewer.layers)
    out = viewer.layers["stack [halftone jarvis-judice-ninke]"]
    np.testing.assert_array_equal(out.data, halftone(stack, "jarvis-judice-ninke", rgb=False))
    assert tuple(out.contrast_limits) == (0, 255)


def test_degrade_riemersma_halftone_offers_no_scan_order(viewer, qtbot):
    viewer.add_image(data.camera()[:96, :80], name="cam")
    widget = dock(viewer, "Degrade")
    widget._mode.value = "halftone"
    assert not widget._serpentine.native.isHidden()  # Floyd–Steinberg has a scan order
    for method in ("riemersma", "bayer-8x8"):
        widget._method.value = method
        assert widget._serpentine.native.isHidden()
    widget.run()
    wait_for(qtbot, widget)
    qtbot.waitUntil(lambda: "cam [halftone bayer-8x8]" in viewer.layers)
    widget._method.value = "riemersma"
    widget.run()
    wait_for(qtbot, widget)
    qtbot.waitUntil(lambda: "cam [halftone riemersma]" in viewer.layers)
    np.testing.assert_array_equal(
        viewer.layers["cam [halftone riemersma]"].data,
        halftone(data.camera()[:96, :80], "riemersma"),
    )


def test_degrade_bad_layer_shows_error_and_adds_nothing(viewer):
    viewer.add_image(np.full((16, 16), 7.5), name="counts")
    widget = dock(viewer, "Degrade")
    assert widget.run() is None
    assert "must lie in [0, 1]" in widget._status.value
    assert len(viewer.layers) == 1


def test_degrade_lazy_layer_is_loaded_and_checked_in_the_worker(viewer, qtbot):
    import dask.array as da

    viewer.add_image(da.from_array(data.camera(), chunks=128), name="lazy")
    widget = dock(viewer, "Degrade")
    assert widget.run() is not None
    wait_for(qtbot, widget)
    qtbot.waitUntil(lambda: "lazy [3-bit]" in viewer.layers)
    np.testing.assert_array_equal(viewer.layers["lazy [3-bit]"].data, quantize(data.camera(), 3))
    viewer.add_image(da.full((32, 32), 3.0, chunks=16), name="counts")
    widget._image.value = viewer.layers["counts"]
    worker = widget.run()
    assert worker is not None  # lazy data: the check happens in the worker ...
    wait_for(qtbot, widget)
    qtbot.waitUntil(lambda: "must lie in [0, 1]" in widget._status.value)  # ... and is reported
    assert "counts [3-bit]" not in viewer.layers


def test_metrics_table_per_layer_and_plane(viewer, qtbot):
    ref = data.camera()
    viewer.add_image(ref, name="camera")
    viewer.add_image(halftone(ref), name="halftone")
    viewer.add_image(quantize(ref, 3), name="3-bit")
    widget = dock(viewer, "Metrics")
    widget._reference.value = viewer.layers["camera"]
    widget._tests.value = [viewer.layers["halftone"], viewer.layers["3-bit"]]
    assert widget.run() is not None
    wait_for(qtbot, widget)
    qtbot.waitUntil(lambda: len(widget.rows()) == 2)
    rows = {row[0]: row for row in widget.rows()}
    assert float(rows["3-bit"][2]) == pytest.approx(psnr(ref, quantize(ref, 3)), abs=1e-3)
    assert float(rows["halftone"][3]) == pytest.approx(ssim(ref, halftone(ref)), abs=1e-4)
    widget.copy_table()
    from qtpy.QtWidgets import QApplication

    text = QApplication.clipboard().text()
    assert text.splitlines()[0] == "test layer\tplane\tPSNR (dB)\tSSIM"
    assert len(text.splitlines()) == 3


def test_metrics_stack_rows_per_plane_and_mean(viewer, qtbot):
    ref = np.stack([data.camera()[:64, :64], data.camera()[100:164, 100:164]])
    viewer.add_image(ref, name="ref")
    viewer.add_image(quantize(ref, 2), name="low")
    widget = dock(viewer, "Metrics")
    widget._reference.value = viewer.layers["ref"]
    widget._tests.value = [viewer.layers["low"]]
    assert widget.run() is not None
    wait_for(qtbot, widget)
    qtbot.waitUntil(lambda: len(widget.rows()) == 3)
    assert [row[1] for row in widget.rows()] == ["0", "1", "mean"]
    assert float(widget.rows()[2][2]) == pytest.approx(psnr(ref, quantize(ref, 2)), abs=1e-3)


def test_metrics_defaults_to_the_clean_layer_and_its_table_fits(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample(PLUGIN, "camera-halftone")  # camera, then its halftone on top
    widget = dock(viewer, "Metrics")
    assert widget._reference.value is viewer.layers["camera"]  # not the (top) halftone
    widget._tests.value = [viewer.layers["camera [halftone floyd-steinberg]"]]
    assert widget.run() is not None
    wait_for(qtbot, widget)
    qtbot.waitUntil(lambda: len(widget.rows()) == 1)
    table = widget.table.native
    header = table.horizontalHeader()
    ssim_width = header.sectionSizeHint(3)  # what the SSIM column needs to show its values
    qtbot.wait(200)
    right_edge = header.sectionViewportPosition(3) + header.sectionSize(3)
    assert right_edge <= table.viewport().width()  # SSIM is in view, no scrolling
    assert header.sectionSize(3) >= ssim_width


def test_metrics_mean_of_a_stack_leaves_identical_planes_out(viewer, qtbot):
    ref = np.stack([data.camera()[:64, :64], data.camera()[100:164, 100:164]])
    test = ref.copy()
    test[1] = quantize(ref[1], 3)
    viewer.add_image(ref, name="ref")
    viewer.add_image(test, name="half-degraded")
    widget = dock(viewer, "Metrics")
    widget._reference.value = viewer.layers["ref"]
    widget._tests.value = [viewer.layers["half-degraded"]]
    widget.run()
    wait_for(qtbot, widget)
    qtbot.waitUntil(lambda: len(widget.rows()) == 3)
    mean = widget.rows()[2]
    assert mean[1] == "mean (1 identical left out)"
    assert float(mean[2]) == pytest.approx(psnr(ref[1], test[1]), abs=1e-3)


@pytest.mark.parametrize("name", ["Degrade", "Metrics", "Restore", "Train", "Compare models"])
def test_a_long_message_does_not_widen_the_dock(make_napari_viewer, qtbot, name):
    viewer = make_napari_viewer(show=True)
    viewer.add_image(data.camera(), name="camera")
    dock_widget, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    qtbot.wait(100)
    width, hint = dock_widget.width(), widget.native.sizeHint().width()
    label = widget._status
    label.value = "error: " + "a very long message about what went wrong " * 8  # ~340 chars
    qtbot.wait(100)
    assert widget.native.sizeHint().width() <= hint  # what would make the dock grow
    assert dock_widget.width() == width
    assert label.native.height() > label.native.fontMetrics().height()  # wrapped, not cut


def test_metrics_needs_a_test_layer(viewer):
    viewer.add_image(data.camera(), name="camera")
    widget = dock(viewer, "Metrics")
    assert widget.run() is None
    assert "at least one other test layer" in widget._status.value


def test_sample_data_opens_from_the_manifest(viewer):
    viewer.open_sample(PLUGIN, "camera-halftone")
    assert [layer.name for layer in viewer.layers] == [
        "camera",
        "camera [halftone floyd-steinberg]",
    ]
    ht = viewer.layers["camera [halftone floyd-steinberg]"]
    assert Degradation.from_layer_metadata(ht.metadata).method == "floyd-steinberg"


def test_degrading_twice_replaces_the_earlier_result(viewer, qtbot):
    viewer.add_image(data.camera()[:64, :64], name="camera")
    widget = dock(viewer, "Degrade")
    widget._mode.value = "quantize"
    for bits in (3, 3):
        widget._bits.value = bits
        widget.run()
        wait_for(qtbot, widget)
        qtbot.waitUntil(lambda: "camera [3-bit]" in viewer.layers)
    qtbot.wait(100)
    assert [layer.name for layer in viewer.layers] == ["camera", "camera [3-bit]"]
    widget._bits.value = 2  # another degradation: another layer
    widget.run()
    wait_for(qtbot, widget)
    qtbot.waitUntil(lambda: "camera [2-bit]" in viewer.layers)
    assert len(viewer.layers) == 3
