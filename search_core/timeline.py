"""The timeline of a scanned recording: its loudness over time with the detections marked.

The envelope is read block by block (like the scan), so drawing an hour-long recording stays cheap.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .recording import Recording


@dataclass
class Mark:
    start: float
    end: float
    text: str  # what the mark says (the sound's name)
    group: str  # what colours it (the category)
    score: float


def envelope(rec: Recording, points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """(times, level in dBFS) at about `points` steps: the peak of each step, floored at -80 dB."""
    step = max(rec.duration / points, 0.01)
    times, levels = [], []
    block = 60.0
    at = 0.0
    while at < rec.duration:
        y = rec.read(at, min(rec.duration, at + block))
        n = max(1, int(round(step * rec.rate)))
        frames = len(y) // n
        if frames:
            peak = np.abs(y[: frames * n]).reshape(frames, n).max(axis=1)
            levels.append(20 * np.log10(np.maximum(peak, 1e-4)))
            times.append(at + (np.arange(frames) + 0.5) * n / rec.rate)
        at += block
    if not times:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(times), np.concatenate(levels)


def clock(seconds: float, decimals: int = 0) -> str:
    """m:ss, or m:ss.s with decimals, for people (CLI, app, plot axes)."""
    m, sec = divmod(max(0.0, float(seconds)), 60)
    if decimals:
        return f"{int(m)}:{sec:0{3 + decimals}.{decimals}f}"
    return f"{int(m)}:{int(sec):02d}"


def timeline_figure(rec: Recording, marks: list[Mark], title: str):
    """A matplotlib Figure: grey loudness envelope, one coloured band per detection, labelled."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    times, levels = envelope(rec)
    fig = Figure(figsize=(11, 3.2), dpi=100)
    ax = fig.add_subplot()
    ax.fill_between(times, -80, levels, color="#b8bcc8", linewidth=0)
    groups = sorted({m.group for m in marks})
    palette = matplotlib.colormaps["tab10"]
    colour = {g: palette(i % 10) for i, g in enumerate(groups)}
    for i, m in enumerate(marks):
        ax.axvspan(m.start, max(m.end, m.start + rec.duration / 400), color=colour[m.group], alpha=0.55, linewidth=0)
        right = m.start > 0.75 * rec.duration  # labels near the end read leftwards, so they stay inside
        ax.text(m.end if right else m.start, 2 - 9 * (i % 3), f"{i + 1}. {m.text} " if right else f" {i + 1}. {m.text}",
                fontsize=8, va="top", ha="right" if right else "left", clip_on=True)
    for g in groups:
        ax.plot([], [], color=colour[g], linewidth=8, alpha=0.55, label=g)
    if groups:
        ax.legend(loc="lower right", fontsize=8, ncol=min(4, len(groups)), framealpha=0.85)
    ax.set_xlim(0, rec.duration)
    ax.set_ylim(-80, 4)
    ax.set_ylabel("level (dBFS)")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: clock(x)))
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
