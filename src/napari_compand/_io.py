"""Reading and writing image files for the command line (Qt-free)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import imageio.v3 as iio
import numpy as np

__all__ = ["IMAGE_SUFFIXES", "collect_images", "read_image", "write_image"]

#: File suffixes picked up when a folder is given.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def collect_images(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (non-recursive) into a sorted list of image files.

    Raises
    ------
    FileNotFoundError
        If a path does not exist or a folder holds no images.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {path}")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return files


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file into an array (H, W) or (H, W, C)."""
    try:
        return np.asarray(iio.imread(path))
    except Exception as err:  # imageio raises many kinds
        raise OSError(f"could not read image {path}: {err}") from err


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write ``image`` losslessly (PNG, or TIFF for floats and ``.tif`` paths)."""
    path = Path(path)
    if image.dtype.kind == "f" and path.suffix.lower() not in (".tif", ".tiff"):
        path = path.with_suffix(".tif")
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, image)
    return path
