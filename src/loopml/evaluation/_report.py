# ruff: noqa: E501  (HTML templates read better unwrapped)
"""The evaluation report (one self-contained HTML file + JSON) and the model card."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from loopml.core import atomic_write_text
from loopml.evaluation._evaluate import Evaluation

__all__ = ["model_card_markdown", "render_html", "write_report"]

_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}.pass{color:#0a7d28;font-weight:600}.fail{color:#b00020;font-weight:600}
h2{border-bottom:1px solid #ddd;padding-bottom:4px}"""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    columns = columns or list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _reliability_svg(reliability: dict[str, list[float]], size: int = 260) -> str:
    pad = 30
    span = size - 2 * pad

    def xy(p: float, o: float) -> str:
        return f"{pad + p * span:.1f},{size - pad - o * span:.1f}"

    points = " ".join(
        xy(p, o) for p, o in zip(reliability["predicted"], reliability["observed"], strict=True)
    )
    dots = "".join(
        f'<circle cx="{xy(p, o).split(",")[0]}" cy="{xy(p, o).split(",")[1]}" r="3" fill="#1f77b4"/>'
        for p, o in zip(reliability["predicted"], reliability["observed"], strict=True)
    )
    return (
        f'<svg width="{size}" height="{size}" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-label="reliability diagram"><rect x="{pad}" y="{pad}" width="{span}" height="{span}" '
        f'fill="none" stroke="#999"/><line x1="{pad}" y1="{size - pad}" x2="{size - pad}" y2="{pad}" '
        f'stroke="#bbb" stroke-dasharray="4"/><polyline points="{points}" fill="none" stroke="#1f77b4"/>'
        f'{dots}<text x="{size / 2}" y="{size - 5}" text-anchor="middle" font-size="11">predicted</text>'
        f'<text x="10" y="{size / 2}" font-size="11" transform="rotate(-90 10 {size / 2})" '
        f'text-anchor="middle">observed</text></svg>'
    )


def _bars_svg(labels: list[str], values: list[float], width: int = 520) -> str:
    if not values:
        return ""
    top = max(abs(v) for v in values) or 1.0
    row = 18
    height = row * len(values) + 10
    bars = "".join(
        f'<text x="0" y="{i * row + 13}" font-size="11">{html.escape(label[:28])}</text>'
        f'<rect x="200" y="{i * row + 3}" width="{max(abs(v) / top * (width - 260), 1):.1f}" height="12" fill="#4c72b0"/>'
        f'<text x="{205 + abs(v) / top * (width - 260):.1f}" y="{i * row + 13}" font-size="11">{v:.4g}</text>'
        for i, (label, v) in enumerate(zip(labels, values, strict=True))
    )
    return f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">{bars}</svg>'


def render_html(evaluation: Evaluation, *, title: str = "Evaluation report") -> str:
    """The report as one HTML page with inline SVG; it needs no network to open."""
    data = evaluation.to_dict()
    verdict = "PASSED" if data["passed"] else "FAILED"
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
        f"<p>{data['rows']} rows, task {data['task']}. Gates: "
        f"<span class='{'pass' if data['passed'] else 'fail'}'>{verdict}</span></p>",
    ]
    parts.append(
        "<h2>Gates</h2>" + _table(data["gates"], ["gate", "passed", "value", "reference", "reason"])
    )
    metric_rows = [{"metric": k, **v} for k, v in data["metrics"].items()]
    parts.append(
        "<h2>Metrics (bootstrap intervals)</h2>"
        + _table(metric_rows, ["metric", "value", "low", "high", "level"])
    )
    comparison = []
    for ref, diffs in data["differences"].items():
        for metric, d in diffs.items():
            comparison.append(
                {
                    "against": ref,
                    "metric": metric,
                    "difference": d["value"],
                    "low": d["low"],
                    "high": d["high"],
                }
            )
    parts.append(
        "<h2>Against baselines and champion (candidate minus reference)</h2>" + _table(comparison)
    )
    if data["champion"] and data["champion"].get("churn"):
        parts.append(
            "<p>Prediction churn against the champion: "
            + _fmt(data["champion"]["churn"]["churn"])
            + "</p>"
        )
    parts.append("<h2>Slices</h2>" + _table(data["slices"]))
    parts.append(
        "<h2>Worst slices found (Holm-adjusted)</h2>"
        + _table(
            data["worst_slices"],
            ["slice", "value", "size", "loss", "rest_loss", "adjusted_p_value"],
        )
    )
    for note in data["simpsons_paradox"]:
        parts.append(f"<p class='fail'>Simpson's paradox: {html.escape(note)}</p>")
    if data["calibration"]:
        parts.append(
            "<h2>Calibration</h2><p>ECE "
            + _fmt(data["calibration"]["expected_calibration_error"])
            + "</p>"
        )
        parts.append(_reliability_svg(data["calibration"]["reliability"]))
        if "calibrator" in data["calibration"]:
            parts.append(
                "<p>Chosen calibrator: "
                + html.escape(data["calibration"]["calibrator"]["method"])
                + "</p>"
            )
    parts.append(
        "<h2>Behaviour tests</h2>"
        + _table(
            [{"test": b["name"], "passed": b["passed"], **b["summary"]} for b in data["behaviour"]]
        )
    )
    for column, report in data["fairness"].items():
        parts.append(
            f"<h2>Fairness: {html.escape(column)}</h2><p>demographic parity difference "
            f"{_fmt(report['demographic_parity_difference'])}, equalised odds difference "
            f"{_fmt(report['equalized_odds_difference'])}</p>"
            + _table([{"group": g, **v} for g, v in report["groups"].items()])
        )
    importance = data["importance"][:15]
    parts.append(
        "<h2>Permutation importance</h2>"
        + _bars_svg([r["feature"] for r in importance], [r["importance"] for r in importance])
    )
    parts.append("</body></html>")
    return "".join(parts)


def model_card_markdown(
    evaluation: Evaluation,
    *,
    name: str,
    version: str | None = None,
    intended_use: str = "",
    training_data: str = "",
    limitations: list[str] | None = None,
) -> str:
    """A model card (Mitchell et al. 2019) in Markdown, generated from the evaluation record."""
    data = evaluation.to_dict()
    lines = [
        f"# Model card: {name}" + (f" (version {version})" if version else ""),
        "",
        "## Intended use",
        intended_use or "Not stated by the user.",
        "",
        "## Training data",
        training_data or "See the run's data lineage in the registry.",
        "",
        "## Metrics (95% bootstrap intervals)",
        "",
        "| metric | value | interval |",
        "|---|---|---|",
    ]
    for metric, v in data["metrics"].items():
        lines.append(f"| {metric} | {_fmt(v['value'])} | [{_fmt(v['low'])}, {_fmt(v['high'])}] |")
    lines += ["", "## Against the baselines", ""]
    for ref, diffs in data["differences"].items():
        parts = ", ".join(
            f"{m} {_fmt(d['value'])} [{_fmt(d['low'])}, {_fmt(d['high'])}]"
            for m, d in diffs.items()
        )
        lines.append(f"- {ref}: {parts}")
    lines += ["", "## Slices", ""]
    worst = data["worst_slices"]
    lines += [
        f"- weaker on {f['slice']} = {f['value']} ({f['size']} rows, loss {_fmt(f['loss'])} vs {_fmt(f['rest_loss'])})"
        for f in worst
    ] or ["- no significantly weaker slice found"]
    lines += ["", "## Fairness", ""]
    lines += [
        f"- {c}: demographic parity difference {_fmt(r['demographic_parity_difference'])}, equalised odds difference {_fmt(r['equalized_odds_difference'])}"
        for c, r in data["fairness"].items()
    ] or ["- no sensitive attributes declared"]
    lines += ["", "## Behaviour tests", ""]
    lines += [f"- {b['name']}: {'pass' if b['passed'] else 'FAIL'}" for b in data["behaviour"]]
    lines += ["", "## Gates", ""]
    lines += [
        f"- {g['gate']}: {'pass' if g['passed'] else 'FAIL'} ({g['reason']})" for g in data["gates"]
    ] or ["- no gates declared"]
    caveats = list(limitations or [])
    if data["calibration"] and (data["calibration"].get("expected_calibration_error") or 0) > 0.05:
        caveats.append("probabilities are not well calibrated (ECE above 0.05)")
    caveats += [f"weaker on {f['slice']} = {f['value']}" for f in worst[:3]]
    lines += ["", "## Limitations and caveats", ""] + (
        [f"- {c}" for c in caveats] or ["- none recorded"]
    )
    return "\n".join(lines) + "\n"


def write_report(
    evaluation: Evaluation,
    directory: str | Path,
    *,
    name: str = "model",
    version: str | None = None,
    **card: Any,
) -> dict[str, Path]:
    """Write ``report.html``, ``report.json``, ``model_card.md`` and ``model_card.html`` atomically."""
    directory = Path(directory)
    paths = {
        "html": directory / "report.html",
        "json": directory / "report.json",
        "card_md": directory / "model_card.md",
        "card_html": directory / "model_card.html",
    }
    markdown = model_card_markdown(evaluation, name=name, version=version, **card)
    atomic_write_text(paths["html"], render_html(evaluation, title=f"Evaluation: {name}"))
    atomic_write_text(paths["json"], json.dumps(evaluation.to_dict(), indent=2, default=str))
    atomic_write_text(paths["card_md"], markdown)
    card_html = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Model card: {html.escape(name)}</title>"
        f"<style>{_STYLE}</style></head><body><pre style='white-space:pre-wrap'>{html.escape(markdown)}</pre></body></html>"
    )
    atomic_write_text(paths["card_html"], card_html)
    return paths
