"""Data-parallel training over MPI: the same script on every rank.

    mpiexec -n 2 python examples/mpi_train.py [--epochs 5] [--samples 20000] [--width 256]
                                              [--batch-size 256] [--checkpoint model.pbp] [--check]
                                              [--profile] [--threads N] [--dtype float64]
                                              [--sharded] [--layout per_rank] [--no-shuffle]

Every rank builds the same model (same seed) and the same synthetic data set,
then ``fit_distributed`` splits each global batch across the ranks, sums the
gradients with one MPI Allreduce per step and applies the same update on every
rank. Rank 0 prints progress, writes the checkpoint and prints the timings:
compute (forward + backward of this rank's rows), allreduce (including waiting
for the slowest rank, unless ``--profile`` times that wait separately at a
barrier) and update. ``--check`` also trains the same model in
one process on rank 0 and prints the largest weight difference.

``--sharded`` gives each rank only its contiguous part of the data set (rank r
the r-th of N equal slices), as a job whose data had to be split would;
``--layout per_rank`` then makes each step take every rank's next local batch
(``fit_distributed(layout="per_rank")``) instead of the batches of the shards
concatenated, which with ``--no-shuffle`` fall on one rank at a time.

Run with one rank (``mpiexec -n 1`` or plain ``python``) to get the baseline
time per epoch. See docs/distributed.md for running across hosts.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import pybackprop as bp
from pybackprop.distributed import DistributedTrainer


def make_data(samples: int, features: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(samples, features))
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2] - 0.5 * X[:, 3] ** 2 + 0.1 * rng.normal(size=samples)
    return X, y


def make_model(features: int, width: int, dtype: str) -> bp.Sequential:
    model = bp.Sequential([bp.Dense(width, activation="relu", init="he_normal"),
                           bp.Dense(width, activation="relu", init="he_normal"),
                           bp.Dense(1)], input_dim=features, dtype=dtype, seed=0)
    model.compile(loss="mse", optimizer=bp.Adam(lr=1e-3))
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=None, help="core threads per rank (default: auto)")
    parser.add_argument("--checkpoint", default=None, help="file rank 0 saves after every epoch")
    parser.add_argument("--check", action="store_true", help="compare with a single-process fit on rank 0")
    parser.add_argument("--sharded", action="store_true", help="each rank holds only its slice of the data")
    parser.add_argument("--layout", default="global", choices=["global", "per_rank"],
                        help="how the ranks share the steps (fit_distributed's layout; per_rank needs --sharded)")
    parser.add_argument("--no-shuffle", action="store_true", help="fit with shuffle=False")
    parser.add_argument("--profile", action="store_true",
                        help="a Barrier before each Allreduce, to time waiting apart from communicating")
    args = parser.parse_args()
    if args.check and args.sharded:
        parser.error("--check compares with one process on the whole data set: not with --sharded")

    X, y = make_data(args.samples, args.features)
    model = make_model(args.features, args.width, args.dtype)
    trainer = DistributedTrainer(model, num_threads=args.threads or "auto", profile=args.profile)
    callbacks = [bp.ModelCheckpoint(args.checkpoint, monitor="loss")] if args.checkpoint else []
    if trainer.is_root:
        print(f"{trainer.size} rank(s), {bp.get_num_threads()} core thread(s) per rank, "
              f"{model.count_params()} parameters, global batch {args.batch_size}"
              + (f", sharded, layout {args.layout}" if args.sharded else ""))
    if args.sharded:
        lo, hi = trainer.rank * len(X) // trainer.size, (trainer.rank + 1) * len(X) // trainer.size
        X, y = X[lo:hi], y[lo:hi]
    history = trainer.fit(X, y, epochs=args.epochs, batch_size=args.batch_size, callbacks=callbacks,
                          verbose=1, sharded=args.sharded, layout=args.layout, shuffle=not args.no_shuffle)
    if trainer.is_root:
        assert history is not None
        t = trainer.timings
        steps = max(t["steps"], 1)
        step = t["compute"] + t["wait"] + t["allreduce"] + t["update"]
        wait = f"wait {1e3 * t['wait'] / steps:.3f} ms, " if args.profile else ""
        print(f"time per epoch: {t['epochs'] / max(args.epochs, 1):.4f} s; per step: compute "
              f"{1e3 * t['compute'] / steps:.3f} ms, {wait}allreduce {1e3 * t['allreduce'] / steps:.3f} ms, "
              f"update {1e3 * t['update'] / steps:.3f} ms; allreduce share of the step "
              f"{t['allreduce'] / max(step, 1e-12):.1%}")
        print(f"final loss: {history.history['loss'][-1]:.6g}")
        if args.check:
            single = make_model(args.features, args.width, args.dtype)
            start = time.perf_counter()
            single.fit(X, y, epochs=args.epochs, batch_size=args.batch_size, verbose=0)
            elapsed = time.perf_counter() - start
            diff = max(float(np.max(np.abs(a - b))) for a, b in zip(model.get_weights(), single.get_weights()))
            print(f"single-process fit: {elapsed / max(args.epochs, 1):.4f} s per epoch; "
                  f"largest weight difference {diff:.3g}")


if __name__ == "__main__":
    main()
