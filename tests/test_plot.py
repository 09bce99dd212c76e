"""pybackprop.plot: figures of a History and of gradient flow, saved as PNG."""
import builtins
import importlib

import numpy as np
import pytest

import pybackprop as bp

pytest.importorskip("matplotlib")
from pybackprop import plot  # noqa: E402


def _history():
    m = bp.Sequential([bp.Dense(8, activation="tanh"), bp.Dropout(keep_prob=bp.schedules.Linear(1.0, 0.6, 4)),
                       bp.Dense(1)], input_dim=3, seed=0)
    m.compile(loss="mse", optimizer=bp.SGD(lr=bp.schedules.Exponential(0.1, 0.8)))
    X = np.random.default_rng(0).normal(size=(64, 3))
    return m.fit(X, X.sum(axis=1), epochs=5, validation_split=0.25, verbose=0)


def test_history_plot(tmp_path):
    h = _history()
    path = tmp_path / "h.png"
    fig = plot.history(h, path=str(path))
    assert path.stat().st_size > 1000
    ax, ax2 = fig.axes  # loss axis and the lr / keep_prob axis
    assert [line.get_label() for line in ax.get_lines()] == ["loss", "val_loss"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), h.history["loss"])
    assert [line.get_label() for line in ax2.get_lines()] == ["lr", "keep_prob"]


def test_gradient_flow_plot(tmp_path):
    h = _history()
    fig = plot.gradient_flow(h.history["grad_norm"], labels=["first", "last"], path=str(tmp_path / "g.png"))
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["first", "last"]
    np.testing.assert_allclose(lines[1].get_ydata(), [g[1] for g in h.history["grad_norm"]])
    assert fig.axes[0].get_yscale() == "log"


def test_clear_error_without_matplotlib(monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    fresh = importlib.reload(plot)
    with pytest.raises(ImportError, match=r"pip install 'pybackprop\[plot\]'"):
        fresh.history(_history())
