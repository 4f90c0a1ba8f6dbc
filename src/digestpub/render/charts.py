"""Charts drawn as inline SVG: no script and no font from elsewhere, colours from the page's own."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

_BAR_WIDTH, _GAP, _HEIGHT = 12, 3, 60
_SLOTS = 12
"""A chart is at least this many bars wide, the newest at the right: a few months stay bars, not a block."""


def bar_chart(bars: Sequence[tuple[str, int]], label: str) -> str:
    """One bar per ``(name, value)``, oldest first; each bar names itself when pointed at (``<title>``)."""
    if not bars:
        return ""
    top = max(value for _, value in bars) or 1
    slots = max(len(bars), _SLOTS)
    width = slots * (_BAR_WIDTH + _GAP)
    rects = []
    for index, (name, value) in enumerate(bars, start=slots - len(bars)):
        height = max(1, round(value / top * _HEIGHT)) if value else 0
        x = index * (_BAR_WIDTH + _GAP)
        rects.append(
            f'<rect x="{x}" y="{_HEIGHT - height}" width="{_BAR_WIDTH}" height="{height}">'
            f"<title>{escape(name)}: {value}</title></rect>"
        )
    return (
        f'<svg class="chart" role="img" aria-label="{escape(label)}" viewBox="0 0 {width} {_HEIGHT}" '
        f'preserveAspectRatio="none">{"".join(rects)}</svg>'
    )
