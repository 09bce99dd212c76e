"""The types the epoch loop talks to: the Callback protocol, History and the ProgressBar.

They sit below the engine (``_engine.py``) so that the engine's one fit loop can
use them while imports keep pointing one way; :mod:`pybackprop.callbacks`
re-exports them (``pybackprop.callbacks.History`` is this class) beside the
callbacks that act on a model.

>>> from pybackprop.callbacks import History
>>> h = History(); h.append(0, {"loss": 1.5}); h.history
{'loss': [1.5]}
"""
from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - for typing only: model.py imports this module
    from .model import Sequential


class Callback:
    """Base class. Override any of the hooks; ``self.model`` is set by ``fit``.

    The hooks run between epochs, never inside the C++ loop. ``on_divergence``
    is asked when a step's loss or gradient is NaN/inf: return True to stop
    training without an error (what :class:`~pybackprop.callbacks.TerminateOnNaN`
    does); when no callback returns True, ``fit`` raises
    :class:`pybackprop.DivergenceError`.

    Examples
    --------
    >>> class Count(Callback):
    ...     def on_train_begin(self, logs=None):
    ...         self.epochs = 0
    ...     def on_epoch_end(self, epoch, logs):
    ...         self.epochs += 1
    >>> Count().on_divergence(0, 0, float("nan"))
    False
    """

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

    def on_divergence(self, epoch: int, step: int, loss: float) -> bool:
        """Step ``step`` of ``epoch`` met a NaN/inf loss ``loss``: True stops training without an error."""
        return False


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
        ``"momentum"`` (a ``OneCycle`` lr that cycles the momentum): the momentum,
        or Adam's beta1, of the epoch's first step;
        ``"keep_prob"`` (models with Dropout): per epoch, the list of each
        Dropout's keep probability at the first step; ``"val_loss"`` with
        validation data. With ``compile(metrics=[...])``, each metric by its name
        (``"accuracy"``, ``"mae"``, ...): over the epoch's training-mode
        predictions, each row's output before its step's update, as Keras
        reports it (see :mod:`pybackprop.metrics`), and ``"val_<name>"`` over
        the validation data at the epoch's end. With ``sample_weight``,
        ``"loss"`` and ``"val_loss"`` are the weighted ``sum(w_i * l_i) / n``.
    steps : dict
        Per-step values actually used by the C++ loop, concatenated over epochs:
        ``steps["lr"]`` of shape (total_steps,), ``steps["keep_prob"]`` of shape
        (total_steps, n_dropout_layers), ``steps["momentum"]`` (total_steps,) when
        a ``OneCycle`` cycles the momentum (SGD's, RMSprop's; Adam's beta1).
    epoch : list of int
        The model's epoch numbers (they continue across ``fit`` calls).
    params : dict
        ``epochs``, ``batch_size``, ``samples``, ``steps`` of the ``fit`` call
        (and ``ranks`` in distributed training).

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

    def _repr_html_(self) -> str:
        """What a notebook shows for ``hist``: the loss curves and the per-layer gradient norms, as SVG.

        Examples
        --------
        >>> h = History(); h.append(0, {"loss": 1.0, "grad_norm": [0.5]}); h.append(1, {"loss": 0.4, "grad_norm": [0.3]})
        >>> h._repr_html_().count("<svg")
        2
        """
        from ._svg import history_html

        return history_html(self.history)


class ProgressBar(Callback):
    """Progress of ``fit(verbose=1)``: a bar over the epochs with loss, the metrics, val_loss,
    the validation metrics, samples/s.

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
        names = [m.name for m in getattr(self.model, "metrics", [])]  # compiled metrics, in order
        parts += [f"{name}: {logs[name]:.6g}" for name in names if name in logs]
        if "val_loss" in logs:
            parts.append(f"val_loss: {logs['val_loss']:.6g}")
        parts += [f"val_{name}: {logs['val_' + name]:.6g}" for name in names if "val_" + name in logs]
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


for _cls in (Callback, History, ProgressBar):  # their documented home
    _cls.__module__ = "pybackprop.callbacks"
