"""Fixtures shared by the test modules (plain helpers are in ``helpers.py``)."""

from __future__ import annotations

import pytest


@pytest.fixture()
def viewer(make_napari_viewer):
    """A napari viewer (not shown), closed after the test."""
    return make_napari_viewer()
