"""The `neurons find` gallery: for every feature, its best cell over a snippet of the text,
beside the feature itself, as one self-contained page (plus a PNG per feature)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from neurons.activations import Activations
from neurons.features import DESCRIPTIONS
from neurons.find import Findings
from neurons.png import render_png
from neurons.render import coloured_text, legend, page

SNIPPET = 480  # characters shown per feature


def pick_window(feature: np.ndarray, text: str, length: int = SNIPPET, candidates: int = 400) -> int:
    """Start of a `length`-character window, at a line start, where the feature varies most."""
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n" and i + 1 + length <= len(text)]
    if len(starts) > candidates:
        starts = starts[:: len(starts) // candidates + 1]
    return max(starts, key=lambda s: (float(np.std(feature[s:s + length])), -s))


def _feature_colours(f: np.ndarray) -> np.ndarray:
    top = float(np.max(np.abs(f))) or 1.0
    return f / top  # 0 .. 1 (white to red), the same scale as the cells


def write_gallery(findings: Findings, acts: Activations, features: dict[str, np.ndarray], out_dir: Path,
                  title: str) -> Path:
    """Write out_dir/index.html and out_dir/<feature>.png; returns the page's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, sections = [], []
    for res in findings.results:
        best = res.best
        others = ", ".join(f"L{m.layer} C{m.cell} {m.correlation:+.2f}" for m in res.runners_up)
        rows.append(f"<tr><td><a href=\"#{res.feature}\">{res.feature}</a></td>"
                    f"<td>{html.escape(DESCRIPTIONS.get(res.feature, ''))}</td><td>{best.layer}</td>"
                    f"<td>{best.cell}</td><td>{best.correlation:+.3f}</td><td>{others}</td></tr>")
        feature = features[res.feature][: len(acts.text)]
        start = pick_window(feature, acts.text)
        snippet = acts.slice(start, start + SNIPPET)
        values = snippet.cell(best.layer, best.cell, findings.value)
        png_name = f"{res.feature}.png"
        (out_dir / png_name).write_bytes(render_png(snippet.text, values))
        sections.append(
            f'<h2 id="{res.feature}">{res.feature}: layer {best.layer}, cell {best.cell}, '
            f"r = {best.correlation:+.3f}</h2>\n<p>{html.escape(DESCRIPTIONS.get(res.feature, ''))}. "
            f'The cell ({findings.value}) over characters {start:,}–{start + len(snippet.text):,} '
            f'(<a href="{png_name}">PNG</a>):</p>\n'
            + coloured_text(snippet.text, values)
            + "\n<p>The feature itself (scaled to 0..1):</p>\n"
            + coloured_text(snippet.text, _feature_colours(feature[start:start + SNIPPET])))
    body = (f"<h1>{html.escape(title)}</h1>\n"
            f"<p>Measured on {html.escape(findings.source)}; "
            f"cell value: {findings.value}; checkpoint {html.escape(findings.checkpoint)} at step {findings.step}. "
            "Cells are ranked by |Pearson correlation| between their value after each character and the "
            "feature.</p>\n" + legend() +
            "\n<table><tr><th>feature</th><th>meaning</th><th>layer</th><th>cell</th><th>correlation</th>"
            "<th>runners-up</th></tr>\n" + "\n".join(rows) + "</table>\n" + "\n".join(sections))
    if not findings.results:
        body += "\n<p>No feature varies over this text.</p>"
    path = out_dir / "index.html"
    path.write_text(page(title, body), encoding="utf-8")
    return path
