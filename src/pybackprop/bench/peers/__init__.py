"""The peers: the contract every runner keeps, and the table of the ones the
package can measure on its own.

A runner is a function ``setup(ctx: Context) -> Runner``: :class:`Context`
carries the workload, the data, the initial weights and the thread count; the
:class:`Runner`'s ``epoch()`` trains one epoch (all full batches, in order,
blocking until done) and its ``loss()`` returns the full-data loss without
dropout. A setup whose library is missing or cannot express the workload
raises :class:`PeerUnavailable`; the record then says why.

The package's own runners are one module each, named after the peer:
``peers/pybackprop.py``, ``peers/reference.py``, ``peers/torch.py``, each with
its ``setup``. The repository's ``benchmarks/python/peer_*.py`` add JAX,
NumPy by hand, scikit-learn and FANN, importing this contract from here.

>>> from pybackprop.bench.workloads import WORKLOADS
>>> PEERS["reference"].skip_reason(WORKLOADS["wide"])
'reference: not run on wide (only on seed-sgd, seed-minibatch, small)'
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ..workloads import QUICK_WORKLOADS, InitWeights, Workload

__all__ = ["PeerUnavailable", "Context", "Runner", "Peer", "PEERS", "limit_blas_threads"]


class PeerUnavailable(Exception):
    """Raised by a runner's setup when its library is missing or does not apply."""


@dataclass
class Context:
    """What a runner's setup receives.

    Parameters
    ----------
    workload : Workload
        The workload to train.
    X : ndarray, shape (n, n_in)
        The data of :func:`~pybackprop.bench.workloads.make_data`, in the
        workload's dtype.
    Y : ndarray
        Its targets: (n, n_out) in the workload's dtype, or (n,) int64 labels.
    init : list of (ndarray, ndarray or None)
        The initial weights of :func:`~pybackprop.bench.workloads.init_weights`
        (emptied after the setup: copy what you keep).
    threads : int
        The thread count to train on.
    notes : list of str
        What the record should say about this run (an approximation, a
        missing helper); joined into its ``note``.
    """

    workload: Workload
    X: np.ndarray  # (n, n_in), workload dtype
    Y: np.ndarray  # (n, n_out) workload dtype, or (n,) int64 labels
    init: InitWeights
    threads: int
    notes: List[str] = field(default_factory=list)

    @property
    def n_epoch(self) -> int:
        """Samples of an epoch (the workload's drop-last prefix)."""
        return self.workload.epoch_samples


@dataclass
class Runner:
    """What a runner's setup returns.

    Parameters
    ----------
    epoch : callable
        Trains one epoch, blocking until done.
    loss : callable
        The full-data loss without dropout, a float.
    compile_s : float or None
        Seconds of compilation the setup spent (JIT peers), reported apart.
    version : str
        The library's version, for the report.
    """

    epoch: Callable[[], None]
    loss: Callable[[], float]
    compile_s: Optional[float] = None
    version: str = ""


@dataclass(frozen=True)
class Peer:
    """A library to measure.

    Parameters
    ----------
    name : str
        The peer's name in the report and on the command line.
    runner : str
        ``"module:function"``, the setup; imported in the worker process only.
    requires : tuple of str
        Modules that must be importable (else the peer is skipped with a note).
    workloads : tuple of str or None
        The workloads it runs (None: all).
    install : str
        How to install what it requires, for the skip note.
    preload : tuple of str
        Modules imported before the baseline RSS is read (default: ``requires``).

    Examples
    --------
    >>> from pybackprop.bench.workloads import WORKLOADS
    >>> ghost = Peer("ghost", "ghost:setup", requires=("ghost_lib_xyz",), install="pip install ghost")
    >>> ghost.skip_reason(WORKLOADS["small"])
    'ghost: skipped, ghost_lib_xyz is not installed (pip install ghost)'
    """

    name: str
    runner: str
    requires: Tuple[str, ...] = ()
    workloads: Optional[Tuple[str, ...]] = None
    install: str = ""
    preload: Tuple[str, ...] = ()  # imported before the baseline RSS (default: requires)

    def skip_reason(self, wl: Workload) -> Optional[str]:
        """Why this peer does not run ``wl`` here, or None when it does."""
        if self.workloads is not None and wl.name not in self.workloads:
            return f"{self.name}: not run on {wl.name} (only on {', '.join(self.workloads)})"
        for mod in self.requires:
            if importlib.util.find_spec(mod) is None:
                hint = f" ({self.install})" if self.install else ""
                return f"{self.name}: skipped, {mod} is not installed{hint}"
        return None


PEERS: Dict[str, Peer] = {p.name: p for p in [
    Peer("pybackprop", "pybackprop.bench.peers.pybackprop:setup", preload=("pybackprop",)),
    Peer("reference", "pybackprop.bench.peers.reference:setup", workloads=QUICK_WORKLOADS,
         preload=("pybackprop", "pybackprop.reference")),
    Peer("torch", "pybackprop.bench.peers.torch:setup", requires=("torch",), install="pip install torch"),
]}
"""The peers ``pybackprop bench`` measures; benchmarks/python/run.py adds its own."""


def limit_blas_threads(ctx: Context) -> None:
    """NumPy's BLAS (and sklearn's) on ``ctx.threads`` threads.

    Via threadpoolctl when installed; else OPENBLAS_NUM_THREADS, set by the
    harness before any import, is all there is, and a note says so.

    Parameters
    ----------
    ctx : Context
        The runner's context (its ``threads``; a note is appended to its ``notes``).
    """
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(ctx.threads)
    except ImportError:
        ctx.notes.append("threadpoolctl absent: BLAS threads from OPENBLAS_NUM_THREADS only")
