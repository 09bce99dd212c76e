"""Training history and callbacks.

``Callback``, ``History`` and ``ProgressBar`` live in ``pybackprop._history``
(below the engine, whose fit loop uses them) and are re-exported here.
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
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from ._history import Callback, History, ProgressBar
from ._validation import check_float, check_int, fail


__all__ = ["Callback", "EarlyStopping", "History", "LearningRateScheduler", "ModelCheckpoint", "ProgressBar",
           "TerminateOnNaN"]


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
