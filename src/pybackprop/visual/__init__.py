"""Pictures of a network: the step picture of one backpropagation step.

- :func:`trace_payload`: every number of a :class:`~pybackprop.explain.Trace`
  with its formula (operands plugged in) and the ids of the numbers it came
  from, as plain JSON-able data.
- :func:`trace_html`: one self-contained HTML document (CSS and JavaScript
  inlined, no network access) that draws the network and steps through the
  forward pass, the loss, the backward pass and the update;
  ``trace.to_html()`` and ``pybackprop explain --html FILE`` call it;
  :func:`trace_iframe` wraps it for a notebook (``trace._repr_html_()``).

The drawing itself is ``assets/network.js`` (the global ``PBNet``), shared
with the playground; :func:`asset_text` reads the shipped assets.

>>> import pybackprop as bp
>>> from pybackprop.visual import trace_payload
>>> m = bp.Sequential([bp.Dense(1, init=[[2.0]], use_bias=False)], input_dim=1, dtype="float64")
>>> m.compile(loss="mse")
>>> trace_payload(m.explain([1.0], [0.5], lr=0.1))["numbers"]["d1.0"]["f"]
'δ₁,₁ = dL/da₁,₁ · id′(z₁,₁) = 3 · 1 = 3'
"""
from __future__ import annotations

from .step import asset_text, format_number, trace_html, trace_iframe, trace_payload

__all__ = ["asset_text", "format_number", "trace_html", "trace_iframe", "trace_payload"]
