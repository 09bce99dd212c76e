"""Save / load / pickle: one npz file, no pickle inside, atomic, exact resume."""
import copy
import io
import json
import pathlib
import pickle
import zipfile

import numpy as np
import pytest

import pybackprop as bp
from pybackprop.io import model_to_bytes


def _data(n=40):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 5))
    return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)


def _model(seed=0):
    m = bp.Sequential([bp.Dense(16, activation="relu"), bp.Dropout(keep_prob=0.8),
                       bp.Dense(3, activation="softmax")], input_dim=5, seed=seed)
    m.compile(loss="categorical_crossentropy", optimizer=bp.Adam(lr=0.01, clip_norm=5.0))
    return m


def _same(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_load_predicts_bitwise_and_resumes_exactly(tmp_path):
    X, y = _data()
    a = _model()
    a.fit(X, y, epochs=3, batch_size=8, verbose=0)
    path = tmp_path / "m.pbp"
    a.save(path)
    b = bp.load(path)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert b.get_config() == a.get_config()
    # Training on continues identically: Adam moments, step counters, shuffle and dropout streams.
    ha = a.fit(X, y, epochs=2, batch_size=8, verbose=0)
    hb = b.fit(X, y, epochs=2, batch_size=8, verbose=0)
    assert ha.history["loss"] == hb.history["loss"]
    _same(a, b)


def test_classic_dropout_scheduled_keep_prob_survives(tmp_path):
    X, y = _data()
    m = bp.Sequential([bp.Dense(8, activation="tanh"),
                       bp.Dropout(keep_prob=bp.schedules.Linear(1.0, 0.5, steps=4), scaling="classic"),
                       bp.Dense(3, activation="softmax")], input_dim=5, seed=1)
    m.compile(loss="categorical_crossentropy")
    m.fit(X, y, epochs=3, verbose=0)
    m.save(tmp_path / "m.pbp")
    np.testing.assert_array_equal(bp.load(tmp_path / "m.pbp").predict(X), m.predict(X))


def test_unbuilt_and_uncompiled_models(tmp_path):
    m = bp.Sequential([bp.Dense(2)], seed=5)
    m.save(tmp_path / "a.pbp")
    b = bp.load(tmp_path / "a.pbp")
    assert not b.built and b.get_config() == m.get_config()


def test_pickle_and_deepcopy():
    X, y = _data()
    a = _model()
    a.fit(X, y, epochs=1, verbose=0)
    for b in (pickle.loads(pickle.dumps(a)), copy.deepcopy(a)):
        np.testing.assert_array_equal(a.predict(X), b.predict(X))
        assert b.layers[0]._model is b
        b.fit(X, y, epochs=1, verbose=0)  # the copy trains on its own
    assert not np.array_equal(a.get_weights()[0], b.get_weights()[0])


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    X, y = _data()
    m = _model()
    path = tmp_path / "m.pbp"
    m.save(path)
    before = path.read_bytes()
    m.fit(X, y, epochs=1, verbose=0)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        m.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pbp"]  # no temporary file left behind


def _rewrite(path, mutate):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    mutate(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _header(arrays):
    return json.loads(arrays["header"].tobytes())


def _set_header(arrays, header):
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "cannot read it as an npz archive"),
    (lambda p: p.write_bytes(b"not a model"), "cannot read it as an npz archive"),
    (lambda p: _rewrite(p, lambda a: a.__setitem__("weight_0", a["weight_0"] + 1)), "checksum mismatch in 'weight_0'"),
    (lambda p: _rewrite(p, lambda a: a.pop("optimizer_exp_avg")), "do not match the header"),
    (lambda p: _rewrite(p, lambda a: _set_header(a, {**_header(a), "format_version": 99})), "format version 99"),
    (lambda p: _rewrite(p, lambda a: _set_header(a, {**_header(a), "format": "other"})), "format is not"),
    (lambda p: _rewrite(p, lambda a: a.__setitem__("header", np.frombuffer(b"{oops", np.uint8))), "not JSON"),
    (lambda p: _rewrite(p, lambda a: a.pop("header")), "no header"),
])
def test_damaged_files_raise_clear_errors(tmp_path, damage, message):
    path = tmp_path / "m.pbp"
    _model().save(path)
    damage(path)
    with pytest.raises(ValueError, match=message):
        bp.load(path)


def test_pickled_object_arrays_are_refused(tmp_path):
    """A file carrying a pickled object array is rejected without unpickling it."""
    path = tmp_path / "m.pbp"
    _model().save(path)
    _rewrite(path, lambda a: a.__setitem__("weight_0", np.array([object()], dtype=object)))
    with pytest.raises(ValueError, match="cannot read it as an npz archive"):
        bp.load(path)


def test_callable_schedule_cannot_be_saved(tmp_path):
    m = bp.Sequential([bp.Dense(1)], input_dim=2)
    m.compile(loss="mse", optimizer=bp.SGD(lr=lambda t: 0.1))
    with pytest.raises(ValueError, match="Python callable as a schedule"):
        m.save(tmp_path / "m.pbp")
    assert not (tmp_path / "m.pbp").exists()


def test_file_is_a_plain_npz():
    buf = io.BytesIO()
    from pybackprop.io import model_to_bytes

    buf.write(model_to_bytes(_model()))
    names = set(zipfile.ZipFile(buf).namelist())
    assert names >= {"header.npy", "weight_0.npy", "optimizer_exp_avg.npy", "optimizer_exp_avg_sq.npy"}


DATA = pathlib.Path(__file__).parent / "data"


@pytest.mark.parametrize("name, key", [("format1-adam-dropout", "adam"), ("format1-rmsprop", "rmsprop")])
def test_format_1_files_still_load_and_resume_exactly(name, key):
    """Files written by format 1 (optimiser state as optimizer_state1/2, main at 97e1f92) load, and
    training resumes exactly as the writing process went on (losses and weights stored beside them)."""
    X = np.random.default_rng(0).normal(size=(40, 5))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0) if key == "adam" else X[:, 0]
    model = bp.load(DATA / f"{name}.pbp")
    expected = np.load(DATA / "format1-expected.npz")
    hist = model.fit(X, y, epochs=2, batch_size=8, verbose=0)
    assert hist.history["loss"] == expected[f"{key}_loss"].tolist()
    np.testing.assert_array_equal(model.get_weights()[0], expected[f"{key}_w0"])
    buf = io.BytesIO(model_to_bytes(model))  # written again: format 2, named optimiser state
    header = json.loads(np.load(buf)["header"].tobytes())
    assert header["format_version"] == 2 and not any("state1" in k for k in header["sha256"])


def test_killed_writer_leaves_the_previous_file_loadable(tmp_path):
    """A process killed (SIGKILL) while it keeps saving leaves a loadable file behind."""
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "m.pbp"
    writer = (
        "import sys, numpy as np, pybackprop as bp\n"
        "m = bp.Sequential([bp.Dense(256, activation='relu'), bp.Dense(256), bp.Dense(1)], input_dim=64, seed=0)\n"
        "m.compile(loss='mse', optimizer=bp.Adam())\n"
        "m.save(sys.argv[1]); print('saved', flush=True)\n"
        "while True:\n"
        "    m.fit(np.ones((4, 64)), np.ones(4), epochs=1, verbose=0)\n"
        "    m.save(sys.argv[1])\n")
    with subprocess.Popen([sys.executable, "-c", writer, str(path)], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout.readline().strip() == "saved"
        time.sleep(0.5)  # many saves in flight
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    model = bp.load(path)  # whichever save completed last
    assert model.predict(np.ones((1, 64))).shape == (1, 1)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "m.pbp"]
    assert all(name.startswith(".pybackprop-") for name in leftovers)  # at most a temporary file
