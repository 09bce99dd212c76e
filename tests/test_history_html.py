"""History._repr_html_: the notebook view of a run (loss curves and per-layer gradient norms as SVG)."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np

import pybackprop as bp
from pybackprop._svg import history_html, line_chart

SVG = "{http://www.w3.org/2000/svg}"


def _svgs(page: str):
    return [ET.fromstring(s) for s in re.findall(r"<svg.*?</svg>", page, flags=re.S)]


def _fit(epochs: int = 5, validation: bool = True):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    m = bp.Sequential([bp.Dense(8, activation="tanh"), bp.Dense(4, activation="relu"), bp.Dense(1)],
                      input_dim=3, seed=0)
    m.compile(loss="mse", optimizer=bp.SGD(lr=0.05))
    kw = {"validation_split": 0.25} if validation else {}
    return m.fit(X, y, epochs=epochs, batch_size=8, verbose=0, **kw)


def test_a_fitted_history_draws_the_losses_and_one_line_per_layer():
    h = _fit()
    page = h._repr_html_()
    loss_chart, norm_chart = _svgs(page)  # well-formed SVG, two charts
    assert [t.text for t in loss_chart.iter(SVG + "text") if t.text in ("loss", "val_loss")][-2:] == \
        ["loss", "val_loss"]
    assert len(list(loss_chart.iter(SVG + "polyline"))) == 2
    assert len(list(norm_chart.iter(SVG + "polyline"))) == 3  # three Dense layers
    assert f"loss {h.history['loss'][-1]:.3g}" in page


def test_the_points_follow_the_values():
    """A falling series is drawn falling (SVG y grows downwards), one point per epoch."""
    svg = ET.fromstring(line_chart({"loss": [4.0, 3.0, 2.0, 1.0]}, title="t", log=False))
    (line,) = svg.iter(SVG + "polyline")
    ys = [float(p.split(",")[1]) for p in line.get("points").split()]
    assert len(ys) == 4 and ys == sorted(ys)


def test_non_finite_values_are_left_out_and_text_is_escaped():
    page = line_chart({"<b>": [1.0, float("nan"), float("inf"), 0.5]}, title="a & b")
    svg = ET.fromstring(page)  # parses: the names were escaped
    (line,) = svg.iter(SVG + "polyline")
    assert len(line.get("points").split()) == 2
    assert "a &amp; b" in page and "<b>" not in page


def test_an_empty_history_still_renders():
    assert bp.callbacks.History()._repr_html_().startswith('<div class="pybackprop-history"')
    assert history_html({"loss": [1.0]}).count("<svg") == 1


def test_the_legend_stays_off_the_curves():
    """A falling loss starts top left: the names go to a corner the points leave free."""
    svg = ET.fromstring(line_chart({"loss": [4.0, 3.0, 2.0, 1.5, 1.2, 1.0], "val_loss": [4.2, 3.1, 2.2, 1.6, 1.3, 1.1]},
                                   title="loss", log=False))
    box = next(r for r in svg.iter(SVG + "rect") if r.get("fill") == "#fff")
    x0, y0 = float(box.get("x")), float(box.get("y"))
    x1, y1 = x0 + float(box.get("width")), y0 + float(box.get("height"))
    points = [(float(c.get("cx")), float(c.get("cy"))) for c in svg.iter(SVG + "circle")]
    assert len(points) == 12 and not any(x0 <= a <= x1 and y0 <= b <= y1 for a, b in points)
    assert x0 > 56 + 100  # not the top-left corner, where the curves start
    names = [t.text for t in svg.iter(SVG + "text") if t.text in ("loss", "val_loss")]
    assert names[-2:] == ["loss", "val_loss"]
