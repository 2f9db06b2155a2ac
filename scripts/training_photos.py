"""Build the training folders of the CPU photo stages from Debian packages and BSDS500.

The shipped models' metadata names these folders (``runs/wp16t``, ``runs/wp40t``,
``runs/val80``, ``runs/held20``); this script makes them again on any Debian machine:

- ``wp16t``: 16 photographs from Debian's ``lomiri-wallpapers-16.04`` and ``-20.04``
  packages; ``wp40t``: those and 24 more from ``mate-backgrounds`` (its ``nature`` set) and
  ``plasma-workspace-wallpapers`` (the photographs among them, not the drawings). Each is
  downscaled with Lanczos to 1,024 px on its long side (which also removes most of its
  JPEG artefacts) and cut into four quarters, ``<name>_<column><row>.png``.
- Authors and licences (from the packages' ``copyright`` files and wallpaper metadata):
  lomiri-wallpapers: Aitzol Berasategi, Trevor Freespace, Abhishek Mudgal, Jakub Mede
  (CC BY 4.0), Peter Nerlich, Sander Klootwijk, Bolly (CC BY-SA 4.0), Lukas Baubkus
  (CC BY-SA 3.0), Clemens Engelhardt (CC0); mate-backgrounds' nature set (GPL-2+):
  Charles Barbin, Lennart Poettering and Andrea Cimitan, Marco Cogoni and Hylke Bons,
  Jens Ansorg, Timothy Schellhase and Lapo Calamandrei, "blackcombwhistler07", Sergey
  Nazarov, Jean-François Fortin Tam; plasma-workspace-wallpapers (LGPL-3): Maciej Wiklo,
  Risto Saukonpää, Dmitri Popov, Ian Hex, Martin Klapetek, Sigi Sagi, and Nikita Babin
  (CC BY-SA 4.0).
- ``kmc42``: the 24 Kodak photographs (Kodak Lossless True Colour Image Suite, released by
  Eastman Kodak for unrestricted use) and the 18 McMaster images (Zhang, Wu, Buades and Li,
  J. Electron. Imaging 2011; research use), both as the 500x500 crops that the FFDNet
  repository keeps in ``testsets/Kodak24`` and ``testsets/McMaster`` (github.com/cszn/FFDNet,
  commit ``e787f46df2f374ff3591186706229cb9a0591fea``), saved as PNG: ``--ffdnet`` names a
  local clone (a git directory or work tree) at that commit. None of them is in Set5, Set14 or
  BSDS500.
- ``urban100``: the 100 colour Urban100 photographs (Huang, Singh and Ahuja, CVPR 2015; Flickr
  photographs of buildings, research use), lossless PNG, about 1,024 px on the long side, from
  ``CUrban100`` of github.com/majedelhelou/denoising_datasets (commit ``58234876``, the one
  that Set5 and Set14 in ``shared/data`` come from): ``--urban`` names a local clone. None of
  them is in Set5, Set14 or BSDS500.
- ``val80`` / ``held20``: links to the first 80 / last 20 BSDS500 val images (sorted by
  name): the first go into training, the last are the held-out images that
  ``train_zoo.py --keep-best`` validates on.

Example::

    python scripts/training_photos.py --out runs --bsds-val ../shared/data/bsds/val
    python scripts/training_photos.py --out runs --sets --ffdnet /path/to/FFDNet.git
    python scripts/training_photos.py --out runs --sets --urban /path/to/denoising_datasets.git
"""

from __future__ import annotations

import argparse
import io
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

#: package -> the photographs used from it (paths inside the package).
LOMIRI = {
    "lomiri-wallpapers-16.04": [
        f"usr/share/backgrounds/{name}.jpg"
        for name in (
            "Bridge_by_Sander_Klootwijk",
            "Dragonfly_by_Bolly",
            "Picture_0B_by_freespace",
            "Picture_1A_by_freespace",
            "Wine_by_Jakkub_Mede",
            "aitzgorri_by_Aitzol_Berasategi",
            "analogpattern_by_Peter_Nerlich",
            "free_by_Peter_Nerlich",
            "friends_by_Aitzol_Berasategi",
            "greentock_by_Peter_Nerlich",
            "life_by_Aitzol_Berasategi",
            "picosdeeuropa_by_Aitzol_Berasategi",
            "seeding_by_Clements_Engelhardt",
            "sunset_by_Aitzol_Berasategi",
            "umang_by_Abhishek_Mudgal",
        )
    ],
    "lomiri-wallpapers-20.04": ["usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg"],
}
MORE = {
    "mate-backgrounds": [
        f"usr/share/backgrounds/mate/nature/{name}.jpg"
        for name in [
            "Aqua",
            "Blinds",
            "Dune",
            "FreshFlower",
            "Garden",
            "GreenMeadow",
            "LadyBird",
            "RainDrops",
            "Storm",
            "TwoWings",
            "Wood",
            "YellowFlower",
        ]
    ],
    "plasma-workspace-wallpapers": [
        f"usr/share/wallpapers/{name}/contents/images/{size}.jpg"
        for name, size in (
            ("BytheWater", "2560x1600"),
            ("ColdRipple", "2560x1600"),
            ("ColorfulCups", "2560x1600"),
            ("DarkestHour", "2560x1600"),
            ("EveningGlow", "2560x1600"),
            ("FallenLeaf", "2560x1600"),
            ("Grey", "2560x1600"),
            ("Kite", "2560x1600"),
            ("OneStandsOut", "2560x1600"),
            ("Path", "2560x1600"),
            ("Volna", "5120x2880"),
            ("summer_1am", "2560x1600"),
        )
    ],
}
PHOTO_SETS = {"wp16t": LOMIRI, "wp40t": {**LOMIRI, **MORE}}
LONG_SIDE = 1024


def quarters(image: Image.Image, long_side: int = LONG_SIDE) -> list[Image.Image]:
    """``image`` downscaled (Lanczos) to ``long_side`` px on its long side, in four quarters
    (top left, top right, bottom left, bottom right)."""
    if max(image.size) < long_side:
        raise ValueError(f"a {image.size[0]}x{image.size[1]} image is below {long_side} px")
    scale = long_side / max(image.size)
    small = image.convert("RGB").resize(
        (round(image.size[0] * scale), round(image.size[1] * scale)), Image.LANCZOS
    )
    w, h = small.size
    return [
        small.crop((x * w // 2, y * h // 2, (x + 1) * w // 2, (y + 1) * h // 2))
        for y in (0, 1)
        for x in (0, 1)
    ]


def _photo_name(member: str) -> str:
    # a plasma wallpaper is named by its folder, the others by their file
    parts = Path(member).parts
    return parts[3] if parts[:3] == ("usr", "share", "wallpapers") else Path(member).stem


def build_photos(name: str, out: Path) -> int:
    """Download the packages of photo set ``name`` and write its quarters to ``out/name``."""
    Image.MAX_IMAGE_PIXELS = None
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        for package, members in PHOTO_SETS[name].items():
            subprocess.run(["apt-get", "download", package], cwd=tmp, check=True)
            (deb,) = Path(tmp).glob(f"{package}_*.deb")
            root = Path(tmp) / package
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
            for member in members:
                with Image.open(root / member) as image:
                    parts = quarters(image)
                for i, part in enumerate(parts):
                    part.save(folder / f"{_photo_name(member)}_{i % 2}{i // 2}.png")  # column, row
                    count += 1
    return count


#: The commit of github.com/cszn/FFDNet whose test images make ``kmc42``.
FFDNET_COMMIT = "e787f46df2f374ff3591186706229cb9a0591fea"


def _images_at(clone: Path, commit: str, *folders: str) -> Iterator[tuple[str, Image.Image]]:
    """``(path, image)`` for every file under ``folders`` of a git clone at ``commit``."""
    git = ["git", "-C", str(clone)]
    listing = subprocess.run(
        [*git, "ls-tree", "-r", "--name-only", commit, *folders],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    if not listing:
        raise ValueError(f"{clone} has no files under {', '.join(folders)} at {commit}")
    for member in listing:
        data = subprocess.run(
            [*git, "show", f"{commit}:{member}"], check=True, capture_output=True
        ).stdout
        with Image.open(io.BytesIO(data)) as image:
            yield member, image.convert("RGB")


def build_kodak_mcmaster(ffdnet: Path, out: Path) -> int:
    """Write the Kodak and McMaster test images of an FFDNet clone to ``out/kmc42`` as PNG
    (``kodim01.png`` ..., ``mcmaster01.png`` ...), read at :data:`FFDNET_COMMIT`."""
    folder = out / "kmc42"
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for member, image in _images_at(ffdnet, FFDNET_COMMIT, "testsets/Kodak24", "testsets/McMaster"):
        stem = Path(member).stem
        name = stem if stem.startswith("kodim") else f"mcmaster{int(stem):02d}"
        image.save(folder / f"{name}.png")
        count += 1
    return count


#: The commit of github.com/majedelhelou/denoising_datasets whose ``CUrban100`` makes
#: ``urban100`` (the commit that Set5 and Set14 in ``shared/data`` come from).
DENOISING_DATASETS_COMMIT = "58234876fef6f1b56306705c78dfd40cdb837b86"


def build_urban100(clone: Path, out: Path) -> int:
    """Write the 100 colour Urban100 photographs of a denoising_datasets clone to
    ``out/urban100`` (``img_001.png`` ...), read at :data:`DENOISING_DATASETS_COMMIT`."""
    folder = out / "urban100"
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for member, image in _images_at(clone, DENOISING_DATASETS_COMMIT, "CUrban100"):
        image.save(folder / f"{Path(member).stem}.png")
        count += 1
    return count


def split_val(bsds_val: Path, out: Path, held_out: int = 20) -> None:
    """Link BSDS500 val into ``out/val80`` (all but the last ``held_out``, sorted by name)
    and ``out/held20`` (the last ``held_out``)."""
    images = sorted(p for p in bsds_val.iterdir() if p.suffix.lower() in {".jpg", ".png"})
    for folder, part in (("val80", images[:-held_out]), ("held20", images[-held_out:])):
        (out / folder).mkdir(parents=True, exist_ok=True)
        for path in part:
            link = out / folder / path.name
            if not link.exists():
                link.symlink_to(path.resolve())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs"))
    parser.add_argument("--sets", nargs="*", choices=sorted(PHOTO_SETS), default=["wp40t"])
    parser.add_argument(
        "--ffdnet", type=Path, help="a clone of github.com/cszn/FFDNet: also make kmc42"
    )
    parser.add_argument(
        "--urban",
        type=Path,
        help="a clone of github.com/majedelhelou/denoising_datasets: also make urban100",
    )
    parser.add_argument("--bsds-val", type=Path, help="BSDS500's val folder, to split")
    args = parser.parse_args(argv)
    for name in args.sets:
        n = build_photos(name, args.out)
        print(f"{args.out / name}: {n} quarters of {n // 4} photographs")
    if args.ffdnet:
        n = build_kodak_mcmaster(args.ffdnet, args.out)
        print(f"{args.out / 'kmc42'}: {n} Kodak and McMaster images")
    if args.urban:
        n = build_urban100(args.urban, args.out)
        print(f"{args.out / 'urban100'}: {n} Urban100 photographs")
    if args.bsds_val:
        split_val(args.bsds_val, args.out)
        print(f"{args.out / 'val80'}, {args.out / 'held20'}: BSDS500 val split")


if __name__ == "__main__":
    main()
