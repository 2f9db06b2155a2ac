"""Training data: clean images in memory, degraded on the fly, random crops and flips.

The degraded version of each (possibly flipped) clean image is made once with
:mod:`napari_compand.degrade` on the whole image, exactly as a user's image is
degraded before restoration, and cached; crops are then cut from both at the
same place. The crops of iteration ``i`` depend only on ``(seed, rank, i)``, so
a resumed run sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import os
import signal
from collections import OrderedDict
from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import count, product
from pathlib import Path

import numpy as np
import torch
from skimage.color import rgb2gray
from skimage.util import img_as_ubyte
from torch.utils.data import DataLoader, Dataset, get_worker_info

from .._compat import release_freed_memory
from .._io import collect_images, read_image, to_uint8_channels
from ..degrade import Degradation, add_noise, dither_thresholds

__all__ = ["PREFETCH", "SCALE_COPIES", "TrainingImages", "batch_rng", "downscaled", "to_tensor"]

#: The sizes the zoo's defaults were last trained at (each image also at 0.7 and 0.5 of its
#: size): the Train widget's "smaller copies" and the CLI's ``--scales 1 0.7 0.5``.
SCALE_COPIES = (1.0, 0.7, 0.5)


def to_tensor(
    batch: np.ndarray | torch.Tensor, device: torch.device | str | None = None
) -> torch.Tensor:
    """uint8 ``(N, H, W, C)`` -> float32 ``(N, C, H, W)`` in [0, 1], ``x / 255``.

    With ``device`` the uint8 batch is moved there first and converted there (a quarter of
    the bytes to copy, and no float work left for the CPU that makes the crops); on a GPU
    the result keeps the channels-last layout the models train in there.
    """
    planes = torch.as_tensor(batch)
    if device is not None:
        planes = planes.to(device, non_blocking=True)
    planes = planes.permute(0, 3, 1, 2)
    if not planes.is_cuda:
        planes = planes.contiguous()
    return planes.to(torch.float32).div_(255.0)


def batch_rng(seed: int, rank: int, iteration: int) -> np.random.Generator:
    """The random generator of one iteration's batch on one process."""
    return np.random.default_rng([seed, rank, iteration])


@dataclass
class _Flipped:
    clean: np.ndarray
    degraded: np.ndarray
    #: whether ``clean`` is an array of its own (a grey version), not a view of a source image
    owns_clean: bool = False

    @property
    def nbytes(self) -> int:
        """The memory this version holds beyond the source images."""
        return self.degraded.nbytes + (self.clean.nbytes if self.owns_clean else 0)


class TrainingImages:
    """Clean training images and their degraded versions.

    Parameters
    ----------
    images
        Clean images (any supported dtype; 2D grey or RGB(A)).
    degradation
        How inputs are made from the clean images; several (a halftone mix):
        each crop draws one, evenly.
    channels
        1 or 3: images are converted to this many channels.
    description
        Where the images came from (recorded in checkpoints).
    cache_bytes
        Degraded images (and the grey versions' clean images) are kept up to about
        this many bytes (oldest dropped first) and made again when needed.
    scales
        Each image is used at each of these sizes (1.0: as given; below 1: downscaled
        with a Lanczos filter, which also averages away JPEG blocks and chroma
        subsampling, so the smaller copies are cleaner targets); the description names
        them.
    """

    #: After this many newly degraded versions, freed memory is handed back to the system
    #: (:func:`release_freed_memory`).
    release_every: int = 64

    def __init__(
        self,
        images: Sequence[np.ndarray],
        degradation: Degradation | Sequence[Degradation],
        channels: int = 3,
        description: str = "arrays",
        cache_bytes: int = 4 * 2**30,
        scales: Sequence[float] = (1.0,),
    ) -> None:
        if len(images) == 0:
            raise ValueError("no training images given")
        scales = tuple(float(s) for s in scales)
        if not scales or any(not 0.0 < s <= 1.0 for s in scales):
            raise ValueError(f"scales must lie in (0, 1], got {scales}")
        images = [to_uint8_channels(image, channels) for image in images]
        if scales != (1.0,):
            images = [downscaled(image, s) for s in scales for image in images]
            description += " at scales " + ", ".join(f"{s:g}" for s in scales)
        self.images = images
        degradations = (
            (degradation,) if isinstance(degradation, Degradation) else tuple(degradation)
        )
        if not degradations:
            raise ValueError("no degradation given")
        self.degradations = degradations
        self.channels = channels
        self.description = description
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[tuple, _Flipped] = OrderedDict()
        self._cached_bytes = 0
        self._made_since_release = 0

    @property
    def degradation(self) -> Degradation:
        """The first degradation (the only one unless several were given)."""
        return self.degradations[0]

    @classmethod
    def from_paths(
        cls,
        paths: Sequence[str | Path],
        degradation: Degradation | Sequence[Degradation],
        channels: int = 3,
        scales: Sequence[float] = (1.0,),
    ) -> TrainingImages:
        """Images from files and folders (see :func:`napari_compand._io.collect_images`),
        used at each of ``scales`` (see the class)."""
        files = collect_images(paths)
        description = ", ".join(str(p) for p in paths) + f" ({len(files)} images)"
        images = [read_image(f) for f in files]
        return cls(images, degradation, channels, description, scales=scales)

    def __len__(self) -> int:
        return len(self.images)

    def pair(
        self,
        index: int,
        flip_h: bool = False,
        flip_v: bool = False,
        grey: bool = False,
        kind: int = 0,
    ) -> _Flipped:
        """Clean and degraded version of one image, flipped before degrading.

        ``grey``: a colour image's grey version in every channel, degraded as grey.
        ``kind``: index into :attr:`degradations`.
        """
        key = (index, flip_h, flip_v, grey, kind)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        return self._remember(key, self._degraded_pair(*key))

    def prepare(self, threads: int | None = None) -> int:
        """Degrade every version a batch can draw now, in ``threads`` parallel threads.

        The versions are every (image, horizontal flip, vertical flip, grey, degradation)
        combination; grey ones only for colour images. Training then only cuts crops, which
        matters for slow degradations such as a mix of error-diffusion halftones. Stops
        once the cache is full.

        Returns
        -------
        int
            How many versions are cached.
        """
        greys = (False, True) if self.channels == 3 else (False,)
        keys = [
            key
            for key in product(
                range(len(self.images)),
                (False, True),
                (False, True),
                greys,
                range(len(self.degradations)),
            )
            if key not in self._cache
        ]
        with ThreadPoolExecutor(threads or os.cpu_count() or 1) as pool:
            for key, pair in zip(
                keys, pool.map(lambda k: self._degraded_pair(*k), keys), strict=True
            ):
                if self._cached_bytes + pair.nbytes > self.cache_bytes:
                    pool.shutdown(wait=False, cancel_futures=True)
                    break
                self._remember(key, pair)
        release_freed_memory()
        return len(self._cache)

    def _degraded_pair(
        self, index: int, flip_h: bool, flip_v: bool, grey: bool, kind: int
    ) -> _Flipped:
        degradation = self.degradations[kind]
        clean = self.images[index]
        if flip_h:
            clean = clean[:, ::-1]
        if flip_v:
            clean = clean[::-1]
        if grey and self.channels == 3:  # a grey version: its clean image is new too
            plane = img_as_ubyte(rgb2gray(clean))[..., None]
            degraded = _degrade_planes(degradation, plane)
            return _Flipped(
                np.repeat(plane, 3, axis=-1), np.repeat(degraded, 3, axis=-1), owns_clean=True
            )
        # the flipped clean image stays a view; only the degraded one is stored
        return _Flipped(clean, _degrade_planes(degradation, clean))

    def _remember(self, key: tuple, pair: _Flipped) -> _Flipped:
        """Cache ``pair``, dropping the oldest versions beyond :attr:`cache_bytes`."""
        self._cache[key] = pair
        self._cached_bytes += pair.nbytes
        while self._cached_bytes > self.cache_bytes and len(self._cache) > 1:
            _, dropped = self._cache.popitem(last=False)
            self._cached_bytes -= dropped.nbytes
        self._made_since_release += 1
        if self._made_since_release >= self.release_every:
            self._made_since_release = 0
            release_freed_memory()
        return pair

    def sample(
        self,
        rng: np.random.Generator,
        batch_size: int,
        crop: int,
        *,
        device: torch.device | str | None = None,
        **options: float | bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of ``(degraded, clean)`` crops as ``(N, C, crop, crop)`` tensors in [0, 1]
        (on ``device``, converted there from uint8: see :func:`to_tensor`); ``options`` are
        :meth:`crops`' (``grey_fraction``, ``threshold_map``, ``noise_fraction``, ...)."""
        inputs, targets, maps = self.crops(rng, batch_size, crop, **options)
        return self._tensors(inputs, targets, maps, device)

    def crops(
        self,
        rng: np.random.Generator,
        batch_size: int,
        crop: int,
        grey_fraction: float = 0.0,
        threshold_map: bool = False,
        noise_fraction: float = 0.0,
        noise_sigma: float = 8.0,
        noise_shared: float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """:meth:`sample`'s batch before conversion: uint8 ``(N, crop, crop, C)`` degraded
        and clean crops, and the float32 ``(N, 1, crop, crop)`` threshold maps (or None).

        With ``grey_fraction > 0`` each crop is grey (see :meth:`pair`) with that
        probability. With several degradations each crop draws one. With
        ``threshold_map`` (ordered dithers only) the degraded crops get one more
        channel: the dither's thresholds at the crop's place in the image. With
        ``noise_fraction > 0`` each crop is noisy with that probability (see
        :meth:`noisy_crop`), and a noisy colour crop's noise is one field for all
        channels with probability ``noise_shared``; the noise comes from a generator
        seeded by ``rng`` after the crops are cut, so the crops are those of the same
        batch without noise.
        """
        inputs = np.empty((batch_size, crop, crop, self.channels), np.uint8)
        targets = np.empty_like(inputs)
        maps = np.empty((batch_size, 1, crop, crop), np.float32) if threshold_map else None
        drawn: list[tuple[bool, int]] = []  # each crop's (grey, kind), for the noise
        for n in range(batch_size):
            index = int(rng.integers(len(self.images)))
            flip_h, flip_v = bool(rng.integers(2)), bool(rng.integers(2))
            grey = bool(grey_fraction) and bool(rng.random() < grey_fraction)
            kind = int(rng.integers(len(self.degradations))) if len(self.degradations) > 1 else 0
            pair = self.pair(index, flip_h, flip_v, grey, kind)
            clean, degraded = _pad_to(pair.clean, crop), _pad_to(pair.degraded, crop)
            y = int(rng.integers(clean.shape[0] - crop + 1))
            x = int(rng.integers(clean.shape[1] - crop + 1))
            inputs[n] = degraded[y : y + crop, x : x + crop]
            targets[n] = clean[y : y + crop, x : x + crop]
            drawn.append((grey, kind))
            if maps is not None:
                maps[n, 0] = self._thresholds(kind, crop, y, x)
        if noise_fraction:
            noise_rng = np.random.default_rng(rng.integers(2**63))
            for n, (grey, kind) in enumerate(drawn):
                if noise_rng.random() < noise_fraction:
                    sigma = float(noise_rng.uniform(0.0, noise_sigma))
                    shared = bool(noise_shared) and bool(noise_rng.random() < noise_shared)
                    targets[n], inputs[n] = self.noisy_crop(
                        targets[n], sigma, grey, kind, noise_rng, shared
                    )
        return inputs, targets, maps

    def batches(
        self,
        seed: int,
        rank: int,
        start: int,
        batch_size: int,
        crop: int,
        *,
        workers: int = 0,
        device: torch.device | str | None = None,
        **options: float | bool,
    ) -> Generator[tuple[torch.Tensor, torch.Tensor], None, None]:
        """The batches of iterations ``start``, ``start + 1``, ... : each the one
        :meth:`sample` draws with :func:`batch_rng` ``(seed, rank, iteration)``.

        ``workers`` > 0 makes them ahead in that many processes, :data:`PREFETCH` batches
        per process, so crops are cut, degraded and made noisy while the trainer's device
        computes: the same batches, sooner where crop making is what the device waits for
        (noisy crops on a GPU). On Linux the processes are forked: each reads the degraded
        versions cached so far (e.g. by :meth:`prepare`) and keeps its part of the cache's
        room left, ``/ workers``, for its own; where processes are spawned (macOS, Windows)
        each gets a copy of the images. ``options`` are :meth:`sample`'s (``grey_fraction``,
        ``threshold_map``, ...).
        Closing the generator stops the processes.
        """
        if workers < 0:
            raise ValueError(f"workers must be 0 or more, got {workers}")
        if workers == 0:
            for iteration in count(start):
                rng = batch_rng(seed, rank, iteration)
                yield self.sample(rng, batch_size, crop, device=device, **options)
            return
        loader = DataLoader(
            _Batches(self, seed, rank, batch_size, crop, options),
            batch_size=None,
            sampler=count(start),
            num_workers=workers,
            prefetch_factor=PREFETCH,
            pin_memory=torch.device(device or "cpu").type == "cuda",
            worker_init_fn=_start_worker,
        )
        stream = iter(loader)
        try:
            for inputs, targets, maps in stream:
                yield self._tensors(inputs, targets, maps, device)
        finally:
            del stream  # shuts the worker processes down

    def noisy_crop(
        self,
        clean: np.ndarray,
        sigma: float,
        grey: bool,
        kind: int,
        rng: np.random.Generator,
        shared: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``clean`` (a uint8 ``(Y, X, C)`` crop) plus Gaussian noise of ``sigma`` levels,
        rounded and clipped, and that noisy crop degraded by degradation ``kind``.

        A grey crop (the same plane in every channel) gets the same noise in every
        channel and is degraded as grey, like :meth:`pair`'s grey versions. With
        ``shared`` a colour crop gets one noise field for all channels too (each
        channel stays its own colour).
        """
        degradation = self.degradations[kind]
        planes = 1 if grey or self.channels == 1 else clean.shape[-1]
        noisy = add_noise(clean[..., :planes], sigma, rng, shared)
        degraded = _degrade_planes(degradation, noisy)
        reps = clean.shape[-1] // planes
        return np.repeat(noisy, reps, axis=-1), np.repeat(degraded, reps, axis=-1)

    def _thresholds(self, kind: int, size: int, y: int, x: int) -> np.ndarray:
        """The threshold map of degradation ``kind`` on a crop at ``(y, x)`` (each
        version is dithered whole, from its top-left pixel)."""
        return dither_thresholds(self.degradations[kind].method, (size, size), (y, x))

    @classmethod
    def _tensors(
        cls,
        inputs: np.ndarray | torch.Tensor,
        targets: np.ndarray | torch.Tensor,
        maps: np.ndarray | torch.Tensor | None,
        device: torch.device | str | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`crops`' arrays as the ``(degraded, clean)`` tensors :meth:`sample` returns."""
        return cls._with_maps(to_tensor(inputs, device), maps), to_tensor(targets, device)

    @staticmethod
    def _with_maps(inputs: torch.Tensor, maps: np.ndarray | torch.Tensor | None) -> torch.Tensor:
        if maps is None:
            return inputs
        return torch.cat([inputs, torch.as_tensor(maps).to(inputs.device)], dim=1)

    def center_crops(
        self, size: int, limit: int, threshold_map: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Centre crops of the first ``limit`` images, for validation.

        With several degradations, image ``i`` gets degradation ``i mod count``;
        ``threshold_map`` as for :meth:`sample`.
        """
        inputs, targets, maps = [], [], []
        for index in range(min(limit, len(self.images))):
            kind = index % len(self.degradations)
            pair = self.pair(index, kind=kind)
            clean, degraded = _pad_to(pair.clean, size), _pad_to(pair.degraded, size)
            y = (clean.shape[0] - size) // 2
            x = (clean.shape[1] - size) // 2
            inputs.append(degraded[y : y + size, x : x + size])
            targets.append(clean[y : y + size, x : x + size])
            if threshold_map:
                maps.append(self._thresholds(kind, size, y, x)[None])
        stacked = np.stack(maps) if threshold_map else None
        return self._with_maps(to_tensor(np.stack(inputs)), stacked), to_tensor(np.stack(targets))


def _degrade_planes(degradation: Degradation, image: np.ndarray) -> np.ndarray:
    """A uint8 ``(Y, X, C)`` image degraded as grey (one plane) or as RGB, ``(Y, X, C)``."""
    if image.shape[-1] == 1:
        return degradation.apply(np.ascontiguousarray(image[..., 0]))[..., None]
    return degradation.apply(np.ascontiguousarray(image), rgb=True)


def downscaled(image: np.ndarray, scale: float) -> np.ndarray:
    """uint8 ``image`` (H, W[, C]) resized by ``scale`` (<= 1) with a Lanczos filter;
    1.0: unchanged."""
    from PIL import Image

    if scale == 1.0:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return downscaled(image[..., 0], scale)[..., None]
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def _pad_to(image: np.ndarray, size: int) -> np.ndarray:
    """Reflect-pad images smaller than ``size`` (bottom/right)."""
    pad_y, pad_x = max(0, size - image.shape[0]), max(0, size - image.shape[1])
    if pad_y or pad_x:
        return np.pad(image, ((0, pad_y), (0, pad_x), (0, 0)), mode="symmetric")
    return image


#: Batches each worker process of :meth:`TrainingImages.batches` makes ahead.
PREFETCH = 4


class _Batches(Dataset):
    """Iteration -> the uint8 crops :meth:`TrainingImages.crops` draws for it (what the
    worker processes of :meth:`TrainingImages.batches` make)."""

    def __init__(
        self,
        images: TrainingImages,
        seed: int,
        rank: int,
        batch_size: int,
        crop: int,
        options: dict[str, float | bool],
    ) -> None:
        self.images = images
        self.seed, self.rank = seed, rank
        self.batch_size, self.crop = batch_size, crop
        self.options = options

    def __getitem__(self, iteration: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        rng = batch_rng(self.seed, self.rank, iteration)
        return self.images.crops(rng, self.batch_size, self.crop, **self.options)


def _start_worker(worker: int) -> None:
    """Set up a worker process of :meth:`TrainingImages.batches`: the degraded versions
    cached before the fork (shared, copy-on-write) plus its part of the room left,
    ``(cache_bytes - cached) / workers``; Ctrl+C left to the training process (which stops
    the run with a checkpoint, then the workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    info = get_worker_info()
    images = info.dataset.images
    room = max(0, images.cache_bytes - images._cached_bytes)
    images.cache_bytes = images._cached_bytes + room // info.num_workers
