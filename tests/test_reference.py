"""Tests of pybackprop.reference alone (no _core): derivatives, RNG, init, SGD, training."""

from __future__ import annotations

import ast
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from pybackprop.reference import (
    ACTIVATIONS, LOSSES, PCG32, Network, dense_backward, dense_forward,
    init_weights, noise, permutation, sgd_update, stream,
)
from pybackprop.reference import rng

REFERENCE_DIR = pathlib.Path(__file__).resolve().parents[1] / "src" / "pybackprop" / "reference"
ACT_PARAMS = {"leaky_relu": {"alpha": 0.2}, "elu": {"alpha": 0.7}, "noisy_relu": {"sigma": 0.3}}
ALL_ACTIVATIONS = sorted(ACTIVATIONS)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """Relative error of two arrays, by norms (0 when both are 0)."""
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


def numeric_grad(fun, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar fun() with respect to x (changed in place, restored)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = fun()
        x[i] = old - eps
        down = fun()
        x[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


def away_from_kinks(rng_: np.random.Generator, shape) -> np.ndarray:
    """Values in [-3, 3] kept at least 0.05 from 0 (relu, leaky, elu and mae kinks)."""
    z = rng_.uniform(-3, 3, size=shape)
    return np.where(np.abs(z) < 0.05, 0.5, z)


# ------------------------------------------------------------------ activations

@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_activation_derivative_matches_central_differences(name):
    act, params = ACTIVATIONS[name], ACT_PARAMS.get(name, {})
    r = np.random.default_rng(1)
    z = away_from_kinks(r, (4, 5))
    dA = r.normal(size=z.shape)
    analytic = act.df(z, act.f(z, **params), dA, **params)
    numeric = numeric_grad(lambda: float(np.sum(dA * act.f(z, **params))), z)
    assert rel_err(analytic, numeric) < 1e-8, name


def test_softplus_derivative_across_threshold():
    act = ACTIVATIONS["softplus"]
    z = np.array([[19.0, 19.9, 20.5, 25.0, -30.0]])
    dA = np.ones_like(z)
    numeric = numeric_grad(lambda: float(np.sum(act.f(z))), z)
    assert rel_err(act.df(z, act.f(z), dA), numeric) < 1e-8
    assert act.f(np.array([[25.0]]))[0, 0] == 25.0


def test_derivative_conventions_at_zero():
    z = np.zeros((1, 3))
    dA = np.ones_like(z)
    for name, expected in [("relu", 0.0), ("noisy_relu", 0.0), ("leaky_relu", 0.01),
                           ("elu", 1.0), ("sigmoid", 0.25), ("tanh", 1.0), ("gelu", 0.5),
                           ("softplus", 0.5), ("identity", 1.0), ("linear", 1.0)]:
        act = ACTIVATIONS[name]
        got = act.df(z, act.f(z), dA)
        np.testing.assert_allclose(got, expected, err_msg=name)
    leaky = ACTIVATIONS["leaky_relu"]
    assert leaky.df(z, leaky.f(z, alpha=0.3), dA, alpha=0.3)[0, 0] == 0.3


def test_activation_values():
    z = np.array([[-2.0, 0.0, 1.5]])
    np.testing.assert_allclose(ACTIVATIONS["sigmoid"].f(z), 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(ACTIVATIONS["elu"].f(z, alpha=0.5), [[0.5 * (np.exp(-2) - 1), 0, 1.5]])
    np.testing.assert_allclose(ACTIVATIONS["softplus"].f(z), np.log1p(np.exp(z)))
    u = math.sqrt(2 / math.pi) * (z + 0.044715 * z ** 3)
    np.testing.assert_allclose(ACTIVATIONS["gelu"].f(z), 0.5 * z * (1 + np.tanh(u)))
    s = ACTIVATIONS["softmax"].f(z)
    np.testing.assert_allclose(s, np.exp(z) / np.exp(z).sum())
    assert ACTIVATIONS["linear"] is ACTIVATIONS["identity"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_activation_stable_at_large_z(name, dtype):
    act, params = ACTIVATIONS[name], ACT_PARAMS.get(name, {})
    z = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]], dtype=dtype)
    with np.errstate(all="raise"):
        a = act.f(z, **params)
        dz = act.df(z, a, np.ones_like(z), **params)
    assert a.dtype == dtype and dz.dtype == dtype
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(dz))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_overflow_or_nan_across_magnitudes(dtype):
    # all="raise" would also trap *underflow*, which products of tiny values
    # (e.g. s (1 - s) dA at z = -100 in float32) legitimately produce; that is
    # rounding towards 0, not instability, so only over/divide/invalid trap here.
    z = np.array([[-1e4, -700, -100, -88, -30, -1, 1, 30, 88, 100, 700, 1e4]], dtype=dtype)
    y = np.zeros_like(z)
    y[0, 3] = 1
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        for name, act in ACTIVATIONS.items():
            a = act.f(z, **ACT_PARAMS.get(name, {}))
            dz = act.df(z, a, np.full_like(z, 0.37), **ACT_PARAMS.get(name, {}))
            assert np.all(np.isfinite(a)) and np.all(np.isfinite(dz)), name
        for name, loss in LOSSES.items():
            assert np.isfinite(loss.loss(z, y)) and np.all(np.isfinite(loss.grad(z, y))), name


# ----------------------------------------------------------------------- losses

def loss_inputs(name: str, r: np.random.Generator, shape=(6, 3)):
    out = away_from_kinks(r, shape)
    if name == "binary_crossentropy":
        y = r.uniform(0, 1, size=shape)
    elif name == "categorical_crossentropy":
        y = np.eye(shape[1])[r.integers(0, shape[1], size=shape[0])]
        y[0] = [0.2, 0.5, 0.3]  # soft targets are fine as long as rows sum to 1
    else:
        y = out + away_from_kinks(r, shape)  # keeps y_hat - y off the mae/huber kinks
        y = np.where(np.abs(np.abs(out - y) - 1) < 0.05, y + 0.2, y)
    return out, y


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_gradient_matches_central_differences(name):
    loss = LOSSES[name]
    out, y = loss_inputs(name, np.random.default_rng(2))
    numeric = numeric_grad(lambda: float(loss.loss(out, y)), out)
    assert rel_err(loss.grad(out, y), numeric) < 1e-8, name


def test_loss_values():
    y_hat = np.array([[0.5, -1.0], [3.0, 0.0]])
    y = np.array([[0.0, 0.0], [1.0, 0.0]])
    assert LOSSES["mse"].loss(y_hat, y) == pytest.approx((0.25 + 1 + 4) / 4)
    assert LOSSES["mae"].loss(y_hat, y) == pytest.approx((0.5 + 1 + 2) / 4)
    assert LOSSES["huber"].loss(y_hat, y) == pytest.approx((0.125 + 0.5 + 1.5) / 4)
    np.testing.assert_array_equal(LOSSES["mae"].grad(y, y), 0.0)  # sign(0) = 0
    z = np.array([[0.3, -1.2]])
    t = np.array([[1.0, 0.0]])
    s = 1 / (1 + np.exp(-z))
    bce = -np.mean(t * np.log(s) + (1 - t) * np.log(1 - s))
    assert LOSSES["binary_crossentropy"].loss(z, t) == pytest.approx(bce)
    sm = np.exp(z) / np.exp(z).sum()
    assert LOSSES["categorical_crossentropy"].loss(z, t) == pytest.approx(-np.log(sm[0, 0]))
    assert LOSSES["binary_crossentropy"].fused_with == "sigmoid"
    assert LOSSES["categorical_crossentropy"].fused_with == "softmax"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_stable_at_large_logits(name, dtype):
    out = np.array([[-1e4, 1e4, 0.0], [1e4, -1e4, 5.0]], dtype=dtype)
    y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype)
    with np.errstate(all="raise"):
        value = LOSSES[name].loss(out, y)
        grad = LOSSES[name].grad(out, y)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert grad.dtype == dtype
    if name == "binary_crossentropy":
        assert float(value) == pytest.approx((2e4 + 2e4 + math.log(2) + 5 + math.log1p(math.exp(-5))) / 6,
                                             rel=1e-6)
    if name == "categorical_crossentropy":
        assert float(value) == pytest.approx((2e4 + 2e4) / 2, rel=1e-6)


# ------------------------------------------------------------------ dense layer

def test_dense_forward_and_backward():
    r = np.random.default_rng(3)
    a_prev, W, b = r.normal(size=(5, 3)), r.normal(size=(3, 4)), r.normal(size=4)
    z = dense_forward(a_prev, W, b)
    np.testing.assert_allclose(z, a_prev @ W + b)
    np.testing.assert_allclose(dense_forward(a_prev, W, None), a_prev @ W)
    dz = r.normal(size=(5, 4))
    dW, db, da = dense_backward(dz, a_prev, W, use_bias=True)
    np.testing.assert_allclose(dW, numeric_grad(lambda: float(np.sum(dz * dense_forward(a_prev, W, b))), W),
                               rtol=1e-7)
    np.testing.assert_allclose(db, numeric_grad(lambda: float(np.sum(dz * dense_forward(a_prev, W, b))), b),
                               rtol=1e-7)
    np.testing.assert_allclose(da, numeric_grad(lambda: float(np.sum(dz * dense_forward(a_prev, W, b))),
                                                a_prev), rtol=1e-7)
    assert dense_backward(dz, a_prev, W, use_bias=False)[1] is None


# ------------------------------------------------------------- whole networks

def make_config(units, activations, loss, use_bias=True, dtype="float64", seed=0,
                input_dim=3, init="glorot_uniform", lr=0.1, momentum=0.0, nesterov=False,
                weight_decay=0.0):
    layers = []
    for u, act in zip(units, activations):
        spec = {"name": act, **ACT_PARAMS.get(act, {})} if isinstance(act, str) else act
        layers.append({"class_name": "Dense", "units": u, "use_bias": use_bias, "init": init,
                       "activation": spec})
    return {"class_name": "Sequential", "format": 1, "input_dim": input_dim, "dtype": dtype,
            "seed": seed, "layers": layers,
            "compile": {"loss": loss, "optimizer": {"class_name": "SGD", "lr": lr, "momentum": momentum,
                                                    "nesterov": nesterov, "weight_decay": weight_decay}}}


HIDDEN = ["tanh", "sigmoid", "gelu", "elu", "softplus", "leaky_relu", "relu", "identity"]
OUTPUTS = [("mse", "identity", 2), ("mae", "identity", 2), ("huber", "tanh", 2),
           ("binary_crossentropy", "sigmoid", 2), ("categorical_crossentropy", "softmax", 3),
           ("mse", "softmax", 3), ("mse", "softplus", 1)]


def targets_for(loss, K, n, r):
    if loss == "binary_crossentropy":
        return (r.uniform(size=(n, K)) > 0.5).astype(float)
    if loss == "categorical_crossentropy":
        return np.eye(K)[r.integers(0, K, size=n)]
    return r.normal(size=(n, K))


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("loss,out_act,K", OUTPUTS)
def test_network_gradients_match_central_differences(depth, use_bias, loss, out_act, K):
    r = np.random.default_rng(depth * 10 + use_bias)
    hidden = [HIDDEN[(depth + i + len(loss)) % len(HIDDEN)] for i in range(depth)]
    cfg = make_config([5] * depth + [K], hidden + [out_act], loss, use_bias=use_bias,
                      seed=depth, init="he_normal")
    net = Network.from_config(cfg)
    X, Y = r.normal(size=(7, 3)), targets_for(loss, K, 7, r)
    _, grads = net.loss_and_gradients(X, Y)
    for layer, g in zip(net.layers, grads):
        assert set(g) == ({"W", "b"} if use_bias else {"W"})
        for key, param in (("W", layer.W), ("b", layer.b)):
            if param is None:
                continue
            numeric = numeric_grad(lambda: net.loss_and_gradients(X, Y)[0], param)
            assert rel_err(g[key], numeric) < 1e-6, (hidden, key)


def test_noisy_relu_network_gradient_in_training_mode():
    cfg = make_config([6, 1], ["noisy_relu", "identity"], "mse", seed=5)
    net = Network.from_config(cfg)
    r = np.random.default_rng(4)
    X, Y = r.normal(size=(5, 3)), r.normal(size=(5, 1))
    _, grads = net.loss_and_gradients(X, Y, training=True)
    W0 = net.layers[0].W
    numeric = numeric_grad(lambda: net.loss_and_gradients(X, Y, training=True)[0], W0)
    assert rel_err(grads[0]["W"], numeric) < 1e-6


def test_noisy_relu_noise_comes_from_step_counter():
    cfg = make_config([6, 1], ["noisy_relu", "identity"], "mse", seed=5)
    net = Network.from_config(cfg)
    X = np.random.default_rng(5).normal(size=(4, 3))
    clean = net.forward_trace(X)
    noisy = net.forward_trace(X, training=True)
    eps = noise(5, 0, 0, (4, 6), 0.3, "float64")
    np.testing.assert_array_equal(noisy[0]["noise"], eps)
    np.testing.assert_array_equal(noisy[0]["z"], clean[0]["z"] + eps)
    np.testing.assert_array_equal(noisy[0]["a"], np.maximum(clean[0]["z"] + eps, 0))
    np.testing.assert_array_equal(net.predict(X), clean[-1]["a"])
    net.train_step(X, np.zeros((4, 1)))
    assert net.step_counter == 1
    after = net.forward_trace(X, training=True)
    np.testing.assert_array_equal(after[0]["noise"], noise(5, 1, 0, (4, 6), 0.3, "float64"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_network_stable_with_huge_logits(dtype):
    for loss, out_act, K in [("binary_crossentropy", "sigmoid", 2), ("categorical_crossentropy", "softmax", 3)]:
        cfg = make_config([4, K], ["tanh", out_act], loss, dtype=dtype, seed=2)
        net = Network.from_config(cfg)
        net.layers[1].W *= 1e4 / np.abs(net.layers[1].W).max()  # logits of order 1e4
        X = np.random.default_rng(16).normal(size=(5, 3)) * 100
        Y = targets_for(loss, K, 5, np.random.default_rng(17))
        with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
            value, grads = net.loss_and_gradients(X, Y)
        assert np.isfinite(value) and all(np.all(np.isfinite(v)) for g in grads for v in g.values())


def test_forward_trace_shapes_and_predict():
    net = Network.from_config(make_config([4, 2], ["relu", "sigmoid"], "mse"))
    X = np.ones((3, 3))
    trace = net.forward_trace(X)
    assert [(t["a_prev"].shape, t["z"].shape, t["a"].shape) for t in trace] == [
        ((3, 3), (3, 4), (3, 4)), ((3, 4), (3, 2), (3, 2))]
    np.testing.assert_array_equal(trace[1]["a_prev"], trace[0]["a"])
    np.testing.assert_array_equal(net.predict(X), trace[-1]["a"])
    np.testing.assert_array_equal(net.forward(X), trace[-1]["a"])


def test_float32_network_stays_float32_and_matches_float64():
    r = np.random.default_rng(6)
    X, Y = r.normal(size=(20, 3)), r.normal(size=(20, 2))
    nets = {}
    for dtype in ("float32", "float64"):
        cfg = make_config([8, 8, 2], ["gelu", "tanh", "identity"], "mse", dtype=dtype, momentum=0.9)
        nets[dtype] = Network.from_config(cfg)
    w64 = nets["float64"].get_weights()
    for w32, w in zip(nets["float32"].get_weights(), w64):
        assert w32.dtype == np.float32
        np.testing.assert_array_equal(w32, w.astype(np.float32))  # init drawn in float64, then cast
    nets["float64"] = Network.from_config(make_config([8, 8, 2], ["gelu", "tanh", "identity"], "mse",
                                                      momentum=0.9),
                                          [w.astype(np.float32).astype(np.float64) for w in w64])
    for net in nets.values():
        net.fit(X, Y, epochs=3, batch_size=8)
    assert nets["float32"].predict(X).dtype == np.float32
    _, grads = nets["float32"].loss_and_gradients(X, Y)
    assert all(v.dtype == np.float32 for g in grads for v in g.values())
    for w32, w in zip(nets["float32"].get_weights(), nets["float64"].get_weights()):
        np.testing.assert_allclose(w32, w, rtol=1e-5, atol=1e-5)


def test_weights_round_trip_and_no_bias_layout():
    cfg = make_config([4, 3, 1], ["relu", "tanh", "identity"], "mse")
    cfg["layers"][1]["use_bias"] = False
    net = Network.from_config(cfg)
    shapes = [w.shape for w in net.get_weights()]
    assert shapes == [(3, 4), (4,), (4, 3), (3, 1), (1,)]
    ws = [w + 1.0 for w in net.get_weights()]
    net2 = Network.from_config(cfg, ws)
    for a, b in zip(net2.get_weights(), ws):
        np.testing.assert_array_equal(a, b)
    assert net.get_weights()[0] is not net.layers[0].W  # copies
    _, grads = net.loss_and_gradients(np.ones((2, 3)), np.ones(2))
    assert [sorted(g) for g in grads] == [["W", "b"], ["W"], ["W", "b"]]
    ws_in = net.get_weights()
    ws_in[0][0, 0] = 123.0
    assert Network.from_config(cfg, ws_in).layers[0].W[0, 0] == 123.0
    assert ws_in[0] is not Network.from_config(cfg, ws_in).layers[0].W  # input arrays not aliased


def test_input_dim_inferred_from_weights():
    cfg = make_config([2], ["identity"], "mse", input_dim=None)
    net = Network.from_config(cfg, [np.ones((5, 2)), np.zeros(2)])
    assert net.predict(np.ones((1, 5))).tolist() == [[5.0, 5.0]]
    with pytest.raises(ValueError, match="input_dim"):
        Network.from_config(cfg)


def test_integer_labels_equal_one_hot():
    cfg = make_config([4, 3], ["tanh", "softmax"], "categorical_crossentropy")
    net = Network.from_config(cfg)
    r = np.random.default_rng(7)
    X, labels = r.normal(size=(6, 3)), r.integers(0, 3, size=6)
    l1, g1 = net.loss_and_gradients(X, labels)
    l2, g2 = net.loss_and_gradients(X, np.eye(3)[labels])
    assert l1 == l2
    for a, b in zip(g1, g2):
        np.testing.assert_array_equal(a["W"], b["W"])
    with pytest.raises(ValueError, match="y"):
        net.loss_and_gradients(X, labels + 3)


def test_one_dimensional_y_is_a_column():
    net = Network.from_config(make_config([3, 1], ["tanh", "identity"], "mse"))
    X, y = np.random.default_rng(8).normal(size=(5, 3)), np.arange(5.0)
    assert net.evaluate(X, y) == net.evaluate(X, y.reshape(-1, 1))


@pytest.mark.parametrize("cfg_change,match", [
    (lambda c: c["layers"][0].update(activation={"name": "swish"}), "activation"),
    (lambda c: c["compile"].update(loss="hinge"), "loss"),
    (lambda c: c["layers"][0].update(init="orthogonal"), "init"),
    (lambda c: c["layers"][0].update(activation={"name": "softmax"}), "softmax"),
    (lambda c: c["layers"][1].update(activation={"name": "identity"}) or
     c["compile"].update(loss="binary_crossentropy"), "sigmoid"),
    (lambda c: c["compile"]["optimizer"].update(class_name="Adam"), "SGD"),
    (lambda c: c.update(dtype="float16"), "dtype"),
])
def test_config_errors_name_the_field(cfg_change, match):
    cfg = make_config([3, 1], ["relu", "identity"], "mse")
    cfg_change(cfg)
    with pytest.raises(ValueError, match=match):
        Network.from_config(cfg)


def test_bad_inputs_raise():
    net = Network.from_config(make_config([3, 1], ["relu", "identity"], "mse"))
    with pytest.raises(ValueError, match="X"):
        net.predict(np.ones((2, 4)))
    with pytest.raises(ValueError, match="y"):
        net.evaluate(np.ones((2, 3)), np.ones((3, 1)))
    with pytest.raises(ValueError, match="X"):
        net.fit(np.ones((0, 3)), np.ones(0))
    with pytest.raises(ValueError, match="batch_size"):
        net.fit(np.ones((2, 3)), np.ones(2), batch_size=0)
    with pytest.raises(ValueError, match="weights"):
        Network.from_config(make_config([3, 1], ["relu", "identity"], "mse"), [np.ones((3, 3))])


def test_uncompiled_network_predicts_but_cannot_train():
    cfg = make_config([3, 1], ["relu", "identity"], "mse")
    cfg["compile"] = None
    net = Network.from_config(cfg)
    assert net.predict(np.ones((2, 3))).shape == (2, 1)
    with pytest.raises(ValueError, match="compile"):
        net.train_step(np.ones((2, 3)), np.ones(2))


# --------------------------------------------------------------------- training

def test_fit_without_shuffle_equals_manual_train_steps():
    r = np.random.default_rng(9)
    X, Y = r.normal(size=(10, 3)), r.normal(size=(10, 1))
    cfg = make_config([4, 1], ["tanh", "identity"], "mse", momentum=0.9, nesterov=True, weight_decay=0.01)
    a, b = Network.from_config(cfg), Network.from_config(cfg)
    hist = a.fit(X, Y, epochs=2, batch_size=4, shuffle=False)
    losses = []
    for _ in range(2):
        batches = [(0, 4), (4, 8), (8, 10)]  # last batch partial
        ls = [b.train_step(X[s:e], Y[s:e]) for s, e in batches]
        losses.append((ls[0] * 4 + ls[1] * 4 + ls[2] * 2) / 10)
    assert hist["loss"] == pytest.approx(losses, rel=1e-14)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert a.step_counter == 6 and a.epoch_counter == 2 and b.epoch_counter == 0


def test_fit_shuffles_with_the_epoch_counter_and_reports_grad_norms():
    r = np.random.default_rng(10)
    X, Y = r.normal(size=(9, 3)), r.normal(size=(9, 2))
    cfg = make_config([4, 2], ["relu", "identity"], "mse", use_bias=True, seed=11, momentum=0.5)
    a, b = Network.from_config(cfg), Network.from_config(cfg)
    a.fit(X, Y, epochs=1, batch_size=4)
    hist = a.fit(X, Y, epochs=1, batch_size=4)  # second call: epoch_counter 1
    assert a.epoch_counter == 2 and a.step_counter == 6
    expected_norms = None
    for epoch in range(2):
        order = permutation(11, epoch, 9)
        norms = []
        for s in range(0, 9, 4):
            rows = order[s:s + 4]
            _, grads = b.loss_and_gradients(X[rows], Y[rows], training=True)
            norms.append([math.sqrt(sum(float(np.sum(v ** 2)) for v in g.values())) for g in grads])
            b.train_step(X[rows], Y[rows])
        expected_norms = np.mean(norms, axis=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert len(hist["grad_norm"]) == 1 and len(hist["grad_norm"][0]) == 2
    np.testing.assert_allclose(hist["grad_norm"][0], expected_norms, rtol=1e-12)


def test_fit_reduces_loss_and_is_deterministic():
    r = np.random.default_rng(12)
    X = r.normal(size=(64, 3))
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2]
    cfg = make_config([16, 16, 1], ["tanh", "relu", "identity"], "mse", lr=0.05, momentum=0.9)
    a, b = Network.from_config(cfg), Network.from_config(cfg)
    ha, hb = a.fit(X, y, epochs=15, batch_size=10), b.fit(X, y, epochs=15, batch_size=10)
    assert ha == hb
    assert ha["loss"][-1] < 0.5 * ha["loss"][0]
    assert a.evaluate(X, y) < ha["loss"][0]


# -------------------------------------------------------------------------- SGD

def test_sgd_two_steps_by_hand():
    # p0 = [1, -2], lr 0.1, momentum 0.9, weight_decay 0.01; grads g1 = [0.5, 1], g2 = [0.25, -1].
    # step 1: g = g1 + 0.01 p0 = [0.51, 0.98]; buf = g
    #   plain:    p1 = p0 - 0.1 buf                    = [0.949, -2.098]
    #   nesterov: p1 = p0 - 0.1 (g + 0.9 buf)          = [0.9031, -2.1862]
    # step 2 (plain): g = g2 + 0.01 p1 = [0.25949, -1.02098]; buf = 0.9 [0.51, 0.98] + g = [0.71849, -0.13898]
    #   p2 = p1 - 0.1 buf = [0.877151, -2.084102]
    # step 2 (nesterov): g = g2 + 0.01 p1 = [0.259031, -1.021862]
    #   buf = 0.9 [0.51, 0.98] + g = [0.718031, -0.139862]; g + 0.9 buf = [0.9052589, -1.1477378]
    #   p2 = p1 - 0.1 (g + 0.9 buf) = [0.81257411, -2.07142622]
    g1, g2 = np.array([0.5, 1.0]), np.array([0.25, -1.0])
    for nesterov, p1, p2 in [(False, [0.949, -2.098], [0.877151, -2.084102]),
                             (True, [0.9031, -2.1862], [0.81257411, -2.07142622])]:
        p, buf = [np.array([1.0, -2.0])], [np.zeros(2)]
        sgd_update(p, [g1], buf, lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.01)
        np.testing.assert_allclose(p[0], p1, rtol=1e-12)
        sgd_update(p, [g2], buf, lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.01)
        np.testing.assert_allclose(p[0], p2, rtol=1e-12)
    p, buf = [np.array([1.0, -2.0])], [np.zeros(2)]
    sgd_update(p, [g1], buf, lr=0.1)  # plain SGD leaves the buffer alone
    np.testing.assert_allclose(p[0], [0.95, -2.1], rtol=1e-12)
    assert np.all(buf[0] == 0)


def test_sgd_keeps_float32():
    p, buf = [np.ones(3, np.float32)], [np.zeros(3, np.float32)]
    sgd_update(p, [np.ones(3, np.float32)], buf, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)
    assert p[0].dtype == np.float32 and buf[0].dtype == np.float32


# -------------------------------------------------------------------------- RNG

def test_pcg32_golden_values_of_oneill_demo():
    g = PCG32(42, 54)
    assert [g.next() for _ in range(6)] == [0xA15C02B7, 0x7B47F409, 0xBA1D3330,
                                           0x83D2F293, 0xBFA4784B, 0xCBED606E]


def test_pcg32_draws():
    g = PCG32(7, stream(rng.INIT, 0, 3))
    u = np.array([g.uniform01() for _ in range(20000)])
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    x = np.array([g.normal() for _ in range(20000)])
    assert abs(x.mean()) < 0.03 and abs(x.std() - 1) < 0.03
    k = np.array([g.below(6) for _ in range(12000)])
    assert set(k.tolist()) == set(range(6))
    assert np.all(np.abs(np.bincount(k) - 2000) < 200)
    # uniform01 uses exactly two outputs: 27 high bits of the first, 26 of the second
    g1, g2 = PCG32(3, 9), PCG32(3, 9)
    a, b = g2.next() >> 5, g2.next() >> 6
    assert g1.uniform01() == (a * 2 ** 26 + b) / 2 ** 53


def test_stream_layout():
    assert stream(rng.SHUFFLE, 5, 0) == (2 << 56) | (5 << 16)
    assert stream(rng.NOISE, 3, 2) == (4 << 56) | (3 << 16) | 2
    assert (rng.INIT, rng.SHUFFLE, rng.DROPOUT, rng.NOISE) == (1, 2, 3, 4)


def test_permutation_is_a_seeded_fisher_yates():
    p = permutation(0, 0, 50)
    assert sorted(p.tolist()) == list(range(50)) and p.dtype == np.int64
    np.testing.assert_array_equal(p, permutation(0, 0, 50))
    assert not np.array_equal(p, permutation(1, 0, 50))
    assert not np.array_equal(p, permutation(0, 1, 50))
    # the algorithm spelled out once more
    g, order = PCG32(0, stream(rng.SHUFFLE, 0, 0)), list(range(50))
    for i in range(49, 0, -1):
        j = g.below(i + 1)
        order[i], order[j] = order[j], order[i]
    assert p.tolist() == order
    assert permutation(3, 2, 1).tolist() == [0] and permutation(3, 2, 0).tolist() == []


def test_noise_is_sigma_times_normals_row_major():
    eps = noise(9, 4, 2, (3, 5), 0.25, "float32")
    g = PCG32(9, stream(rng.NOISE, 4, 2))
    expected = np.array([0.25 * g.normal() for _ in range(15)]).reshape(3, 5).astype(np.float32)
    assert eps.dtype == np.float32
    np.testing.assert_array_equal(eps, expected)


# ----------------------------------------------------------------- initialisers

FAN_IN, FAN_OUT = 300, 500


@pytest.mark.parametrize("name,std,bound", [
    ("random_normal", 0.05, None),
    ("random_uniform", 0.1 / math.sqrt(12), 0.05),
    ("glorot_uniform", math.sqrt(6 / (FAN_IN + FAN_OUT)) / math.sqrt(3), math.sqrt(6 / (FAN_IN + FAN_OUT))),
    ("xavier_uniform", math.sqrt(6 / (FAN_IN + FAN_OUT)) / math.sqrt(3), math.sqrt(6 / (FAN_IN + FAN_OUT))),
    ("glorot_normal", math.sqrt(2 / (FAN_IN + FAN_OUT)),
     2 * math.sqrt(2 / (FAN_IN + FAN_OUT)) / rng.TRUNCATED_NORMAL_STD),
    ("xavier_normal", math.sqrt(2 / (FAN_IN + FAN_OUT)),
     2 * math.sqrt(2 / (FAN_IN + FAN_OUT)) / rng.TRUNCATED_NORMAL_STD),
    ("he_normal", math.sqrt(2 / FAN_IN), 2 * math.sqrt(2 / FAN_IN) / rng.TRUNCATED_NORMAL_STD),
    ("he_uniform", math.sqrt(6 / FAN_IN) / math.sqrt(3), math.sqrt(6 / FAN_IN)),
])
def test_initialiser_statistics(name, std, bound):
    W = init_weights(name, FAN_IN, FAN_OUT, seed=0, layer_index=1, dtype="float64")
    assert W.shape == (FAN_IN, FAN_OUT)
    assert abs(W.mean()) < 0.02 * std * 10 / 3  # ~ 7 standard errors at n = 150000
    assert W.std() == pytest.approx(std, rel=0.01)
    if bound is not None:
        assert np.abs(W).max() <= bound
        assert np.abs(W).max() > 0.97 * bound  # the bounds are reached, not narrower


def test_initialisers_are_seeded_aliased_and_cast():
    a = init_weights("he_normal", 20, 30, seed=1, layer_index=0, dtype="float64")
    np.testing.assert_array_equal(a, init_weights("he_normal", 20, 30, 1, 0, "float64"))
    assert not np.array_equal(a, init_weights("he_normal", 20, 30, 1, 1, "float64"))
    assert not np.array_equal(a, init_weights("he_normal", 20, 30, 2, 0, "float64"))
    np.testing.assert_array_equal(init_weights("he_normal", 20, 30, 1, 0, "float32"), a.astype(np.float32))
    np.testing.assert_array_equal(init_weights("xavier_normal", 4, 5, 1, 0),
                                  init_weights("glorot_normal", 4, 5, 1, 0))
    np.testing.assert_array_equal(init_weights("zeros", 4, 5, 1, 0), np.zeros((4, 5)))
    # W drawn row-major: the first element is the first draw of the layer's INIT stream
    g = PCG32(1, stream(rng.INIT, 0, 0))
    assert init_weights("random_uniform", 2, 2, 1, 0)[0, 0] == -0.05 + 0.1 * g.uniform01()
    with pytest.raises(ValueError, match="init"):
        init_weights("orthogonal", 2, 2, 0, 0)


def test_network_init_uses_layer_index_and_zero_biases():
    cfg = make_config([4, 3], ["relu", "identity"], "mse", seed=21, init="he_uniform")
    net = Network.from_config(cfg)
    np.testing.assert_array_equal(net.layers[1].W, init_weights("he_uniform", 4, 3, 21, 1, "float64"))
    assert np.all(net.layers[0].b == 0) and np.all(net.layers[1].b == 0)


# -------------------------------------------------------------------- isolation

def test_reference_imports_nothing_of_pybackprop_outside_reference():
    for path in REFERENCE_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level > 0 or not (node.module or "").startswith("pybackprop"), path
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("pybackprop") for a in node.names), path
    # Import the reference in a fresh interpreter where pybackprop/__init__.py is
    # bypassed (an empty package stands in for it) and _core cannot be imported.
    code = f"""
import sys, types
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "pybackprop._core":
            raise ImportError("the reference must not import pybackprop._core")
sys.meta_path.insert(0, Block())
package = types.ModuleType("pybackprop")
package.__path__ = [{str(REFERENCE_DIR.parent)!r}]
sys.modules["pybackprop"] = package
import pybackprop.reference
assert sorted(m for m in sys.modules if m.startswith("pybackprop")) == [
    "pybackprop", "pybackprop.reference", "pybackprop.reference.functional",
    "pybackprop.reference.network", "pybackprop.reference.rng"], sorted(sys.modules)
"""
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------- PyTorch

TORCH_ACT = {
    "relu": lambda t, F: F.relu(t), "tanh": lambda t, F: t.tanh(), "sigmoid": lambda t, F: t.sigmoid(),
    "gelu": lambda t, F: F.gelu(t, approximate="tanh"), "elu": lambda t, F: F.elu(t, alpha=0.7),
    "softplus": lambda t, F: F.softplus(t), "leaky_relu": lambda t, F: F.leaky_relu(t, 0.2),
    "identity": lambda t, F: t,
}


def torch_loss(torch, name, out_z, out_a, y):
    F = torch.nn.functional
    if name == "mse":
        return F.mse_loss(out_a, y)
    if name == "mae":
        return F.l1_loss(out_a, y)
    if name == "huber":
        return F.huber_loss(out_a, y, delta=1.0)
    if name == "binary_crossentropy":
        return F.binary_cross_entropy_with_logits(out_z, y)
    return F.cross_entropy(out_z, y)  # probability targets


def torch_net(torch, weights, use_bias):
    params, it = [], iter(weights)
    for W in it:
        layer = {"W": torch.tensor(W, dtype=torch.float64, requires_grad=True)}
        if use_bias:
            layer["b"] = torch.tensor(next(it), dtype=torch.float64, requires_grad=True)
        params.append(layer)
    return params


def torch_forward(torch, params, acts, X):
    F = torch.nn.functional
    a = torch.tensor(X, dtype=torch.float64)
    z = None
    for layer, act in zip(params, acts):
        z = a @ layer["W"] + layer["b"] if "b" in layer else a @ layer["W"]
        a = torch.softmax(z, dim=1) if act == "softmax" else TORCH_ACT[act](z, F)
    return z, a


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("loss,out_act,K", OUTPUTS)
def test_gradients_match_torch(loss, out_act, K, use_bias):
    torch = pytest.importorskip("torch")
    r = np.random.default_rng(13)
    acts = ["tanh", "gelu", "elu", "leaky_relu", "softplus", "relu"][:3 + len(loss) % 3] + [out_act]
    cfg = make_config([6] * (len(acts) - 1) + [K], acts, loss, use_bias=use_bias, seed=3, init="he_normal")
    net = Network.from_config(cfg)
    X, Y = r.normal(size=(8, 3)), targets_for(loss, K, 8, r)
    ref_loss, grads = net.loss_and_gradients(X, Y)
    params = torch_net(torch, net.get_weights(), use_bias)
    z, a = torch_forward(torch, params, acts, X)
    t_loss = torch_loss(torch, loss, z, a, torch.tensor(Y))
    t_loss.backward()
    assert ref_loss == pytest.approx(t_loss.item(), rel=1e-12)
    for g, p in zip(grads, params):
        for key in p:
            np.testing.assert_allclose(g[key], p[key].grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("nesterov,weight_decay", [(False, 0.0), (True, 0.0), (True, 0.01), (False, 0.05)])
def test_five_sgd_steps_match_torch(nesterov, weight_decay):
    torch = pytest.importorskip("torch")
    r = np.random.default_rng(14)
    acts = ["tanh", "relu", "softmax"]
    cfg = make_config([7, 5, 3], acts, "categorical_crossentropy", lr=0.2, momentum=0.9,
                      nesterov=nesterov, weight_decay=weight_decay, seed=8)
    net = Network.from_config(cfg)
    params = torch_net(torch, net.get_weights(), True)
    flat = [p[k] for p in params for k in ("W", "b")]
    opt = torch.optim.SGD(flat, lr=0.2, momentum=0.9, nesterov=nesterov, weight_decay=weight_decay)
    X, labels = r.normal(size=(30, 3)), r.integers(0, 3, size=30)
    for step in range(5):
        rows = slice(6 * step, 6 * step + 6)
        ref_loss = net.train_step(X[rows], labels[rows])
        opt.zero_grad()
        z, _ = torch_forward(torch, params, acts, X[rows])
        t_loss = torch.nn.functional.cross_entropy(z, torch.tensor(labels[rows]))
        t_loss.backward()
        opt.step()
        assert ref_loss == pytest.approx(t_loss.item(), rel=1e-12)
    for w, t in zip(net.get_weights(), flat):
        np.testing.assert_allclose(w, t.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_fit_with_shuffle_matches_torch_loop():
    torch = pytest.importorskip("torch")
    r = np.random.default_rng(15)
    acts = ["gelu", "sigmoid"]
    cfg = make_config([5, 2], acts, "binary_crossentropy", lr=0.3, momentum=0.8, nesterov=True, seed=4)
    net = Network.from_config(cfg)
    params = torch_net(torch, net.get_weights(), True)
    flat = [p[k] for p in params for k in ("W", "b")]
    opt = torch.optim.SGD(flat, lr=0.3, momentum=0.8, nesterov=True)
    X, Y = r.normal(size=(11, 3)), (r.uniform(size=(11, 2)) > 0.5).astype(float)
    hist = net.fit(X, Y, epochs=3, batch_size=4)
    for epoch in range(3):
        order, total = permutation(4, epoch, 11), 0.0
        for s in range(0, 11, 4):
            rows = order[s:s + 4]
            opt.zero_grad()
            z, _ = torch_forward(torch, params, acts, X[rows])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z, torch.tensor(Y[rows]))
            loss.backward()
            opt.step()
            total += loss.item() * len(rows)
        assert hist["loss"][epoch] == pytest.approx(total / 11, rel=1e-12)
    for w, t in zip(net.get_weights(), flat):
        np.testing.assert_allclose(w, t.detach().numpy(), rtol=1e-12, atol=1e-14)
