"""The chain-rule explainer: every number comes from the core and matches train_step,
the NumPy reference and (when installed) PyTorch autograd."""
import json

import numpy as np
import pytest

import pybackprop as bp
from pybackprop import reference


def textbook(seed=4, dtype="float64"):
    m = bp.Sequential([bp.Dense(4, activation="relu", use_bias=False, init="he_normal"),
                       bp.Dense(4, activation="sigmoid", use_bias=False),
                       bp.Dense(1, activation="identity", use_bias=False)], input_dim=3, dtype=dtype, seed=seed)
    m.compile(loss="mse", optimizer=bp.SGD(lr=0.1))
    return m


def with_bias():
    m = bp.Sequential([bp.Dense(5, activation="tanh"), bp.Dropout(keep_prob=0.6),
                       bp.Dense(3, activation="softmax")], input_dim=4, dtype="float64", seed=2)
    m.compile(loss="categorical_crossentropy", optimizer=bp.SGD(lr=0.3))
    return m


X1 = np.array([[1.0, 2.0, 3.0]])


def test_trace_update_equals_train_step():
    m = textbook()
    before = m.get_weights()
    trace = m.explain([1.0, 2.0, 3.0], [0.5], lr=0.1)
    for w0, w1 in zip(before, m.get_weights()):  # explain does not change the model
        np.testing.assert_array_equal(w0, w1)
    loss = m.train_step(X1, [0.5])
    assert loss == trace.loss
    for layer, t in zip(m.layers, trace.layers):
        np.testing.assert_array_equal(layer.W, t["W_new"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_epilogues_equal_the_separate_passes_bitwise(dtype, restore_num_threads):
    """train_step fuses each activation into its forward product and the dropout and f'
    into the backward one (blocked GEMMs here: batch 48, layers of 40-72 units); with
    recording on (as explain() sets it) the core runs them as separate passes. The
    gradients and updated weights must agree bitwise, on 1 and 2 threads."""
    import copy

    for threads in (1, 2):
        bp.set_num_threads(threads)
        m = bp.Sequential([bp.Dense(72, activation="tanh"), bp.Dropout(keep_prob=0.7),
                           bp.Dense(64, activation="relu"), bp.Dropout(keep_prob=0.9, scaling="classic"),
                           bp.Dense(56, activation="sigmoid"), bp.Dense(10, activation="softmax")],
                          input_dim=40, dtype=dtype, seed=11)
        m.compile(loss="categorical_crossentropy", optimizer=bp.SGD(lr=0.2))
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(48, 40)).astype(dtype), rng.integers(0, 10, size=48)
        separate = copy.deepcopy(m)
        separate._net.set_recording(True)
        for model in (m, separate):
            model.train_step(X, y)
        assert separate._net.recorded(1)["dZ"].shape == (48, 64)  # the separate passes did run
        for w_fused, w_separate in zip(m.get_weights(), separate.get_weights()):
            np.testing.assert_array_equal(w_fused, w_separate)


def test_trace_with_bias_dropout_and_softmax_equals_train_step():
    m = with_bias()
    x = np.array([0.5, -1.0, 2.0, 0.1])
    trace = m.explain(x, np.array([2]), lr=0.3)
    m.train_step(x[None, :], [2])
    dense = [layer for layer in m.layers if isinstance(layer, bp.Dense)]
    for layer, t in zip(dense, trace.layers):
        np.testing.assert_array_equal(layer.W, t["W_new"])
        np.testing.assert_array_equal(layer.b, t["b_new"])
    assert trace.layers[1]["mask"] is not None
    out = trace.layers[1]  # its input is the core's dropped activation: a1 ⊙ mask / keep_prob
    np.testing.assert_allclose(out["a_prev"], trace.layers[0]["a"] * out["mask"] / 0.6, rtol=1e-15)
    np.testing.assert_allclose(out["z"], out["a_prev"] @ out["W"] + out["b"], rtol=1e-14)
    assert np.isnan(trace.layers[-1]["dL_da"]).all()  # fused softmax + cross-entropy
    assert np.isnan(trace.layers[-1]["fprime"]).all()  # softmax's derivative is a Jacobian


def test_trace_chain_rule_is_consistent():
    """Each recorded quantity is the chain-rule product of the others."""
    t = textbook().explain([1.0, 2.0, 3.0], [0.5])
    layers = t.layers
    np.testing.assert_allclose(layers[-1]["dL_da"], 2 * (t.y_hat - t.y), rtol=1e-15)
    for i, layer in enumerate(layers):
        np.testing.assert_allclose(layer["delta"], layer["dL_da"] * layer["fprime"], rtol=1e-14)
        np.testing.assert_allclose(layer["dW"], layer["a_prev"].T @ layer["delta"], rtol=1e-14)
        np.testing.assert_allclose(layer["dL_da_prev"], layer["delta"] @ layer["W"].T, rtol=1e-14, atol=1e-300)
        np.testing.assert_allclose(layer["W_new"], layer["W"] - t.lr * layer["dW"], rtol=1e-15)
        if i > 0:
            np.testing.assert_array_equal(layers[i - 1]["dL_da"], layer["dL_da_prev"])


def test_trace_gradients_equal_the_reference():
    m = textbook()
    ref = reference.Network.from_config(m.get_config(), m.get_weights())
    trace = m.explain([1.0, 2.0, 3.0], [0.5])
    loss, grads = ref.loss_and_gradients(X1, np.array([[0.5]]))
    assert trace.loss == pytest.approx(loss, rel=1e-14)
    for t, g in zip(trace.layers, grads):
        np.testing.assert_allclose(t["dW"], g["W"], rtol=1e-12, atol=1e-15)
    forward = ref.forward_trace(X1)
    for t, f in zip(trace.layers, forward):
        np.testing.assert_allclose(t["z"], f["z"], rtol=1e-13)
        np.testing.assert_allclose(t["a"], f["a"], rtol=1e-13)


def test_trace_gradients_equal_torch_autograd():
    torch = pytest.importorskip("torch")
    m = textbook()
    trace = m.explain([1.0, 2.0, 3.0], [0.5])
    Ws = [torch.tensor(w, requires_grad=True) for w in m.get_weights()]
    a = torch.tensor(X1)
    for W, act in zip(Ws, (torch.relu, torch.sigmoid, lambda z: z)):
        a = act(a @ W)
    loss = ((a - 0.5) ** 2).mean()
    loss.backward()
    assert trace.loss == pytest.approx(loss.item(), rel=1e-14)
    for t, W in zip(trace.layers, Ws):
        np.testing.assert_allclose(t["dW"], W.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_float32_model_trace():
    t = textbook(dtype="float32").explain([1.0, 2.0, 3.0], [0.5])
    assert t.layers[0]["dW"].dtype == np.float32


def test_print_to_dict_to_markdown():
    t = textbook().explain([1.0, 2.0, 3.0], [0.5])
    text = str(t)
    for needle in ("forward, layer 1", "z1", "a1             relu(z1)", "backward, layer 3", "δ2 = dL/dz2",
                   "dL/dW1", "update (SGD, lr 0.1)", "W3 new"):
        assert needle in text, needle
    d = t.to_dict()
    json.dumps(d)
    assert d["layers"][0]["W_new"] == t.layers[0]["W_new"].tolist()
    md = t.to_markdown().splitlines()
    assert md[0] == "| step | quantity | formula | value |" and len(md) > 30


def test_large_matrices_are_summarised():
    m = bp.Sequential([bp.Dense(100, activation="relu"), bp.Dense(1)], input_dim=50, seed=0)
    m.compile(loss="mse")
    text = str(m.explain(np.ones(50), [1.0]))
    assert "shape (50, 100): mean" in text


def test_explain_errors():
    m = textbook()
    with pytest.raises(ValueError, match="x: expected one sample"):
        m.explain(np.ones((2, 3)), [0.5, 0.5])
    with pytest.raises(ValueError, match="X: expected 3 columns"):
        m.explain([1.0, 2.0], [0.5])
    with pytest.raises(ValueError, match="lr"):
        m.explain([1.0, 2.0, 3.0], [0.5], lr=-1)
    uncompiled = bp.Sequential([bp.Dense(1)], input_dim=1)
    with pytest.raises(RuntimeError, match="not compiled"):
        uncompiled.explain([1.0], [1.0])
