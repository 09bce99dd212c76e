"""The step picture: a :class:`~pybackprop.explain.Trace` as data and as one HTML page.

:func:`trace_payload` turns every number of a trace into a record

``{"n": name, "v": value, "t": shown text, "f": formula, "src": [ids]}``

where ``f`` is the formula with the operands' values plugged in, e.g.
``δ₂,₁ = dL/da₂,₁ · σ′(z₂,₁) = 0.0472 · 0.2490 = 0.01175``, ``t`` the value to
4 significant digits (``v`` is the full value; None where the core did not
compute the quantity, e.g. dL/da of an output fused with its loss) and
``src`` the ids of the numbers it was computed from. Layers are numbered from
1 (the inputs are column 0) and units from 1 in the names; the ids count from
0 (``z2.0`` is z₂,₁):

=========================  =================================================
id                         number
=========================  =================================================
``a0.i``                   input xᵢ
``m{k}.i``, ``ad{k}.i``    dropout mask on the input i of layer k, and that
                           input after dropout (mask · scale)
``z{k}.j``, ``a{k}.j``     pre-activation and activation of unit j of layer k
``b{k}.j``, ``db{k}.j``,   its bias, dL/db and the updated bias
``bn{k}.j``
``dA{k}.j``, ``fp{k}.j``,  dL/da, f′(z) and δ = dL/dz of the unit
``d{k}.j``
``dA0.i``                  dL/dxᵢ (with respect to the input after dropout)
``W{k}.i.j``, ``dW{k}.i.j``, the weight from unit i of column k−1 to unit j
``Wn{k}.i.j``              of layer k, its gradient and its new value
``Wb{k}.r.c`` ... ``Wnb``  block r, c of a large matrix (mean; min and max in
                           the formula), see below
``yh.j``, ``y.j``, ``L``   output ŷ, target, loss
=========================  =================================================

A ``src`` entry may also name a group: ``a1.*`` (a whole column),
``W2.*.j`` (the weights into unit j), ``W2.i.*`` (the weights out of unit i).

Size limits (so that a 784-256-10 network stays well under 2 MB): the
weights, gradients and new weights of a matrix with at most
:data:`FULL_EDGES` entries are embedded one by one with their formulas; a
larger matrix is embedded as at most :data:`BLOCKS` × :data:`BLOCKS` blocks
(the mean of each block as its value, its min and max in the formula) and
its individual weights are not in the page. Every unit's numbers are
embedded whatever the width. A sum of more than :data:`MAX_TERMS` products
is written with its total instead of term by term.

:func:`trace_html` inlines ``assets/pybackprop.css``, ``assets/network.js``
(the drawing, shared with the playground) and ``assets/step.js`` (phases,
tooltips) with the payload as ``<script type="application/json"
id="pb-data">``: one file, no network access.
"""
from __future__ import annotations

import html
import json
import math
from importlib import resources
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._formulas import DERIVATIVES, FORWARD, FUSED_LOSSES, LOSS_FORMULAS, SYMBOLS, pretty

if TYPE_CHECKING:  # pragma: no cover
    from ..explain import Trace

#: a column of more units than this is drawn as a strip of heat-map cells
WIDE = 16
#: a weight matrix of at most this many entries is embedded weight by weight
FULL_EDGES = 1024
#: a larger matrix is embedded as at most BLOCKS x BLOCKS block means
BLOCKS = 32
#: a sum of more products than this is written with its total only
MAX_TERMS = 8

_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
Record = Dict[str, Any]


def format_number(value: Optional[float], float32: bool = False) -> str:
    """A value as the picture shows it: 4 significant digits, a true minus sign.

    Integers are shown whole and a value that 4 digits represent exactly
    without trailing zeros (0.5) is shown so; otherwise 4 significant digits
    with their trailing zeros (0.2490). None and NaN (not computed) are "—".

    Parameters
    ----------
    value : float or None
    float32 : bool
        The value is a float32 (its shortest float32 decimal decides whether
        4 digits are exact).

    Returns
    -------
    str

    Examples
    --------
    >>> [format_number(v) for v in (3.0, 0.5, 0.24900001, -0.011753, 1.5e-7, None)]
    ['3', '0.5', '0.2490', '−0.01175', '1.500e−7', '—']
    """
    if value is None:
        return "—"
    v = float(value)
    if float32 and abs(v) <= _FLOAT32_MAX:
        v = float(np.float32(v))  # a float32's own value, however it is given (the loss, a double, may be larger)
    if math.isnan(v):
        return "—"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v == 0:
        return "0"
    if v.is_integer() and abs(v) < 1e6:
        text = str(int(v))
    elif 1e-4 <= abs(v) < 1e6:
        short = f"{v:.4g}"
        exact = np.float32(short) == np.float32(v) if float32 else float(short) == v
        text = short if "e" not in short and exact else f"{v:#.4g}"
        if "e" in text:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}e{int(exponent)}"
    else:
        mantissa, exponent = f"{v:.3e}".split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text.replace("-", "−")


def _op(value: Optional[float], float32: bool = False) -> str:
    """An operand inside a formula: negative values in parentheses."""
    text = format_number(value, float32)
    return f"({text})" if text.startswith("−") else text


def _sub(n: int) -> str:
    return str(n).translate(_SUB)


def _unit(sym: str, k: int, j: int) -> str:
    """``δ₂,₁``: quantity of unit j (0-based) of layer k."""
    return f"{sym}{_sub(k)},{_sub(j + 1)}"


def _weight(sym: str, k: int, i: int, j: int) -> str:
    """``W₂[1,3]``: the weight from unit i of column k-1 to unit j of layer k (0-based i, j)."""
    return f"{sym}{_sub(k)}[{i + 1},{j + 1}]"


def _span(lo: int, hi: int) -> str:
    return f"{lo + 1}" if hi - lo == 1 else f"{lo + 1}–{hi}"


def _value(x: Any, float32: bool) -> Optional[float]:
    """A JSON-able value: None for NaN and ±inf, the shortest float32 decimal for a float32 model."""
    v = float(x)
    if not math.isfinite(v):
        return None  # JSON has no inf: the record's shown text keeps "∞" (a diverging step)
    if float32 and abs(v) <= _FLOAT32_MAX:  # (the loss, a double, may be larger)
        return float(str(np.float32(v)))
    return v


class _Builder:
    """Collects the records of one trace (the work of :func:`trace_payload`)."""

    def __init__(self, trace: "Trace") -> None:
        self.trace = trace
        self.layers = trace.layers
        self.L = len(self.layers)
        self.float32 = np.asarray(self.layers[0]["W"]).dtype == np.float32
        self.numbers: Dict[str, Record] = {}
        self.drops: List[Optional[Dict[str, Any]]] = list(getattr(trace, "dropouts", None) or [None] * self.L)
        self.params: List[Dict[str, float]] = list(getattr(trace, "activation_params", None) or [{}] * self.L)

    def fn(self, value: Optional[float]) -> str:
        return format_number(value, self.float32)

    def op(self, value: Optional[float]) -> str:
        return _op(value, self.float32)

    # ------------------------------------------------------------------ helpers
    def add(self, key: str, name: str, value: Any, formula: str, src: Sequence[str] = (),
            show_value: bool = True) -> None:
        v = None if value is None else _value(value, self.float32)
        shown = self.fn(None if value is None else float(value))  # "∞" where v is None for an inf
        text = f"{name} = {formula}" if formula else name
        if show_value and v is not None and not text.endswith(f"= {shown}"):
            text += f" = {shown}"
        self.numbers[key] = {"n": name, "v": v, "t": shown, "f": text, "src": list(src)}

    def row(self, arr: Any) -> np.ndarray:
        return np.asarray(arr, dtype=np.float64).reshape(-1)

    def inputs_of(self, k: int) -> Tuple[List[str], List[str], np.ndarray]:
        """(names, ids, values) of the inputs of layer k as the layer saw them (after dropout)."""
        layer = self.layers[k - 1]
        n = layer["W"].shape[0]
        dropped = layer["mask"] is not None
        names = [self.input_name(k, i, dropped) for i in range(n)]
        ids = [f"ad{k}.{i}" if dropped else f"a{k - 1}.{i}" for i in range(n)]
        return names, ids, self.row(layer["a_prev"])

    def input_name(self, k: int, i: int, dropped: bool = False) -> str:
        """x₁ (column 0) or a₁,₂ (a unit of layer k-1), with a tilde after dropout; i = -1 gives xᵢ, a₁,ᵢ."""
        tilde = "\u0303" if dropped else ""
        unit = "ᵢ" if i < 0 else _sub(i + 1)
        return f"x{tilde}{unit}" if k == 1 else f"a{tilde}{_sub(k - 1)},{unit}"

    def group(self, ids: List[str], group: str) -> List[str]:
        return ids if len(ids) <= WIDE else [group]

    # ------------------------------------------------------------------ the walk
    def build(self) -> None:
        t = self.trace
        for i, v in enumerate(self.row(t.x)):
            self.add(f"a0.{i}", f"x{_sub(i + 1)}", v, "", show_value=True)
            self.numbers[f"a0.{i}"]["f"] += " (the sample)"
        for k in range(1, self.L + 1):
            self.forward(k)
        self.loss()
        for k in range(self.L, 0, -1):
            self.backward(k)
        for k in range(1, self.L + 1):
            self.update(k)

    def forward(self, k: int) -> None:
        layer = self.layers[k - 1]
        W = np.asarray(layer["W"], dtype=np.float64)
        n_in, n_out = W.shape
        drop = self.drops[k - 1]
        if layer["mask"] is not None:
            mask = self.row(layer["mask"])
            prev = self.row(self.trace.x if k == 1 else self.layers[k - 2]["a"])
            drop = drop or {"keep_prob": float("nan"), "scale": 1.0, "scaling": "classic"}
            p, scale, inverted = drop["keep_prob"], drop["scale"], drop["scaling"] == "inverted"
            for i in range(n_in):
                base = self.input_name(k, i)
                kept = "kept" if mask[i] else "dropped: passes nothing forward or back"
                self.add(f"m{k}.{i}", f"m({base})", mask[i], "", show_value=True)
                self.numbers[f"m{k}.{i}"]["f"] += f" ({kept}; each unit is kept with probability p = {self.fn(p)})"
                name = self.input_name(k, i, True)
                if inverted:
                    formula = (f"{base} · m({base}) · 1/p = {self.op(prev[i])} · {self.fn(mask[i])} · "
                               f"{self.fn(scale)}")
                    note = f" (inverted dropout: kept units are scaled by 1/p = 1/{self.fn(p)} while training)"
                else:
                    formula = f"{base} · m({base}) = {self.op(prev[i])} · {self.fn(mask[i])}"
                    note = (f" (classic dropout: no scaling while training; the outputs are multiplied by "
                            f"p = {self.fn(p)} at inference)")
                self.add(f"ad{k}.{i}", name, self.row(layer["a_prev"])[i], formula,
                         [f"a{k - 1}.{i}", f"m{k}.{i}"])
                self.numbers[f"ad{k}.{i}"]["f"] += note
        names, ids, a_prev = self.inputs_of(k)
        dropped = layer["mask"] is not None
        b = None if layer["b"] is None else self.row(layer["b"])
        z, a = self.row(layer["z"]), self.row(layer["a"])
        if n_in * n_out <= FULL_EDGES:
            for i in range(n_in):
                for j in range(n_out):
                    self.add(f"W{k}.{i}.{j}", _weight("W", k, i, j), W[i, j], "", show_value=True)
                    self.numbers[f"W{k}.{i}.{j}"]["f"] += f" (the weight from {names[i]} to z{_sub(k)},{_sub(j + 1)})"
        else:
            self.blocks(k, "Wb", "W", W)
        if b is not None:
            for j in range(n_out):
                self.add(f"b{k}.{j}", _unit("b", k, j), b[j], "", show_value=True)
                self.numbers[f"b{k}.{j}"]["f"] += f" (the bias of unit {j + 1} of layer {k})"
        act, params = layer["activation"], self.params[k - 1]
        sym = SYMBOLS[act]
        for j in range(n_out):
            zn = _unit("z", k, j)
            bias = "" if b is None else f" + {_unit('b', k, j)}"
            if n_in <= MAX_TERMS:
                symbolic = " + ".join(f"{names[i]}·{_weight('W', k, i, j)}" for i in range(n_in)) + bias
                plugged = " + ".join(f"{self.op(a_prev[i])} · {self.op(W[i, j])}" for i in range(n_in))
                src = [*ids, *(f"W{k}.{i}.{j}" for i in range(n_in))]
            else:
                symbolic = f"Σᵢ {self.input_name(k, -1, dropped)}·{_weight('W', k, 0, j).replace('[1,', '[i,')}" + bias
                plugged = f"(Σ of {n_in} products = {self.fn(float(a_prev @ W[:, j]))})"
                src = self.group(ids, f"{ids[0].split('.')[0]}.*") + [f"W{k}.*.{j}"]
            if b is not None:
                plugged += f" + {self.op(b[j])}"
                src.append(f"b{k}.{j}")
            note = ""
            if act == "noisy_relu":  # the core's z holds the training noise: z = a·W + b + ε
                noise = float(z[j]) - (float(a_prev @ W[:, j]) + (0.0 if b is None else float(b[j])))
                symbolic += f" + {_unit('ε', k, j)}"
                plugged += f" + {self.op(noise)}"
                note = (f" — ε is noisy ReLU's training noise, drawn from N(0, σ²), σ = "
                        f"{self.fn(params.get('sigma', 0.1))}")
            self.add(f"z{k}.{j}", zn, z[j], f"{symbolic} = {plugged}", src)
            self.numbers[f"z{k}.{j}"]["f"] += note
            self.add(f"a{k}.{j}", _unit("a", k, j), a[j], self.activation_formula(act, sym, params, z, j, k),
                     [f"z{k}.{i}" for i in range(n_out)] if act == "softmax" and n_out <= WIDE
                     else ([f"z{k}.*"] if act == "softmax" else [f"z{k}.{j}"]))

    def activation_formula(self, act: str, sym: str, params: Dict[str, float], z: np.ndarray, j: int,
                           k: int) -> str:
        zj = float(z[j])
        head = f"{sym}({_unit('z', k, j)}) = {pretty(FORWARD[act])}"
        alpha = params.get("alpha", 0.01 if act == "leaky_relu" else 1.0)
        if act == "identity":
            return f"{sym}({_unit('z', k, j)}) = z"
        if act in ("relu", "noisy_relu"):
            plugged = f"max(0, {self.fn(zj)})"
        elif act == "leaky_relu":
            plugged = f"{self.fn(zj)} (z > 0)" if zj > 0 else f"{self.fn(alpha)} · {self.op(zj)}"
        elif act == "sigmoid":
            plugged = f"1 / (1 + e^{self.fn(-zj)})"
        elif act == "tanh":
            plugged = f"tanh({self.fn(zj)})"
        elif act == "elu":
            plugged = f"{self.fn(zj)} (z > 0)" if zj > 0 else f"{self.fn(alpha)} · (e^{self.fn(zj)} − 1)"
        elif act == "softplus":
            plugged = f"{self.fn(zj)} (z > 20)" if zj > 20 else f"log(1 + e^{self.fn(zj)})"
        elif act == "gelu":
            u = math.sqrt(2 / math.pi) * (zj + 0.044715 * zj ** 3)
            plugged = f"0.5 · {self.op(zj)} · (1 + tanh({self.fn(u)}))"
        elif act == "softmax":
            if len(z) <= MAX_TERMS:
                den = " + ".join(f"e^{self.fn(float(v))}" for v in z)
            else:
                m = float(np.max(z))
                den = f"Σ of {len(z)} exponentials = e^{self.fn(m)} · {self.fn(float(np.exp(z - m).sum()))}"
            plugged = f"e^{self.fn(zj)} / ({den})"
        else:  # pragma: no cover - every activation of the library is above
            raise ValueError(f"no formula for activation {act!r}")
        return f"{head} = {plugged}"

    def blocks(self, k: int, key: str, sym: str, M: np.ndarray, src: Sequence[str] = ()) -> None:
        rb, cb = _bounds(M.shape[0]), _bounds(M.shape[1])
        for r in range(len(rb) - 1):
            for c in range(len(cb) - 1):
                block = M[rb[r]:rb[r + 1], cb[c]:cb[c + 1]]
                name = f"{sym}{_sub(k)}[{_span(rb[r], rb[r + 1])}, {_span(cb[c], cb[c + 1])}]"
                formula = (f"mean of {block.size} = {self.fn(float(block.mean()))} "
                           f"(min {self.fn(float(block.min()))}, max {self.fn(float(block.max()))})")
                rec_src = [s.format(r=r, c=c) for s in src]
                self.add(f"{key}{k}.{r}.{c}", name, block.mean(), formula, rec_src, show_value=False)

    def loss(self) -> None:
        t = self.trace
        yh, y = self.row(t.y_hat), self.row(t.y)
        K, L = len(yh), self.L
        for j in range(K):
            self.add(f"yh.{j}", f"ŷ{_sub(j + 1)}", yh[j], f"{_unit('a', L, j)}", [f"a{L}.{j}"])
            self.add(f"y.{j}", f"y{_sub(j + 1)}", y[j], "")
            self.numbers[f"y.{j}"]["f"] += " (the target)"
        name = t.loss_name
        symbolic = pretty(LOSS_FORMULAS[name][0])
        over = "" if K == 1 else f" / {K}"
        if name == "mse":
            terms = [f"({self.fn(a)} − {self.op(b)})²" for a, b in zip(yh, y)]
        elif name == "mae":
            terms = [f"|{self.fn(a)} − {self.op(b)}|" for a, b in zip(yh, y)]
        elif name == "huber":
            terms = [f"0.5 · {self.op(a - b)}²" if abs(a - b) < 1 else f"|{self.fn(a - b)}| − 0.5"
                     for a, b in zip(yh, y)]
        elif name == "binary_crossentropy":
            terms = [f"−[{self.fn(b)} · log({self.fn(a)}) + {self.fn(1 - b)} · log(1 − {self.fn(a)})]"
                     for a, b in zip(yh, y)]
        else:  # categorical cross-entropy: the one-hot zeros contribute nothing
            terms = [f"{self.fn(b)} · log({self.fn(a)})" for a, b in zip(yh, y) if b != 0]
            over = ""
        if len(terms) > MAX_TERMS:
            plugged = f"(Σ of {len(terms)} terms){over}"
        elif name == "categorical_crossentropy":
            plugged = f"−({' + '.join(terms)})"
        else:
            plugged = " + ".join(terms)
            plugged = f"({plugged}){over}" if over else plugged
        src = self.group([f"yh.{j}" for j in range(K)], "yh.*") + self.group([f"y.{j}" for j in range(K)], "y.*")
        self.add("L", "L", t.loss, f"{symbolic} = {plugged}", src)

    def backward(self, k: int) -> None:
        t, layer = self.trace, self.layers[k - 1]
        act, params = layer["activation"], self.params[k - 1]
        sym = SYMBOLS[act]
        W = np.asarray(layer["W"], dtype=np.float64)
        n_in, n_out = W.shape
        dA, fp, delta = self.row(layer["dL_da"]), self.row(layer["fprime"]), self.row(layer["delta"])
        a, z = self.row(layer["a"]), self.row(layer["z"])
        fused_with = FUSED_LOSSES.get(t.loss_name) if k == self.L else None
        fused = fused_with is not None and bool(np.isnan(dA).all())
        loss_words = t.loss_name.replace("_", " ").replace("crossentropy", "cross-entropy")
        yh, y = self.row(t.y_hat), self.row(t.y)
        K = len(yh)
        for j in range(n_out):
            key, name = f"dA{k}.{j}", f"dL/d{_unit('a', k, j)}"
            if fused:
                self.add(key, name, None, f"not computed: {sym} is fused with the {loss_words} loss, which gives "
                         f"δ = dL/dz directly", [], show_value=False)
            elif k == self.L:
                self.add(key, name, dA[j], self.loss_gradient(t.loss_name, yh[j], y[j], K), [f"yh.{j}", f"y.{j}"])
            else:
                self.add(key, name, dA[j], *self.passed_back(k, j))
            self.fprime(k, j, act, sym, params, z, a, fp, fused)
            self.delta(k, j, act, sym, dA, a, fp, delta, fused, fused_with, loss_words, y, K)
            if layer["db"] is not None:
                self.add(f"db{k}.{j}", f"dL/d{_unit('b', k, j)}", self.row(layer["db"])[j], f"{_unit('δ', k, j)}",
                         [f"d{k}.{j}"])
                self.numbers[f"db{k}.{j}"]["f"] += " (one sample: the sum of δ over the batch is δ itself)"
        names, ids, a_prev = self.inputs_of(k)
        dW = np.asarray(layer["dW"], dtype=np.float64)
        if n_in * n_out <= FULL_EDGES:
            for i in range(n_in):
                for j in range(n_out):
                    self.add(f"dW{k}.{i}.{j}", f"dL/d{_weight('W', k, i, j)}", dW[i, j],
                             f"{names[i]} · {_unit('δ', k, j)} = {self.op(a_prev[i])} · {self.op(delta[j])}",
                             [ids[i], f"d{k}.{j}"])
        else:
            prev = ids[0].split(".")[0]
            self.blocks(k, "dWb", "dL/dW", dW, [f"{prev}.*", f"d{k}.*"])
        if k == 1:  # dL/dx, with respect to the input as layer 1 saw it
            dx = self.row(layer["dL_da_prev"])
            dropped = layer["mask"] is not None
            for i in range(n_in):
                formula, src = self.back_sum(k, i, extra="")
                self.add(f"dA0.{i}", f"dL/d{self.input_name(1, i, dropped)}", dx[i], formula, src)

    def back_sum(self, k: int, i: int, extra: str) -> Tuple[str, List[str]]:
        """Σₘ δ_k,m · W_k[i,m]: what layer k sends back to its input i."""
        layer = self.layers[k - 1]
        W = np.asarray(layer["W"], dtype=np.float64)
        delta = self.row(layer["delta"])
        n_out = W.shape[1]
        if n_out <= MAX_TERMS:
            symbolic = " + ".join(f"{_unit('δ', k, m)}·{_weight('W', k, i, m)}" for m in range(n_out))
            plugged = " + ".join(f"{self.op(delta[m])} · {self.op(W[i, m])}" for m in range(n_out))
            src = [*(f"d{k}.{m}" for m in range(n_out)), *(f"W{k}.{i}.{m}" for m in range(n_out))]
        else:
            symbolic = f"Σₘ δ{_sub(k)},ₘ·{_weight('W', k, i, 0).replace(',1]', ',m]')}"
            total = float(self.row(layer["dL_da_prev"])[i])  # the core's δ · Wᵀ, before any dropout
            plugged = f"(Σ of {n_out} products = {self.fn(total)})"
            src = [f"d{k}.*", f"W{k}.{i}.*"]
        if extra:
            symbolic, plugged = f"({symbolic}){extra}", f"({plugged})"
        return f"{symbolic} = {plugged}", src

    def passed_back(self, k: int, j: int) -> Tuple[str, List[str]]:
        """dL/da of unit j of hidden layer k: the sum from layer k+1, through its dropout if any."""
        nxt = self.layers[k]
        if nxt["mask"] is None:
            return self.back_sum(k + 1, j, extra="")
        drop = self.drops[k] or {"scale": 1.0, "scaling": "classic"}
        mask = self.row(nxt["mask"])[j]
        base = self.input_name(k + 1, j)
        scale = " · 1/p" if drop["scaling"] == "inverted" else ""
        formula, src = self.back_sum(k + 1, j, extra=f" · m({base}){scale}")
        formula += f" · {self.fn(mask)}" + (f" · {self.fn(drop['scale'])}" if scale else "")
        return formula, src + [f"m{k + 1}.{j}"]

    def loss_gradient(self, name: str, yh: float, y: float, K: int) -> str:
        symbolic = pretty(LOSS_FORMULAS[name][1])
        d = f"{self.fn(yh)} − {self.op(y)}"
        if name == "mse":
            plugged = f"2 · ({d}) / {K}"
        elif name == "mae":
            plugged = f"sign({d}) / {K}"
        else:
            plugged = f"clip({d}, −1, 1) / {K}"
        return f"{symbolic} = {plugged}"

    def fprime(self, k: int, j: int, act: str, sym: str, params: Dict[str, float], z: np.ndarray, a: np.ndarray,
               fp: np.ndarray, fused: bool) -> None:
        key, name = f"fp{k}.{j}", f"{sym}′({_unit('z', k, j)})"
        zj, aj = float(z[j]), float(a[j])
        alpha = params.get("alpha", 0.01 if act == "leaky_relu" else 1.0)
        symbolic = pretty(DERIVATIVES[act])
        if act == "softmax":
            self.add(key, name, None, "the Jacobian diag(a) − a aᵀ, a matrix rather than one number per unit: "
                     "δ uses it whole (see δ)", [], show_value=False)
            self.numbers[key]["t"] = "Jacobian"
            return
        cmp = f" ({_unit('z', k, j)} = {self.fn(zj)} {'>' if zj > 0 else '≤'} 0)"
        show = act not in ("relu", "noisy_relu", "leaky_relu") and not (act == "elu" and zj > 0) \
            and not (act == "softplus" and zj > 20)
        if act == "identity":
            plugged = ""
        elif act in ("relu", "noisy_relu"):
            plugged = ("1" if zj > 0 else "0") + cmp
        elif act == "leaky_relu":
            plugged = ("1" if zj > 0 else self.fn(alpha)) + cmp
        elif act == "sigmoid":
            plugged = f"{self.fn(aj)} · (1 − {self.fn(aj)})"
        elif act == "tanh":
            plugged = f"1 − {self.op(aj)}²"
        elif act == "elu":
            plugged = "1" + cmp if zj > 0 else f"{self.fn(alpha)} · e^{self.fn(zj)}"
        elif act == "softplus":
            plugged = f"1 ({_unit('z', k, j)} = {self.fn(zj)} > 20)" if zj > 20 else f"σ({self.fn(zj)})"
        else:  # gelu
            c = math.sqrt(2 / math.pi)
            tt = math.tanh(c * (zj + 0.044715 * zj ** 3))
            du = c * (1 + 3 * 0.044715 * zj ** 2)
            symbolic = "0.5 (1 + t) + 0.5 z (1 − t²) u′, t = tanh(u), u′ = √(2/π)(1 + 0.134 z²)"
            plugged = (f"0.5 · (1 + {self.op(tt)}) + 0.5 · {self.op(zj)} · (1 − {self.op(tt)}²) · {self.fn(du)}")
        formula = f"{symbolic} = {plugged}" if plugged else symbolic
        src = [f"a{k}.{j}"] if act in ("sigmoid", "tanh") else [f"z{k}.{j}"]
        self.add(key, name, fp[j], formula, src, show_value=show)
        if fused:
            self.numbers[key]["f"] += " (shown for reference: the fused loss does not use it)"

    def delta(self, k: int, j: int, act: str, sym: str, dA: np.ndarray, a: np.ndarray, fp: np.ndarray,
              delta: np.ndarray, fused: bool, fused_with: Optional[str], loss_words: str, y: np.ndarray,
              K: int) -> None:
        key, name = f"d{k}.{j}", _unit("δ", k, j)
        an = _unit("a", k, j)
        if fused and fused_with == "sigmoid":
            formula = (f"dL/d{_unit('z', k, j)} = (σ(z) − y) / N = ({self.fn(a[j])} − {self.op(y[j])}) / {K}")
            src = [f"a{k}.{j}", f"y.{j}"]
        elif fused:
            formula = f"dL/d{_unit('z', k, j)} = softmax(z)ⱼ − yⱼ = {self.fn(a[j])} − {self.op(y[j])}"
            src = [f"a{k}.{j}", f"y.{j}"]
        elif act == "softmax":
            s = float(a @ dA)
            n = len(a)
            formula = (f"{an} · (dL/d{an} − Σₖ a{_sub(k)},ₖ · dL/da{_sub(k)},ₖ) = "
                       f"{self.op(a[j])} · ({self.fn(dA[j])} − {self.op(s)})")
            src = ([f"a{k}.{m}" for m in range(n)] + [f"dA{k}.{m}" for m in range(n)]) if n <= WIDE \
                else [f"a{k}.*", f"dA{k}.*"]
        else:
            formula = f"dL/d{an} · {sym}′({_unit('z', k, j)}) = {self.op(dA[j])} · {self.op(fp[j])}"
            src = [f"dA{k}.{j}", f"fp{k}.{j}"]
        self.add(key, name, delta[j], formula, src)
        if fused:
            self.numbers[key]["f"] += (f" — {sym} fused with the {loss_words} loss: dL/da and {sym}′(z) are not "
                                       "multiplied separately")
        elif act == "softmax":
            self.numbers[key]["f"] += " — softmax's Jacobian: δ = a ⊙ (dL/da − Σ a·dL/da)"

    def update(self, k: int) -> None:
        layer, lr = self.layers[k - 1], self.trace.lr
        W, dW = np.asarray(layer["W"], dtype=np.float64), np.asarray(layer["dW"], dtype=np.float64)
        W_new = np.asarray(layer["W_new"], dtype=np.float64)
        n_in, n_out = W.shape
        eta = self.fn(lr)
        if n_in * n_out <= FULL_EDGES:
            for i in range(n_in):
                for j in range(n_out):
                    w = _weight("W", k, i, j)
                    self.add(f"Wn{k}.{i}.{j}", _weight("W′", k, i, j), W_new[i, j],
                             f"{w} − η · dL/d{w} = {self.op(W[i, j])} − {eta} · {self.op(dW[i, j])}",
                             [f"W{k}.{i}.{j}", f"dW{k}.{i}.{j}"])
        else:
            self.blocks(k, "Wnb", "W′", W_new, ["Wb" + str(k) + ".{r}.{c}", "dWb" + str(k) + ".{r}.{c}"])
        if layer["b"] is not None:
            b, db, b_new = self.row(layer["b"]), self.row(layer["db"]), self.row(layer["b_new"])
            for j in range(n_out):
                bn = _unit("b", k, j)
                self.add(f"bn{k}.{j}", _unit("b′", k, j), b_new[j],
                         f"{bn} − η · dL/d{bn} = {self.op(b[j])} − {eta} · {self.op(db[j])}", [f"b{k}.{j}", f"db{k}.{j}"])


def _bounds(n: int) -> List[int]:
    """Boundaries of at most BLOCKS nearly equal groups of n rows (or columns)."""
    parts = min(n, BLOCKS)
    return [int(round(i * n / parts)) for i in range(parts + 1)]


def _matrix(M: Any, full: bool) -> Any:
    """A matrix for ``PBNet``: nested lists, or its block means with the block boundaries."""
    A = np.asarray(M, dtype=np.float64)
    if full:
        return [[v if math.isfinite(v) else None for v in row] for row in A.tolist()]  # JSON: no inf, no NaN
    rb, cb = _bounds(A.shape[0]), _bounds(A.shape[1])
    means = [[_value(A[rb[r]:rb[r + 1], cb[c]:cb[c + 1]].mean(), False) for c in range(len(cb) - 1)]
             for r in range(len(rb) - 1)]
    return {"shape": list(A.shape), "rows": rb, "cols": cb, "values": means}


def _architecture(trace: "Trace") -> str:
    """``4 → 5 tanh → batchnorm → dropout p=0.6 → 3 softmax``."""
    parts = [str(np.asarray(trace.x).shape[1])]
    for layer, drop in zip(trace.layers, trace.dropouts):
        if layer.get("norm"):
            parts.append("batchnorm" if layer["norm"]["kind"] == "batch" else "layernorm")
        if layer["mask"] is not None:
            p = (drop or {}).get("keep_prob")
            parts.append("dropout" + ("" if p is None else f" p={p:g}"))
        parts.append(f"{layer['units']} {layer['activation']}")
    return " → ".join(parts)


def trace_payload(trace: "Trace") -> Dict[str, Any]:
    """Every number of a trace with its formula, the ids it came from and the drawing's data.

    Parameters
    ----------
    trace : pybackprop.explain.Trace
        From ``model.explain(x, y)``.

    Returns
    -------
    dict
        JSON-able: ``numbers`` (id -> ``{"n", "v", "t", "f", "src"}``, see the
        module docstring), ``net`` (the drawing's data for ``PBNet.render``:
        ``sizes``, ``activations``, ``W``, ``b``, ``dropout``), ``edges``
        (``dW`` and ``W_new`` in ``W``'s shapes), ``layers`` (per layer:
        ``units``, ``activation``, ``symbol``, ``bias``, ``fused``, ``full``,
        ``dropout``), ``phases``, ``title``, ``arch``, ``loss``, ``lr``,
        ``dtype``, ``L`` and ``limits``.

    Examples
    --------
    >>> import pybackprop as bp
    >>> m = bp.Sequential([bp.Dense(2, activation="sigmoid", init=[[0.5, -1.0]], use_bias=False),
    ...                    bp.Dense(1, use_bias=False, init=[[1.0], [2.0]])], input_dim=1, dtype="float64")
    >>> m.compile(loss="mse")
    >>> p = trace_payload(m.explain([1.0], [0.0], lr=0.1))
    >>> p["phases"]
    ['forward-1', 'forward-2', 'loss', 'backward-2', 'backward-1', 'update']
    >>> p["numbers"]["d1.0"]["f"]
    'δ₁,₁ = dL/da₁,₁ · σ′(z₁,₁) = 2.321 · 0.2350 = 0.5454'
    >>> p["numbers"]["d1.0"]["src"]
    ['dA1.0', 'fp1.0']
    """
    b = _Builder(trace)
    b.build()
    layers = trace.layers
    L = len(layers)
    full = [int(np.asarray(layer["W"]).size) <= FULL_EDGES for layer in layers]
    sizes = [int(np.asarray(trace.x).shape[1])] + [int(layer["units"]) for layer in layers]
    dropout: List[Optional[Dict[str, Any]]] = []
    for layer, known in zip(layers, b.drops):
        if layer["mask"] is None:
            dropout.append(None)
        else:
            drop = known or {}
            dropout.append({"keep_prob": drop.get("keep_prob"), "scaling": drop.get("scaling"),
                            "scale": drop.get("scale"), "mask": [int(v) for v in b.row(layer["mask"])]})
    fused = FUSED_LOSSES.get(trace.loss_name)
    dtype = "float32" if b.float32 else "float64"
    arch = _architecture(trace)
    norms = [None if not layer.get("norm") else
             ("BatchNorm" if layer["norm"]["kind"] == "batch" else "LayerNorm") for layer in layers]
    rows = int(np.asarray(trace.x).shape[0])
    notice = None
    if any(norms) or rows > 1:  # the picture draws Dense layers of one sample; the rest is in print(trace)
        notice = ("This picture shows the Dense layers only" + (", with the values of the first sample of the batch (dW "
                                                                "and the update are the batch's)" if rows > 1 else "")
                  + (": a BatchNorm/LayerNorm's input is shown as the normalised values it passes on; its μ, σ², "
                     "x̂, γ, β and its part of the chain rule are in the text walk-through (print(trace))."
                     if any(norms) else "."))
    return {
        "format": "pybackprop.step/1",
        "title": f"{arch} · loss {trace.loss_name} · SGD lr {trace.lr:g}",
        "arch": arch, "loss": trace.loss_name, "lr": float(trace.lr), "dtype": dtype,
        "L": _value(trace.loss, False),  # the core sums the loss in double, whatever the dtype
        "net": {"sizes": sizes, "activations": [layer["activation"] for layer in layers],
                "W": [_matrix(layer["W"], f) for layer, f in zip(layers, full)],
                "b": [None if layer["b"] is None else [_value(v, b.float32) for v in b.row(layer["b"])]
                      for layer in layers],
                "dropout": dropout},
        "edges": {"dW": [_matrix(layer["dW"], f) for layer, f in zip(layers, full)],
                  "W_new": [_matrix(layer["W_new"], f) for layer, f in zip(layers, full)]},
        "layers": [{"units": int(layer["units"]), "activation": layer["activation"],
                    "symbol": SYMBOLS[layer["activation"]], "params": b.params[k],
                    "bias": layer["b"] is not None, "full": f, "dropout": d,
                    "fused": fused is not None and k == L - 1, "norm": norms[k]}
                   for k, (layer, f, d) in enumerate(zip(layers, full, dropout))],
        "notice": notice,
        "phases": [f"forward-{k}" for k in range(1, L + 1)] + ["loss"]
        + [f"backward-{k}" for k in range(L, 0, -1)] + ["update"],
        "numbers": b.numbers,
        "limits": {"wide": WIDE, "full_edges": FULL_EDGES, "blocks": BLOCKS, "max_terms": MAX_TERMS},
    }


def asset_text(name: str) -> str:
    """The text of a shipped asset of ``pybackprop/visual/assets`` (e.g. ``"network.js"``).

    Examples
    --------
    >>> "PBNet" in asset_text("network.js")
    True
    """
    return resources.files(__package__).joinpath("assets").joinpath(name).read_text(encoding="utf-8")


def _json_script(text: str) -> str:
    """JSON safe inside a ``<script>`` element (``</`` written ``<\\/``, which JSON reads as ``</``)."""
    return text.replace("</", "<\\/").replace("<!--", "<\\u0021--")


def _js(name: str) -> str:
    """A script asset, checked to be safe inside a ``<script>`` element."""
    text = asset_text(name)
    if "</script" in text.lower() or "<!--" in text:
        raise ValueError(f"{name} must not contain '</script' or '<!--'")  # pragma: no cover
    return text


def trace_html(trace: "Trace", title: Optional[str] = None) -> str:
    """One self-contained HTML document that draws the step (no network access needed).

    Parameters
    ----------
    trace : pybackprop.explain.Trace
    title : str, optional
        The page's heading (default "One step of backpropagation").

    Returns
    -------
    str
        The document: the payload of :func:`trace_payload` as JSON, the CSS
        and the scripts inlined. Open it in a browser; the URL hash
        (``#forward-2``, ``#loss``, ``#backward-1``, ``#update``) selects the
        phase.

    Examples
    --------
    >>> import pybackprop as bp
    >>> m = bp.Sequential([bp.Dense(1, use_bias=False, init=[[2.0]])], input_dim=1); m.compile(loss="mse")
    >>> page = trace_html(m.explain([1.0], [0.0]))
    >>> page.startswith("<!DOCTYPE html>"), "PBNet.render" in page, "https://" in page
    (True, True, False)
    """
    payload = trace_payload(trace)
    heading = html.escape(title or "One step of backpropagation")
    notice = "" if not payload.get("notice") else f'\n<p class="pb-note">{html.escape(payload["notice"])}</p>'
    data = _json_script(json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False))
    strips = (" A strip or heat map is one Tab stop: inside it ↑ ↓ move from cell to cell, Shift + ← → across."
              if max(payload["net"]["sizes"]) > WIDE or not all(layer["full"] for layer in payload["layers"]) else "")
    meta = (f"loss <b>{html.escape(payload['loss'])}</b> · SGD, learning rate η = <b>{payload['lr']:g}</b> · "
            f"{payload['dtype']} · L = <b>{html.escape(format_number(trace.loss))}</b>")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="pybackprop">
<title>{heading}: {html.escape(payload['arch'])}</title>
<style>
{asset_text("pybackprop.css")}
</style>
</head>
<body>
<main class="pb-page pb-step" id="pb-root">
<header class="pb-head">
<h1>{heading}</h1>
<p class="pb-arch">{html.escape(payload['arch'])}</p>{notice}
<p class="pb-meta">{meta}</p>
</header>
<nav class="pb-phases" id="pb-phases" aria-label="phases of the step"></nav>
<p class="pb-explain" id="pb-explain" aria-live="polite"></p>
<div class="pb-stage"><svg class="pb-net" id="pb-svg" role="group" aria-label="the network"></svg></div>
<footer class="pb-foot"><div class="pb-legend" id="pb-legend"></div>
<p class="pb-hint">Hover or focus (Tab) any number to see its formula and where it came from;
← → (or the buttons) step through the phases; the address bar keeps the phase, so a link opens there.{strips}</p></footer>
<div class="pb-tip" id="pb-tip" role="tooltip" hidden></div>
<noscript><p>This page needs JavaScript to draw the network; <code>print(trace)</code> gives the same numbers as text.</p></noscript>
</main>
<script type="application/json" id="pb-data">{data}</script>
<script>
{_js("network.js")}
</script>
<script>
{_js("step.js")}
</script>
</body>
</html>
"""


def trace_iframe(trace: "Trace", height: int = 900) -> str:
    """The page of :func:`trace_html` in an ``<iframe srcdoc>``, for a notebook cell.

    The iframe keeps the page's CSS and script out of the notebook (and the
    notebook's out of the page); it is sandboxed to scripts only.

    Examples
    --------
    >>> import pybackprop as bp
    >>> m = bp.Sequential([bp.Dense(1, use_bias=False, init=[[2.0]])], input_dim=1); m.compile(loss="mse")
    >>> trace_iframe(m.explain([1.0], [0.0])).startswith("<iframe")
    True
    """
    doc = html.escape(trace_html(trace), quote=True)
    return (f'<iframe class="pybackprop-step" title="one step of backpropagation" sandbox="allow-scripts" '
            f'style="width: 100%; height: {int(height)}px; border: 1px solid #ddd; border-radius: 6px" '
            f'srcdoc="{doc}"></iframe>')
