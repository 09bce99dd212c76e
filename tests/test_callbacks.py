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
    # Keras's count (a behaviour change: this was best + patience + 2): the best epoch, then
    # patience epochs without improvement
    assert len(h.epoch) == best + 1 + stop.patience
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


# ---------------------------------------------------------------------- Keras's traces, by hand
class Feed(bp.Callback):
    """Puts values[i] into the logs of the i-th epoch of each fit (before the callbacks after it),
    and records the weights at the end of each epoch."""

    def __init__(self, values, key="val_loss"):
        self.values, self.key, self.weights = list(values), key, []

    def on_train_begin(self, logs=None):
        self.i = 0

    def on_epoch_end(self, epoch, logs):
        logs[self.key] = float(self.values[self.i])
        self.i += 1
        self.weights.append(self.model.get_weights())


def _fed(values, callback, key="val_loss", epochs=None, model=None):
    X, y = _data(20)
    feed = Feed(values, key)
    m = model or _model()
    h = m.fit(X, y, epochs=epochs or len(values), batch_size=10, callbacks=[feed, callback], verbose=0)
    return h, feed, m


@pytest.mark.parametrize("values, kw, epochs_run, best", [
    ([1.0, 1.1, 1.2, 1.3, 1.4], dict(patience=2), 3, 0),  # the case: best first, patience 2
    ([1.0, 2.0, 3.0], dict(patience=0), 2, 0),
    ([1.0, 2.0, 3.0], dict(patience=1), 2, 0),  # 0 and 1 alike, as Keras's
    ([5, 4, 4.5, 3, 3.5, 3.6, 3.7, 1], dict(patience=2), 6, 3),  # an improvement resets the count
    ([5, 4.6, 4.4, 4.0, 3.95, 1], dict(patience=2, min_delta=0.5), 5, 2),  # 4.6 and 4.0 are within min_delta
    ([5, 4, 3, 2.5, 1.5, 1.6, 1.7, 1.8, 0], dict(patience=2, baseline=2.0), 7, 4),  # no reset above baseline
    ([5, 5.1, 5.2, 5.3], dict(patience=2, baseline=2.0), 2, 0),  # never beats the baseline: patience epochs
    ([1, 2, 3, 4, 5, 6, 7], dict(patience=1, start_from_epoch=3), 5, 3),  # epochs 0-2 not monitored
    ([0.5, 0.6, 0.55, 0.7, 0.69, 0.68, 0.9], dict(patience=2, mode="max"), 6, 3),
])
def test_early_stopping_follows_keras_trace(values, kw, epochs_run, best):
    stop = bp.EarlyStopping(monitor="val_loss", restore_best_weights=True, **kw)
    h, feed, m = _fed(values, stop)
    assert len(h.epoch) == epochs_run
    assert stop.stopped_epoch == (epochs_run - 1 if epochs_run < len(values) else None)
    assert stop.best_epoch == best and stop.best == float(values[best])
    for got, want in zip(m.get_weights(), feed.weights[best]):  # restored from the best epoch
        np.testing.assert_array_equal(got, want)


def test_early_stopping_auto_mode_and_a_second_fit():
    assert bp.EarlyStopping(monitor="val_accuracy")._higher and bp.EarlyStopping(monitor="r2")._higher
    assert not bp.EarlyStopping(monitor="val_mae")._higher
    with pytest.raises(ValueError, match="mode: expected 'min' or 'max' for monitor='grad_thing'"):
        bp.EarlyStopping(monitor="grad_thing")
    assert bp.EarlyStopping(monitor="grad_thing", mode="max")._higher
    for bad, exc in [(dict(mode="up"), ValueError), (dict(patience=-1), ValueError), (dict(baseline="x"), TypeError),
                     (dict(start_from_epoch=1.5), TypeError), (dict(restore_best_weights=1), TypeError)]:
        with pytest.raises(exc, match=next(iter(bad))):
            bp.EarlyStopping(**bad)
    # each fit starts over, its epochs counted from its own first (the model's epoch numbers go on)
    stop = bp.EarlyStopping(monitor="val_loss", patience=1)
    m = _model()
    h1, _, _ = _fed([1.0, 2.0, 3.0], stop, model=m)
    h2, _, _ = _fed([1.0, 2.0, 3.0], stop, model=m)
    assert h1.epoch == [0, 1] and h2.epoch == [2, 3] and stop.stopped_epoch == 3


def test_early_stopping_verbose_says_so(capsys):
    _fed([1.0, 2.0, 3.0], bp.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True, verbose=1))
    assert capsys.readouterr().out.splitlines() == ["Epoch 1: early stopping",
                                                    "Restoring model weights from the end of the best epoch: 0."]


def test_reduce_lr_on_plateau_follows_keras_trace():
    """Hand-simulated Keras 3 ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.01):
    e0 best, e1 best, e2 wait 1, e3 wait 2 -> 0.05 (cooldown 1), e4 cooldown over, wait 1, e5 wait 2 ->
    0.025, e6 wait 1, e7 -> 0.0125, e8 best, e9 wait 1, e10 -> max(0.00625, 0.01) = 0.01, e11 wait 1,
    e12-e13 at min_lr: no change."""
    seq = [1.0, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99, 1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    plateau = bp.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, cooldown=1, min_lr=0.01)
    m = _model(optimizer=bp.Adam(lr=0.1))
    h, _, _ = _fed(seq, plateau, model=m)
    lr = [0.1] * 4 + [0.1 * 0.5] * 2 + [0.1 * 0.5 * 0.5] * 2 + [0.1 * 0.5 * 0.5 * 0.5] * 3 + [0.01] * 3
    assert h.history["lr"] == lr
    assert m.optimizer.lr == 0.01 and plateau.best == 0.5 and plateau.wait == 3
    # the optimiser's state is kept: the same lr per epoch from LearningRateScheduler gives the same weights
    twin = _model(optimizer=bp.Adam(lr=0.1))
    X, y = _data(20)
    twin.fit(X, y, epochs=len(seq), batch_size=10, verbose=0,
             callbacks=[bp.LearningRateScheduler(lambda epoch, _: lr[epoch])])
    for a, b in zip(m.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_reduce_lr_on_plateau_max_mode_and_bad_input(capsys):
    plateau = bp.ReduceLROnPlateau(monitor="val_acc", factor=0.1, patience=1, verbose=1)  # "acc": max mode
    h, _, _ = _fed([0.5, 0.6, 0.55, 0.7], plateau, key="val_acc")
    assert h.history["lr"] == [0.05, 0.05, 0.05, 0.05 * 0.1]
    assert capsys.readouterr().out.strip() == f"Epoch 2: ReduceLROnPlateau reducing learning rate to {0.05 * 0.1}."
    for bad, exc in [(dict(factor=1.0), ValueError), (dict(factor=0), ValueError), (dict(patience=-1), ValueError),
                     (dict(cooldown=0.5), TypeError), (dict(min_lr=-1), ValueError), (dict(mode="down"), ValueError),
                     (dict(min_delta=-1e-4), ValueError), (dict(monitor=3), TypeError)]:
        with pytest.raises(exc, match=next(iter(bad))):
            bp.ReduceLROnPlateau(**bad)
    X, y = _data(20)
    m = _model(optimizer=bp.SGD(lr=bp.schedules.Cosine(0.1, T_max=5)))
    before = m.get_weights()
    with pytest.raises(ValueError, match="optimizer lr \\(ReduceLROnPlateau\\): expected a number, not a schedule"):
        m.fit(X, y, epochs=2, callbacks=[bp.ReduceLROnPlateau(monitor="loss")], verbose=0)
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="monitor 'val_loss' is not in the epoch logs"):
        _model().fit(X, y, epochs=1, callbacks=[bp.ReduceLROnPlateau()], verbose=0)


class ExtraOnce(bp.Callback):
    def on_epoch_end(self, epoch, logs):
        if epoch == 0:
            logs["note"] = None
        elif epoch == 1:
            logs.pop("val_loss")


def test_csv_logger_writes_keras_columns_and_reads_back(tmp_path):
    import csv

    path = tmp_path / "log.csv"
    X, y = _data(20)
    m = bp.Sequential([bp.Dense(4, activation="tanh"), bp.Dropout(keep_prob=0.8), bp.Dense(1)], input_dim=4,
                      dtype="float64", seed=0)
    m.compile(loss="mse", optimizer=bp.SGD(lr=0.05))
    h = m.fit(X, y, epochs=3, batch_size=10, validation_data=(X, y), verbose=0,
              callbacks=[ExtraOnce(), bp.CSVLogger(path, separator=";")])
    text = path.read_text()
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    header = text.splitlines()[0].split(";")
    assert header[0] == "epoch" and header[1:] == sorted(header[1:])  # the keys sorted, lists expanded in place
    assert header[1:5] == ["dead_fraction_0", "dead_fraction_1", "grad_norm_0", "grad_norm_1"]
    assert "keep_prob_0" in header and "note" in header and "grad_norm" not in header
    assert [int(r["epoch"]) for r in rows] == h.epoch
    for r, e in zip(rows, range(3)):
        assert float(r["loss"]) == h.history["loss"][e]  # repr: exact round trip
        assert [float(r["grad_norm_0"]), float(r["grad_norm_1"])] == h.history["grad_norm"][e]
        assert r["nonfinite_0"] == "False"
    assert rows[0]["note"] == "" and rows[1]["note"] == "NA"  # None; missing later
    assert rows[1]["val_loss"] == "NA" and float(rows[2]["val_loss"]) == h.history["val_loss"][2]
    # append: rows go on under the one header
    m.fit(X, y, epochs=2, batch_size=10, verbose=0, validation_data=(X, y),
          callbacks=[ExtraOnce(), bp.CSVLogger(path, separator=";", append=True)])
    lines = path.read_text().splitlines()
    assert len(lines) == 1 + 5 and [ln.split(";")[0] for ln in lines[1:]] == ["0", "1", "2", "3", "4"]
    # overwrite by default
    m.fit(X, y, epochs=1, batch_size=10, verbose=0, callbacks=[bp.CSVLogger(path)])
    assert len(path.read_text().splitlines()) == 2


def test_csv_logger_bad_input(tmp_path):
    with pytest.raises(TypeError, match="filename"):
        bp.CSVLogger(3)
    with pytest.raises(ValueError, match="separator: expected a one-character string"):
        bp.CSVLogger(tmp_path / "a.csv", separator=";;")
    with pytest.raises(TypeError, match="append"):
        bp.CSVLogger(tmp_path / "a.csv", append="yes")
    X, y = _data(20)
    m = _model()
    before = m.get_weights()
    with pytest.raises(ValueError, match="filename: expected a writable file path"):
        m.fit(X, y, epochs=1, verbose=0, callbacks=[bp.CSVLogger(tmp_path / "missing" / "a.csv")])
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert bp.CSVLogger.root_only


def test_reduce_lr_on_plateau_knows_that_r2_rises():
    """mode="auto" takes the direction of a known metric (as EarlyStopping): a rising r2 is no plateau."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    m = bp.Sequential([bp.Dense(4, activation="tanh"), bp.Dense(1)], input_dim=3, seed=0)
    m.compile("mse", bp.Adam(lr=0.05), metrics=["r2"])
    plateau = bp.ReduceLROnPlateau(monitor="r2", factor=0.5, patience=1)
    h = m.fit(X, X.sum(axis=1), epochs=4, verbose=0, callbacks=[plateau])
    r2 = h.history["r2"]
    assert all(b > a for a, b in zip(r2, r2[1:])), r2  # it rose every epoch ...
    assert m.optimizer.lr == 0.05  # ... so the lr was never reduced
    assert plateau._higher and not bp.ReduceLROnPlateau(monitor="val_loss")._higher
