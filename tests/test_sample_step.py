"""The fused per-sample step (src/cpp/training/sample_step.cpp): with batch size 1,
fit on a tiny network takes one fused function per step instead of the general
layer machinery. It must give bitwise what the general path gives: weights,
optimiser state, every history value, and the same refusal when training diverges."""
import copy
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import pybackprop as bp
from pybackprop._core import _testing


def model(units, activations, input_dim=3, dtype="float32", use_bias=True, loss="mse", optimizer=None, seed=3):
    layers = [bp.Dense(u, activation=a, use_bias=use_bias) for u, a in zip(units, activations)]
    m = bp.Sequential(layers, input_dim=input_dim, dtype=dtype, seed=seed)
    m.compile(loss=loss, optimizer=optimizer or bp.SGD(lr=0.05))
    return m


N_ROWS = 257


def data(m, n=N_ROWS, seed=0, classes=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, m._net.input_dim))
    k = m._net.output_dim
    y = (rng.random((n, k)) < 0.5).astype(float) if classes else np.tanh(X[:, :1] - 0.5 * X[:, -1:]) @ np.ones((1, k))
    return X, y


CASES = {
    "textbook": lambda dt: model([4, 4, 1], ["relu", "sigmoid", "identity"], dtype=dt, use_bias=False),
    "bias-momentum": lambda dt: model([5, 3, 2], ["tanh", "leaky_relu", "identity"], dtype=dt,
                                      optimizer=bp.SGD(lr=0.03, momentum=0.9)),
    "nesterov-decay-mae": lambda dt: model([6, 2], ["elu", "identity"], dtype=dt, loss="mae",
                                           optimizer=bp.SGD(lr=0.05, momentum=0.8, nesterov=True, weight_decay=1e-3)),
    "huber-softplus-gelu": lambda dt: model([7, 8, 1], ["softplus", "gelu", "identity"], dtype=dt, loss="huber"),
    "bce": lambda dt: model([4, 1], ["relu", "sigmoid"], dtype=dt, loss="binary_crossentropy"),
    "widths-1-9-16": lambda dt: model([1, 9, 16, 3], ["tanh", "relu", "sigmoid", "identity"], input_dim=16, dtype=dt),
    "eight-layers": lambda dt: model([8] * 7 + [1], ["tanh", "relu"] * 3 + ["sigmoid", "identity"], dtype=dt),
    "one-layer": lambda dt: model([2], ["identity"], dtype=dt),
    "lr-schedule": lambda dt: model([4, 1], ["relu", "identity"], dtype=dt,
                                    optimizer=bp.SGD(lr=bp.schedules.TimeBased(0.1, decay=0.01, unit="step"))),
    "onecycle-momentum": lambda dt: model([4, 1], ["tanh", "identity"], dtype=dt,
                                          optimizer=bp.SGD(lr=bp.schedules.OneCycle(0.05, total_steps=4 * N_ROWS))),
    # with the cases above, every width 1..8 in and out; one output from 8 inputs (dot's
    # eight partial sums); several outputs; a sigmoid output under mse
    "kernel-widths": lambda dt: model([7, 5, 8, 3, 6, 1], ["leaky_relu", "tanh", "sigmoid", "relu", "tanh", "identity"],
                                      input_dim=6, dtype=dt, optimizer=bp.SGD(lr=0.01, momentum=0.5)),
    "kernel-8-to-1": lambda dt: model([8, 2, 8, 1], ["relu", "sigmoid", "tanh", "identity"], input_dim=8, dtype=dt,
                                      use_bias=False),
    "kernel-outputs": lambda dt: model([6, 3], ["relu", "sigmoid"], input_dim=1, dtype=dt),
}

# The cases the AVX2 table's whole-network kernel takes in float32 (the rest run
# sample_step's portable loops, as every case does in float64 and on the generic table).
KERNEL_CASES = {"textbook", "bias-momentum", "eight-layers", "one-layer", "lr-schedule", "kernel-widths",
                "kernel-8-to-1", "kernel-outputs", "onecycle-momentum"}
# Of those, the ones with plain SGD (no momentum, no decay), whose update the kernel makes too.
KERNEL_UPDATE_CASES = KERNEL_CASES - {"bias-momentum", "kernel-widths", "onecycle-momentum"}


def fit_both(make, dtype, epochs=2, classes=False, **fit_args):
    fast = make(dtype)
    general = copy.deepcopy(fast)
    _testing.set_per_sample_path(general._net, False)
    X, y = data(fast, classes=classes)
    results = []
    for m in (fast, general):
        with warnings.catch_warnings():  # deep sigmoid/tanh stacks warn of vanishing gradients: not the point here
            warnings.simplefilter("ignore", bp.GradientFlowWarning)
            results.append(m.fit(X, y, epochs=epochs, batch_size=1, verbose=0, **fit_args))
    return fast, general, results


def assert_same_models(fast, general):
    for a, b in zip(fast.get_weights(), general.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fast._net.state1(), general._net.state1())
    assert (fast._net.step_counter, fast._net.optimizer_step) == (general._net.step_counter, general._net.optimizer_step)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_step_equals_the_general_path_bitwise(case, dtype):
    fast, general, (h_fast, h_general) = fit_both(CASES[case], dtype, classes=case == "bce", shuffle=True)
    kernel = dtype == "float32" and case in KERNEL_CASES and bp.build_info()["isa"] != "generic"
    assert _testing.per_sample_kind(fast._net) == ("kernel" if kernel else "portable"), case
    # the comparison exercised the fused step: every step of both epochs but each one's last
    assert (_testing.fused_steps(fast._net), _testing.fused_steps(general._net)) == (2 * (N_ROWS - 1), 0), case
    updates = _testing.fused_steps(fast._net) if kernel and case in KERNEL_UPDATE_CASES else 0
    assert _testing.kernel_updates(fast._net) == updates, case
    assert_same_models(fast, general)
    assert h_fast.history.keys() == h_general.history.keys()
    for key in h_fast.history:
        np.testing.assert_array_equal(np.asarray(h_fast.history[key], dtype=float),
                                      np.asarray(h_general.history[key], dtype=float), err_msg=key)
    for key, steps in h_fast.steps.items():
        np.testing.assert_array_equal(steps, h_general.steps[key], err_msg=key)
    assert h_fast.history["loss"][-1] < h_fast.history["loss"][0]  # it did train


def with_dropout():
    m = bp.Sequential([bp.Dense(4, activation="relu"), bp.Dropout(keep_prob=0.5), bp.Dense(1)], input_dim=3, seed=1)
    m.compile(loss="mse", optimizer=bp.SGD())
    return m


@pytest.mark.parametrize("make, why", [
    (lambda: model([4, 3], ["relu", "softmax"], loss="categorical_crossentropy"), "softmax"),
    (lambda: model([4, 1], ["relu", "identity"], optimizer=bp.Adam()), "Adam"),
    (lambda: model([4, 1], ["relu", "identity"], optimizer=bp.SGD(clip_norm=1.0)), "clip_norm"),
    (lambda: model([17, 1], ["relu", "identity"]), "a layer of 17 units"),
    (lambda: model([4, 1], ["noisy_relu", "identity"]), "noise"),
    (lambda: model([4] * 8 + [1], ["relu"] * 8 + ["identity"]), "nine layers"),
    (with_dropout, "dropout"),
])
def test_networks_the_fused_step_does_not_cover_take_the_general_path(make, why):
    m = make()
    assert _testing.per_sample_kind(m._net) == "general", why
    X, y = data(m, n=20)
    if why == "softmax":
        y = np.arange(20) % 3  # class labels
    with warnings.catch_warnings():  # nine relu layers may die at once: not the point here
        warnings.simplefilter("ignore", bp.GradientFlowWarning)
        m.fit(X, y, epochs=1, batch_size=1, verbose=0)
    assert _testing.fused_steps(m._net) == 0, why


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_a_diverging_step_is_refused_alike(dtype, momentum):
    """An lr that overflows the weights: both paths stop at the same step with the
    weights and momentum of the last finite step."""
    make = lambda dt: model([4, 1], ["identity", "identity"], dtype=dt,  # noqa: E731
                            optimizer=bp.SGD(lr=1e15 if dt == "float32" else 1e150, momentum=momentum))
    fast = make(dtype)
    general = copy.deepcopy(fast)
    _testing.set_per_sample_path(general._net, False)
    X, y = data(fast)
    X *= 1e3
    messages = []
    for m in (fast, general):
        with pytest.raises(bp.DivergenceError) as err:
            m.fit(X, y, epochs=3, batch_size=1, verbose=0)
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert _testing.fused_steps(fast._net) > 0  # steps before the refused one took the fused path
    assert_same_models(fast, general)
    assert fast._net.optimizer_step > 0  # some steps were made before the refused one
    assert all(np.isfinite(w).all() for w in fast.get_weights())


def test_an_update_the_bounds_cannot_prove_finite_is_left_to_the_dry_run():
    """A weight of 1e31 (on an input that is always 0, so training goes on) puts the
    parameters' norm past SgdBounds' 1e-8 of float32's largest value: no step's update
    is proven finite in advance, so the kernel leaves every update to sample_step's dry
    run, which finds it finite and makes it. Bitwise the general path's."""
    fast = model([4, 4, 1], ["relu", "sigmoid", "identity"], use_bias=False)
    W0, W1, W2 = fast.get_weights()
    W0[0, 0] = 1e31
    fast.set_weights([W0, W1, W2])
    general = copy.deepcopy(fast)
    _testing.set_per_sample_path(general._net, False)
    X, y = data(fast)
    X[:, 0] = 0.0
    for m in (fast, general):
        m.fit(X, y, epochs=2, batch_size=1, verbose=0)
    assert _testing.per_sample_kind(fast._net) == ("portable" if bp.build_info()["isa"] == "generic" else "kernel")
    assert _testing.fused_steps(fast._net) == 2 * (N_ROWS - 1)
    assert _testing.kernel_updates(fast._net) == 0
    assert_same_models(fast, general)
    assert fast.get_weights()[0][0, 0] == np.float32(1e31)  # its gradient is 0: it stays
    assert not np.array_equal(fast.get_weights()[1], W1)  # the others trained


def test_a_step_past_the_runs_gradient_limit_leaves_the_rest_of_the_run_to_sample_step():
    """The kernel updates plain SGD while every gradient norm is within the limit that
    SgdBounds proves for the whole run of steps up to the next stop poll (64 here). Row
    10's gradient (~1e37 at lr 1e-8) is past it but its update is finite: sample_step
    makes it, and the rest of that run too (the limit assumed every step within it), and
    the kernel takes over again at the next run: 10 + 64 + 64 + 7 of the 199 fused steps."""
    fast = model([1], ["identity"], input_dim=2, use_bias=False, optimizer=bp.SGD(lr=1e-8))
    general = copy.deepcopy(fast)
    _testing.set_per_sample_path(general._net, False)
    X = np.random.default_rng(0).normal(size=(200, 2))
    X[10] = [3e18, 0.0]
    y = np.zeros((200, 1))
    for m in (fast, general):
        m.fit(X, y, epochs=1, batch_size=1, shuffle=False, verbose=0)
    assert_same_models(fast, general)
    assert np.isfinite(fast.get_weights()[0]).all() and abs(fast.get_weights()[0][0, 0]) > 1e28
    assert _testing.fused_steps(fast._net) == 199
    if _testing.per_sample_kind(fast._net) == "kernel":
        assert _testing.kernel_updates(fast._net) == 10 + 64 + 64 + 7


@pytest.mark.parametrize("per_sample", [True, False])
def test_a_tiny_learning_rate_with_an_inf_gradient_is_refused(per_sample):
    """lr = 1e-300 over a run of steps makes the overflow bounds' gradient limit overflow
    double; it is capped, so an inf gradient (targets of -2e38: 2(a - y) overflows float32)
    is still above it and the step is refused on both paths, the weights untouched."""
    m = bp.Sequential([bp.Dense(2, activation="identity"), bp.Dense(1)], input_dim=2, seed=0)
    m.compile(loss="mse", optimizer=bp.SGD(lr=1e-300))
    _testing.set_per_sample_path(m._net, per_sample)
    before = m.get_weights()
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(bp.DivergenceError, match="step 0"):
        m.fit(X, np.full((50, 1), -2e38), epochs=1, batch_size=1, shuffle=False, verbose=0)
    for w0, w1 in zip(before, m.get_weights()):
        np.testing.assert_array_equal(w0, w1)
    assert _testing.kernel_updates(m._net) == 0


def test_fused_step_equals_the_general_path_with_the_portable_kernels():
    """Under PYBACKPROP_ISA=generic (the sigmoid, sums of squares and SGD of the portable table)."""
    code = (
        "import copy, numpy as np, pybackprop as bp\n"
        "from pybackprop._core import _testing\n"
        "m = bp.Sequential([bp.Dense(4, activation='relu'), bp.Dense(4, activation='sigmoid'),"
        " bp.Dense(1)], input_dim=3, seed=5)\n"
        "m.compile(loss='mse', optimizer=bp.SGD(lr=0.05, momentum=0.5))\n"
        "g = copy.deepcopy(m); _testing.set_per_sample_path(g._net, False)\n"
        "X = np.random.default_rng(1).normal(size=(300, 3)); y = np.sin(X[:, :1])\n"
        "h = [n.fit(X, y, epochs=2, batch_size=1, verbose=0).history for n in (m, g)]\n"
        "same = all(np.array_equal(a, b) for a, b in zip(m.get_weights(), g.get_weights()))\n"
        "same &= np.array_equal(m._net.state1(), g._net.state1()) and h[0] == h[1]\n"
        "print(bp.build_info()['isa'], _testing.per_sample_kind(m._net), _testing.fused_steps(m._net), same)\n"
    )
    env = dict(os.environ, PYBACKPROP_ISA="generic")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["generic", "portable", str(2 * 299), "True"], out.stdout


@pytest.mark.parametrize("per_sample", [True, False])
def test_a_learning_rate_past_float32_is_refused_not_applied(per_sample):
    """lr = 1e39 is finite in double and inf in float32: with a zero gradient the update
    would be w - inf * 0 = NaN. The step is refused (DivergenceError), the weights stay."""
    m = model([4, 1], ["relu", "identity"], use_bias=False, optimizer=bp.SGD(lr=1e39))
    _testing.set_per_sample_path(m._net, per_sample)
    assert _testing.per_sample_kind(m._net) != "general"  # the switch above, not the network, picks the path
    m.set_weights([-np.ones((3, 4)), np.ones((4, 1))])  # relu dead on positive inputs: zero gradients
    before = m.get_weights()
    X = np.abs(np.random.default_rng(0).normal(size=(20, 3)))
    with pytest.raises(bp.DivergenceError):
        m.fit(X, np.zeros((20, 1)), epochs=1, batch_size=1, verbose=0)
    for w0, w1 in zip(before, m.get_weights()):
        np.testing.assert_array_equal(w0, w1)
