"""The monitoring report as one self-contained HTML file (inline SVG, no scripts, no network)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["line_chart", "render_html"]

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")

_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.bad{color:#b00020;font-weight:600}.ok{color:#1b7f3b}
.grid{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #eee;padding:6px}
.muted{color:#777;font-size:12px}
"""


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def line_chart(
    series: dict[str, Sequence[Any]],
    *,
    title: str = "",
    threshold: float | None = None,
    marks: Sequence[bool] | None = None,
    width: int = 360,
    height: int = 160,
) -> str:
    """An inline SVG line chart of one or more series over the same windows.

    ``marks`` puts a red dot on the windows flagged (drifted, alert). Missing values
    (None, NaN) leave gaps.

    >>> svg = line_chart({"effect": [0.01, 0.02, 0.3]}, threshold=0.05, marks=[False, False, True])
    >>> svg.startswith("<svg") and "circle" in svg and "stroke-dasharray" in svg
    True
    """
    values = [v for s in series.values() for v in map(_number, s) if v is not None]
    if threshold is not None:
        values.append(threshold)
    n = max((len(s) for s in series.values()), default=0)
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    left, right, top, bottom = 44, 8, 18, 20

    def x(i: int) -> float:
        return left + (width - left - right) * (i / max(n - 1, 1))

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - (v - low) / (high - low))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f'<text x="{left}" y="12" font-size="12">{html.escape(title)}</text>',
        f'<text x="2" y="{y(high) + 4:.1f}" font-size="10">{high:.3g}</text>',
        f'<text x="2" y="{y(low) + 4:.1f}" font-size="10">{low:.3g}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
        'stroke="#ccc"/>',
    ]
    if threshold is not None:
        parts.append(
            f'<line x1="{left}" y1="{y(threshold):.1f}" x2="{width - right}" '
            f'y2="{y(threshold):.1f}" '
            'stroke="#b00020" stroke-dasharray="4 3"/>'
        )
    for color, (name, raw) in zip(_COLORS * 10, series.items(), strict=False):
        points = [(x(i), y(v)) for i, v in enumerate(map(_number, raw)) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{path}"/>'
            )
        for px, py in points:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2" fill="{color}"/>')
        if len(series) > 1:
            index = list(series).index(name)
            parts.append(
                f'<text x="{width - 120}" y="{12 + 11 * index}" font-size="10" fill="{color}">'
                f"{html.escape(name)}</text>"
            )
    for i, flagged in enumerate(marks or []):
        first = next(iter(series.values()), [])
        value = _number(first[i]) if i < len(first) else None
        if flagged and value is not None:
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="4" fill="none" '
                'stroke="#b00020" stroke-width="2"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for c in columns:
            value = row.get(c)
            text = (
                f"{value:.4g}"
                if isinstance(value, float)
                else ("" if value is None else str(value))
            )
            css = ' class="bad"' if value is True or value == "firing" else ""
            cells.append(f"<td{css}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_html(run: dict[str, Any]) -> str:
    """The HTML page of a monitor run (the dict that ``MonitorRun.to_dict`` returns)."""
    windows = run["windows"]
    labels = [w["label"] for w in windows]
    out = [
        "<!doctype html><html><head><meta charset='utf-8'><title>loopml monitor "
        f"{html.escape(run['run_id'])}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Monitoring report: {html.escape(run['project'])}</h1>",
        f"<p class='muted'>run {html.escape(run['run_id'])}, {html.escape(run['created_at'])}; "
        f"{len(windows)} windows of {html.escape(run['window'])} from "
        f"{html.escape(str(run['start']))} "
        f"to {html.escape(str(run['end']))}; reference: {html.escape(run['reference'])}; "
        f"alpha {run['alpha']}, {html.escape(run['correction'])} correction, min effect "
        f"{run['min_effect']}</p>",
    ]
    out.append(_alerts_section(run))
    out.append(_drift_section(windows, labels, run["min_effect"]))
    out.append(_metric_section("Model quality", windows, labels, "quality.", "estimated."))
    out.append(_metric_section("Operations", windows, labels, "ops.", None))
    out.append(_metric_section("Feedback loops", windows, labels, "feedback.", None))
    out.append(_latest_section(windows))
    notes = [n for w in windows for n in w.get("notes", [])]
    if notes:
        out.append(
            "<h2>Notes</h2><ul>"
            + "".join(f"<li>{html.escape(n)}</li>" for n in sorted(set(notes)))
            + "</ul>"
        )
    out.append("</body></html>")
    return "\n".join(out)


def _alerts_section(run: dict[str, Any]) -> str:
    parts = ["<h2>Alerts</h2>"]
    states = run.get("alert_states", [])
    if states:
        parts.append(
            _table(states, ["rule", "status", "value", "since", "fired_at", "resolved_at"])
        )
    else:
        parts.append(
            "<p class='muted'>No alert rules configured (monitor.alerts in loopml.yaml).</p>"
        )
    events = run.get("alert_events", [])
    if events:
        parts.append("<p>Transitions in this run:</p>")
        parts.append(_table(events, ["at", "rule", "status", "message"]))
    return "".join(parts)


def _drift_section(windows: list[dict[str, Any]], labels: list[str], min_effect: float) -> str:
    parts = ["<h2>Data drift</h2>"]
    share = [w["metrics"].get("drift.share_drifted") for w in windows]
    parts.append(
        line_chart(
            {"share of drifted columns": share}, title="share of drifted feature columns", width=720
        )
    )
    columns: list[str] = []
    for w in windows:
        for c in (w.get("drift") or {}).get("columns", []):
            if c["column"] not in columns:
                columns.append(c["column"])
    cards = []
    for name in columns:
        effects, marks = [], []
        for w in windows:
            found = next(
                (c for c in (w.get("drift") or {}).get("columns", []) if c["column"] == name), None
            )
            effects.append(found["effect"] if found else None)
            marks.append(bool(found and found["drifted"]))
        chart = line_chart({name: effects}, title=name, threshold=min_effect, marks=marks)
        cards.append(f"<div class='card'>{chart}</div>")
    parts.append(
        "<p class='muted'>Effect size per window (Wasserstein in reference sd, or JS distance); "
        "dashed: min effect; circled: flagged as drifted.</p>"
    )
    parts.append(f"<div class='grid'>{''.join(cards)}</div>")
    parts.append(
        "<p class='muted'>windows: "
        f"{html.escape(', '.join(labels[:3]))}{' ...' if len(labels) > 3 else ''}</p>"
    )
    return "".join(parts)


def _metric_section(
    title: str, windows: list[dict[str, Any]], labels: list[str], prefix: str, paired: str | None
) -> str:
    names = sorted({k for w in windows for k in w["metrics"] if k.startswith(prefix)})
    if not names:
        return ""
    cards = []
    for name in names:
        series: dict[str, Sequence[Any]] = {name: [w["metrics"].get(name) for w in windows]}
        if paired:
            twin = paired + name[len(prefix) :]
            if any(twin in w["metrics"] for w in windows):
                series[twin] = [w["metrics"].get(twin) for w in windows]
        cards.append(f"<div class='card'>{line_chart(series, title=name)}</div>")
    if paired:
        extra = sorted(
            {k for w in windows for k in w["metrics"] if k.startswith(paired)}
            - {paired + n[len(prefix) :] for n in names}
        )
        for name in extra:
            chart = line_chart({name: [w["metrics"].get(name) for w in windows]}, title=name)
            cards.append(f"<div class='card'>{chart}</div>")
    del labels
    return f"<h2>{html.escape(title)}</h2><div class='grid'>{''.join(cards)}</div>"


def _latest_section(windows: list[dict[str, Any]]) -> str:
    tested = [w for w in windows if w.get("drift")]
    if not tested:
        return ""
    last = tested[-1]
    rows = last["drift"]["columns"]
    parts = [
        f"<h2>Latest window in detail: {html.escape(last['label'])}</h2>",
        _table(
            rows,
            [
                "column",
                "kind",
                "drifted",
                "p_value",
                "p_adjusted",
                "effect_name",
                "effect",
                "null_rate_current",
                "out_of_range_share",
                "reason",
            ],
        ),
    ]
    multivariate = last.get("multivariate") or []
    if multivariate:
        parts.append(_table(multivariate, ["test", "score", "p_value", "drifted", "reason"]))
    return "".join(parts)
