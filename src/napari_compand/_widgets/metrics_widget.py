"""Metrics widget: PSNR and SSIM of test layers against a reference layer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, PushButton, Select, Table
from napari.qt.threading import FunctionWorker, create_worker
from numpy.typing import ArrayLike
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication, QHeaderView

from ..metrics import compare, mean_psnr
from ._common import (
    WidgetActions,
    image_layer_choices,
    layer_data,
    reference_layer_choices,
    status_label,
)

if TYPE_CHECKING:
    import napari

__all__ = ["MetricsWidget"]

COLUMNS = ("test layer", "plane", "PSNR (dB)", "SSIM")


def _metrics_job(
    reference: ArrayLike,
    tests: list[tuple[str, ArrayLike]],
    data_range: float | None,
    rgb: bool,
) -> list[tuple[str, str, float, float]]:
    """Worker body: one row per test layer and plane, plus the mean over a stack."""
    rows = []
    for name, test in tests:
        planes = compare(reference, test, data_range, rgb=rgb)
        for scores in planes:
            plane = ",".join(map(str, scores.plane)) or "-"
            rows.append((name, plane, round(scores.psnr, 3), round(scores.ssim, 4)))
        if len(planes) > 1:
            psnrs = [s.psnr for s in planes]
            identical = int(np.isinf(psnrs).sum())
            label = f"mean ({identical} identical left out)" if identical else "mean"
            mean_ssim = float(np.mean([s.ssim for s in planes]))
            rows.append((name, label, round(mean_psnr(psnrs), 3), round(mean_ssim, 4)))
    return rows


def _table_value(rows: list[tuple]) -> dict[str, list]:
    """magicgui Table value in "split" form: data, index (row numbers), columns."""
    return {
        "data": [list(row) for row in rows],
        "index": list(range(1, len(rows) + 1)),
        "columns": list(COLUMNS),
    }


class MetricsWidget(WidgetActions, Container):
    """Reference layer + test layers -> a table of PSNR/SSIM (per plane for stacks).

    ``data range`` 0 means automatic: 255 / 65535 from the dtype, 1.0 for floats
    in [0, 1]. "Copy table" puts the table on the clipboard as tab-separated text
    (pastes into spreadsheets).
    """

    TITLE = "Metrics"

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        choices = lambda _: image_layer_choices(viewer)  # noqa: E731
        clean_first = lambda _: reference_layer_choices(viewer)  # noqa: E731
        self._reference = ComboBox(label="reference", choices=clean_first)
        self._tests = Select(label="test layers", choices=choices)
        self._data_range = FloatSpinBox(label="data range", min=0.0, max=1e9, value=0.0, step=1.0)
        self._run_button = PushButton(text="Compute")
        self._copy_button = PushButton(text="Copy table")
        self._status = status_label()
        self.table = Table(value=_table_value([]))
        self.table.native.setMinimumHeight(160)
        self.table.native.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self._fit_columns()
        super().__init__(
            widgets=[
                self._reference,
                self._tests,
                self._data_range,
                self._run_button,
                self.table,
                self._copy_button,
                self._status,
            ]
        )
        self.worker: FunctionWorker | None = None
        self._run_button.clicked.connect(self.run)
        self._copy_button.clicked.connect(self.copy_table)

    def run(self) -> FunctionWorker | None:
        """Compute the metrics in a thread worker; returns the started worker."""
        reference = self._reference.value
        tests = [layer for layer in self._tests.value if layer is not reference]
        if reference is None or not tests:
            self._fail("choose a reference layer and at least one other test layer")
            return None
        try:
            ref_data = layer_data(reference)
            test_data = [(layer.name, layer_data(layer)) for layer in tests]
        except ValueError as err:
            self._fail(str(err))
            return None
        data_range = self._data_range.value or None
        worker = create_worker(
            _metrics_job,
            ref_data,
            test_data,
            data_range,
            reference.rgb,
            _progress={"desc": f"PSNR/SSIM vs {reference.name}"},
            _ignore_errors=True,  # reported by self._fail instead
        )
        worker.returned.connect(self._show_rows)
        worker.errored.connect(lambda err: self._fail(str(err)))
        worker.finished.connect(self._set_idle)
        self._run_button.enabled = False
        self._status.value = "computing..."
        self.worker = worker
        worker.start()
        return worker

    def rows(self) -> list[list]:
        """The table's rows as shown."""
        return [list(row) for row in self.table.data]

    def table_text(self) -> str:
        """The table as tab-separated text with a header line."""
        lines = ["\t".join(COLUMNS)] + ["\t".join(map(str, row)) for row in self.rows()]
        return "\n".join(lines)

    def copy_table(self) -> None:
        """Copy :meth:`table_text` to the clipboard."""
        QApplication.clipboard().setText(self.table_text())
        self._status.value = "table copied to the clipboard"

    def _show_rows(self, rows: list[tuple[str, str, float, float]]) -> None:
        self.table.value = _table_value(rows)
        self._fit_columns()
        self._status.value = f"{len(rows)} row(s) vs {self._reference.value.name!r}"

    def _fit_columns(self) -> None:
        """Numbers at their width, the layer name column takes (and elides to) the rest,
        so the table fits the dock without a horizontal scroll bar. Setting a new
        value rebuilds the columns, so this runs after every update."""
        header = self.table.native.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(20)
        self.table.native.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
