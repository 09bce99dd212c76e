"""Schedules: formulas, per-step arrays handed to the C++ loop, and what the loop used."""
import numpy as np
import pytest

import pybackprop as bp
from pybackprop import schedules


@pytest.mark.parametrize("schedule, expected", [
    (schedules.Constant(0.3), [0.3, 0.3, 0.3, 0.3]),
    (schedules.TimeBased(1.0, decay=0.5), [1.0, 1 / 1.5, 0.5, 1 / 2.5]),
    (schedules.Exponential(2.0, rate=0.5), [2.0, 1.0, 0.5, 0.25]),
    (schedules.Step(1.0, factor=0.5, every=2), [1.0, 1.0, 0.5, 0.5]),
    (schedules.Linear(1.0, 0.5, steps=2), [1.0, 0.75, 0.5, 0.5]),
    (schedules.FromCallable(lambda t: t * t), [0.0, 1.0, 4.0, 9.0]),
])
def test_formulas(schedule, expected):
    assert [schedule(t) for t in range(4)] == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("bad, exc", [
    (lambda: schedules.TimeBased(0.1, decay=-1), ValueError),
    (lambda: schedules.Step(0.1, factor=0.5, every=0), ValueError),
    (lambda: schedules.Linear(1, 0, steps=0), ValueError),
    (lambda: schedules.Constant(0.1, unit="minute"), ValueError),
    (lambda: schedules.FromCallable(3), TypeError),
])
def test_bad_arguments(bad, exc):
    with pytest.raises(exc):
        bad()


def _model(dropout=None, lr=0.1, seed=0):
    layers = [bp.Dense(6, activation="tanh")]
    if dropout is not None:
        layers.append(dropout)
    layers.append(bp.Dense(1))
    m = bp.Sequential(layers, input_dim=3, dtype="float64", seed=seed)
    m.compile(loss="mse", optimizer=bp.SGD(lr=lr))
    return m


def _data(n=20):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3))
    return X, X.sum(axis=1)


@pytest.mark.parametrize("unit", ["epoch", "step"])
def test_lr_used_each_step_equals_the_schedule(unit):
    X, y = _data(20)
    sched = schedules.TimeBased(0.1, decay=0.3, unit=unit)
    m = _model(lr=sched)
    h = m.fit(X, y, epochs=3, batch_size=7, verbose=0)  # 3 steps per epoch
    used = h.steps["lr"]
    assert used.shape == (9,)
    t = np.repeat(np.arange(3), 3) if unit == "epoch" else np.arange(9)
    np.testing.assert_array_equal(used, [sched(int(i)) for i in t])
    assert h.history["lr"] == [used[0], used[3], used[6]]


def test_schedule_equals_manual_train_steps():
    """fit with a step-unit schedule == train_step at the schedule's lr, one batch at a time."""
    X, y = _data(12)
    sched = schedules.Exponential(0.2, rate=0.9, unit="step")
    a, b = _model(lr=sched), _model(lr=sched)
    a.fit(X, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    for _ in range(2):
        for s in range(0, 12, 4):
            b.train_step(X[s:s + 4], y[s:s + 4])
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_keep_prob_schedule_used_each_step():
    X, y = _data(20)
    ramp = schedules.Linear(1.0, 0.5, steps=4)
    m = _model(dropout=bp.Dropout(keep_prob=ramp))
    h = m.fit(X, y, epochs=5, batch_size=10, verbose=0)
    np.testing.assert_array_equal(h.steps["keep_prob"][:, 0], np.repeat([1.0, 0.875, 0.75, 0.625, 0.5], 2))
    assert h.history["keep_prob"] == [[1.0], [0.875], [0.75], [0.625], [0.5]]


def test_keep_prob_schedule_out_of_range_leaves_model_unchanged():
    X, y = _data(20)
    m = _model(dropout=bp.Dropout(keep_prob=schedules.Linear(1.0, -1.0, steps=2)))
    m.fit(X, y, epochs=1, verbose=0)  # epoch 0: keep 1.0, fine
    before = m.get_weights()
    with pytest.raises(ValueError, match="keep_prob schedule"):
        m.fit(X, y, epochs=1, verbose=0)  # epoch 1: keep 0.0
    for w0, w1 in zip(before, m.get_weights()):
        np.testing.assert_array_equal(w0, w1)


def test_negative_lr_from_schedule_rejected_and_model_unchanged():
    X, y = _data(10)
    m = _model(lr=schedules.FromCallable(lambda t: 0.1 - 0.2 * t))
    m.fit(X, y, epochs=1, verbose=0)  # epoch 0: lr 0.1
    before = m.get_weights()
    with pytest.raises(ValueError, match="lr schedule at step 0 of the epoch: expected a value in"):
        m.fit(X, y, epochs=1, verbose=0)  # epoch 1: lr -0.1
    for w0, w1 in zip(before, m.get_weights()):
        np.testing.assert_array_equal(w0, w1)


def test_schedule_config_round_trip():
    m = _model(dropout=bp.Dropout(keep_prob=schedules.Linear(1.0, 0.5, steps=10)),
               lr=schedules.Step(0.1, factor=0.5, every=3, unit="step"))
    cfg = m.get_config()
    m2 = bp.Sequential.from_config(cfg)
    assert m2.get_config() == cfg
    assert isinstance(m2.optimizer.lr, schedules.Step)


@pytest.mark.parametrize("schedule", [schedules.Step(1e-3, factor=1e300, every=1, unit="step"),
                                      schedules.Exponential(1e-3, rate=1e300, unit="step")])
def test_overflowing_schedule_is_a_value_error(schedule):
    """Found by fuzzing: 1e300 ** 2 raised OverflowError from inside fit."""
    assert schedule(5) == float("inf")
    X, y = _data(10)
    m = _model(lr=schedule)
    with pytest.raises(ValueError, match="lr schedule at step 2 of the epoch"):
        m.fit(X, y, epochs=1, batch_size=2, verbose=0)


# ---------------------------------------------------------------------- the classes as declared
SCHEDULE_CASES = [
    (schedules.Constant(0.5), "Constant(value=0.5, unit='epoch')", ["value", "unit"]),
    (schedules.TimeBased(1, decay=0.5, unit="step"), "TimeBased(initial=1.0, decay=0.5, unit='step')",
     ["initial", "decay", "unit"]),
    (schedules.Exponential(1.0, 0.5), "Exponential(initial=1.0, rate=0.5, unit='epoch')", ["initial", "rate", "unit"]),
    (schedules.Step(1.0, factor=0.1, every=np.int64(2)), "Step(initial=1.0, factor=0.1, every=2, unit='epoch')",
     ["initial", "factor", "every", "unit"]),
    (schedules.Linear(1.0, 0.5, steps=20), "Linear(start=1.0, end=0.5, steps=20, unit='epoch')",
     ["start", "end", "steps", "unit"]),
]


@pytest.mark.parametrize("schedule, text, params", SCHEDULE_CASES, ids=[c[0].__class__.__name__ for c in SCHEDULE_CASES])
def test_schedule_repr_config_round_trip_and_signature(schedule, text, params):
    import inspect
    import pickle

    assert repr(schedule) == text
    cfg = schedule.get_config()
    assert list(cfg) == ["class_name", *params] and cfg["class_name"] == type(schedule).__name__
    again = schedules.from_config(cfg)
    assert type(again) is type(schedule) and again.get_config() == cfg and repr(again) == text
    assert list(inspect.signature(type(schedule)).parameters) == params  # the keyword arguments of old
    assert [type(cfg[p]) for p in params] == [type(getattr(schedule, p)) for p in params]
    assert [again(t) for t in range(5)] == [schedule(t) for t in range(5)] == \
        [pickle.loads(pickle.dumps(schedule))(t) for t in range(5)]


def test_from_callable_config_names_the_function():
    def decay(t):
        return 0.1 / (1 + t)

    s = schedules.FromCallable(decay, unit="step")
    assert s.get_config() == {"class_name": "FromCallable", "fn": "test_from_callable_config_names_the_function."
                              "<locals>.decay", "unit": "step"}
    assert s.unit == "step" and s(1) == 0.05
    with pytest.raises(TypeError, match="fn: expected a callable t -> value"):
        schedules.FromCallable(3)
