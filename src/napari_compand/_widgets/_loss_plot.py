"""A minimal live loss curve (QPainter; no plotting library needed)."""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QWidget

__all__ = ["LossPlot", "smoothed"]

COLOURS = ("#00b4ff", "#ff8c00", "#7ed321", "#e94e77", "#bd10e0")

#: Weight of the newest value in the smoothed line (an exponential moving average).
SMOOTHING = 0.1


def smoothed(values: list[float], weight: float = SMOOTHING) -> list[float]:
    """Exponential moving average, :math:`s_i = s_{i-1} + w (v_i - s_{i-1})`, started
    at the first value and bias-free from the start (the first ``1/w`` values
    average what there is).

    >>> smoothed([1.0, 3.0, 3.0], weight=0.5)
    [1.0, 2.3333333333333335, 2.7142857142857144]
    """
    result, total, norm = [], 0.0, 0.0
    for value in values:
        total = (1 - weight) * total + value
        norm = (1 - weight) * norm + 1
        result.append(total / norm)
    return result


class LossPlot(QWidget):
    """Loss against iteration, log10 scale, one curve per run.

    Each run is drawn faintly as measured and solidly smoothed
    (:func:`smoothed`); the axes carry iteration ticks and the loss range.
    """

    LEFT, BOTTOM, TOP, RIGHT = 48, 30, 8, 10

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(160)
        self.curves: list[list[tuple[int, float]]] = []
        self.setToolTip(
            "training loss per iteration (log scale): faint as measured, solid smoothed"
        )

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

    def x_ticks(self) -> list[int]:
        """Iterations marked on the x axis: 0, the middle and the last one seen."""
        last = max((x for curve in self.curves for x, _ in curve), default=0)
        return sorted({0, last // 2, last})

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        left, top = self.LEFT, self.TOP
        width = self.width() - self.LEFT - self.RIGHT
        height = self.height() - self.TOP - self.BOTTOM
        axis = QPen(QColor("#888888"))
        painter.setPen(axis)
        painter.drawRect(left, top, width, height)
        points = [p for curve in self.curves for p in curve]
        if len(points) < 2:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "loss curve")
            return
        x_max = max(p[0] for p in points) or 1
        y_min, y_max = min(p[1] for p in points), max(p[1] for p in points)
        span = (y_max - y_min) or 1.0

        def at(x: float, y: float) -> QPointF:
            return QPointF(left + width * x / x_max, top + height * (1 - (y - y_min) / span))

        for index, curve in enumerate(self.curves):
            colour = QColor(COLOURS[index % len(COLOURS)])
            faint = QColor(colour)
            faint.setAlpha(70)
            painter.setPen(QPen(faint, 1.0))
            painter.drawPolyline(QPolygonF([at(x, y) for x, y in curve]))
            painter.setPen(QPen(colour, 2.0))
            trend = smoothed([y for _, y in curve])
            painter.drawPolyline(
                QPolygonF([at(x, y) for (x, _), y in zip(curve, trend, strict=True)])
            )
        painter.setPen(QPen(QColor("#aaaaaa")))
        label = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        painter.drawText(QRectF(0, top - 6, left - 4, 12), label, f"{10**y_max:.2g}")
        painter.drawText(QRectF(0, top + height - 6, left - 4, 12), label, f"{10**y_min:.2g}")
        painter.drawText(QRectF(0, top + height / 2 - 6, left - 4, 12), label, "loss")
        for tick in self.x_ticks():
            x = left + width * tick / x_max
            painter.drawLine(QPointF(x, top + height), QPointF(x, top + height + 4))
            centre = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop
            painter.drawText(QRectF(x - 30, top + height + 4, 60, 12), centre, str(tick))
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom
        painter.drawText(QRectF(left, top + height + 14, width, 14), right, "iteration")
