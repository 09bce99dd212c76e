"""Parity of the C++ core with the NumPy reference, tensor by tensor.

The same config and the same weights go to both engines (``reference_of``);
then every tensor is compared by name: the output of ``predict``, every
layer's pre-activation Z and activation A, the loss, every dW and db (in
inference mode, and in training mode where noisy_relu draws its noise from the
seeded stream both engines share), and, after 3 epochs of ``fit`` with
SGD(momentum=0.9) and shuffling, the per-epoch loss and gradient norms, the
weights, the momentum buffers and the counters.

The grid covers every hidden activation with every loss (and both kinds of
categorical targets), in float32 and float64, with batch sizes 1, 7 and the
full set (20 samples, so 7 leaves a partial last batch); depth (1-4 hidden
layers) and use_bias vary across the cases. The output layer uses the
activation under test for the regression losses, sigmoid for binary and
softmax for categorical cross-entropy; softmax output with the regression
losses has its own cases.
"""
from __future__ import annotations

from typing import Any, Dict, List

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pybackprop as bp
from conftest import (HIDDEN_ACTIVATIONS, assert_close, assert_gradients_close, assert_tensors_close,
                      core_and_reference, core_momentum, make_data, reference_of, tolerance,
                      weight_names)

N_SAMPLES = 20
INPUT_DIM = 4
WIDTHS = [5, 4, 6, 3]
BATCH_SIZES = [1, 7, N_SAMPLES]
DTYPES = ["float32", "float64"]
# (loss, kind of targets)
LOSS_VARIANTS = [("mse", None), ("mae", None), ("huber", None), ("binary_crossentropy", None),
                 ("categorical_crossentropy", "labels"), ("categorical_crossentropy", "onehot")]


def _case(act: str, loss: str, targets: Any, depth: int, use_bias: bool, out_act: str) -> Dict[str, Any]:
    out_units = {"binary_crossentropy": 2, "categorical_crossentropy": 3}.get(loss, 2)
    return {"hidden": [(WIDTHS[k], act) for k in range(depth)], "out_act": out_act, "loss": loss,
            "targets": targets or "onehot", "use_bias": use_bias, "out_units": out_units}


def _cases() -> List[Any]:
    cases = []
    for ai, act in enumerate(HIDDEN_ACTIVATIONS):
        for li, (loss, targets) in enumerate(LOSS_VARIANTS):
            depth = 1 + (ai + li) % 4             # every activation and every loss sees depths 1..4
            use_bias = (ai + li // 2) % 2 == 0    # ... and both use_bias values
            out_act = {"binary_crossentropy": "sigmoid", "categorical_crossentropy": "softmax"}.get(loss, act)
            case = _case(act, loss, targets, depth, use_bias, out_act)
            bias = "bias" if use_bias else "nobias"
            cid = f"{act}-{loss}{'-' + targets if targets else ''}-d{depth}-{bias}"
            cases.append(pytest.param(case, id=cid))
    # softmax output with the regression losses (softmax backward through the full Jacobian)
    for li, (loss, hidden_act) in enumerate([("mse", "tanh"), ("mae", "relu"), ("huber", "gelu")]):
        case = _case(hidden_act, loss, None, 1 + li, li % 2 == 0, "softmax")
        case["out_units"] = 3
        cases.append(pytest.param(case, id=f"softmax_out-{loss}-{hidden_act}-d{1 + li}"))
    return cases


def _build(case: Dict[str, Any], dtype: str, seed: int = 0, optimizer: Any = None):
    return core_and_reference(hidden=case["hidden"], out_units=case["out_units"], out_act=case["out_act"],
                              loss=case["loss"], use_bias=case["use_bias"], dtype=dtype, seed=seed,
                              input_dim=INPUT_DIM,
                              optimizer=optimizer or bp.SGD(lr=0.01, momentum=0.9))


def _compare_forward_and_gradients(model, ref, X, y, dtype: str, training: bool) -> None:
    mode = "training" if training else "inference"
    loss_c, grads_c = model.loss_and_gradients(X, y, training=training)
    loss_r, grads_r = ref.loss_and_gradients(X, y, training=training)
    # The core keeps Z and A of its last forward pass: compare them layer by layer.
    trace = ref.forward_trace(X, training=training)
    for i, t in enumerate(trace):
        assert_close(f"{mode} layer {i} Z", model._net.Z(i), t["z"], *tolerance(dtype, t["z"]))
        assert_close(f"{mode} layer {i} A", model._net.A(i), t["a"], *tolerance(dtype, t["a"]))
    assert_close(f"{mode} loss", loss_c, loss_r, *tolerance(dtype, loss_r))
    assert_gradients_close(mode, grads_c, grads_r, dtype)


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", _cases())
def test_core_matches_reference(case, dtype, batch_size):
    X, y = make_data(N_SAMPLES, INPUT_DIM, case["out_units"], case["loss"], dtype, seed=batch_size + 1,
                     targets=case["targets"])
    Xb, yb = X[:batch_size], y[:batch_size]
    # A deep ReLU net without biases may start dead on one sample (every gradient 0), which
    # would make the comparison vacuous: take the first seed whose gradient is not all zero.
    for seed in range(batch_size, batch_size + 20):
        model, ref = _build(case, dtype, seed=seed)
        if any(np.any(g != 0) for layer in model.loss_and_gradients(Xb, yb)[1] for g in layer.values()):
            break
    else:
        pytest.fail("no seed gives a network with a non-zero gradient")
    assert_tensors_close("initial weights", model.get_weights(), ref.get_weights(), dtype,
                         weight_names(model))

    # Forward in inference mode.
    want = ref.predict(X)
    got = model.predict(X)
    assert got.dtype == np.dtype(dtype)
    assert_close("predict", got, want, *tolerance(dtype, want))

    # Loss, activations and every gradient of one batch (no update).
    _compare_forward_and_gradients(model, ref, Xb, yb, dtype, training=False)
    if any(act == "noisy_relu" for _, act in case["hidden"]) or case["out_act"] == "noisy_relu":
        _compare_forward_and_gradients(model, ref, Xb, yb, dtype, training=True)
        # Training mode really adds the noise: in the first noisy layer (whose input is the
        # same in both modes) Z_training - Z_inference is the reference's eps.
        first = next(i for i, layer in enumerate(model.layers) if layer.activation.name == "noisy_relu")
        model.loss_and_gradients(Xb, yb, training=True)
        z_train = model._net.Z(first)
        model.loss_and_gradients(Xb, yb, training=False)
        eps = ref.forward_trace(Xb, training=True)[first]["noise"]
        assert np.all(eps != 0)
        assert_close(f"layer {first} noise", z_train - model._net.Z(first), eps,
                     *tolerance(dtype, z_train))

    # 3 epochs of shuffled mini-batch SGD with momentum.
    hist = model.fit(X, y, epochs=3, batch_size=batch_size, shuffle=True, verbose=0).history
    hist_r = ref.fit(X, y, epochs=3, batch_size=batch_size, shuffle=True)
    assert_tensors_close("history loss", [np.array(hist["loss"])], [np.array(hist_r["loss"])], dtype,
                         ["[epoch]"])
    assert_tensors_close("history grad_norm", [np.array(hist["grad_norm"])],
                         [np.array(hist_r["grad_norm"])], dtype, ["[epoch, layer]"])
    assert_tensors_close("weights after fit", model.get_weights(), ref.get_weights(), dtype,
                         weight_names(model))
    assert_tensors_close("momentum after fit", core_momentum(model), ref.momentum_buffers, dtype,
                         weight_names(model))
    steps = -(-N_SAMPLES // batch_size)
    assert (model._net.epoch_counter, model._net.step_counter) == (3, 3 * steps)
    assert (ref.epoch_counter, ref.step_counter) == (3, 3 * steps)


SGD_VARIANTS = [
    pytest.param(dict(lr=0.1), id="plain"),
    pytest.param(dict(lr=0.05, momentum=0.9), id="momentum"),
    pytest.param(dict(lr=0.05, momentum=0.5, nesterov=True), id="nesterov"),
    pytest.param(dict(lr=0.05, momentum=0.9, weight_decay=0.01), id="momentum-wd"),
    pytest.param(dict(lr=0.05, weight_decay=0.1), id="wd"),
    pytest.param(dict(lr=0.03, momentum=0.8, nesterov=True, weight_decay=0.05), id="nesterov-wd"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sgd", SGD_VARIANTS)
def test_sgd_variants_match_reference(sgd, dtype):
    case = _case("tanh", "mse", None, 2, True, "identity")
    model, ref = _build(case, dtype, seed=3, optimizer=bp.SGD(**sgd))
    X, y = make_data(N_SAMPLES, INPUT_DIM, 2, "mse", dtype, seed=4)
    for step in range(5):  # train_step, then a shuffled fit, on the same two engines
        rows = slice(4 * step, 4 * step + 4)
        assert_close(f"train_step {step} loss", model.train_step(X[rows], y[rows]),
                     ref.train_step(X[rows], y[rows]), *tolerance(dtype, 1.0))
    model.fit(X, y, epochs=2, batch_size=6, verbose=0)
    ref.fit(X, y, epochs=2, batch_size=6)
    assert_tensors_close("weights", model.get_weights(), ref.get_weights(), dtype, weight_names(model))
    assert_tensors_close("momentum", core_momentum(model), ref.momentum_buffers, dtype, weight_names(model))


@pytest.mark.parametrize("dtype", DTYPES)
def test_fit_calls_continue_the_epoch_and_step_streams(dtype):
    """fit(2 epochs) then fit(1 epoch) equals fit(3 epochs), bitwise, and the reference."""
    case = _case("noisy_relu", "mse", None, 2, True, "identity")
    a, ref = _build(case, dtype, seed=11)
    b, _ = _build(case, dtype, seed=11)
    X, y = make_data(N_SAMPLES, INPUT_DIM, 2, "mse", dtype, seed=12)
    a.fit(X, y, epochs=2, batch_size=6, verbose=0)
    h = a.fit(X, y, epochs=1, batch_size=6, verbose=0)
    assert h.epoch == [2]
    b.fit(X, y, epochs=3, batch_size=6, verbose=0)
    for name, wa, wb in zip(weight_names(a), a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb), f"{name}: split fit differs from one fit"
    ref.fit(X, y, epochs=3, batch_size=6)
    assert_tensors_close("weights", a.get_weights(), ref.get_weights(), dtype, weight_names(a))


@pytest.mark.parametrize("dtype", DTYPES)
def test_parity_after_training_continues(dtype):
    """A reference built from a trained model (weights, counters) keeps matching it."""
    case = _case("noisy_relu", "categorical_crossentropy", "labels", 2, False, "softmax")
    model, _ = _build(case, dtype, seed=5)
    X, y = make_data(N_SAMPLES, INPUT_DIM, 3, "categorical_crossentropy", dtype, seed=6, targets="labels")
    model.fit(X, y, epochs=2, batch_size=5, verbose=0)
    ref = reference_of(model)  # momentum buffers start at zero in a fresh reference:
    model._net.reset_optimizer_state()
    _compare_forward_and_gradients(model, ref, X, y, dtype, training=True)
    model.fit(X, y, epochs=1, batch_size=5, verbose=0)
    ref.fit(X, y, epochs=1, batch_size=5)
    assert_tensors_close("weights", model.get_weights(), ref.get_weights(), dtype, weight_names(model))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("loss,out_act", [("mse", None), ("binary_crossentropy", "sigmoid"),
                                          ("categorical_crossentropy", "softmax")])
def test_core_matches_reference_at_large_magnitudes(act, loss, out_act, dtype):
    """Inputs of size ~100: softplus beyond its threshold 20, saturated sigmoid/tanh,
    elu and gelu tails, softmax and the cross-entropies on logits of size ~1e2-1e3."""
    case = _case(act, loss, None, 2, True, out_act or act)
    model, ref = _build(case, dtype, seed=13)
    X, y = make_data(N_SAMPLES, INPUT_DIM, case["out_units"], loss, dtype, seed=14)
    X = X * 100
    want = ref.predict(X)
    assert np.isfinite(want).all()
    assert_close("predict", model.predict(X), want, *tolerance(dtype, want))
    _compare_forward_and_gradients(model, ref, X, y, dtype, training=False)


@pytest.mark.parametrize("dtype", DTYPES)
def test_inference_in_chunks_matches_reference(dtype):
    """predict and evaluate on more rows than the core's inference chunk (1024)."""
    case = _case("gelu", "categorical_crossentropy", "labels", 2, True, "softmax")
    model, ref = _build(case, dtype, seed=15)
    X, y = make_data(2500, INPUT_DIM, 3, "categorical_crossentropy", dtype, seed=16, targets="labels")
    want = ref.predict(X)
    assert_close("predict", model.predict(X), want, *tolerance(dtype, want))
    assert_close("evaluate", model.evaluate(X, y), ref.evaluate(X, y), *tolerance(dtype, 1.0))
    _compare_forward_and_gradients(model, ref, X, y, dtype, training=False)


# ---------------------------------------------------------------------- random architectures
@st.composite
def _random_case(draw):
    loss, targets = draw(st.sampled_from(LOSS_VARIANTS))
    depth = draw(st.integers(0, 4))
    hidden = [(draw(st.integers(1, 7)), draw(st.sampled_from(HIDDEN_ACTIVATIONS))) for _ in range(depth)]
    if loss == "binary_crossentropy":
        out_act = "sigmoid"
    elif loss == "categorical_crossentropy":
        out_act = "softmax"
    else:
        out_act = draw(st.sampled_from(HIDDEN_ACTIVATIONS + ["softmax"]))
    out_units = draw(st.integers(2 if out_act == "softmax" else 1, 4))
    return {"hidden": hidden, "out_act": out_act, "loss": loss, "targets": targets or "onehot",
            "use_bias": draw(st.booleans()), "out_units": out_units,
            "batch_size": draw(st.integers(1, 12)), "n": draw(st.integers(1, 12)),
            "input_dim": draw(st.integers(1, 5)), "seed": draw(st.integers(0, 2 ** 63 - 1)),
            "sgd": draw(st.sampled_from([p.values[0] for p in SGD_VARIANTS]))}


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=_random_case(), dtype=st.sampled_from(DTYPES))
def test_random_architectures_match_reference(case, dtype):
    """Any stack of Dense layers (0-4 hidden, widths 1-7), any compatible loss, any batch
    size (also larger than the data), any seed: gradients and 2 epochs of fit agree."""
    model, ref = core_and_reference(hidden=case["hidden"], out_units=case["out_units"],
                                    out_act=case["out_act"], loss=case["loss"], use_bias=case["use_bias"],
                                    dtype=dtype, seed=case["seed"], input_dim=case["input_dim"],
                                    optimizer=bp.SGD(**case["sgd"]))
    X, y = make_data(case["n"], case["input_dim"], case["out_units"], case["loss"], dtype,
                     seed=case["seed"] % 1000, targets=case["targets"])
    _compare_forward_and_gradients(model, ref, X, y, dtype, training=True)
    hist = model.fit(X, y, epochs=2, batch_size=case["batch_size"], verbose=0).history
    hist_r = ref.fit(X, y, epochs=2, batch_size=case["batch_size"])
    assert_tensors_close("history loss", [np.array(hist["loss"])], [np.array(hist_r["loss"])], dtype,
                         ["[epoch]"])
    assert_tensors_close("weights after fit", model.get_weights(), ref.get_weights(), dtype,
                         weight_names(model))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("input_dim,widths,batch", [(33, [70, 45], 37), (17, [129, 8], 64), (64, [256], 100)])
def test_medium_layers_match_reference(input_dim, widths, batch, dtype):
    """Layers large enough for the core's packed/blocked GEMM paths, with odd sizes
    that leave partial register tiles at every edge."""
    hidden = [(w, act) for w, act in zip(widths, ["gelu", "tanh"])]
    model, ref = core_and_reference(hidden=hidden, out_units=5, out_act="softmax",
                                    loss="categorical_crossentropy", use_bias=True, dtype=dtype, seed=17,
                                    input_dim=input_dim, init="he_normal",
                                    optimizer=bp.SGD(lr=0.05, momentum=0.9))
    X, y = make_data(2 * batch + 3, input_dim, 5, "categorical_crossentropy", dtype, seed=18, targets="labels")
    _compare_forward_and_gradients(model, ref, X[:batch], y[:batch], dtype, training=False)
    want = ref.predict(X)
    assert_close("predict", model.predict(X), want, *tolerance(dtype, want))
    model.fit(X, y, epochs=1, batch_size=batch, verbose=0)
    ref.fit(X, y, epochs=1, batch_size=batch)
    assert_tensors_close("weights after fit", model.get_weights(), ref.get_weights(), dtype,
                         weight_names(model))
