"""What each estimator parameter accepts: one table, checked in one place at ``fit``.

scikit-learn keeps a declarative ``_parameter_constraints`` table per estimator and
checks it when ``fit`` starts (``__init__`` only stores). This is that table for
:class:`~pybackprop.sklearn.MLPRegressor` and :class:`~pybackprop.sklearn.MLPClassifier`,
written in pybackprop's vocabulary (:mod:`pybackprop._validation`), so the errors are
pybackprop's: a ``TypeError`` for a wrong kind of value, a ``ValueError`` for a wrong
value, the message naming the parameter, what it accepts and what came.

Examples
--------
>>> from pybackprop.sklearn._constraints import PARAMETER_CONSTRAINTS
>>> PARAMETER_CONSTRAINTS["max_iter"]("max_iter", 0)
Traceback (most recent call last):
...
ValueError: max_iter: expected an integer >= 1, got 0 (int)
>>> PARAMETER_CONSTRAINTS["activation"]("activation", "logistic")
'logistic'
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Dict, List

import numpy as np

from .. import activations as _activations
from .._validation import (AnyOf, Boolean, Check, Constraint, Described, Dtype, Integer, Options, Real,
                           check_int, fail)

class InvalidParameterError(ValueError, TypeError):
    """An estimator parameter that its row of the table refuses, raised by ``fit`` and ``partial_fit``.

    Both a ``ValueError`` and a ``TypeError``, as scikit-learn's own
    ``InvalidParameterError``: scikit-learn's convention is ``except ValueError``
    for any bad parameter, pybackprop's is ``TypeError`` for a wrong kind of
    value; either clause catches it. The message is the table's: the
    parameter, what it accepts and what came.
    """


#: scikit-learn's activation names that pybackprop spells otherwise
ACTIVATION_ALIASES = {"logistic": "sigmoid"}
#: the hidden layers' activations: scikit-learn's names and pybackprop's (softmax is for outputs only)
ACTIVATIONS = tuple(sorted({*ACTIVATION_ALIASES, *_activations.ACTIVATIONS, *_activations.ALIASES} - {"softmax"}))
SOLVERS = ("adam", "sgd", "rmsprop", "adagrad", "lbfgs")
#: scikit-learn's learning-rate schedules of solver="sgd"
LEARNING_RATES = ("constant", "invscaling", "adaptive")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


@dataclasses.dataclass(frozen=True)
class HiddenLayerSizes(Constraint):
    """An integer >= 1 or a sequence of them (units of each hidden layer); returns a list of ints.

    >>> HiddenLayerSizes()("hidden_layer_sizes", 10), HiddenLayerSizes()("hidden_layer_sizes", ())
    ([10], [])
    >>> HiddenLayerSizes()("hidden_layer_sizes", (10, 0))
    Traceback (most recent call last):
    ...
    ValueError: hidden_layer_sizes: expected integers >= 1 (units of each hidden layer), got (10, 0) (tuple)
    """

    @property
    def expected(self) -> str:
        return "an integer or a sequence of integers >= 1 such as (100,)"

    def __call__(self, name: str, value: Any) -> List[int]:
        sizes = (value,) if _is_int(value) else value
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            fail(name, self.expected, value, TypeError)
        sizes = list(sizes)
        if not all(_is_int(s) and s >= 1 for s in sizes):
            fail(name, "integers >= 1 (units of each hidden layer)", value)
        return [int(s) for s in sizes]


@dataclasses.dataclass(frozen=True)
class RandomState(Constraint):
    """scikit-learn's ``random_state``: None, an integer in [0, 2**63) or a ``numpy.random.RandomState``
    (returned as it came: the estimator draws its seed from it at every fit)."""

    @property
    def expected(self) -> str:
        return "None, an integer or a numpy.random.RandomState"

    def __call__(self, name: str, value: Any) -> Any:
        if value is None or isinstance(value, np.random.RandomState):
            return value
        if not _is_int(value):
            fail(name, self.expected, value, TypeError)
        if not 0 <= value < 2 ** 63:
            fail(name, "an integer in [0, 2**63)", value)
        return check_int(name, value)


#: The parameters of both estimators, in ``__init__``'s order: ``name: constraint``, where
#: ``constraint(name, value)`` checks a value and returns it normalised (see pybackprop._validation).
#: To add a parameter: a row here, the argument in ``_BaseMLP.__init__`` and its docstring, and its use.
PARAMETER_CONSTRAINTS: Dict[str, Check] = {
    "hidden_layer_sizes": HiddenLayerSizes(),
    "activation": Options(ACTIVATIONS),
    "solver": Options(SOLVERS),
    "alpha": Real(minimum=0.0),
    "batch_size": AnyOf(Options(("auto",)), Integer(minimum=1)),
    "learning_rate": Options(LEARNING_RATES),
    "learning_rate_init": Real(minimum=0.0, min_inclusive=False),
    "power_t": Real(minimum=0.0),
    "max_iter": Integer(minimum=1),
    "shuffle": Boolean(),
    "random_state": RandomState(),
    "tol": Real(minimum=0.0),
    "verbose": AnyOf(Boolean(), Integer(minimum=0)),
    "warm_start": Boolean(),
    "momentum": Real(0.0, 1.0, max_inclusive=False),
    "nesterovs_momentum": Boolean(),
    "early_stopping": Boolean(),
    "validation_fraction": Real(0.0, 1.0, min_inclusive=False, max_inclusive=False),
    "beta_1": Real(0.0, 1.0, max_inclusive=False),
    "beta_2": Real(0.0, 1.0, max_inclusive=False),
    "epsilon": Real(minimum=0.0, min_inclusive=False),
    "n_iter_no_change": Integer(minimum=1),
    "max_fun": Integer(minimum=1),
    "dropout_keep_prob": Described(Real(0.0, 1.0, min_inclusive=False),
                                   "the probability of KEEPING a hidden unit, in (0, 1] (1 = no dropout; "
                                   "the drop rate of Keras/PyTorch is 1 - dropout_keep_prob)"),
    "dtype": Dtype(),
}
