"""Training history and callbacks.

``Callback``, ``History`` and ``ProgressBar`` live in ``pybackprop._history``
(below the engine, whose fit loop uses them) and are re-exported here.
Callbacks run between epochs, never inside the C++ loop. Each gets the model
(``callback.model``) and the epoch's logs (``loss``, ``val_loss``, ``lr``,
``momentum`` when a ``OneCycle`` cycles it, ``keep_prob``, ``grad_norm``), and may
set ``model.stop_training = True``.

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

import csv
import math
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ._history import Callback, History, ProgressBar
from ._validation import check_bool, check_choice, check_float, check_int, fail


__all__ = ["CSVLogger", "Callback", "EarlyStopping", "History", "LearningRateScheduler", "ModelCheckpoint",
           "ProgressBar", "ReduceLROnPlateau", "TerminateOnNaN"]


def _monitor_value(callback: str, monitor: str, logs: Dict[str, Any]) -> float:
    if monitor not in logs:
        raise ValueError(f"{callback}: monitor '{monitor}' is not in the epoch logs (available: "
                         f"{', '.join(sorted(logs))}); for val_loss pass validation_data or validation_split")
    return float(logs[monitor])


#: monitored quantities whose improvement is an increase (mode="auto"); the rest of the known ones decrease
_HIGHER_IS_BETTER = ("accuracy", "r2")
_LOWER_IS_BETTER = ("loss", "mae", "mse", "rmse")


def _check_mode(mode: Any) -> str:
    return check_choice("mode", mode, ("auto", "min", "max"))


class EarlyStopping(Callback):
    """Stop when a monitored quantity has stopped improving: Keras's ``EarlyStopping``.

    After each epoch the wait counter grows by one; an improvement (below the best by
    more than ``min_delta``, or above it in ``"max"`` mode) resets it to 0 and records the
    epoch as the best. Training stops at the end of the epoch where the counter reaches
    ``patience`` without improvement, i.e. after ``patience`` epochs without improvement:
    with the best epoch first and ``patience=2``, three epochs run (``patience=0`` stops at
    the first epoch that does not improve, as ``patience=1``, as Keras's).

    Parameters
    ----------
    monitor : str
        Key of the epoch logs, e.g. ``"val_loss"`` (default) or ``"loss"``.
    patience : int
        Epochs without improvement before stopping, >= 0.
    min_delta : float
        Smallest change that counts as an improvement (its absolute value is used).
    restore_best_weights : bool
        At the end of training (stopped early or not), put back the weights of the best
        epoch (of the first monitored one if none improved on ``baseline``).
    mode : {"auto", "min", "max"}
        Whether the quantity should fall or rise; ``"auto"`` knows ``loss``, ``mae``,
        ``mse``, ``rmse`` (min) and ``accuracy``, ``r2`` (max), with or without ``val_``,
        and refuses any other name (pass ``mode``), as Keras's does.
    baseline : float, optional
        The value to beat: while no epoch improves on it, the wait counter is not reset,
        so training stops after ``patience`` epochs unless one does.
    start_from_epoch : int
        Epochs of this ``fit`` call not monitored at first (a warm-up), >= 0.
    verbose : int
        1: print the epoch of the stop and of the restored weights.

    Attributes
    ----------
    best : float or None
        The best value seen (None before the first monitored epoch).
    best_epoch : int
        The model epoch (``model.engine.net.epoch_counter`` numbering, as the logs) of ``best``.
    wait : int
        Epochs since the last improvement.
    stopped_epoch : int or None
        The epoch at whose end training stopped, None when it did not stop early.

    Notes
    -----
    Behaviour change (this release): earlier versions stopped after ``patience + 1``
    epochs without improvement. Monitoring an unknown name with ``mode="auto"`` (formerly
    always minimised) now raises ``ValueError``. The epoch counts of ``start_from_epoch``
    and of Keras's "no stop in the first epoch" rule are those of the current ``fit`` call
    (Keras counts from ``initial_epoch``; pybackprop's epoch numbers go on across calls).

    Examples
    --------
    >>> EarlyStopping(monitor="loss", patience=3).patience
    3
    >>> EarlyStopping(monitor="val_accuracy", baseline=0.9).mode
    'auto'
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 restore_best_weights: bool = False, mode: str = "auto", baseline: Optional[float] = None,
                 start_from_epoch: int = 0, verbose: int = 0) -> None:
        if not isinstance(monitor, str):
            fail("monitor", "the name of a logged quantity such as 'val_loss'", monitor, TypeError)
        self.monitor = monitor
        self.patience = check_int("patience", patience, minimum=0)
        self.min_delta = abs(check_float("min_delta", min_delta))
        self.restore_best_weights = check_bool("restore_best_weights", restore_best_weights)
        self.mode = _check_mode(mode)
        self.baseline = None if baseline is None else check_float("baseline", baseline)
        self.start_from_epoch = check_int("start_from_epoch", start_from_epoch, minimum=0)
        self.verbose = check_int("verbose", verbose, minimum=0)
        self._higher = self._direction()

    def _direction(self) -> bool:
        """True when a larger value is better."""
        if self.mode != "auto":
            return self.mode == "max"
        name = self.monitor[4:] if self.monitor.startswith("val_") else self.monitor
        if name in _HIGHER_IS_BETTER or name in _LOWER_IS_BETTER:
            return name in _HIGHER_IS_BETTER
        fail("mode", f"'min' or 'max' for monitor={self.monitor!r} (mode='auto' knows only "
             f"{', '.join(_LOWER_IS_BETTER + _HIGHER_IS_BETTER)}, with or without 'val_')", self.mode)
        raise AssertionError  # unreachable

    def _improves(self, value: float, reference: Optional[float]) -> bool:
        if reference is None:
            return True
        return value - self.min_delta > reference if self._higher else value + self.min_delta < reference

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        self.best: Optional[float] = None
        self.best_epoch = -1
        self.wait = 0
        self.stopped_epoch: Optional[int] = None
        self.best_weights: Optional[List[np.ndarray]] = None
        self._seen = 0  # epochs of this fit call

    def on_epoch_end(self, epoch: int, logs: Dict[str, Any]) -> None:
        value = _monitor_value("EarlyStopping", self.monitor, logs)
        seen, self._seen = self._seen, self._seen + 1
        if seen < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch  # the first monitored epoch
        self.wait += 1
        if self._improves(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improves(value, self.baseline):
                self.wait = 0  # only when it beats the baseline too
            return
        if self.wait >= self.patience and seen > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Optional[Dict[str, Any]] = None) -> None:
        if self.stopped_epoch is not None and self.verbose:
            print(f"Epoch {self.stopped_epoch}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch}.")
            self.model.set_weights(self.best_weights)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when a monitored quantity stops improving:
    Keras's ``ReduceLROnPlateau``.

    After each epoch: in cooldown (``cooldown`` epochs after a reduction) the counter
    stays 0; an improvement (below the best by more than ``min_delta``; above it in ``"max"``
    mode) records the best and resets the counter; otherwise, outside cooldown, the counter
    grows, and when it reaches ``patience`` the lr becomes ``max(lr * factor, min_lr)`` (if
    it is above ``min_lr``), the counter is reset and the cooldown starts. The new lr is
    used from the next epoch on; the optimiser's state (Adam's moments) is kept. The
    epoch's logs (and History) record the lr the epoch used, under ``"lr"``.

    Parameters
    ----------
    monitor : str
        Key of the epoch logs (default ``"val_loss"``).
    factor : float
        In (0, 1): ``new_lr = lr * factor``.
    patience : int
        Epochs without improvement before a reduction, >= 0.
    min_delta : float
        Threshold of a significant improvement, >= 0.
    cooldown : int
        Epochs after a reduction before counting again, >= 0.
    min_lr : float
        Lower bound on the lr, >= 0.
    mode : {"auto", "min", "max"}
        ``"auto"``: the direction of a known quantity (``loss``, ``mae``, ``mse``, ``rmse`` fall;
        ``accuracy``, ``r2`` rise; with or without ``val_``), else Keras's rule: "max" when
        ``"acc"`` is in the monitor's name, "min" otherwise.
    verbose : int
        1: print each reduction.

    Attributes
    ----------
    best : float
    wait : int
    cooldown_counter : int

    Notes
    -----
    The optimiser's lr must be a number: with a schedule (:mod:`pybackprop.schedules`),
    ``fit`` raises ``ValueError`` at the start (Keras refuses to set a schedule's lr too). A
    missing monitor is a ``ValueError`` (Keras warns and skips). The lr is a float64, and
    ``min_lr`` is compared as such (Keras compares its float32 lr with ``float32(min_lr)``).

    Examples
    --------
    >>> import numpy as np, pybackprop as bp
    >>> X = np.random.default_rng(0).normal(size=(40, 2)); y = X.sum(axis=1)
    >>> m = bp.Sequential([bp.Dense(4, activation="tanh"), bp.Dense(1)], seed=0)
    >>> m.compile(loss="mse", optimizer=bp.SGD(lr=0.1))
    >>> plateau = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=10.0)
    >>> m.fit(X, y, epochs=4, callbacks=[plateau], verbose=0).history["lr"]
    [0.1, 0.1, 0.05, 0.025]
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0, mode: str = "auto", verbose: int = 0) -> None:
        if not isinstance(monitor, str):
            fail("monitor", "the name of a logged quantity such as 'val_loss'", monitor, TypeError)
        self.monitor = monitor
        self.factor = check_float("factor", factor, minimum=0.0, maximum=1.0, min_inclusive=False,
                                  max_inclusive=False)
        self.patience = check_int("patience", patience, minimum=0)
        self.min_delta = check_float("min_delta", min_delta, minimum=0.0)
        self.cooldown = check_int("cooldown", cooldown, minimum=0)
        self.min_lr = check_float("min_lr", min_lr, minimum=0.0)
        self.mode = _check_mode(mode)
        self.verbose = check_int("verbose", verbose, minimum=0)
        name = monitor[4:] if monitor.startswith("val_") else monitor
        known = name in _HIGHER_IS_BETTER or name in _LOWER_IS_BETTER  # the direction EarlyStopping uses
        auto_higher = name in _HIGHER_IS_BETTER if known else "acc" in monitor  # else Keras's rule
        self._higher = self.mode == "max" or (self.mode == "auto" and auto_higher)
        self._reset()

    def _reset(self) -> None:
        self.best = -math.inf if self._higher else math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def _improves(self, value: float) -> bool:
        return value > self.best + self.min_delta if self._higher else value < self.best - self.min_delta

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        opt = self.model.optimizer
        if opt is None or not isinstance(opt.lr, (int, float)):
            fail("optimizer lr (ReduceLROnPlateau)", "a number, not a schedule (the callback sets the lr)",
                 None if opt is None else opt.lr)
        self._reset()

    def on_epoch_end(self, epoch: int, logs: Dict[str, Any]) -> None:
        value = _monitor_value("ReduceLROnPlateau", self.monitor, logs)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improves(value):
            self.best, self.wait = value, 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience:
                opt = self.model.optimizer
                assert opt is not None and isinstance(opt.lr, (int, float))  # checked in on_train_begin
                old = float(opt.lr)
                if old > self.min_lr:
                    opt.lr = max(old * self.factor, self.min_lr)
                    self.model.engine.configure_optimizer(reset_state=False)
                    if self.verbose:
                        print(f"Epoch {epoch}: ReduceLROnPlateau reducing learning rate to {opt.lr}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class CSVLogger(Callback):
    """Write each epoch's logs to a CSV file: Keras's ``CSVLogger``.

    The header is ``epoch`` and the log keys sorted (those of the first epoch); one row
    per epoch, flushed as it is written, so the file can be read during training. A
    per-layer log (``grad_norm``, ``weight_norm``, ``update_ratio``, ``dead_fraction``,
    ``saturated_fraction``, ``nonfinite``, ``keep_prob``) becomes one column per entry,
    ``grad_norm_0``, ``grad_norm_1``, ... (Keras writes a list as one quoted string
    ``"[a, b]"``; separate columns read back as numbers, e.g. with ``pandas.read_csv``).
    A key missing in a later epoch is written ``NA``, a None value as an empty field.
    Unlike Keras, no ``val_*`` columns are added when there is no validation data
    (pybackprop validates every epoch or never). Written on rank 0 only in distributed
    training.

    Parameters
    ----------
    filename : str or os.PathLike
        The file; its directory must exist.
    separator : str
        The field separator, one character (default ``","``).
    append : bool
        Append to an existing file (its header is written only if the file is empty),
        e.g. to continue training; False overwrites.

    Examples
    --------
    >>> import pathlib, tempfile, numpy as np, pybackprop as bp
    >>> X = np.random.default_rng(0).normal(size=(32, 2)); y = X.sum(axis=1)
    >>> m = bp.Sequential([bp.Dense(3, activation="tanh"), bp.Dense(1)], seed=0)
    >>> m.compile(loss="mse", optimizer=bp.SGD(lr=0.1))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
    >>> _ = m.fit(X, y, epochs=2, callbacks=[CSVLogger(path)], verbose=0)
    >>> lines = path.read_text().splitlines()
    >>> lines[0].split(",")[:7], len(lines)
    (['epoch', 'dead_fraction_0', 'dead_fraction_1', 'grad_norm_0', 'grad_norm_1', 'loss', 'lr'], 3)
    """

    root_only = True

    def __init__(self, filename: Any, separator: str = ",", append: bool = False) -> None:
        try:
            self.filename = os.fspath(filename)
        except TypeError:
            fail("filename", "a path (str or os.PathLike)", filename, TypeError)
        if not isinstance(separator, str):
            fail("separator", "a one-character string", separator, TypeError)
        if len(separator) != 1:
            fail("separator", "a one-character string", separator)
        self.separator = separator
        self.append = check_bool("append", append)
        self._file: Any = None
        self._writer: Any = None
        self.keys: Optional[List[str]] = None

    def on_train_begin(self, logs: Optional[Dict[str, Any]] = None) -> None:
        header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename, encoding="utf-8") as f:
                header = not f.readline()
        if self._file is not None and not self._file.closed:
            self._file.close()
        try:
            self._file = open(self.filename, "a" if self.append else "w", newline="", encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"filename: expected a writable file path, got {self.filename!r} ({exc})") from exc
        self._header, self._writer, self.keys = header, None, None

    @staticmethod
    def _cells(key: str, value: Any) -> List[Tuple[str, Any]]:
        if isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) == 1:
            return [(f"{key}_{i}", v) for i, v in enumerate(value)]
        return [(key, value)]

    def on_epoch_end(self, epoch: int, logs: Dict[str, Any]) -> None:
        row: Dict[str, Any] = {"epoch": epoch}
        for key in sorted(logs):
            row.update(self._cells(key, logs[key]))
        if self._writer is None:
            self.keys = [k for k in row if k != "epoch"]
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch", *self.keys], delimiter=self.separator,
                                          restval="NA", extrasaction="ignore", lineterminator="\n")
            if self._header:
                self._writer.writeheader()
        self._writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        self._file.flush()

    def on_train_end(self, logs: Optional[Dict[str, Any]] = None) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
        self._writer = None


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
        self.model.engine.configure_optimizer(reset_state=False)
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

    def on_divergence(self, epoch: int, step: int, loss: float) -> bool:
        self.terminated = True
        return True

    def on_epoch_end(self, epoch: int, logs: Dict[str, Any]) -> None:
        if not math.isfinite(logs["loss"]):
            self.terminated = True
            self.model.stop_training = True
