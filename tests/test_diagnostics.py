"""gradient_check, gradient flow (per batch and recorded per epoch by the C++ loop), the
vanishing/exploding comparisons and the warning of fit."""
import warnings

import numpy as np
import pytest

import pybackprop as bp
from pybackprop import diagnostics


def _data(n=32, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, np.tanh(X[:, 0]) + X[:, 1] * X[:, 2]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradient_check_passes_on_a_correct_model(dtype):
    m = bp.Sequential([bp.Dense(6, activation="tanh"), bp.Dense(5, activation="sigmoid"), bp.Dense(1)],
                      input_dim=4, dtype=dtype, seed=1)
    m.compile(loss="mse")
    X, y = _data()
    report = bp.gradient_check(m, X, y)
    assert report["max_rel_error"] < diagnostics.GOOD  # float64 even for a float32 model
    assert [layer["checked"] for layer in report["layers"]] == [30, 35, 6]


def test_float32_finite_differences_would_fail():
    """Why gradient_check computes in float64: in float32 central differences are poor."""
    m = bp.Sequential([bp.Dense(6, activation="tanh"), bp.Dense(1)], input_dim=4, dtype="float32", seed=1)
    m.compile(loss="mse")
    X, y = _data()
    _, grads = m.loss_and_gradients(X, y)
    W = m.layers[0].W
    eps, worst = np.float32(1e-3), 0.0
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            old = W[i, j]
            W[i, j] = old + eps
            plus = m.evaluate(X, y)
            W[i, j] = old - eps
            minus = m.evaluate(X, y)
            W[i, j] = old
            numeric = (plus - minus) / (2 * eps)
            worst = max(worst, abs(numeric - grads[0]["W"][i, j]) / (abs(numeric) + abs(grads[0]["W"][i, j])))
    assert worst > 100 * bp.gradient_check(m, X, y)["max_rel_error"]


def test_gradient_check_catches_a_wrong_gradient(monkeypatch):
    m = bp.Sequential([bp.Dense(3, activation="tanh"), bp.Dense(1)], input_dim=3, dtype="float64", seed=0)
    m.compile(loss="mse")
    X, y = _data(8, 3)
    original = bp.Sequential.loss_and_gradients

    def wrong(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        out[1][0]["W"] *= 1.01  # a 1% error in the first layer's gradient
        return out

    monkeypatch.setattr(bp.Sequential, "loss_and_gradients", wrong)
    report = bp.gradient_check(m, X, y)
    assert report["layers"][0]["W"] > 1e-3 and report["layers"][1]["W"] < diagnostics.GOOD


def test_gradient_check_with_dropout_uses_the_same_masks():
    m = bp.Sequential([bp.Dense(8, activation="relu"), bp.Dropout(keep_prob=0.5),
                       bp.Dense(3, activation="softmax")], input_dim=4, seed=0)
    m.compile(loss="categorical_crossentropy")
    X, _ = _data()
    y = np.arange(len(X)) % 3
    assert bp.gradient_check(m, X, y, training=True)["max_rel_error"] < diagnostics.GOOD


def test_gradient_check_samples_large_layers():
    m = bp.Sequential([bp.Dense(64, activation="tanh"), bp.Dense(1)], input_dim=32, dtype="float64", seed=0)
    m.compile(loss="mse")
    X, y = _data(16, 32)
    report = bp.gradient_check(m, X, y, max_checks_per_layer=20)
    assert report["layers"][0]["checked"] == 40 and report["max_rel_error"] < diagnostics.GOOD


def test_gradient_flow_one_batch():
    m = bp.Sequential([bp.Dense(16, activation="relu", init=np.full((4, 16), -1.0)),
                       bp.Dense(8, activation="sigmoid", init=np.full((16, 8), 0.0)),
                       bp.Dense(1)], input_dim=4, seed=0)
    m.compile(loss="mse")
    X = np.abs(_data()[0])  # positive inputs and negative weights: every ReLU unit is dead
    flow = diagnostics.gradient_flow(m, X, X.sum(axis=1))
    assert flow["dead_fraction"] == [1.0, 0.0, 0.0]
    assert flow["grad_norm"][0] == 0.0 and flow["relative_grad"][-1] == 1.0
    assert flow["nonfinite"] == [False, False, False]
    np.testing.assert_allclose(flow["weight_norm"][0], 8.0)  # sqrt(64 * 1)


def test_history_records_gradient_flow_each_epoch():
    m = bp.Sequential([bp.Dense(8, activation="tanh"), bp.Dense(8, activation="relu"), bp.Dense(1)],
                      input_dim=4, seed=0)
    m.compile(loss="mse", optimizer=bp.SGD(lr=0.05))
    X, y = _data(64)
    h = m.fit(X, y, epochs=3, batch_size=16, verbose=0)
    for key in ("weight_norm", "update_ratio", "dead_fraction", "saturated_fraction", "nonfinite"):
        assert len(h.history[key]) == 3 and len(h.history[key][0]) == 3, key
    after = [np.linalg.norm(np.concatenate([w.ravel() for w in ws]))
             for ws in (m.get_weights()[0:2], m.get_weights()[2:4], m.get_weights()[4:6])]
    np.testing.assert_allclose(h.history["weight_norm"][-1], after, rtol=1e-5)
    assert all(0 < r < 1 for r in h.history["update_ratio"][0])
    assert h.history["dead_fraction"][0][0] == 0.0  # tanh layer: not relu-like
    assert h.history["nonfinite"][0] == [False, False, False]


def test_update_ratio_is_the_last_steps_update_over_the_weights():
    """update_ratio = ||theta_after - theta_before|| / ||theta_before|| per layer (W and b) for
    the epoch's last step, replayed here with train_step on a copy (60 samples in batches of
    16: the last step has 12 rows)."""
    import copy

    m = bp.Sequential([bp.Dense(8, activation="tanh"), bp.Dense(1)], input_dim=4, seed=3, dtype="float64")
    m.compile(loss="mse", optimizer=bp.SGD(lr=0.1, momentum=0.9, weight_decay=0.01))
    X, y = _data(60)
    twin = copy.deepcopy(m)
    h = m.fit(X, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for start in range(0, 48, 16):
        twin.train_step(X[start:start + 16], y[start:start + 16])
    before = twin.get_weights()
    twin.train_step(X[48:], y[48:])
    after = twin.get_weights()
    for layer in range(2):
        old = np.concatenate([w.ravel() for w in before[2 * layer:2 * layer + 2]])
        new = np.concatenate([w.ravel() for w in after[2 * layer:2 * layer + 2]])
        want = np.linalg.norm(new - old) / np.linalg.norm(old)
        assert h.history["update_ratio"][0][layer] == pytest.approx(want, rel=1e-12)


def test_saturation_is_measured():
    m = bp.Sequential([bp.Dense(4, activation="sigmoid", init=np.full((4, 4), 10.0)), bp.Dense(1)],
                      input_dim=4, seed=0)
    m.compile(loss="mse", optimizer=bp.SGD(lr=0.0))
    X = np.abs(_data()[0]) + 0.5
    with pytest.warns(bp.GradientFlowWarning):  # saturated sigmoids pass back (almost) no gradient
        h = m.fit(X, X.sum(axis=1), epochs=1, verbose=0)
    assert h.history["saturated_fraction"][0][0] == 1.0


def test_fit_warns_once_when_gradients_vanish():
    m = bp.Sequential([bp.Dense(16, activation="sigmoid") for _ in range(10)] + [bp.Dense(1)], input_dim=4,
                      seed=0)
    m.compile(loss="mse")
    X, y = _data(64)
    with pytest.warns(bp.GradientFlowWarning, match="vanishing gradients in epoch 0") as record:
        m.fit(X, y, epochs=3, verbose=0)
    assert len(record) == 1


def test_no_warning_for_a_healthy_net():
    m = bp.Sequential([bp.Dense(16, activation="relu", init="he_normal") for _ in range(4)] + [bp.Dense(1)],
                      input_dim=4, seed=0)
    m.compile(loss="mse")
    X, y = _data(64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.fit(X, y, epochs=2, verbose=0)


def test_vanishing_and_exploding_comparisons():
    rows = diagnostics.vanishing_comparison(depth=10, epochs=3)
    by = {r["activation"]: r for r in rows}
    assert by["sigmoid"]["relative_grad"] < 1e-4
    for act in ("tanh", "relu", "leaky_relu"):
        assert by[act]["relative_grad"] > 1e-2, act
        assert by[act]["loss_after"] < by["sigmoid"]["loss_after"], act
    no_clip, clip = diagnostics.exploding_comparison(epochs=5)
    assert no_clip["diverged"] is not None
    assert clip["diverged"] is None and clip["loss_after"] < clip["loss_before"]


def test_core_grad_norms_are_the_layer_norms_of_the_gradients():
    """_core grad_norms() (used by distributed training after the all-reduce): per layer
    ||(dW, db)|| of the gradients now in the arena, what fit records as grad_norm."""
    m = bp.Sequential([bp.Dense(8, activation="tanh"), bp.Dense(3, use_bias=False), bp.Dense(1)],
                      input_dim=4, seed=1, dtype="float64")
    m.compile(loss="mse", optimizer=bp.SGD(lr=0.1))
    X, y = _data(20)
    _, grads = m.loss_and_gradients(X, y)
    want = [np.sqrt(sum(float(np.sum(g ** 2)) for g in layer.values())) for layer in grads]
    np.testing.assert_allclose(m._net.grad_norms(), want, rtol=1e-12)
    assert len(m._net.grad_norms()) == 3
