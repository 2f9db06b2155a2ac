"""A minimal live loss curve (QPainter; no plotting library needed)."""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QWidget

__all__ = ["LossPlot"]

COLOURS = ("#00b4ff", "#ff8c00", "#7ed321", "#e94e77", "#bd10e0")


class LossPlot(QWidget):
    """Loss against iteration, log10 scale, one curve per run."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(140)
        self.curves: list[list[tuple[int, float]]] = []
        self.setToolTip("training loss (log scale) per iteration")

    def clear(self) -> None:
        self.curves = []
        self.update()

    def start_curve(self) -> None:
        self.curves.append([])

    def add(self, iteration: int, loss: float) -> None:
        if not self.curves:
            self.start_curve()
        if loss > 0 and math.isfinite(loss):
            self.curves[-1].append((iteration, math.log10(loss)))
            self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        margin = 6
        width, height = self.width() - 2 * margin, self.height() - 2 * margin
        painter.setPen(QPen(QColor("#666666")))
        painter.drawRect(margin, margin, width, height)
        points = [p for curve in self.curves for p in curve]
        if len(points) < 2:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "loss curve")
            return
        x_max = max(p[0] for p in points) or 1
        y_min, y_max = min(p[1] for p in points), max(p[1] for p in points)
        span = (y_max - y_min) or 1.0
        for index, curve in enumerate(self.curves):
            painter.setPen(QPen(QColor(COLOURS[index % len(COLOURS)]), 1.5))
            polygon = QPolygonF(
                [
                    QPointF(margin + width * x / x_max, margin + height * (1 - (y - y_min) / span))
                    for x, y in curve
                ]
            )
            painter.drawPolyline(polygon)
        painter.setPen(QPen(QColor("#aaaaaa")))
        painter.drawText(margin + 4, margin + 14, f"{10**y_max:.3g}")
        painter.drawText(margin + 4, margin + height - 4, f"{10**y_min:.3g}")
