"""The step picture (pybackprop.visual): the numbers embedded in the page are the trace's,
every formula's plugged-in operands give its value, every activation/loss/dropout/bias
combination renders, wide networks stay small and fast, the page needs no network."""
from __future__ import annotations

import html
import json
import math
import re
import time
import warnings

import numpy as np
import pytest
from conftest import ACTIVATIONS, HIDDEN_ACTIVATIONS, LOSSES

import pybackprop as bp
from pybackprop import cli
from pybackprop.visual import format_number, trace_html, trace_payload
from pybackprop.visual import step as visual_step

DATA = re.compile(r'<script type="application/json" id="pb-data">(.*?)</script>', re.DOTALL)


def embedded(page: str) -> dict:
    """The payload as the page's script reads it."""
    m = DATA.search(page)
    assert m, "no payload in the page"
    return json.loads(m.group(1))


def textbook(seed=4, dtype="float64"):
    m = bp.Sequential([bp.Dense(4, activation="relu", use_bias=False, init="he_normal"),
                       bp.Dense(4, activation="sigmoid", use_bias=False),
                       bp.Dense(1, activation="identity", use_bias=False)], input_dim=3, dtype=dtype, seed=seed)
    m.compile(loss="mse", optimizer=bp.SGD(lr=0.1))
    return m.explain([1.0, 2.0, 3.0], [0.5], lr=0.1)


def dropped(scaling="inverted", dtype="float64"):
    m = bp.Sequential([bp.Dropout(keep_prob=0.7), bp.Dense(5, activation="tanh"),
                       bp.Dropout(keep_prob=0.6, scaling=scaling), bp.Dense(3, activation="softmax")],
                      input_dim=4, dtype=dtype, seed=2)
    m.compile(loss="categorical_crossentropy", optimizer=bp.SGD(lr=0.3))
    return m.explain([0.5, -1.0, 2.0, 0.1], np.array([2]))


def wide():
    m = bp.Sequential([bp.Dense(256, activation="relu"), bp.Dense(10, activation="softmax")], input_dim=784, seed=0)
    m.compile(loss="categorical_crossentropy")
    return m.explain(np.random.default_rng(0).random(784), np.array([3]))


def value(rec):
    return np.nan if rec["v"] is None else rec["v"]


def assert_payload_equals_trace(p: dict, t) -> None:
    n = p["numbers"]
    f32 = p["dtype"] == "float32"

    def same(key, want):
        got = value(n[key])
        want = float(want)
        if math.isnan(want):
            assert got is np.nan or math.isnan(got), key
        elif f32:
            assert np.float32(got) == np.float32(want), (key, got, want)
        else:
            assert got == want, (key, got, want)

    for i, v in enumerate(np.ravel(t.x)):
        same(f"a0.{i}", v)
    for j, (yh, y) in enumerate(zip(np.ravel(t.y_hat), np.ravel(t.y))):
        same(f"yh.{j}", yh)
        same(f"y.{j}", y)
    same("L", t.loss)
    for k, layer in enumerate(t.layers, start=1):
        for key, arr in (("z", "z"), ("a", "a"), ("dA", "dL_da"), ("fp", "fprime"), ("d", "delta"), ("b", "b"),
                         ("db", "db"), ("bn", "b_new")):
            if layer[arr] is None:
                assert f"{key}{k}.0" not in n
                continue
            for j, v in enumerate(np.ravel(layer[arr])):
                same(f"{key}{k}.{j}", v)
        if layer["mask"] is not None:
            for i, (mv, av) in enumerate(zip(np.ravel(layer["mask"]), np.ravel(layer["a_prev"]))):
                same(f"m{k}.{i}", mv)
                same(f"ad{k}.{i}", av)
        if k == 1:
            for i, v in enumerate(np.ravel(layer["dL_da_prev"])):
                same(f"dA0.{i}", v)
        W, dW, Wn = layer["W"], layer["dW"], layer["W_new"]
        if W.size <= visual_step.FULL_EDGES:
            for (i, j), v in np.ndenumerate(W):
                same(f"W{k}.{i}.{j}", v)
                same(f"dW{k}.{i}.{j}", dW[i, j])
                same(f"Wn{k}.{i}.{j}", Wn[i, j])
            assert p["net"]["W"][k - 1] == np.asarray(W, dtype=np.float64).tolist() or f32
        else:
            assert f"W{k}.0.0" not in n
            M = p["net"]["W"][k - 1]
            rb, cb = M["rows"], M["cols"]
            for r in range(len(rb) - 1):
                for c in range(len(cb) - 1):
                    mean = float(np.asarray(W, dtype=np.float64)[rb[r]:rb[r + 1], cb[c]:cb[c + 1]].mean())
                    assert n[f"Wb{k}.{r}.{c}"]["v"] == pytest.approx(mean, rel=1e-6, abs=1e-9)
                    assert M["values"][r][c] == pytest.approx(mean, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("make", [textbook, dropped, lambda: dropped("classic", "float32"),
                                  lambda: textbook(dtype="float32")], ids=["textbook", "dropout", "classic-f32", "f32"])
def test_numbers_in_the_page_equal_the_trace(make):
    t = make()
    page = trace_html(t)
    p = embedded(page)
    assert p == json.loads(json.dumps(trace_payload(t)))  # the page embeds exactly the payload
    assert_payload_equals_trace(p, t)


def test_one_node_per_unit_and_one_edge_per_weight():
    t = textbook()
    p = trace_payload(t)
    assert p["net"]["sizes"] == [3, 4, 4, 1]
    n = p["numbers"]
    units = [k for k in n if re.fullmatch(r"a\d+\.\d+", k)]
    assert len(units) == 3 + 4 + 4 + 1
    for prefix in ("W", "dW", "Wn"):
        edges = [k for k in n if re.fullmatch(prefix + r"\d+\.\d+\.\d+", k)]
        assert len(edges) == 3 * 4 + 4 * 4 + 4 * 1, prefix
    for k, (W, shape) in enumerate(zip(p["net"]["W"], [(3, 4), (4, 4), (4, 1)])):
        assert np.asarray(W).shape == shape
        assert np.asarray(p["edges"]["dW"][k]).shape == shape
    assert p["phases"] == ["forward-1", "forward-2", "forward-3", "loss", "backward-3", "backward-2", "backward-1",
                           "update"]
    assert p["title"] == "3 → 4 relu → 4 sigmoid → 1 identity · loss mse · SGD lr 0.1"


def test_formula_of_the_issue():
    """The issue's example shape: δ₂,₁ = dL/da₂,₁ · σ'(z₂,₁) = 0.0472 · 0.2490 = 0.01175 (with this trace's values)."""
    t = textbook()
    f = trace_payload(t)["numbers"]["d2.0"]["f"]
    layer = t.layers[1]
    want = (f"δ₂,₁ = dL/da₂,₁ · σ′(z₂,₁) = {format_number(layer['dL_da'][0, 0])} · "
            f"{format_number(layer['fprime'][0, 0])} = {format_number(layer['delta'][0, 0])}")
    assert f == want


# ---------------------------------------------------------------------- formulas evaluate to their values
_NUM = r"[−-]?\d+(?:\.\d+)?(?:e[−-]?\d+)?"


def plugged(formula: str) -> str:
    """The expression with the numbers plugged in: the part before '= value' (notes stripped)."""
    body = formula.split(" (")[0] if formula.count(" = ") < 2 else formula
    body = re.split(r" — | \((?:one sample|shown|inverted|classic|kept|dropped|the )", body)[0]
    parts = body.split(" = ")
    return parts[-2]


def evaluate(expr: str) -> float:
    e = re.sub(r"\s*\([^()]*[>≤][^()]*\)", "", expr)  # a comment such as (z > 0)
    e = e.replace("−", "-").replace("·", "*").replace("²", "**2")
    e = re.sub(r"e\^(\(?-?[\d.e-]+\)?)", r"exp(\1)", e)
    assert re.fullmatch(r"[\d.e\s*+\-/()a-z]*", e), e
    return float(eval(e, {"__builtins__": {}}, {"exp": math.exp, "log": math.log, "tanh": math.tanh,  # noqa: S307
                                               "max": max, "sign": np.sign, "clip": np.clip}))


def check_delta(rec, kind: str) -> None:
    expr = plugged(rec["f"])
    got, want = evaluate(expr), rec["v"]
    nums = [abs(float(x.replace("−", "-"))) for x in re.findall(_NUM, expr)]
    if kind == "product":
        a, b = [float(x.replace("−", "-")) for x in re.findall(_NUM, expr)]
        assert got == pytest.approx(want, rel=1.2e-3, abs=1e-12), (rec["f"], got, want)
        assert a * b == got
    else:
        assert got == pytest.approx(want, rel=2e-3, abs=2e-3 * max(nums + [1.0]) ** 2), (rec["f"], got, want)


def combos():
    out = []
    for act in HIDDEN_ACTIVATIONS:
        for loss in LOSSES:
            for drop in (None, "inverted", "classic"):
                for bias in (True, False):
                    out.append((act, loss, drop, bias))
    return out


def output_activation(loss: str, act: str) -> str:
    if loss == "binary_crossentropy":
        return "sigmoid"
    if loss == "categorical_crossentropy":
        return "softmax"
    return {"relu": "softmax", "tanh": "sigmoid"}.get(act, "tanh" if act == "gelu" else act)


def build(act, loss, drop, bias, out_act=None, seed=3):
    out_act = out_act or output_activation(loss, act)
    layers = [bp.Dense(3, activation=act, use_bias=bias)]
    if drop:
        layers.append(bp.Dropout(keep_prob=0.5, scaling=drop))
    layers.append(bp.Dense(3 if out_act == "softmax" or loss == "categorical_crossentropy" else 2,
                           activation=out_act, use_bias=bias))
    if drop:
        layers.insert(0, bp.Dropout(keep_prob=0.8, scaling=drop))
    m = bp.Sequential(layers, input_dim=4, dtype="float64", seed=seed)
    m.compile(loss=loss, optimizer=bp.SGD(lr=0.2))
    y = np.array([1]) if loss == "categorical_crossentropy" else (
        [1.0, 0.0] if loss == "binary_crossentropy" else ([0.3, -0.2, 0.1] if out_act == "softmax" else [0.3, -0.2]))
    return m.explain([0.9, -0.4, 1.3, 0.2], y)


@pytest.mark.parametrize("act, loss, drop, bias", combos(), ids=[f"{a}-{l}-{d}-{'b' if b else 'nob'}"
                                                                 for a, l, d, b in combos()])
def test_every_activation_loss_dropout_bias_renders(act, loss, drop, bias):
    t = build(act, loss, drop, bias)
    page = trace_html(t)
    p = embedded(page)
    assert_payload_equals_trace(p, t)
    n = p["numbers"]
    for key, rec in n.items():
        assert rec["f"].startswith(rec["n"]), key
        assert rec["v"] is None or math.isfinite(rec["v"]), key
        assert rec["t"] == format_number(rec["v"]) or (rec["v"] is None and rec["t"] == "Jacobian"), key
        for src in rec["src"]:
            assert src in n or "*" in src, (key, src)
    L = len(t.layers)
    out = t.layers[-1]
    fused = loss in ("binary_crossentropy", "categorical_crossentropy")
    for j in range(out["units"]):
        d = n[f"d{L}.{j}"]
        if fused:
            assert "fused" in d["f"] and n[f"dA{L}.{j}"]["v"] is None and "not computed" in n[f"dA{L}.{j}"]["f"]
            check_delta(d, "fused")
        elif out["activation"] == "softmax":
            assert "Jacobian" in d["f"] and n[f"fp{L}.{j}"]["v"] is None
            check_delta(d, "softmax")
        else:
            check_delta(d, "product")
    for j in range(3):
        check_delta(n[f"d1.{j}"], "product")
    if drop:
        assert p["layers"][0]["dropout"]["scaling"] == drop and p["layers"][1]["dropout"]["keep_prob"] == 0.5
        assert (drop == "inverted") == ("1/p" in n["ad2.0"]["f"])
        assert p["layers"][1]["dropout"]["scale"] == (2.0 if drop == "inverted" else 1.0)
    assert ("b1.0" in n) == bias and ("bn2.0" in n) == bias


@pytest.mark.parametrize("out_act", ACTIVATIONS)
def test_every_activation_as_the_output_of_mse(out_act):
    """Each activation's own f and f′ formula (softmax: its Jacobian) where it is not fused."""
    t = build("tanh", "mse", None, True, out_act=out_act)
    n = trace_payload(t)["numbers"]
    for j in range(t.layers[-1]["units"]):
        a, fp = n[f"a2.{j}"], n[f"fp2.{j}"]
        assert plugged(a["f"])  # a formula with operands
        if out_act == "softmax":
            assert fp["v"] is None and "Jacobian" in fp["f"]
            check_delta(n[f"d2.{j}"], "softmax")
        else:
            assert fp["v"] == pytest.approx(t.layers[-1]["fprime"][0, j], rel=1e-15)
            check_delta(n[f"d2.{j}"], "product")
        if out_act in ("sigmoid", "tanh", "softplus", "softmax", "elu", "gelu", "identity"):
            expr = plugged(a["f"]).replace("tanh(", "tanh(")
            if out_act != "identity":
                assert evaluate(expr) == pytest.approx(a["v"], rel=2e-3, abs=1e-3), a["f"]


def test_sums_and_updates_evaluate_to_their_values():
    t = dropped()
    n = trace_payload(t)["numbers"]
    for key, rec in n.items():
        if re.fullmatch(r"(z|dW|Wn|bn|ad|dA)\d+\.\d+(\.\d+)?", key) and rec["v"] is not None:
            got = evaluate(plugged(rec["f"]))
            assert got == pytest.approx(rec["v"], rel=3e-3, abs=2e-3), (key, rec["f"])


# ---------------------------------------------------------------------- wide networks
def test_wide_network_is_small_and_fast():
    t = wide()
    start = time.perf_counter()
    page = trace_html(t)
    elapsed = time.perf_counter() - start
    size = len(page.encode("utf-8"))
    print(f"\n784-256-10 step picture: {size / 1e6:.2f} MB, built in {elapsed:.2f} s")
    assert size < 2_000_000
    assert elapsed < 5.0  # about 0.4 s on the 2-core CI machine
    p = embedded(page)
    assert not p["layers"][0]["full"] and not p["layers"][1]["full"]  # 200 704 and 2 560 weights: blocks
    blocks = [k for k in p["numbers"] if k.startswith("Wb1.")]
    assert len(blocks) == 32 * 32
    assert len([k for k in p["numbers"] if k.startswith("Wb2.")]) == 32 * 10
    assert_payload_equals_trace(p, t)
    assert len([k for k in p["numbers"] if re.fullmatch(r"d1\.\d+", k)]) == 256  # every unit's numbers stay


# ---------------------------------------------------------------------- the document
@pytest.mark.parametrize("make", [textbook, dropped, wide], ids=["textbook", "dropout", "wide"])
def test_the_page_is_self_contained(make):
    page = trace_html(make())
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.IGNORECASE)
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<script[^>]*\bsrc=", page) and "<link" not in page
    assert "@import" not in page and "url(" not in page
    assert page.count("<script") == 3  # the payload, network.js, step.js
    for asset in ("network.js", "step.js", "pybackprop.css"):
        assert visual_step.asset_text(asset).strip()[:60] in page


def test_to_html_and_repr_html():
    t = textbook()
    page = t.to_html(title="The textbook network")
    assert "<h1>The textbook network</h1>" in page
    frame = t._repr_html_()
    assert frame.startswith("<iframe") and 'sandbox="allow-scripts"' in frame
    doc = html.unescape(re.search(r'srcdoc="(.*)"', frame, re.DOTALL).group(1))
    assert doc == t.to_html()


def test_format_number():
    assert format_number(0.01175349) == "0.01175"
    assert format_number(0.2490001) == "0.2490"
    assert format_number(-2.0) == "−2"
    assert format_number(0.1, float32=True) == "0.1"
    assert format_number(float(np.float32(0.1))) == "0.1000"  # its float64 value is not 0.1
    assert format_number(123456.7) == "1.235e5"
    assert format_number(None) == format_number(float("nan")) == "—"


def test_cli_writes_the_page(tmp_path, capsys):
    target = tmp_path / "step.html"
    assert cli.main(["explain", "--html", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"step picture written to {target}" in out and "forward, layer 1" in out
    p = embedded(target.read_text(encoding="utf-8"))
    assert p["net"]["sizes"] == [3, 4, 4, 1] and p["lr"] == 0.1
    assert [f.name for f in tmp_path.iterdir()] == ["step.html"]  # no temporary file left behind
    second = tmp_path / "md.html"
    assert cli.main(["explain", "--markdown", "--html", str(second), "--x", "0.5,-1,2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| step | quantity | formula | value |") and second.is_file()
    assert embedded(second.read_text(encoding="utf-8"))["numbers"]["a0.1"]["v"] == -1.0


def test_activation_parameters_and_dropout_in_the_words():
    m = bp.Sequential([bp.Dropout(keep_prob=0.8), bp.Dense(3, activation=bp.activations.LeakyReLU(alpha=0.2),
                                                            init=[[-1.0, 1.0, -2.0]] * 2),
                       bp.Dense(1, activation=bp.activations.ELU(alpha=0.5), init=[[-1.0]] * 3)],
                      input_dim=2, dtype="float64", seed=1)
    m.compile(loss="mse")
    t = m.explain([1.0, 1.0], [0.0])
    p = trace_payload(t)
    assert p["arch"] == "2 → dropout p=0.8 → 3 leaky_relu → 1 elu"
    assert p["layers"][0]["params"] == {"alpha": 0.2} and p["layers"][1]["params"] == {"alpha": 0.5}
    n = p["numbers"]
    neg = [j for j in range(3) if t.layers[0]["z"][0, j] <= 0]
    assert neg and all(n[f"fp1.{j}"]["f"].startswith("LReLU′(z₁,") and "= 0.2 (z₁," in n[f"fp1.{j}"]["f"] for j in neg)
    assert all(n[f"a1.{j}"]["f"].endswith(f"0.2 · {visual_step._op(t.layers[0]['z'][0, j])} = {n[f'a1.{j}']['t']}")
               for j in neg)
    if t.layers[1]["z"][0, 0] <= 0:
        assert "0.5 · e^" in n["fp2.0"]["f"]


def test_a_diverging_step_still_draws():
    """Exploding gradients are a lesson too: an inf gradient is written ∞ (JSON has no inf: its value is None)."""
    m = bp.Sequential([bp.Dense(2, activation="relu"), bp.Dense(1)], input_dim=1, dtype="float32", seed=0)
    m.compile(loss="mse")
    t = m.explain([1e38], [0.0])
    assert np.isinf(t.layers[0]["dW"]).any() and math.isfinite(t.loss) and t.loss > 1e70
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow on the way
        page = trace_html(t)
    p = embedded(page)  # the page's JSON parses (no Infinity token)
    inf = [k for k, rec in p["numbers"].items() if rec["t"] in ("∞", "−∞")]
    assert "dW1.0.0" in inf and all(p["numbers"][k]["v"] is None for k in inf)
    assert p["L"] == t.loss and p["numbers"]["L"]["t"] == format_number(t.loss) != "∞"
    assert p["edges"]["dW"][0][0][0] is None
    assert f"L = <b>{format_number(t.loss)}</b>" in page
