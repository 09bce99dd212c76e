"""JAX runners: ``setup_step`` (a jitted train step called once per batch from
Python, the state donated) and ``setup_scan`` (a jitted ``lax.scan`` over the
whole epoch: one call per epoch). Batches are device arrays made before timing;
every epoch ends with ``block_until_ready``. Compile time is excluded from the
timing and reported as ``compile_s`` (the first call, on a copy of the state).

Threads: XLA sizes its CPU pools from the schedulable CPUs (the harness pins
the process) and, at 1 thread, ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``
(set by the harness before the import).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Tuple

import numpy as np

from pybackprop.bench.peers import Context, PeerUnavailable, Runner
from pybackprop.bench.workloads import Workload


def _jax() -> Any:
    try:
        import jax
    except ImportError as exc:  # the harness normally skips before spawning
        raise PeerUnavailable(f"jax: not installed ({exc}); pip install jax jaxlib") from exc
    return jax


def _build(ctx: Context) -> Tuple[Any, Callable, Callable, Any]:
    jax = _jax()
    wl: Workload = ctx.workload
    if wl.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    dt = jnp.dtype(wl.dtype)
    acts = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid, "identity": lambda z: z}
    fs = [acts[a] for _, a in wl.layers]
    L, keep, lr, mu = len(fs), wl.keep_prob, wl.lr, wl.momentum
    ce = wl.loss == "softmax_ce"

    def forward(params: Any, x: Any, key: Any = None) -> Any:
        for k, (W, b) in enumerate(params):
            z = x @ W
            if b is not None:
                z = z + b
            x = fs[k](z)
            if key is not None and keep is not None and k < L - 1:
                key, sub = jax.random.split(key)
                mask = jax.random.bernoulli(sub, keep, x.shape)
                x = jnp.where(mask, x / keep, 0).astype(dt)
        return x

    def loss_fn(params: Any, x: Any, y: Any, key: Any = None) -> Any:
        out = forward(params, x, key)
        if ce:
            logp = jax.nn.log_softmax(out, axis=-1)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
        return jnp.mean((out - y) ** 2)

    grad_fn = jax.value_and_grad(loss_fn)

    def step(state: Any, batch: Any) -> Tuple[Any, Any]:
        params, vel, key = state
        x, y = batch
        key, sub = jax.random.split(key)
        loss, g = grad_fn(params, x, y, sub if keep is not None else None)
        if mu:
            vel = jax.tree_util.tree_map(lambda v, gg: mu * v + gg, vel, g)
            upd = vel
        else:
            upd = g
        params = jax.tree_util.tree_map(lambda p, u: p - lr * u, params, upd)
        return (params, vel, key), loss

    params = [(jnp.asarray(W), None if b is None else jnp.asarray(b)) for W, b in ctx.init]
    vel = jax.tree_util.tree_map(jnp.zeros_like, params) if mu else None
    state = (params, vel, jax.random.PRNGKey(0))
    eval_loss = jax.jit(lambda p, x, y: loss_fn(p, x, y))
    return state, step, eval_loss, jnp


def _copy(jax: Any, tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda a: a.copy(), tree)


def setup_step(ctx: Context) -> Runner:
    """A jitted train step, one Python call per batch."""
    jax = _jax()
    state, step, eval_loss, jnp = _build(ctx)
    wl = ctx.workload
    n = ctx.n_epoch
    batches = [(jnp.asarray(ctx.X[s:s + wl.batch]), jnp.asarray(ctx.Y[s:s + wl.batch]))
               for s in range(0, n, wl.batch)]
    X, Y = jnp.asarray(ctx.X), jnp.asarray(ctx.Y)
    jstep = jax.jit(step, donate_argnums=0)
    t0 = time.perf_counter()
    jax.block_until_ready(jstep(_copy(jax, state), batches[0]))
    compile_s = time.perf_counter() - t0
    box = [state]

    def epoch() -> None:
        s = box[0]
        for batch in batches:
            s, _ = jstep(s, batch)
        box[0] = jax.block_until_ready(s)

    return Runner(epoch, lambda: float(eval_loss(box[0][0], X, Y)), compile_s=compile_s,
                  version=f"jax {jax.__version__}")


def setup_scan(ctx: Context) -> Runner:
    """A jitted ``lax.scan`` over the epoch's batches: one call per epoch."""
    jax = _jax()
    state, step, eval_loss, jnp = _build(ctx)
    wl = ctx.workload
    n = ctx.n_epoch
    Xs = jnp.asarray(ctx.X[:n].reshape(wl.steps, wl.batch, -1))
    Ys = jnp.asarray(ctx.Y[:n].reshape((wl.steps, wl.batch) + ctx.Y.shape[1:]))
    X, Y = jnp.asarray(ctx.X), jnp.asarray(ctx.Y)

    def run_epoch(s: Any, xs: Any, ys: Any) -> Any:
        s, losses = jax.lax.scan(step, s, (xs, ys))
        return s, losses.mean()

    jepoch = jax.jit(run_epoch, donate_argnums=0)
    t0 = time.perf_counter()
    jax.block_until_ready(jepoch(_copy(jax, state), Xs, Ys))
    compile_s = time.perf_counter() - t0  # compile plus one epoch's run
    box = [state]

    def epoch() -> None:
        s, _ = jepoch(box[0], Xs, Ys)
        box[0] = jax.block_until_ready(s)

    return Runner(epoch, lambda: float(eval_loss(box[0][0], X, Y)), compile_s=compile_s,
                  version=f"jax {jax.__version__}")


if __name__ == "__main__":  # a smoke check: python peer_jax.py
    from pybackprop.bench.workloads import WORKLOADS, init_weights, make_data

    wl = WORKLOADS["small"]
    X, Y = make_data(wl)
    for fn in (setup_step, setup_scan):
        r = fn(Context(wl, X, Y, init_weights(wl), 1))
        l0 = r.loss()
        r.epoch()
        print(fn.__name__, l0, r.loss(), np.round(r.compile_s or 0, 2))
