"""pybackprop: multi-layer perceptrons trained by backpropagation.

A fast C++ core driven from NumPy, with a readable pure-NumPy twin
(:mod:`pybackprop.reference`) that computes the same numbers.

>>> import pybackprop as bp
>>> model = bp.Sequential([bp.Dense(4, activation="relu"), bp.Dense(1)], input_dim=3, seed=0)
>>> model.compile(loss="mse", optimizer=bp.SGD(lr=0.01))
"""
from __future__ import annotations

import os
from typing import Any, Dict

# OpenMP worker threads of the core spin briefly, then sleep, between parallel
# regions. GNU OpenMP's default (spinning ~300,000 times) makes a second thread
# several times *slower* when the machine's cores are shared with other work;
# a short spin costs a few percent on an idle machine. Set GOMP_SPINCOUNT (or
# OMP_WAIT_POLICY) yourself before importing pybackprop to choose otherwise.
if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "1000"

from . import _core, activations, callbacks, diagnostics, initializers, losses, metrics, optimizers, schedules
from ._validation import check_int
from .callbacks import (Callback, CSVLogger, EarlyStopping, History, LearningRateScheduler, ModelCheckpoint,
                        ProgressBar, ReduceLROnPlateau, TerminateOnNaN)
from .diagnostics import gradient_check
from .io import load
from .layers import BatchNorm, Dense, Dropout, Layer, LayerNorm
from ._engine import DivergenceError, GradientFlowWarning
from .model import Sequential
from .optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop

__version__: str = _core.build_info()["version"]

__all__ = [
    "Adagrad", "Adam", "AdamW", "BatchNorm", "CSVLogger", "Callback", "Dense", "DivergenceError", "Dropout",
    "EarlyStopping", "GradientFlowWarning", "History", "Layer", "LayerNorm", "LearningRateScheduler", "ModelCheckpoint",
    "Optimizer", "ProgressBar", "RMSprop", "ReduceLROnPlateau", "SGD", "Sequential",
    "TerminateOnNaN", "activations", "build_info", "callbacks", "diagnostics", "get_num_threads", "gradient_check", "initializers", "load",
    "losses", "metrics", "optimizers", "schedules", "set_num_threads",
]


#: submodules with an optional dependency, imported on first use as bp.export / bp.interop
_LAZY_SUBMODULES = ("export", "interop")


def __getattr__(name: str) -> Any:
    """``bp.export`` (needs onnx) and ``bp.interop`` (needs torch), imported when first used."""
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def set_num_threads(n: int) -> None:
    """Set how many threads the core may use (default: the CPUs this process may run on).

    Results are bitwise identical for any thread count. A count above the CPUs this
    process may run on is kept (``get_num_threads`` returns it) but the core's parallel
    regions take at most that many CPUs' worth of threads: more would only oversubscribe
    them.

    >>> import pybackprop as bp
    >>> old = bp.get_num_threads(); bp.set_num_threads(1); bp.get_num_threads()
    1
    >>> bp.set_num_threads(old)
    """
    _core.set_num_threads(check_int("n", n, minimum=1))


def get_num_threads() -> int:
    """The core's thread count (see :func:`set_num_threads`)."""
    return int(_core.get_num_threads())


def build_info() -> Dict[str, Any]:
    """How the core was built: version, compiler, OpenMP, instruction set, CPUs.

    >>> sorted(build_info())
    ['compiler', 'cpus', 'isa', 'openmp', 'version']
    """
    return dict(_core.build_info())
