"""Helpers shared by the test modules (fixtures are in ``conftest.py``)."""

from __future__ import annotations

import numpy as np

PLUGIN = "napari-compand"


def dock(viewer, name: str):
    """Dock one of the plugin's widgets from the manifest; returns the widget."""
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    return widget


def wait_for(qtbot, widget, timeout: int = 120_000) -> None:
    """Wait until the widget's worker has finished (its run button is enabled again).

    Waiting on ``worker.finished`` after ``run()`` returned would race with a worker
    that ends at once; the widget connects its own slot before starting it.
    """
    qtbot.waitUntil(lambda: widget._run_button.enabled, timeout=timeout)


def smooth_images(count: int = 3, size: int = 64, seed: int = 0) -> list[np.ndarray]:
    """Generated smooth colour images (gradients + blobs), uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = []
    for _ in range(count):
        a, b, c = rng.random(3)
        channels = [
            np.clip(0.5 + 0.4 * np.sin(6 * a * xx + 4 * b * yy + k + c), 0, 1) for k in range(3)
        ]
        images.append((np.stack(channels, -1) * 255).astype(np.uint8))
    return images
