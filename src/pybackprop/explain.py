"""The chain-rule explainer: one sample (a small batch with BatchNorm), one SGD step, every number.

``model.explain(x, y)`` runs one step of plain SGD on a copy of the model
through the same C++ core that trains (forward, loss, backward with recording
on, update) and returns a :class:`Trace` of every quantity, layer by layer.

>>> import pybackprop as bp
>>> model = bp.Sequential([bp.Dense(2, activation="relu", use_bias=False, init=[[1.0, -1.0]]),
...                        bp.Dense(1, use_bias=False, init=[[0.5], [2.0]])], input_dim=1, dtype="float64")
>>> model.compile(loss="mse")
>>> trace = model.explain([3.0], [1.0], lr=0.1)
>>> trace.loss                      # z1 = [3, -3], a1 = [3, 0], y_hat = 1.5, L = (1.5 - 1)^2
0.25
>>> trace.layers[0]["dW"]           # dL/dW1 = x^T · (dL/da1 ⊙ relu'(z1)) = 3 · [2·0.5·0.5, 0]
array([[1.5, 0. ]])
>>> trace.layers[1]["W_new"]        # W2 - 0.1 · a1^T · dL/dz2 = [0.5 - 0.1·3·1, 2 - 0]
array([[0.2],
       [2. ]])
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional

import numpy as np

from . import schedules as _schedules
from ._formulas import DERIVATIVES as _DERIVATIVES
from ._formulas import LOSS_FORMULAS as _LOSS_FORMULAS
from ._validation import check_float
from .layers import BatchNorm, Dense, Dropout, Normalization
from .optimizers import SGD

if TYPE_CHECKING:  # pragma: no cover
    from .model import Sequential

_SHOW_WHOLE = 64  # matrices with at most this many entries are printed whole


def _fmt(arr: Optional[np.ndarray], indent: int = 0) -> str:
    if arr is None:
        return "-"
    a = np.asarray(arr, dtype=np.float64)
    if a.size and np.isnan(a).all():
        return "(not computed: fused with the loss)"
    if a.size <= _SHOW_WHOLE:
        text = np.array2string(a.squeeze(0) if a.ndim == 2 and a.shape[0] == 1 else a, precision=6,
                               suppress_small=True, max_line_width=100)
        return text.replace("\n", "\n" + " " * indent)
    return (f"shape {a.shape}: mean {a.mean():.4g}, min {a.min():.4g}, max {a.max():.4g}, "
            f"L2 norm {np.linalg.norm(a):.4g}")


class Trace:
    """Every value of one backpropagation step, from :meth:`Sequential.explain`.

    Attributes
    ----------
    x, y : numpy.ndarray
        The sample (1, n_in) and its target (1, n_out) as the core saw them.
    y_hat : numpy.ndarray
        The output of the forward pass.
    loss : float
    loss_name : str
    lr : float
    layers : list of dict
        One dict per Dense layer with ``name``, ``activation``, ``a_prev`` (its
        input, after dropout if any), ``mask`` (dropout mask or None), ``W``,
        ``b``, ``z``, ``a``; backward: ``dL_da``, ``fprime`` (f'(z)), ``delta``
        (dL/dz), ``dW``, ``db``, ``dL_da_prev`` (dL/d input = delta · Wᵀ); and the
        update ``W_new``, ``b_new``. With a BatchNorm or LayerNorm in front of the
        layer, ``norm``: a dict of its values (the key is absent without): ``kind``, ``eps``,
        ``input`` (what it normalises), ``mean``, ``var`` (biased), ``inv_std``
        (1/√(var + eps)), ``x_hat``, ``gamma``, ``beta`` (None without affine),
        ``output`` (γ ⊙ x̂ + β); backward: ``dL_dout`` (dL/d its output),
        ``dL_dxhat``, ``dgamma``, ``dbeta``, ``dL_din`` (dL/d its input); update:
        ``gamma_new``, ``beta_new``.
    dropouts : list of dict or None
        Per Dense layer, the Dropout before it in this step: ``keep_prob``,
        ``scaling`` and the training ``scale`` (1/p inverted, 1 classic); None
        without one.
    activation_params : list of dict
        Per Dense layer, its activation's parameters (e.g. ``{"alpha": 0.01}``).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, y_hat: np.ndarray, loss: float, loss_name: str, lr: float,
                 layers: List[Dict[str, Any]], dropouts: Optional[List[Optional[Dict[str, Any]]]] = None,
                 activation_params: Optional[List[Dict[str, float]]] = None) -> None:
        self.x, self.y, self.y_hat, self.loss = x, y, y_hat, loss
        self.loss_name, self.lr, self.layers = loss_name, lr, layers
        self.dropouts = dropouts if dropouts is not None else [None] * len(layers)
        self.activation_params = activation_params if activation_params is not None else [{} for _ in layers]

    def to_dict(self) -> Dict[str, Any]:
        """All the numbers as plain Python lists (JSON-serialisable).

        Examples
        --------
        >>> import json, pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(1)], input_dim=2, seed=0); m.compile(loss="mse")
        >>> d = m.explain([1.0, 2.0], [0.5]).to_dict()
        >>> sorted(d)[:4], sorted(d["layers"][0])[:4]
        (['layers', 'loss', 'loss_name', 'lr'], ['W', 'W_new', 'a', 'a_prev'])
        >>> _ = json.dumps(d)
        """
        def plain(v: Any) -> Any:
            if isinstance(v, np.ndarray):
                return _nan_to_none(v.tolist())
            return v

        def plain_entry(k: str, v: Any) -> Any:
            if k == "norm" and isinstance(v, dict):
                return {nk: plain(nv) for nk, nv in v.items()}
            return plain(v)

        return {"x": plain(self.x), "y": plain(self.y), "y_hat": plain(self.y_hat), "loss": self.loss,
                "loss_name": self.loss_name, "lr": self.lr,
                "layers": [{k: plain_entry(k, v) for k, v in layer.items()} for layer in self.layers]}

    def _rows(self) -> List[tuple]:
        """(section, quantity, formula, value) in the order of the walk-through."""
        rows: List[tuple] = []
        L = len(self.layers)
        rows.append(("input", "x", "the sample", self.x))
        for i, layer in enumerate(self.layers, start=1):
            sec = f"forward, layer {i} ({layer['name']})"
            prev = "x" if i == 1 else f"a{i - 1}"
            norm = layer.get("norm")
            if norm is not None:
                rows += _norm_forward_rows(sec, prev, i, norm)
                prev = f"n{i}"
            if layer["mask"] is not None:
                rows.append((sec, "dropout mask", "1 = kept, 0 = dropped", layer["mask"]))
                rows.append((sec, f"{prev} after dropout", f"{prev} ⊙ mask · scale", layer["a_prev"]))
            rows.append((sec, f"W{i}", "weights (fan_in × fan_out)", layer["W"]))
            if layer["b"] is not None:
                rows.append((sec, f"b{i}", "bias", layer["b"]))
            noise = " + noise (noisy_relu, training)" if layer["activation"] == "noisy_relu" else ""
            rows.append((sec, f"z{i}", f"{prev} · W{i}" + (f" + b{i}" if layer["b"] is not None else "") + noise,
                         layer["z"]))
            rows.append((sec, f"a{i}", f"{layer['activation']}(z{i})", layer["a"]))
        loss_f, grad_f = _LOSS_FORMULAS[self.loss_name]
        rows.append(("loss", "y", "the target", self.y))
        rows.append(("loss", "L", loss_f, np.array([[self.loss]])))
        for i in range(L, 0, -1):
            layer = self.layers[i - 1]
            sec = f"backward, layer {i} ({layer['name']})"
            source = f"dL/dy_hat = {grad_f}" if i == L else f"passed back by layer {i + 1}"
            rows.append((sec, f"dL/da{i}", source, layer["dL_da"]))
            rows.append((sec, f"f'(z{i})", f"{layer['activation']}'(z) = {_DERIVATIVES[layer['activation']]}",
                         layer["fprime"]))
            how = "fused with the loss" if i == L and np.isnan(layer["dL_da"]).all() else f"dL/da{i} ⊙ f'(z{i})"
            rows.append((sec, f"δ{i} = dL/dz{i}", how + "  (chain rule)", layer["delta"]))
            prev = "x" if i == 1 else f"a{i - 1}"
            norm = layer.get("norm")
            inp = prev if norm is None else f"(dropped n{i})" if layer["mask"] is not None else f"n{i}"
            rows.append((sec, f"dL/dW{i}", f"{inp}ᵀ · δ{i}", layer["dW"]))
            if layer["db"] is not None:
                rows.append((sec, f"dL/db{i}", f"sum of δ{i} over the batch", layer["db"]))
            rows.append((sec, f"dL/d{inp}", f"δ{i} · W{i}ᵀ", layer["dL_da_prev"]))
            if norm is not None:
                rows += _norm_backward_rows(sec, prev, i, norm, layer["mask"] is not None)
        for i, layer in enumerate(self.layers, start=1):
            sec = f"update (SGD, lr {self.lr:g})"
            rows.append((sec, f"W{i} new", f"W{i} - {self.lr:g} · dL/dW{i}", layer["W_new"]))
            if layer["b"] is not None:
                rows.append((sec, f"b{i} new", f"b{i} - {self.lr:g} · dL/db{i}", layer["b_new"]))
            norm = layer.get("norm")
            if norm is not None and norm["gamma"] is not None:
                rows.append((sec, f"γ{i} new", f"γ{i} - {self.lr:g} · dL/dγ{i}", norm["gamma_new"]))
                rows.append((sec, f"β{i} new", f"β{i} - {self.lr:g} · dL/dβ{i}", norm["beta_new"]))
        return rows

    def __str__(self) -> str:
        lines, section = [], None
        arch = " -> ".join([str(self.x.shape[1])] + [f"{layer['units']} {layer['activation']}" for layer in self.layers])
        lines.append(f"One step of backpropagation: {arch}; loss {self.loss_name}; SGD lr {self.lr:g}")
        for sec, name, formula, value in self._rows():
            if sec != section:
                lines.append(f"\n{sec}")
                section = sec
            head = f"  {name:<14s} {formula:<42s} = "
            lines.append(head + _fmt(value, indent=len(head)))
        return "\n".join(lines)

    __repr__ = __str__

    def to_markdown(self) -> str:
        """The walk-through as a Markdown table (quantity, formula, value).

        Examples
        --------
        >>> import pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(1, init=[[2.0]], use_bias=False)], input_dim=1); m.compile(loss="mse")
        >>> print(m.explain([1.0], [0.0]).to_markdown().splitlines()[0])
        | step | quantity | formula | value |
        """
        out = ["| step | quantity | formula | value |", "|---|---|---|---|"]
        for sec, name, formula, value in self._rows():
            text = _fmt(value).replace("\n", " ").replace("|", "\\|")
            out.append(f"| {sec} | {name} | {formula.replace('|', chr(92) + '|')} | `{' '.join(text.split())}` |")
        return "\n".join(out)

    def to_html(self, title: Optional[str] = None) -> str:
        """The step as one self-contained HTML page: the network drawn, every number on it.

        Layers are columns, weights are edges; buttons and the arrow keys step
        through the forward pass, the loss, the backward pass and the update
        (the phase is the URL hash: ``#forward-2``, ``#loss``, ``#backward-1``,
        ``#update``); hovering or focusing a number shows its formula with the
        operands plugged in. CSS and JavaScript are inlined: no network access.
        See :func:`pybackprop.visual.trace_html` (and its module for the size
        limits of large layers).

        Parameters
        ----------
        title : str, optional
            The page's heading.

        Examples
        --------
        >>> import pybackprop as bp
        >>> m = bp.Sequential([bp.Dense(1, init=[[2.0]], use_bias=False)], input_dim=1); m.compile(loss="mse")
        >>> page = m.explain([1.0], [0.0]).to_html()
        >>> page.startswith("<!DOCTYPE html>") and '<script type="application/json" id="pb-data">' in page
        True
        """
        from .visual import trace_html

        return trace_html(self, title=title)

    def _repr_html_(self) -> str:
        """Jupyter's view: the page of :meth:`to_html` in a sandboxed ``<iframe srcdoc>``.

        The iframe keeps the page's script and CSS from leaking into the
        notebook (and the notebook's into the page).
        """
        from .visual import trace_iframe

        return trace_iframe(self)


def _norm_forward_rows(sec: str, prev: str, i: int, norm: Dict[str, Any]) -> List[tuple]:
    """The forward rows of the BatchNorm/LayerNorm in front of Dense layer i: n_i = γ ⊙ x̂ + β."""
    over = "over the batch, per feature" if norm["kind"] == "batch" else "over the features, per sample"
    if norm["kind"] == "batch" and not norm["training"]:
        over = "the running estimate"
    name = "BatchNorm" if norm["kind"] == "batch" else "LayerNorm"
    rows = [(sec, f"μ{i}", f"{name}: mean of {prev} {over}", norm["mean"]),
            (sec, f"σ²{i}", f"mean of ({prev} - μ{i})² {over}", norm["var"]),
            (sec, f"x̂{i}", f"({prev} - μ{i}) / √(σ²{i} + {norm['eps']:g})", norm["x_hat"])]
    if norm["gamma"] is not None:
        rows += [(sec, f"γ{i}", "scale (learnt)", norm["gamma"]), (sec, f"β{i}", "shift (learnt)", norm["beta"]),
                 (sec, f"n{i}", f"γ{i} ⊙ x̂{i} + β{i}", norm["output"])]
    else:
        rows.append((sec, f"n{i}", f"x̂{i} (no affine)", norm["output"]))
    return rows


def _norm_backward_rows(sec: str, prev: str, i: int, norm: Dict[str, Any], dropped: bool) -> List[tuple]:
    """The backward rows of the normalisation in front of Dense layer i, down to dL/d(its input)."""
    axis = "the batch" if norm["kind"] == "batch" else "the features"
    rows = []
    if dropped:
        rows.append((sec, f"dL/dn{i}", "through the dropout: ⊙ mask · scale", norm["dL_dout"]))
    if norm["gamma"] is not None:
        rows += [(sec, f"dL/dγ{i}", f"sum over the batch of dL/dn{i} ⊙ x̂{i}", norm["dgamma"]),
                 (sec, f"dL/dβ{i}", f"sum over the batch of dL/dn{i}", norm["dbeta"]),
                 (sec, f"dL/dx̂{i}", f"dL/dn{i} ⊙ γ{i}", norm["dL_dxhat"])]
    if norm["kind"] == "batch" and not norm["training"]:
        how = f"dL/dx̂{i} / √(σ²{i} + ε)  (running statistics: constants)"
    else:
        how = f"(g - mean(g) - x̂{i} ⊙ mean(g ⊙ x̂{i})) / √(σ²{i} + ε), g = dL/dx̂{i}, means over {axis}"
    rows.append((sec, f"dL/d{prev}", how, norm["dL_din"]))
    return rows


def _nan_to_none(value: Any) -> Any:
    """Nested lists with NaN (a quantity not computed) replaced by None, for JSON."""
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return None if value != value else value


def _norm_entry(engine: Any, net: Any, rec: Dict[str, np.ndarray], d: int, layer: Normalization,
                a_prev: np.ndarray) -> Dict[str, Any]:
    """The values of the normalisation in front of Dense layer d in the recorded step."""
    values = net.norm_values(d)
    affine = layer.affine
    gamma_old = engine.norm_view(d, "gamma").copy() if affine else None
    return {
        "kind": layer.kind, "eps": layer.eps, "training": True, "input": a_prev,
        "mean": values["mean"], "var": values["var"], "inv_std": values["inv_std"], "x_hat": values["xhat"],
        "gamma": gamma_old, "beta": engine.norm_view(d, "beta").copy() if affine else None,
        "output": values["output"], "dL_dout": rec["dNorm"],
        "dL_dxhat": rec["dNorm"] * gamma_old if affine else rec["dNorm"],
        "dgamma": net.dgamma(d).copy() if affine else None, "dbeta": net.dbeta(d).copy() if affine else None,
        "dL_din": rec["dNormIn"],
        "gamma_new": net.gamma(d).copy() if affine else None, "beta_new": net.beta(d).copy() if affine else None,
    }


def explain(model: "Sequential", x: Any, y: Any, lr: Optional[float] = None) -> Trace:
    """One SGD step on one sample, with every value of the chain rule (see :class:`Trace`).

    The model itself is not changed: the step runs on a copy.

    Parameters
    ----------
    model : Sequential
        A compiled model.
    x : array of shape (n_features,) or (1, n_features)
        With a BatchNorm, whose training statistics need more than one sample: a
        small batch of shape (n_samples, n_features), n_samples >= 2.
    y : target of that sample (or of those samples)
    lr : float, optional
        Learning rate of the step (default: the model's SGD learning rate, else 0.01).
    """
    engine = model.engine
    engine.require_compiled()
    xs = np.asarray(x)
    if xs.ndim == 1:
        xs = xs.reshape(1, -1)
    batchnorm = any(isinstance(layer, BatchNorm) for layer in engine.layers)
    ys = np.asarray(y)
    if ys.ndim == 0 or (ys.ndim == 1 and engine.loss != "categorical_crossentropy"):
        ys = ys.reshape(xs.shape[0], -1) if batchnorm and xs.ndim == 2 and xs.shape[0] > 1 else ys.reshape(1, -1)
    if lr is None:
        opt_lr = getattr(engine.optimizer, "lr", None)
        lr = opt_lr if isinstance(engine.optimizer, SGD) and not isinstance(opt_lr, _schedules.Schedule) else 0.01
    lr = check_float("lr", lr, minimum=0.0)
    Xc = engine.inputs(xs)
    if batchnorm and Xc.shape[0] < 2:
        raise ValueError(f"x: expected a batch of at least two samples (the model has a BatchNorm, whose "
                         f"training statistics need more than one), got {Xc.shape[0]}")
    if not batchnorm and Xc.shape[0] != 1:
        raise ValueError(f"x: expected one sample, got {Xc.shape[0]}")
    Yc = engine.targets(ys, Xc.shape[0])

    step = engine.clone()  # the step runs on a copy: same weights, counters, masks (no file in between)
    assert engine.loss is not None
    step.compile(engine.loss, SGD(lr=lr))
    net = step.net
    net.set_recording(True)
    step.set_keep_probs_now()
    loss, _ = net.train_step(Xc, Yc, lr)  # a NaN/inf step is not applied: W_new then equals W
    keep = dict(zip((id(d) for d in step.dropouts), step.keep_probs()))
    feeding: List[Optional[Dict[str, Any]]] = []  # the Dropout before each Dense layer, if any
    pending: Optional[Dict[str, Any]] = None
    norms: Dict[int, Normalization] = {}  # by the index of the Dense layer whose input each normalises
    for item in engine.layers:
        if isinstance(item, Normalization):
            norms[sum(1 for other in engine.layers[:engine.layers.index(item)] if isinstance(other, Dense))] = item
    for item in step.layers:
        if isinstance(item, Normalization):
            continue
        if isinstance(item, Dropout):
            p = keep[id(item)]
            pending = {"keep_prob": p, "scaling": item.scaling, "scale": 1.0 / p if item.scaling == "inverted" else 1.0}
        else:
            feeding.append(pending)
            pending = None
    layers: List[Dict[str, Any]] = []
    a_prev = Xc
    for d, layer in enumerate(engine.dense):
        rec = net.recorded(d)
        W_old = engine.W(d).copy()
        b = engine.b(d)
        b_old = None if b is None else b.copy()
        mask = net.mask(d)  # None without a Dropout before this layer
        norm = None if d not in norms else _norm_entry(engine, net, rec, d, norms[d], a_prev)
        inp = net.dropped_input(d) if mask is not None else a_prev if norm is None else norm["output"]
        entry = {
            "name": f"Dense {W_old.shape[0]} -> {layer.units}", "units": layer.units,
            "activation": layer.activation.name, "a_prev": inp, "mask": mask, "W": W_old, "b": b_old,
            "z": net.Z(d), "a": net.A(d), "dL_da": rec["dA"], "fprime": rec["fprime"], "delta": rec["dZ"],
            "dW": net.dW(d).copy(), "db": None if not layer.use_bias else net.db(d).copy(),
            "dL_da_prev": rec["dIn"], "W_new": net.W(d).copy(),
            "b_new": None if not layer.use_bias else net.b(d).copy(),
        }
        if norm is not None:
            entry["norm"] = norm
        layers.append(entry)
        a_prev = entry["a"]
    return Trace(Xc, Yc, layers[-1]["a"], float(loss), engine.loss or "", lr, layers,
                 dropouts=[None if entry["mask"] is None else feeding[d] for d, entry in enumerate(layers)],
                 activation_params=[layer.activation.params() for layer in engine.dense])
