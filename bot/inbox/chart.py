"""The chart of `reports stats`: reports per day, stacked by state, as a PNG — drawn with
matplotlib's non-interactive Agg backend, imported only when a chart is drawn (it costs a good
part of a second, which the bot's start-up should not pay)."""

from __future__ import annotations

import struct
import tempfile

from bot.inbox.stats import STATES, QueueStats, alt_text, days_text
from bot.records import record

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.0, 100
COLOURS = {"open": "#d9534f", "claimed": "#f0ad4e", "resolved": "#5cb85c", "dismissed": "#9e9e9e"}


@record
class Chart:
    """A drawn chart: the PNG's temporary file, its size in pixels and in bytes, and the chart in words."""

    path: str
    width: int
    height: int
    size: int
    alt: str  # the chart in words: the image's `body`


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header (IHDR); ValueError when it is not a PNG."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def draw(stats: QueueStats) -> Chart:
    """Draw the chart into a temporary file (the caller sends it, then removes it). Blocking: run it
    off the event loop."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    labels = [label[5:] for label, _ in stats.per_day]
    positions = list(range(len(labels)))
    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    axes = figure.subplots()
    bottoms = [0] * len(labels)
    for state in STATES:
        values = [counts.get(state, 0) for _, counts in stats.per_day]
        axes.bar(positions, values, bottom=bottoms, label=state, color=COLOURS[state], width=0.7)
        bottoms = [b + v for b, v in zip(bottoms, values)]
    axes.set_title(f"Reports per day by state — last {days_text(stats.days)} ({stats.total} in all)")
    axes.set_ylabel("reports")
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.legend(loc="upper left", fontsize="small", ncols=4)
    axes.set_ylim(0, max([*bottoms, 1]) * 1.25)
    step = max(1, -(-len(labels) // 14))  # at most 14 day labels
    axes.set_xticks(positions[::step], labels[::step])
    axes.tick_params(axis="x", labelrotation=45, labelsize="small")
    figure.tight_layout()
    handle = tempfile.NamedTemporaryFile(suffix=".png", prefix="reports-stats-", delete=False)
    with handle:
        figure.savefig(handle, format="png", dpi=DPI)
    with open(handle.name, "rb") as f:
        data = f.read()
    width, height = png_size(data)
    return Chart(handle.name, width, height, len(data), alt_text(stats))
