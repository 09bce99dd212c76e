"""scikit-learn runner: ``MLPRegressor`` / ``MLPClassifier`` with
``solver="sgd"``, ``alpha=0``, constant learning rate, ``shuffle=False``, one
``partial_fit(X_epoch, Y_epoch)`` per epoch (sklearn then walks the epoch in
mini-batches of ``batch_size``: the boundary is crossed once per epoch, as
for pybackprop).

Made equal to the other peers where sklearn allows it:

- initial weights: sklearn initialises on its first ``partial_fit``; the setup
  makes that call on one batch, then overwrites ``coefs_``/``intercepts_``
  with WORKLOADS' init and zeroes the optimiser's velocities;
- loss scale: sklearn's squared error is ``sum((p - y)²) / (2·n)`` per output
  column summed, so its gradient is ``n_out / 2`` times torch's MSELoss
  gradient; the learning rate is scaled by ``2 / n_out`` to take identical
  steps. Softmax cross-entropy matches directly;
- momentum: sklearn's ``v = μ v - lr g; w += v`` equals torch's with a
  constant lr.

Where it cannot (reported in the record's note): one activation for all hidden
layers and always biases (the seed networks run as relu/relu with biases
starting at zero), and no dropout (mnist-like runs without it).
"""
from __future__ import annotations

import warnings

import numpy as np

from pybackprop.bench.peers import Context, PeerUnavailable, Runner, limit_blas_threads

_ACT = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic", "identity": "identity"}


def setup(ctx: Context) -> Runner:
    try:
        import sklearn
        from sklearn.neural_network import MLPClassifier, MLPRegressor
    except ImportError as exc:
        raise PeerUnavailable(f"scikit-learn: not installed ({exc}); pip install scikit-learn") from exc
    limit_blas_threads(ctx)
    warnings.filterwarnings("ignore")  # ConvergenceWarning on every partial_fit
    wl = ctx.workload
    hidden = tuple(u for u, _ in wl.layers[:-1])
    hidden_acts = {a for _, a in wl.layers[:-1]}
    if len(hidden_acts) == 1:
        activation = _ACT[hidden_acts.pop()]
    else:
        activation = "relu"
        ctx.notes.append("approximate: sklearn has one hidden activation, relu/relu instead of relu/sigmoid")
    if not wl.bias:
        ctx.notes.append("approximate: sklearn always has biases (they start at 0 and train)")
    if wl.keep_prob is not None:
        ctx.notes.append("no dropout (sklearn's MLP has none)")
    ce = wl.loss == "softmax_ce"
    common = dict(hidden_layer_sizes=hidden, activation=activation, solver="sgd", alpha=0.0,
                  batch_size=wl.batch, learning_rate="constant", momentum=wl.momentum,
                  nesterovs_momentum=False, shuffle=False, early_stopping=False, tol=0.0,
                  n_iter_no_change=10**9, max_iter=1, random_state=0)
    n = ctx.n_epoch
    Xe = ctx.X[:n]
    if ce:
        est = MLPClassifier(learning_rate_init=wl.lr, **common)
        Ye = ctx.Y[:n]
        est.partial_fit(Xe[:wl.batch], Ye[:wl.batch], classes=np.arange(wl.n_out))
    else:
        est = MLPRegressor(learning_rate_init=wl.lr * 2.0 / wl.n_out, **common)
        Ye = ctx.Y[:n, 0] if wl.n_out == 1 else ctx.Y[:n]
        est.partial_fit(Xe[:wl.batch], Ye[:wl.batch])
    for k, (W, b) in enumerate(ctx.init):
        if est.coefs_[k].shape != W.shape:
            raise PeerUnavailable(f"scikit-learn: unexpected layer shapes {est.coefs_[k].shape}")
        est.coefs_[k][...] = W
        est.intercepts_[k][...] = 0 if b is None else b
    if est.coefs_[0].dtype != np.dtype(wl.dtype):
        ctx.notes.append(f"sklearn trains in {est.coefs_[0].dtype}")
    opt = getattr(est, "_optimizer", None)
    if opt is not None and hasattr(opt, "velocities"):
        opt.velocities = [np.zeros_like(v) for v in opt.velocities]
    X, Y = ctx.X, ctx.Y

    def epoch() -> None:
        est.partial_fit(Xe, Ye)

    def loss() -> float:
        if ce:
            p = est.predict_proba(X)
            return float(-np.mean(np.log(np.maximum(p[np.arange(len(Y)), Y], 1e-30))))
        pred = est.predict(X).reshape(len(X), -1)
        return float(np.mean((pred - Y) ** 2))

    return Runner(epoch, loss, version=f"scikit-learn {sklearn.__version__}")
