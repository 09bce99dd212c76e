"""pybackprop.reference's runner: the pure-NumPy twin (readable, slow; the
small workloads only), built from the same config and weights as pybackprop's
model and trained with its own ``fit``."""
from __future__ import annotations

import numpy as np

from . import Context, Runner, limit_blas_threads
from .pybackprop import pybackprop_model, targets_for_fit

__all__ = ["setup"]


def setup(ctx: Context) -> Runner:
    """pybackprop.reference: the pure-NumPy twin (readable, slow)."""
    from pybackprop import reference

    limit_blas_threads(ctx)
    wl = ctx.workload
    model = pybackprop_model(wl, ctx.init)
    net = reference.Network.from_config(model.get_config(), model.get_weights())
    del model
    Xe = ctx.X[:ctx.n_epoch]
    Ye = targets_for_fit(wl, ctx.Y[:ctx.n_epoch])
    X, Y = ctx.X, targets_for_fit(wl, ctx.Y)

    def epoch() -> None:
        net.fit(Xe, Ye, epochs=1, batch_size=wl.batch, shuffle=False)

    return Runner(epoch, lambda: float(net.evaluate(X, Y)), version=f"numpy {np.__version__}")
