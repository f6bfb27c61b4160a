"""Write the doctor's findings: findings.json, report.md, a self-contained report.html (plots
embedded as data URIs, so it opens offline), and the ranked summary printed to the terminal."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from vlascope.doctor.findings import Finding
from vlascope.fileio import atomic_path, write_json

ICONS = {"error": "✖", "warning": "▲", "info": "ℹ", "ok": "✔"}
COLOURS = {"error": "#c62828", "warning": "#ef6c00", "info": "#1565c0", "ok": "#2e7d32"}


def is_skipped(f: Finding) -> bool:
    return "skipped" in f.evidence


def ranked(findings: list[Finding]) -> list[Finding]:
    """Errors first, checks that did not run last; check order within a severity."""
    return sorted(findings, key=lambda f: (is_skipped(f), f.rank))


def counts(findings: list[Finding]) -> dict[str, int]:
    out = {s: 0 for s in ICONS}
    for f in findings:
        out[f.severity] += 1
    return out


def summary_text(findings: list[Finding]) -> str:
    c = counts(findings)
    lines = [f"doctor: {c['error']} error(s), {c['warning']} warning(s), {c['info']} note(s), "
             f"{c['ok']} check(s) passed"]
    for f in ranked(findings):
        lines.append(f"  {ICONS[f.severity]} {f.severity:7s} {f.id:26s} {f.title}")
    return "\n".join(lines)


def _value(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        text = json.dumps(v)
        return text if len(text) <= 400 else text[:400] + " …"
    return str(v)


def render_markdown(findings: list[Finding], header: dict) -> str:
    out = ["# vlascope doctor report", ""]
    out += [f"- **{k}**: {v}" for k, v in header.items()]
    out += ["", "## Summary", "", "| | severity | check | finding |", "|---|---|---|---|"]
    for f in ranked(findings):
        out.append(f"| {ICONS[f.severity]} | {f.severity} | `{f.id}` | {f.title} |")
    for f in ranked(findings):
        if is_skipped(f):
            continue
        out += ["", f"## {ICONS[f.severity]} `{f.id}` ({f.severity})", "", f.title, ""]
        if f.fix:
            out += [f"**What to change:** {f.fix}", ""]
        if f.evidence:
            out += ["| evidence | value |", "|---|---|"]
            out += [f"| {k} | {_value(v).replace('|', '/')} |" for k, v in f.evidence.items()]
            out.append("")
        out += [f"![{f.id}]({p})" for p in f.plots]
    return "\n".join(out) + "\n"


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em} table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
td,th{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f5f5f5} code{background:#f3f3f3;padding:0 .25em;border-radius:3px}
.badge{display:inline-block;color:#fff;border-radius:4px;padding:0 .5em;font-size:.85em;font-weight:600}
.finding{border-left:5px solid;padding:.2em 1em;margin:1.4em 0;background:#fafafa}
.fix{background:#fffde7;padding:.5em .8em;border-radius:4px}
.evidence td:first-child{white-space:nowrap;font-family:monospace}
.evidence td:last-child{font-family:monospace;word-break:break-all}
.dims td,.dims th{font-family:monospace;font-size:.85em;padding:.1em .4em;text-align:right}
img{max-width:100%;border:1px solid #eee;margin:.4em 0}
"""


def _embed(report_dir: Path, rel: str) -> str:
    data = base64.b64encode((report_dir / rel).read_bytes()).decode()
    return f'<img alt="{html.escape(rel)}" src="data:image/png;base64,{data}">'


def _is_row(v) -> bool:
    return isinstance(v, list) and 0 < len(v) <= 64 and all(isinstance(x, (int, float)) or x is None for x in v)


def _html_value(v, depth: int = 0) -> str:
    """Per-dimension lists as table rows, nested mappings as nested tables, the rest as text."""
    e = html.escape
    if isinstance(v, dict) and v and depth < 2:
        if all(_is_row(x) for x in v.values()):
            width = max(len(x) for x in v.values())
            head = "".join(f"<th>{d}</th>" for d in range(width))
            rows = "".join(f"<tr><td>{e(str(k))}</td>" + "".join(
                f"<td>{'' if x is None else e(_value(x))}</td>" for x in row) + "</tr>" for k, row in v.items())
            return f"<table class='dims'><tr><th>dim</th>{head}</tr>{rows}</table>"
        rows = "".join(f"<tr><td>{e(str(k))}</td><td>{_html_value(x, depth + 1)}</td></tr>" for k, x in v.items())
        return f"<table class='evidence'>{rows}</table>"
    return e(_value(v))


def render_html(findings: list[Finding], header: dict, report_dir: Path) -> str:
    e = html.escape
    c = counts(findings)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>vlascope doctor</title>"
             f"<style>{CSS}</style></head><body>", "<h1>vlascope doctor report</h1>",
             "<p>" + " · ".join(f"<b>{e(k)}</b>: {e(str(v))}" for k, v in header.items()) + "</p>",
             "<p>" + " ".join(f"<span class='badge' style='background:{COLOURS[s]}'>{c[s]} {s}</span>"
                              for s in ICONS) + "</p>",
             "<h2>Summary</h2><table><tr><th></th><th>check</th><th>finding</th></tr>"]
    for f in ranked(findings):
        parts.append(f"<tr><td><span class='badge' style='background:{COLOURS[f.severity]}'>"
                     f"{e(f.severity)}</span></td><td>" + (f"<code>{e(f.id)}</code>" if is_skipped(f) else
                     f"<a href='#{e(f.id)}-{id(f)}'><code>{e(f.id)}</code></a>") + f"</td><td>{e(f.title)}</td></tr>")
    parts.append("</table>")
    for f in ranked(findings):
        if is_skipped(f):
            continue
        parts.append(f"<div class='finding' id='{e(f.id)}-{id(f)}' style='border-color:{COLOURS[f.severity]}'>"
                     f"<h3><span class='badge' style='background:{COLOURS[f.severity]}'>{e(f.severity)}"
                     f"</span> <code>{e(f.id)}</code></h3><p>{e(f.title)}</p>")
        if f.fix:
            parts.append(f"<p class='fix'><b>What to change:</b> {e(f.fix)}</p>")
        if f.evidence:
            rows = "".join(f"<tr><td>{e(k)}</td><td>{_html_value(v)}</td></tr>" for k, v in f.evidence.items())
            parts.append(f"<table class='evidence'>{rows}</table>")
        parts += [_embed(report_dir, p) for p in f.plots]
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(report_dir: Path, findings: list[Finding], header: dict, statistics: dict,
                 arrays: dict) -> None:
    import numpy as np

    write_json(report_dir / "findings.json", [f.to_json() for f in ranked(findings)])
    write_json(report_dir / "statistics.json", statistics)
    with atomic_path(report_dir / "report.md") as tmp:
        tmp.write_text(render_markdown(findings, header))
    with atomic_path(report_dir / "report.html") as tmp:
        tmp.write_text(render_html(findings, header, report_dir))
    with atomic_path(report_dir / "predictions.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
