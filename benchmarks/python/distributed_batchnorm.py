"""Milliseconds per data-parallel training step of a BatchNorm network over MPI.

    mpiexec -n 2 python benchmarks/python/distributed_batchnorm.py [--steps 60] [--repeats 3]
                                                                     [--per-rank 128] [--dtype float32]

784-256-BN-256-BN-10 (relu, softmax + cross-entropy, SGD with momentum), 1 core thread per
rank, ``--per-rank`` rows of each global batch per rank, random data. One warm-up epoch, then
``--repeats`` epochs of ``--steps`` steps, each a separate ``fit``. Rank 0 prints the median over
the epochs of: the whole step; BatchNorm's collectives (``timings["stats"]``, 0 where the trainer
counts them with the gradient's); and all collectives (``"allreduce"`` + ``"stats"``).
"""
from __future__ import annotations

import argparse
import statistics

import numpy as np

import pybackprop as bp
from pybackprop.distributed import DistributedTrainer

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=60)
parser.add_argument("--repeats", type=int, default=3)
parser.add_argument("--per-rank", type=int, default=128)
parser.add_argument("--dtype", default="float32")
args = parser.parse_args()

model = bp.Sequential([bp.Dense(256, activation="relu"), bp.BatchNorm(), bp.Dense(256, activation="relu"),
                       bp.BatchNorm(), bp.Dense(10, activation="softmax")], input_dim=784, dtype=args.dtype, seed=0)
model.compile(loss="categorical_crossentropy", optimizer=bp.SGD(lr=0.01, momentum=0.9))
trainer = DistributedTrainer(model, num_threads=1)
batch = args.per_rank * trainer.size
rng = np.random.default_rng(0)
X = rng.normal(size=(batch * args.steps, 784)).astype(args.dtype)
y = np.eye(10, dtype=args.dtype)[rng.integers(0, 10, size=X.shape[0])]

trainer.fit(X, y, epochs=1, batch_size=batch, verbose=0)  # warm-up
step, stats, collectives = [], [], []
for _ in range(args.repeats):
    trainer.fit(X, y, epochs=1, batch_size=batch, verbose=0)
    t = trainer.timings
    step.append(1e3 * t["epochs"] / t["steps"])
    stats.append(1e3 * t.get("stats", 0.0) / t["steps"])
    collectives.append(1e3 * (t["allreduce"] + t.get("stats", 0.0)) / t["steps"])
if trainer.is_root:
    print(f"{trainer.size} ranks, batch {batch}: step {statistics.median(step):.3f} ms "
          f"(epochs: {' '.join(f'{v:.3f}' for v in step)}), BatchNorm collectives "
          f"{statistics.median(stats):.3f} ms, all collectives {statistics.median(collectives):.3f} ms")
