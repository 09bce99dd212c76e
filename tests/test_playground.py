"""The playground without a browser: data sets, CSV files, the checked config, sessions, the HTTP API, the CLI.

The API tests run a real :class:`PlaygroundServer` on a free port in a thread
and talk to it with ``http.client``; every bad request must get a 4xx with a
message, and the server must answer the next good request.
"""
from __future__ import annotations

import http.client
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Dict, Optional, Tuple

import numpy as np
import pytest

import pybackprop
from pybackprop import GradientFlowWarning
from pybackprop.model import warn_gradient_flow
from pybackprop.playground import datasets as ds
from pybackprop.playground.server import MAX_JSON_BYTES, PlaygroundServer
from pybackprop.playground.session import (GRID, LINE, MAX_STEPS, Config, Session, SessionStore,
                                           gradient_flow)


# ------------------------------------------------------------------------------------------ data sets
@pytest.mark.parametrize("name", ["circle", "xor", "gauss", "spiral"])
def test_classification_sets_shapes_labels_and_seed(name: str) -> None:
    X, y = ds.make_dataset(name, samples=300, noise=0, seed=3)
    assert X.shape == (300, 2) and y.shape == (300,)
    assert X.dtype == np.float64 and np.isfinite(X).all()
    assert set(np.unique(y).tolist()) == {0.0, 1.0}
    assert 0.3 < y.mean() < 0.7  # both classes, about half each
    assert np.abs(X).max() <= 6.0 + 1e-9 or name == "gauss"  # TF Playground's square [-6, 6]
    X2, y2 = ds.make_dataset(name, samples=300, noise=0, seed=3)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    if name != "spiral":  # the spiral without noise is the same curve for any seed
        assert not np.array_equal(X, ds.make_dataset(name, samples=300, noise=0, seed=4)[0])
    Xn, yn = ds.make_dataset(name, samples=300, noise=30, seed=3)  # noise moves points or flips labels
    assert not (np.array_equal(X, Xn) and np.array_equal(y, yn))


def test_noise_moves_points_across_the_boundary() -> None:
    """xor's label is the noisy point's quadrant (TF Playground): with noise some points sit on the wrong side."""
    X, y = ds.make_dataset("xor", samples=1000, noise=0, seed=0)
    assert np.array_equal(y, (X[:, 0] * X[:, 1] >= 0).astype(float))
    X, y = ds.make_dataset("xor", samples=1000, noise=50, seed=0)
    wrong = np.mean(y != (X[:, 0] * X[:, 1] >= 0))
    assert 0.05 < wrong < 0.5


def test_circle_and_spiral_follow_tf_playground() -> None:
    X, y = ds.make_dataset("circle", samples=400, noise=0, seed=0)
    r = np.hypot(X[:, 0], X[:, 1])
    assert (r[y == 1] <= 2.5 + 1e-9).all() and (r[y == 0] >= 3.5 - 1e-9).all()
    X, y = ds.make_dataset("spiral", samples=10, noise=0, seed=0)
    assert np.allclose(X[0], [0.0, 0.0]) and y[:5].tolist() == [1.0] * 5


def test_regression_set_and_split() -> None:
    X, y = ds.make_dataset("sine", samples=200, noise=0, seed=1)
    assert X.shape == (200, 1) and np.allclose(y, np.sin(X[:, 0]))
    data = ds.split(X, y, train_fraction=0.3, seed=1)
    assert data.problem == "regression" and data.inputs == 1
    assert len(data.y_train) == 60 and len(data.y_test) == 140
    assert data.domain[:2] == pytest.approx([-6.6, 6.6])  # [-6, 6] padded by 5 %
    both = np.concatenate([data.X_train, data.X_test])
    assert sorted(both[:, 0].tolist()) == sorted(X[:, 0].tolist())  # a split, nothing lost or doubled


@pytest.mark.parametrize("bad, field", [
    (dict(name="moon"), "dataset"), (dict(name="xor", samples=1), "samples"),
    (dict(name="xor", noise=60), "noise"), (dict(name="xor", noise=-1), "noise"),
])
def test_make_dataset_refuses(bad: Dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        ds.make_dataset(**bad)


# ------------------------------------------------------------------------------------------ CSV files
def rows(n: int = 12, label=lambda i: i % 2) -> str:
    return "\n".join(f"{i * 0.5},{-i},{label(i)}" for i in range(n))


@pytest.mark.parametrize("text, problem, columns", [
    ("x,y,label\n" + rows(), "classification", ["x", "y", "label"]),
    (rows(), "classification", ["x1", "x2", "label"]),
    ("a;b;c\n" + rows().replace(",", ";"), "classification", ["a", "b", "c"]),
    ("a\tb\tc\n" + rows().replace(",", "\t"), "classification", ["a", "b", "c"]),
    (rows(label=lambda i: 1 if i % 2 else -1), "classification", ["x1", "x2", "label"]),
    (rows(label=lambda i: i * 0.25), "regression", ["x1", "x2", "target"]),
    ("\ufeffx,y,t\n\n" + rows() + "\n\n", "classification", ["x", "y", "t"]),  # BOM, blank lines
])
def test_csv_good(text: str, problem: str, columns: list) -> None:
    X, y, got_problem, got_columns = ds.parse_csv(text.encode("utf-8"))
    assert X.shape == (12, 2) and y.shape == (12,)
    assert got_problem == problem and got_columns == columns
    if problem == "classification":
        assert set(y.tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"x,y,label\n1,2\n", "row 2: expected 3 columns"),
    (("x,y,label\n" + rows(3) + "\n1,abc,0\n" + rows(10)).encode(), "row 5, column 2: 'abc' is not a number"),
    (("1,2,0\n" + "nan,1,0\n" + rows()).encode(), "row 2, column 1: 'nan' is not a finite number"),
    (("1,2,0\n3,1e9,0\n" + rows()).encode(), "row 2, column 2: 1e9 is too large"),
    (rows(3).encode(), "3 data rows; at least 10"),
    (("x,y,label\n" + rows(20) + "\n1,2,2\n").encode(), None),  # a numeric target: a regression, fine
    (b"\xff\xfe\x00x", "not UTF-8"),
    (b"1,2,0\x00\n" * 20, "NUL"),
    (("1,2,0\n" * (ds.MAX_CSV_ROWS + 1)).encode(), f"more than {ds.MAX_CSV_ROWS} data rows"),
    (b"1,2,0\n" * (ds.MAX_CSV_BYTES // 6 + 10), "limit is"),
    (b"x,y,1\n" + rows().encode(), "row 1, column 1: 'x' is not a number"),  # a header mixing in a number
])
def test_csv_bad(data: bytes, message: Optional[str]) -> None:
    if message is None:
        assert ds.parse_csv(data)[2] == "regression"
        return
    with pytest.raises(ds.CSVError, match=message.replace("(", r"\(")):
        ds.parse_csv(data)


def test_csv_classification_labels_name_the_row() -> None:
    text = "x,y,label\n" + rows(11) + "\n\n1,2,0.5\n"
    with pytest.raises(ds.CSVError, match=r"row 14, column 3: label 0.5 is not 0 or 1"):
        ds.parse_csv(text, problem="classification")


# ------------------------------------------------------------------------------------------ the config
@pytest.mark.parametrize("field, value", [
    ("dataset", "moon"), ("dataset", 3), ("noise", -1), ("noise", 51), ("noise", float("nan")), ("noise", "lots"),
    ("seed", -1), ("seed", 1.5), ("seed", "a"), ("seed", True), ("seed", 2 ** 40),
    ("train_fraction", 0.0), ("train_fraction", 1.0), ("samples", 5), ("samples", 10 ** 6),
    ("layers", [10 ** 6]), ("layers", [0]), ("layers", [4] * 10 ** 4), ("layers", "4,2"), ("layers", [4.5]),
    ("activations", ["softmax"]), ("activations", "tanh"),
    ("lr", -0.1), ("lr", float("nan")), ("lr", 0.0), ("lr", float("inf")), ("lr", 1e6), ("lr", "fast"),
    ("lr", None), ("batch_size", 0), ("batch_size", 10 ** 6), ("optimizer", "lbfgs"), ("l2", -1.0),
    ("l2", 5.0), ("keep_prob", 0.0), ("keep_prob", 1.5), ("problem", "clustering"),
])
def test_config_refuses_a_bad_field_naming_it(field: str, value: Any) -> None:
    values: Dict[str, Any] = {field: value}
    if field == "layers" and isinstance(value, list) and len(value) <= 6:
        values["activations"] = ["tanh"] * len(value)
    with pytest.raises(ValueError, match=f"^{field}(\\[\\d+\\])?: "):
        Config.from_dict(values)


def test_config_cross_field_rules_and_unknown_fields() -> None:
    with pytest.raises(ValueError, match="^activations: expected one per hidden layer"):
        Config.from_dict({"layers": [4, 4], "activations": ["tanh"]})
    with pytest.raises(ValueError, match="^problem: "):
        Config.from_dict({"dataset": "sine", "problem": "classification"})
    with pytest.raises(ValueError, match="^colour: unknown field"):
        Config.from_dict({"colour": "red"})
    with pytest.raises(ValueError, match="^config: expected a JSON object"):
        Config.from_dict([1, 2])
    with pytest.raises(ValueError, match=r"^layers: expected 0 to 6 hidden layers, got 10000"):
        Config.from_dict({"layers": [4] * 10 ** 4, "activations": ["tanh"] * 10 ** 4})
    cfg = Config.from_dict({"layers": [], "activations": []})
    assert cfg.layers == () and Config.from_dict(cfg.to_dict()) == cfg


# ------------------------------------------------------------------------------------------ sessions
def test_session_trains_xor_and_the_snapshot_matches_the_config() -> None:
    cfg = Config(dataset="xor", layers=[8, 8], activations=["tanh", "relu"], lr=0.03, batch_size=10, seed=2)
    s = Session(cfg)
    start = s.snapshot(full=True)
    assert start["step"] == 0 and len(start["train"]) == 250 and len(start["test"]) == 250
    for _ in range(20):
        snap = s.step(25)
    assert snap["loss"]["test"] < 0.5 * start["loss"]["test"]
    assert snap["step"] == 500 and snap["epoch"] == 19  # 25 steps of 10 points an epoch: the 20th epoch
    net = snap["net"]
    assert net["sizes"] == [2, 8, 8, 1] and net["activations"] == ["tanh", "relu", "sigmoid"]
    assert [np.array(W).shape for W in net["W"]] == [(2, 8), (8, 8), (8, 1)]
    assert [len(b) for b in net["b"]] == [8, 8, 1] and net["dropout"] == [None, None, None]
    assert snap["output"]["kind"] == "plane" and len(snap["output"]["values"]) == GRID * GRID
    assert all(0.0 <= v <= 1.0 for v in snap["output"]["values"])
    assert len(snap["grad_norm"]) == 3 and all(g > 0 for g in snap["grad_norm"])
    assert snap["error"] is None and snap["warning"] is None
    json.dumps(snap, allow_nan=False)  # JSON as it is
    assert np.allclose(np.array(net["W"][0]), s.model.layers[0].W)  # the model's own weights


def test_session_is_reproducible_and_reset_restarts() -> None:
    cfg = Config(dataset="spiral", noise=20, seed=9, layers=[6], activations=["tanh"], keep_prob=0.8, lr=0.1)
    a, b = Session(cfg), Session(cfg)
    a.step(37)
    a.step(63)
    b.step(100)  # the same steps in other chunks: the same run
    assert a.snapshot()["net"] == b.snapshot()["net"]
    first = Session(cfg).snapshot()["net"]
    a.reset()
    assert a.snapshot()["net"] == first and a.steps == 0


def test_session_dropout_regression_and_unit_values() -> None:
    s = Session(Config(dataset="sine", problem="regression", layers=[5, 3], activations=["tanh", "sigmoid"],
                       keep_prob=0.5, samples=100))
    snap = s.step(3)
    assert snap["net"]["sizes"] == [1, 5, 3, 1] and snap["net"]["activations"][-1] == "identity"
    drop = {"keep_prob": 0.5, "mask": None, "scale": 2.0}  # on the inputs of the 2nd and 3rd Dense layers
    assert snap["net"]["dropout"] == [None, drop, drop]
    assert snap["output"]["kind"] == "line" and len(snap["output"]["x"]) == LINE
    values = s.unit_values([0.7])
    assert [len(v) for v in values] == [1, 5, 3, 1]
    assert values[-1][0] == float(s.model.predict([[0.7]])[0, 0])  # the core's own forward pass
    W1, b1 = s.model.layers[0].W, s.model.layers[0].b  # the first hidden layer by hand: tanh(x W + b)
    assert np.allclose(values[1], np.tanh(np.array([[0.7]]) @ W1 + b1)[0], rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="^x: expected 1 finite"):
        s.unit_values([1.0, 2.0])


def test_divergence_keeps_the_last_finite_weights() -> None:
    s = Session(Config(dataset="sine", problem="regression", layers=[8, 8], activations=["relu", "relu"], lr=10.0))
    snap = None
    for _ in range(20):
        snap = s.step(25)
        if snap["error"]:
            break
    assert snap is not None and snap["error"] and "diverged" in snap["error"]
    weights = np.concatenate([w.ravel() for w in s.model.get_weights()])
    assert np.isfinite(weights).all()
    steps = snap["step"]
    again = s.step(10)  # no more training until a reset
    assert again["step"] == steps and again["error"] == snap["error"]
    json.dumps(again, allow_nan=False)
    s.reset()
    assert s.snapshot()["error"] is None


def test_gradient_flow_rule_and_deep_sigmoid_bars_fall() -> None:
    assert gradient_flow([1.0]) is None and gradient_flow([1.0, 0.0]) is None
    assert gradient_flow([2e4, 1.0])["kind"] == "exploding"
    assert gradient_flow([float("nan"), 1.0]) is None
    with pytest.warns(GradientFlowWarning):  # the same rule as fit's warning
        assert warn_gradient_flow([1e-5, 1.0], 0) and gradient_flow([1e-5, 1.0])["kind"] == "vanishing"
    four = Session(Config(dataset="circle", layers=[8] * 4, activations=["sigmoid"] * 4, lr=0.03)).step(25)
    norms = four["grad_norm"]
    assert norms[0] < norms[1] < norms[2] < norms[3] < norms[4]  # each sigmoid layer shrinks the gradient
    assert four["grad_ratio"] == pytest.approx(norms[0] / norms[-1]) and four["grad_ratio"] < 1e-2
    assert four["warning"] is None  # 4 layers: the bars fall, but not yet below fit's 1e-4
    six = Session(Config(dataset="circle", layers=[8] * 6, activations=["sigmoid"] * 6, lr=0.03)).step(25)
    assert six["warning"]["kind"] == "vanishing" and six["grad_ratio"] < 1e-4
    assert "relu" in six["warning"]["message"]


def test_step_with_a_probe_checks_it_before_training() -> None:
    s = Session(Config(layers=[3], activations=["tanh"]))
    before = s.snapshot()["net"]
    with pytest.raises(ValueError, match="^probe: expected 2 finite numbers"):
        s.step(5, probe=[1.0])
    with pytest.raises(ValueError, match="^probe: "):
        s.step(5, probe=[1.0, float("inf")])
    with pytest.raises(ValueError, match="^probe: "):
        s.step(5, probe=[10 ** 400, 0])
    assert s.steps == 0 and s.snapshot()["net"] == before  # nothing trained
    snap = s.step(5, probe=[1.0, 2.0])
    assert snap["step"] == 5 and snap["values"] == s.unit_values([1.0, 2.0])


def test_session_csv_upload_and_store_expiry() -> None:
    s = Session(Config())
    text = "a,b,target\n" + rows(40, label=lambda i: i / 10)
    s.upload_csv(text.encode())
    snap = s.snapshot(full=True)
    assert snap["config"]["dataset"] == "csv" and snap["problem"] == "regression"
    assert snap["columns"] == ["a", "b", "target"] and len(snap["train"]) + len(snap["test"]) == 40
    assert snap["net"]["activations"][-1] == "identity"
    with pytest.raises(ds.CSVError):
        s.upload_csv(b"1,2\n")
    assert s.snapshot(full=True)["columns"] == ["a", "b", "target"]  # a bad file changed nothing
    with pytest.raises(ValueError, match="^dataset: 'csv' needs an uploaded CSV"):
        Session(Config(dataset="csv"))
    store = SessionStore(ttl=0.05, capacity=2)
    a = store.create(Config())
    store.create(Config())
    store.create(Config())  # over capacity: the least recently used goes
    assert len(store) == 2 and store.get(a.id) is None
    time.sleep(0.1)
    store.expire()
    assert len(store) == 0


def test_explain_returns_a_page_for_a_point() -> None:
    s = Session(Config(dataset="gauss", layers=[3], activations=["relu"]))
    page = s.explain("test", 4)
    assert page.lstrip().lower().startswith("<!doctype html>")
    with pytest.raises(ValueError, match="^index: "):
        s.explain("train", 10 ** 6)
    with pytest.raises(ValueError, match="^split: "):
        s.explain("validation", 0)


# ------------------------------------------------------------------------------------------ the HTTP API
def request(srv: PlaygroundServer, method: str, path: str, body: Any = None, raw: Optional[bytes] = None,
            headers: Optional[Dict[str, str]] = None) -> Tuple[int, Any, Dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    try:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        hdrs = dict(headers or {})
        if data is not None and "Content-Length" not in hdrs:
            hdrs["Content-Length"] = str(len(data))
        conn.request(method, path, body=data, headers=hdrs)
        res = conn.getresponse()
        payload = res.read()
        ctype = res.getheader("Content-Type", "")
        value = json.loads(payload) if ctype.startswith("application/json") else payload.decode("utf-8")
        return res.status, value, dict(res.getheaders())
    finally:
        conn.close()


def create(srv: PlaygroundServer, config: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    status, state, _ = request(srv, "POST", "/api/sessions", {"config": config or {}})
    assert status == 201, state
    return state


def test_api_create_step_and_the_loss_falls_on_xor(playground: PlaygroundServer) -> None:
    state = create(playground, {"dataset": "xor", "layers": [4, 4], "activations": ["tanh", "tanh"], "lr": 0.1})
    sid = state["session"]
    assert state["config"]["layers"] == [4, 4] and len(state["history"]) == 1
    first = state["loss"]["test"]
    for _ in range(10):
        status, snap, _ = request(playground, "POST", f"/api/sessions/{sid}/step", {"steps": 50, "probe": [1.0, -2.0]})
        assert status == 200, snap
    assert snap["loss"]["test"] < 0.6 * first and snap["step"] == 500
    assert [len(v) for v in snap["values"]] == [2, 4, 4, 1]
    assert [np.array(W).shape for W in snap["net"]["W"]] == [(2, 4), (4, 4), (4, 1)]
    assert len(snap["output"]["values"]) == GRID * GRID and len(snap["grad_norm"]) == 3
    status, full, _ = request(playground, "GET", f"/api/sessions/{sid}")
    assert status == 200 and len(full["history"]) == 11 and full["history"][-1][0] == 500
    status, res, _ = request(playground, "POST", f"/api/sessions/{sid}/values", {"x": [0.5, 0.5]})
    assert status == 200 and len(res["values"]) == 4
    status, res, _ = request(playground, "POST", f"/api/sessions/{sid}/explain", {"split": "train", "index": 3})
    assert status == 200 and "<html" in res["html"].lower()
    status, page, headers = request(playground, "GET", f"/explain/{sid}?split=test&index=2")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and "<html" in page.lower()


def test_api_config_and_reset(playground: PlaygroundServer) -> None:
    sid = create(playground)["session"]
    status, state, _ = request(playground, "POST", f"/api/sessions/{sid}/config",
                               {"config": {"dataset": "spiral", "layers": [8, 8, 8],
                                           "activations": ["relu", "tanh", "sigmoid"], "keep_prob": 0.9}})
    assert status == 200 and state["config"]["dataset"] == "spiral" and state["net"]["sizes"] == [2, 8, 8, 8, 1]
    request(playground, "POST", f"/api/sessions/{sid}/step", {"steps": 5})
    status, state, _ = request(playground, "POST", f"/api/sessions/{sid}/reset", {})
    assert status == 200 and state["step"] == 0 and state["config"]["keep_prob"] == 0.9


def test_api_pages_and_assets(playground: PlaygroundServer) -> None:
    status, page, headers = request(playground, "GET", "/")
    assert status == 200 and "playground.js" in page and headers["Content-Type"].startswith("text/html")
    status, script, headers = request(playground, "GET", "/assets/playground.js")
    assert status == 200 and "PBNet.render" in script and "javascript" in headers["Content-Type"]
    status, drawing, headers = request(playground, "GET", "/assets/network.js")  # the shared drawing, from visual/
    assert status == 200 and "PBNet" in drawing and "javascript" in headers["Content-Type"]
    for path in ("/assets/server.py", "/assets/..%2Fserver.py", "/assets/../session.py", "/nothing"):
        status, res, _ = request(playground, "GET", path)
        assert status == 404 and res["error"], path
    status, cat, _ = request(playground, "GET", "/api/datasets")
    assert status == 200 and set(cat["datasets"]) == {"circle", "xor", "gauss", "spiral", "sine"}
    assert len(cat["datasets"]["xor"]["preview"]) == 200 and cat["limits"]["layers"] == 6


BAD_REQUESTS = [
    ("malformed JSON", "/api/sessions", b"{not json", 400, "not valid JSON"),
    ("a JSON list", "/api/sessions", b"[1, 2]", 400, "expected a JSON object"),
    ("an unknown body field", "/api/sessions", {"konfig": {}}, 400, "konfig: unknown field"),
    ("an unknown config field", "/api/sessions", {"config": {"colour": "red"}}, 400, "colour: unknown field"),
    ("10^6 units", "/api/sessions", {"config": {"layers": [10 ** 6], "activations": ["tanh"]}}, 400, "layers[0]"),
    ("10^4 layers", "/api/sessions", {"config": {"layers": [4] * 10 ** 4}}, 400, "layers: expected 0 to 6"),
    ("a NaN lr", "/api/sessions", b'{"config": {"lr": NaN}}', 400, "lr: "),
    ("a negative lr", "/api/sessions", {"config": {"lr": -1}}, 400, "lr: "),
    ("a string lr", "/api/sessions", {"config": {"lr": "NaN"}}, 400, "lr: "),
    ("an lr beyond float", "/api/sessions", b'{"config": {"lr": 1' + b"0" * 400 + b"}}", 400, "lr: "),
    ("a probe beyond float", None, b'{"steps": 1, "probe": [1' + b"0" * 400 + b", 0]}", 400, "probe: "),
    ("deep nesting", "/api/sessions", b"[" * 100000 + b"]" * 100000, 413, "limit"),
    ("nesting under the limit", "/api/sessions", b"[" * 30000 + b"]" * 30000, 400, "JSON"),
    ("a bad step count", None, {"steps": MAX_STEPS + 1}, 400, "steps: "),
    ("a float step count", None, {"steps": 2.5}, 400, "steps: "),
    ("a bad probe", None, {"steps": 1, "probe": ["x"]}, 400, "probe: "),
    ("an unknown step field", None, {"steps": 1, "fast": True}, 400, "fast: unknown field"),
]


@pytest.mark.parametrize("what, path, body, status, message", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_api_bad_requests_get_a_4xx_with_a_message_and_the_server_goes_on(
        playground: PlaygroundServer, what: str, path: Optional[str], body: Any, status: int, message: str) -> None:
    sid = create(playground)["session"]
    path = path or f"/api/sessions/{sid}/step"
    raw = body if isinstance(body, bytes) else None
    got, res, _ = request(playground, "POST", path, None if raw is not None else body, raw=raw)
    assert got == status and message in res["error"], (got, res)
    got, snap, _ = request(playground, "POST", f"/api/sessions/{sid}/step", {"steps": 2})  # the next good request
    assert got == 200 and snap["step"] == 2


def test_api_unknown_session_method_and_origin(playground: PlaygroundServer) -> None:
    for method, path in (("POST", "/api/sessions/nope/step"), ("GET", "/api/sessions/nope"),
                         ("POST", "/api/sessions/nope/csv"), ("GET", "/explain/nope")):
        status, res, _ = request(playground, method, path, {} if method == "POST" else None)
        assert status == 404 and "unknown session" in res["error"], (method, path)
    status, res, _ = request(playground, "POST", "/api/sessions/x/teleport", {})
    assert status == 404 and "no route" in res["error"]
    status, res, _ = request(playground, "POST", "/explain/x", {})
    assert status == 405 and res["error"]
    status, res, _ = request(playground, "DELETE", "/api/sessions")
    assert status == 405 and res["error"]
    status, res, _ = request(playground, "POST", "/api/sessions", {}, headers={"Origin": "http://evil.example"})
    assert status == 403 and "evil.example" in res["error"]
    status, res, _ = request(playground, "POST", "/api/sessions", {}, headers={"Origin": "null"})
    assert status == 403  # a sandboxed frame of any site
    status, res, _ = request(playground, "GET", "/", headers={"Host": "evil.example:80"})
    assert status == 403
    status, res, _ = request(playground, "POST", "/api/sessions", {}, headers={"Origin": playground.url.rstrip("/")})
    assert status == 201  # the page's own requests
    assert create(playground)["session"]


def test_api_vanished_session_is_a_404(playground: PlaygroundServer) -> None:
    srv = PlaygroundServer(port=0, store=SessionStore(ttl=0.05))
    srv.serve_in_thread(poll_interval=0.05)
    try:
        sid = create(srv)["session"]
        time.sleep(0.15)
        status, res, _ = request(srv, "POST", f"/api/sessions/{sid}/step", {"steps": 1})
        assert status == 404 and "expired" in res["error"]
        assert create(srv)["session"] != sid
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_stalled_client_blocks_no_one_and_is_dropped_after_the_timeout() -> None:
    srv = PlaygroundServer(port=0, request_timeout=0.5)
    srv.serve_in_thread(poll_interval=0.05)
    try:
        stalled = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(3)]
        stalled[0].sendall(b"POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
        stalled[1].sendall(b"GET / HTTP/1.1\r\nHost: 127")  # headers cut short; the third sends nothing
        start = time.monotonic()
        status, state, _ = request(srv, "POST", "/api/sessions", {"config": {}})
        assert status == 201 and time.monotonic() - start < 0.5  # served while the others stall
        for sock in stalled:
            assert sock.recv(1024) == b""  # closed by the server after request_timeout
            sock.close()
        assert time.monotonic() - start < 4
        assert request(srv, "GET", f"/api/sessions/{state['session']}")[0] == 200
    finally:
        srv.shutdown()
        srv.server_close()


def test_api_body_limits(playground: PlaygroundServer) -> None:
    sid = create(playground)["session"]
    big = b'{"steps": 1, "pad": "' + b"x" * (MAX_JSON_BYTES + 10) + b'"}'
    status, res, headers = request(playground, "POST", f"/api/sessions/{sid}/step", raw=big)
    assert status == 413 and "limit" in res["error"]
    status, res, _ = request(playground, "POST", f"/api/sessions/{sid}/csv",
                             raw=b"1,2,0\n" * (ds.MAX_CSV_BYTES // 6 + 10))
    assert status == 413
    status, res, _ = request(playground, "POST", f"/api/sessions/{sid}/step", raw=b"{}",
                             headers={"Content-Length": "-5"})
    assert status == 400 and "Content-Length" in res["error"]
    status, res, _ = request(playground, "POST", f"/api/sessions/{sid}/step", raw=b"{}",
                             headers={"Content-Length": "lots"})
    assert status == 400
    status, snap, _ = request(playground, "POST", f"/api/sessions/{sid}/step", {"steps": 1})
    assert status == 200


def test_api_csv_good_and_bad(playground: PlaygroundServer) -> None:
    sid = create(playground)["session"]
    good = ("x1,x2,label\n" + "\n".join(f"{i % 7 - 3},{i % 5 - 2},{int(i % 7 > 3)}" for i in range(60))).encode()
    status, state, _ = request(playground, "POST", f"/api/sessions/{sid}/csv", raw=good,
                               headers={"Content-Type": "text/csv"})
    assert status == 200 and state["config"]["dataset"] == "csv" and len(state["train"]) == 30
    status, snap, _ = request(playground, "POST", f"/api/sessions/{sid}/step", {"steps": 20})
    assert status == 200 and snap["step"] == 20
    status, res, _ = request(playground, "POST", f"/api/sessions/{sid}/csv", raw=b"x,y,label\n1,2,0\n3,oops,1\n")
    assert status == 400 and res["error"] == "row 3, column 2: 'oops' is not a number"
    status, state, _ = request(playground, "GET", f"/api/sessions/{sid}")
    assert status == 200 and state["config"]["dataset"] == "csv"  # the good file is kept


def test_api_divergence_keeps_finite_weights(playground: PlaygroundServer) -> None:
    sid = create(playground, {"dataset": "sine", "problem": "regression", "layers": [8, 8],
                          "activations": ["relu", "relu"], "lr": 10})["session"]
    for _ in range(20):
        status, snap, _ = request(playground, "POST", f"/api/sessions/{sid}/step", {"steps": 25})
        assert status == 200
        if snap["error"]:
            break
    assert "diverged" in snap["error"]
    weights = [w for W in snap["net"]["W"] for row in W for w in row]
    assert all(isinstance(w, float) and math.isfinite(w) for w in weights)


def test_api_serves_tabs_in_parallel(playground: PlaygroundServer) -> None:
    ids = [create(playground, {"dataset": name})["session"] for name in ("circle", "xor", "gauss")]
    errors = []

    def run(sid: str) -> None:
        try:
            for _ in range(5):
                status, snap, _ = request(playground, "POST", f"/api/sessions/{sid}/step", {"steps": 20})
                assert status == 200, snap
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(sid,)) for sid in ids for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    for sid in ids:  # two tabs' requests on one session add up: 2 x 5 x 20 steps, none lost or doubled
        status, state, _ = request(playground, "GET", f"/api/sessions/{sid}")
        assert status == 200 and state["step"] == 200 and len(state["history"]) == 11


# ------------------------------------------------------------------------------------------ the CLI
def test_cli_playground_starts_prints_its_url_and_stops_on_ctrl_c() -> None:
    env = dict(os.environ)
    here = os.path.dirname(os.path.dirname(os.path.abspath(pybackprop.__file__)))  # the package under test
    env["PYTHONPATH"] = os.pathsep.join([here] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    proc = subprocess.Popen([sys.executable, "-m", "pybackprop", "playground", "--no-browser", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            proc.wait(timeout=5)
        assert line.startswith("pybackprop playground: http://127.0.0.1:"), \
            line or proc.stderr.read()  # type: ignore[union-attr]
        url = line.split()[2]
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/")
        res = conn.getresponse()
        assert res.status == 200 and b"playground.js" in res.read()  # the keep-alive connection stays open
        start = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=5)
        assert time.perf_counter() - start < 1.0  # "Ctrl-C stops it within a second", an open tab or not
        conn.close()
        assert proc.returncode == 0, proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


def test_cli_parser_has_the_playground() -> None:
    from pybackprop.cli import build_parser

    args = build_parser().parse_args(["playground", "--port", "0", "--no-browser", "--host", "::1"])
    assert (args.port, args.no_browser, args.host) == (0, True, "::1")
