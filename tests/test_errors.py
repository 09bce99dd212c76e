"""Bad input: the Errors section of DESIGN.md.

Every error is a ValueError (right kind, wrong value) or TypeError (wrong kind)
whose message starts with the argument's name and says what was expected and
what came ("batch_size: expected an integer >= 1, got 0 (int)"). Every error
raised by a built model leaves it bitwise unchanged: weights, the optimiser's
momentum buffers, and the epoch and step counters (which drive shuffling and
noise).
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import pybackprop as bp
from conftest import assert_state_unchanged, core_state, make_data, make_model, optimizer_state


def message(name: str) -> str:
    """The standard message: the argument's name first, then what was expected and what came."""
    return rf"(?s)^{re.escape(name)}[:\s(].*expected.*got"


N, D, K = 12, 3, 2


@pytest.fixture
def model():
    """A built model mid-training: non-zero momentum buffers, non-zero counters."""
    m = make_model([(5, "noisy_relu")], K, "identity", "mse", dtype="float64", input_dim=D, seed=1,
                   optimizer=bp.SGD(lr=0.05, momentum=0.9))
    X, y = make_data(N, D, K, "mse", seed=2)
    m.fit(X, y, epochs=2, batch_size=5, verbose=0)
    assert m._net.step_counter > 0 and any(np.any(s != 0) for s in optimizer_state(m))
    return m


@pytest.fixture
def classifier():
    m = make_model([(4, "relu")], 3, "softmax", "categorical_crossentropy", input_dim=D, seed=3,
                   optimizer=bp.SGD(lr=0.05, momentum=0.9))
    X, labels = make_data(N, D, 3, "categorical_crossentropy", seed=4, targets="labels")
    m.fit(X, labels, epochs=1, batch_size=4, verbose=0)
    return m


X0, Y0 = make_data(N, D, K, "mse", seed=5)
ENTRY_POINTS = {
    "fit": lambda m, X, y: m.fit(X, y, epochs=1, batch_size=4, verbose=0),
    "train_step": lambda m, X, y: m.train_step(X, y),
    "evaluate": lambda m, X, y: m.evaluate(X, y),
    "loss_and_gradients": lambda m, X, y: m.loss_and_gradients(X, y, training=True),
}


def _with_nan(a, value=np.nan):
    a = a.copy()
    a[1, 1] = value
    return a


# (id, X, y, exception, name in the message)
BAD_DATA = [
    ("X-1d", X0[0], Y0[:1], ValueError, "X"),
    ("X-3d", X0[None], Y0, ValueError, "X"),
    ("X-wrong-features", X0[:, :2], Y0, ValueError, "X"),
    ("X-too-many-features", np.hstack([X0, X0]), Y0, ValueError, "X"),
    ("X-nan", _with_nan(X0), Y0, ValueError, "X"),
    ("X-inf", _with_nan(X0, np.inf), Y0, ValueError, "X"),
    ("X-empty", X0[:0], Y0[:0], ValueError, "X"),
    ("X-object", X0.astype(object), Y0, TypeError, "X"),
    ("X-str", X0.astype(str), Y0, TypeError, "X"),
    ("X-complex", X0.astype(complex), Y0, TypeError, "X"),
    ("X-ragged", [[1.0, 2.0, 3.0], [1.0, 2.0]], Y0[:2], TypeError, "X"),
    ("X-none", None, Y0, TypeError, "X"),
    ("y-fewer-rows", X0, Y0[:-1], ValueError, "y"),
    ("y-more-rows", X0, np.vstack([Y0, Y0]), ValueError, "y"),
    ("y-wrong-columns", X0, np.hstack([Y0, Y0]), ValueError, "y"),
    ("y-1d-for-two-outputs", X0, Y0[:, 0], ValueError, "y"),
    ("y-3d", X0, Y0[:, :, None], ValueError, "y"),
    ("y-scalar", X0, 1.0, ValueError, "y"),
    ("y-nan", X0, _with_nan(Y0), ValueError, "y"),
    ("y-inf", X0, _with_nan(Y0, -np.inf), ValueError, "y"),
    ("y-empty", X0, Y0[:0], ValueError, "y"),
    ("y-object", X0, Y0.astype(object), TypeError, "y"),
    ("y-str", X0, Y0.astype(str), TypeError, "y"),
    ("y-complex", X0, Y0.astype(complex), TypeError, "y"),
]


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("X,y,exc,name", [pytest.param(*case[1:], id=case[0]) for case in BAD_DATA])
def test_bad_data_raises_and_leaves_the_model_unchanged(model, entry, X, y, exc, name):
    before = core_state(model)
    with pytest.raises(exc, match=message(name)):
        ENTRY_POINTS[entry](model, X, y)
    assert_state_unchanged(model, before)


@pytest.mark.parametrize("X,exc", [pytest.param(X0[0], ValueError, id="1d"),
                                   pytest.param(X0[None], ValueError, id="3d"),
                                   pytest.param(X0[:, :2], ValueError, id="features"),
                                   pytest.param(_with_nan(X0), ValueError, id="nan"),
                                   pytest.param(X0[:0], ValueError, id="empty"),
                                   pytest.param(X0.astype(complex), TypeError, id="complex")])
def test_predict_rejects_bad_X(model, X, exc):
    before = core_state(model)
    with pytest.raises(exc, match=message("X")):
        model.predict(X)
    assert_state_unchanged(model, before)


def test_X_that_overflows_float32_is_rejected_after_the_cast():
    m = make_model([(4, "tanh")], K, dtype="float32", input_dim=D, seed=0)
    X = X0 * 1e39  # finite in float64, inf in float32
    assert np.isfinite(X).all()
    before = core_state(m)
    with pytest.raises(ValueError, match=message("X")) as info:
        m.fit(X, Y0, verbose=0)
    assert "float32" in str(info.value)
    assert_state_unchanged(m, before)


# (id, keyword arguments of fit, exception, name)
BAD_FIT_ARGS = [
    ("batch_size-0", dict(batch_size=0), ValueError, "batch_size"),
    ("batch_size-negative", dict(batch_size=-1), ValueError, "batch_size"),
    ("batch_size-float", dict(batch_size=2.5), TypeError, "batch_size"),
    ("batch_size-bool", dict(batch_size=True), TypeError, "batch_size"),
    ("batch_size-str", dict(batch_size="8"), TypeError, "batch_size"),
    ("epochs-negative", dict(epochs=-1), ValueError, "epochs"),
    ("epochs-float", dict(epochs=1.5), TypeError, "epochs"),
    ("shuffle-str", dict(shuffle="yes"), TypeError, "shuffle"),
    ("verbose-negative", dict(verbose=-1), ValueError, "verbose"),
    ("validation_data-not-a-pair", dict(validation_data=X0), TypeError, "validation_data"),
    ("validation_data-X-features", dict(validation_data=(X0[:, :2], Y0)), ValueError, "validation_data[0]"),
    ("validation_data-y-rows", dict(validation_data=(X0, Y0[:3])), ValueError, "validation_data[1]"),
    ("validation_data-nan", dict(validation_data=(X0, _with_nan(Y0))), ValueError, "validation_data[1]"),
]


@pytest.mark.parametrize("kwargs,exc,name", [pytest.param(*c[1:], id=c[0]) for c in BAD_FIT_ARGS])
def test_bad_fit_arguments_raise_and_leave_the_model_unchanged(model, kwargs, exc, name):
    before = core_state(model)
    args = dict(epochs=2, batch_size=4, verbose=0)
    args.update(kwargs)
    with pytest.raises(exc, match=message(name)):
        model.fit(X0, Y0, **args)
    assert_state_unchanged(model, before)


def test_bad_training_flag(model):
    before = core_state(model)
    with pytest.raises(TypeError, match=message("training")):
        model.loss_and_gradients(X0, Y0, training="yes")
    assert_state_unchanged(model, before)


@pytest.mark.parametrize("labels", [pytest.param(np.array([0, 1, 3] * 4), id="too-large"),
                                    pytest.param(np.array([0, 1, -1] * 4), id="negative"),
                                    pytest.param(np.array([0, 1, 1.5] * 4), id="fractional"),
                                    pytest.param(np.array([0, 1, np.nan] * 4), id="nan")])
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_class_labels_out_of_range(classifier, labels, entry):
    before = core_state(classifier)
    with pytest.raises(ValueError, match=message("y")):
        ENTRY_POINTS[entry](classifier, X0, labels)
    assert_state_unchanged(classifier, before)


def test_one_hot_targets_of_the_wrong_width(classifier):
    before = core_state(classifier)
    with pytest.raises(ValueError, match=message("y")):
        classifier.fit(X0, np.eye(4)[np.arange(N) % 4], verbose=0)
    assert_state_unchanged(classifier, before)


# ---------------------------------------------------------------------- set_weights
def _bad_weights(m):
    ws = m.get_weights()
    nan = [w.copy() for w in ws]
    nan[-1][0] = np.nan
    inf = [w.copy() for w in ws]
    inf[0][0, 0] = np.inf
    return {
        "too-few": (ws[:-1], ValueError, "weights"),
        "too-many": (ws + [ws[-1]], ValueError, "weights"),
        "not-a-list": (ws[0], TypeError, "weights"),
        "wrong-shape": ([ws[0].T] + ws[1:], ValueError, "weights[0]"),
        "wrong-shape-last": (ws[:-1] + [ws[-1][:1]], ValueError, f"weights[{len(ws) - 1}]"),
        "nan-in-last": (nan, ValueError, f"weights[{len(ws) - 1}]"),
        "inf": (inf, ValueError, "weights[0]"),
        "complex": ([w.astype(complex) for w in ws], TypeError, "weights[0]"),
        "str": ([ws[0].astype(str)] + ws[1:], TypeError, "weights[0]"),
    }


def test_set_weights_too_large_for_float32():
    m = make_model([(4, "tanh")], K, dtype="float32", input_dim=D, seed=0)
    ws = m.get_weights()
    ws[0] = ws[0].astype(np.float64)
    ws[0][0, 0] = 1e39
    before = core_state(m)
    with pytest.raises(ValueError, match=message("weights[0]")):
        m.set_weights(ws)
    assert_state_unchanged(m, before)


@pytest.mark.parametrize("case", list(_bad_weights(make_model([(5, "tanh")], K, input_dim=D))))
def test_set_weights_checks_everything_before_writing(model, case):
    weights, exc, name = _bad_weights(model)[case]
    before = core_state(model)
    with pytest.raises(exc, match=message(name)):
        model.set_weights(weights)
    assert_state_unchanged(model, before)


# ---------------------------------------------------------------------- compile on a built model
@pytest.mark.parametrize("kwargs,exc,name", [
    pytest.param(dict(loss="cross_entropy"), ValueError, "loss", id="unknown-loss"),
    pytest.param(dict(loss=3), TypeError, "loss", id="loss-not-a-string"),
    pytest.param(dict(loss="binary_crossentropy"), ValueError, "loss", id="bce-without-sigmoid"),
    pytest.param(dict(loss="categorical_crossentropy"), ValueError, "loss", id="cce-without-softmax"),
    pytest.param(dict(loss="mse", optimizer="nonexistent_optimizer"), ValueError, "optimizer",
                 id="unknown-optimizer"),
    pytest.param(dict(loss="mse", optimizer=0.1), TypeError, "optimizer", id="optimizer-not-an-object"),
])
def test_bad_compile_on_a_built_model(model, kwargs, exc, name):
    before = core_state(model)
    loss, optimizer = model.loss, model.optimizer
    with pytest.raises(exc, match=message(name)):
        model.compile(**kwargs)
    assert (model.loss, model.optimizer) == (loss, optimizer)
    assert_state_unchanged(model, before)
    model.fit(X0, Y0, epochs=1, verbose=0)  # still usable


# ---------------------------------------------------------------------- constructors
@pytest.mark.parametrize("make,exc,name", [
    pytest.param(lambda: bp.SGD(lr=-1), ValueError, "lr", id="lr-negative"),
    pytest.param(lambda: bp.SGD(lr=float("nan")), ValueError, "lr", id="lr-nan"),
    pytest.param(lambda: bp.SGD(lr=float("inf")), ValueError, "lr", id="lr-inf"),
    pytest.param(lambda: bp.SGD(lr="0.1"), TypeError, "lr", id="lr-str"),
    pytest.param(lambda: bp.SGD(lr=10 ** 400), ValueError, "lr", id="lr-int-beyond-float"),
    pytest.param(lambda: bp.SGD(momentum=1.5), ValueError, "momentum", id="momentum-1.5"),
    pytest.param(lambda: bp.SGD(momentum=1.0), ValueError, "momentum", id="momentum-1"),
    pytest.param(lambda: bp.SGD(momentum=-0.1), ValueError, "momentum", id="momentum-negative"),
    pytest.param(lambda: bp.SGD(nesterov=True), ValueError, "nesterov", id="nesterov-without-momentum"),
    pytest.param(lambda: bp.SGD(momentum=0.9, nesterov=1), TypeError, "nesterov", id="nesterov-int"),
    pytest.param(lambda: bp.SGD(weight_decay=-1e-3), ValueError, "weight_decay", id="weight_decay-negative"),
    pytest.param(lambda: bp.Dense(0), ValueError, "units", id="units-0"),
    pytest.param(lambda: bp.Dense(2.5), TypeError, "units", id="units-float"),
    pytest.param(lambda: bp.Dense(2, activation="swish"), ValueError, "activation", id="unknown-activation"),
    pytest.param(lambda: bp.Dense(2, activation=3), TypeError, "activation", id="activation-int"),
    pytest.param(lambda: bp.Dense(2, init="orthogonal"), ValueError, "init", id="unknown-init"),
    pytest.param(lambda: bp.Dense(2, init=np.ones((3, 4))), ValueError, "init", id="init-array-columns"),
    pytest.param(lambda: bp.Dense(2, init=np.full((3, 2), np.nan)), ValueError, "init", id="init-array-nan"),
    pytest.param(lambda: bp.Dense(2, use_bias="no"), TypeError, "use_bias", id="use_bias-str"),
    pytest.param(lambda: bp.activations.LeakyReLU(alpha=-1), ValueError, "alpha", id="leaky-alpha"),
    pytest.param(lambda: bp.activations.NoisyReLU(sigma=-0.1), ValueError, "sigma", id="noisy-sigma"),
    pytest.param(lambda: bp.activations.ELU(alpha=float("nan")), ValueError, "alpha", id="elu-alpha"),
    pytest.param(lambda: bp.Sequential([bp.Dense(1)], dtype="float16"), ValueError, "dtype",
                 id="dtype-float16"),
    pytest.param(lambda: bp.Sequential([bp.Dense(1)], dtype="int32"), ValueError, "dtype", id="dtype-int32"),
    pytest.param(lambda: bp.Sequential([bp.Dense(1)], dtype="banana"), ValueError, "dtype",
                 id="dtype-unknown"),
    pytest.param(lambda: bp.Sequential([bp.Dense(1)], dtype=object()), TypeError, "dtype", id="dtype-object"),
    pytest.param(lambda: bp.Sequential([bp.Dense(1)], seed=-1), ValueError, "seed", id="seed-negative"),
    pytest.param(lambda: bp.Sequential([bp.Dense(1)], seed=2 ** 63), ValueError, "seed", id="seed-too-large"),
    pytest.param(lambda: bp.Sequential([bp.Dense(1)], seed=1.5), TypeError, "seed", id="seed-float"),
    pytest.param(lambda: bp.Sequential([bp.Dense(1)], input_dim=0), ValueError, "input_dim",
                 id="input_dim-0"),
    pytest.param(lambda: bp.Sequential(bp.Dense(1)), TypeError, "layers", id="layers-not-a-list"),
    pytest.param(lambda: bp.Sequential(["dense"]), TypeError, "layer", id="layer-not-a-layer"),
    pytest.param(lambda: bp.Sequential([bp.Dense(3, activation="softmax"), bp.Dense(1)], input_dim=2),
                 ValueError, "activation of layer 0", id="softmax-hidden"),
    pytest.param(lambda: bp.Sequential([bp.Dense(3, init=np.ones((4, 3)))], input_dim=2),
                 ValueError, "init of layer 0", id="init-array-rows"),
    pytest.param(lambda: bp.Sequential([bp.Dense(1, init=[[1e39]])], input_dim=1, dtype="float32"),
                 ValueError, "init of layer 0", id="init-array-overflows-float32"),
    pytest.param(lambda: bp.set_num_threads(0), ValueError, "n", id="threads-0"),
    pytest.param(lambda: bp.set_num_threads(1.5), TypeError, "n", id="threads-float"),
])
def test_bad_hyperparameters(make, exc, name, restore_num_threads):
    with pytest.raises(exc, match=message(name)):
        make()


def test_softmax_on_a_hidden_layer_of_a_lazy_model():
    model = bp.Sequential([bp.Dense(3, activation="softmax"), bp.Dense(1)])
    model.compile(loss="mse")
    with pytest.raises(ValueError, match=message("activation of layer 0")):
        model.fit(X0, Y0[:, 0], verbose=0)
    assert not model.built


@pytest.mark.parametrize("loss,out", [("binary_crossentropy", "identity"), ("binary_crossentropy", "softmax"),
                                      ("categorical_crossentropy", "sigmoid")])
def test_fused_losses_need_their_output_activation(loss, out):
    m = bp.Sequential([bp.Dense(2, activation=out)], input_dim=3)
    with pytest.raises(ValueError, match=message("loss")):
        m.compile(loss=loss)
    assert m.loss is None


def test_the_loss_activation_rule_is_the_cores_one():
    """pybackprop.losses states no rule of its own: for every (loss, output activation) pair
    it raises exactly when the core's set_loss does, with the same message, and LOSSES reads
    each loss's required activation from the core."""
    from pybackprop import _core
    assert bp.losses.LOSSES == {name: _core.loss_required_activation(name) for name in _core.LOSSES}
    assert bp.losses.LOSSES["binary_crossentropy"] == "sigmoid" and bp.losses.LOSSES["mse"] is None
    for loss in _core.LOSSES:
        for out in _core.ACTIVATIONS:
            net = _core.NetworkF64(3, [_core.DenseSpec(units=2, activation=out)], 0)
            try:
                net.set_loss(loss)
                core = None
            except ValueError as e:
                core = str(e)
            try:
                bp.losses.check_output_activation(loss, out)
                python = None
            except ValueError as e:
                python = str(e)
            assert python == core, (loss, out)
            required = bp.losses.LOSSES[loss]
            assert (core is None) == (required is None or required == out), (loss, out)
            if core is not None:
                assert core == f"loss: {loss} expected an output layer with activation '{required}', got '{out}'"


def test_the_core_guards_fit_epochs_preconditions_and_python_checks_the_users_arguments():
    """batch_size and the schedules' values: a user meets Python's check (fit_arguments,
    schedules); a direct caller of the core meets its own guard, before anything is written."""
    from pybackprop import _core
    net = _core.NetworkF64(3, [_core.DenseSpec(units=4, activation="tanh",
                                               dropout=_core.DropoutSpec(keep_prob=0.8)), _core.DenseSpec(units=1)], 0)
    net.set_loss("mse")
    net.set_optimizer(_core.OptimizerConfig())
    X, Y = np.ones((4, 3)), np.ones((4, 1))
    before = net.params().copy()
    guarded = [(0, {}, "batch_size: expected a positive integer, got 0"),
               (2, dict(lr=np.array([0.1])), "lr schedule: expected 2 values (one per step), got 1"),
               (2, dict(lr=np.array([0.1, -1.0])), "lr schedule: expected finite values >= 0"),
               (2, dict(keep_prob=np.array([[0.5], [0.0]])), "keep_prob of the schedule: expected a probability")]
    for batch_size, schedules, text in guarded:
        with pytest.raises(ValueError, match=re.escape(text)):
            net.fit_epoch(X, Y, batch_size, False, **schedules)
    np.testing.assert_array_equal(net.params(), before)
    assert net.epoch_counter == 0 and net.step_counter == 0
    model = bp.Sequential([bp.Dense(1)], input_dim=3)
    model.compile(loss="mse")
    with pytest.raises(ValueError, match="batch_size") as info:
        model.fit(X, Y, batch_size=0, verbose=0)
    assert str(info.value) != guarded[0][2]  # Python's check, not the core's guard


def test_unbuilt_model_is_not_built_by_bad_data():
    model = bp.Sequential([bp.Dense(2)], seed=0)
    model.compile(loss="mse")
    for X in (_with_nan(X0), X0[:0], X0.astype(complex), X0[0]):
        with pytest.raises((ValueError, TypeError), match=message("X")):
            model.fit(X, Y0, verbose=0)
        assert not model.built and model.input_dim is None
    model.fit(X0, Y0, verbose=0)
    assert model.input_dim == D


# ---------------------------------------------------------------------- not compiled
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_training_before_compile_raises_runtime_error(entry):
    model = bp.Sequential([bp.Dense(K)], input_dim=D, seed=0)
    weights = model.get_weights()
    with pytest.raises(RuntimeError, match="compile"):
        ENTRY_POINTS[entry](model, X0, Y0)
    for a, b in zip(weights, model.get_weights()):
        assert np.array_equal(a, b)
    assert model.predict(X0).shape == (N, K)  # inference needs no loss


# ---------------------------------------------------------------------- accepted inputs
def _layouts(X):
    wide = np.zeros((X.shape[0], 2 * X.shape[1]))
    wide[:, ::2] = X
    return {"strided": wide[:, ::2], "fortran": np.asfortranarray(X), "reversed-rows": X[::-1][::-1],
            "float32-in": X.astype(np.float32), "list": X.tolist()}


@pytest.mark.parametrize("layout", ["strided", "fortran", "reversed-rows", "float32-in", "list"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_non_contiguous_inputs_give_the_same_results(layout, dtype):
    X, y = make_data(N, D, K, "mse", seed=6)
    X = X.astype(np.float32).astype(np.float64)  # representable in both dtypes
    Xl = _layouts(X)[layout]
    yl = np.asfortranarray(y) if layout == "fortran" else y
    a = make_model([(5, "tanh")], K, dtype=dtype, input_dim=D, seed=7)
    b = make_model([(5, "tanh")], K, dtype=dtype, input_dim=D, seed=7)
    assert np.array_equal(a.predict(Xl), b.predict(np.ascontiguousarray(X, dtype=dtype)))
    la, ga = a.loss_and_gradients(Xl, yl)
    lb, gb = b.loss_and_gradients(np.ascontiguousarray(X, dtype=dtype), y)
    assert la == lb and all(np.array_equal(ga[i][k], gb[i][k]) for i in range(2) for k in ga[i])
    a.fit(Xl, yl, epochs=2, batch_size=5, verbose=0)
    b.fit(np.ascontiguousarray(X, dtype=dtype), y, epochs=2, batch_size=5, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)


@pytest.mark.parametrize("kind", ["int64", "int8", "uint16", "bool", "float16"])
def test_integer_and_bool_inputs_are_cast(kind):
    r = np.random.default_rng(8)
    X = r.integers(0, 2 if kind == "bool" else 5, size=(N, D)).astype(kind)
    y = r.integers(-3, 4, size=(N, K)).astype("int64")
    a = make_model([(5, "relu")], K, input_dim=D, seed=9)
    b = make_model([(5, "relu")], K, input_dim=D, seed=9)
    Xf, yf = X.astype(np.float64), y.astype(np.float64)
    assert np.array_equal(a.predict(X), b.predict(Xf))
    assert a.evaluate(X, y) == b.evaluate(Xf, yf)
    a.fit(X, y, epochs=2, batch_size=4, verbose=0)
    b.fit(Xf, yf, epochs=2, batch_size=4, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)


def test_inputs_are_not_modified():
    X, y = make_data(N, D, K, "mse", seed=10)
    X_copy, y_copy = X.copy(), y.copy()
    model = make_model([(5, "tanh")], K, input_dim=D)
    model.fit(X, y, epochs=2, batch_size=3, verbose=0)
    model.train_step(X, y)
    model.loss_and_gradients(X, y, training=True)
    assert np.array_equal(X, X_copy) and np.array_equal(y, y_copy)


@pytest.mark.parametrize("targets", [pytest.param(np.ones((N, 3)), id="rows-sum-to-3"),
                                     pytest.param(np.full((N, 3), 0.2), id="rows-sum-to-0.6"),
                                     pytest.param(np.tile([1.5, -0.5, 0.0], (N, 1)), id="negative")])
def test_categorical_targets_must_be_distributions(classifier, targets):
    """For rows that do not sum to 1 the fused gradient softmax(z) - y would not be the
    gradient of the loss -sum(y log softmax(z)): such targets are refused."""
    before = core_state(classifier)
    with pytest.raises(ValueError, match=message("y")):
        classifier.fit(X0, targets, verbose=0)
    assert_state_unchanged(classifier, before)
