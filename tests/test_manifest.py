"""The npe2 manifest is valid and every command points at real code."""

from __future__ import annotations

import importlib

from npe2 import PluginManifest


def test_manifest_is_valid_and_commands_resolve():
    manifest = PluginManifest.from_distribution("napari-compand")
    assert manifest.name == "napari-compand"
    contributions = manifest.contributions
    assert {w.display_name for w in contributions.widgets} >= {"Degrade", "Metrics"}
    assert {s.key for s in contributions.sample_data} >= {
        "astronaut",
        "camera",
        "astronaut-halftone",
    }
    for command in contributions.commands:
        module, _, attr = command.python_name.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), command.id


def test_core_imports_without_qt_or_napari():
    code = (
        "import sys, napari_compand, napari_compand.degrade, napari_compand.metrics, "
        "napari_compand.cli; "
        "qt = ('napari', 'qtpy', 'PyQt6', 'PyQt5', 'PySide6'); "
        "bad = [m for m in sys.modules if m.split('.')[0] in qt]; "
        "assert not bad, bad"
    )
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", code], check=True)


def test_sample_data_pairs_clean_and_degraded():
    from napari_compand import _sample_data
    from napari_compand.degrade import Degradation

    (clean, clean_meta, _), (ht, ht_meta, kind) = _sample_data.astronaut_halftone()
    assert kind == "image" and ht_meta["name"] == "astronaut [halftone floyd-steinberg]"
    assert clean.shape == ht.shape == (512, 512, 3)
    assert set(clean_meta) >= {"name", "rgb"}
    assert set(map(int, set(ht.ravel()))) == {0, 255}
    assert Degradation.from_layer_metadata(ht_meta["metadata"]).method == "floyd-steinberg"
    ((gray, _, _),) = _sample_data.camera()
    assert gray.ndim == 2
