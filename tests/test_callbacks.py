"""Callbacks and overfitting control: EarlyStopping, ModelCheckpoint, LearningRateScheduler,
TerminateOnNaN, ProgressBar, validation_split."""
import io

import numpy as np
import pytest

import pybackprop as bp


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rng.normal(size=n)


def _model(lr=0.05, seed=0, optimizer=None):
    m = bp.Sequential([bp.Dense(16, activation="tanh"), bp.Dense(1)], input_dim=4, dtype="float64", seed=seed)
    m.compile(loss="mse", optimizer=optimizer or bp.SGD(lr=lr))
    return m


class Recorder(bp.Callback):
    def __init__(self):
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch, logs):
        self.calls.append(("epoch_end", epoch, sorted(logs)))

    def on_train_end(self, logs=None):
        self.calls.append("train_end")


def test_callback_order_and_logs():
    X, y = _data()
    rec = Recorder()
    _model().fit(X, y, epochs=2, validation_data=(X, y), callbacks=[rec], verbose=0)
    keys = ["dead_fraction", "grad_norm", "loss", "lr", "nonfinite", "saturated_fraction", "update_ratio",
            "val_loss", "weight_norm"]
    assert rec.calls == ["train_begin", ("epoch_begin", 0), ("epoch_end", 0, keys), ("epoch_begin", 1),
                         ("epoch_end", 1, keys), "train_end"]


def test_validation_split_takes_the_last_samples():
    X, y = _data(40)
    a, b = _model(), _model()
    ha = a.fit(X, y, epochs=3, validation_split=0.25, verbose=0)
    hb = b.fit(X[:30], y[:30], epochs=3, validation_data=(X[30:], y[30:]), verbose=0)
    assert ha.history["val_loss"] == hb.history["val_loss"]
    assert ha.params["samples"] == 30


def test_validation_split_bad_values():
    X, y = _data(10)
    with pytest.raises(ValueError, match="validation_split"):
        _model().fit(X, y, validation_split=1.0, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        _model().fit(X[:1], y[:1], validation_split=0.5, verbose=0)


def test_early_stopping_stops_and_restores_best_weights():
    X, y = _data(80)
    Xv, yv = _data(80, seed=1)
    # A large learning rate makes val_loss oscillate, so improvement stops early.
    stop = bp.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    m = _model(lr=0.3)
    h = m.fit(X, y, epochs=300, batch_size=8, validation_data=(Xv, yv), callbacks=[stop], verbose=0)
    assert stop.stopped_epoch is not None and len(h.epoch) < 300
    best = int(np.argmin(h.history["val_loss"]))
    assert stop.best == h.history["val_loss"][best]
    assert len(h.epoch) == best + stop.patience + 2  # best epoch, then patience + 1 without improvement
    assert m.evaluate(Xv, yv) == pytest.approx(stop.best, rel=1e-12)  # the best epoch's weights are back


def test_early_stopping_min_delta_and_missing_monitor():
    X, y = _data()
    stop = bp.EarlyStopping(monitor="loss", patience=0, min_delta=1e9)  # nothing counts as improvement
    h = _model().fit(X, y, epochs=10, callbacks=[stop], verbose=0)
    assert len(h.epoch) == 2
    with pytest.raises(ValueError, match="monitor 'val_loss' is not in the epoch logs"):
        _model().fit(X, y, epochs=2, callbacks=[bp.EarlyStopping()], verbose=0)


def test_model_checkpoint_saves_best_only(tmp_path):
    X, y = _data()
    path = tmp_path / "best.pbp"
    ckpt = bp.ModelCheckpoint(path, monitor="loss", save_best_only=True)
    m = _model()
    h = m.fit(X, y, epochs=5, callbacks=[ckpt], verbose=0)
    assert ckpt.best == min(h.history["loss"])
    loaded = bp.load(path)
    assert loaded._net.epoch_counter == int(np.argmin(h.history["loss"])) + 1


def test_model_checkpoint_formats_the_path(tmp_path):
    X, y = _data()
    ckpt = bp.ModelCheckpoint(str(tmp_path / "m-{epoch}-{loss:.3f}.pbp"))
    h = _model().fit(X, y, epochs=3, callbacks=[ckpt], verbose=0)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"m-{e}-{loss:.3f}.pbp" for e, loss in zip(h.epoch, h.history["loss"]))


def test_learning_rate_scheduler_sets_lr_per_epoch():
    X, y = _data()
    sched = bp.LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5 ** epoch)
    m = _model()
    h = m.fit(X, y, epochs=4, callbacks=[sched], verbose=0)
    assert h.history["lr"] == [0.1, 0.05, 0.025, 0.0125]
    assert m.optimizer.lr == 0.0125


def test_learning_rate_scheduler_keeps_optimizer_state():
    """Changing lr between epochs must not reset Adam's moments."""
    X, y = _data()
    a = _model(optimizer=bp.Adam(lr=0.01))
    b = _model(optimizer=bp.Adam(lr=0.01))
    a.fit(X, y, epochs=3, callbacks=[bp.LearningRateScheduler(lambda e, lr: lr)], verbose=0)
    b.fit(X, y, epochs=3, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_terminate_on_nan_stops_without_error():
    X, y = _data()
    stop = bp.TerminateOnNaN()
    m = _model(lr=1e6)
    with pytest.warns(bp.GradientFlowWarning):  # exploding, as intended here
        h = m.fit(X, y * 1e6, epochs=50, callbacks=[stop], verbose=0)
    assert stop.terminated and len(h.epoch) < 50
    assert all(np.isfinite(w).all() for w in m.get_weights())  # the diverging step was not applied


def test_divergence_error_without_terminate_on_nan():
    X, y = _data()
    m = _model(lr=1e6)
    with pytest.warns(bp.GradientFlowWarning), pytest.raises(bp.DivergenceError, match="diverged in epoch") as err:
        m.fit(X, y * 1e6, epochs=50, batch_size=8, shuffle=False, verbose=0)
    e = err.value
    assert e.history is m.history and len(e.history.epoch) == e.epoch
    assert all(np.isfinite(w).all() for w in m.get_weights())
    assert "clip_norm" in str(e)
    # The weights are those of the last finite step: replaying the steps before it reproduces them.
    replay = _model(lr=1e6)
    with pytest.warns(bp.GradientFlowWarning):
        replay.fit(X, y * 1e6, epochs=e.epoch, batch_size=8, shuffle=False, verbose=0)
    for s in range(e.step):
        replay.train_step(X[8 * s:8 * s + 8], y[8 * s:8 * s + 8] * 1e6)
    for w0, w1 in zip(replay.get_weights(), m.get_weights()):
        np.testing.assert_array_equal(w0, w1)


def test_train_step_divergence_leaves_the_model_unchanged():
    m = _model()
    before = m.get_weights()
    with pytest.raises(bp.DivergenceError):
        m.train_step(np.full((1, 4), 1e300), [1e300])
    for w0, w1 in zip(before, m.get_weights()):
        np.testing.assert_array_equal(w0, w1)
    assert m._net.step_counter == 0


def test_progress_bar_lines(capsys):
    X, y = _data()
    _model().fit(X, y, epochs=2, validation_data=(X, y), verbose=1)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("Epoch 1/2 [==========>         ] - loss: ") and "val_loss: " in lines[0]
    assert lines[1].startswith("Epoch 2/2 [====================] - loss: ") and "samples/s" in lines[1]
    _model().fit(X, y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_redraws_in_a_terminal():
    X, y = _data()
    out = FakeTerminal()
    bar = bp.ProgressBar(stream=out)
    stop = bp.EarlyStopping(monitor="loss", patience=0, min_delta=1e9)  # stops after 2 of 5 epochs
    _model().fit(X, y, epochs=5, callbacks=[bar, stop], verbose=0)
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    assert "Epoch 2/5 [========>           ]" in text


def test_callbacks_must_be_callbacks():
    X, y = _data()
    with pytest.raises(TypeError, match=r"callbacks\[0\]: expected a pybackprop.callbacks.Callback"):
        _model().fit(X, y, callbacks=[print], verbose=0)


def test_weight_decay_shrinks_weights():
    """L2 weight decay as overfitting control: same data, larger decay, smaller weights."""
    X, y = _data()
    norms = []
    for wd in (0.0, 0.1):
        m = _model(optimizer=bp.SGD(lr=0.05, weight_decay=wd))
        m.fit(X, y, epochs=30, verbose=0)
        norms.append(sum(float((w ** 2).sum()) for w in m.get_weights()))
    assert norms[1] < 0.8 * norms[0]
