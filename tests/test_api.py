"""The public Python API of DESIGN.md: config, weights, views, fit, history, tables, doctests."""
from __future__ import annotations

import doctest
import importlib
import json
import pkgutil

import numpy as np
import pytest

import pybackprop as bp
from pybackprop import _core
from conftest import assert_state_unchanged, core_state, make_data, make_model


def _textbook(seed: int = 0, dtype: str = "float64", input_dim=3) -> bp.Sequential:
    return bp.Sequential([
        bp.Dense(4, activation="relu", use_bias=False, init="he_normal"),
        bp.Dense(4, activation=bp.activations.LeakyReLU(alpha=0.2)),
        bp.Dense(4, activation=bp.activations.NoisyReLU(sigma=0.3), init="random_uniform"),
        bp.Dense(2, activation=bp.activations.ELU(alpha=0.5), use_bias=False, init="xavier_normal"),
    ], input_dim=input_dim, dtype=dtype, seed=seed)


# ---------------------------------------------------------------------- config
def test_config_json_round_trip_rebuilds_the_same_model():
    model = _textbook(seed=42)
    model.compile(loss="huber", optimizer=bp.SGD(lr=0.02, momentum=0.5, nesterov=True, weight_decay=1e-3))
    cfg = model.get_config()
    text = json.dumps(cfg)  # JSON-serialisable
    again = bp.Sequential.from_config(json.loads(text))
    assert again.get_config() == cfg
    # The rebuilt model draws the same initial weights from the seed.
    for w0, w1 in zip(model.get_weights(), again.get_weights()):
        assert np.array_equal(w0, w1)
    # ... and trains the same.
    X, y = make_data(16, 3, 2, "huber", seed=1)
    model.fit(X, y, epochs=2, batch_size=5, verbose=0)
    again.fit(X, y, epochs=2, batch_size=5, verbose=0)
    for w0, w1 in zip(model.get_weights(), again.get_weights()):
        assert np.array_equal(w0, w1)


def test_config_layout_of_internals_md():
    cfg = _textbook(seed=7, dtype="float32").get_config()
    assert cfg["class_name"] == "Sequential" and cfg["format"] == 1
    assert (cfg["input_dim"], cfg["dtype"], cfg["seed"], cfg["compile"]) == (3, "float32", 7, None)
    first = cfg["layers"][0]
    assert first["class_name"] == "Dense" and first["units"] == 4 and first["use_bias"] is False
    assert first["init"] == "he_normal" and first["activation"] == {"name": "relu"}
    assert [layer["activation"] for layer in cfg["layers"]] == [
        {"name": "relu"}, {"name": "leaky_relu", "alpha": 0.2}, {"name": "noisy_relu", "sigma": 0.3},
        {"name": "elu", "alpha": 0.5}]
    assert cfg["layers"][3]["init"] == "glorot_normal"  # xavier_normal is an alias
    defaults = bp.Sequential([bp.Dense(1, activation=a) for a in ("leaky_relu", "noisy_relu", "elu")],
                             input_dim=1).get_config()
    assert [layer["activation"] for layer in defaults["layers"]] == [
        {"name": "leaky_relu", "alpha": 0.01}, {"name": "noisy_relu", "sigma": 0.1},
        {"name": "elu", "alpha": 1.0}]


def test_config_of_a_lazy_model_and_of_explicit_init():
    lazy = bp.Sequential([bp.Dense(3, activation="tanh"), bp.Dense(1)], seed=3)
    cfg = lazy.get_config()
    assert cfg["input_dim"] is None
    rebuilt = bp.Sequential.from_config(json.loads(json.dumps(cfg)))
    assert not rebuilt.built
    lazy.build(5)
    rebuilt.build(5)
    for w0, w1 in zip(lazy.get_weights(), rebuilt.get_weights()):
        assert np.array_equal(w0, w1)
    # An explicit init array survives the round trip too.
    W = np.arange(6.0).reshape(3, 2)
    m = bp.Sequential([bp.Dense(2, init=W)], input_dim=3, dtype="float64")
    again = bp.Sequential.from_config(json.loads(json.dumps(m.get_config())))
    assert np.array_equal(again.layers[0].W, W)


# ---------------------------------------------------------------------- weights and views
def test_get_weights_returns_copies_in_layer_order():
    model = _textbook()
    ws = model.get_weights()
    # layers 0 and 3 have no bias: [W0, W1, b1, W2, b2, W3]
    assert [w.shape for w in ws] == [(3, 4), (4, 4), (4,), (4, 4), (4,), (4, 2)]
    assert all(w.dtype == np.float64 for w in ws)
    ws[0][...] = 123.0
    assert not np.any(model.get_weights()[0] == 123.0)
    assert not np.shares_memory(model.get_weights()[0], model.layers[0].W)
    assert model.count_params() == sum(w.size for w in ws)


def test_set_weights_round_trip_and_cast():
    model = _textbook(dtype="float32")
    r = np.random.default_rng(0)
    new = [r.normal(size=w.shape) for w in model.get_weights()]  # float64 in: cast to float32
    model.set_weights(new)
    for got, want in zip(model.get_weights(), new):
        assert got.dtype == np.float32
        assert np.array_equal(got, want.astype(np.float32))
    model.set_weights([w.tolist() for w in new])  # nested lists work too
    assert np.array_equal(model.layers[1].b, new[2].astype(np.float32))


def test_layer_W_and_b_are_zero_copy_views():
    model = make_model([(4, "tanh")], 2, dtype="float64", input_dim=3)
    layer = model.layers[0]
    assert np.shares_memory(layer.W, layer.W)  # two calls, one memory
    assert np.shares_memory(layer.b, layer.b)
    assert np.shares_memory(layer.W, model._net.params())
    X = np.ones((2, 3))
    before = model.predict(X)
    layer.W[...] += 1.0  # writing to the view changes the model
    after = model.predict(X)
    assert not np.array_equal(before, after)
    model.layers[1].b[...] = 7.0
    assert np.array_equal(model.get_weights()[3], np.full(2, 7.0))
    # The view keeps working (and the network alive) after the model is gone.
    W = model.layers[1].W
    del model
    assert W.shape == (4, 2) and np.isfinite(W).all()


def test_b_is_none_without_bias():
    model = make_model([(4, "relu")], 1, use_bias=False, input_dim=2)
    assert model.layers[0].b is None and model.layers[1].b is None
    _, grads = model.loss_and_gradients(np.ones((3, 2)), np.ones(3))
    assert [sorted(g) for g in grads] == [["W"], ["W"]]


def test_layer_views_before_build_raise():
    layer = bp.Dense(3)
    bp.Sequential([layer])
    with pytest.raises(RuntimeError, match="not built"):
        layer.W


# ---------------------------------------------------------------------- summary, history
def test_summary_lists_layers_and_parameter_counts():
    lines = []
    bp.Sequential([bp.Dense(4, activation="relu"), bp.Dense(3, activation="softmax", use_bias=False)],
                  input_dim=5, seed=11).summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Sequential" in lines[0] and "float32" in lines[0] and "11" in lines[0]
    assert any("relu" in line and "24" in line for line in lines)       # 5*4 + 4
    assert any("softmax" in line and "12" in line for line in lines)    # 4*3, no bias
    assert "Total params: 36" in text
    lines.clear()
    bp.Sequential([bp.Dense(2)]).summary(print_fn=lines.append)  # not built: counts unknown
    assert "?" in "\n".join(lines)


def test_summary_prints_by_default(capsys):
    bp.Sequential([bp.Dense(2)], input_dim=2).summary()
    assert "Total params: 6" in capsys.readouterr().out


def test_history_keys_and_shapes():
    model = make_model([(5, "tanh"), (4, "relu")], 2, input_dim=3)
    X, y = make_data(30, 3, 2, "mse", seed=0)
    Xv, yv = make_data(10, 3, 2, "mse", seed=1)
    hist = model.fit(X, y, epochs=4, batch_size=8, verbose=0)
    assert isinstance(hist, bp.History) and model.history is hist
    assert {"loss", "grad_norm"} <= set(hist.history) and "val_loss" not in hist.history
    assert len(hist.history["loss"]) == 4 and all(isinstance(v, float) for v in hist.history["loss"])
    assert [len(g) for g in hist.history["grad_norm"]] == [3] * 4  # per epoch, per Dense layer
    assert hist.epoch == [0, 1, 2, 3]
    assert hist.params["epochs"] == 4 and hist.params["batch_size"] == 8 and hist.params["steps"] == 4
    hist = model.fit(X, y, epochs=2, batch_size=8, verbose=0, validation_data=(Xv, yv))
    assert hist.epoch == [4, 5]  # the model's epoch numbers continue
    assert len(hist.history["val_loss"]) == 2
    # val_loss is the inference-mode loss on the validation set after the epoch.
    assert hist.history["val_loss"][-1] == pytest.approx(model.evaluate(Xv, yv), rel=1e-6)


def test_fit_verbose_prints_one_line_per_epoch(capsys):
    model = make_model([(3, "tanh")], 1, input_dim=2)
    model.fit(np.ones((4, 2)), np.ones(4), epochs=3, verbose=1)
    out = capsys.readouterr().out
    assert out.count("loss") >= 3
    model.fit(np.ones((4, 2)), np.ones(4), epochs=3, verbose=0)
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------------- fit mechanics
N = 20


@pytest.mark.parametrize("batch_size,steps", [(1, 20), (7, 3), (N, 1), (N + 5, 1)])
def test_fit_batch_sizes_and_step_counts(batch_size, steps):
    model = make_model([(5, "tanh")], 1, input_dim=3, optimizer=bp.SGD(lr=0.05, momentum=0.9))
    X, y = make_data(N, 3, 1, "mse", seed=2)
    hist = model.fit(X, y, epochs=2, batch_size=batch_size, shuffle=False, verbose=0)
    assert model._net.step_counter == 2 * steps and model._net.epoch_counter == 2
    assert hist.params["steps"] == steps
    # Without shuffling, fit is train_step on consecutive slices, the last one partial.
    manual = make_model([(5, "tanh")], 1, input_dim=3, optimizer=bp.SGD(lr=0.05, momentum=0.9))
    losses = []
    for _ in range(2):
        total = 0.0
        for start in range(0, N, batch_size):
            xb, yb = X[start:start + batch_size], y[start:start + batch_size]
            total += manual.train_step(xb, yb) * len(xb)
        losses.append(total / N)
    for a, b in zip(model.get_weights(), manual.get_weights()):
        assert np.array_equal(a, b)
    assert hist.history["loss"] == pytest.approx(losses, rel=1e-12)


def test_batch_larger_than_the_data_is_full_batch():
    a = make_model([(5, "tanh")], 1, input_dim=3, seed=4)
    b = make_model([(5, "tanh")], 1, input_dim=3, seed=4)
    X, y = make_data(N, 3, 1, "mse", seed=3)
    a.fit(X, y, epochs=3, batch_size=N, verbose=0)
    b.fit(X, y, epochs=3, batch_size=N + 5, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)


def test_epochs_zero_changes_nothing():
    model = make_model([(5, "tanh")], 1, input_dim=3)
    before = core_state(model)
    hist = model.fit(*make_data(N, 3, 1, "mse"), epochs=0, verbose=0)
    assert hist.epoch == [] and all(len(v) == 0 for v in hist.history.values())
    assert_state_unchanged(model, before)


def test_lazy_build_from_the_first_data():
    model = bp.Sequential([bp.Dense(4, activation="relu"), bp.Dense(1)], seed=5)
    model.compile(loss="mse", optimizer=bp.SGD(lr=0.01))
    assert not model.built and model.input_dim is None and model.get_weights() == []
    X, y = make_data(N, 6, 1, "mse")
    model.fit(X, y, epochs=1, verbose=0)
    assert model.built and model.input_dim == 6
    assert model.layers[0].W.shape == (6, 4)
    # Its initial weights are those of an eagerly built twin.
    eager = bp.Sequential([bp.Dense(4, activation="relu"), bp.Dense(1)], input_dim=6, seed=5)
    eager.compile(loss="mse", optimizer=bp.SGD(lr=0.01))
    eager.fit(X, y, epochs=1, verbose=0)
    for a, b in zip(model.get_weights(), eager.get_weights()):
        assert np.array_equal(a, b)
    # predict builds too.
    m2 = bp.Sequential([bp.Dense(2)], seed=5)
    assert m2.predict(np.ones((3, 4))).shape == (3, 2) and m2.input_dim == 4


def test_integer_labels_equal_one_hot_targets():
    X, labels = make_data(N, 3, 4, "categorical_crossentropy", seed=6, targets="labels")
    onehot = np.eye(4)[labels]
    a = make_model([(5, "relu")], 4, "softmax", "categorical_crossentropy", input_dim=3, seed=1)
    b = make_model([(5, "relu")], 4, "softmax", "categorical_crossentropy", input_dim=3, seed=1)
    la, ga = a.loss_and_gradients(X, labels)
    lb, gb = b.loss_and_gradients(X, onehot)
    assert la == lb
    for da, db in zip(ga, gb):
        for key in da:
            assert np.array_equal(da[key], db[key])
    for labels_as in (labels, labels.astype(np.float64), labels.astype(np.int8), list(labels)):
        assert a.evaluate(X, labels_as) == la
    a.fit(X, labels, epochs=2, batch_size=6, verbose=0)
    b.fit(X, onehot, epochs=2, batch_size=6, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)


def test_one_dimensional_y_is_a_column_for_regression():
    model = make_model([(3, "tanh")], 1, input_dim=2)
    X, y = make_data(8, 2, 1, "mse", seed=7)
    assert model.evaluate(X, y[:, 0]) == model.evaluate(X, y)


def test_train_step_returns_the_loss_before_the_update():
    model = make_model([(5, "tanh")], 2, input_dim=3, optimizer=bp.SGD(lr=0.1))
    X, y = make_data(6, 3, 2, "mse", seed=8)
    before, _ = model.loss_and_gradients(X, y, training=True)
    steps = model._net.step_counter
    loss = model.train_step(X, y)
    assert isinstance(loss, float) and loss == before
    assert model._net.step_counter == steps + 1
    assert model.evaluate(X, y) < loss


def test_predict_returns_the_model_dtype_and_shape():
    for dtype in ("float32", "float64"):
        model = make_model([(3, "relu")], 2, dtype=dtype, input_dim=4)
        out = model.predict(np.ones((5, 4), dtype=np.float32 if dtype == "float64" else np.float64))
        assert out.shape == (5, 2) and out.dtype == np.dtype(dtype)


def test_dtype_accepts_numpy_dtypes():
    assert bp.Sequential([bp.Dense(1)], dtype=np.float64).dtype == "float64"
    assert bp.Sequential([bp.Dense(1)], dtype=np.dtype("float32")).dtype == "float32"


# ---------------------------------------------------------------------- module-level functions
def test_num_threads_round_trip(restore_num_threads):
    bp.set_num_threads(1)
    assert bp.get_num_threads() == 1
    bp.set_num_threads(3)
    assert bp.get_num_threads() == 3
    assert isinstance(bp.get_num_threads(), int)


def test_build_info():
    info = bp.build_info()
    assert {"version", "compiler", "openmp", "isa", "cpus"} <= set(info)
    assert info["version"] == bp.__version__
    assert isinstance(info["openmp"], bool) and isinstance(info["cpus"], int) and info["cpus"] >= 1
    info["version"] = "changed"  # a copy: changing it changes nothing
    assert bp.build_info()["version"] == bp.__version__


def test_python_name_tables_equal_the_core_enums():
    """Activations, losses and initialisers: same names, same order, on both sides."""
    assert list(bp.activations.ACTIVATIONS) == list(_core.ACTIVATIONS)
    assert list(bp.losses.LOSSES) == list(_core.LOSSES)
    assert list(bp.initializers.INITIALIZERS) == list(_core.INITIALIZERS)
    # Every alias resolves to a name of the core.
    assert set(bp.activations.ALIASES.values()) <= set(_core.ACTIVATIONS)
    assert set(bp.initializers.ALIASES.values()) <= set(_core.INITIALIZERS)
    # Each activation class's name is its table key.
    for name, cls in bp.activations.ACTIVATIONS.items():
        assert cls.name == name and bp.activations.get(name).name == name


def test_reference_name_tables_equal_the_core_enums():
    from pybackprop import reference
    names = [n for n in reference.ACTIVATIONS if n not in bp.activations.ALIASES]
    assert names == list(_core.ACTIVATIONS)
    assert list(reference.LOSSES) == list(_core.LOSSES)
    inits = [n for n in reference.rng.INITIALIZERS if n not in reference.rng.INIT_ALIASES]
    assert inits == list(_core.INITIALIZERS)


# ---------------------------------------------------------------------- doctests
REQUIRED_MODULES = ["pybackprop", "pybackprop.model", "pybackprop.layers", "pybackprop.activations",
                    "pybackprop.optimizers", "pybackprop.callbacks", "pybackprop.initializers",
                    "pybackprop.losses", "pybackprop.reference", "pybackprop.reference.functional",
                    "pybackprop.reference.network", "pybackprop.reference.rng"]
# __main__ runs the command line when imported; _core is the compiled module.
SKIP_MODULES = {"pybackprop.__main__", "pybackprop._core"}


def _all_modules():
    found = {"pybackprop"}
    for info in pkgutil.walk_packages(bp.__path__, "pybackprop."):
        found.add(info.name)
    return sorted((found | set(REQUIRED_MODULES)) - SKIP_MODULES)


@pytest.mark.parametrize("name", _all_modules())
def test_doctests(name, restore_num_threads):
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # e.g. pybackprop.sklearn without scikit-learn installed
        if name in REQUIRED_MODULES or exc.name is None or exc.name.startswith("pybackprop"):
            raise
        pytest.skip(f"{name} needs the optional dependency {exc.name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctests of {name} failed (see stdout)"
    if name in REQUIRED_MODULES:
        assert result.attempted > 0, f"{name} has no doctest examples"
