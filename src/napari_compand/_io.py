"""Reading and writing files for the command line (Qt-free), safely.

Rules every command follows (see :func:`plan_outputs` and :func:`check_output`):

* an input is never written over, not even with ``--overwrite``;
* an existing file is replaced only with ``overwrite=True``;
* inputs with the same stem get distinct outputs (``x.png`` and ``x.jpg`` give
  ``x_png_…`` and ``x_jpg_…``; ``a/img.png`` and ``b/img.png`` give ``a_img_…`` and
  ``b_img_…``);
* every output path is checked before any work starts;
* files are written to a temporary name next to the target and renamed into
  place, so a crash never leaves a half-written file behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from ._validation import check_image, halftone_from_bool

__all__ = [
    "IMAGE_SUFFIXES",
    "OutputError",
    "check_output",
    "collect_images",
    "distinct_stems",
    "output_suffix",
    "plan_outputs",
    "read_image",
    "to_uint8_channels",
    "unused_path",
    "write_atomic",
    "write_image",
]

#: File suffixes picked up when a folder is given.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

#: Suffixes that TIFF readers handle (orientation from the TIFF tag, not EXIF).
_TIFF = (".tif", ".tiff")


class OutputError(FileExistsError):
    """An output path would replace an input or an existing file, or cannot be written."""


def collect_images(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (non-recursive) into a list of image files.

    Folders contribute their image files in sorted order; a file named twice is
    kept once.

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
    seen: set[Path] = set()
    unique = []
    for file in files:
        key = file.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(file)
    return unique


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file into an array (H, W) or (H, W, C).

    The orientation tag (EXIF in JPEG/PNG, tag 274 in TIFF) is applied, so the
    array is upright the way image viewers show the file. A 1-bit file (the usual
    way to store a halftone) reads as uint8 0 / 255.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in _TIFF:
            image = _tiff_upright(path, np.asarray(iio.imread(path)))
        else:
            image = np.asarray(iio.imread(path, rotate=True))
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path}") from None
    except Exception as err:  # imageio raises many kinds, with install hints for plugins
        raise OSError(
            f"could not read image {path}: the file is damaged, truncated or not an image "
            f"({type(err).__name__})"
        ) from err
    return halftone_from_bool(image) if image.dtype == bool else image


def _tiff_upright(path: Path, image: np.ndarray) -> np.ndarray:
    """Apply a TIFF's Orientation tag (1-8, as EXIF) to a 2D grey or colour image."""
    import tifffile

    with tifffile.TiffFile(path) as tiff:
        tag = tiff.pages[0].tags.get("Orientation")
        orientation = int(tag.value) if tag is not None else 1
    colour = image.ndim == 3 and image.shape[-1] <= 4
    if orientation == 1 or image.ndim != 2 + colour:  # stacks are left as stored
        return image
    transpose = lambda a: a.swapaxes(0, 1)  # noqa: E731
    upright = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: transpose,
        6: lambda a: np.rot90(a, -1),
        7: lambda a: transpose(a)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }.get(orientation, lambda a: a)
    return np.ascontiguousarray(upright(image))


def output_suffix(path: Path, dtype: np.dtype | None = None) -> str:
    """Suffix of a lossless output for input ``path``: its own for PNG/TIFF, else PNG;
    TIFF for float data."""
    if dtype is not None and np.dtype(dtype).kind == "f":
        return path.suffix if path.suffix.lower() in _TIFF else ".tif"
    return path.suffix if path.suffix.lower() in (".png", *_TIFF) else ".png"


def distinct_stems(files: Sequence[Path]) -> list[str]:
    """One name per file, distinct whenever the files are.

    The stem; where several files share it, the suffix (``x_png``, ``x_jpg``) or
    the parent folder's name (``a_img``, ``b_img``) is added, whichever tells them
    apart, and a number as the last resort.

    >>> distinct_stems([Path("a/x.png"), Path("a/x.jpg"), Path("b/y.png")])
    ['x_png', 'x_jpg', 'y']
    >>> distinct_stems([Path("a/img.png"), Path("b/img.png")])
    ['a_img', 'b_img']
    """
    names = [f.stem for f in files]
    for _ in range(2):
        for indices in _clashes(names):
            suffixes = [files[i].suffix.lstrip(".").lower() for i in indices]
            parents = [files[i].resolve().parent.name for i in indices]
            for i, suffix, parent in zip(indices, suffixes, parents, strict=True):
                if len(set(suffixes)) == len(indices) or len(set(parents)) == 1:
                    names[i] = f"{names[i]}_{suffix}" if len(set(suffixes)) > 1 else names[i]
                else:
                    names[i] = f"{parent}_{names[i]}"
    for indices in _clashes(names):
        for number, i in enumerate(indices, start=1):
            names[i] = f"{names[i]}-{number}"
    return names


def _clashes(names: list[str]) -> list[list[int]]:
    """Indices of the names that occur more than once, grouped by name."""
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(name, []).append(i)
    return [indices for indices in groups.values() if len(indices) > 1]


def plan_outputs(
    inputs: Sequence[Path],
    folder: Path,
    name: Callable[[Path, str], str],
    *,
    overwrite: bool = False,
) -> list[Path]:
    """The output file of every input, checked before any work starts.

    Parameters
    ----------
    inputs
        Input files, in order.
    folder
        Output folder (created if missing).
    name
        ``name(input, distinct_stem) -> file name``.
    overwrite
        Allow replacing existing files (never an input).

    Raises
    ------
    OutputError
        If an output would be an input, exists (without ``overwrite``), or the
        folder is a file or not writable.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"--out {folder} is a file; give a folder for the results")
    outputs = [
        folder / name(path, stem) for path, stem in zip(inputs, distinct_stems(inputs), strict=True)
    ]
    _refuse_inputs(outputs, inputs)
    if not overwrite:
        existing = [p for p in outputs if p.exists()]
        if existing:
            raise OutputError(
                f"{len(existing)} output file(s) exist already, e.g. {existing[0]}; pass "
                "--overwrite to replace them, or choose another --out folder"
            )
    _check_writable(folder)
    return outputs


def check_output(
    path: Path,
    inputs: Iterable[Path] = (),
    *,
    overwrite: bool = False,
    what: str = "output",
    how_to_replace: str = "pass --overwrite to replace it",
) -> Path:
    """Check one output file before the work: not an input, not a folder, not an
    existing file unless ``overwrite``, in a writable folder (created if missing).

    ``how_to_replace`` ends the message about an existing file (the command line's
    flag by default; a widget names its check box).

    Raises
    ------
    OutputError
        Naming ``what`` and the path.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder; give a file name")
    _refuse_inputs([path], list(inputs), what)
    if path.exists() and not overwrite:
        raise OutputError(f"{what} {path} exists already; {how_to_replace}, or choose another name")
    _check_writable(path.parent)
    return path


def unused_path(
    path: str | Path, companions: Callable[[Path], Iterable[Path]] = lambda _: ()
) -> Path:
    """``path`` if neither it nor its ``companions(path)`` exist, else the first free
    ``<stem>_2<suffix>``, ``<stem>_3<suffix>`` ... in the same folder: a proposal for
    the next output that replaces nothing."""
    path = Path(path)
    candidate, number = path, 2
    while any(p.exists() for p in (candidate, *companions(candidate))):
        candidate = path.with_name(f"{path.stem}_{number}{path.suffix}")
        number += 1
    return candidate


def _refuse_inputs(outputs: Sequence[Path], inputs: Sequence[Path], what: str = "output") -> None:
    resolved = {p.resolve() for p in inputs}
    identities = {_identity(p) for p in inputs} - {None}  # hard links resolve differently
    for out in outputs:
        if out.resolve() in resolved or _identity(out) in identities:
            raise OutputError(
                f"{what} {out} is one of the inputs; refusing to write over it "
                "(choose another name or folder)"
            )


def _identity(path: Path) -> tuple[int, int] | None:
    """``(device, inode)`` of an existing file, ``None`` otherwise."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise OutputError(f"cannot write into {folder}: {err.strerror or err}") from err


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary)`` for a temporary file next to ``path``, then rename it
    into place: readers see the old file or the complete new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent
    )
    os.close(handle)
    try:
        write(Path(temporary))
        mask = os.umask(0o022)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)  # mkstemp makes 0600; use the usual mode
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write ``image`` losslessly (PNG, or TIFF for floats and ``.tif`` paths), atomically."""
    path = Path(path)
    if image.dtype.kind == "f" and path.suffix.lower() not in _TIFF:
        path = path.with_suffix(".tif")
    return write_atomic(path, lambda temporary: iio.imwrite(temporary, image))


def to_uint8_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """Any supported image -> uint8 ``(H, W, channels)`` (alpha dropped, grey <-> RGB):
    how training and evaluation read clean images."""
    from skimage.color import gray2rgb, rgb2gray
    from skimage.util import img_as_ubyte

    array = check_image(image, unit_range=True)
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        array = array[..., :3]
    elif array.ndim == 3 and array.shape[-1] == 2:  # grey + alpha
        array = array[..., 0]
    elif array.ndim != 2:
        raise ValueError(
            f"training images must be 2D grey, grey + alpha or RGB(A), got shape {array.shape}; "
            "split stacks into planes first"
        )
    array = img_as_ubyte(array)
    if channels == 3 and array.ndim == 2:
        array = gray2rgb(array)
    elif channels == 1 and array.ndim == 3:
        array = img_as_ubyte(rgb2gray(array))
    return array.reshape(array.shape[:2] + (channels,))
