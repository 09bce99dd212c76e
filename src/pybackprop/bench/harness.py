"""The schedule of a benchmark run: every (workload, peer, threads) in its own
worker process (:func:`~pybackprop.bench.worker.spawn`), the peers of a
workload in turn, ``rounds`` times; the GEMM rate and the import costs in the
same run; one JSON-able record of it all (:func:`run_benchmarks`).
"""
from __future__ import annotations

import statistics
import sys
import time
from dataclasses import asdict
from typing import Any, Callable, Dict, List, Optional, Sequence

from .peers import Peer
from .probe import measure_imports
from .process import machine_info
from .report import si
from .worker import spawn
from .workloads import WORKLOADS, memory_estimate

__all__ = ["run_benchmarks", "merge_rounds"]


def merge_rounds(recs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """One record from the rounds of a (workload, peer, threads).

    The timed epochs of every round pooled (median, min, max over all of them;
    GFLOP/s at their median time), the losses and compile time of the first
    round, the largest peak RSS, the rounds' wall times summed. A round that
    failed makes the record its own.

    Parameters
    ----------
    recs : sequence of dict
        The rounds' records of :func:`~pybackprop.bench.worker.fit`, each with
        its ``wall_s``.

    Returns
    -------
    dict
        The pooled record, with ``rounds``: how many were merged.

    Examples
    --------
    >>> one = {"status": "ok", "epoch_s": [1.0], "samples_per_s": [10.0], "gflops": 2.0, "wall_s": 3.0}
    >>> two = {**one, "epoch_s": [0.5], "samples_per_s": [20.0]}
    >>> m = merge_rounds([one, two])
    >>> m["samples_per_s"], m["median"], m["wall_s"], m["rounds"]
    ([10.0, 20.0], 15.0, 6.0, 2)
    """
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
    """Measure every (workload, peer, threads) in its own process.

    With ``rounds > 1``, the peers of a workload run in turn ``rounds`` times
    (each round in fresh processes) and each record pools its rounds' epochs
    (:func:`merge_rounds`): a slow spell of a shared machine then falls on
    every peer rather than on one.

    Parameters
    ----------
    workloads : sequence of str
        Names of :data:`~pybackprop.bench.workloads.WORKLOADS`.
    peers : sequence of Peer
        The peers; one that does not apply or is not installed gets a
        ``"skipped"`` record with its reason.
    threads : sequence of int
        Thread counts, each >= 1.
    warmup : int
        Untimed epochs first.
    repeats : int
        Timed epochs per round.
    scale : float
        The workloads on this fraction of their samples (``Workload.scaled``).
    sys_path : sequence of str
        Directories the workers search first for the runners' modules.
    timeout : float
        Seconds per worker.
    gemm : bool
        Also measure the BLAS GEMM rate at each thread count.
    imports : sequence of str
        Modules whose import cost is measured (empty: none).
    log : callable
        Receives the progress lines (default: stderr).
    rounds : int
        Rounds of the peers in turn, >= 1.

    Returns
    -------
    dict
        The JSON-able record: ``machine``, ``settings``, ``workloads`` (each
        described, with its FLOPs and memory estimate), ``gemm`` (per thread
        count), ``imports`` and ``records``: one per (workload, peer, threads).

    Raises
    ------
    ValueError
        If ``rounds < 1``.
    """
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
            result["gemm"][str(n_threads)] = spawn({"kind": "gemm", "n": 2048, "min_time": 1.5,
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
                    rec = spawn({"kind": "fit", "runner": peer.runner, "workload": asdict(wl),
                                  "threads": n_threads, "warmup": warmup, "repeats": repeats,
                                  "preload": list(peer.preload or peer.requires),
                                  "sys_path": list(sys_path)}, n_threads, timeout)
                    rec["wall_s"] = time.perf_counter() - t0
                    if rec["status"] == "ok":
                        log(f"[bench]   {si(rec['median'])} samples/s "
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
