"""Fixtures shared by the test modules (plain helpers are in ``helpers.py``)."""

from __future__ import annotations

import imageio.v3 as iio
import pytest
from skimage import data


@pytest.fixture()
def viewer(make_napari_viewer):
    """A napari viewer (not shown), closed after the test."""
    return make_napari_viewer()


@pytest.fixture()
def photo_dir(tmp_path):
    """A folder with two small photos: ``astronaut.png`` (RGB) and ``camera.png`` (grey)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    iio.imwrite(folder / "astronaut.png", data.astronaut()[:96, :128])
    iio.imwrite(folder / "camera.png", data.camera()[:80, :64])
    return folder
