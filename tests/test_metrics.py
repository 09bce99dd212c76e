"""compile(metrics=[...]): the values in History, the progress line and evaluate, and bad input.

The training value of an epoch is the metric over each row's training-mode output
before its step's update (Keras's running mean over the batches): a twin model
stepping batch by batch with ``predict`` then ``train_step`` over the same shuffled
batches sees the same outputs. Built-in metrics are checked against scikit-learn.
"""
from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

import pybackprop as bp
from conftest import assert_close, make_data, make_model
from pybackprop import _core

sklearn_metrics = pytest.importorskip("sklearn.metrics")

N, D = 37, 4


def clf_model(dtype: str = "float64", metrics=("accuracy",), seed: int = 2) -> bp.Sequential:
    m = make_model([(6, "tanh")], 3, "softmax", loss=None, dtype=dtype, seed=seed, input_dim=D)
    m.compile(loss="categorical_crossentropy", optimizer=bp.SGD(lr=0.2, momentum=0.5), metrics=list(metrics))
    return m


def reg_model(dtype: str = "float64", metrics=("mae", "mse", "rmse", "r2"), seed: int = 2) -> bp.Sequential:
    m = make_model([(6, "tanh")], 2, "identity", loss=None, dtype=dtype, seed=seed, input_dim=D)
    m.compile(loss="mse", optimizer=bp.SGD(lr=0.05), metrics=list(metrics))
    return m


def stepwise_predictions(model: bp.Sequential, X, Y, epochs: int, batch: int):
    """Per epoch, each row's output as its step saw it: predict the batch, then train on it."""
    out = []
    for epoch in range(epochs):
        order = _core.permutation(model.seed, epoch, X.shape[0])
        pred = np.empty((X.shape[0], model.output_dim))
        for s in range(0, X.shape[0], batch):
            rows = order[s:s + batch]
            pred[rows] = model.predict(X[rows])
            model.train_step(X[rows], Y[rows])
        out.append(pred)
    return out


def test_training_metrics_are_over_the_outputs_each_step_saw():
    X, labels = make_data(N, D, 3, "categorical_crossentropy", targets="labels", seed=1)
    model = clf_model()
    h = model.fit(X, labels, epochs=3, batch_size=5, verbose=0)
    twin = clf_model()
    preds = stepwise_predictions(twin, X, labels, 3, 5)
    want = [sklearn_metrics.accuracy_score(labels, p.argmax(axis=1)) for p in preds]
    assert h.history["accuracy"] == want
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), twin.get_weights()))

    Xr, Yr = make_data(N, D, 2, "mse", seed=3)
    reg = reg_model()
    h = reg.fit(Xr, Yr, epochs=2, batch_size=4, verbose=0)
    preds = stepwise_predictions(reg_model(), Xr, Yr, 2, 4)
    for name, fn in [("mae", sklearn_metrics.mean_absolute_error), ("mse", sklearn_metrics.mean_squared_error),
                     ("rmse", lambda a, b: np.sqrt(sklearn_metrics.mean_squared_error(a, b))),
                     ("r2", sklearn_metrics.r2_score)]:
        assert_close(name, h.history[name], [fn(Yr, p) for p in preds], 1e-12, 1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch_size", [1, 8])
def test_metrics_do_not_change_training(dtype, batch_size):
    """With metrics the general path makes every step (batch size 1 too): the same weights bitwise."""
    Xr, Yr = make_data(N, D, 2, "mse", seed=3, dtype=dtype)
    a, b = reg_model(dtype, metrics=()), reg_model(dtype)
    ha = a.fit(Xr, Yr, epochs=2, batch_size=batch_size, verbose=0)
    hb = b.fit(Xr, Yr, epochs=2, batch_size=batch_size, verbose=0)
    assert ha.history["loss"] == hb.history["loss"]
    assert all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))
    assert "mae" in hb.history and "mae" not in ha.history


def test_evaluate_returns_a_dict_equal_to_sklearn_and_val_metrics_are_evaluate_at_epoch_end():
    X, labels = make_data(N, D, 3, "categorical_crossentropy", targets="labels", seed=1)
    model = clf_model(metrics=["accuracy", "mse"])
    h = model.fit(X[:30], labels[:30], epochs=2, batch_size=6, verbose=0, validation_data=(X[30:], labels[30:]))
    got = model.evaluate(X[30:], labels[30:])
    assert list(got) == ["loss", "accuracy", "mse"]
    assert got["loss"] == h.history["val_loss"][-1]
    assert got["accuracy"] == h.history["val_accuracy"][-1]
    assert got["mse"] == h.history["val_mse"][-1]
    p = model.predict(X[30:])
    assert got["accuracy"] == sklearn_metrics.accuracy_score(labels[30:], p.argmax(axis=1))
    assert_close("mse", got["mse"], sklearn_metrics.mean_squared_error(np.eye(3)[labels[30:]], p), 1e-12, 1e-12)
    # without metrics evaluate stays a float
    plain = make_model([(3, "tanh")], 1, loss="mse", input_dim=D)
    assert isinstance(plain.evaluate(X, labels.astype(float)), float)


def test_binary_accuracy_uses_the_half_threshold():
    X, Y = make_data(N, D, 1, "binary_crossentropy", seed=5)
    m = make_model([(4, "tanh")], 1, "sigmoid", loss=None, input_dim=D)
    m.compile(loss="binary_crossentropy", optimizer=bp.SGD(lr=0.1), metrics=["accuracy"])
    p = m.predict(X)
    assert m.evaluate(X, Y)["accuracy"] == sklearn_metrics.accuracy_score(Y[:, 0], p[:, 0] > 0.5)
    # multi-label sigmoid outputs: per output
    X2, Y2 = make_data(N, D, 3, "binary_crossentropy", seed=5)
    Y2[:, -1] = Y2[:, 0]  # 0/1 targets everywhere
    m2 = make_model([(4, "tanh")], 3, "sigmoid", loss=None, input_dim=D)
    m2.compile(loss="binary_crossentropy", metrics=["accuracy"])
    assert m2.evaluate(X2, Y2)["accuracy"] == float(np.mean((m2.predict(X2) > 0.5) == Y2))


def test_a_callable_metric_is_called_once_per_epoch_on_the_whole_epoch():
    calls = []

    def max_error(y_true, y_pred):
        calls.append(y_true.shape)
        return float(np.max(np.abs(y_true - y_pred)))

    Xr, Yr = make_data(N, D, 2, "mse", seed=3)
    model = reg_model(metrics=[max_error])
    h = model.fit(Xr, Yr, epochs=3, batch_size=4, verbose=0)
    assert calls == [(N, 2)] * 3 and len(h.history["max_error"]) == 3
    preds = stepwise_predictions(reg_model(metrics=[max_error]), Xr, Yr, 3, 4)
    assert h.history["max_error"] == [float(np.max(np.abs(Yr - p))) for p in preds]
    assert model.evaluate(Xr, Yr)["max_error"] == float(np.max(np.abs(Yr - model.predict(Xr))))


def test_progress_line_prints_the_metrics():
    Xr, Yr = make_data(N, D, 2, "mse", seed=3)
    model = reg_model(metrics=["mae", "r2"])
    stream = io.StringIO()
    model.fit(Xr, Yr, epochs=1, verbose=0, validation_split=0.2, callbacks=[bp.ProgressBar(stream=stream)])
    line = stream.getvalue()
    assert " - mae: " in line and " - r2: " in line and " - val_mae: " in line and " - val_r2: " in line
    assert line.index("loss:") < line.index("mae:") < line.index("val_loss:") < line.index("val_mae:")


def test_metric_names_round_trip_get_config_and_save(tmp_path):
    model = reg_model(metrics=["r2", "mae"])
    cfg = json.loads(json.dumps(model.get_config()))
    assert cfg["compile"]["metrics"] == ["r2", "mae"]
    assert [m.name for m in bp.Sequential.from_config(cfg).metrics] == ["r2", "mae"]
    path = os.path.join(tmp_path, "m.pbp")
    model.save(path)
    assert [m.name for m in bp.load(path).metrics] == ["r2", "mae"]
    plain = reg_model(metrics=())
    assert "metrics" not in plain.get_config()["compile"]  # configs without metrics are as before

    def mine(y_true, y_pred):
        return 0.0

    custom = reg_model(metrics=["mae", mine])
    with pytest.warns(UserWarning, match=r"metrics \['mine'\] were functions"):
        back = bp.Sequential.from_config(custom.get_config())
    assert [m.name for m in back.metrics] == ["mae"]


def test_clone_keeps_the_metrics():
    model = reg_model(metrics=["mae"])
    assert [m.name for m in model.engine.clone().metrics] == ["mae"]


@pytest.mark.parametrize("metrics,exc,match", [
    (["f1"], ValueError, r"metrics\[0\]: expected one of 'accuracy', 'mae', 'mse', 'rmse', 'r2' or a callable"),
    ("accuracy", TypeError, "metrics: expected a list of metric names or callables"),
    ([3], TypeError, r"metrics\[0\]: expected a metric name"),
    (["mae", "mae"], ValueError, r"metrics\[1\]: expected a metric whose name is not already a History key"),
    ([lambda y, p: 0.0, lambda y, p: 1.0], ValueError, r"metrics\[1\]"),
])
def test_bad_metrics_raise_and_leave_the_compiled_model(metrics, exc, match):
    model = reg_model(metrics=["r2"])
    optimizer = model.optimizer
    with pytest.raises(exc, match=match):
        model.compile(loss="mae", optimizer=bp.Adam(), metrics=metrics)
    assert model.loss == "mse" and model.optimizer is optimizer and [m.name for m in model.metrics] == ["r2"]


def test_a_metric_named_like_a_history_key_is_refused():
    def loss(y_true, y_pred):
        return 0.0

    def val_x(y_true, y_pred):
        return 0.0

    for fn in (loss, val_x):
        with pytest.raises(ValueError, match=r"metrics\[0\]: expected a metric whose name is not already"):
            reg_model(metrics=[fn])


def test_a_callable_returning_no_number_raises_a_type_error():
    Xr, Yr = make_data(N, D, 2, "mse", seed=3)
    model = reg_model(metrics=[lambda y, p: "high"])
    with pytest.raises(TypeError, match="metric '<lambda>': expected the function to return a real number, got str"):
        model.evaluate(Xr, Yr)


def test_r2_of_constant_targets_is_finite():
    y = np.ones((4, 1))
    assert bp.metrics.r2(y, y) == 1.0 and bp.metrics.r2(y, y + 1) == 0.0
