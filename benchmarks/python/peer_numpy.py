"""NumPy by hand: the MLP a practitioner would write in plain NumPy — forward,
loss gradient, backward and SGD update with ``@`` (OpenBLAS) and elementwise
ufuncs, in the workload's dtype, one Python iteration per batch.

Dropout: inverted, ``x * mask / keep`` with a mask from NumPy's own generator.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from pybackprop.bench.peers import Context, Runner, limit_blas_threads


def _activate(name: str, z: np.ndarray) -> np.ndarray:
    if name == "relu":
        return np.maximum(z, 0, out=z)
    if name == "tanh":
        return np.tanh(z, out=z)
    if name == "sigmoid":
        np.negative(z, out=z)
        np.exp(z, out=z)
        z += 1
        return np.reciprocal(z, out=z)
    if name == "identity":
        return z
    raise ValueError(name)


def _derivative(name: str, h: np.ndarray) -> np.ndarray:
    """f'(z) from h = f(z)."""
    if name == "relu":
        return (h > 0).astype(h.dtype)
    if name == "tanh":
        return 1 - h * h
    if name == "sigmoid":
        return h * (1 - h)
    raise ValueError(name)


def setup(ctx: Context) -> Runner:
    limit_blas_threads(ctx)
    wl = ctx.workload
    dt = np.dtype(wl.dtype)
    W: List[np.ndarray] = [w.copy() for w, _ in ctx.init]
    b: List[Optional[np.ndarray]] = [None if bb is None else bb.copy() for _, bb in ctx.init]
    vW = [np.zeros_like(w) for w in W] if wl.momentum else None
    vb = [None if bb is None else np.zeros_like(bb) for bb in b] if wl.momentum else None
    acts = [a for _, a in wl.layers]
    L = len(W)
    lr, mu, keep = dt.type(wl.lr), dt.type(wl.momentum), wl.keep_prob
    rng = np.random.default_rng(0)
    ce = wl.loss == "softmax_ce"
    n = ctx.n_epoch
    batches = [(ctx.X[s:s + wl.batch], ctx.Y[s:s + wl.batch]) for s in range(0, n, wl.batch)]
    X, Y = ctx.X, ctx.Y

    def forward(a: np.ndarray) -> np.ndarray:
        for k in range(L):
            z = a @ W[k]
            if b[k] is not None:
                z += b[k]
            a = _activate(acts[k], z)
        return a

    def step(xb: np.ndarray, yb: np.ndarray) -> None:
        B = xb.shape[0]
        inputs, hs, masks = [], [], []
        a = xb
        for k in range(L):
            inputs.append(a)
            z = a @ W[k]
            if b[k] is not None:
                z += b[k]
            h = _activate(acts[k], z)
            hs.append(h)
            if keep is not None and k < L - 1:
                m = (rng.random(h.shape, dtype=dt) < keep).astype(dt)
                m *= dt.type(1.0 / keep)
                masks.append(m)
                a = h * m
            else:
                masks.append(None)
                a = h
        if ce:
            p = a - a.max(axis=1, keepdims=True)
            np.exp(p, out=p)
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(B), yb] -= 1
            d = p * dt.type(1.0 / B)
        else:
            d = (a - yb) * dt.type(2.0 / a.size)  # d mean((a - y)^2) / da
        for k in range(L - 1, -1, -1):
            gW = inputs[k].T @ d
            gb = d.sum(axis=0) if b[k] is not None else None
            if k > 0:
                da = d @ W[k].T
                if masks[k - 1] is not None:
                    da *= masks[k - 1]
                d = da * _derivative(acts[k - 1], hs[k - 1])
            if vW is not None:
                vW[k] *= mu
                vW[k] += gW
                gW = vW[k]
                if gb is not None:
                    vb[k] *= mu  # type: ignore[index]
                    vb[k] += gb  # type: ignore[index]
                    gb = vb[k]  # type: ignore[index]
            W[k] -= lr * gW
            if gb is not None:
                b[k] -= lr * gb  # type: ignore[operator]

    def epoch() -> None:
        for xb, yb in batches:
            step(xb, yb)

    def loss() -> float:
        out = forward(X)
        if ce:
            z = out - out.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            return float(-logp[np.arange(len(Y)), Y].mean())
        return float(np.mean((out - Y) ** 2))

    return Runner(epoch, loss, version=f"numpy {np.__version__}")
