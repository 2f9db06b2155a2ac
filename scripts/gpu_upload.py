"""Make the upload of ``scripts/gpu_stage.sh`` fit the ``device`` tool's 64 MiB, and undo it.

    python scripts/gpu_upload.py prepare   # .gpu (data, warm starts); big folders out of the index
    # device run: carry [".gpu"], command "OUT=$OUT bash scripts/gpu_stage.sh"
    python scripts/gpu_upload.py restore   # the index and .git/info/exclude as they were

``prepare`` writes the ignored folder ``.gpu``:

* ``data/train``: BSDS500 train, ``runs/val80``, ``runs/wp40t`` and ``runs/kmc42``
  (``scripts/training_photos.py`` makes the last three); JPEG files are rewritten losslessly
  by ``jpegtran -optimize -progressive`` where it is installed (the same pixels, about 8 %
  fewer bytes), other files become JPEG quality 95 without chroma subsampling.
* ``data/held20``: the held-out validation images, the same way.
* ``weights``: the shipped warm start of every job, xz-compressed (about 11 % fewer bytes);
  ``gpu_stage.sh`` unpacks them into the zoo folder. With ``--init FOLDER`` (a second stage
  from the first one's exports): ``init`` with that folder's files instead, for
  ``STAGE=grown INIT=.gpu/init``.

It then takes the tracked folders that the device does not need (the zoo's 83 MB of weights,
checkpoints, docs/images) out of git's index and lists them in ``.git/info/exclude``, so the
working tree the tool copies holds only code, and prints the upload's size: tracked files
plus ``.gpu``. It fails, changing nothing in git, when that is over the limit. ``restore``
puts the folders back in the index and removes the exclude lines (the files never left the
disk). Run it before committing again.
"""

from __future__ import annotations

import argparse
import lzma
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # train_zoo, for the jobs' warm starts

ROOT = Path(__file__).resolve().parent.parent
#: Tracked folders the GPU stage does not need (weights of models it does not train, images).
LEFT_OUT = ("src/napari_compand/zoo/weights", "checkpoints", "docs/images")
#: The ``device`` tool's upload limit: working tree plus carried folders.
LIMIT = 64 * 2**20
#: What ``gpu_stage.sh`` trains (its five jobs; the four grown ones in a second stage).
JOBS = ("ex3_resunet", "ex4_resunet", "ex4_resunet_grey", "ih_resunet_fs", "ih_resunet_ordered")
MARK = "# gpu_upload.py: left out of the device's upload"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("prepare", "restore"))
    parser.add_argument("--out", type=Path, default=ROOT / ".gpu")
    parser.add_argument(
        "--train",
        nargs="+",
        type=Path,
        default=[
            ROOT / folder
            for folder in ("../shared/data/bsds/train", "runs/val80", "runs/wp40t", "runs/kmc42")
        ],
    )
    parser.add_argument("--held", type=Path, default=ROOT / "runs/held20")
    parser.add_argument("--jobs", nargs="+", default=list(JOBS))
    parser.add_argument(
        "--init",
        type=Path,
        help="a later stage: pack this folder's <job>.safetensors (the last stage's exports) "
        "into <out>/init instead of the zoo's warm starts",
    )
    args = parser.parse_args(argv)
    if args.action == "restore":
        restore()
        return
    data = args.out / "data"
    shutil.rmtree(args.out, ignore_errors=True)
    for source in args.train:
        copy_images(source, data / "train", prefix=f"{source.name}_")
    copy_images(args.held, data / "held20")
    if args.init is None:
        pack_warm_starts(args.jobs, args.out / "weights")
    else:
        for path in sorted(args.init.glob("*.safetensors")):
            xz(path, args.out / "init" / f"{path.name}.xz")
    size = upload_bytes(args.out)
    print(f"upload: {size / 2**20:.1f} MiB of {LIMIT / 2**20:.0f} (tracked files + {args.out})")
    if size > LIMIT:
        sys.exit("over the device tool's limit: git's index left as it was")
    leave_out()


def copy_images(source: Path, target: Path, prefix: str = "") -> None:
    """Every image of ``source`` into ``target`` as a compact JPEG (see the module)."""
    from napari_compand._io import collect_images

    target.mkdir(parents=True, exist_ok=True)
    lossless = shutil.which("jpegtran")
    for path in collect_images([source]):
        out = target / f"{prefix}{path.stem}.jpg"
        if path.suffix.lower() in (".jpg", ".jpeg"):
            if lossless:
                with open(out, "wb") as stream:
                    subprocess.run(
                        [lossless, "-optimize", "-progressive", "-copy", "none", str(path)],
                        stdout=stream,
                        check=True,
                    )
            else:
                shutil.copyfile(path, out)
        else:
            from PIL import Image

            Image.open(path).convert("RGB").save(
                out, quality=95, subsampling=0, optimize=True, progressive=True
            )


def pack_warm_starts(jobs: Sequence[str], target: Path) -> None:
    """The shipped warm start of each job, xz-compressed, under its zoo file name."""
    from train_zoo import zoo_init

    target.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        path = zoo_init(job)
        if path is None:
            sys.exit(f"{job}: no shipped model to start from")
        xz(path, target / f"{path.name}.xz")


def xz(path: Path, packed: Path) -> None:
    """``path`` compressed as tightly as xz can (fp16 weights: about 11 % fewer bytes)."""
    packed.parent.mkdir(parents=True, exist_ok=True)
    packed.write_bytes(lzma.compress(path.read_bytes(), preset=9 | lzma.PRESET_EXTREME))


def upload_bytes(carried: Path) -> int:
    """Tracked files outside :data:`LEFT_OUT` plus everything under ``carried``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    tracked = [
        ROOT / name.decode()
        for name in listed
        if name and not name.decode().startswith(tuple(f"{p}/" for p in LEFT_OUT))
    ]
    files = [p for p in tracked if p.is_file()] + [p for p in carried.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files)


def leave_out() -> None:
    """Take :data:`LEFT_OUT` out of git's index and ignore it (the files stay on disk)."""
    subprocess.run(["git", "rm", "-r", "-q", "--cached", *LEFT_OUT], cwd=ROOT, check=True)
    exclude = ROOT / ".git/info/exclude"
    lines = exclude.read_text().splitlines() if exclude.exists() else []
    if MARK not in lines:
        lines += [MARK, *(f"/{p}/" for p in LEFT_OUT)]
    exclude.write_text("\n".join(lines) + "\n")
    print(f"left out of git's index until `{Path(__file__).name} restore`: {', '.join(LEFT_OUT)}")


def restore() -> None:
    """Undo :func:`leave_out`."""
    subprocess.run(["git", "reset", "-q", "--", *LEFT_OUT], cwd=ROOT, check=True)
    exclude = ROOT / ".git/info/exclude"
    if exclude.exists():
        lines = exclude.read_text().splitlines()
        if MARK in lines:
            start = lines.index(MARK)
            lines = lines[:start] + lines[start + 1 + len(LEFT_OUT) :]
        exclude.write_text("\n".join(lines) + ("\n" if lines else ""))
    status = subprocess.run(
        ["git", "status", "--short", "--", *LEFT_OUT], cwd=ROOT, capture_output=True, text=True
    ).stdout
    print("index restored" + (f"; changes left:\n{status}" if status else ", nothing changed"))


if __name__ == "__main__":
    main()
