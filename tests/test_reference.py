"""Tests of pybackprop.reference alone (no _core): derivatives, RNG, init, dropout,
optimisers, schedules, training."""

from __future__ import annotations

import ast
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from pybackprop.reference import (
    ACTIVATIONS, LOSSES, PCG32, Network, adagrad_update, adam_update, clip_grad_norm,
    dense_backward, dense_forward, dropout_backward, dropout_forward, dropout_mask, dropout_scales,
    init_weights, noise, numeric_gradient, permutation, rmsprop_update, schedule_value, sgd_update, stream,
)
from pybackprop.reference import rng

REFERENCE_DIR = pathlib.Path(__file__).resolve().parents[1] / "src" / "pybackprop" / "reference"
ACT_PARAMS = {"leaky_relu": {"alpha": 0.2}, "elu": {"alpha": 0.7}, "noisy_relu": {"sigma": 0.3}}
ALL_ACTIVATIONS = sorted(ACTIVATIONS)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """Relative error of two arrays, by norms (0 when both are 0)."""
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


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
    numeric = numeric_gradient(lambda: float(np.sum(dA * act.f(z, **params))), z)
    assert rel_err(analytic, numeric) < 1e-8, name


def test_softplus_derivative_across_threshold():
    act = ACTIVATIONS["softplus"]
    z = np.array([[19.0, 19.9, 20.5, 25.0, -30.0]])
    dA = np.ones_like(z)
    numeric = numeric_gradient(lambda: float(np.sum(act.f(z))), z)
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
    numeric = numeric_gradient(lambda: float(loss.loss(out, y)), out)
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
    np.testing.assert_allclose(dW, numeric_gradient(lambda: float(np.sum(dz * dense_forward(a_prev, W, b))), W),
                               rtol=1e-7)
    np.testing.assert_allclose(db, numeric_gradient(lambda: float(np.sum(dz * dense_forward(a_prev, W, b))), b),
                               rtol=1e-7)
    np.testing.assert_allclose(da, numeric_gradient(lambda: float(np.sum(dz * dense_forward(a_prev, W, b))),
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
            numeric = numeric_gradient(lambda: net.loss_and_gradients(X, Y)[0], param)
            assert rel_err(g[key], numeric) < 1e-6, (hidden, key)


def test_noisy_relu_network_gradient_in_training_mode():
    cfg = make_config([6, 1], ["noisy_relu", "identity"], "mse", seed=5)
    net = Network.from_config(cfg)
    r = np.random.default_rng(4)
    X, Y = r.normal(size=(5, 3)), r.normal(size=(5, 1))
    _, grads = net.loss_and_gradients(X, Y, training=True)
    W0 = net.layers[0].W
    numeric = numeric_gradient(lambda: net.loss_and_gradients(X, Y, training=True)[0], W0)
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
    (lambda c: c["compile"]["optimizer"].update(class_name="Lion"), "class_name"),
    (lambda c: c["compile"]["optimizer"].update(class_name="Adam"), "Adam has no hyperparameter"),
    (lambda c: c["compile"]["optimizer"].update(lr={"class_name": "FromCallable", "fn": "f"}),
     "schedule"),
    (lambda c: c["layers"].insert(0, {"class_name": "Dropout", "keep_prob": 0.0}), "KEEPING"),
    (lambda c: c["layers"].insert(0, {"class_name": "Dropout", "keep_prob": 1.5}), "keep_prob"),
    (lambda c: c["layers"].insert(0, {"class_name": "Dropout", "keep_prob": {"class_name": "Linear"}}),
     "number only"),
    (lambda c: c["layers"].insert(0, {"class_name": "Dropout", "keep_prob": 0.5, "scaling": "x"}),
     "scaling"),
    (lambda c: c["layers"].insert(0, {"class_name": "Dropout", "keep_prob": 0.5, "mask": "x"}), "mask"),
    (lambda c: c["layers"].append({"class_name": "Dropout", "keep_prob": 0.5}), "end of the model"),
    (lambda c: c["layers"].__setitem__(slice(1, 1), [{"class_name": "Dropout", "keep_prob": 0.5}] * 2),
     "followed by a Dense"),
    (lambda c: c["layers"].insert(1, {"class_name": "GroupNorm"}), "class_name"),
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


# ---------------------------------------------------------------------- Dropout

def with_dropouts(cfg, where):
    """``cfg`` with Dropout layers inserted: ``where`` maps a position in the new layer
    list to ``(keep_prob, scaling, mask)``."""
    layers = list(cfg["layers"])
    for pos in sorted(where):
        keep_prob, scaling, mask = where[pos]
        layers.insert(pos, {"class_name": "Dropout", "keep_prob": keep_prob, "scaling": scaling,
                            "mask": mask})
    return {**cfg, "layers": layers}


def test_dropout_mask_follows_internals():
    # stream(DROPOUT, step, layer), kept iff next() < floor(p 2^32), row-major
    m = dropout_mask(9, step=4, layer_index=2, shape=(3, 5), keep_prob=0.3)
    g, threshold = PCG32(9, stream(rng.DROPOUT, 4, 2)), math.floor(0.3 * 2 ** 32)
    expected = [[float(g.next() < threshold) for _ in range(5)] for _ in range(3)]
    assert m.tolist() == expected and m.dtype == np.float64
    # per batch: the first row of the per-sample draws, repeated
    mb = dropout_mask(9, 4, 2, (3, 5), 0.3, per_batch=True, dtype="float32")
    assert mb.dtype == np.float32 and mb.tolist() == [expected[0]] * 3
    assert np.all(dropout_mask(1, 0, 0, (4, 6), 1.0) == 1)  # p = 1 keeps everything
    assert not np.array_equal(m, dropout_mask(9, 5, 2, (3, 5), 0.3))  # a new mask every step
    assert not np.array_equal(m, dropout_mask(9, 4, 3, (3, 5), 0.3))  # and for every layer
    big = dropout_mask(2, 0, 1, (200, 50), 0.7)
    assert abs(big.mean() - 0.7) < 5 * math.sqrt(0.7 * 0.3 / big.size)


def test_dropout_functions():
    assert dropout_scales(0.8, "inverted") == (1 / 0.8, 1.0)
    assert dropout_scales(0.8, "classic") == (1.0, 0.8)
    a = np.array([[1.0, -2.0, 3.0]])
    mask = np.array([[1.0, 0.0, 1.0]])
    np.testing.assert_array_equal(dropout_forward(a, mask, 2.0), [[2.0, 0.0, 6.0]])
    np.testing.assert_array_equal(dropout_forward(a, None, 0.5), [[0.5, -1.0, 1.5]])
    np.testing.assert_array_equal(dropout_backward(np.ones((1, 3)), mask, 2.0), [[2.0, 0.0, 2.0]])
    np.testing.assert_array_equal(dropout_backward(np.ones((1, 3)), None, 0.5), [[0.5] * 3])
    a32 = a.astype(np.float32)
    assert dropout_forward(a32, mask.astype(np.float32), 1 / 0.3).dtype == np.float32


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("scaling,mask", [("inverted", "per_sample"), ("classic", "per_batch")])
def test_dropout_network_gradients_match_central_differences(scaling, mask, training):
    cfg = with_dropouts(make_config([6, 5, 2], ["tanh", "gelu", "identity"], "mse", seed=3),
                        {0: (0.7, scaling, mask), 2: (0.5, scaling, mask)})
    net = Network.from_config(cfg)
    r = np.random.default_rng(31)
    X, Y = r.normal(size=(6, 3)), r.normal(size=(6, 2))
    _, grads, used = net.loss_and_gradients(X, Y, training=training, return_masks=True)
    assert [sorted(g) for g in grads] == [[], ["W", "b"], [], ["W", "b"], ["W", "b"]]
    assert sorted(used) == ([0, 2] if training else [])
    # the masks are fixed by the step counter, so the loss is a smooth function of W
    for i in (1, 3, 4):
        numeric = numeric_gradient(lambda: net.loss_and_gradients(X, Y, training=training)[0],
                               net.layers[i].W)
        assert rel_err(grads[i]["W"], numeric) < 1e-6, i


def test_dropout_forward_trace_and_masks():
    cfg = with_dropouts(make_config([4, 1], ["relu", "identity"], "mse", seed=8),
                        {1: (0.6, "inverted", "per_sample")})
    net = Network.from_config(cfg)
    X = np.random.default_rng(2).normal(size=(5, 3))
    net.step_counter = 7
    t = net.forward_trace(X, training=True)
    drawn = dropout_mask(8, 7, 1, (5, 4), 0.6)
    np.testing.assert_array_equal(t[1]["mask"], drawn)
    assert t[1]["scale"] == 1 / 0.6
    np.testing.assert_array_equal(t[1]["a"], t[0]["a"] * drawn * (1 / 0.6))
    np.testing.assert_array_equal(t[2]["a_prev"], t[1]["a"])
    # inference: no mask, scale 1 (inverted); classic would scale by p
    t_inf = net.forward_trace(X)
    assert t_inf[1]["mask"] is None
    np.testing.assert_array_equal(t_inf[1]["a"], t_inf[0]["a"])
    # given masks replay, rows broadcast; bad masks are refused
    row = np.array([1.0, 0.0, 1.0, 1.0])
    given = net.forward_trace(X, training=True, masks={1: row})
    np.testing.assert_array_equal(given[1]["mask"], np.tile(row, (5, 1)))
    loss_a, grads_a, used = net.loss_and_gradients(X, np.zeros(5), training=True, return_masks=True)
    loss_b, grads_b = net.loss_and_gradients(X, np.zeros(5), training=True, masks=used)
    assert loss_a == loss_b and all(np.array_equal(grads_a[i][k], grads_b[i][k])
                                    for i in (0, 2) for k in ("W", "b"))
    with pytest.raises(ValueError, match="masks"):
        net.forward_trace(X, training=True, masks={0: row})
    with pytest.raises(ValueError, match=r"masks\[1\]"):
        net.forward_trace(X, training=True, masks={1: np.ones(3)})
    with pytest.raises(ValueError, match="0 \\(dropped\\) and 1"):
        net.forward_trace(X, training=True, masks={1: row * 0.5})


def test_dropout_layer_indices_drive_init_and_masks():
    # Dense layers keep their position in the full list (Dropouts included) as RNG index.
    cfg = with_dropouts(make_config([4, 3, 1], ["relu", "tanh", "identity"], "mse", seed=21,
                                    init="he_uniform"), {0: (0.9, "inverted", "per_sample"),
                                                         2: (0.8, "classic", "per_batch")})
    net = Network.from_config(cfg)
    assert [type(layer).__name__ for layer in net.layers] == ["Dropout", "Dense", "Dropout", "Dense", "Dense"]
    np.testing.assert_array_equal(net.layers[1].W, init_weights("he_uniform", 3, 4, 21, 1, "float64"))
    np.testing.assert_array_equal(net.layers[3].W, init_weights("he_uniform", 4, 3, 21, 3, "float64"))
    assert len(net.get_weights()) == 6
    X = np.ones((3, 3))
    t = net.forward_trace(X, training=True)
    np.testing.assert_array_equal(t[0]["mask"], dropout_mask(21, 0, 0, (3, 3), 0.9))
    np.testing.assert_array_equal(t[2]["mask"], dropout_mask(21, 0, 2, (3, 4), 0.8, per_batch=True))
    # classic: nothing while training, times p at inference
    np.testing.assert_array_equal(t[2]["a"], t[1]["a"] * t[2]["mask"])
    t_inf = net.forward_trace(X)
    np.testing.assert_array_equal(t_inf[2]["a"], t_inf[1]["a"] * 0.8)
    net.train_step(X, np.zeros(3))  # the next step draws new masks
    t1 = net.forward_trace(X, training=True)
    np.testing.assert_array_equal(t1[0]["mask"], dropout_mask(21, 1, 0, (3, 3), 0.9))


def test_keep_prob_one_is_the_network_without_dropout():
    base = make_config([5, 2], ["tanh", "identity"], "mse", seed=4, momentum=0.9)
    plain = Network.from_config(base)
    dropped = Network.from_config(with_dropouts(base, {0: (1.0, "inverted", "per_sample"),
                                                       2: (1.0, "classic", "per_batch")}),
                                  plain.get_weights())
    r = np.random.default_rng(3)
    X, Y = r.normal(size=(12, 3)), r.normal(size=(12, 2))
    ha, hb = plain.fit(X, Y, epochs=2, batch_size=5), dropped.fit(X, Y, epochs=2, batch_size=5)
    assert ha == hb
    for wa, wb in zip(plain.get_weights(), dropped.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(plain.predict(X), dropped.predict(X))


def test_dropout_gradients_match_torch():
    torch = pytest.importorskip("torch")
    cfg = with_dropouts(make_config([6, 4, 2], ["tanh", "relu", "identity"], "mse", seed=6),
                        {0: (0.75, "inverted", "per_sample"), 2: (0.5, "classic", "per_batch")})
    net = Network.from_config(cfg)
    r = np.random.default_rng(7)
    X, Y = r.normal(size=(8, 3)), r.normal(size=(8, 2))
    ref_loss, grads, masks = net.loss_and_gradients(X, Y, training=True, return_masks=True)
    params = torch_net(torch, net.get_weights(), True)
    a = torch.tensor(X) * torch.tensor(masks[0]) / 0.75
    a = torch.tanh(a @ params[0]["W"] + params[0]["b"]) * torch.tensor(masks[2])  # classic: no 1/p
    a = torch.relu(a @ params[1]["W"] + params[1]["b"])
    out = a @ params[2]["W"] + params[2]["b"]
    t_loss = torch.nn.functional.mse_loss(out, torch.tensor(Y))
    t_loss.backward()
    assert ref_loss == pytest.approx(t_loss.item(), rel=1e-12)
    for i, p in zip((1, 3, 4), params):
        for key in ("W", "b"):
            np.testing.assert_allclose(grads[i][key], p[key].grad.numpy(), rtol=1e-10, atol=1e-14)


# -------------------------------------------------------- optimisers and schedules

def test_clip_grad_norm():
    g = [np.array([3.0, 0.0]), np.array([[4.0]])]
    clipped = clip_grad_norm(g, 2.5)
    coef = 2.5 / (5 + 1e-6)
    np.testing.assert_array_equal(clipped[0], g[0] * coef)
    np.testing.assert_array_equal(clipped[1], g[1] * coef)
    assert g[0][0] == 3.0  # new arrays: the gradients given are left alone
    assert clip_grad_norm(g, 5.0)[0][0] < 3.0  # coef = 5 / (5 + 1e-6) < 1: clipped, barely
    assert clip_grad_norm(g, 6.0)[0] is g[0]  # coef >= 1: unchanged
    g32 = [np.array([300.0], np.float32)]
    assert clip_grad_norm(g32, 1.0)[0].dtype == np.float32


def test_adam_two_steps_by_hand():
    # p0 = 1, g1 = 0.5, g2 = -1, lr 0.1, betas (0.9, 0.999), eps 0, weight_decay 0.1
    # step 1: g = 0.5 + 0.1 = 0.6; m = 0.06, v = 0.00036; p1 = 1 - 0.1/0.1 * 0.06/(0.018/sqrt(0.001)) = 0.9
    # step 2: g = -1 + 0.09 = -0.91; m = 0.054 - 0.091 = -0.037;
    #   v = 0.999 * 0.00036 + 0.001 * 0.8281 = 0.00118774
    #   p2 = 0.9 + 0.1/0.19 * 0.037 / (sqrt(0.00118774) / sqrt(1 - 0.999^2))
    p, m, v = [np.array([1.0])], [np.zeros(1)], [np.zeros(1)]
    adam_update(p, [np.array([0.5])], m, v, t=1, lr=0.1, eps=0.0, weight_decay=0.1)
    np.testing.assert_allclose(p[0], [0.9], rtol=1e-14)
    adam_update(p, [np.array([-1.0])], m, v, t=2, lr=0.1, eps=0.0, weight_decay=0.1)
    np.testing.assert_allclose(m[0], [-0.037], rtol=1e-13)
    np.testing.assert_allclose(v[0], [0.00118774], rtol=1e-13)
    expected = 0.9 + 0.1 / 0.19 * 0.037 / (math.sqrt(0.00118774) / math.sqrt(1 - 0.999 ** 2))
    np.testing.assert_allclose(p[0], [expected], rtol=1e-13)


def test_rmsprop_and_adagrad_by_hand():
    # RMSprop alpha 0.5, eps 0, momentum 0.5: s1 = 0.5 * 0.25 = 0.125, d1 = 0.5 / sqrt(0.125);
    # buf1 = d1; p1 = 1 - 0.1 d1. s2 = 0.0625 + 0.5, d2 = -1 / sqrt(0.5625); buf2 = 0.5 d1 + d2.
    p, s, b = [np.array([1.0])], [np.zeros(1)], [np.zeros(1)]
    rmsprop_update(p, [np.array([0.5])], s, b, lr=0.1, alpha=0.5, eps=0.0, momentum=0.5)
    d1 = 0.5 / math.sqrt(0.125)
    np.testing.assert_allclose(p[0], [1 - 0.1 * d1], rtol=1e-14)
    rmsprop_update(p, [np.array([-1.0])], s, b, lr=0.1, alpha=0.5, eps=0.0, momentum=0.5)
    buf2 = 0.5 * d1 - 1 / math.sqrt(0.5625)
    np.testing.assert_allclose(b[0], [buf2], rtol=1e-14)
    np.testing.assert_allclose(p[0], [1 - 0.1 * d1 - 0.1 * buf2], rtol=1e-14)
    # Adagrad lr_decay 1, initial sum 1: clr_t = lr / t; sum1 = 1.25, sum2 = 2.25
    p, acc = [np.array([1.0])], [np.ones(1)]
    adagrad_update(p, [np.array([0.5])], acc, t=1, lr=0.1, lr_decay=1.0, eps=0.0)
    p1 = 1 - 0.1 * 0.5 / math.sqrt(1.25)
    np.testing.assert_allclose(p[0], [p1], rtol=1e-14)
    adagrad_update(p, [np.array([-1.0])], acc, t=2, lr=0.1, lr_decay=1.0, eps=0.0)
    np.testing.assert_allclose(acc[0], [2.25], rtol=1e-14)
    np.testing.assert_allclose(p[0], [p1 + 0.05 * 1 / 1.5], rtol=1e-14)


def test_optimizers_keep_float32():
    one = lambda: [np.ones(3, np.float32)]  # noqa: E731
    p = one()
    adam_update(p, one(), m := one(), v := one(), t=3, lr=0.1, weight_decay=0.1)
    assert {a.dtype for a in p + m + v} == {np.dtype(np.float32)}
    rmsprop_update(p, one(), s := one(), b := one(), lr=0.1, momentum=0.9, weight_decay=0.1)
    assert {a.dtype for a in p + s + b} == {np.dtype(np.float32)}
    adagrad_update(p, one(), acc := one(), t=2, lr=0.1, lr_decay=0.1, weight_decay=0.1)
    assert {a.dtype for a in p + acc} == {np.dtype(np.float32)}


def test_optimizer_config_defaults_state_and_step_counter():
    cfg = make_config([3, 1], ["relu", "identity"], "mse")
    cfg["compile"]["optimizer"] = {"class_name": "Adagrad", "lr": 0.1, "initial_accumulator_value": 0.5}
    net = Network.from_config(cfg)
    assert net.optimizer == {"class_name": "Adagrad", "lr": 0.1, "lr_decay": 0.0, "eps": 1e-10,
                             "initial_accumulator_value": 0.5, "weight_decay": 0.0, "clip_norm": None,
                             "decay_bias": True, "decay_per_sample": False}
    assert all(np.all(a == 0.5) for a in net.optimizer_state["sum"]) and net.momentum_buffers is None
    net.train_step(np.ones((2, 3)), np.ones(2))
    assert net.optimizer_step == 1 and net.step_counter == 1
    net.reset_optimizer_state()
    assert net.optimizer_step == 0 and all(np.all(a == 0.5) for a in net.optimizer_state["sum"])
    for name, keys in [("SGD", ["momentum_buffer"]), ("Adam", ["m", "v"]),
                       ("RMSprop", ["square_avg", "momentum_buffer"])]:
        cfg["compile"]["optimizer"] = {"class_name": name}
        net = Network.from_config(cfg)
        assert sorted(net.optimizer_state) == sorted(keys)
        assert [a.shape for a in net.optimizer_state[keys[0]]] == [w.shape for w in net.get_weights()]


def test_schedule_values():
    tb = {"class_name": "TimeBased", "initial": 0.1, "decay": 0.5, "unit": "epoch"}
    assert [schedule_value(tb, t) for t in range(3)] == [0.1, 0.1 / 1.5, 0.1 / 2.0]
    assert schedule_value({"class_name": "Exponential", "initial": 1.0, "rate": 0.5}, 3) == 0.125
    step = {"class_name": "Step", "initial": 1.0, "factor": 0.1, "every": 2}
    assert [schedule_value(step, t) for t in range(5)] == [1.0, 1.0, 0.1, 0.1, 0.1 ** 2]
    lin = {"class_name": "Linear", "start": 1.0, "end": 0.5, "steps": 2}
    assert [schedule_value(lin, t) for t in range(4)] == [1.0, 0.75, 0.5, 0.5]
    assert schedule_value({"class_name": "Constant", "value": 0.3}, 9) == 0.3
    assert schedule_value(0.25, 4) == 0.25
    with pytest.raises(ValueError, match="schedule"):
        schedule_value({"class_name": "FromCallable", "fn": "f"}, 0)


@pytest.mark.parametrize("unit", ["epoch", "step"])
def test_fit_with_an_lr_schedule_uses_the_value_of_each_step(unit):
    r = np.random.default_rng(40)
    X, Y = r.normal(size=(10, 3)), r.normal(size=(10, 1))
    schedule = {"class_name": "TimeBased", "initial": 0.2, "decay": 0.3, "unit": unit}
    cfg = make_config([4, 1], ["tanh", "identity"], "mse", momentum=0.5)
    cfg["compile"]["optimizer"]["lr"] = schedule
    a = Network.from_config(cfg)
    b = Network.from_config(make_config([4, 1], ["tanh", "identity"], "mse", momentum=0.5))
    hist = a.fit(X, Y, epochs=3, batch_size=4)
    lrs = []
    for epoch in range(3):
        order = permutation(0, epoch, 10)
        for start in range(0, 10, 4):
            t = epoch if unit == "epoch" else len(lrs)
            lrs.append(0.2 / (1 + 0.3 * t))
            b.optimizer["lr"] = lrs[-1]
            b.train_step(X[order[start:start + 4]], Y[order[start:start + 4]])
    assert hist["steps"]["lr"] == lrs
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


TORCH_OPTIMIZERS = [
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("Adam", {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.05}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-6, "momentum": 0.5, "weight_decay": 0.05}),
    ("RMSprop", {"lr": 0.01}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.1, "initial_accumulator_value": 0.2, "weight_decay": 0.05}),
]


def torch_optimizer(torch, name, params, hp):
    hp = dict(hp)
    if name == "Adam":
        hp["betas"] = (hp.pop("beta1", 0.9), hp.pop("beta2", 0.999))
    return getattr(torch.optim, name)(params, **hp)


def assert_steps_match_torch(torch, net, params, opt, acts, X, Y, batch, steps, torch_loss, rel, atol,
                             clip_norm=None):
    """``steps`` reference train_steps on consecutive batches against torch's; losses and final weights."""
    flat = [p[k] for p in params for k in ("W", "b")]
    for step in range(steps):
        rows = slice(batch * step, batch * (step + 1))
        ref_loss = net.train_step(X[rows], Y[rows])
        opt.zero_grad()
        z, out = torch_forward(torch, params, acts, X[rows])
        t_loss = torch_loss(z, out, torch.tensor(Y[rows]))
        t_loss.backward()
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(flat, clip_norm)
        opt.step()
        assert ref_loss == pytest.approx(t_loss.item(), rel=rel), step
    for w, t in zip(net.get_weights(), flat):
        np.testing.assert_allclose(w, t.detach().numpy(), rtol=rel, atol=atol)


@pytest.mark.parametrize("clip_norm", [None, 0.5])
@pytest.mark.parametrize("name,hp", TORCH_OPTIMIZERS)
def test_optimizer_steps_match_torch(name, hp, clip_norm):
    torch = pytest.importorskip("torch")
    r = np.random.default_rng(41)
    acts = ["tanh", "relu", "identity"]
    cfg = make_config([6, 5, 2], acts, "mse", seed=12, init="he_normal")
    cfg["compile"]["optimizer"] = {"class_name": name, **hp, "clip_norm": clip_norm}
    net = Network.from_config(cfg)
    params = torch_net(torch, net.get_weights(), True)
    opt = torch_optimizer(torch, name, [p[k] for p in params for k in ("W", "b")], hp)
    X, Y = r.normal(size=(40, 3)), r.normal(size=(40, 2)) * 3
    assert_steps_match_torch(torch, net, params, opt, acts, X, Y, batch=5, steps=8,
                             torch_loss=lambda z, out, y: torch.nn.functional.mse_loss(out, y),
                             clip_norm=clip_norm, rel=1e-10, atol=1e-13)


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
    "pybackprop.reference.network", "pybackprop.reference.numeric", "pybackprop.reference.rng"], sorted(sys.modules)
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
    opt = torch.optim.SGD([p[k] for p in params for k in ("W", "b")], lr=0.2, momentum=0.9, nesterov=nesterov,
                          weight_decay=weight_decay)
    X, labels = r.normal(size=(30, 3)), r.integers(0, 3, size=30)
    assert_steps_match_torch(torch, net, params, opt, acts, X, labels, batch=6, steps=5,
                             torch_loss=lambda z, out, y: torch.nn.functional.cross_entropy(z, y),
                             rel=1e-12, atol=1e-14)


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
