"""The inference benchmark: ``predict`` on the inference workloads of WORKLOADS.md,
pybackprop against ONNX Runtime, PyTorch eager and scikit-learn, each peer in a
fresh process (:func:`~pybackprop.bench.worker.spawn`, task kind ``"predict"``).

``infer-mlp`` is 64 → 256 ReLU → 256 ReLU → 10 identity with biases, float32
(``infer-mlp-f64``: float64), from the weights of
:func:`~pybackprop.bench.workloads.init_weights` (``default_rng(1)``) on the
inputs of :func:`~pybackprop.bench.workloads.make_data` (``X ~ N(0, 1)``,
``default_rng(0)``). A call predicts a batch of 1, 256 or 4,096 rows: 50
warm-up calls, then the best of 5 timings of N calls each (N = 20,000 / 2,000 /
100), in µs per call. Each peer's outputs are first checked against a float64
NumPy forward pass of the same weights.

>>> sorted(INFERENCE_WORKLOADS), INFERENCE_WORKLOADS["infer-mlp"].shapes
(['infer-mlp', 'infer-mlp-f64'], [(64, 256), (256, 256), (256, 10)])
>>> INFERENCE_PEERS["onnxruntime"].requires
('onnx', 'onnxruntime')
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .workloads import InitWeights, Workload, init_weights, make_data

__all__ = ["INFERENCE_WORKLOADS", "BATCHES", "CALLS", "InferencePeer", "INFERENCE_PEERS", "predict_task",
           "run_inference", "format_inference"]

_NET = ((256, "relu"), (256, "relu"), (10, "identity"))
INFERENCE_WORKLOADS: Dict[str, Workload] = {
    name: Workload(name, 64, _NET, True, "mse", 0.01, 0.0, 256, 4096, dtype, None)
    for name, dtype in (("infer-mlp", "float32"), ("infer-mlp-f64", "float64"))}
"""The inference workloads (only ``n_in``, ``layers``, ``bias``, ``samples`` and ``dtype`` matter)."""

BATCHES: Tuple[int, ...] = (1, 256, 4096)
"""Rows per predict call."""

CALLS: Dict[int, int] = {1: 20000, 256: 2000, 4096: 100}
"""Calls per timing, by batch size."""

Predict = Callable[[np.ndarray], Any]
"""A peer's prediction of a batch (an ndarray of the workload's dtype, C-contiguous)."""


@dataclass(frozen=True)
class InferencePeer:
    """A library that predicts: ``setup(wl, weights, threads) -> predict`` in ``module:function``."""

    name: str
    setup: str
    requires: Tuple[str, ...] = ()
    install: str = ""

    def missing(self) -> Optional[str]:
        """Why the peer cannot run here (a library not installed), or None."""
        for mod in self.requires:
            if importlib.util.find_spec(mod) is None:
                return f"{self.name}: {mod} is not installed ({self.install})"
        return None


def _biased(weights: InitWeights) -> List[Tuple[np.ndarray, np.ndarray]]:
    """The ``(W, b)`` pairs of weights with biases (as the inference workloads have)."""
    pairs = []
    for W, b in weights:
        if b is None:
            raise ValueError("weights: expected a bias in every layer")
        pairs.append((W, b))
    return pairs


def setup_pybackprop(wl: Workload, weights: InitWeights, threads: int) -> Predict:
    """``Sequential.predict`` of the model with these weights."""
    import pybackprop as bp

    from .peers.pybackprop import pybackprop_model

    bp.set_num_threads(threads)
    model = pybackprop_model(wl, weights)
    return model.predict  # type: ignore[no-any-return]


def setup_onnxruntime(wl: Workload, weights: InitWeights, threads: int) -> Predict:
    """A graph of ``Gemm`` + ``Relu`` built with the ``onnx`` helpers, in an ONNX Runtime session."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    elem = TensorProto.FLOAT if wl.dtype == "float32" else TensorProto.DOUBLE
    nodes, inits, name = [], [], "x"
    for i, ((W, b), (_, act)) in enumerate(zip(_biased(weights), wl.layers)):
        inits += [numpy_helper.from_array(W, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = f"z{i}" if act == "relu" else ("y" if i == len(weights) - 1 else f"a{i}")
        nodes.append(helper.make_node("Gemm", [name, f"W{i}", f"b{i}"], [out]))
        if act == "relu":
            relu_out = "y" if i == len(weights) - 1 else f"a{i}"
            nodes.append(helper.make_node("Relu", [out], [relu_out]))
            out = relu_out
        name = out
    graph = helper.make_graph(nodes, "infer-mlp", [helper.make_tensor_value_info("x", elem, [None, wl.n_in])],
                              [helper.make_tensor_value_info("y", elem, [None, wl.n_out])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(proto)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return lambda X: sess.run(None, {"x": X})[0]


def setup_torch(wl: Workload, weights: InitWeights, threads: int) -> Predict:
    """``torch.nn.Sequential`` of ``Linear`` (weights copied as Wᵀ) and ``ReLU``, eager, under no_grad."""
    import torch

    torch.set_num_threads(threads)
    dtype = torch.float32 if wl.dtype == "float32" else torch.float64
    mods: List[Any] = []
    for (W, b), (_, act) in zip(_biased(weights), wl.layers):
        lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.from_numpy(b))
        mods += [lin] + ([torch.nn.ReLU()] if act == "relu" else [])
    net = torch.nn.Sequential(*mods).eval()

    def predict(X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(X)).numpy()  # type: ignore[no-any-return]

    return predict


def setup_sklearn(wl: Workload, weights: InitWeights, threads: int) -> Predict:
    """``MLPRegressor._forward_pass_fast`` with these ``coefs_`` (identity output, as the workload's;
    WORKLOADS.md names MLPClassifier, whose softmax output would add a pass)."""
    from sklearn.neural_network import MLPRegressor
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    X = np.zeros((2, wl.n_in), wl.dtype)
    est = MLPRegressor(hidden_layer_sizes=tuple(u for u, _ in wl.layers[:-1]), max_iter=1)
    est._random_state = np.random.RandomState(0)  # what fit would set; the weights are replaced below
    est.n_features_in_ = wl.n_in
    est._initialize(np.zeros((2, wl.n_out), wl.dtype), [wl.n_in] + [u for u, _ in wl.layers], wl.dtype)
    est.coefs_ = [W.copy() for W, _ in weights]
    est.intercepts_ = [b.copy() for _, b in _biased(weights)]
    est._forward_pass_fast(X)
    return est._forward_pass_fast  # type: ignore[no-any-return]


INFERENCE_PEERS: Dict[str, InferencePeer] = {p.name: p for p in (
    InferencePeer("pybackprop", "pybackprop.bench.inference:setup_pybackprop"),
    InferencePeer("onnxruntime", "pybackprop.bench.inference:setup_onnxruntime", ("onnx", "onnxruntime"),
                  "pip install onnx onnxruntime"),
    InferencePeer("torch", "pybackprop.bench.inference:setup_torch", ("torch",), "pip install torch"),
    InferencePeer("sklearn", "pybackprop.bench.inference:setup_sklearn", ("sklearn", "threadpoolctl"),
                  "pip install scikit-learn threadpoolctl"),
)}
"""The inference peers, pybackprop first."""


def _forward64(X: np.ndarray, weights: InitWeights, wl: Workload) -> np.ndarray:
    """The float64 NumPy forward pass every peer's outputs are checked against."""
    a = X.astype(np.float64)
    for (W, b), (_, act) in zip(_biased(weights), wl.layers):
        a = a @ W.astype(np.float64) + b.astype(np.float64)
        if act == "relu":
            a = np.maximum(a, 0.0)
    return a


def predict_task(task: Dict[str, Any]) -> Dict[str, Any]:
    """The worker's ``"predict"`` task: one peer, one workload, one thread count.

    Parameters
    ----------
    task : dict
        ``setup`` (``"module:function"``), ``workload`` (``asdict`` of a
        :class:`~pybackprop.bench.workloads.Workload`), ``threads``,
        ``batches`` and ``calls`` (calls per timing, by batch; the keys are strings in JSON).

    Returns
    -------
    dict
        ``status`` ``"ok"``; ``us`` (µs per call, the best of 5 timings) and
        ``max_rel_err`` (against the float64 forward pass, relative to its largest
        output) per batch size, as strings.
    """
    wl = Workload.from_dict(task["workload"])
    threads = int(task["threads"])
    module, _, func = task["setup"].partition(":")
    weights = init_weights(wl)
    X, _ = make_data(wl)
    predict = getattr(importlib.import_module(module), func)(wl, weights, threads)
    us: Dict[str, float] = {}
    err: Dict[str, float] = {}
    for rows in task["batches"]:
        Xb = np.ascontiguousarray(X[:rows])
        want = _forward64(Xb, weights, wl)
        got = np.asarray(predict(Xb), dtype=np.float64)
        err[str(rows)] = float(np.abs(got - want).max() / np.abs(want).max())
        calls = int(task["calls"][str(rows)])
        for _ in range(50):
            predict(Xb)
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(calls):
                predict(Xb)
            best = min(best, (time.perf_counter() - t0) / calls)
        us[str(rows)] = best * 1e6
    return {"status": "ok", "us": us, "max_rel_err": err}


def run_inference(workloads: Sequence[str], peers: Sequence[InferencePeer], threads: Sequence[int],
                  batches: Sequence[int] = BATCHES, calls_scale: float = 1.0, timeout: float = 1800,
                  log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True)
                  ) -> List[Dict[str, Any]]:
    """Measure every (workload, peer, threads) in its own process; one record each.

    Parameters
    ----------
    workloads : sequence of str
        Names of :data:`INFERENCE_WORKLOADS`.
    peers : sequence of InferencePeer
        A peer whose library is missing gets a ``"skipped"`` record saying so.
    threads : sequence of int
        Thread counts.
    batches : sequence of int
        Rows per call.
    calls_scale : float
        :data:`CALLS` times this (at least 10 calls per timing).
    timeout : float
        Seconds per worker.
    log : callable
        Receives the progress lines.

    Returns
    -------
    list of dict
        ``workload``, ``peer``, ``threads``, ``status`` and, when ``"ok"``,
        ``us`` and ``max_rel_err`` per batch size (see :func:`predict_task`).
    """
    from .worker import spawn

    calls = {str(b): max(10, int(CALLS.get(b, 100) * calls_scale)) for b in batches}
    records: List[Dict[str, Any]] = []
    for n_threads in threads:
        for name in workloads:
            wl = INFERENCE_WORKLOADS[name]
            for peer in peers:
                rec: Dict[str, Any] = {"workload": name, "peer": peer.name, "threads": n_threads}
                reason = peer.missing()
                if reason is not None:
                    rec.update(status="skipped", note=reason)
                else:
                    log(f"[bench] {name} predict / {peer.name} / {n_threads} thread(s) ...")
                    rec.update(spawn({"kind": "predict", "setup": peer.setup, "workload": asdict(wl),
                                      "threads": n_threads, "batches": list(batches), "calls": calls},
                                     n_threads, timeout))
                records.append(rec)
    return records


def format_inference(records: Sequence[Dict[str, Any]], markdown: bool = False) -> str:
    """The inference table: µs per predict call per peer, and each peer's time over pybackprop's.

    Parameters
    ----------
    records : sequence of dict
        What :func:`run_inference` returned.
    markdown : bool
        A Markdown table instead of aligned text.

    Returns
    -------
    str
        One row per (workload, threads, batch); a ratio above 1 means pybackprop is faster.

    Examples
    --------
    >>> recs = [{"workload": "infer-mlp", "peer": "pybackprop", "threads": 1, "status": "ok",
    ...          "us": {"1": 5.0}, "max_rel_err": {"1": 1e-7}},
    ...         {"workload": "infer-mlp", "peer": "onnxruntime", "threads": 1, "status": "ok",
    ...          "us": {"1": 10.0}, "max_rel_err": {"1": 1e-7}}]
    >>> print(format_inference(recs, markdown=True))
    ## Inference: µs per predict call (peer's time / pybackprop's)
    <BLANKLINE>
    | workload | threads | rows | pybackprop | onnxruntime |
    |---|---:|---:|---:|---:|
    | infer-mlp | 1 | 1 | 5.0 | 10.0 (2.00×) |
    """
    peers = list(dict.fromkeys(r["peer"] for r in records))
    keys = list(dict.fromkeys((r["workload"], r["threads"]) for r in records))
    by = {(r["workload"], r["threads"], r["peer"]): r for r in records}
    head = ["workload", "threads", "rows"] + peers
    rows: List[List[str]] = []
    for wl, th in keys:
        ours = by.get((wl, th, "pybackprop"), {})
        sizes = list(next((r["us"] for r in records if r["workload"] == wl and r.get("status") == "ok"), {}))
        for size in sizes:
            line = [wl, str(th), size]
            for p in peers:
                r = by.get((wl, th, p), {})
                if r.get("status") != "ok":
                    line.append(r.get("status", "-"))
                    continue
                t = r["us"][size]
                base = ours.get("us", {}).get(size) if ours.get("status") == "ok" else None
                line.append(f"{t:.1f}" + (f" ({t / base:.2f}×)" if base and p != "pybackprop" else ""))
            rows.append(line)
    out = ["## Inference: µs per predict call (peer's time / pybackprop's)", ""]
    if markdown:
        out += ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
    else:
        widths = [max(len(x) for x in col) for col in zip(head, *rows)]
        out += ["  ".join(x.rjust(w) for x, w in zip(line, widths)) for line in [head] + rows]
    notes = [f"{r['peer']} ({r['workload']}, {r['threads']} thread(s)): {r.get('note')}"
             for r in records if r.get("status") != "ok"]
    return "\n".join(out + ([""] + notes if notes else []))
