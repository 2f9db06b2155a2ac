"""What the restoration widgets and the Inverse halftone command share."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image
from napari.qt.threading import GeneratorWorker
from napari.utils.notifications import show_info, show_warning

from .. import zoo
from .._validation import guess_rgb
from ..degrade import METADATA_KEY, Degradation, detect_degradation
from ..inference import (
    LoadedModel,
    RestoreOptions,
    TileSizeWarning,
    default_views,
    fit_warning,
    load_model,
    restore_steps,
    tile_count,
    tiling,
)
from ..vocabulary import Task
from ._common import add_or_replace, derived_layer, layer_data, start_job

if TYPE_CHECKING:
    import napari

__all__ = [
    "guess_task",
    "degradation_note",
    "layer_degradation",
    "model_choices",
    "task_of",
    "output_label",
    "start_restoration",
]


def layer_degradation(layer: Image) -> Degradation | None:
    """How ``layer`` was degraded: its metadata's record (layers this plugin made),
    else what :func:`~napari_compand.degrade.detect_degradation` finds in its pixels
    (in-memory data only; lazy data is not read on the GUI thread)."""
    spec = Degradation.from_layer_metadata(layer.metadata)
    if spec is not None or not isinstance(layer.data, np.ndarray) or layer.multiscale:
        return spec
    try:
        return detect_degradation(layer.data, rgb=layer.rgb)
    except (TypeError, ValueError):  # not an intensity image this package handles
        return None


def degradation_note(layer: Image | None, spec: Degradation | None) -> str:
    """What ``layer`` looks like (``spec``, from :func:`layer_degradation`) and how that is
    known, for a widget's status line."""
    if layer is None:
        return ""
    if spec is None:
        return f"{layer.name!r}: no halftone or bit depth recognised; choose the task"
    known = Degradation.from_layer_metadata(layer.metadata) is not None
    return f"{layer.name!r}: {spec.label} (from its {'metadata' if known else 'pixels'})"


def task_of(spec: Degradation | None) -> tuple[Task, int | None] | None:
    """``(task, bits)`` that restores data degraded by ``spec``, if known; ``bits`` is
    ``None`` for halftones."""
    if spec is None:
        return None
    task = Task.from_degradation(spec)
    return task, spec.bits if task is Task.EXPAND else None


def guess_task(layer: Image | None) -> tuple[Task, int | None] | None:
    """:func:`task_of` the layer's degradation (metadata, else pixels)."""
    return None if layer is None else task_of(layer_degradation(layer))


def model_choices(task: str | None = None, bits: int | None = None) -> list[tuple[str, str]]:
    """``(label, zoo name)`` of the models for ``task`` (all if ``None``), session ones last."""
    choices = []
    for model in zoo.models():
        if task is not None and model.task != task:
            continue
        if task == Task.EXPAND and bits is not None and model.bits != bits:
            continue
        choices.append((model.name, model.name))
    return choices


def output_label(loaded: LoadedModel) -> str:
    """``inverse halftone conv1_1``, ``expand 3-bit conv1_1``, or the file's name."""
    if loaded.task is None:
        return loaded.name
    try:
        _, _, variant = Task.parse_model_name(loaded.name)
    except ValueError:  # a checkpoint file or session model: its own name
        variant = loaded.name.rsplit("/", 1)[-1]
    task = Task(loaded.task)
    label = task.label + (f" {loaded.bits}-bit" if task is Task.EXPAND else "")
    return f"{label} {variant}"


def restoration_metadata(source: Image, loaded: LoadedModel) -> dict[str, Any]:
    """Layer metadata recording which model made a restored layer."""
    return {
        METADATA_KEY: {
            "restoration": {"model": loaded.name, "task": loaded.task},
            "source": source.name,
        }
    }


def _job(data, model, rgb, settings) -> Generator[tuple[int, int], None, np.ndarray]:
    result = yield from restore_steps(data, model, rgb=rgb, **settings)
    return result


def start_restoration(
    viewer: napari.viewer.Viewer,
    source: Image,
    model: str | LoadedModel,
    *,
    on_error: Callable[[str], None],
    on_done: Callable[[Image], None] | None = None,
    on_finished: Callable[[], None] | None = None,
    **settings: Any,
) -> GeneratorWorker:
    """Restore ``source`` with ``model`` in a thread worker; adds ``<name> [<label>]``.

    ``settings`` go to :func:`~napari_compand.inference.restore_steps` (device,
    tile_size, ...). Errors (bad model file, bad data) are raised here when they
    can be found at once, otherwise passed to ``on_error`` from the worker.
    """
    loaded = load_model(model)
    data = layer_data(source)
    rgb = guess_rgb(data, source.rgb)
    if isinstance(data, np.ndarray) or METADATA_KEY in source.metadata:
        mismatch = fit_warning(loaded, layer_degradation(source))
        if mismatch is not None:
            show_warning(f"{source.name!r}: {mismatch}; restoring anyway")
    views = RestoreOptions(self_ensemble=settings.get("self_ensemble")).self_ensemble
    suffix = ", in bin" if settings.get("consistent") else ""
    if views is not None and views != default_views(loaded):  # name what is not the default
        suffix += f", {views} view" + ("s" if views > 1 else "")
    name = f"{source.name} [{output_label(loaded)}{suffix}]"
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always", TileSizeWarning)
        tile_size, overlap = tiling(
            loaded, settings.get("tile_size", 1024), settings.get("overlap")
        )
    for warning in raised:  # a tile size too small for this network: say so
        show_info(str(warning.message))
    settings = {**settings, "tile_size": tile_size, "overlap": overlap}
    total = tile_count(data.shape, loaded, rgb=rgb, tile_size=tile_size, overlap=overlap)

    def add_result(result: np.ndarray) -> None:
        layer = add_or_replace(
            viewer, derived_layer(source, result, name, restoration_metadata(source, loaded))
        )
        if on_done is not None:
            on_done(layer)

    return start_job(
        _job,
        data,
        loaded,
        rgb,
        settings,
        total=total,
        desc=f"Restore {name}",
        on_result=add_result,
        on_error=on_error,
        on_finished=on_finished,
    )
