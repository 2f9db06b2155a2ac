"""Run from outside the source tree in a fresh environment holding only the built wheel.

Checks what a user installing from PyPI / the napari hub gets: napari discovers the
plugin, and the zoo loads and runs its checkpoints from the installed package.
"""

from __future__ import annotations

import sys
from pathlib import Path

from skimage import data

import napari_compand
from napari_compand import zoo
from napari_compand.degrade import detect_degradation, halftone
from napari_compand.evaluation import baseline
from napari_compand.inference import restore
from napari_compand.metrics import psnr

package = Path(napari_compand.__file__).resolve().parent
assert "site-packages" in package.parts, f"not the installed wheel: {package}"

from napari.plugins import _initialize_plugins  # noqa: E402
from npe2 import PluginManager  # noqa: E402

_initialize_plugins()
manifest = PluginManager.instance().get_manifest("napari-compand")
widgets = {w.display_name for w in manifest.contributions.widgets}
assert {"Degrade", "Restore", "Compare models", "Metrics", "Train"} <= widgets, widgets

required = {"inverse-halftone/conv1_1", "inverse-halftone/conv5_1", "expand-3bit/conv1_1"}
assert required <= set(zoo.names()), zoo.names()
clean = data.astronaut()[:256, :256]
dots = halftone(clean, rgb=True)
for model in zoo.shipped():
    assert model.path.resolve().is_relative_to(package), model.path
    assert model.path.stat().st_size <= 8 * 2**20
shipped = {path.name for path in (package / "zoo" / "weights").glob("*.safetensors")}
assert len(zoo.shipped()) == len(shipped), (len(zoo.shipped()), sorted(shipped))
# the error-diffusion detector's discriminant ships as package data
found = detect_degradation(halftone(clean, "jarvis-judice-ninke", rgb=True))
assert found.method == "jarvis-judice-ninke", found
default = zoo.default_model("inverse-halftone")
blur = psnr(clean, baseline("gaussian", None)(dots), rgb=True)
gains = {
    name: psnr(clean, restore(dots, name), rgb=True) - blur
    for name in ("inverse-halftone/conv1_1", default)
}
assert min(gains.values()) > 1, gains
print(
    f"wheel OK: napari found {sorted(widgets)}; {len(zoo.names())} zoo models load from "
    f"{package}; over a Gaussian blur: "
    + ", ".join(f"{name} +{gain:.2f} dB" for name, gain in gains.items()),
    file=sys.stderr,
)
