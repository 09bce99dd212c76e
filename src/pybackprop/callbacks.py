"""Training history and callbacks.

Callbacks run between epochs, never inside the C++ loop. Each gets the model
(``callback.model``) and the epoch's logs (``loss``, ``val_loss``, ``lr``,
``keep_prob``, ``grad_norm``), and may set ``model.stop_training = True``.

>>> import numpy as np, pybackprop as bp
>>> X = np.random.default_rng(0).normal(size=(64, 2)); y = X.sum(axis=1)
>>> m = bp.Sequential([bp.Dense(8, activation="tanh"), bp.Dense(1)], seed=0)
>>> m.compile(loss="mse", optimizer=bp.SGD(lr=0.05))
>>> stop = bp.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
>>> h = m.fit(X, y, epochs=200, validation_split=0.25, callbacks=[stop], verbose=0)
>>> len(h.epoch) < 200
True
"""
from __future__ import annotations

import math
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

import numpy as np

from ._validation import check_float, check_int, fail

if TYPE_CHECKING:  # pragma: no cover
    from .model import Sequential


class Callback:
    """Base class. Override any of the hooks; ``self.model`` is set by ``fit``."""

    model: "Sequential"

    def set_model(self, model: "Sequential") -> None:
        self.model = model

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: Dict[str, Any]) -> None:
        pass

    def on_train_end(self, logs: Optional[Dict[str, Any]] = None) -> None:
        pass


class History(Callback):
    """What ``fit`` returns: one entry per epoch under each key.

    Attributes
    ----------
    history : dict
        ``"loss"``: mean training loss of the epoch (sample-weighted over its
        mini-batches, as they were seen); ``"grad_norm"``: per epoch, the list
        of per-layer gradient L2 norms (over W and b, averaged over the epoch's
        steps); per-layer gradient-flow diagnostics recorded by the C++ loop:
        ``"weight_norm"`` (at the epoch's end), ``"update_ratio"`` (norm of the
        epoch's last update over the norm before it: the update-to-weight ratio), ``"dead_fraction"`` (ReLU-like
        layers: share of units that never fired), ``"saturated_fraction"``
        (sigmoid/tanh: share of outputs beyond 0.01/0.99), ``"nonfinite"`` (a NaN
        or inf appeared); ``"lr"``: the learning rate of the epoch's first step;
        ``"keep_prob"`` (models with Dropout): per epoch, the list of each
        Dropout's keep probability at the first step; ``"val_loss"`` with
        validation data.
    steps : dict
        Per-step values actually used by the C++ loop, concatenated over epochs:
        ``steps["lr"]`` of shape (total_steps,), ``steps["keep_prob"]`` of shape
        (total_steps, n_dropout_layers).
    epoch : list of int
        The model's epoch numbers (they continue across ``fit`` calls).

    Examples
    --------
    >>> import numpy as np, pybackprop as bp
    >>> m = bp.Sequential([bp.Dense(1)], input_dim=2, seed=0)
    >>> m.compile(loss="mse", optimizer=bp.SGD(lr=0.1))
    >>> h = m.fit(np.ones((4, 2)), np.ones(4), epochs=3, batch_size=2, verbose=0)
    >>> len(h.history["loss"]), len(h.history["grad_norm"][0]), h.steps["lr"].shape
    (3, 1, (6,))
    """

    def __init__(self) -> None:
        self.history: Dict[str, List[Any]] = {}
        self.epoch: List[int] = []
        self.params: Dict[str, Any] = {}
        self._steps: Dict[str, List[np.ndarray]] = {}  # per epoch; joined on access

    @property
    def steps(self) -> Dict[str, np.ndarray]:
        return {key: np.concatenate(parts) for key, parts in self._steps.items()}

    def append(self, epoch: int, logs: Dict[str, Any], steps: Optional[Dict[str, np.ndarray]] = None) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        for key, value in (steps or {}).items():
            self._steps.setdefault(key, []).append(value)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


def _monitor_value(callback: str, monitor: str, logs: Dict[str, Any]) -> float:
    if monitor not in logs:
        raise ValueError(f"{callback}: monitor '{monitor}' is not in the epoch logs (available: "
                         f"{', '.join(sorted(logs))}); for val_loss pass validation_data or validation_split")
    return float(logs[monitor])


class EarlyStopping(Callback):
    """Stop when a monitored quantity has stopped improving.

    Parameters
    ----------
    monitor : str
        Key of the epoch logs, e.g. ``"val_loss"`` (default) or ``"loss"``.
    patience : int
        Epochs without improvement before stopping.
    min_delta : float
        Smallest decrease that counts as an improvement.
    restore_best_weights : bool
        At the end of training, put back the weights of the best epoch.

    Attributes
    ----------
    best : float
    best_epoch : int
    stopped_epoch : int or None

    Examples
    --------
    >>> EarlyStopping(monitor="loss", patience=3).patience
    3
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 restore_best_weights: bool = False) -> None:
        if not isinstance(monitor, str):
            fail("monitor", "the name of a logged quantity such as 'val_loss'", monitor, TypeError)
        self.monitor = monitor
        self.patience = check_int("patience", patience, minimum=0)
        self.min_delta = abs(check_float("min_delta", min_delta))
        self.restore_best_weights = bool(restore_best_weights)

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        self.best = math.inf
        self.best_epoch = -1
        self.wait = 0
        self.stopped_epoch: Optional[int] = None
        self.best_weights: Optional[List[np.ndarray]] = None

    def on_epoch_end(self, epoch: int, logs: Dict[str, Any]) -> None:
        value = _monitor_value("EarlyStopping", self.monitor, logs)
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Optional[Dict[str, Any]] = None) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model after epochs (atomically, with :meth:`Sequential.save`).

    Parameters
    ----------
    path : str or os.PathLike
        File to write; ``{epoch}`` and any log key (e.g. ``{val_loss:.4f}``)
        are filled in.
    monitor : str
        Quantity compared with ``save_best_only``.
    save_best_only : bool
        Only save when ``monitor`` improved (decreased).

    Examples
    --------
    >>> ModelCheckpoint("model-{epoch}.pbp", save_best_only=True).save_best_only
    True
    """

    def __init__(self, path: Any, monitor: str = "val_loss", save_best_only: bool = False) -> None:
        self.path = os.fspath(path)
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        self.best = math.inf

    def on_epoch_end(self, epoch: int, logs: Dict[str, Any]) -> None:
        if self.save_best_only:
            value = _monitor_value("ModelCheckpoint", self.monitor, logs)
            if not value < self.best:
                return
            self.best = value
        scalars = {k: v for k, v in logs.items() if isinstance(v, float)}
        self.model.save(self.path.format(epoch=epoch, **scalars))


class LearningRateScheduler(Callback):
    """Set the optimiser's learning rate before each epoch: ``lr = schedule(epoch, lr)``.

    Keras' callback; for schedules known in advance, passing a
    :mod:`pybackprop.schedules` object as ``lr`` does the same per step.

    Examples
    --------
    >>> LearningRateScheduler(lambda epoch, lr: lr * 0.5).schedule(0, 0.1)
    0.05
    """

    def __init__(self, schedule: Callable[[int, float], float], verbose: int = 0) -> None:
        if not callable(schedule):
            fail("schedule", "a callable (epoch, lr) -> new lr", schedule, TypeError)
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        opt = self.model.optimizer
        assert opt is not None
        current = opt.lr(epoch) if callable(opt.lr) else opt.lr
        new = check_float("lr returned by the LearningRateScheduler schedule",
                          self.schedule(epoch, float(current)), minimum=0.0)
        opt.lr = new
        self.model._configure_optimizer(reset_state=False)
        if self.verbose:
            print(f"Epoch {epoch}: LearningRateScheduler setting lr to {new:.6g}")


class TerminateOnNaN(Callback):
    """Stop training, without an error, when a loss becomes NaN or infinite.

    Without it ``fit`` raises :class:`pybackprop.DivergenceError`; with it the
    step that met the NaN is not applied, the epoch's loss is logged as that
    value, and ``fit`` returns.

    Examples
    --------
    >>> TerminateOnNaN().terminated
    False
    """

    def __init__(self) -> None:
        self.terminated = False

    def on_epoch_end(self, epoch: int, logs: Dict[str, Any]) -> None:
        if not math.isfinite(logs["loss"]):
            self.terminated = True
            self.model.stop_training = True


class ProgressBar(Callback):
    """Progress of ``fit(verbose=1)``: a bar over the epochs with loss, val_loss, samples/s.

    In a terminal the line is redrawn in place after every epoch; elsewhere (a
    log file, a notebook's captured output, a pipe) it prints one line per epoch.

    Examples
    --------
    >>> import io
    >>> ProgressBar(stream=io.StringIO()).interactive
    False
    """

    width = 20

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        isatty = getattr(self.stream, "isatty", None)
        self.interactive = bool(isatty and isatty())

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        self.params = self.model.history.params if self.model.history else {}
        self.seen = 0

    def on_epoch_begin(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Dict[str, Any]) -> None:
        self.seen += 1
        elapsed = time.perf_counter() - self.start
        rate = self.params.get("samples", 0) / elapsed if elapsed > 0 else float("inf")
        total = self.params.get("epochs") or self.seen
        done = int(self.width * self.seen / total)
        bar = "[" + "=" * done + (">" if done < self.width else "") + " " * (self.width - done - 1) + "]"
        parts = [f"Epoch {self.seen}/{total} {bar}", f"loss: {logs['loss']:.6g}"]
        if "val_loss" in logs:
            parts.append(f"val_loss: {logs['val_loss']:.6g}")
        parts.append(f"{rate:,.0f} samples/s")
        line = " - ".join(parts)
        if self.interactive:
            print("\r" + line, end="\n" if self.seen == total else "", file=self.stream, flush=True)
        else:
            print(line, file=self.stream, flush=True)

    def on_train_end(self, logs: Optional[Dict[str, Any]] = None) -> None:
        total = self.params.get("epochs") or self.seen
        if self.interactive and 0 < self.seen < total:  # stopped early: end the redrawn line
            print(file=self.stream, flush=True)