"""The picture as text, for `sagewalk status` (the same numbers the dashboard charts)."""

from __future__ import annotations

import time

from monitoring.picture import CHARTS, Picture


def format_value(value: float | None) -> str:
    if value is None:
        return "-"
    magnitude = abs(value)
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= scale:
            return f"{value / scale:.2f}{suffix}"
    if magnitude >= 10 or value == 0:
        return f"{value:.1f}".removesuffix(".0")
    return f"{value:.3g}"


def render(p: Picture) -> str:
    """Several lines: processes, training state, then one line per chart."""
    stamp = time.strftime("%H:%M:%S", time.localtime(p.time))
    lines = [f"sagewalk status at {stamp} from {p.source}", "", "processes:"]
    for t in p.targets:
        state = "up" if t.up else f"DOWN ({t.error})" if t.error else "DOWN"
        lines.append(f"  {t.role:<9} {t.address:<22} {state}")
    if not p.targets:
        lines.append("  none configured")
    lines += ["", "state:"]
    shown = [(k, v) for k, v in p.tiles.items() if v is not None]
    lines.append("  " + ("   ".join(f"{k} {_tile(k, v)}" for k, v in shown) or "no data yet"))
    lines.append("")
    width = max(len(f"{c.title} ({c.unit})") for c in CHARTS)
    for chart in CHARTS:
        values = [(k, v) for k, v in p.charts.get(chart.key, {}).items() if v is not None]
        text = "   ".join(f"{k} {format_value(v)}" for k, v in values) or "-"
        lines.append(f"{chart.title + ' (' + chart.unit + ')':<{width}}  {text}")
    return "\n".join(lines)


def _tile(key: str, value: float) -> str:
    if key.endswith("progress"):
        return f"{value:.0%}"
    if key.endswith("(bytes)"):
        return format_value(value) + "B"
    if key.endswith("(s)"):
        return f"{value:.0f}s"
    if key == "learning rate":
        return f"{value:.3g}"
    return format_value(value)
