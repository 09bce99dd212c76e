"""End-to-end training benchmarks: pybackprop against PyTorch eager, JAX
(jitted step and jitted epoch scan), NumPy by hand, pybackprop's NumPy
reference and scikit-learn, on the six workloads of WORKLOADS.md.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src \\
        python benchmarks/python/run.py --threads 1 2 --json results.json

Each (workload, peer, threads) runs in a fresh interpreter with
OMP/MKL/OPENBLAS_NUM_THREADS and the CPU affinity set before any numerical
import (and XLA_FLAGS=--xla_cpu_multi_thread_eigen=false at one thread); a peer
that is not installed is skipped with a note. Printed per workload: samples/s
median (min–max) over the timed epochs, the ratio pybackprop/peer at the same
thread count, GFLOP/s and its fraction of NumPy's OpenBLAS sgemm/dgemm rate
(2048³, best of 1.5 s, measured in the same run), loss_before → loss_after (the
sanity check: identical math agrees to ~6 digits), peak RSS of the fits; then
the import time and RSS of numpy, pybackprop, torch and jax.

The harness, the workload table and the pybackprop / reference / torch runners
live in the ``pybackprop.bench`` package (also behind ``pybackprop bench``); the
runners of JAX, NumPy by hand, scikit-learn and FANN (C, the tiny network only)
are the ``peer_*.py`` files next to this one, each a ``setup(ctx) -> Runner``
on the contract of ``pybackprop.bench.peers``.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from pybackprop.bench.cli import add_arguments, run  # noqa: E402
from pybackprop.bench.peers import PEERS as PACKAGE_PEERS  # noqa: E402
from pybackprop.bench.peers import Peer  # noqa: E402

_JAX = dict(requires=("jax",), preload=("jax", "jax.numpy"), install="pip install jax jaxlib")
PEERS: Dict[str, Peer] = {
    "pybackprop": PACKAGE_PEERS["pybackprop"],
    "torch": PACKAGE_PEERS["torch"],
    "jax-step": Peer("jax-step", "peer_jax:setup_step", **_JAX),  # type: ignore[arg-type]
    "jax-scan": Peer("jax-scan", "peer_jax:setup_scan", **_JAX),  # type: ignore[arg-type]
    "numpy": Peer("numpy", "peer_numpy:setup"),
    "reference": PACKAGE_PEERS["reference"],
    "sklearn": Peer("sklearn", "peer_sklearn:setup", requires=("sklearn",), preload=("sklearn.neural_network",),
                    install="pip install scikit-learn threadpoolctl"),
    "fann": Peer("fann", "peer_fann:setup", workloads=("seed-sgd",), install="apt-get install libfann-dev"),
}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, PEERS)
    args = parser.parse_args(argv)
    return run(args, peers=PEERS, sys_path=[HERE], imports=("numpy", "pybackprop", "torch", "jax"))


if __name__ == "__main__":
    sys.exit(main())
