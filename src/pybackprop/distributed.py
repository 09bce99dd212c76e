"""Data-parallel training over MPI (``mpi4py``): one model replica per rank.

Launch the same script on N ranks (``mpiexec -n N python train.py``); every
rank builds the same model (same config and seed) and calls
:func:`fit_distributed` (or :meth:`DistributedTrainer.fit`) with the same
arguments. Then:

- the weights, optimiser state and counters of rank 0 are broadcast to every
  rank (its engine's ``state()``, loaded with ``load_state``), so all
  replicas start equal;
- each epoch forms the *global* batches exactly as single-process
  ``Sequential.fit`` does (``arange(n)`` or the shuffle permutation of the
  model's seed and ``epoch_counter``, docs/internals.md), and every global
  batch is split across the ranks: rank r takes rows ``[r B / N, (r+1) B / N)``
  of it (or, with ``sharded=True``, the rows it holds; with ``sharded=True,
  layout="per_rank"`` each global batch is instead every rank's next local
  batch, see :func:`per_rank_batches`);
- each rank computes the gradient of the mean loss over its rows with the
  core (``loss_and_gradients``), scales it in place by ``n_rank / n_batch``,
  and ONE ``Allreduce(IN_PLACE, SUM)`` over the flat gradient arena turns it
  into the gradient of the global batch mean on every rank; then every rank
  applies the compiled optimiser (``apply_gradients``, with ``clip_norm`` on
  the global gradient), so all ranks keep the same weights;
- BatchNorm's training statistics are the global batch's, at one small
  collective per BatchNorm layer and step each way: forward, one ``Allgather``
  of every rank's (count, mean, M2 = Σ(x − mean)²) of its rows, which every
  rank combines in rank order (Chan et al.'s pairwise formula, so all ranks get
  bitwise the same statistics); backward, one ``Allreduce`` of Σdx̂ and Σdx̂·x̂
  in one buffer, none for a BatchNorm of the network's input (nothing needs
  dL/dX there). A rank without rows in a batch takes part with zeros. The
  gradients and the running estimates are those of one process on the global
  batch (docs/internals.md);
- Dropout masks are the masks single-process ``fit`` would draw for the
  global batch, drawn by the core for exactly the rows a rank holds
  (``dropout_masks``), so even with Dropout N ranks follow the
  single-process trajectory; ``noisy_relu`` noise is drawn per rank by the
  core and does differ from a single process;
- the epoch loss (the global sample-weighted mean, as ``fit`` reports it)
  costs one more ``Allreduce`` of one scalar per epoch; rank 0 evaluates the
  validation data, prints progress, runs ``ModelCheckpoint`` and returns the
  History (other ranks return ``None``).

Without ``noisy_relu``, the result equals single-process ``fit`` on the same
global batches up to the order of the floating-point sums (see
docs/distributed.md for the measured tolerance).

Failures: an exception raised on only some ranks while the others wait in a
collective would hang the job (MPI has no timeouts on collectives), so by
default a rank that fails during training prints the error and calls
``MPI_Abort``, which makes ``mpiexec`` kill every rank and exit non-zero.
Errors that every rank sees together (invalid arguments, checked collectively
before training; divergence, detected on the reduced gradient) are raised on
every rank as ordinary exceptions.

Examples
--------
Run as ``mpiexec -n 2 python script.py``::

    import numpy as np, pybackprop as bp
    from pybackprop.distributed import fit_distributed

    model = bp.Sequential([bp.Dense(64, activation="relu"), bp.Dense(1)], input_dim=10, seed=0)
    model.compile(loss="mse", optimizer=bp.Adam(1e-3))
    X, y = ...  # the same arrays on every rank (or each rank's shard with sharded=True)
    history = fit_distributed(model, X, y, epochs=10, batch_size=256)
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
import traceback
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, TypeVar

import numpy as np

from . import _core
from ._engine import DivergenceError, epoch_batches
from ._history import Callback, History, ProgressBar
from ._validation import check_bool, check_choice, check_int, fail
from .callbacks import ModelCheckpoint
from .model import Sequential

__all__ = ["DistributedError", "DistributedTrainer", "fit_distributed", "default_comm", "per_rank_batches",
           "rank_shares", "LAYOUTS"]

T = TypeVar("T")


class DistributedError(RuntimeError):
    """Raised on every rank when the ranks disagree or one of them rejected its input."""


def default_comm() -> Any:
    """``mpi4py.MPI.COMM_WORLD`` (ImportError with the install hint if mpi4py is missing)."""
    try:
        from mpi4py import MPI
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("pybackprop.distributed needs mpi4py and an MPI library: "
                          "pip install 'pybackprop[mpi]' (mpi4py and the mpich wheel)") from exc
    return MPI.COMM_WORLD


# ---------------------------------------------------------------------- the trainer
def _root_only(cb: Callback) -> bool:
    """Callbacks that only rank 0 runs: progress output and checkpoints (or ``root_only = True``)."""
    return isinstance(cb, (ProgressBar, ModelCheckpoint)) or bool(getattr(cb, "root_only", False))


class DistributedTrainer:
    """Train ``model`` data-parallel on the ranks of ``comm`` (default ``MPI.COMM_WORLD``).

    Parameters
    ----------
    model : Sequential
        Built or not, compiled; every rank passes a model of the same config and seed.
    comm : mpi4py.MPI.Comm, optional
    num_threads : int, "auto" or None
        Core threads per rank. ``"auto"`` (default): the CPUs this process may
        run on divided by the number of ranks on its node (at least 1), unless
        the launcher pinned the rank to fewer CPUs than the machine has (then
        all of those); None leaves the thread count alone.
    abort_on_error : bool
        Call ``MPI_Abort`` when this rank fails during training (default). With
        False the exception propagates on this rank only and the other ranks
        may wait forever in the next collective.
    profile : bool
        Put a ``Barrier`` before every gradient ``Allreduce`` so that
        ``timings`` separates waiting for the slowest rank (``"wait"``) from
        the reduction itself (``"allreduce"``). Costs one more collective per
        step; off by default.

    Attributes
    ----------
    rank, size : int
    timings : dict
        Of the last :meth:`fit`: seconds spent computing gradients
        (``"compute"``, which includes BatchNorm's collectives, also counted
        in ``"stats"``), in the gradient ``Allreduce`` (``"allreduce"``, which
        includes waiting for the slowest rank unless ``profile``), applying
        updates (``"update"``), waiting at the profiling barrier (``"wait"``),
        the whole epochs (``"epochs"``) and the number of ``"steps"``.
    """

    def __init__(self, model: Sequential, comm: Any = None, num_threads: Any = "auto",
                 abort_on_error: bool = True, profile: bool = False) -> None:
        if not isinstance(model, Sequential):
            fail("model", "a pybackprop Sequential", model, TypeError)
        self.model = model
        self.comm = default_comm() if comm is None else comm
        self.rank, self.size = int(self.comm.Get_rank()), int(self.comm.Get_size())
        self.abort_on_error = check_bool("abort_on_error", abort_on_error)
        self.profile = check_bool("profile", profile)
        self.timings: Dict[str, float] = {}
        if num_threads == "auto":
            self._set_auto_threads()
        elif num_threads is not None:
            _core.set_num_threads(check_int("num_threads", num_threads, minimum=1))

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ helpers
    def _set_auto_threads(self) -> None:
        from mpi4py import MPI

        cpus = int(_core.available_cpus())
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        try:
            per_node = int(local.Get_size())
        finally:
            local.Free()
        pinned = cpus < (os.cpu_count() or cpus)
        _core.set_num_threads(cpus if pinned else max(1, cpus // per_node))

    def _fail_together(self, what: str, error: Optional[BaseException]) -> None:
        """Collective error check: if any rank had an error, raise it on every rank."""
        report = None if error is None else f"{type(error).__name__}: {error}"
        reports = self.comm.allgather(report)
        bad = [(r, msg) for r, msg in enumerate(reports) if msg is not None]
        if not bad:
            return
        text = "; ".join(f"rank {r}: {msg}" for r, msg in bad)
        if error is not None and len(bad) == self.size and len(set(m for _, m in bad)) == 1:
            raise error  # the same error everywhere: raise it as is
        raise DistributedError(f"{what} failed on {len(bad)} of {self.size} ranks: {text}") from error

    def _abort(self, exc: BaseException) -> None:
        # One write of the whole report: MPI_Abort may end the job before the launcher forwards a
        # later write, so the first line already says what failed and that the job is aborted.
        sys.stdout.flush()
        report = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        sys.stderr.write(f"pybackprop.distributed: rank {self.rank} of {self.size} failed with "
                         f"{type(exc).__name__}: {exc}; it calls MPI_Abort so that the other ranks stop "
                         f"instead of waiting in a collective\n{report}")
        sys.stderr.flush()
        self.comm.Abort(1)

    def broadcast_state(self) -> None:
        """Give every rank rank 0's weights, optimiser state, counters and keep probabilities."""
        engine = self.model.engine
        state = self.comm.bcast(engine.state() if self.is_root else None, root=0)
        if not self.is_root:
            engine.load_state(state)

    def check_same_weights(self) -> bool:
        """True when every rank holds bitwise the same parameters (a digest per rank is gathered)."""
        digest = hashlib.blake2b(self.model.engine.net.params().tobytes(), digest_size=16).hexdigest()
        return len(set(self.comm.allgather(digest))) == 1

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any, epochs: int = 1, batch_size: int = 32, shuffle: bool = True,
            verbose: int = 1, validation_data: Optional[Tuple[Any, Any]] = None,
            callbacks: Optional[Sequence[Callback]] = None, sharded: bool = False, sample_weight: Any = None,
            class_weight: Optional[Dict[int, float]] = None, layout: str = "global") -> Optional[History]:
        """Train like :meth:`Sequential.fit`, data-parallel over the ranks.

        Parameters
        ----------
        X, y : arrays
            The whole training set on every rank (default), or with
            ``sharded=True`` this rank's shard: the global data set is the
            concatenation of the shards in rank order, and each rank computes
            on the rows of every global batch it holds.
        epochs, batch_size, shuffle : as in ``fit``
            ``batch_size`` is the *global* batch size; identical on every rank.
        verbose : int
            Progress lines, printed by rank 0 only.
        validation_data : (X_val, y_val), optional
            Evaluated by rank 0 after every epoch (other ranks may pass None).
        callbacks : list of Callback
            Run on every rank with the same logs (so EarlyStopping,
            LearningRateScheduler and TerminateOnNaN decide the same
            everywhere), except ``ModelCheckpoint``, ``ProgressBar`` and
            callbacks with ``root_only = True``, which run on rank 0 only.
        sharded : bool
            See ``X``.
        layout : {"global", "per_rank"}
            How the ranks share the steps. ``"global"`` (default): the batches are drawn over
            the global data set as single-process ``fit`` draws them (the shards concatenated
            when sharded), and each rank computes the rows of a batch it holds; with sharded
            data and ``shuffle=False`` a batch of contiguous rows then falls on one rank while
            the others wait. ``"per_rank"`` (sharded only; what Horovod and torch's
            ``DistributedSampler`` users expect): each step takes every rank's next local
            batch, its share of the global ``batch_size`` (:func:`rank_shares`), from its shard
            in order or, with ``shuffle``, in a per-epoch permutation of its own, so with equal
            shards every rank computes in every step (:func:`per_rank_batches`). Either way a
            step is one optimiser update on the global batch's mean gradient.
        sample_weight, class_weight : as in ``fit``
            Per-sample weights of this rank's ``X`` (the whole set, or with
            ``sharded=True`` the shard's); each rank weights the rows it computes,
            so a global batch's loss is ``sum(w_i * l_i) / rows``, as in ``fit``.

        Returns
        -------
        History on rank 0, None on the other ranks.

        History keys: ``loss`` (global), ``grad_norm``, ``lr``, ``keep_prob``,
        ``weight_norm``, ``update_ratio``, ``nonfinite`` and ``val_loss``; the
        activation statistics of ``fit`` (``dead_fraction``,
        ``saturated_fraction``) are not recorded here.
        """
        model, comm, engine = self.model, self.comm, self.model.engine
        error: Optional[BaseException] = None
        try:
            sharded = check_bool("sharded", sharded)
            layout = check_choice("layout", layout, LAYOUTS)
            if layout == "per_rank" and not sharded:
                raise ValueError("layout: expected 'global' for data on every rank (its batches are split "
                                 "evenly already), or sharded=True with 'per_rank'; got 'per_rank' with sharded=False")
            args = engine.fit_arguments(X, y, epochs, batch_size, shuffle, verbose, validation_data,
                                        callbacks=callbacks, validation=self.is_root,
                                        sample_weight=sample_weight, class_weight=class_weight)
        except Exception as exc:  # reported on every rank below
            error = exc
        self._fail_together("checking the arguments of fit", error)

        signature = (model.get_config(), args.batch_size, args.epochs, args.shuffle, sharded, layout,
                     engine.net.arena_size, None if sharded else args.X.shape[0])
        signatures = comm.allgather(signature)
        for r, other in enumerate(signatures):
            if other != signature:
                names = ("model config (layers, seed, dtype, loss, optimiser)", "batch_size", "epochs",
                         "shuffle", "sharded", "layout", "number of parameters", "number of samples")
                field = next(name for name, a, b in zip(names, signature, other) if a != b)
                raise DistributedError(f"rank {self.rank} and rank {r} differ in {field}: every rank must "
                                       "build the same model (give every rank the same seed=...) and call fit with "
                                       "the same arguments")
        sizes = comm.allgather(args.X.shape[0]) if sharded else [args.X.shape[0]] * self.size
        n = sum(sizes) if sharded else args.X.shape[0]
        if n == 0:
            raise DistributedError("fit_distributed: no samples on any rank")
        # every rank raises together: the sizes are the same everywhere
        if layout == "per_rank" and args.batch_size < self.size:
            raise ValueError(f"batch_size: expected at least one row per rank with layout='per_rank' "
                             f"({self.size} ranks), got {args.batch_size}")
        reducer = _Reducer(self, sizes, sharded, layout)
        engine.check_batchnorm_batches(n, args.batch_size, reducer.batches(0, args.batch_size, False))
        self.broadcast_state()
        # Progress and checkpoints on rank 0 only (the engine adds the ProgressBar of verbose there).
        args.callbacks = [cb for cb in args.callbacks if self.is_root or not _root_only(cb)]
        self.timings = reducer.timings
        try:
            history = engine.fit(model, args, reducer)
            if not self.check_same_weights():  # pragma: no cover - MPI reductions agree in practice
                warnings.warn("pybackprop.distributed: the ranks' weights differ bitwise after training (the MPI "
                              "reduction gave different roundings on different ranks); rank 0's weights were "
                              "broadcast to all", RuntimeWarning, stacklevel=2)
                self.broadcast_state()
            return history if self.is_root else None
        except (DivergenceError, DistributedError):
            raise  # raised by every rank together
        except BaseException as exc:
            if self.abort_on_error and self.size > 1:
                self._abort(exc)
            raise


LAYOUTS = ("global", "per_rank")
"""How the ranks share an epoch's steps (``fit(..., layout=)``)."""


def rank_shares(batch_size: int, ranks: int) -> List[int]:
    """Rows each rank contributes to a global batch of ``batch_size``: rank r's share is
    ``(r+1)·B // N - r·B // N``, the split of an unsharded batch.

    >>> rank_shares(10, 3)
    [3, 3, 4]
    """
    return [(r + 1) * batch_size // ranks - r * batch_size // ranks for r in range(ranks)]


def _rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s own shuffle under ``layout="per_rank"`` (a stream per rank)."""
    return (seed + (rank + 1) * 0x9E3779B97F4A7C15) % 2**64


def per_rank_batches(sizes: Sequence[int], batch_size: int, seed: int, epoch: int, shuffle: bool) -> List[np.ndarray]:
    """The global batches of ``layout="per_rank"``: step s joins every rank's s-th local batch.

    Rank r holds ``sizes[r]`` rows, global rows ``offset_r + i`` (the shards in rank order).
    Each epoch it takes them in order or, with ``shuffle``, in its own permutation (the model's
    seed, the epoch and the rank), in local batches of its share of ``batch_size``
    (:func:`rank_shares`); global batch s is the ranks' s-th local batches, rank 0's first. With
    equal shards every rank computes in every step; a rank whose shard is used up sits out the
    epoch's last steps. Every row is in exactly one batch of the epoch.

    Examples
    --------
    >>> [b.tolist() for b in per_rank_batches([4, 4], 4, seed=0, epoch=0, shuffle=False)]
    [[0, 1, 4, 5], [2, 3, 6, 7]]
    >>> [b.tolist() for b in per_rank_batches([3, 5], 4, seed=0, epoch=0, shuffle=False)]
    [[0, 1, 3, 4], [2, 5, 6], [7]]
    """
    shares = rank_shares(batch_size, len(sizes))
    local = []
    offset = 0
    for r, n_r in enumerate(sizes):
        order = _core.permutation(_rank_seed(seed, r), epoch, n_r) if shuffle and n_r > 1 else np.arange(n_r)
        local.append(offset + order)
        offset += n_r
    steps = max(-(-n_r // b) for n_r, b in zip(sizes, shares))
    return [np.concatenate([rows[s * b:(s + 1) * b] for rows, b in zip(local, shares)]) for s in range(steps)]


class _Reducer:
    """The engine's gradient reducer over MPI (:class:`pybackprop._engine.GradientReducer`).

    Batches: :func:`~pybackprop._engine.epoch_batches` over the global data set, or with
    ``layout="per_rank"`` :func:`per_rank_batches`. Rows: with the whole data set on every
    rank, rank r takes rows ``[r B / N, (r+1) B / N)`` of each global batch; sharded, the rows
    of the batch that fall in this rank's shard ``[offset, offset + n_local)``.
    """

    def __init__(self, trainer: DistributedTrainer, sizes: Sequence[int], sharded: bool, layout: str) -> None:
        self.trainer, self.comm = trainer, trainer.comm
        self.root, self.layout, self.ranks = trainer.is_root, layout, trainer.size
        self.sizes = list(sizes)
        self.samples = sum(self.sizes) if sharded else self.sizes[0]
        self.params: Dict[str, Any] = {"ranks": trainer.size, "layout": layout}
        self.offset = sum(self.sizes[:trainer.rank]) if sharded else 0
        self.n_local: Optional[int] = self.sizes[trainer.rank] if sharded else None
        self.seed = trainer.model.seed
        self.timings: Dict[str, float] = {"compute": 0.0, "wait": 0.0, "allreduce": 0.0, "update": 0.0,
                                          "stats": 0.0, "epochs": 0.0, "steps": 0}

    def steps(self, batch_size: int) -> int:
        return len(self.batches(0, batch_size, False))  # the same count every epoch, shuffled or not

    def batches(self, epoch: int, batch_size: int, shuffle: bool) -> List[np.ndarray]:
        if self.layout == "per_rank":
            return per_rank_batches(self.sizes, batch_size, self.seed, epoch, shuffle)
        return epoch_batches(self.seed, epoch, self.samples, batch_size, shuffle)

    def rows(self, batch: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        if self.n_local is not None:  # sharded
            positions = np.nonzero((batch >= self.offset) & (batch < self.offset + self.n_local))[0]
            return positions, batch[positions] - self.offset
        rank, size = self.trainer.rank, self.trainer.size
        lo, hi = rank * batch.size // size, (rank + 1) * batch.size // size
        return np.arange(lo, hi), batch[lo:hi]

    def allreduce(self, grads: np.ndarray) -> None:
        from mpi4py import MPI

        t0 = time.perf_counter()
        if self.trainer.profile:
            self.comm.Barrier()
            t1 = time.perf_counter()
            self.timings["wait"] += t1 - t0
            t0 = t1
        self.comm.Allreduce(MPI.IN_PLACE, grads, op=MPI.SUM)
        self.timings["allreduce"] += time.perf_counter() - t0

    def gather_stats(self, local: np.ndarray, out: np.ndarray) -> None:
        t0 = time.perf_counter()
        self.comm.Allgather(local, out)
        self.timings["stats"] += time.perf_counter() - t0

    def sum_stats(self, values: np.ndarray) -> None:
        from mpi4py import MPI

        t0 = time.perf_counter()
        self.comm.Allreduce(MPI.IN_PLACE, values, op=MPI.SUM)
        self.timings["stats"] += time.perf_counter() - t0

    def sum(self, value: float) -> float:
        from mpi4py import MPI

        total = np.array([value], dtype=np.float64)
        self.comm.Allreduce(MPI.IN_PLACE, total, op=MPI.SUM)
        return float(total[0])

    def agree(self, value: T) -> T:
        return self.comm.bcast(value, root=0)  # type: ignore[no-any-return]


def fit_distributed(model: Sequential, X: Any, y: Any, epochs: int = 1, batch_size: int = 32,
                    shuffle: bool = True, comm: Any = None, **kwargs: Any) -> Optional[History]:
    """Data-parallel :meth:`Sequential.fit` over MPI: ``DistributedTrainer(model, comm).fit(...)``.

    Every rank calls it with the same model config and arguments; keyword
    arguments (``verbose``, ``validation_data``, ``callbacks``, ``sharded``, ``layout``,
    and the trainer's ``num_threads``, ``abort_on_error``, ``profile``) as in
    :class:`DistributedTrainer`. Returns the History on rank 0, None elsewhere.
    """
    trainer_kw = {k: kwargs.pop(k) for k in ("num_threads", "abort_on_error", "profile") if k in kwargs}
    return DistributedTrainer(model, comm, **trainer_kw).fit(X, y, epochs=epochs, batch_size=batch_size,
                                                             shuffle=shuffle, **kwargs)
