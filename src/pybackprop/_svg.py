"""Charts as inline SVG strings: the notebook view of a training run, with no plotting library.

Plain functions of numbers, knowing nothing of the model: ``History._repr_html_``
uses :func:`history_html` so that a notebook cell ending in ``hist`` shows the
loss curves and the per-layer gradient-norm chart.

>>> svg = line_chart({"loss": [1.0, 0.5, 0.25]}, title="loss")
>>> svg.startswith("<svg") and svg.count("<polyline") == 1
True
"""
from __future__ import annotations

import html
import math
from typing import Dict, List, Optional, Sequence, Tuple

#: series colours (colour-blind safe, Okabe-Ito), cycled
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#f0e442", "#000000")
_W, _H = 360, 220  # chart size in px
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 28, 36  # margins inside it


def _finite(values: Sequence[float]) -> List[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def line_chart(series: Dict[str, Sequence[float]], title: str, xlabel: str = "epoch",
               log: Optional[bool] = None) -> str:
    """One SVG line chart: a polyline per named series over x = 1, 2, ...

    Parameters
    ----------
    series : dict of name -> sequence of float
        NaN/inf points and, on a log axis, values <= 0 are left out.
    title, xlabel : str
    log : bool, optional
        Logarithmic y axis; default: when every value is positive and they span
        more than a factor of 10.

    Examples
    --------
    >>> '<title>val_loss' in line_chart({"loss": [2, 1], "val_loss": [3, 2]}, title="loss")
    True
    """
    values = [v for s in series.values() for v in _finite(s)]
    if log is None:
        log = bool(values) and min(values) > 0 and max(values) > 10 * min(values)
    if log:
        values = [v for v in values if v > 0]
    n = max((len(s) for s in series.values()), default=0)
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if log:
        lo, hi = math.log10(lo), math.log10(hi)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    pw, ph = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def x(i: int) -> float:
        return _LEFT + (pw * i / (n - 1) if n > 1 else pw / 2)

    def y(v: float) -> float:
        t = math.log10(v) if log else v
        return _TOP + ph * (1 - (t - lo) / (hi - lo))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" '
           f'role="img" aria-label="{html.escape(title)}" style="font:11px sans-serif">',
           f'<text x="{_W / 2}" y="16" text-anchor="middle" font-weight="bold">{html.escape(title)}</text>',
           f'<rect x="{_LEFT}" y="{_TOP}" width="{pw}" height="{ph}" fill="none" stroke="#bbb"/>']
    for k in range(5):  # y ticks
        t = lo + (hi - lo) * k / 4
        v = 10 ** t if log else t
        yy = _TOP + ph * (1 - k / 4)
        out.append(f'<line x1="{_LEFT - 3}" x2="{_LEFT + pw}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eee"/>'
                   f'<text x="{_LEFT - 5}" y="{yy + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
    for i in sorted({0, n - 1, (n - 1) // 2}) if n else []:  # x ticks
        out.append(f'<text x="{x(i):.1f}" y="{_TOP + ph + 14}" text-anchor="middle">{i + 1}</text>')
    out.append(f'<text x="{_LEFT + pw / 2}" y="{_H - 6}" text-anchor="middle">{html.escape(xlabel)}'
               f'{" (log y)" if log else ""}</text>')
    drawn = []
    for k, (name, vals) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        pts = [(x(i), y(float(v))) for i, v in enumerate(vals)
               if v is not None and math.isfinite(float(v)) and (not log or float(v) > 0)]
        drawn += [(a + (c - a) * f / 8, b + (d - b) * f / 8)  # the points and the lines between them
                  for (a, b), (c, d) in zip(pts, pts[1:] + pts[-1:]) for f in range(8)]
        label = f"{name}: last {_fmt(float(vals[-1]))}" if len(vals) else name
        out.append(f'<g><title>{html.escape(label)}</title>'
                   f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
                   + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + '"/>'
                   + "".join(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2" fill="{colour}"/>' for a, b in pts
                             if n <= 60) + '</g>')
    out.append(_legend(list(series), drawn, pw, ph))
    out.append("</svg>")
    return "".join(out)


def _legend(names: List[str], points: List[Tuple[float, float]], pw: float, ph: float) -> str:
    """The series' names on a white box, in the corner of the plot that the curves cross least."""
    width = 26 + 6.2 * max((len(name) for name in names), default=0)
    height = 6 + 14 * len(names)
    corners = [(_LEFT + 4, _TOP + 4), (_LEFT + pw - 4 - width, _TOP + 4),
               (_LEFT + 4, _TOP + ph - 4 - height), (_LEFT + pw - 4 - width, _TOP + ph - 4 - height)]

    def crossing(corner: Tuple[float, float]) -> int:
        x0, y0 = corner
        return sum(x0 - 4 <= a <= x0 + width + 4 and y0 - 4 <= b <= y0 + height + 4 for a, b in points)

    x0, y0 = min(corners, key=crossing)  # the first such corner: top left, top right, bottom left, bottom right
    out = [f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{width:.1f}" height="{height}" fill="#fff" '
           f'fill-opacity="0.85" stroke="#ddd"/>']
    for k, name in enumerate(names):
        out.append(f'<rect x="{x0 + 6:.1f}" y="{y0 + 8 + 14 * k}" width="10" height="3" '
                   f'fill="{PALETTE[k % len(PALETTE)]}"/>'
                   f'<text x="{x0 + 20:.1f}" y="{y0 + 13 + 14 * k}">{html.escape(name)}</text>')
    return "".join(out)


def history_html(history: Dict[str, List[object]]) -> str:
    """The HTML of a training run: loss curves and the per-layer gradient-norm chart, side by side.

    Parameters
    ----------
    history : dict
        ``History.history``: ``loss`` and optionally ``val_loss`` (floats per
        epoch), ``grad_norm`` (per epoch, a list of per-layer norms).

    Examples
    --------
    >>> page = history_html({"loss": [1.0, 0.5], "grad_norm": [[0.1, 1.0], [0.2, 0.9]]})
    >>> page.count("<svg"), "layer 2" in page
    (2, True)
    """
    charts: List[str] = []
    losses = {k: history[k] for k in ("loss", "val_loss") if history.get(k)}
    if losses:
        charts.append(line_chart(losses, title="loss"))  # type: ignore[arg-type]
    norms = history.get("grad_norm") or []
    if norms:
        layers = max(len(row) for row in norms)  # type: ignore[arg-type]
        per_layer = {f"layer {j + 1}": [row[j] if j < len(row) else float("nan")  # type: ignore[index, arg-type]
                                        for row in norms] for j in range(layers)}
        charts.append(line_chart(per_layer, title="gradient L2 norm per layer", log=True))  # type: ignore[arg-type]
    epochs = len(history.get("loss") or [])
    head = f"History: {epochs} epoch{'s' if epochs != 1 else ''}"
    if losses:
        head += " — " + ", ".join(f"{k} {_fmt(float(v[-1]))}" for k, v in losses.items())  # type: ignore[arg-type]
    return ('<div class="pybackprop-history" style="font:12px sans-serif">'
            f'<div style="margin:2px 0 4px">{html.escape(head)}</div>'
            '<div style="display:flex;flex-wrap:wrap;gap:12px">' + "".join(charts) + "</div></div>")
