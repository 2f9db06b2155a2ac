"""Regenerate the user-guide screenshots from a real napari window.

Run headless with ``xvfb-run -a python docs/make_screenshots.py``.
"""

from __future__ import annotations

from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

HERE = Path(__file__).parent / "images"


def settle(seconds: float = 0.5) -> None:
    """Let Qt paint and workers deliver their results."""
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()


def run_and_wait(start) -> None:
    """Call a widget's start/run method and wait until its worker has finished."""
    finished = []
    start().finished.connect(lambda: finished.append(True))
    while not finished:
        settle(0.1)
    settle(0.5)


def main() -> None:
    HERE.mkdir(exist_ok=True)
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 850)
    viewer.open_sample("napari-compand", "astronaut")
    _, degrade = viewer.window.add_plugin_dock_widget("napari-compand", "Degrade")
    degrade._mode.value = "halftone"
    run_and_wait(degrade.run)
    viewer.scene.camera.zoom = 2.0
    viewer.scene.camera.center = (0, 120, 250)
    settle(1.0)
    viewer.screenshot(str(HERE / "degrade_widget.png"), canvas_only=False)

    _, metrics = viewer.window.add_plugin_dock_widget("napari-compand", "Metrics")
    degrade._mode.value = "quantize"
    degrade._bits.value = 3
    degrade._image.value = viewer.layers["astronaut"]
    run_and_wait(degrade.run)
    metrics.reset_choices()
    metrics._reference.value = viewer.layers["astronaut"]
    metrics._tests.value = [
        viewer.layers["astronaut [halftone floyd-steinberg]"],
        viewer.layers["astronaut [3-bit]"],
    ]
    run_and_wait(metrics.run)
    settle(1.0)
    viewer.screenshot(str(HERE / "metrics_widget.png"), canvas_only=False)
    viewer.close()

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 950)
    viewer.open_sample("napari-compand", "astronaut")
    _, train = viewer.window.add_plugin_dock_widget("napari-compand", "Train")
    train._layers.value = [viewer.layers["astronaut"]]
    train._iterations.value = 40
    train._batch.value = 4
    train._crop.value = 64
    train._width.value = 8
    train._out.value = Path("/tmp/napari-compand-screenshot.safetensors")
    run_and_wait(train.start)
    settle(1.0)
    viewer.screenshot(str(HERE / "train_widget.png"), canvas_only=False)
    viewer.close()

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 900)
    viewer.open_sample("napari-compand", "astronaut-halftone")
    halftoned = viewer.layers["astronaut [halftone floyd-steinberg]"]
    _, restore = viewer.window.add_plugin_dock_widget("napari-compand", "Restore")
    restore._image.value = halftoned
    run_and_wait(restore.run)
    viewer.layers["astronaut"].visible = False
    halftoned.visible = False
    viewer.scene.camera.zoom = 2.0
    viewer.scene.camera.center = (0, 120, 250)
    settle(1.0)
    viewer.screenshot(str(HERE / "restore_widget.png"), canvas_only=False)
    viewer.close()

    expansion()

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 900)
    viewer.open_sample("napari-compand", "astronaut-halftone")
    _, compare = viewer.window.add_plugin_dock_widget("napari-compand", "Compare models")
    compare._image.value = viewer.layers["astronaut [halftone floyd-steinberg]"]
    compare._reference.value = viewer.layers["astronaut"]
    run_and_wait(compare.run)
    for layer in list(viewer.layers)[:2]:
        layer.visible = False
    viewer.scene.camera.zoom = 3.0
    viewer.scene.camera.center = (0, 90, 230)
    viewer.dims.set_current_step(0, 1)  # the conv5_1 plane: its grid artifacts
    settle(1.0)
    viewer.screenshot(str(HERE / "compare_widget.png"), canvas_only=False)
    viewer.close()


def expansion() -> None:
    """Restore widget on a 3-bit layer, with the expansion options (keep in bin)."""
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 900)
    viewer.open_sample("napari-compand", "astronaut-3bit")
    low = viewer.layers["astronaut [3-bit]"]
    _, restore = viewer.window.add_plugin_dock_widget("napari-compand", "Restore")
    restore._image.value = low
    restore._consistent.value = True
    run_and_wait(restore.run)
    viewer.layers["astronaut"].visible = False
    viewer.layers[-1].visible = False  # the restored layer: show the 3-bit input's bands
    viewer.scene.camera.zoom = 2.5
    viewer.scene.camera.center = (0, 300, 120)
    settle(1.0)
    viewer.screenshot(str(HERE / "restore_expand_input.png"), canvas_only=False)
    viewer.layers[-1].visible = True
    settle(1.0)
    viewer.screenshot(str(HERE / "restore_expand_widget.png"), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    main()
