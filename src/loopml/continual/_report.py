# ruff: noqa: E501  (HTML templates read better unwrapped)
"""The timeline report of a replay: quality, drift, alerts and deployments on one page.

One self-contained HTML file (inline SVG, no script, no network) that opens in any browser.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

from loopml.continual._simulate import SimulationResult

__all__ = ["render_timeline"]

_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1150px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:left}
th{background:#f3f3f3}h2{border-bottom:1px solid #ddd;padding-bottom:4px}.legend span{margin-right:1.5em}"""

_COLORS = {
    "deployed": "#2ca02c",
    "rolled_back": "#d62728",
    "retrained": "#9467bd",
    "rollout_started": "#ff7f0e",
}


def _polyline(xs: np.ndarray, ys: np.ndarray, color: str, dash: str = "") -> str:
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True) if np.isfinite(y))
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.6"{extra}/>'


def render_timeline(
    result: SimulationResult,
    *,
    title: str,
    planted: dict[str, pd.Timestamp] | None = None,
    links: dict[str, str] | None = None,
) -> str:
    """The page: summary, the timeline chart, the events table."""
    timeline = result.timeline
    width, height, pad = 1050, 330, 45
    starts = pd.to_datetime(timeline["start"])
    t0, t1 = starts.min(), starts.max() + pd.Timedelta(days=1)
    span = max((t1 - t0).total_seconds(), 1.0)

    def x_of(when: pd.Timestamp) -> float:
        return pad + (when - t0).total_seconds() / span * (width - 2 * pad)

    xs = np.array([x_of(s) for s in starts])
    quality = timeline["quality"].to_numpy(dtype=float)
    never = timeline["never_retrained"].to_numpy(dtype=float)
    finite = np.concatenate([quality[np.isfinite(quality)], never[np.isfinite(never)]])
    low = float(np.nanmin(finite)) if len(finite) else 0.0
    high = float(np.nanmax(finite)) if len(finite) else 1.0
    low, high = (low - 0.02, high + 0.02) if high > low else (low - 0.5, high + 0.5)

    def y_of(values: np.ndarray) -> np.ndarray:
        return pad + (1 - (values - low) / (high - low)) * (height - 2 * pad)

    drift = timeline["drift_share"].to_numpy(dtype=float)
    parts = [
        f'<svg width="{width}" height="{height + 40}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="timeline">',
        f'<rect x="{pad}" y="{pad}" width="{width - 2 * pad}" height="{height - 2 * pad}" fill="none" stroke="#bbb"/>',
    ]
    bar_width = max((width - 2 * pad) / max(len(xs), 1) - 1, 1)
    for x, share, alert in zip(xs, drift, timeline["drift_alert"], strict=True):
        if np.isfinite(share) and share > 0:
            h = share * (height - 2 * pad) * 0.5
            color = "#f4a3a3" if alert else "#ddd"
            parts.append(
                f'<rect x="{x:.1f}" y="{height - pad - h:.1f}" width="{bar_width:.1f}" height="{h:.1f}" fill="{color}"/>'
            )
    parts.append(_polyline(xs, y_of(never), "#999", "5,4"))
    parts.append(_polyline(xs, y_of(quality), "#1f77b4"))
    for event in result.events:
        mark = _COLORS.get(event["kind"])
        if mark is None:
            continue
        x = x_of(pd.Timestamp(event["time"]))
        parts.append(
            f'<line x1="{x:.1f}" y1="{pad}" x2="{x:.1f}" y2="{height - pad}" stroke="{mark}" stroke-width="1" opacity="0.8"><title>{html.escape(event["kind"])} {html.escape(str(event.get("version", "")))}</title></line>'
        )
    for name, when in (planted or {}).items():
        x = x_of(pd.Timestamp(when))
        parts.append(
            f'<line x1="{x:.1f}" y1="{pad - 10}" x2="{x:.1f}" y2="{height - pad}" stroke="#000" stroke-dasharray="2,3"/>'
            f'<text x="{x + 3:.1f}" y="{pad - 12}" font-size="11">{html.escape(name)}</text>'
        )
    for value in np.linspace(low, high, 5):
        y = y_of(np.array([value]))[0]
        parts.append(f'<text x="5" y="{y + 4:.1f}" font-size="10">{value:.3f}</text>')
    parts.append(
        f'<text x="{pad}" y="{height + 5}" font-size="11">{t0.date()}</text>'
        f'<text x="{width - pad - 70}" y="{height + 5}" font-size="11">{t1.date()}</text></svg>'
    )
    legend = (
        '<p class="legend"><span style="color:#1f77b4">&#9644; loopml (served)</span>'
        '<span style="color:#999">- - never retrained</span><span style="color:#f4a3a3">&#9632; drift share (alert)</span>'
        '<span style="color:#9467bd">| retrain</span><span style="color:#ff7f0e">| rollout</span>'
        '<span style="color:#2ca02c">| promoted</span><span style="color:#d62728">| rolled back</span></p>'
    )
    summary = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{v:.4f}</td></tr>" for k, v in result.prequential.items()
    )
    rows = "".join(
        f"<tr><td>{html.escape(str(e.get('time', '')))}</td><td>{html.escape(e['kind'])}</td>"
        f"<td>{html.escape(_describe(e))}</td></tr>"
        for e in result.events
        if e["kind"] != "waiting"
    )
    link_html = " · ".join(
        f'<a href="{html.escape(href)}">{html.escape(name)}</a>'
        for name, href in (links or {}).items()
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(result.stage)}; {result.retrains} retrains; {result.wall_seconds:.1f} s. {link_html}</p>"
        f"<h2>Prequential {html.escape(result.metric)} over the whole replay</h2><table>{summary}</table>"
        f"<h2>Timeline</h2>{''.join(parts)}{legend}"
        f"<h2>Decisions</h2><table><tr><th>time</th><th>what</th><th>details</th></tr>{rows}</table></body></html>"
    )


def _describe(event: dict[str, Any]) -> str:
    kind = event["kind"]
    if kind == "retrained":
        gate = event.get("gate", {})
        verdict = (
            "accepted" if event.get("accepted") else f"rejected: {event.get('why_rejected', '')}"
        )
        return (
            f"v{event['version']} ({event['mode']}, {event['rows']:,} rows) because "
            f"{', '.join(event['reasons'])}; gate {gate.get('challenger', float('nan')):.4f} vs "
            f"champion {gate.get('champion', float('nan')):.4f}: {verdict}"
        )
    if kind in ("deployed", "rolled_back"):
        return f"v{event['version']} serves; {event.get('reason', event.get('how', ''))}"
    if kind == "rollout_started":
        return f"{event['phase']}: v{event['challenger']} against champion v{event['champion']}"
    if kind == "canary_step":
        return f"challenger weight {event['weight']:g}%"
    if kind == "shadow_report":
        return "shadow quality " + ", ".join(
            f"v{k} {v:.4f}" for k, v in event.get("quality", {}).items()
        )
    return str({k: v for k, v in event.items() if k not in ("kind", "time")})
