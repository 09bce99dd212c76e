"""Samples/s of `fit` on the textbook network with batch size 1 (stochastic
gradient descent): pybackprop's C++ core against its own NumPy reference,
measured in the same run.

    python benchmarks/python/textbook_sgd.py [--samples 10000] [--repeats 5]

The workload is WORKLOADS.md's `seed-sgd`: 3 -> 4 ReLU -> 4 sigmoid -> 1
identity, no bias, MSE, SGD lr 0.01, batch 1, float32, no shuffling.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import time

import numpy as np

import pybackprop as bp
from pybackprop import reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--reference-samples", type=int, default=2_000,
                        help="the NumPy reference is slow: time it on fewer samples")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.samples, 3)).astype(np.float32)
    y = np.tanh(X @ rng.normal(size=(3, 1))).astype(np.float32)
    model = bp.Sequential([bp.Dense(4, activation="relu", use_bias=False),
                           bp.Dense(4, activation="sigmoid", use_bias=False),
                           bp.Dense(1, use_bias=False)], input_dim=3, seed=0)
    model.compile(loss="mse", optimizer=bp.SGD(lr=0.01))
    ref = reference.Network.from_config(model.get_config(), model.get_weights())

    def rate(fit, n: int) -> list:
        fit()  # warm-up
        out = []
        for _ in range(args.repeats):
            gc.collect()
            t = time.perf_counter()
            fit()
            out.append(n / (time.perf_counter() - t))
        return out

    core = rate(lambda: model.fit(X, y, epochs=1, batch_size=1, shuffle=False, verbose=0), args.samples)
    Xr, yr = X[:args.reference_samples], y[:args.reference_samples]
    numpy_ref = rate(lambda: ref.fit(Xr, yr, epochs=1, batch_size=1, shuffle=False), args.reference_samples)
    for name, r in (("pybackprop core", core), ("NumPy reference", numpy_ref)):
        print(f"{name:16s} median {statistics.median(r):12,.0f} samples/s  "
              f"(min {min(r):,.0f}, max {max(r):,.0f}, {args.repeats} repeats)")
    print(f"ratio core / reference: {statistics.median(core) / statistics.median(numpy_ref):,.0f}x")


if __name__ == "__main__":
    main()
