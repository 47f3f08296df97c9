"""charts.py: the reports page's charts, drawn on the server as SVG with pygal.

The page keeps its no-script policy: pygal writes a small config script into every SVG
(for its tooltips), which is removed here, and the pages embed the charts as images
(`<img src="data:image/svg+xml;base64,...">`), where a browser would not run a script
anyway. Numbers sit beside every chart in the page, so nothing is only in a picture.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import pygal
from lxml import etree
from pygal.style import Style

# Buckets of a duration distribution, in minutes (upper bounds; None = the rest).
DURATION_BUCKETS: tuple[tuple[str, float | None], ...] = (
    ("<1 h", 60),
    ("1-4 h", 240),
    ("4-8 h", 480),
    ("8-24 h", 1440),
    ("1-3 d", 4320),
    (">3 d", None),
)
_STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#222222",
    foreground_strong="#111111",
    foreground_subtle="#888888",
    colors=("#2b6cb0", "#38a169", "#dd6b20", "#c53030", "#805ad5"),
    font_family="system-ui, sans-serif",
    label_font_size=13,
    major_label_font_size=13,
    legend_font_size=13,
    title_font_size=15,
    value_font_size=12,
)


def _options(title: str, legend: bool = True) -> dict[str, Any]:
    return {
        "title": title,
        "style": _STYLE,
        "width": 640,
        "height": 300,
        "js": [],
        "disable_xml_declaration": True,
        "show_legend": legend,
        "legend_at_bottom": True,
        "print_values": False,
        "margin": 16,
    }


def data_uri(chart: Any) -> str:
    """The chart as an SVG data: URI, with pygal's script elements removed."""
    tree = chart.render_tree()
    for script in tree.iter("{http://www.w3.org/2000/svg}script", "script"):
        script.getparent().remove(script)
    svg = etree.tostring(tree, encoding="utf-8")
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def volume(days: Sequence[str], created: Sequence[int], solved: Sequence[int]) -> str:
    chart = pygal.Line(**_options("Created and solved per day"), x_label_rotation=30)
    step = max(1, len(days) // 10)
    chart.x_labels = [d[5:] if i % step == 0 else "" for i, d in enumerate(days)]
    chart.add("created", list(created))
    chart.add("solved", list(solved))
    return data_uri(chart)


def bucket_counts(minutes: Sequence[float]) -> list[int]:
    counts = [0] * len(DURATION_BUCKETS)
    for value in minutes:
        for i, (_label, limit) in enumerate(DURATION_BUCKETS):
            if limit is None or value < limit:
                counts[i] += 1
                break
    return counts


def durations(title: str, minutes: Sequence[float]) -> str:
    chart = pygal.Bar(**_options(title, legend=False))
    chart.x_labels = [label for label, _ in DURATION_BUCKETS]
    chart.add("tickets", bucket_counts(minutes))
    return data_uri(chart)


def bars(title: str, values: dict[str, int], series: str = "tickets") -> str:
    chart = pygal.Bar(**_options(title, legend=False))
    chart.x_labels = list(values)
    chart.add(series, list(values.values()))
    return data_uri(chart)


def stacked(title: str, labels: Sequence[str], series: dict[str, Sequence[int]]) -> str:
    chart = pygal.StackedBar(**_options(title))
    chart.x_labels = list(labels)
    for name, values in series.items():
        chart.add(name, list(values))
    return data_uri(chart)
