"""``python -m napari_compand``: the same command line as ``napari-compand``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
