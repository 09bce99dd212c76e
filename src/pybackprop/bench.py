"""``pybackprop bench``: end-to-end training speed against the libraries a user
would pick instead, on the workloads of the project's WORKLOADS.md.

This module is self-contained (it works from an installed package): it holds

- the workload table (:data:`WORKLOADS`), the data and the initial weights
  exactly as WORKLOADS.md defines them (:func:`make_data`, :func:`init_weights`),
  and the FLOP count of an epoch;
- the runners of the peers the command line can measure on its own:
  pybackprop, its NumPy reference (small workloads only, it is slow) and
  PyTorch eager (skipped with a note when not installed). The repository's
  ``benchmarks/python/`` adds JAX, NumPy by hand and scikit-learn, and imports
  everything else from here;
- the harness: one fresh subprocess per (workload, peer, threads), with the
  thread variables and the CPU affinity set before any numerical library is
  imported, timing of whole epochs, the sanity losses, peak RSS of ``fit``;
  with ``--rounds R`` the peers of a workload run in turn R times and each
  pools its rounds' epochs (:func:`merge_rounds`);
  the OpenBLAS GEMM rate and the ``import`` costs measured in the same run;
  the report tables and the JSON record.

Command line::

    pybackprop bench --quick                  # seed-sgd, seed-minibatch, small; < 1 min
    pybackprop bench --workloads wide --threads 1 2 --repeats 5 --json out.json
    pybackprop bench --workloads seed-sgd --repeats 10 --rounds 3   # peers interleaved

A runner is ``setup(ctx) -> Runner``: ``ctx`` carries the workload, the data,
the initial weights and the thread count; the runner's ``epoch()`` trains one
epoch (all full batches, in order, blocking until done) and its ``loss()``
returns the full-data loss without dropout.
"""
from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "WORKLOADS", "QUICK_WORKLOADS", "Workload", "Peer", "PEERS", "PeerUnavailable", "Context",
    "make_data", "init_weights", "add_parser", "add_arguments", "run", "run_benchmarks",
    "format_report",
]

# --------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    """One row of WORKLOADS.md's table.

    ``layers`` lists ``(units, activation)`` per dense layer; for
    ``loss == "softmax_ce"`` the last layer's activation is ``identity`` (the
    logits) and the softmax belongs to the loss. ``keep_prob`` puts an inverted
    dropout after every hidden activation.
    """

    name: str
    n_in: int
    layers: Tuple[Tuple[int, str], ...]
    bias: bool
    loss: str  # "mse" or "softmax_ce"
    lr: float
    momentum: float
    batch: int
    samples: int  # generated samples; an epoch uses the drop-last prefix
    dtype: str
    keep_prob: Optional[float] = None

    @property
    def n_out(self) -> int:
        return self.layers[-1][0]

    @property
    def steps(self) -> int:
        return self.samples // self.batch

    @property
    def epoch_samples(self) -> int:
        return self.steps * self.batch

    @property
    def shapes(self) -> List[Tuple[int, int]]:
        dims = [self.n_in] + [u for u, _ in self.layers]
        return list(zip(dims[:-1], dims[1:]))

    @property
    def n_params(self) -> int:
        return sum(i * o + (o if self.bias else 0) for i, o in self.shapes)

    @property
    def flops_per_sample(self) -> int:
        """Dense matmuls only: forward 2·in·out per layer, backward twice that."""
        return 3 * sum(2 * i * o for i, o in self.shapes)

    @property
    def flops_per_epoch(self) -> int:
        return self.flops_per_sample * self.epoch_samples

    def describe(self) -> str:
        parts = [str(self.n_in)]
        for k, (units, act) in enumerate(self.layers):
            last = k == len(self.layers) - 1
            parts.append(f"{units} {act}" + ("" if last or self.keep_prob is None
                                              else f" → dropout(keep {self.keep_prob:g})"))
        opt = f"SGD lr {self.lr:g}" + (f", momentum {self.momentum:g}" if self.momentum else "")
        loss = "MSE" if self.loss == "mse" else "softmax cross-entropy"
        return (f"{' → '.join(parts)}, {'bias' if self.bias else 'no bias'}, {loss}, {opt}, "
                f"batch {self.batch}, {self.epoch_samples:,} samples/epoch ({self.steps:,} steps), {self.dtype}")

    def scaled(self, scale: float) -> "Workload":
        """The same workload on ``scale`` times the samples (at least two batches)."""
        if scale == 1.0:
            return self
        return replace(self, samples=max(2 * self.batch, int(round(self.samples * scale))))


_SEED = ((4, "relu"), (4, "sigmoid"), (1, "identity"))
_WIDE = ((2048, "relu"), (2048, "relu"), (1024, "identity"))

WORKLOADS: Dict[str, Workload] = {w.name: w for w in [
    Workload("seed-sgd", 3, _SEED, False, "mse", 0.01, 0.0, 1, 10_000, "float32"),
    Workload("seed-minibatch", 3, _SEED, False, "mse", 0.01, 0.0, 100, 10_000, "float32"),
    Workload("small", 16, ((64, "tanh"), (64, "tanh"), (1, "identity")), True, "mse", 0.01, 0.9, 32,
             50_000, "float32"),
    Workload("mnist-like", 784, ((256, "relu"), (256, "relu"), (10, "identity")), True, "softmax_ce", 0.05,
             0.0, 64, 20_000, "float32", keep_prob=0.8),
    Workload("wide", 1024, _WIDE, True, "mse", 0.001, 0.0, 256, 4096, "float32"),
    Workload("wide-f64", 1024, _WIDE, True, "mse", 0.001, 0.0, 256, 4096, "float64"),
]}
QUICK_WORKLOADS = ("seed-sgd", "seed-minibatch", "small")
#: Workloads where the fraction of the machine's GEMM rate is meaningful.
GEMM_BOUND = ("mnist-like", "wide", "wide-f64")


def make_data(wl: Workload) -> Tuple[np.ndarray, np.ndarray]:
    """``(X, Y)`` as WORKLOADS.md: ``default_rng(0)``; X ~ N(0, 1); teacher
    ``tanh(X @ A) @ B`` with A ~ N(0, 1/n_in) (n_in×32), B ~ N(0, 1/32) (32×n_out)
    drawn after X. Y is the teacher's output (n, n_out) in the workload's dtype
    for MSE, the int64 labels ``argmax`` (n,) for softmax cross-entropy.

    >>> X, Y = make_data(WORKLOADS["seed-sgd"])
    >>> X.shape, Y.shape, X.dtype
    ((10000, 3), (10000, 1), dtype('float32'))
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(wl.samples, wl.n_in))
    A = rng.normal(0.0, math.sqrt(1.0 / wl.n_in), size=(wl.n_in, 32))
    B = rng.normal(0.0, math.sqrt(1.0 / 32), size=(32, wl.n_out))
    T = np.tanh(X @ A) @ B
    Xc = np.ascontiguousarray(X, dtype=wl.dtype)
    if wl.loss == "softmax_ce":
        return Xc, np.argmax(T, axis=1).astype(np.int64)
    return Xc, np.ascontiguousarray(T, dtype=wl.dtype)


def init_weights(wl: Workload) -> List[Tuple[np.ndarray, Optional[np.ndarray]]]:
    """``[(W, b), ...]`` per dense layer: ``default_rng(1)``, drawn layer by layer,
    W (in×out) then b (out,), each ~ U(-1/√in, 1/√in) (torch's nn.Linear bound);
    b is None (and not drawn) without bias."""
    rng = np.random.default_rng(1)
    out: List[Tuple[np.ndarray, Optional[np.ndarray]]] = []
    for fan_in, fan_out in wl.shapes:
        bound = 1.0 / math.sqrt(fan_in)
        W = rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype(wl.dtype)
        b = rng.uniform(-bound, bound, size=(fan_out,)).astype(wl.dtype) if wl.bias else None
        out.append((W, b))
    return out


def memory_estimate(wl: Workload) -> Dict[str, int]:
    """Bytes of what training must hold: the data, parameters, gradients,
    optimiser state and one batch of activations (inputs and every layer's
    output). ``small`` networks are dwarfed by the interpreter's own pages."""
    item = np.dtype(wl.dtype).itemsize
    y_cols = wl.n_out  # one-hot targets for the classifier
    params = wl.n_params * item
    parts = {
        "data": wl.samples * (wl.n_in + y_cols) * item,
        "parameters": params,
        "gradients": params,
        "optimiser": params if wl.momentum else 0,
        "activations": wl.batch * (wl.n_in + sum(u for u, _ in wl.layers)) * item,
    }
    parts["total"] = sum(parts.values())
    return parts


# --------------------------------------------------------------------------- peers


class PeerUnavailable(Exception):
    """Raised by a runner's setup when its library is missing or does not apply."""


@dataclass
class Context:
    """What a runner's setup receives."""

    workload: Workload
    X: np.ndarray  # (n, n_in), workload dtype
    Y: np.ndarray  # (n, n_out) workload dtype, or (n,) int64 labels
    init: List[Tuple[np.ndarray, Optional[np.ndarray]]]
    threads: int
    notes: List[str] = field(default_factory=list)

    @property
    def n_epoch(self) -> int:
        return self.workload.epoch_samples


@dataclass
class Runner:
    epoch: Callable[[], None]
    loss: Callable[[], float]
    compile_s: Optional[float] = None
    version: str = ""


@dataclass(frozen=True)
class Peer:
    """A library to measure: ``runner`` is ``"module:function"`` (the setup),
    ``requires`` the modules that must be importable, ``workloads`` the ones it
    runs (None: all)."""

    name: str
    runner: str
    requires: Tuple[str, ...] = ()
    workloads: Optional[Tuple[str, ...]] = None
    install: str = ""
    preload: Tuple[str, ...] = ()  # imported before the baseline RSS (default: requires)

    def skip_reason(self, wl: Workload) -> Optional[str]:
        if self.workloads is not None and wl.name not in self.workloads:
            return f"{self.name}: not run on {wl.name} (only on {', '.join(self.workloads)})"
        for mod in self.requires:
            if importlib.util.find_spec(mod) is None:
                hint = f" ({self.install})" if self.install else ""
                return f"{self.name}: skipped, {mod} is not installed{hint}"
        return None


PEERS: Dict[str, Peer] = {p.name: p for p in [
    Peer("pybackprop", "pybackprop.bench:setup_pybackprop", preload=("pybackprop",)),
    Peer("reference", "pybackprop.bench:setup_reference", workloads=QUICK_WORKLOADS,
         preload=("pybackprop", "pybackprop.reference")),
    Peer("torch", "pybackprop.bench:setup_torch", requires=("torch",), install="pip install torch"),
]}


def pybackprop_model(wl: Workload, init: Optional[List[Tuple[np.ndarray, Optional[np.ndarray]]]] = None):  # type: ignore[no-untyped-def]
    """The workload as a compiled ``bp.Sequential`` (weights from ``init``)."""
    import pybackprop as bp

    layers: List[Any] = []
    for k, (units, act) in enumerate(wl.layers):
        last = k == len(wl.layers) - 1
        if last and wl.loss == "softmax_ce":
            act = "softmax"
        layers.append(bp.Dense(units, activation=act, use_bias=wl.bias))
        if wl.keep_prob is not None and not last:
            layers.append(bp.Dropout(keep_prob=wl.keep_prob))
    model = bp.Sequential(layers, input_dim=wl.n_in, dtype=wl.dtype, seed=0)
    model.compile(loss="mse" if wl.loss == "mse" else "categorical_crossentropy",
                  optimizer=bp.SGD(lr=wl.lr, momentum=wl.momentum))
    if init is not None:
        model.set_weights([a for W, b in init for a in ((W,) if b is None else (W, b))])
    return model


def _targets_for_fit(wl: Workload, Y: np.ndarray) -> np.ndarray:
    if wl.loss == "softmax_ce":
        onehot = np.zeros((len(Y), wl.n_out), dtype=wl.dtype)
        onehot[np.arange(len(Y)), Y] = 1
        return onehot
    return Y


def limit_blas_threads(ctx: Context) -> None:
    """NumPy's BLAS (and sklearn's) on ``ctx.threads`` threads, via threadpoolctl when
    installed (else OPENBLAS_NUM_THREADS, set before import, is all there is; noted)."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(ctx.threads)
    except ImportError:
        ctx.notes.append("threadpoolctl absent: BLAS threads from OPENBLAS_NUM_THREADS only")


def setup_pybackprop(ctx: Context) -> Runner:
    """pybackprop: ``fit(epochs=1, shuffle=False)`` per epoch on the drop-last
    prefix, so the Python boundary is crossed once per epoch."""
    import pybackprop as bp

    wl = ctx.workload
    bp.set_num_threads(ctx.threads)
    model = pybackprop_model(wl, ctx.init)
    Xe = ctx.X[:ctx.n_epoch]
    Ye = _targets_for_fit(wl, ctx.Y[:ctx.n_epoch])  # made before timing, like every peer's batches
    X, Y = ctx.X, ctx.Y

    def epoch() -> None:
        model.fit(Xe, Ye, epochs=1, batch_size=wl.batch, shuffle=False, verbose=0)

    info = bp.build_info()
    return Runner(epoch, lambda: float(model.evaluate(X, Y)),
                  version=f"{bp.__version__} ({info.get('isa')}, openmp {info.get('openmp')})")


def setup_reference(ctx: Context) -> Runner:
    """pybackprop.reference: the pure-NumPy twin (readable, slow)."""
    from pybackprop import reference

    limit_blas_threads(ctx)
    wl = ctx.workload
    model = pybackprop_model(wl, ctx.init)
    net = reference.Network.from_config(model.get_config(), model.get_weights())
    del model
    Xe = ctx.X[:ctx.n_epoch]
    Ye = _targets_for_fit(wl, ctx.Y[:ctx.n_epoch])
    X, Y = ctx.X, _targets_for_fit(wl, ctx.Y)

    def epoch() -> None:
        net.fit(Xe, Ye, epochs=1, batch_size=wl.batch, shuffle=False)

    return Runner(epoch, lambda: float(net.evaluate(X, Y)), version=f"numpy {np.__version__}")


def setup_torch(ctx: Context) -> Runner:
    """PyTorch eager: nn.Sequential, torch.optim.SGD, the usual loop."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - checked by skip_reason
        raise PeerUnavailable(f"torch: {exc}") from exc
    from torch import nn

    torch.set_num_threads(ctx.threads)
    wl = ctx.workload
    tdtype = getattr(torch, wl.dtype)
    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "identity": nn.Identity}
    mods: List[Any] = []
    for k, ((fan_in, fan_out), (W, b), (_, act)) in enumerate(zip(wl.shapes, ctx.init, wl.layers)):
        lin = nn.Linear(fan_in, fan_out, bias=wl.bias, dtype=tdtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T))
            if b is not None:
                lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if act != "identity":
            mods.append(acts[act]())
        if wl.keep_prob is not None and k < len(wl.layers) - 1:
            mods.append(nn.Dropout(p=1.0 - wl.keep_prob))
    model = nn.Sequential(*mods)
    opt = torch.optim.SGD(model.parameters(), lr=wl.lr, momentum=wl.momentum)
    lossf = nn.MSELoss() if wl.loss == "mse" else nn.CrossEntropyLoss()
    X, Y = torch.from_numpy(ctx.X), torch.from_numpy(ctx.Y)
    batches = list(zip(X[:ctx.n_epoch].split(wl.batch), Y[:ctx.n_epoch].split(wl.batch)))

    def epoch() -> None:
        model.train()
        for xb, yb in batches:
            opt.zero_grad()
            loss = lossf(model(xb), yb)
            loss.backward()
            opt.step()

    def full_loss() -> float:
        model.eval()
        with torch.no_grad():
            return float(lossf(model(X), Y))

    return Runner(epoch, full_loss, version=f"torch {torch.__version__}")


# --------------------------------------------------------------------------- process helpers


def _proc_status_mib(key: str) -> Optional[float]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def rss_mib() -> Optional[float]:
    """Resident set size of this process now, MiB (Linux)."""
    return _proc_status_mib("VmRSS")


def peak_rss_mib() -> Optional[float]:
    """Peak RSS since the last :func:`reset_peak_rss` (or process start), MiB."""
    peak = _proc_status_mib("VmHWM")
    if peak is None:
        try:
            import resource

            kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            peak = kb / 1024.0 / (1024.0 if sys.platform == "darwin" else 1.0)
        except ImportError:  # pragma: no cover
            return None
    return peak


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def thread_env(threads: int) -> Dict[str, str]:
    """The environment of a worker at ``threads`` threads (WORKLOADS.md)."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "xla_cpu_multi_thread_eigen" not in f]
    if threads == 1:
        flags.append("--xla_cpu_multi_thread_eigen=false")
    if flags:
        env["XLA_FLAGS"] = " ".join(flags)
    else:
        env.pop("XLA_FLAGS", None)
    return env


def _allowed_cpus() -> List[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return list(range(os.cpu_count() or 1))


def _pin(threads: int) -> Callable[[], None]:
    cpus = _allowed_cpus()[:threads]

    def pin() -> None:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, cpus)

    return pin


_MARK = "@@pybackprop-bench@@ "


def _spawn(task: Dict[str, Any], threads: int, timeout: float) -> Dict[str, Any]:
    """Run ``task`` in a fresh interpreter pinned to ``threads`` CPUs."""
    # The worker loads this file alone (not the pybackprop package), so that a
    # peer's process holds only that peer's libraries (no pybackprop OpenMP
    # runtime inside the torch process, no pybackprop pages in its RSS).
    code = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('pybackprop.bench', "
            "sys.argv[1]); m = importlib.util.module_from_spec(spec); sys.modules['pybackprop.bench'] = m; "
            "spec.loader.exec_module(m); m._worker_main()")
    env = thread_env(threads)
    paths = [p for p in task.get("sys_path", [])]
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join([p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
                                        + [pkg_parent])
    out: Dict[str, Any] = {}
    for attempt in range(4):
        try:
            proc = subprocess.run([sys.executable, "-c", code, os.path.abspath(__file__), json.dumps(task)], env=env,
                                  capture_output=True, text=True, timeout=timeout,
                                  preexec_fn=_pin(threads) if os.name == "posix" else None)
        except subprocess.TimeoutExpired:
            return {"status": "error", "note": f"timed out after {timeout:.0f} s"}
        out = {}
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith(_MARK):
                out = json.loads(line[len(_MARK):])
                break
        if not out:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            out = {"status": "error", "note": f"worker exited with {proc.returncode}: {tail}"}
        # An extension being rebuilt in a development tree is not a result: wait and retry.
        if out["status"] == "error" and "_core" in out.get("note", "") and attempt < 3:
            time.sleep(20)
            continue
        break
    return out


def _worker_main() -> None:
    task = json.loads(sys.argv[2])
    kind = task["kind"]
    try:
        if kind == "fit":
            out = _worker_fit(task)
        elif kind == "gemm":
            out = _worker_gemm(task)
        else:
            raise ValueError(f"unknown task kind {kind}")
    except PeerUnavailable as exc:
        out = {"status": "skipped", "note": str(exc)}
    except Exception as exc:  # noqa: BLE001 - reported in the table, never hidden
        out = {"status": "error", "note": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(_MARK + json.dumps(out) + "\n")
    sys.stdout.flush()


def _loadavg() -> Optional[float]:
    """The 1-minute load average (other processes competing for the CPUs)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover
        return None


def _load_runner(spec: str) -> Callable[[Context], Runner]:
    module, _, func = spec.partition(":")
    return getattr(importlib.import_module(module), func)


def _worker_fit(task: Dict[str, Any]) -> Dict[str, Any]:
    wl = Workload(**{**task["workload"], "layers": tuple(tuple(x) for x in task["workload"]["layers"])})
    threads, warmup, repeats = task["threads"], task["warmup"], task["repeats"]
    for mod in task.get("preload", []):
        importlib.import_module(mod)
    setup = _load_runner(task["runner"])  # imports the peer's library
    rss_base = rss_mib()
    load_start = _loadavg()
    X, Y = make_data(wl)
    ctx = Context(wl, X, Y, init_weights(wl), threads)
    del X, Y
    runner = setup(ctx)
    ctx.init = []  # the runner copied what it needs
    gc.collect()
    loss_before = runner.loss()
    gc.collect()
    rss_pre_fit = rss_mib()
    peak_reset = reset_peak_rss()
    for _ in range(warmup):
        runner.epoch()
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        runner.epoch()
        times.append(time.perf_counter() - t0)
    peak = peak_rss_mib()
    load_end = _loadavg()
    loss_after = runner.loss()
    rates = [wl.epoch_samples / t for t in times]
    med_t = statistics.median(times)
    est = memory_estimate(wl)
    return {
        "status": "ok", "note": "; ".join(ctx.notes), "version": runner.version,
        "epoch_s": times, "samples_per_s": rates,
        "median": statistics.median(rates), "min": min(rates), "max": max(rates),
        "gflops": wl.flops_per_epoch / med_t / 1e9,
        "loss_before": loss_before, "loss_after": loss_after,
        "compile_s": runner.compile_s, "loadavg": [load_start, load_end],
        "rss_base_mib": rss_base, "rss_pre_fit_mib": rss_pre_fit, "peak_rss_mib": peak, "peak_is_fit_only": peak_reset,
        "footprint_mib": (peak - rss_base) if (peak is not None and rss_base is not None and peak_reset) else None,
        "estimate_mib": est["total"] / 2**20,
    }


def _worker_gemm(task: Dict[str, Any]) -> Dict[str, Any]:
    """NumPy's BLAS sgemm/dgemm at n³ (and pybackprop's own GEMM when the build
    exposes it), best and median GFLOP/s over ``min_time`` seconds each."""
    n, min_time, threads = task["n"], task["min_time"], task["threads"]
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        threadpool_limits(threads)
        blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads, "
                f"{i.get('architecture')})" for i in threadpool_info() if i.get("user_api") == "blas"]
    except ImportError:
        blas = []
    out: Dict[str, Any] = {"status": "ok", "n": n, "blas": blas, "numpy": np.__version__}

    def timeit(fn: Callable[[], None]) -> Dict[str, float]:
        fn()
        ts: List[float] = []
        start = time.perf_counter()
        while time.perf_counter() - start < min_time or len(ts) < 3:
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        flop = 2.0 * n ** 3
        return {"best": flop / min(ts) / 1e9, "median": flop / statistics.median(ts) / 1e9, "runs": len(ts)}

    mats = {}
    for dtype in ("float32", "float64"):
        r = np.random.default_rng(0)
        A = r.uniform(-1, 1, (n, n)).astype(dtype)
        B = r.uniform(-1, 1, (n, n)).astype(dtype)
        C = np.empty((n, n), dtype)
        mats[dtype] = (A, B, C)
        def numpy_gemm(A: np.ndarray = A, B: np.ndarray = B, C: np.ndarray = C) -> None:
            np.dot(A, B, out=C)

        out[f"numpy_{dtype}"] = timeit(numpy_gemm)
    if task.get("pybackprop", True):  # imported only after NumPy's timing
        try:
            import pybackprop as bp
            from pybackprop import _core

            bp.set_num_threads(threads)
            out["pybackprop_isa"] = bp.build_info().get("isa")
            core = getattr(_core, "_gemm", None)
        except ImportError:
            core = None
        if core is not None:
            for dtype, (A, B, C) in mats.items():
                C[...] = 0
                out[f"pybackprop_{dtype}"] = timeit(lambda: core("nn", A, B, C))
    return out


# --------------------------------------------------------------------------- driver


IMPORT_PROBE = r"""
import json, sys, time
def rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
r0 = rss(); t0 = time.perf_counter()
__import__(sys.argv[1])
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "rss_mib": rss(), "delta_mib": rss() - r0}))
"""


def measure_imports(modules: Sequence[str], runs: int = 3, timeout: float = 120) -> Dict[str, Any]:
    """``import`` wall time and RSS of each module, fresh interpreters, median of ``runs``."""
    out: Dict[str, Any] = {}
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = thread_env(1)
    env["PYTHONPATH"] = os.pathsep.join([p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
                                        + [pkg_parent])
    for mod in modules:
        if importlib.util.find_spec(mod) is None:
            out[mod] = {"status": "skipped", "note": f"{mod} is not installed"}
            continue
        recs = []
        for _ in range(runs):
            try:
                p = subprocess.run([sys.executable, "-c", IMPORT_PROBE, mod], env=env, capture_output=True,
                                   text=True, timeout=timeout)
                recs.append(json.loads(p.stdout.strip().splitlines()[-1]))
            except (subprocess.TimeoutExpired, IndexError, ValueError):
                pass
        if not recs:
            out[mod] = {"status": "error", "note": "import probe failed"}
            continue
        out[mod] = {"status": "ok", "seconds": statistics.median(r["seconds"] for r in recs),
                    "rss_mib": statistics.median(r["rss_mib"] for r in recs),
                    "delta_mib": statistics.median(r["delta_mib"] for r in recs)}
    return out


def machine_info() -> Dict[str, Any]:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    fl = line.split()
                    flags = " ".join(x for x in ("avx2", "fma", "avx512f") if x in fl)
                    break
    except OSError:
        pass
    return {"cpu": cpu, "isa_flags": flags, "cpus_allowed": len(_allowed_cpus()), "python": platform.python_version(),
            "platform": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "env_openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
            "env_openblas_l2_size": os.environ.get("OPENBLAS_L2_SIZE")}


def merge_rounds(recs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """One record from the rounds of a (workload, peer, threads): the timed epochs of
    every round pooled (median, min, max over all of them; GFLOP/s at their median
    time), the losses and compile time of the first round, the largest peak RSS. A
    round that failed makes the record its own."""
    bad = [r for r in recs if r.get("status") != "ok"]
    if bad:
        return {**bad[0], "rounds": len(recs)}
    first = recs[0]
    times = [t for r in recs for t in r["epoch_s"]]
    rates = [x for r in recs for x in r["samples_per_s"]]
    gflop_per_epoch = first["gflops"] * statistics.median(first["epoch_s"])

    def largest(key: str) -> Optional[float]:
        values = [r[key] for r in recs if r.get(key) is not None]
        return max(values) if values else None

    return {**first, "epoch_s": times, "samples_per_s": rates, "median": statistics.median(rates),
            "min": min(rates), "max": max(rates), "gflops": gflop_per_epoch / statistics.median(times),
            "peak_rss_mib": largest("peak_rss_mib"), "footprint_mib": largest("footprint_mib"),
            "wall_s": sum(r["wall_s"] for r in recs), "rounds": len(recs)}


def run_benchmarks(workloads: Sequence[str], peers: Sequence[Peer], threads: Sequence[int], warmup: int,
                   repeats: int, scale: float = 1.0, sys_path: Sequence[str] = (), timeout: float = 1800,
                   gemm: bool = True, imports: Sequence[str] = ("numpy", "pybackprop", "torch"),
                   log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
                   rounds: int = 1) -> Dict[str, Any]:
    """Measure every (workload, peer, threads) in its own process; returns the JSON record.
    With rounds > 1, the peers of a workload run in turn `rounds` times (each round in
    fresh processes) and each record pools its rounds' epochs (merge_rounds): a slow
    spell of a shared machine then falls on every peer rather than on one."""
    if rounds < 1:
        raise ValueError(f"rounds: expected an integer >= 1, got {rounds!r}")
    result: Dict[str, Any] = {
        "machine": machine_info(), "settings": {"warmup": warmup, "repeats": repeats, "samples_scale": scale,
                                                "threads": list(threads), "rounds": rounds},
        "workloads": {}, "gemm": {}, "imports": {}, "records": []}
    for name in workloads:
        wl = WORKLOADS[name].scaled(scale)
        result["workloads"][name] = {**asdict(wl), "describe": wl.describe(), "epoch_samples": wl.epoch_samples,
                                     "steps": wl.steps, "flops_per_epoch": wl.flops_per_epoch,
                                     "memory_estimate": memory_estimate(wl)}
    for n_threads in threads:
        if gemm:
            log(f"[bench] GEMM rate, {n_threads} thread(s)")
            result["gemm"][str(n_threads)] = _spawn({"kind": "gemm", "n": 2048, "min_time": 1.5,
                                                     "threads": n_threads}, n_threads, timeout)
        for name in workloads:
            wl = WORKLOADS[name].scaled(scale)
            runs: Dict[str, List[Dict[str, Any]]] = {peer.name: [] for peer in peers}
            for r in range(rounds):
                for peer in peers:
                    if peer.skip_reason(wl) is not None:
                        continue
                    log(f"[bench] {name} / {peer.name} / {n_threads} thread(s)"
                        + (f", round {r + 1} of {rounds}" if rounds > 1 else "") + " ...")
                    t0 = time.perf_counter()
                    rec = _spawn({"kind": "fit", "runner": peer.runner, "workload": asdict(wl),
                                  "threads": n_threads, "warmup": warmup, "repeats": repeats,
                                  "preload": list(peer.preload or peer.requires),
                                  "sys_path": list(sys_path)}, n_threads, timeout)
                    rec["wall_s"] = time.perf_counter() - t0
                    if rec["status"] == "ok":
                        log(f"[bench]   {_si(rec['median'])} samples/s "
                            f"(loss {rec['loss_before']:.6g} -> {rec['loss_after']:.6g}), {rec['wall_s']:.1f} s")
                    else:
                        log(f"[bench]   {rec['status']}: {rec.get('note')}")
                    runs[peer.name].append(rec)
            for peer in peers:
                rec = {"workload": name, "peer": peer.name, "threads": n_threads}
                reason = peer.skip_reason(wl)
                rec.update({"status": "skipped", "note": reason} if reason is not None else merge_rounds(runs[peer.name]))
                result["records"].append(rec)
    if imports:
        log("[bench] import costs")
        result["imports"] = measure_imports(imports)
    return result


# --------------------------------------------------------------------------- report


def _si(x: Optional[float]) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g}"


def _gemm_rate(result: Dict[str, Any], threads: int, dtype: str, who: str = "numpy") -> Optional[float]:
    g = result.get("gemm", {}).get(str(threads), {})
    r = g.get(f"{who}_{dtype}")
    return r["best"] if r else None


def format_report(result: Dict[str, Any], markdown: bool = False) -> str:
    """The tables: per workload, one row per (peer, threads)."""
    lines: List[str] = []
    m = result.get("machine", {})
    s = result.get("settings", {})
    lines.append(f"machine: {m.get('cpu')} ({m.get('isa_flags')}), {m.get('cpus_allowed')} CPUs allowed, "
                 f"Python {m.get('python')}; {m.get('date')}")
    rounds = s.get("rounds", 1)
    per_round = f" in each of {rounds} rounds (the peers in turn, each round in fresh processes)" if rounds > 1 else ""
    lines.append(f"settings: warm-up {s.get('warmup')} epoch(s), {s.get('repeats')} timed epochs{per_round}, "
                 f"samples scale {s.get('samples_scale')}; samples/s = median (min–max) over the timed epochs;"
                 f" ratio = pybackprop / peer at the same threads")
    versions: Dict[str, Any] = {}
    for r in result.get("records", []):
        if r.get("status") == "ok" and r.get("version"):
            versions.setdefault(r["peer"], r["version"])
    if versions:
        lines.append("versions: " + "; ".join(f"{p}: {v}" for p, v in versions.items()))
    if markdown:
        lines.append("")
    for n_threads, g in sorted(result.get("gemm", {}).items()):
        if g.get("status") != "ok":
            lines.append(f"GEMM {n_threads} thread(s): {g.get('status')}: {g.get('note')}")
            continue
        txt = (f"GEMM 2048³ at {n_threads} thread(s), GFLOP/s best (median): NumPy "
               f"sgemm {g['numpy_float32']['best']:.1f} ({g['numpy_float32']['median']:.1f}), "
               f"dgemm {g['numpy_float64']['best']:.1f} ({g['numpy_float64']['median']:.1f})")
        if "pybackprop_float32" in g:
            f32, f64 = g["pybackprop_float32"], g["pybackprop_float64"]
            txt += (f"; pybackprop [{g.get('pybackprop_isa')}] float32 {f32['best']:.1f} ({f32['median']:.1f}) "
                    f"= {f32['best'] / g['numpy_float32']['best']:.0%}, float64 {f64['best']:.1f} "
                    f"({f64['median']:.1f}) = {f64['best'] / g['numpy_float64']['best']:.0%} of OpenBLAS")
        lines.append(txt + (f"; BLAS: {g['blas'][0]}" if g.get("blas") else ""))
        if markdown:
            lines.append("")
    records = result.get("records", [])
    cpus = m.get("cpus_allowed") or 1
    for name, wdesc in result.get("workloads", {}).items():
        lines.append("")
        lines.append(f"### {name}: {wdesc['describe']}" if markdown else f"== {name}: {wdesc['describe']}")
        head = ["peer", "thr", "samples/s median (min–max)", "pbp/peer", "GFLOP/s", "of BLAS gemm",
                "loss_before → loss_after", "peak RSS (MiB)", "notes"]
        rows: List[List[str]] = []
        recs = [r for r in records if r["workload"] == name]
        notes_out: List[str] = []
        for r in sorted(recs, key=lambda r: (r["threads"], 0 if r["peer"] == "pybackprop" else 1)):
            if r["status"] != "ok":
                notes_out.append(f"[{r['threads']} thr] {r.get('note')}" if r["status"] == "error"
                                 else f"{r.get('note')}")
                continue
            ours = next((o for o in recs if o["peer"] == "pybackprop" and o["threads"] == r["threads"]
                         and o["status"] == "ok"), None)
            ratio = "—" if ours is None or r["peer"] == "pybackprop" else f"{ours['median'] / r['median']:.2f}×"
            frac = "—"
            if name in GEMM_BOUND:
                rate = _gemm_rate(result, r["threads"], wdesc["dtype"])
                if rate:
                    frac = f"{r['gflops'] / rate:.0%}"
            note = r.get("note") or ""
            load = [x for x in (r.get("loadavg") or []) if x is not None]
            if load and max(load) > cpus + 0.5:
                note = (note + "; " if note else "") + f"busy machine: load {max(load):.1f} on {cpus} CPUs"
            if r.get("compile_s") is not None:
                note = (note + "; " if note else "") + f"compile {r['compile_s']:.2f} s"
            rows.append([r["peer"], str(r["threads"]), f"{_si(r['median'])} ({_si(r['min'])}–{_si(r['max'])})",
                         ratio, f"{r['gflops']:.2f}", frac,
                         f"{r['loss_before']:.6g} → {r['loss_after']:.6g}",
                         "—" if r.get("peak_rss_mib") is None else f"{r['peak_rss_mib']:.0f}", note])
        lines.extend(_table(head, rows, markdown))
        for n in dict.fromkeys(notes_out):
            lines.append(f"{'- ' if markdown else '  '}{n}")
        mem = [r for r in recs if r["peer"] == "pybackprop" and r["status"] == "ok" and r.get("footprint_mib")]
        for r in mem:
            lines.append(f"{'- ' if markdown else '  '}memory, pybackprop [{r['threads']} thr]: peak RSS of fit "
                         f"{r['peak_rss_mib']:.1f} MiB = {r['rss_base_mib']:.1f} after imports + "
                         f"{r['footprint_mib']:.1f} (data, model, fit"
                         + (f", of which {r['peak_rss_mib'] - r['rss_pre_fit_mib']:.1f} added by fit itself"
                            if r.get("rss_pre_fit_mib") is not None else "")
                         + f"); needed (data + parameters + gradients + "
                         f"optimiser state + one batch of activations) {r['estimate_mib']:.2f} MiB; ratio "
                         f"{r['footprint_mib'] / r['estimate_mib']:.2f}"
                         + (" (a network this small is dwarfed by allocator, thread-stack and code pages)"
                            if r["estimate_mib"] < 8 else ""))
    imports = result.get("imports") or {}
    if imports:
        lines.append("")
        lines.append("### import cost (fresh interpreter, median of 3)" if markdown else "== import cost")
        rows = []
        for mod, r in imports.items():
            if r.get("status") != "ok":
                rows.append([mod, "—", "—", "—", r.get("note", "")])
            else:
                rows.append([mod, f"{r['seconds']:.2f}", f"{r['rss_mib']:.0f}", f"{r['delta_mib']:.0f}", ""])
        lines.extend(_table(["module", "import s", "RSS after (MiB)", "RSS added (MiB)", "notes"], rows, markdown))
    return "\n".join(lines)


def _table(head: List[str], rows: List[List[str]], markdown: bool) -> List[str]:
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        out += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
        return out
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [fmt(head)] + [fmt(r) for r in rows]


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser, peers: Dict[str, Peer]) -> None:
    """The options shared by ``pybackprop bench`` and benchmarks/python/run.py."""
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), metavar="NAME",
                        help=f"workloads to run (default: all; --quick: {', '.join(QUICK_WORKLOADS)}); "
                             f"choices: {', '.join(WORKLOADS)}")
    parser.add_argument("--peers", nargs="+", choices=list(peers), metavar="PEER",
                        help=f"libraries to measure (default: all installed); choices: {', '.join(peers)}")
    parser.add_argument("--threads", nargs="+", type=int, metavar="N",
                        help="thread counts (default: 1 2; --quick: 1)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed epochs first (default 1)")
    parser.add_argument("--repeats", type=int, default=None, help="timed epochs (default 5; --quick: 3)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the peers of each workload in turn this many times, pooling each peer's "
                             "timed epochs, so a slow spell of a shared machine falls on all of them (default 1)")
    parser.add_argument("--quick", action="store_true",
                        help="a subset in under a minute: seed-sgd, seed-minibatch, small on a fifth of the "
                             "samples, one thread, 3 timed epochs")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--no-gemm", action="store_true", help="skip the NumPy/OpenBLAS GEMM rate")
    parser.add_argument("--no-imports", action="store_true", help="skip the import-cost measurement")
    parser.add_argument("--samples-scale", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=1800, help=argparse.SUPPRESS)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to ``pybackprop``'s subparsers."""
    p = subparsers.add_parser("bench", help="training speed against the NumPy reference and PyTorch",
                              description="Samples/s of training on the workloads of WORKLOADS.md: pybackprop "
                                          "against its NumPy reference and PyTorch eager (where installed), "
                                          "each in its own process. The repository's benchmarks/python/run.py "
                                          "adds JAX, NumPy by hand and scikit-learn.")
    add_arguments(p, PEERS)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace, peers: Optional[Dict[str, Peer]] = None, sys_path: Sequence[str] = (),
        imports: Sequence[str] = ("numpy", "pybackprop", "torch")) -> int:
    """Run ``pybackprop bench`` (or benchmarks/python/run.py with more peers)."""
    peers = PEERS if peers is None else peers
    quick = bool(getattr(args, "quick", False))
    workloads = args.workloads or (list(QUICK_WORKLOADS) if quick else list(WORKLOADS))
    chosen = [peers[p] for p in (args.peers or list(peers))]
    threads = args.threads or ([1] if quick else [1, 2])
    if any(t < 1 for t in threads):
        print("--threads: expected integers >= 1", file=sys.stderr)
        return 2
    warmup = 1 if args.warmup is None else args.warmup
    repeats = (3 if quick else 5) if args.repeats is None else args.repeats
    rounds = getattr(args, "rounds", 1)
    if warmup < 0 or repeats < 1 or rounds < 1:
        print("--warmup must be >= 0, --repeats and --rounds >= 1", file=sys.stderr)
        return 2
    scale = args.samples_scale if args.samples_scale is not None else (0.2 if quick else 1.0)
    result = run_benchmarks(workloads, chosen, threads, warmup, repeats, scale=scale, sys_path=sys_path,
                            timeout=args.timeout, gemm=not args.no_gemm,
                            imports=() if args.no_imports else imports, rounds=rounds)
    print(format_report(result, markdown=bool(getattr(args, "markdown", False))))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"\nresults written to {args.json}")
    bad = [r for r in result["records"] if r["status"] == "error"]
    return 1 if bad else 0


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m pybackprop.bench`` (the same options as ``pybackprop bench``)."""
    parser = argparse.ArgumentParser(prog="pybackprop bench")
    add_arguments(parser, PEERS)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
