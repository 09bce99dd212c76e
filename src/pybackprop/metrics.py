"""Metrics for ``compile(metrics=[...])``: reported per epoch in ``History``, by the progress
line and by ``evaluate``.

A metric is a function of the targets and the predictions of a whole data set,
``(y_true, y_pred) -> float``, both of shape ``(n_samples, n_outputs)``: the
targets as the model trains on them (one-hot rows for integer class labels with
``categorical_crossentropy``) and the model's outputs (probabilities after a
sigmoid or softmax output layer).

What ``fit`` computes them over, as Keras reports them: the training value of an
epoch is the metric of the epoch's *training-mode* predictions, each sample's
output as the forward pass of its own step saw it, before that step's update
(the C++ loop copies those rows out; the metric runs once per epoch, no Python
per batch). For the per-sample means (``accuracy``, ``mae``, ``mse``) this is
exactly Keras's running mean over the epoch's batches; ``rmse`` and ``r2`` are
the epoch's accumulated values as Keras's ``RootMeanSquaredError`` and
``R2Score`` give them. ``val_<name>`` is the metric of ``predict`` on the
validation data at the epoch's end, and ``evaluate`` the metric of ``predict``.
A callable is called once per epoch on the whole epoch's rows (Keras averages a
function's per-batch values: equal for per-sample means, not for a nonlinear
function of the batch). Metrics are not weighted by ``sample_weight`` or
``class_weight`` (Keras's ``metrics``, not its ``weighted_metrics``).

Built-in names
--------------
``"accuracy"``
    With one output, or the ``binary_crossentropy`` loss: the share of outputs
    whose 0.5 threshold equals the target (Keras's ``binary_accuracy``);
    otherwise the share of rows whose argmax of the predictions equals the
    target's (``categorical_accuracy``; integer labels are one-hot rows here).
``"mae"``, ``"mse"``, ``"rmse"``
    Mean absolute error, mean squared error and its square root, over all outputs.
``"r2"``
    The coefficient of determination of each output, averaged over the outputs
    (scikit-learn's ``r2_score`` with ``multioutput="uniform_average"``; an
    output of constant targets scores 1.0 when predicted exactly, else 0.0).

Examples
--------
>>> import numpy as np
>>> m = get("accuracy")
>>> m.name, m(np.array([[1.0], [0.0]]), np.array([[0.9], [0.7]]), "binary_crossentropy")
('accuracy', 0.5)
>>> get("rmse")(np.zeros((2, 1)), np.array([[3.0], [4.0]]), "mse") == float(np.sqrt(12.5))
True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from ._validation import fail

#: the built-in metric names, in the order they are documented
METRICS = ("accuracy", "mae", "mse", "rmse", "r2")


def accuracy(y_true: np.ndarray, y_pred: np.ndarray, loss: Optional[str] = None) -> float:
    """Binary (0.5 threshold) accuracy for one output or a binary cross-entropy, else categorical (argmax).

    >>> accuracy(np.eye(3), np.array([[0.8, 0.1, 0.1], [0.5, 0.2, 0.3], [0.0, 0.0, 1.0]]))
    0.6666666666666666
    """
    if y_true.shape[1] == 1 or loss == "binary_crossentropy":
        return float(np.mean(y_true == (y_pred > 0.5)))
    return float(np.mean(np.argmax(y_pred, axis=1) == np.argmax(y_true, axis=1)))


def mae(y_true: np.ndarray, y_pred: np.ndarray, loss: Optional[str] = None) -> float:
    """Mean absolute error over every output.

    >>> mae(np.zeros((2, 1)), np.array([[1.0], [-3.0]]))
    2.0
    """
    return float(np.mean(np.abs(np.asarray(y_pred, np.float64) - y_true)))


def mse(y_true: np.ndarray, y_pred: np.ndarray, loss: Optional[str] = None) -> float:
    """Mean squared error over every output.

    >>> mse(np.zeros((2, 1)), np.array([[1.0], [-3.0]]))
    5.0
    """
    d = np.asarray(y_pred, np.float64) - y_true
    return float(np.mean(d * d))


def rmse(y_true: np.ndarray, y_pred: np.ndarray, loss: Optional[str] = None) -> float:
    """The square root of :func:`mse`.

    >>> rmse(np.zeros((2, 1)), np.array([[1.0], [-3.0]])) == float(np.sqrt(5.0))
    True
    """
    return float(np.sqrt(mse(y_true, y_pred)))


def r2(y_true: np.ndarray, y_pred: np.ndarray, loss: Optional[str] = None) -> float:
    """R² per output, averaged over the outputs (scikit-learn's ``r2_score``, ``force_finite``).

    >>> r2(np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [2.0], [4.0]]))
    0.5
    """
    y = np.asarray(y_true, np.float64)
    ss_res = np.sum((y - np.asarray(y_pred, np.float64)) ** 2, axis=0)
    ss_tot = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
    safe = np.where(ss_tot > 0, ss_tot, 1.0)
    scores = np.where(ss_tot > 0, 1.0 - ss_res / safe, np.where(ss_res == 0, 1.0, 0.0))
    return float(np.mean(scores))


_BUILTIN: Dict[str, Callable[..., float]] = {"accuracy": accuracy, "mae": mae, "mse": mse, "rmse": rmse, "r2": r2}


@dataclass(frozen=True)
class Metric:
    """One compiled metric: its ``name`` (the History key) and its function.

    ``fn`` is a built-in's ``(y_true, y_pred, loss)`` or a user's ``(y_true, y_pred)``.
    """

    name: str
    fn: Callable[..., Any]
    builtin: bool

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray, loss: Optional[str]) -> float:
        """The metric's value (a user function's result must be a real number)."""
        if self.builtin:
            return self.fn(np.asarray(y_true, np.float64), y_pred, loss)  # type: ignore[no-any-return]
        value = self.fn(y_true, y_pred)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise TypeError(f"metric {self.name!r}: expected the function to return a real number, "
                            f"got {type(value).__name__}") from None


def get(identifier: Any, where: str = "metrics") -> Metric:
    """A :class:`Metric` from a built-in name (:data:`METRICS`) or a callable (named by ``__name__``).

    >>> get(lambda y, p: 0.0).name
    '<lambda>'
    >>> get("f1")
    Traceback (most recent call last):
    ...
    ValueError: metrics: expected one of 'accuracy', 'mae', 'mse', 'rmse', 'r2' or a callable (y_true, y_pred) -> float, got 'f1' (str)
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _BUILTIN:
            names = ", ".join(repr(m) for m in METRICS)
            fail(where, f"one of {names} or a callable (y_true, y_pred) -> float", identifier)
        return Metric(identifier, _BUILTIN[identifier], True)
    if callable(identifier):
        name = getattr(identifier, "__name__", None) or type(identifier).__name__
        return Metric(str(name), identifier, False)
    fail(where, "a metric name (one of " + ", ".join(METRICS) + ") or a callable (y_true, y_pred) -> float",
         identifier, TypeError)
    raise AssertionError  # pragma: no cover - fail raises


def get_list(metrics: Any, reserved: Sequence[str] = ()) -> List[Metric]:
    """The compiled list from ``compile(metrics=...)``: None or a list/tuple of names and callables,
    unique names, none of them a name of ``reserved`` (History's own keys) nor starting with ``val_``.

    >>> [m.name for m in get_list(["accuracy", "r2"])]
    ['accuracy', 'r2']
    """
    if metrics is None:
        return []
    if isinstance(metrics, str) or callable(metrics) or not isinstance(metrics, (list, tuple)):
        fail("metrics", "a list of metric names or callables, e.g. ['accuracy']", metrics, TypeError)
    out: List[Metric] = []
    for i, identifier in enumerate(metrics):
        m = get(identifier, f"metrics[{i}]")
        if m.name in reserved or m.name.startswith("val_") or any(m.name == o.name for o in out):
            fail(f"metrics[{i}]", "a metric whose name is not already a History key "
                 f"(loss, val_*, the diagnostics) nor another metric's", m.name)
        out.append(m)
    return out
