"""Prints the GEMM GFLOP/s of pybackprop_bench's JSON results next to NumPy's
OpenBLAS sgemm/dgemm (np.dot) at the same square sizes and thread counts,
timed now, in a fresh process per thread count (OPENBLAS_NUM_THREADS is read
at load). Called by run.sh; usable alone after a run:

    python benchmarks/cpp/compare_openblas.py --threads 1 2 --results build/bench
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

# Best-of timing of np.dot(A, B, out=C) per (dtype, n); prints JSON.
NUMPY_TIMER = r"""
import json, sys, time
import numpy as np
out = {}
for dtype in ("float32", "float64"):
    for n in [int(s) for s in sys.argv[1].split(",")]:
        r = np.random.default_rng(0)
        A = r.uniform(-1, 1, (n, n)).astype(dtype); B = r.uniform(-1, 1, (n, n)).astype(dtype)
        C = np.empty((n, n), dtype)
        np.dot(A, B, out=C)
        best, start = float("inf"), time.perf_counter()
        while time.perf_counter() - start < float(sys.argv[2]) or best == float("inf"):
            t = time.perf_counter(); np.dot(A, B, out=C); best = min(best, time.perf_counter() - t)
        out[f"{dtype}/{n}"] = 2.0 * n ** 3 / best / 1e9
print(json.dumps(out))
"""


def openblas(threads: int, sizes: list, min_time: float) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    res = subprocess.run([sys.executable, "-c", NUMPY_TIMER, ",".join(map(str, sizes)), str(min_time)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


def ours(path: Path) -> dict:
    """{(dtype, isa, op, n): GFLOP/s} from a Google Benchmark JSON file, the
    best of the repetitions (NumPy's side is a best time too)."""
    out: dict = {}
    for b in json.loads(path.read_text())["benchmarks"]:
        parts = b.get("run_name", b["name"]).split("/")
        if (parts[0] != "gemm" or b.get("run_type", "iteration") != "iteration"
                or "GFLOP/s" not in b or b.get("error_occurred")):
            continue
        _, dtype, isa, op, n = parts
        key = (dtype, isa, op, int(n))
        out[key] = max(out.get(key, 0.0), b["GFLOP/s"])  # the rate counter is already in GFLOP/s
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--results", type=Path, default=Path("build/bench"))
    p.add_argument("--min-time", type=float, default=0.5)
    args = p.parse_args()
    for t in args.threads:
        path = args.results / f"results-t{t}.json"
        if not path.exists():
            print(f"{path}: missing (run run.sh first)")
            continue
        mine = ours(path)
        sizes = sorted({n for (_, _, _, n) in mine})
        if not sizes:
            print(f"threads={t}: no GEMM results in {path}")
            continue
        ref = openblas(t, sizes, args.min_time)
        cols = defaultdict(set)
        for (dtype, isa, op, _n) in mine:
            cols[dtype].add((isa, op))
        for dtype, np_dtype in (("f32", "float32"), ("f64", "float64")):
            keys = sorted(k for k in cols[dtype] if k[0] != "reference")
            if not keys:
                continue
            print(f"\nthreads={t}  {np_dtype}: GFLOP/s (ratio to OpenBLAS in brackets)")
            header = f"{'n':>6} {'OpenBLAS':>9} " + " ".join(f"{i + '/' + o:>17}" for i, o in keys)
            print(header)
            for n in sizes:
                base = ref[f"{np_dtype}/{n}"]
                cells = []
                for isa, op in keys:
                    g = mine.get((dtype, isa, op, n))
                    cells.append(f"{g:8.1f} ({g / base:5.1%})" if g else f"{'-':>17}")
                print(f"{n:>6} {base:9.1f} " + " ".join(f"{c:>17}" for c in cells))


if __name__ == "__main__":
    main()
