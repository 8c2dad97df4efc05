"""Criteria met over time as an SVG drawn on the server: points, axes, labels — no script."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bot.storage.public import MetOn

WIDTH, HEIGHT = 320, 160
LEFT, RIGHT, TOP, BOTTOM = 24, 8, 10, 26  # room for the axes' labels


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    met: int
    day: date


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    points: list[Point]
    ticks: list[tuple[float, int]]  # (y, criteria) on the left axis
    left: int
    bottom: float  # y of the time axis
    right: float

    @property
    def path(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


def chart(history: list[MetOn], total: int) -> Chart:
    """Points of criteria met (0 … total) at each assessment date, evenly spaced left to right."""
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = inner_w / (len(history) - 1) if len(history) > 1 else 0.0
    top = max(total, 1)

    def y(n: int) -> float:
        return TOP + inner_h * (1 - n / top)

    points = [
        Point(LEFT + (i * step if len(history) > 1 else inner_w / 2), y(m.met), m.met, m.day)
        for i, m in enumerate(history)
    ]
    ticks = sorted({(y(n), n) for n in (0, top // 2, top)}, key=lambda t: -t[1])
    return Chart(WIDTH, HEIGHT, points, ticks, LEFT, TOP + inner_h, WIDTH - RIGHT)
