"""pybackprop's runner: ``model.fit(X, Y, epochs=1, batch_size=B, shuffle=False)``
per timed epoch on the drop-last prefix, so the Python boundary is crossed once
per epoch; weights set with ``set_weights`` from the workload's init,
``Dropout(keep_prob=0.8)`` on mnist-like.

:func:`pybackprop_model` (the workload as a compiled ``Sequential``) and
:func:`targets_for_fit` are shared with the reference's runner.
"""
from __future__ import annotations

from typing import Any, List, Optional

import numpy as np

from ..workloads import InitWeights, Workload
from . import Context, Runner

__all__ = ["setup", "pybackprop_model", "targets_for_fit"]


def pybackprop_model(wl: Workload, init: Optional[InitWeights] = None):  # type: ignore[no-untyped-def]
    """The workload as a compiled ``bp.Sequential``.

    Parameters
    ----------
    wl : Workload
        The workload: its layers, bias, loss (softmax cross-entropy as a
        softmax output with ``categorical_crossentropy``), dropout, dtype and
        SGD settings.
    init : list of (ndarray, ndarray or None), optional
        Weights to set (those of ``init_weights(wl)``); None keeps the
        model's own seeded initialisation.

    Returns
    -------
    Sequential
        Compiled, seed 0.

    Examples
    --------
    >>> from pybackprop.bench.workloads import WORKLOADS
    >>> pybackprop_model(WORKLOADS["seed-sgd"]).count_params()
    32
    """
    import pybackprop as bp

    layers: List[Any] = []
    for k, (units, act) in enumerate(wl.layers):
        last = k == len(wl.layers) - 1
        if last and wl.loss == "softmax_ce":
            act = "softmax"
        layers.append(bp.Dense(units, activation=act, use_bias=wl.bias))
        if wl.keep_prob is not None and not last:
            layers.append(bp.Dropout(keep_prob=wl.keep_prob))
    model = bp.Sequential(layers, input_dim=wl.n_in, dtype=wl.dtype, seed=0)
    model.compile(loss="mse" if wl.loss == "mse" else "categorical_crossentropy",
                  optimizer=bp.SGD(lr=wl.lr, momentum=wl.momentum))
    if init is not None:
        model.set_weights([a for W, b in init for a in ((W,) if b is None else (W, b))])
    return model


def targets_for_fit(wl: Workload, Y: np.ndarray) -> np.ndarray:
    """The targets ``fit`` takes: ``Y`` for MSE, the one-hot rows of the labels
    (in the workload's dtype) for softmax cross-entropy.

    Examples
    --------
    >>> from pybackprop.bench.workloads import WORKLOADS
    >>> targets_for_fit(WORKLOADS["mnist-like"], np.array([2, 0]))[:, :3]
    array([[0., 0., 1.],
           [1., 0., 0.]], dtype=float32)
    """
    if wl.loss == "softmax_ce":
        onehot = np.zeros((len(Y), wl.n_out), dtype=wl.dtype)
        onehot[np.arange(len(Y)), Y] = 1
        return onehot
    return Y


def setup(ctx: Context) -> Runner:
    """pybackprop: ``fit(epochs=1, shuffle=False)`` per epoch on the drop-last
    prefix, so the Python boundary is crossed once per epoch."""
    import pybackprop as bp

    wl = ctx.workload
    bp.set_num_threads(ctx.threads)
    model = pybackprop_model(wl, ctx.init)
    Xe = ctx.X[:ctx.n_epoch]
    Ye = targets_for_fit(wl, ctx.Y[:ctx.n_epoch])  # made before timing, like every peer's batches
    X, Y = ctx.X, ctx.Y

    def epoch() -> None:
        model.fit(Xe, Ye, epochs=1, batch_size=wl.batch, shuffle=False, verbose=0)

    info = bp.build_info()
    return Runner(epoch, lambda: float(model.evaluate(X, Y)),
                  version=f"{bp.__version__} ({info.get('isa')}, openmp {info.get('openmp')})")
