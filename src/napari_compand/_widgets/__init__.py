"""Thin napari widgets over the Qt-free core (wired only through ``napari.yaml``)."""
