"""Every formula of the step picture, evaluated: the operands it plugs in give its value.

Each record of ``trace_payload(trace)["numbers"]`` states its formula with the
operands' shown values, e.g. ``δ₂,₁ = dL/da₂,₁ · σ′(z₂,₁) = 0.0472 · 0.2490 =
0.01175``. Here that plugged expression is turned into Python, evaluated, and
compared with the record's value within the error that the operands' rounding to
4 significant digits allows (propagated to first order, operand by operand), so
a formula with a wrong sign, a missing term or a wrong operand fails. The shown
operands are also checked to be the shown values of the numbers the record
names as its sources. Every activation as hidden and output layer, every loss,
dropout (inverted and classic), with and without biases, float64 and float32.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest
from conftest import ACTIVATIONS, HIDDEN_ACTIVATIONS, LOSSES

import pybackprop as bp
from pybackprop.visual import trace_payload

#: a shown number: 4 significant digits, a true minus sign, an exponent after "e"
NUMBER = re.compile(r"(?<![A-Za-z0-9_.\[])−?\d+(?:\.\d+)?(?:e−?\d+)?(?![A-Za-z0-9_.\]])")
#: the words after a formula (a note, or the comparison that picks a branch)
NOTE = re.compile(r" — .*$| \((?:kept|dropped|inverted|classic|one sample|shown|the |[^()]*[>≤])[^()]*\)")
#: a named quantity (x₁, W₂[1,3], δ₂,₁, ŷ, z): a part of a formula that is not plugged in
SYMBOL = re.compile(r"[a-zA-Zα-ωŷ′̃]+[₀-₉]|[a-zA-Zα-ω]\w*\[|\bz\b|\ba\b|ŷ|\by\b|\bd\b|\bt\b|\bu\b|Σ|\bN\b|\bz_")
FUNCTIONS = {"exp": math.exp, "log": math.log, "tanh": math.tanh, "max": max, "abs": abs,
             "sig": lambda v: 1 / (1 + math.exp(-v)), "sign": lambda v: float(np.sign(v)),
             "clip": lambda v, lo, hi: min(max(v, lo), hi)}
#: records whose formula names the number it copies, with no operand to plug in
COPIES = {"db": "d", "yh": "a"}


def number(text: str) -> float:
    return float(text.replace("−", "-"))


def rounding(text: str) -> float:
    """Half a unit of the 4th significant digit of a shown number (0 for a whole one)."""
    v = number(text)
    if v == 0 or ("." not in text and "e" not in text):
        return 0.0
    return 0.5 * 10 ** (math.floor(math.log10(abs(v))) - 3)


def plugged(rec: dict) -> Optional[str]:
    """The expression with the operands plugged in, or None for a record without one."""
    text = NOTE.sub("", rec["f"])
    text = re.sub(r"\(Σ of \d+ products = ([^()]+)\)", r"(\1)", text)
    text = re.sub(r"Σ of \d+ exponentials = ", "", text)
    if "Σ of" in text or text.startswith("m(") or rec["v"] is None:
        return None
    parts = [p for p in text.split(" = ")[1:] if NUMBER.search(p) and not SYMBOL.search(p)]
    if len(parts) >= 2 and parts[-1] == rec["t"]:
        parts.pop()  # "... = plugged = shown": the plugged expression is the one before
    if not parts or parts[-1] == rec["t"]:
        return None  # the value alone: nothing plugged in
    return parts[-1]


def python(expr: str) -> Tuple[str, List[str]]:
    """The expression as Python with its numbers as x[0], x[1], ... and those numbers' texts."""
    texts: List[str] = []

    def var(m: re.Match) -> str:
        texts.append(m.group(0))
        return f"x[{len(texts) - 1}]"

    e = expr.replace("−[", "−(").replace("[", "(").replace("]", ")")
    e = NUMBER.sub(var, e)
    e = e.replace("−", "-").replace("·", "*").replace("²", "**2").replace("σ(", "sig(")
    e = re.sub(r"e\^(-?x\[\d+\])", r"exp(\1)", e)
    e = re.sub(r"\|([^|]*)\|", r"abs(\1)", e)
    assert re.fullmatch(r"[\w\s*+\-/(),\[\].]*", e), (expr, e)
    return e, texts


def evaluate(expr: str) -> Tuple[float, float]:
    """The expression's value and the error its operands' rounding allows."""
    code, texts = python(expr)
    x = [number(t) for t in texts]

    def f(values: List[float]) -> float:
        return float(eval(code, {"__builtins__": {}}, {**FUNCTIONS, "x": values}))  # noqa: S307

    value = f(x)
    error = 0.0
    for i, t in enumerate(texts):
        h = rounding(t)
        if h:
            up, down = list(x), list(x)
            up[i] += h
            down[i] -= h
            error += max(abs(f(up) - value), abs(f(down) - value))
    return value, error


def check_branch(key: str, rec: dict, numbers: Dict[str, dict]) -> bool:
    """A branch picked by a comparison, ``(z₁,₂ = −0.31 ≤ 0)``: the comparison holds for that z."""
    m = re.search(r"\((z[₀-₉]+,[₀-₉]+) = (" + NUMBER.pattern + r") ([>≤]) (\d+)\)", rec["f"])
    if not m:
        return False
    z, op, bound = number(m.group(2)), m.group(3), float(m.group(4))
    assert (z > bound) == (op == ">"), (key, rec["f"])
    assert m.group(2) == numbers[rec["src"][0]]["t"], (key, rec["f"])
    return True


def check_numbers(numbers: Dict[str, dict], float32: bool) -> Counter:
    """Evaluate every record's formula; return how many of each kind (z, a, fp, ...) were checked."""
    evaluated: Counter = Counter()
    for key, rec in numbers.items():
        kind = re.match(r"[a-zA-Z]+", key).group(0)
        if kind in COPIES and rec["src"]:
            assert rec["v"] == numbers[rec["src"][0]]["v"], (key, rec["f"])
            continue
        if check_branch(key, rec, numbers):
            evaluated[kind] += 1
        expr = plugged(rec)
        if expr is None:
            continue
        got, error = evaluate(expr)
        slack = 1e-12 + (3e-6 if float32 else 1e-12) * max(1.0, abs(got))
        assert abs(got - rec["v"]) <= 1.05 * error + slack, (key, rec["f"], got, rec["v"], error)
        shown = [t for t in NUMBER.findall(NOTE.sub("", rec["f"]))]
        for src in rec["src"] if key != "L" else ():  # L plugs in ŷ − y, or only the terms with y ≠ 0
            if "*" in src or numbers[src]["v"] is None or numbers[src]["t"] == "—":
                continue
            if (kind == "d" and "Jacobian" in rec["f"]) or "Σ of" in rec["f"]:
                continue  # a sum written as its total (softmax's δ: Σ aₖ·dL/daₖ)
            text = numbers[src]["t"]
            assert text in shown or f"−{text}" in shown or text.lstrip("−") in shown, (key, src, rec["f"])
        evaluated[kind] += 1
    return evaluated


def build(hidden: str, out: str, loss: str, drop: Optional[str], bias: bool, dtype: str = "float64",
          units: int = 3, seed: int = 3, outputs: Optional[int] = None):
    layers = [bp.Dense(units, activation=hidden, use_bias=bias)]
    if drop:
        layers = [bp.Dropout(keep_prob=0.8, scaling=drop), *layers, bp.Dropout(keep_prob=0.5, scaling=drop)]
    k = outputs or (3 if out == "softmax" else 2)
    layers.append(bp.Dense(k, activation=out, use_bias=bias))
    m = bp.Sequential(layers, input_dim=4, dtype=dtype, seed=seed)
    m.compile(loss=loss, optimizer=bp.SGD(lr=0.2))
    if bias:  # biases of both signs, so that "+ b" is an operand that counts
        for dense, b in zip([d for d in m.layers if isinstance(d, bp.Dense)], ([0.1, -0.2, 0.3], [-0.1, 0.2, 0.05])):
            dense.b[:] = np.resize(b, dense.units)
    if loss == "categorical_crossentropy":
        y = np.array([1])
    elif loss == "binary_crossentropy":
        y = [1.0, 0.0]
    else:
        y = ([0.3, -0.2, 0.1] * k)[:k] if out != "softmax" else np.eye(k)[1] * 0.8 + 0.2 / k
    return m.explain([0.9, -0.4, 1.3, 0.2], y)


def fused_output(loss: str) -> Optional[str]:
    return {"binary_crossentropy": "sigmoid", "categorical_crossentropy": "softmax"}.get(loss)


CASES = [(h, fused_output(loss) or {"relu": "softmax", "tanh": "sigmoid"}.get(h, h), loss, drop, bias, dtype)
         for h in HIDDEN_ACTIVATIONS for loss in LOSSES for drop in (None, "inverted", "classic")
         for bias in (True, False) for dtype in ("float64", "float32") if not (dtype == "float32" and drop == "classic")]
CASES += [("tanh", out, loss, None, True, dtype) for out in ACTIVATIONS for loss in ("mse", "mae", "huber")
          for dtype in ("float64", "float32")]


@pytest.mark.parametrize("hidden, out, loss, drop, bias, dtype", CASES,
                         ids=["-".join(str(v) for v in case) for case in CASES])
def test_every_formula_evaluates_to_its_value(hidden, out, loss, drop, bias, dtype):
    t = build(hidden, out, loss, drop, bias, dtype)
    numbers = trace_payload(t)["numbers"]
    checked = check_numbers(numbers, dtype == "float32")
    want = {"z", "dA", "d", "dW", "Wn", "L"} | ({"bn"} if bias else set()) | ({"ad"} if drop else set())
    want |= {"a"} if hidden != "identity" or out != "identity" else set()
    want |= {"fp"} if hidden != "identity" or out not in ("identity", "softmax") else set()
    assert want <= set(checked), (want - set(checked), checked)
    n_h, n_out = 3, t.layers[-1]["units"]
    assert checked["dW"] == checked["Wn"] == 4 * n_h + n_h * n_out  # every weight
    assert checked["z"] == checked["d"] == n_h + n_out  # every unit


@pytest.mark.parametrize("hidden", ["tanh", "noisy_relu", "softplus"])
def test_long_sums_are_written_with_their_totals(hidden):
    """More than MAX_TERMS products: the total stands for them; softmax of 10 units: e^max · Σ."""
    t = build(hidden, "softmax", "mse", "inverted", True, units=12, outputs=10)
    numbers = trace_payload(t)["numbers"]
    assert "Σ of 12 products" in numbers["z2.0"]["f"] and "Σ of 10 exponentials" in numbers["a2.0"]["f"]
    assert "Σ of 10 products" in numbers["dA1.0"]["f"]
    checked = check_numbers(numbers, False)
    assert checked["z"] == checked["d"] == checked["a"] == 12 + 10 and checked["dA"] == 4 + 12 + 10


def test_the_evaluator_catches_a_wrong_formula():
    """The check itself can fail: a sign flipped, an operand off by a digit, a term missing."""
    t = build("tanh", "sigmoid", "mse", None, True)
    numbers = trace_payload(t)["numbers"]
    def plugged_part(f: str, change) -> str:
        """The formula with its plugged-in expression (before "= value") changed."""
        head, expr, shown = f.rsplit(" = ", 2)
        return " = ".join([head, change(expr), shown])

    for key, change in (("d1.0", lambda e: "(−1) · " + e),  # a sign flipped
                        ("z2.1", lambda e: e.rsplit(" + ", 1)[0]),  # the bias left out
                        ("dA2.0", lambda e: e.replace("2 · (", "(", 1)),  # mse's factor 2 left out
                        ("fp1.1", lambda e: e.replace("1 − ", "", 1)),  # tanh′ = a² instead of 1 − a²
                        ("Wn2.0.1", lambda e: e.replace(" − ", " + ", 1))):  # the update's sign
        broken = {k: dict(v) for k, v in numbers.items()}
        broken[key]["f"] = plugged_part(broken[key]["f"], change)
        assert broken[key]["f"] != numbers[key]["f"], key
        with pytest.raises(AssertionError):
            check_numbers(broken, False)


def test_noisy_relu_states_its_noise():
    """noisy_relu's z holds its training noise: the formula adds it, so the sum still gives z."""
    t = build("noisy_relu", "noisy_relu", "mse", None, True)
    numbers = trace_payload(t)["numbers"]
    layer = t.layers[0]
    clean = (layer["a_prev"] @ layer["W"] + layer["b"]).ravel()
    noise = layer["z"].ravel() - clean
    assert np.abs(noise).max() > 1e-6  # the core did add noise
    for j in range(3):
        assert "ε₁," in numbers[f"z1.{j}"]["f"] and "σ = 0.1" in numbers[f"z1.{j}"]["f"]
    check_numbers(numbers, False)
