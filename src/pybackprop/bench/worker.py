"""One task in a fresh interpreter, both ends of the wire: :func:`spawn` starts
the worker (thread variables set, pinned to its CPUs) and reads back its
record; :func:`main` runs in the worker and does the task: ``"fit"`` (time a
peer's epochs, its losses and peak RSS), ``"gemm"`` (the BLAS rate) or
``"predict"`` (a peer's inference, :func:`~pybackprop.bench.inference.predict_task`).

The worker loads this ``pybackprop.bench`` package by its file alone, not the
``pybackprop`` package around it, so that a peer's process holds only that
peer's libraries (no pybackprop OpenMP runtime inside the torch process, no
pybackprop pages in its RSS). Its record comes back as the last stdout line
starting with :data:`MARK`, as JSON.
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List

import numpy as np

from .peers import Context, PeerUnavailable, Runner
from .process import child_env, loadavg, peak_rss_mib, pin, reset_peak_rss, rss_mib
from .workloads import Workload, init_weights, make_data, memory_estimate

__all__ = ["spawn", "main", "fit", "gemm", "MARK"]

MARK = "@@pybackprop-bench@@ "
"""The prefix of the worker's record line on stdout."""

_BENCH_INIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__init__.py")
# The worker's bootstrap: this package from its file, as ``pybackprop.bench``, without ``pybackprop``.
_BOOT = ("import importlib, importlib.util, os, sys; "
         "spec = importlib.util.spec_from_file_location('pybackprop.bench', sys.argv[1], "
         "submodule_search_locations=[os.path.dirname(sys.argv[1])]); "
         "m = importlib.util.module_from_spec(spec); sys.modules['pybackprop.bench'] = m; "
         "spec.loader.exec_module(m); importlib.import_module('pybackprop.bench.worker').main()")


def spawn(task: Dict[str, Any], threads: int, timeout: float) -> Dict[str, Any]:
    """Run ``task`` in a fresh interpreter pinned to ``threads`` CPUs.

    Parameters
    ----------
    task : dict
        JSON-able: ``kind`` (``"fit"`` or ``"gemm"``), what that kind reads
        (see :func:`fit`, :func:`gemm`), and optionally ``sys_path``, the
        directories the worker searches first for the runner's module.
    threads : int
        The worker's thread count (its environment and its CPUs).
    timeout : float
        Seconds before the worker is killed and the record says so.

    Returns
    -------
    dict
        The worker's record; ``status`` is ``"ok"``, ``"skipped"`` (the peer
        raised :class:`~pybackprop.bench.peers.PeerUnavailable`) or
        ``"error"``, with a ``note``. A worker that failed because the compiled
        core was being rebuilt (a development tree) is retried after 20 s, up
        to three times.
    """
    env = child_env(threads, task.get("sys_path", []))
    out: Dict[str, Any] = {}
    for attempt in range(4):
        try:
            proc = subprocess.run([sys.executable, "-c", _BOOT, _BENCH_INIT, json.dumps(task)], env=env,
                                  capture_output=True, text=True, timeout=timeout,
                                  preexec_fn=pin(threads) if os.name == "posix" else None)
        except subprocess.TimeoutExpired:
            return {"status": "error", "note": f"timed out after {timeout:.0f} s"}
        out = {}
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith(MARK):
                out = json.loads(line[len(MARK):])
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


def main() -> None:
    """The worker's entry: run the task of ``sys.argv[2]`` and print its record."""
    task = json.loads(sys.argv[2])
    kind = task["kind"]
    try:
        if kind == "fit":
            out = fit(task)
        elif kind == "gemm":
            out = gemm(task)
        elif kind == "predict":
            from .inference import predict_task

            out = predict_task(task)
        else:
            raise ValueError(f"unknown task kind {kind}")
    except PeerUnavailable as exc:
        out = {"status": "skipped", "note": str(exc)}
    except Exception as exc:  # noqa: BLE001 - reported in the table, never hidden
        out = {"status": "error", "note": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(MARK + json.dumps(out) + "\n")
    sys.stdout.flush()


def load_runner(spec: str) -> Callable[[Context], Runner]:
    """The setup function named by ``"module:function"``."""
    module, _, func = spec.partition(":")
    return getattr(importlib.import_module(module), func)  # type: ignore[no-any-return]


def fit(task: Dict[str, Any]) -> Dict[str, Any]:
    """Time a peer's training: warm-up epochs, then ``repeats`` timed ones.

    Parameters
    ----------
    task : dict
        ``runner`` (``"module:function"``), ``workload`` (``asdict`` of a
        :class:`~pybackprop.bench.workloads.Workload`), ``threads``,
        ``warmup``, ``repeats``, and ``preload``: modules imported before the
        baseline RSS is read.

    Returns
    -------
    dict
        ``status`` ``"ok"``; ``epoch_s`` and ``samples_per_s`` per timed epoch
        and the rate's ``median``, ``min``, ``max``; ``gflops`` at the median
        time; ``loss_before`` and ``loss_after`` (full data, no dropout);
        ``compile_s``; the 1-minute ``loadavg`` at start and end; the RSS after
        the imports (``rss_base_mib``), before ``fit`` (``rss_pre_fit_mib``),
        its peak during the epochs (``peak_rss_mib``, ``peak_is_fit_only``),
        ``footprint_mib`` (peak minus base) and ``estimate_mib`` (what training
        must hold, :func:`~pybackprop.bench.workloads.memory_estimate`); the
        runner's ``version`` and the context's notes as ``note``.
    """
    wl = Workload.from_dict(task["workload"])
    threads, warmup, repeats = task["threads"], task["warmup"], task["repeats"]
    for mod in task.get("preload", []):
        importlib.import_module(mod)
    setup = load_runner(task["runner"])  # imports the peer's library
    rss_base = rss_mib()
    load_start = loadavg()
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
    load_end = loadavg()
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


def gemm(task: Dict[str, Any]) -> Dict[str, Any]:
    """NumPy's BLAS sgemm/dgemm at n³ (and pybackprop's own GEMM when the build
    exposes it), best and median GFLOP/s over ``min_time`` seconds each.

    Parameters
    ----------
    task : dict
        ``n``, ``min_time`` (seconds per measurement), ``threads``, and
        ``pybackprop`` (default True: also time pybackprop's GEMM, imported
        only after NumPy's timing).

    Returns
    -------
    dict
        ``numpy_float32``, ``numpy_float64`` (and ``pybackprop_float32``,
        ``pybackprop_float64``, ``pybackprop_isa``), each ``{"best", "median",
        "runs"}`` in GFLOP/s; ``blas``: threadpoolctl's description of the
        BLAS libraries (empty without threadpoolctl).
    """
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
            core: Any = _core._testing.gemm  # the test hooks' GEMM: the kernel table's own product
        except ImportError:
            core = None
        if core is not None:
            for dtype, (A, B, C) in mats.items():
                C[...] = 0
                out[f"pybackprop_{dtype}"] = timeit(lambda: core("nn", A, B, C))
    return out
