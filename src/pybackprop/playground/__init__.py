"""The playground: ``pybackprop playground`` trains a small network in the browser, every number visible.

A local web server (the standard library's ``ThreadingHTTPServer``, loopback
by default) serves one page in the spirit of TensorFlow Playground: pick a
data set (circle, xor, two gaussians, spiral, a 1-D regression or your own
CSV file), stack hidden layers, choose the learning rate, batch size,
optimiser, L2 and dropout, and watch the network's weights, the losses, the
output over the plane and the per-layer gradient norms while it trains.
Training runs in pybackprop's C++ core in the server process; clicking a
point opens the step picture of one backpropagation step on that point.
The whole state lives in the page's URL, so a link reproduces a run.

- :mod:`~pybackprop.playground.datasets`: the data sets and CSV parsing;
- :mod:`~pybackprop.playground.session`: the checked :class:`Config`, a
  :class:`Session` (one model, its training and snapshots);
- :mod:`~pybackprop.playground.server`: the HTTP server and its JSON API.

>>> from pybackprop.playground import Config, Session
>>> s = Session(Config(dataset="circle", layers=[4], activations=["tanh"]))
>>> snap = s.step(5)
>>> snap["step"], snap["net"]["sizes"], snap["output"]["kind"]
(5, [2, 4, 1], 'plane')
"""
from __future__ import annotations

from .datasets import CSVError, make_dataset, parse_csv
from .session import Config, Session, SessionStore

__all__ = ["CSVError", "Config", "Session", "SessionStore", "make_dataset", "parse_csv"]
