"""The engine behind Sequential: one state()/load_state(), clone(), the callbacks' divergence protocol."""
import warnings

import numpy as np
import pytest

import pybackprop as bp
from pybackprop._engine import OPTIMIZER_STATE, EngineState


def _model(seed=0, optimizer=None):
    m = bp.Sequential([bp.Dense(6, activation="tanh"), bp.Dropout(keep_prob=0.8), bp.Dense(2)], input_dim=3,
                      dtype="float64", seed=seed)
    m.compile(loss="mse", optimizer=optimizer or bp.Adam(lr=0.01))
    return m


def _data(n=24):
    r = np.random.default_rng(1)
    X = r.normal(size=(n, 3))
    return X, np.stack([X.sum(axis=1), X[:, 0] * X[:, 1]], axis=1)


@pytest.mark.parametrize("optimizer", [bp.SGD(lr=0.1, momentum=0.9), bp.Adam(lr=0.01), bp.RMSprop(momentum=0.5),
                                       bp.Adagrad()], ids=lambda o: type(o).__name__)
def test_state_names_the_optimizer_state_and_resumes_exactly(optimizer):
    X, y = _data()
    a = _model(0, optimizer)
    a.fit(X, y, epochs=2, batch_size=5, verbose=0)
    state = a.engine.state()
    assert sorted(state.optimizer) == sorted(OPTIMIZER_STATE[optimizer.kind])
    assert state.counters == {"epoch_counter": 2, "step_counter": 10, "optimizer_step": 10}
    b = bp.Sequential.from_config(a.get_config())  # fresh: initial weights, zero state and counters
    b.engine.load_state(state)
    ha = a.fit(X, y, epochs=2, batch_size=5, verbose=0)
    hb = b.fit(X, y, epochs=2, batch_size=5, verbose=0)
    assert ha.history["loss"] == hb.history["loss"]
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_load_state_checks_everything_before_writing():
    X, y = _data()
    a = _model()
    a.fit(X, y, epochs=1, batch_size=8, verbose=0)
    good = a.engine.state()
    target = _model(seed=3)
    before = target.engine.state()
    bad_states = [
        EngineState(good.weights, {"momentum_buffer": good.optimizer["exp_avg"]}, good.counters, good.keep_probs),
        EngineState(good.weights, {"exp_avg": good.optimizer["exp_avg"][:-1]}, good.counters, good.keep_probs),
        EngineState(good.weights[:-1], good.optimizer, good.counters, good.keep_probs),
        EngineState(good.weights, good.optimizer, good.counters, [0.0]),
        # each of these once failed only after the weights were written (or was accepted)
        EngineState(good.weights, good.optimizer, {**good.counters, "step_counter": -1}, good.keep_probs),
        EngineState(good.weights, good.optimizer, {**good.counters, "optimizer_step": 2**64}, good.keep_probs),
        EngineState(good.weights, {"exp_avg": np.full(good.optimizer["exp_avg"].shape, "x")}, good.counters,
                    good.keep_probs),
        EngineState(good.weights, {"exp_avg": np.full(good.optimizer["exp_avg"].shape, np.nan)}, good.counters,
                    good.keep_probs),
        EngineState(good.weights, good.optimizer, good.counters, []),
        EngineState(good.weights, good.optimizer, good.counters, good.keep_probs * 2),
    ]
    for bad in bad_states:
        with pytest.raises((ValueError, TypeError)):
            target.engine.load_state(bad)
        after = target.engine.state()
        assert after.counters == before.counters and after.keep_probs == before.keep_probs
        for w0, w1 in zip(before.weights, after.weights):
            np.testing.assert_array_equal(w0, w1)
        for name in before.optimizer:
            np.testing.assert_array_equal(before.optimizer[name], after.optimizer[name])


def test_clone_is_an_independent_copy_without_a_file(monkeypatch):
    from pybackprop import io

    def no_file(*args, **kwargs):
        raise AssertionError("clone must not serialise")

    monkeypatch.setattr(io, "model_to_bytes", no_file)
    X, y = _data()
    m = _model()
    m.fit(X, y, epochs=1, batch_size=8, verbose=0)
    twin = m.engine.clone()
    np.testing.assert_array_equal(twin.net.predict(X), m.predict(X))
    before = m.get_weights()
    twin.train_step(X, y)  # the copy trains on its own
    for w0, w1 in zip(before, m.get_weights()):
        np.testing.assert_array_equal(w0, w1)
    assert not np.array_equal(twin.W(0), m.layers[0].W)
    assert m.layers[0]._model is m  # the layers still belong to the original
    # the twin's own layers read the twin's parameters (they once were the original's layer objects)
    assert twin.layers is not m.layers and all(a is not b for a, b in zip(twin.layers, m.layers))
    assert [type(a) for a in twin.layers] == [type(b) for b in m.layers]
    np.testing.assert_array_equal(twin.layers[0].W, twin.W(0))
    np.testing.assert_array_equal(twin.layers[2].b, twin.b(1))
    assert not np.array_equal(twin.layers[0].W, m.layers[0].W)


def test_any_callback_may_take_over_a_divergence():
    class Stop(bp.Callback):
        def on_train_begin(self, logs=None):
            self.seen = []

        def on_divergence(self, epoch, step, loss):
            self.seen.append((epoch, step))
            return True

    X = np.random.default_rng(0).normal(size=(32, 3))
    y = X.sum(axis=1) * 1e6

    def diverging():
        m = bp.Sequential([bp.Dense(8, activation="tanh"), bp.Dense(1)], input_dim=3, seed=0)
        m.compile(loss="mse", optimizer=bp.SGD(lr=1e6))
        return m

    stop, m = Stop(), diverging()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.GradientFlowWarning)  # exploding, as intended here
        h = m.fit(X, y, epochs=50, batch_size=8, shuffle=False, verbose=0, callbacks=[stop])
        assert len(stop.seen) == 1 and h.epoch[-1] == stop.seen[0][0] and len(h.epoch) < 50
        assert m.stop_training  # the loss logged is the diverging step's (a gradient or update may be the non-finite part)
        assert all(np.isfinite(w).all() for w in m.get_weights())  # the diverging step was not applied
        with pytest.raises(bp.DivergenceError):  # without such a callback: the error
            diverging().fit(X, y, epochs=50, batch_size=8, shuffle=False, verbose=0)


@pytest.mark.parametrize("bad", [
    lambda: ("mae", bp.SGD(lr=bp.schedules.Linear(-1.0, 0.1, 3))),  # refused by the lr check (its value at t=0)
    lambda: ("mae", bp.SGD(lr=lambda t: float("nan"))),
    lambda: ("binary_crossentropy", bp.Adam()),  # the output is not sigmoid
])
def test_a_refused_compile_changes_nothing(bad):
    X, y = _data()
    a, b = _model(0, bp.SGD(lr=0.05, momentum=0.9)), _model(0, bp.SGD(lr=0.05, momentum=0.9))
    for m in (a, b):
        m.fit(X, y, epochs=1, batch_size=8, verbose=0)  # a momentum buffer a reset would zero
    loss, optimizer = a.engine.loss, a.engine.optimizer
    before = a.engine.state()
    with pytest.raises(ValueError):
        a.compile(*bad())
    assert a.engine.loss == loss and a.engine.optimizer is optimizer
    after = a.engine.state()
    assert after.counters == before.counters
    for name in before.optimizer:
        np.testing.assert_array_equal(before.optimizer[name], after.optimizer[name])
    ha = a.fit(X, y, epochs=2, batch_size=8, verbose=0)  # trains as the twin that saw no compile
    hb = b.fit(X, y, epochs=2, batch_size=8, verbose=0)
    assert ha.history["loss"] == hb.history["loss"]
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    unbuilt = bp.Sequential([bp.Dense(2)])
    with pytest.raises(ValueError):
        unbuilt.compile(*bad())
    assert unbuilt.engine.loss is None and unbuilt.engine.optimizer is None


def test_the_engine_errors_keep_their_documented_home_and_pickle():
    import pickle

    for cls in (bp.DivergenceError, bp.GradientFlowWarning):
        assert cls.__module__ == "pybackprop.model"
        assert getattr(bp.model, cls.__name__) is cls
    h = bp.History()
    h.append(0, {"loss": 1.5})
    e = pickle.loads(pickle.dumps(bp.DivergenceError(2, 5, float("inf"), h)))
    assert isinstance(e, bp.DivergenceError) and (e.epoch, e.step, e.loss) == (2, 5, float("inf"))
    assert e.history.history["loss"] == [1.5] and str(e) == str(bp.DivergenceError(2, 5, float("inf")))
