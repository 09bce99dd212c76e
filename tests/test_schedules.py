"""Schedules: formulas, per-step arrays handed to the C++ loop, and what the loop used."""
import math

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


# ---------------------------------------------------------------------- Cosine, Warmup, OneCycle: torch's values
def _torch_lrs(torch, make, base, n, optimizer="SGD"):
    """The lr of each of n steps, t = 0 .. n-1, of torch's scheduler ``make(opt)`` on an optimiser of lr ``base``."""
    param = torch.zeros(1, requires_grad=True)
    opt = getattr(torch.optim, optimizer)([param], lr=base)
    sched = make(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()  # no gradient: nothing moves; torch wants optimizer.step() before scheduler.step()
        sched.step()
    return out, opt


@pytest.mark.parametrize("T_max, eta_min", [(7, 0.0), (25, 1e-3), (1, 0.01), (200, 0.0)])
def test_cosine_is_torchs_cosine_annealing_bit_for_bit_over_three_periods(T_max, eta_min):
    torch = pytest.importorskip("torch")
    base = 0.1
    n = 3 * 2 * T_max + 3  # three periods (a period is 2 T_max: torch's cosine rises again after T_max)
    want, _ = _torch_lrs(torch, lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max, eta_min), base, n)
    s = schedules.Cosine(base, T_max=T_max, eta_min=eta_min, unit="step")
    assert [s(t) for t in range(n)] == want  # in order (the memo)...
    fresh = schedules.Cosine(base, T_max=T_max, eta_min=eta_min, unit="step")
    assert [fresh(t) for t in reversed(range(n))] == want[::-1]  # ... and in any order
    assert s.values(0, 2, n - 2).tolist() == want[2:]
    from pybackprop.reference.functional import schedule_value
    assert [schedule_value(s.get_config(), t) for t in range(n)] == want
    # the closed form is the same curve to rounding, not bit for bit (why the recursion is kept)
    closed = [eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / T_max)) / 2 for t in range(n)]
    np.testing.assert_allclose(want, closed, rtol=1e-9, atol=1e-15)
    if T_max == 200:
        assert closed != want


@pytest.mark.parametrize("start_factor", [1e-3, 0.25, 0.9])
@pytest.mark.parametrize("inner", ["cosine", "exponential", "constant"])
def test_warmup_is_torchs_linear_lr_then_the_schedule_in_sequential_lr(inner, start_factor):
    torch = pytest.importorskip("torch")
    lrs = torch.optim.lr_scheduler
    base, warm, T = 0.05, 6, 10
    ours = {"cosine": schedules.Cosine(base, T_max=T, eta_min=1e-4, unit="step"),
            "exponential": schedules.Exponential(base, rate=0.9, unit="step"),
            "constant": schedules.Constant(base, unit="step")}[inner]
    theirs = {"cosine": lambda o: lrs.CosineAnnealingLR(o, T, eta_min=1e-4),
              "exponential": lambda o: lrs.ExponentialLR(o, 0.9),
              "constant": lambda o: lrs.ConstantLR(o, factor=1.0, total_iters=0)}[inner]

    def make(o):
        return lrs.SequentialLR(o, [lrs.LinearLR(o, start_factor=start_factor, total_iters=warm), theirs(o)],
                                milestones=[warm])

    n = warm + 3 * 2 * T
    want, _ = _torch_lrs(torch, make, base, n)
    s = schedules.Warmup(ours, steps=warm, start_factor=start_factor)
    got = [s(t) for t in range(n)]
    # LinearLR's stepped products vs its closed form, and SequentialLR starting the cosine from its
    # closed form at 0: equal to rounding
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)
    assert s.unit == "step" and got[warm:] == [ours(t) for t in range(n - warm)]
    from pybackprop.reference.functional import schedule_value
    assert [schedule_value(s.get_config(), t) for t in range(n)] == got


def test_warmup_from_zero_and_its_units():
    s = schedules.Warmup(schedules.Cosine(1e-3, T_max=100, unit="step"), steps=500)
    assert s(0) == 0.0 and s(250) == 0.5e-3 and s(500) == 1e-3 and s(600) == pytest.approx(0.0, abs=1e-18)
    assert [s(t) for t in range(5)] == [1e-3 * t / 500 for t in range(5)]  # Hugging Face's warm-up from 0
    assert s.unit == "step"
    assert schedules.Warmup(0.1, steps=3).unit == "epoch"
    assert schedules.Warmup(0.1, steps=3, unit="step").schedule.get_config() == \
        {"class_name": "Constant", "value": 0.1, "unit": "step"}
    with pytest.raises(ValueError, match="unit: expected the unit of the warmed-up schedule, 'step'"):
        schedules.Warmup(schedules.Constant(0.1, unit="step"), steps=3, unit="epoch")


@pytest.mark.parametrize("kw", [{}, dict(pct_start=0.25, div_factor=10.0, final_div_factor=100.0),
                                dict(three_phase=True), dict(anneal_strategy="linear"),
                                dict(three_phase=True, anneal_strategy="linear", pct_start=0.4)],
                         ids=["defaults", "factors", "three-phase", "linear", "three-phase-linear"])
@pytest.mark.parametrize("total", [100, 37])
def test_one_cycle_is_torchs_one_cycle_lr_step_for_step(kw, total):
    torch = pytest.importorskip("torch")
    max_lr = 0.2

    def make(o):
        return torch.optim.lr_scheduler.OneCycleLR(o, max_lr=max_lr, total_steps=total, cycle_momentum=False, **kw)

    want, _ = _torch_lrs(torch, make, 0.01, total)
    s = schedules.OneCycle(max_lr, total_steps=total, **kw)
    assert s.unit == "step"
    assert [s(t) for t in range(total)] == want
    from pybackprop.reference.functional import schedule_value
    assert [schedule_value(s.get_config(), t) for t in range(total)] == want


def _torch_one_cycle(torch, optimizer, n, **kw):
    """(lr, momentum) of each of n steps of torch's OneCycleLR(**kw) on ``optimizer`` (SGD: with momentum
    0.9, RMSprop: 0.5): group["momentum"], or group["betas"][0] for Adam and AdamW."""
    param = torch.zeros(1, requires_grad=True)
    extra = {"SGD": dict(momentum=0.9), "RMSprop": dict(momentum=0.5)}.get(optimizer, {})
    opt = getattr(torch.optim, optimizer)([param], lr=0.01, **extra)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, **kw)
    lrs, moms = [], []
    for _ in range(n):
        group = opt.param_groups[0]
        lrs.append(group["lr"])
        moms.append(group["betas"][0] if "betas" in group else group["momentum"])
        opt.step()
        sched.step()
    return lrs, moms


@pytest.mark.parametrize("kw", [{}, dict(anneal_strategy="linear"), dict(three_phase=True),
                                dict(three_phase=True, anneal_strategy="linear", pct_start=0.4),
                                dict(base_momentum=0.5, max_momentum=0.99, pct_start=0.25)],
                         ids=["cos", "linear", "three-phase", "three-phase-linear", "momenta"])
@pytest.mark.parametrize("optimizer", ["SGD", "RMSprop", "Adam", "AdamW"])
def test_one_cycle_lr_and_momentum_are_torchs_step_for_step(optimizer, kw):
    """Each step's lr and momentum (Adam's and AdamW's beta1) are torch's OneCycleLR's, bit for bit,
    from the schedule, from fit's record of what the core used, and from the reference."""
    torch = pytest.importorskip("torch")
    total = 37
    want_lr, want_m = _torch_one_cycle(torch, optimizer, total, max_lr=0.05, total_steps=total, **kw)
    s = schedules.OneCycle(0.05, total_steps=total, **kw)
    assert [s(t) for t in range(total)] == want_lr
    assert [s.momentum(t) for t in range(total)] == want_m
    assert s.momentum_values(0, 3, 5).tolist() == want_m[3:8]
    from pybackprop.reference.functional import one_cycle_momentum
    assert [one_cycle_momentum(s.get_config(), t) for t in range(total)] == want_m

    from conftest import reference_of
    X, y = _data(36)
    hp = {"SGD": dict(momentum=0.9), "RMSprop": dict(momentum=0.5)}.get(optimizer, {})
    m = bp.Sequential([bp.Dense(4, activation="tanh"), bp.Dense(1)], input_dim=3, dtype="float64", seed=0)
    m.compile(loss="mse", optimizer=getattr(bp, optimizer)(lr=s, **hp))
    ref = reference_of(m)
    h = m.fit(X, y, epochs=3, batch_size=3, verbose=0)  # 12 steps an epoch: steps 0 .. 35 of the cycle
    assert h.steps["lr"].tolist() == want_lr[:36]
    assert h.steps["momentum"].tolist() == want_m[:36]
    assert h.history["momentum"] == [want_m[0], want_m[12], want_m[24]]  # as "lr": each epoch's first step's
    r = ref.fit(X, y, epochs=3, batch_size=3)
    assert r["steps"]["lr"] == want_lr[:36] and r["steps"]["momentum"] == want_m[:36]
    for a, b in zip(m.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_one_cycle_momentum_reaches_every_path_of_the_core():
    """The per-sample path (batch 1, tiny SGD network), the general path, train_step and
    apply_gradients each step with the cycled momentum: the same weights as the reference."""
    from conftest import reference_of
    X, y = _data(20)

    def model(dtype="float64"):
        m = bp.Sequential([bp.Dense(4, activation="tanh"), bp.Dense(1)], input_dim=3, dtype=dtype, seed=2)
        m.compile(loss="mse", optimizer=bp.SGD(lr=schedules.OneCycle(0.05, total_steps=60)))
        return m

    for dtype in ("float64", "float32"):
        m = model(dtype)
        assert bp._core._testing.per_sample_kind(m._net) != "general"
        ref = reference_of(m)
        m.fit(X, y, epochs=2, batch_size=1, verbose=0)
        ref.fit(X, y, epochs=2, batch_size=1)
        for a, b in zip(m.get_weights(), ref.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-12 if dtype == "float64" else 1e-5, atol=1e-6)
        assert bp._core._testing.fused_steps(m._net) > 0
    m, steps = model(), model()
    ref = reference_of(m)
    for k in range(5):
        m.train_step(X[4 * k:4 * k + 4], y[4 * k:4 * k + 4])
        ref.train_step(X[4 * k:4 * k + 4], y[4 * k:4 * k + 4])
        steps.engine.net.loss_and_gradients(*steps.engine.data(X[4 * k:4 * k + 4], y[4 * k:4 * k + 4]), True,
                                            copy=False)
        assert steps.engine.net.apply_gradients(steps.engine.lr_now(), 4, momentum=steps.engine.momentum_now())
    for a, b, c in zip(m.get_weights(), ref.get_weights(), steps.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(a, c)
    assert m.optimizer.momentum == 0.0 and m.optimizer.core_config().momentum == 0.95  # torch's max_momentum


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_one_cycle_without_cycle_momentum_is_the_lr_only(optimizer):
    """cycle_momentum=False: no momentum array, no record, and the same weights, bit for bit, as the
    same lr values given by a schedule that does not touch the momentum."""
    X, y = _data(24)
    hp = dict(momentum=0.9) if optimizer == "SGD" else {}
    cycle = schedules.OneCycle(0.05, total_steps=30, cycle_momentum=False)

    def model(lr):
        m = bp.Sequential([bp.Dense(4, activation="tanh"), bp.Dense(1)], input_dim=3, dtype="float64", seed=0)
        m.compile(loss="mse", optimizer=getattr(bp, optimizer)(lr=lr, **hp))
        return m

    a, b, c = model(cycle), model(schedules.FromCallable(cycle, unit="step")), model(schedules.OneCycle(0.05, 30))
    ha = a.fit(X, y, epochs=3, batch_size=3, verbose=0)
    b.fit(X, y, epochs=3, batch_size=3, verbose=0)
    hc = c.fit(X, y, epochs=3, batch_size=3, verbose=0)
    assert "momentum" not in ha.steps and "momentum" not in ha.history and "momentum" in hc.steps
    for wa, wb, wc in zip(a.get_weights(), b.get_weights(), c.get_weights()):
        np.testing.assert_array_equal(wa, wb)
        assert not np.array_equal(wa, wc)  # the default cycles the momentum: another trajectory
    config = a.optimizer.core_config()
    assert (config.momentum, config.beta1) == (hp.get("momentum", 0.0), 0.9)  # the optimiser's own


def test_one_cycle_momentum_with_adagrad_is_a_value_error():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="cycle_momentum"):
        torch.optim.lr_scheduler.OneCycleLR(torch.optim.Adagrad([torch.zeros(1, requires_grad=True)]),
                                            max_lr=0.1, total_steps=10)
    with pytest.raises(ValueError, match=r"cycle_momentum: expected False for Adagrad .* got True"):
        bp.Adagrad(lr=schedules.OneCycle(0.1, total_steps=10))
    bp.Adagrad(lr=schedules.OneCycle(0.1, total_steps=10, cycle_momentum=False))  # the lr alone: fine
    m = _model()
    opt = bp.Adagrad(lr=0.1)
    opt.lr = schedules.OneCycle(0.1, total_steps=10)  # set after construction: refused at compile
    with pytest.raises(ValueError, match="cycle_momentum"):
        m.compile(loss="mse", optimizer=opt)
    from pybackprop.reference import Network
    cfg = _model(lr=schedules.OneCycle(0.1, total_steps=10)).get_config()
    cfg["compile"]["optimizer"] = {"class_name": "Adagrad", "lr": cfg["compile"]["optimizer"]["lr"]}
    with pytest.raises(ValueError, match="cycle_momentum"):
        Network.from_config(cfg)


def test_the_core_refuses_a_bad_momentum_schedule_and_changes_nothing():
    X, y = _data(12)
    m = _model(lr=0.1)  # SGD configured without momentum: its buffer is not reset with the state
    net, (Xc, Yc) = m._net, m.engine.data(X, y)
    before = net.params().copy()
    with pytest.raises(ValueError, match=r"momentum schedule: expected an optimiser configured with momentum > 0"):
        net.fit_epoch(Xc, Yc, 4, False, momentum=np.full(3, 0.9))
    m.compile(loss="mse", optimizer=bp.SGD(lr=0.1, momentum=0.5))
    for bad, match in [(np.full(2, 0.9), "momentum schedule: expected 3 values"),
                       (np.array([0.9, 1.0, 0.9]), r"momentum schedule: expected values in \[0, 1\)"),
                       (np.array([0.9, np.nan, 0.9]), "momentum schedule")]:
        with pytest.raises(ValueError, match=match):
            net.fit_epoch(Xc, Yc, 4, False, momentum=bad)
    with pytest.raises(ValueError, match="momentum schedule"):
        net.train_step(Xc, Yc, 0.1, None, -0.5)
    np.testing.assert_array_equal(net.params(), before)
    assert net.step_counter == 0
    twin = m.engine.clone().net
    for n, then in ((net, None), (twin, np.full(3, 0.5))):
        n.fit_epoch(Xc, Yc, 4, False, momentum=np.array([0.9, 0.8, 0.7]))
        n.fit_epoch(Xc, Yc, 4, False, momentum=then)  # the configured 0.5 is back after the epoch
    np.testing.assert_array_equal(net.params(), twin.params())
    m.compile(loss="mse", optimizer=bp.Adagrad(lr=0.1))
    with pytest.raises(ValueError, match="momentum schedule: expected an optimiser with a momentum"):
        net.apply_gradients(0.1, 4, momentum=0.9)


def test_one_cycle_momentum_per_epoch_and_round_trip():
    s = schedules.OneCycle(0.1, total_steps=10, unit="epoch", base_momentum=0.8, max_momentum=0.9)
    assert s.momentum_values(2, 17, 3).tolist() == [s.momentum(2)] * 3
    again = schedules.from_config(s.get_config())
    assert again.get_config() == s.get_config() and again.base_momentum == 0.8
    old = {k: v for k, v in s.get_config().items() if "momentum" not in k}  # a config written before them
    assert schedules.from_config(old).cycle_momentum is True  # torch's default
    assert schedules.OneCycle(0.1, 10, 0.3, 25.0, 1e4, False, "cos", "epoch").unit == "epoch"  # positional calls
    X, y = _data(12)
    m = _model(lr=s)
    h = m.fit(X, y, epochs=3, batch_size=4, verbose=0)
    assert h.history["momentum"] == [s.momentum(t) for t in range(3)]
    np.testing.assert_array_equal(h.steps["momentum"], np.repeat([s.momentum(t) for t in range(3)], 3))
    with pytest.raises(ValueError, match="base_momentum"):
        schedules.OneCycle(0.1, total_steps=10, base_momentum=1.0)
    with pytest.raises(TypeError, match="cycle_momentum"):
        schedules.OneCycle(0.1, total_steps=10, cycle_momentum="yes")


def test_one_cycle_past_total_steps_is_refused_before_the_epoch():
    X, y = _data(20)
    m = _model(lr=schedules.OneCycle(0.1, total_steps=6))
    m.fit(X, y, epochs=1, batch_size=4, verbose=0)  # steps 0..4
    before = m.get_weights()
    with pytest.raises(ValueError, match=r"OneCycle time: expected at most total_steps=6"):
        m.fit(X, y, epochs=1, batch_size=4, verbose=0)  # steps 5..9: past the cycle
    for w0, w1 in zip(before, m.get_weights()):
        np.testing.assert_array_equal(w0, w1)


@pytest.mark.parametrize("bad, exc, match", [
    (lambda: schedules.Cosine(0.1, T_max=0), ValueError, "T_max: expected an integer >= 1"),
    (lambda: schedules.Cosine(0.1, T_max=2.5), TypeError, "T_max: expected an integer"),
    (lambda: schedules.Cosine(0.1, T_max=5, eta_min=-1), ValueError, "eta_min"),
    (lambda: schedules.Cosine(-0.1, T_max=5), ValueError, "initial"),
    (lambda: schedules.Warmup(schedules.Constant(0.1), steps=0), ValueError, "steps: expected an integer >= 1"),
    (lambda: schedules.Warmup(schedules.Constant(0.1), steps=5, start_factor=1.0), ValueError, "start_factor"),
    (lambda: schedules.Warmup("cosine", steps=5), TypeError, "schedule"),
    (lambda: schedules.Warmup(0.1, steps=5, unit="minute"), ValueError, "unit"),
    (lambda: schedules.OneCycle(0.0, total_steps=10), ValueError, "max_lr"),
    (lambda: schedules.OneCycle(0.1, total_steps=1), ValueError, "total_steps: expected an integer >= 2"),
    (lambda: schedules.OneCycle(0.1, total_steps=10, pct_start=1.5), ValueError, "pct_start"),
    (lambda: schedules.OneCycle(0.1, total_steps=10, pct_start=0.1), ValueError, "pct_start: expected a fraction"),
    (lambda: schedules.OneCycle(0.1, total_steps=10, anneal_strategy="cosine"), ValueError, "anneal_strategy"),
    (lambda: schedules.OneCycle(0.1, total_steps=10, three_phase=1), TypeError, "three_phase"),
])
def test_new_schedules_bad_arguments_name_them(bad, exc, match):
    with pytest.raises(exc, match=match):
        bad()


@pytest.mark.parametrize("schedule", [
    schedules.Cosine(0.1, T_max=5, eta_min=0.01),
    schedules.Warmup(schedules.Cosine(1e-3, T_max=50, unit="step"), steps=5, start_factor=0.1),
    schedules.Warmup(schedules.Warmup(0.5, steps=2), steps=3),
    schedules.OneCycle(0.1, total_steps=30, three_phase=True, anneal_strategy="linear"),
], ids=["cosine", "warmup-cosine", "warmup-warmup", "onecycle"])
def test_new_schedules_round_trip_config_pickle_and_model_files(schedule, tmp_path):
    import pickle

    cfg = schedule.get_config()
    again = schedules.from_config(cfg)
    assert again.get_config() == cfg and repr(again) == repr(schedule)
    assert [again(t) for t in range(12)] == [schedule(t) for t in range(12)] == \
        [pickle.loads(pickle.dumps(schedule))(t) for t in range(12)]
    m = _model(lr=schedule)
    X, y = _data(20)
    m.fit(X, y, epochs=1, batch_size=4, verbose=0)
    m.save(tmp_path / "m.pbp")
    loaded = bp.load(tmp_path / "m.pbp")
    assert loaded.optimizer.lr.get_config() == cfg
    m.fit(X, y, epochs=1, batch_size=4, verbose=0)
    loaded.fit(X, y, epochs=1, batch_size=4, verbose=0)
    for a, b in zip(m.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
