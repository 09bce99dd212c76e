"""Optimisers (DESIGN.md "Optimisers", docs/internals.md "Optimisers" and "Schedules").

- 50 steps of SGD (plain, momentum, Nesterov), Adam, RMSprop (centered off;
  with and without momentum) and Adagrad, each with weight decay, with and
  without ``clip_norm``, on a 3-layer net with biases, match ``torch.optim``
  step by step (loss and every weight after every step; float64 to ~1e-10,
  float32 to ~1e-5), and the NumPy reference (weights and optimiser state);
- the optimiser state survives ``save``/``bp.load`` and pickling: training
  continues bitwise as an uninterrupted run would; ``compile`` resets it;
- a time-based learning-rate schedule (per step and per epoch) gives the
  weights of torch driven with the same per-step lr, and ``history.steps["lr"]``
  holds exactly the schedule's values.
"""
from __future__ import annotations

import math
import pickle
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

import pybackprop as bp
from conftest import assert_close, assert_tensors_close, reference_of, tolerance
from pybackprop.reference import permutation

INPUT_DIM, HIDDEN, OUT = 5, (8, 6), 2
ACTS = ("tanh", "sigmoid", "identity")
STEPS, BATCH = 50, 8
CLIP = 1.5  # about the median gradient norm of these nets: some steps clip, some do not

# (class name, hyperparameters in pybackprop's spelling)
VARIANTS = [
    ("SGD", dict(lr=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.02)),
    ("Adam", dict(lr=0.01, weight_decay=0.01)),
    ("Adam", dict(lr=0.005, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.05)),
    ("Adam", dict(lr=0.01, weight_decay=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01, weight_decay=0.05)),
    ("AdamW", dict(lr=0.005, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.2, amsgrad=True)),
    ("RMSprop", dict(lr=0.005, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.002, alpha=0.9, eps=1e-6, momentum=0.9, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.05, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.1, eps=1e-8, weight_decay=0.02)),
]
VARIANT_IDS = ["sgd", "sgd-momentum", "sgd-nesterov", "adam", "adam-betas", "adam-amsgrad", "adamw",
               "adamw-amsgrad", "rmsprop",
               "rmsprop-momentum", "adagrad", "adagrad-decay"]


def optimizer(name: str, clip_norm: Any = None, **hp: Any) -> bp.optimizers.Optimizer:
    return getattr(bp, name)(clip_norm=clip_norm, **hp)


def torch_optimizer(torch: Any, name: str, params: List[Any], hp: Dict[str, Any]) -> Any:
    """The torch.optim twin (default hyperparameters are the same in both libraries)."""
    hp = dict(hp)
    if name in ("Adam", "AdamW"):
        hp["betas"] = (hp.pop("beta1", 0.9), hp.pop("beta2", 0.999))
    if name == "RMSprop":
        hp["centered"] = False
    return getattr(torch.optim, name)(params, **hp)


def make_model(opt: bp.optimizers.Optimizer, dtype: str = "float64", seed: int = 7,
               dropout: bool = False) -> bp.Sequential:
    layers: List[Any] = [bp.Dense(HIDDEN[0], activation=ACTS[0])]
    if dropout:
        layers.append(bp.Dropout(keep_prob=0.8))
    layers += [bp.Dense(HIDDEN[1], activation=ACTS[1]), bp.Dense(OUT, activation=ACTS[2])]
    model = bp.Sequential(layers, input_dim=INPUT_DIM, dtype=dtype, seed=seed)
    model.compile(loss="mse", optimizer=opt)
    return model


def make_data(n: int, dtype: str = "float64", seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(seed)
    X = r.normal(size=(n, INPUT_DIM))
    y = np.stack([np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2], np.cos(X[:, 3]) - X[:, 4]], axis=1) * 2
    return X.astype(dtype), y.astype(dtype)


class TorchNet:
    """The same 3-layer MLP in torch: z = a @ W + b, weights as leaf tensors in get_weights() order."""

    def __init__(self, torch: Any, weights: List[np.ndarray], dtype: str) -> None:
        self.torch = torch
        self.dtype = getattr(torch, dtype)
        self.params = [torch.tensor(np.array(w), dtype=self.dtype, requires_grad=True) for w in weights]

    def loss(self, X: np.ndarray, y: np.ndarray) -> Any:
        torch = self.torch
        a = torch.tensor(X, dtype=self.dtype)
        for k, act in enumerate(ACTS):
            a = a @ self.params[2 * k] + self.params[2 * k + 1]
            a = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "identity": lambda t: t}[act](a)
        return torch.nn.functional.mse_loss(a, torch.tensor(y, dtype=self.dtype))

    def weights(self) -> List[np.ndarray]:
        return [p.detach().numpy().copy() for p in self.params]


def core_state(model: bp.Sequential, which: int) -> List[np.ndarray]:
    """The core's optimiser-state arena ``state1`` / ``state2`` / ``state3`` cut into one array per parameter
    (get_weights() order), located through the offsets of the W/b views into the parameter arena."""
    net = model._net
    base = net.params().__array_interface__["data"][0]
    state = (net.state1, net.state2, net.state3)[which - 1]()
    out = []
    for layer in model.layers:
        if isinstance(layer, bp.Dense):
            for v in [layer.W] + ([layer.b] if layer.use_bias else []):
                off = (v.__array_interface__["data"][0] - base) // v.itemsize
                out.append(state[off:off + v.size].reshape(v.shape).copy())
    return out


# The reference's state buffers that live in the core's state1 / state2 / state3.
STATE_NAMES = {"SGD": ("momentum_buffer", None, None), "Adam": ("m", "v", "v_max"), "AdamW": ("m", "v", "v_max"),
               "RMSprop": ("square_avg", "momentum_buffer", None), "Adagrad": ("sum", None, None)}
TORCH_TOL = {"float64": (1e-10, 1e-12), "float32": (1e-5, 1e-5)}


# ------------------------------------------------------------------------ 50 steps against torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("clip_norm", [None, CLIP], ids=["noclip", "clip"])
@pytest.mark.parametrize("name,hp", VARIANTS, ids=VARIANT_IDS)
def test_fifty_steps_match_torch_and_the_reference(name, hp, clip_norm, dtype):
    torch = pytest.importorskip("torch")
    model = make_model(optimizer(name, clip_norm, **hp), dtype)
    ref = reference_of(model)
    tnet = TorchNet(torch, model.get_weights(), dtype)
    topt = torch_optimizer(torch, name, tnet.params, hp)
    X, y = make_data(STEPS * BATCH, dtype)
    rtol, atol = TORCH_TOL[dtype]
    clipped = 0
    for step in range(STEPS):
        rows = slice(step * BATCH, (step + 1) * BATCH)
        loss = model.train_step(X[rows], y[rows])
        loss_r = ref.train_step(X[rows], y[rows])
        topt.zero_grad()
        t_loss = tnet.loss(X[rows], y[rows])
        t_loss.backward()
        if clip_norm is not None:
            total = float(torch.nn.utils.clip_grad_norm_(tnet.params, clip_norm))
            clipped += total > clip_norm
        topt.step()
        assert loss == pytest.approx(t_loss.item(), rel=rtol, abs=atol), f"loss at step {step}"
        assert loss == pytest.approx(loss_r, rel=rtol, abs=atol), f"reference loss at step {step}"
        for k, (w, t) in enumerate(zip(model.get_weights(), tnet.weights())):
            assert_close(f"{name} step {step} weight {k} (core vs torch)", w, t, rtol,
                         atol * max(1.0, float(np.max(np.abs(t)))))
    if clip_norm is not None:
        assert 5 <= clipped <= STEPS - 5, f"clip_norm={clip_norm} clipped {clipped} of {STEPS} steps: want both cases"
    assert model._net.optimizer_step == ref.optimizer_step == STEPS
    assert_tensors_close("weights (core vs reference)", model.get_weights(), ref.get_weights(), dtype)
    if hp.get("amsgrad"):  # the maximum mattered: somewhere v fell below its running max
        assert any((vmax > v).any() for vmax, v in zip(core_state(model, 3), core_state(model, 2)))
        state = topt.state[tnet.params[0]]["max_exp_avg_sq"].numpy()
        assert_close("max_exp_avg_sq of W0 (core vs torch)", core_state(model, 3)[0], state, 1e-4 if dtype ==
                     "float32" else 1e-10, 1e-4 * float(np.max(state)) if dtype == "float32" else 1e-14)
    for which, state_name in enumerate(STATE_NAMES[name], start=1):
        if state_name is None or (state_name == "momentum_buffer" and not hp.get("momentum")) \
                or (state_name == "v_max" and not hp.get("amsgrad")):
            continue
        for k, (got, want) in enumerate(zip(core_state(model, which), ref.optimizer_state[state_name])):
            # float32: Adam's m / sqrt(v) magnifies rounding where v is tiny, so the state after
            # 50 steps agrees to ~1e-4 of its scale (the weights to ~1e-5)
            rtol, atol = tolerance(dtype, want) if dtype == "float64" else \
                (1e-4, 1e-4 * max(float(np.max(np.abs(want))), 1e-2))
            assert_close(f"optimizer state {state_name} [{k}] (core vs reference)", got, want, rtol, atol)


# -------------------------------------------------- weight decay on weights only, per sample
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("decay_bias,per_sample", [(False, False), (True, True), (False, True)],
                         ids=["weights-only", "per-sample", "weights-only-per-sample"])
@pytest.mark.parametrize("name,hp", [VARIANTS[1], VARIANTS[3], VARIANTS[7], VARIANTS[9], VARIANTS[11]],
                         ids=["sgd-momentum", "adam", "adamw-amsgrad", "rmsprop-momentum", "adagrad-decay"])
def test_decay_bias_and_decay_per_sample_match_torch_param_groups(name, hp, decay_bias, per_sample, dtype):
    """``decay_bias=False`` is torch with biases in a group without weight decay;
    ``decay_per_sample=True`` is torch whose weight_decay is set to wd / rows before
    each step. fit() over 50 samples in batches of 16 ends with a 2-row batch, so a
    per-sample decay changes from step to step; the reference must agree too."""
    torch = pytest.importorskip("torch")
    hp = dict(hp, weight_decay=0.2)
    model = make_model(optimizer(name, None, decay_bias=decay_bias, decay_per_sample=per_sample, **hp), dtype)
    ref = reference_of(model)
    tnet = TorchNet(torch, model.get_weights(), dtype)
    weights, biases = tnet.params[0::2], tnet.params[1::2]
    groups = [{"params": weights}, {"params": biases, "weight_decay": hp["weight_decay"] if decay_bias else 0.0}]
    topt = torch_optimizer(torch, name, groups, hp)
    X, y = make_data(50, dtype)
    epochs, batch = 3, 16
    model.fit(X, y, epochs=epochs, batch_size=batch, shuffle=False, verbose=0)
    ref.fit(X, y, epochs=epochs, batch_size=batch, shuffle=False)
    for _ in range(epochs):
        for start in range(0, len(X), batch):
            rows = slice(start, start + batch)
            n = len(X[rows])
            for k, group in enumerate(topt.param_groups):  # 0: weights, 1: biases
                full = hp["weight_decay"] if k == 0 or decay_bias else 0.0
                group["weight_decay"] = full / n if per_sample else full
            topt.zero_grad()
            tnet.loss(X[rows], y[rows]).backward()
            topt.step()
    rtol, atol = TORCH_TOL[dtype]
    for k, (w, r, t) in enumerate(zip(model.get_weights(), ref.get_weights(), tnet.weights())):
        assert_close(f"{name} weight {k} (core vs torch)", w, t, rtol, atol * max(1.0, float(np.max(np.abs(t)))))
        assert_close(f"{name} weight {k} (core vs reference)", w, r, *tolerance(dtype, r))
    # and the options matter here: plain weight decay ends elsewhere
    plain = make_model(optimizer(name, None, **hp), dtype)
    plain.fit(X, y, epochs=epochs, batch_size=batch, shuffle=False, verbose=0)
    assert any(np.max(np.abs(a - b)) > 1e-4 for a, b in zip(plain.get_weights(), model.get_weights()))


def test_decay_options_validate_and_round_trip_through_config(tmp_path):
    with pytest.raises(TypeError, match="decay_bias"):
        bp.SGD(decay_bias="no")
    with pytest.raises(TypeError, match="decay_per_sample"):
        bp.Adam(decay_per_sample=1.5)
    opt = bp.RMSprop(lr=0.01, weight_decay=0.1, decay_bias=False, decay_per_sample=True)
    assert "decay_bias=False" in repr(opt) and "decay_per_sample=True" in repr(opt)
    assert "decay_bias" not in repr(bp.SGD())  # defaults are not shown
    model = make_model(opt)
    X, y = make_data(20)
    model.fit(X, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = bp.load(tmp_path / "m.npz")
    assert loaded.optimizer.decay_bias is False and loaded.optimizer.decay_per_sample is True
    model.fit(X, y, epochs=1, batch_size=8, verbose=0)
    loaded.fit(X, y, epochs=1, batch_size=8, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_clip_norm_scales_like_torch_and_history_is_measured_before_clipping():
    model = make_model(bp.SGD(lr=0.1, clip_norm=0.05))
    ref = reference_of(model)
    start = model.get_weights()
    X, y = make_data(16)
    _, grads = model.loss_and_gradients(X, y)
    flat = [g[k] for g in grads for k in ("W", "b") if k in g]
    total = math.sqrt(sum(float(np.sum(g ** 2)) for g in flat))
    assert total > 0.05  # so this step clips
    hist = model.fit(X, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    per_layer = [math.sqrt(sum(float(np.sum(v ** 2)) for v in g.values())) for g in grads]
    np.testing.assert_allclose(hist.history["grad_norm"][0], per_layer, rtol=1e-12)  # before clipping
    hist_r = ref.fit(X, y, epochs=1, batch_size=16, shuffle=False)
    np.testing.assert_allclose(hist_r["grad_norm"][0], per_layer, rtol=1e-12)
    coef = 0.05 / (total + 1e-6)  # torch.nn.utils.clip_grad_norm_
    expected = [w - 0.1 * (g * coef) for w, g in zip(start, flat)]
    assert_tensors_close("one clipped SGD step", model.get_weights(), expected, "float64")
    assert_tensors_close("reference", ref.get_weights(), expected, "float64")
    assert math.sqrt(sum(float(np.sum((g * coef) ** 2)) for g in flat)) == pytest.approx(0.05, rel=1e-4)


# ------------------------------------------------------------------------ state: save/load, pickle, compile
@pytest.mark.parametrize("name,hp", [("Adam", dict(lr=0.01, weight_decay=0.01)),
                                     ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
                                     ("RMSprop", dict(lr=0.003, momentum=0.9)),
                                     ("Adagrad", dict(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1)),
                                     ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True))],
                         ids=["adam", "adamw-amsgrad", "rmsprop", "adagrad", "sgd"])
@pytest.mark.parametrize("via", ["save-load", "pickle"])
def test_state_survives_save_load_and_pickle(name, hp, via, tmp_path):
    X, y = make_data(60, seed=3)
    fit = dict(epochs=2, batch_size=16, verbose=0)
    straight = make_model(optimizer(name, 1.0, **hp), dropout=True)
    straight.fit(X, y, **fit)
    straight.fit(X, y, **fit)

    first = make_model(optimizer(name, 1.0, **hp), dropout=True)
    first.fit(X, y, **fit)
    if via == "save-load":
        first.save(tmp_path / "m.pbp")
        resumed = bp.load(tmp_path / "m.pbp")
    else:
        resumed = pickle.loads(pickle.dumps(first))
    middle = resumed.get_weights()
    for which in (1, 2, 3):
        assert all(np.array_equal(a, b) for a, b in zip(core_state(resumed, which), core_state(first, which)))
    assert (resumed._net.optimizer_step, resumed._net.step_counter, resumed._net.epoch_counter) == \
        (first._net.optimizer_step, first._net.step_counter, first._net.epoch_counter) == (8, 8, 2)
    resumed.fit(X, y, **fit)
    first.fit(X, y, **fit)  # the original continues too, unchanged by saving
    for model in (resumed, first):
        for k, (a, b) in enumerate(zip(model.get_weights(), straight.get_weights())):
            assert np.array_equal(a, b), f"weight {k} differs from the uninterrupted run"
        for which in (1, 2, 3):
            assert all(np.array_equal(a, b) for a, b in zip(core_state(model, which), core_state(straight, which)))

    # The check can fail: resuming from the weights and counters alone, with a fresh
    # optimiser state, does not give the uninterrupted run.
    fresh = make_model(optimizer(name, 1.0, **hp), dropout=True)
    fresh.set_weights(middle)
    fresh._net.epoch_counter, fresh._net.step_counter = 2, 8
    fresh.fit(X, y, **fit)
    assert not all(np.array_equal(a, b) for a, b in zip(fresh.get_weights(), straight.get_weights()))


@pytest.mark.parametrize("name,hp", [("Adam", dict(lr=0.01)), ("Adagrad", dict(lr=0.05, initial_accumulator_value=0.3)),
                                     ("RMSprop", dict(lr=0.01, momentum=0.5)), ("SGD", dict(lr=0.05, momentum=0.9)),
                                     ("AdamW", dict(lr=0.01, amsgrad=True))],
                         ids=["adam", "adagrad", "rmsprop", "sgd", "adamw-amsgrad"])
def test_compile_resets_the_optimizer_state(name, hp):
    X, y = make_data(40, seed=4)
    model = make_model(optimizer(name, **hp))
    model.fit(X, y, epochs=2, batch_size=8, verbose=0)
    assert model._net.optimizer_step == 10
    assert any(np.any(s != 0) for s in core_state(model, 1))
    model.compile(loss="mse", optimizer=optimizer(name, **hp))
    assert model._net.optimizer_step == 0
    assert (model._net.step_counter, model._net.epoch_counter) == (10, 2)  # only the optimiser restarts
    start = hp.get("initial_accumulator_value", 0.0)
    for which in (1, 2, 3):
        assert all(np.all(s == (start if which == 1 else 0.0)) for s in core_state(model, which))
    # ... so training on equals a fresh optimiser from these weights and counters
    twin = make_model(optimizer(name, **hp))
    twin.set_weights(model.get_weights())
    twin._net.step_counter, twin._net.epoch_counter = 10, 2
    model.fit(X, y, epochs=1, batch_size=8, verbose=0)
    twin.fit(X, y, epochs=1, batch_size=8, verbose=0)
    for a, b in zip(model.get_weights(), twin.get_weights()):
        assert np.array_equal(a, b)
    # the reference resets the same way
    ref = reference_of(model)
    ref.reset_optimizer_state()
    assert ref.optimizer_step == 0


# ------------------------------------------------------------------------ learning-rate schedule
@pytest.mark.parametrize("name,hp", [("SGD", dict(momentum=0.9, weight_decay=0.01)), ("Adam", dict()),
                                     ("AdamW", dict(weight_decay=0.5, amsgrad=True))],
                         ids=["sgd-momentum", "adam", "adamw-amsgrad"])
@pytest.mark.parametrize("unit", ["step", "epoch"])
def test_time_based_lr_schedule_matches_torch(unit, name, hp):
    torch = pytest.importorskip("torch")
    initial, decay = (0.1, 0.05) if name == "SGD" else (0.02, 0.3)  # AdamW: the decay follows the lr
    schedule = bp.schedules.TimeBased(initial, decay=decay, unit=unit)
    model = make_model(optimizer(name, lr=schedule, **hp), seed=9)
    ref = reference_of(model)
    tnet = TorchNet(torch, model.get_weights(), "float64")
    topt = torch_optimizer(torch, name, tnet.params, {"lr": initial, **hp})
    n, batch, epochs = 50, 16, 3  # 4 steps per epoch, the last one partial
    X, y = make_data(n, seed=5)
    hist = model.fit(X, y, epochs=epochs, batch_size=batch, shuffle=True, verbose=0)

    expected_lr, step = [], 0
    for epoch in range(epochs):
        order = permutation(model.seed, epoch, n)  # the core's shuffle (parity-tested elsewhere)
        for start in range(0, n, batch):
            rows = order[start:start + batch]
            lr = initial / (1.0 + decay * (step if unit == "step" else epoch))
            expected_lr.append(lr)
            for group in topt.param_groups:
                group["lr"] = lr
            topt.zero_grad()
            tnet.loss(X[rows], y[rows]).backward()
            topt.step()
            step += 1
    assert hist.steps["lr"].tolist() == expected_lr  # exactly the schedule's values
    assert hist.history["lr"] == [expected_lr[4 * e] for e in range(epochs)]
    assert_tensors_close("weights after fit (core vs torch)", model.get_weights(), tnet.weights(), "float64")

    # train_step uses the value at the current time: t = step 12 or epoch 3
    lr = initial / (1.0 + decay * (12 if unit == "step" else 3))
    for group in topt.param_groups:
        group["lr"] = lr
    model.train_step(X[:10], y[:10])
    topt.zero_grad()
    tnet.loss(X[:10], y[:10]).backward()
    topt.step()
    assert_tensors_close("after train_step (core vs torch)", model.get_weights(), tnet.weights(), "float64")

    # the reference evaluates the schedule's config the same way
    hist_r = ref.fit(X, y, epochs=epochs, batch_size=batch, shuffle=True)
    assert hist_r["steps"]["lr"] == expected_lr
    ref.train_step(X[:10], y[:10])
    assert_tensors_close("weights (core vs reference)", model.get_weights(), ref.get_weights(), "float64")


@pytest.mark.parametrize("opt", [bp.SGD(lr=0.1, momentum=0.9, nesterov=True), bp.Adam(clip_norm=1.0, weight_decay=0.1),
                                 bp.RMSprop(alpha=0.5, momentum=0.3), bp.Adagrad(initial_accumulator_value=0.2),
                                 bp.SGD(decay_bias=False, decay_per_sample=True, weight_decay=0.01),
                                 bp.Adam(amsgrad=True), bp.AdamW(betas=(0.8, 0.9), weight_decay=0.3, amsgrad=True)])
def test_core_config_carries_every_setting(opt):
    """Optimizer.core_config(): the core's OptimizerConfig with every setting the
    optimiser has (clip_norm None stays None: no sentinel), a readable repr, and a
    keyword constructor that refuses unknown names and bad values."""
    config = opt.core_config()
    assert isinstance(config, bp._core.OptimizerConfig) and config.kind == opt.kind
    for key, value in {**opt.get_config(), "lr": opt.lr}.items():
        if key != "class_name":
            assert getattr(config, key) == value, key
    assert repr(config).startswith(f"OptimizerConfig(kind='{opt.kind}', lr=")
    config.lr = 0.5
    assert config.lr == 0.5 and opt.core_config().lr == opt.lr  # a value, not a view
    with pytest.raises(TypeError, match="unexpected keyword argument 'betas'"):
        bp._core.OptimizerConfig(betas=(0.9, 0.99))
    with pytest.raises(ValueError, match="clip_norm"):
        bp._core.OptimizerConfig(clip_norm=0.0)
    with pytest.raises(ValueError, match="expected one of sgd, adam, rmsprop, adagrad, adamw"):
        bp._core.OptimizerConfig(kind="lbfgs")


@pytest.mark.parametrize("name, hp", [("SGD", dict(momentum=0.9)), ("Adam", {})])
def test_apply_gradients_with_update_ratio_is_fits_last_step(name, hp):
    """apply_gradients(lr, rows, update_ratio): the step fit's last step makes, with each
    layer's |new - old| / |old| filled in as fit's history records it."""
    X, y = np.random.default_rng(0).normal(size=(BATCH, INPUT_DIM)), np.zeros((BATCH, OUT))
    a, b = (make_model(getattr(bp, name)(**hp), "float64") for _ in range(2))
    h = a.fit(X, y, epochs=1, batch_size=BATCH, shuffle=False, verbose=0)
    net = b._net
    net.loss_and_gradients(X, y, True, copy=False)
    ratio = np.full(net.num_layers, np.nan)
    assert net.apply_gradients(b.engine.lr_now(), BATCH, ratio)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(ratio, h.history["update_ratio"][0])
    with pytest.raises(ValueError, match="update_ratio"):
        net.apply_gradients(0.1, BATCH, np.zeros(net.num_layers + 1))


def test_apply_gradients_update_ratio_is_written_in_place_or_refused():
    """update_ratio is an output: an array the core would have to convert (another dtype, a
    stride, read-only) is refused, naming it and what came, before anything is written."""
    X, y = np.random.default_rng(0).normal(size=(BATCH, INPUT_DIM)), np.zeros((BATCH, OUT))
    net = make_model(bp.SGD(), "float64")._net
    net.loss_and_gradients(X, y, True, copy=False)
    before = net.params().copy()
    n = net.num_layers
    expected = f"update_ratio: expected a writeable C-contiguous float64 array of {n} values, got "
    read_only = np.zeros(n)
    read_only.flags.writeable = False
    refused = [(np.zeros(n, np.float32), TypeError, "an array of dtype float32"),
               ([0.0] * n, TypeError, "a list"),
               (np.zeros(2 * n)[::2], ValueError, "a non-contiguous array"),
               (read_only, ValueError, "a read-only array"),
               (np.zeros((1, n)), ValueError, f"a 2-D array of {n} values"),
               (np.zeros(n + 1), ValueError, f"a 1-D array of {n + 1} values")]
    for ratio, error, got in refused:
        with pytest.raises(error) as info:
            net.apply_gradients(0.1, BATCH, ratio)
        assert str(info.value) == expected + got
    np.testing.assert_array_equal(net.params(), before)  # nothing applied
    ratio = np.full(n, np.nan)
    assert net.apply_gradients(0.1, BATCH, ratio)
    assert np.isfinite(ratio).all() and (ratio > 0).all()  # written where it was given


# ------------------------------------------------- AdamW / Adam(amsgrad) under torch's schedulers
SCHEDULED = {
    # id: (optimiser, hyperparameters, our lr schedule, torch's scheduler, stepped per "step" or "epoch")
    "adamw-warmup-cosine": ("AdamW", dict(weight_decay=0.1),
                            lambda: bp.schedules.Warmup(bp.schedules.Cosine(0.02, T_max=8, eta_min=1e-3, unit="step"),
                                                        steps=5, start_factor=0.1),
                            lambda lrs, o: lrs.SequentialLR(o, [lrs.LinearLR(o, start_factor=0.1, total_iters=5),
                                                                lrs.CosineAnnealingLR(o, 8, eta_min=1e-3)],
                                                            milestones=[5]), "step"),
    "adam-amsgrad-onecycle-fixed-momentum": ("Adam", dict(amsgrad=True, weight_decay=0.01),
                                             lambda: bp.schedules.OneCycle(0.05, total_steps=24, cycle_momentum=False),
                                             lambda lrs, o: lrs.OneCycleLR(o, max_lr=0.05, total_steps=24,
                                                                           cycle_momentum=False), "step"),
    "adamw-amsgrad-cosine-epochs": ("AdamW", dict(amsgrad=True, weight_decay=0.3),
                                    lambda: bp.schedules.Cosine(0.03, T_max=2),
                                    lambda lrs, o: lrs.CosineAnnealingLR(o, 2), "epoch"),
    "sgd-momentum-onecycle-fixed-momentum": ("SGD", dict(momentum=0.9, nesterov=True),
                                             lambda: bp.schedules.OneCycle(0.2, total_steps=24, three_phase=True,
                                                                           cycle_momentum=False),
                                             lambda lrs, o: lrs.OneCycleLR(o, max_lr=0.2, total_steps=24,
                                                                           three_phase=True, cycle_momentum=False),
                                             "step"),
    # torch's default cycle_momentum=True: SGD's and RMSprop's momentum, Adam's and AdamW's beta1 cycle too
    "sgd-onecycle": ("SGD", {}, lambda: bp.schedules.OneCycle(0.1, total_steps=24),
                     lambda lrs, o: lrs.OneCycleLR(o, max_lr=0.1, total_steps=24), "step"),
    "sgd-nesterov-onecycle-three-phase": ("SGD", dict(momentum=0.9, nesterov=True, weight_decay=0.01),
                                          lambda: bp.schedules.OneCycle(0.1, total_steps=24, three_phase=True,
                                                                        base_momentum=0.8, max_momentum=0.9),
                                          lambda lrs, o: lrs.OneCycleLR(o, max_lr=0.1, total_steps=24,
                                                                        three_phase=True, base_momentum=0.8,
                                                                        max_momentum=0.9), "step"),
    "rmsprop-onecycle-linear": ("RMSprop", {},
                                lambda: bp.schedules.OneCycle(0.01, total_steps=24, anneal_strategy="linear"),
                                lambda lrs, o: lrs.OneCycleLR(o, max_lr=0.01, total_steps=24,
                                                              anneal_strategy="linear"), "step"),
    "adam-onecycle": ("Adam", dict(weight_decay=0.01), lambda: bp.schedules.OneCycle(0.05, total_steps=24),
                      lambda lrs, o: lrs.OneCycleLR(o, max_lr=0.05, total_steps=24), "step"),
    "adamw-amsgrad-onecycle-three-phase-linear": ("AdamW", dict(amsgrad=True, weight_decay=0.1),
                                                  lambda: bp.schedules.OneCycle(0.05, total_steps=24, three_phase=True,
                                                                                anneal_strategy="linear"),
                                                  lambda lrs, o: lrs.OneCycleLR(o, max_lr=0.05, total_steps=24,
                                                                                three_phase=True,
                                                                                anneal_strategy="linear"), "step"),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("clip_norm", [None, CLIP], ids=["noclip", "clip"])
@pytest.mark.parametrize("case", list(SCHEDULED))
def test_scheduled_training_matches_torch_and_resumes_from_a_file(case, clip_norm, dtype, tmp_path):
    """fit over 4 epochs of 6 steps (shuffled, the last batch short) with the schedule equals torch's
    optimiser driven by its scheduler (the lr of every step too, and with OneCycle's cycle_momentum the
    momentum or beta1 of every step); the reference agrees; a model saved after epoch 2 and loaded ends
    bitwise where the uninterrupted one does."""
    torch = pytest.importorskip("torch")
    name, hp, ours, theirs, per = SCHEDULED[case]
    model = make_model(optimizer(name, clip_norm, lr=ours(), **hp), dtype, seed=11)
    ref = reference_of(model)
    tnet = TorchNet(torch, model.get_weights(), dtype)
    schedule = model.optimizer.lr
    base = schedule.schedule(0) if isinstance(schedule, bp.schedules.Warmup) else schedule(0)  # torch's group lr
    topt = torch_optimizer(torch, name, tnet.params, {"lr": base, **hp})
    sched = theirs(torch.optim.lr_scheduler, topt)
    n, batch, epochs = 45, 8, 4
    X, y = make_data(n, dtype, seed=6)
    hist = model.fit(X, y, epochs=2, batch_size=batch, verbose=0)
    model.save(tmp_path / "half.pbp")
    hist2 = model.fit(X, y, epochs=2, batch_size=batch, verbose=0)
    resumed = bp.load(tmp_path / "half.pbp")
    resumed.fit(X, y, epochs=2, batch_size=batch, verbose=0)
    for a, b in zip(resumed.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)

    torch_lr, torch_momentum = [], []
    for epoch in range(epochs):
        order = permutation(model.seed, epoch, n)
        for start in range(0, n, batch):
            rows = order[start:start + batch]
            torch_lr.append(topt.param_groups[0]["lr"])
            group = topt.param_groups[0]
            torch_momentum.append(group["betas"][0] if "betas" in group else group.get("momentum"))
            topt.zero_grad()
            tnet.loss(X[rows], y[rows]).backward()
            if clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(tnet.params, clip_norm)
            topt.step()
            if per == "step":
                sched.step()
        if per == "epoch":
            sched.step()
    used = np.concatenate([hist.steps["lr"], hist2.steps["lr"]])
    if isinstance(schedule, bp.schedules.Warmup):  # LinearLR's stepped products vs its closed form: to rounding
        np.testing.assert_allclose(used, torch_lr, rtol=1e-14, atol=0)
    else:
        assert used.tolist() == torch_lr  # bit for bit
    cycled = isinstance(schedule, bp.schedules.OneCycle) and schedule.cycle_momentum
    if cycled:  # the momentum (beta1) of every step, bit for bit, recorded as the lr is
        momentum = np.concatenate([hist.steps["momentum"], hist2.steps["momentum"]])
        assert momentum.tolist() == torch_momentum
        assert hist.history["momentum"] == [torch_momentum[0], torch_momentum[6]]
    else:
        assert "momentum" not in hist.steps and "momentum" not in hist.history
    rtol, atol = (1e-12, 1e-12) if cycled and dtype == "float64" else TORCH_TOL[dtype]
    for k, (w, t) in enumerate(zip(model.get_weights(), tnet.weights())):
        assert_close(f"{case} weight {k} (core vs torch)", w, t, rtol, atol * max(1.0, float(np.max(np.abs(t)))))
    ref_hist = ref.fit(X, y, epochs=epochs, batch_size=batch)
    assert_tensors_close("weights (core vs reference)", model.get_weights(), ref.get_weights(), dtype)
    if cycled:
        assert ref_hist["steps"]["momentum"] == torch_momentum


def test_adamw_and_amsgrad_validate_and_differ_from_adam():
    with pytest.raises(TypeError, match="amsgrad: expected True or False"):
        bp.Adam(amsgrad="yes")
    with pytest.raises(TypeError, match="betas: expected either betas"):
        bp.AdamW(betas=(0.9, 0.99), beta1=0.8)
    with pytest.raises(ValueError, match="weight_decay"):
        bp.AdamW(weight_decay=-0.01)
    with pytest.raises(ValueError, match="beta2"):
        bp.AdamW(betas=(0.9, 1.0))
    assert bp.optimizers.get("adamw").weight_decay == 0.01  # torch's default
    assert (bp.AdamW(beta1=0.8).beta1, bp.AdamW(beta2=0.9).beta2) == (0.8, 0.9)
    X, y = make_data(40)
    ends = []
    for opt in (bp.Adam(lr=0.01, weight_decay=0.1), bp.AdamW(lr=0.01, weight_decay=0.1),
                bp.Adam(lr=0.01, weight_decay=0.1, amsgrad=True)):
        m = make_model(opt)
        m.fit(X, y, epochs=3, batch_size=8, verbose=0)
        ends.append(m.get_weights()[0])
    assert not np.allclose(ends[0], ends[1]) and not np.allclose(ends[0], ends[2])
    # weight_decay=0: AdamW is Adam, bitwise
    a, b = make_model(bp.Adam(lr=0.01)), make_model(bp.AdamW(lr=0.01, weight_decay=0.0))
    a.fit(X, y, epochs=2, batch_size=8, verbose=0)
    b.fit(X, y, epochs=2, batch_size=8, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_apply_gradients_takes_a_weights_sum_as_the_count():
    """rows may be a weights' sum (weight_norm 'weight_sum'): per-sample decay divides by it, also
    when it is not a whole number; a negative or non-finite count is refused."""
    model = make_model(bp.SGD(lr=0.1, weight_decay=0.3, decay_per_sample=True), "float64")
    net = model._net
    net.grads()[...] = 0.0
    before = net.params().copy()
    assert net.apply_gradients(0.1, 2.5)
    np.testing.assert_allclose(net.params(), before * (1 - 0.1 * 0.3 / 2.5), rtol=1e-15)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="rows: expected a finite count >= 0"):
            net.apply_gradients(0.1, bad)
