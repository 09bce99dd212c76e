"""Plots of training (needs matplotlib: ``pip install "pybackprop[plot]"``).

>>> import numpy as np, pybackprop as bp
>>> m = bp.Sequential([bp.Dense(4, activation="tanh"), bp.Dense(1)], input_dim=2, seed=0)
>>> m.compile(loss="mse")
>>> h = m.fit(np.ones((8, 2)), np.ones(8), epochs=3, validation_split=0.25, verbose=0)
>>> fig = bp.plot.history(h)            # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Optional, Sequence


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("pybackprop.plot needs matplotlib: pip install 'pybackprop[plot]'") from e
    return plt


def history(hist: Any, path: Optional[str] = None, title: str = "training") -> Any:
    """Loss and val_loss per epoch (log scale), with lr and keep_prob on a second axis.

    Parameters
    ----------
    hist : History
        What ``fit`` returned.
    path : str, optional
        Save the figure there (PNG).

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    h = hist.history
    epochs = list(hist.epoch)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(epochs, h["loss"], label="loss")
    if "val_loss" in h:
        ax.plot(epochs, h["val_loss"], label="val_loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    lines, labels = ax.get_legend_handles_labels()
    extra = [(k, h[k]) for k in ("lr", "keep_prob") if k in h and len({str(v) for v in h[k]}) > 1]
    if extra:
        ax2 = ax.twinx()
        for key, values in extra:
            ax2.plot(epochs, values, linestyle=":", label=key)
        ax2.set_ylabel(" / ".join(k for k, _ in extra))
        more_lines, more_labels = ax2.get_legend_handles_labels()
        lines, labels = lines + more_lines, labels + more_labels
    ax.legend(lines, labels)
    ax.set_title(title)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=100)
    return fig


def gradient_flow(grad_norms: Sequence[Sequence[float]], labels: Optional[Sequence[str]] = None,
                  path: Optional[str] = None, title: str = "gradient flow") -> Any:
    """Per-layer gradient norms over epochs (log scale), one line per layer.

    Parameters
    ----------
    grad_norms : list of per-layer lists
        ``history.history["grad_norm"]``.
    labels : list of str, optional
        Layer names.
    path : str, optional
        Save the figure there (PNG).
    """
    plt = _pyplot()
    import numpy as np

    g = np.asarray(grad_norms, dtype=float)
    fig, ax = plt.subplots(figsize=(7, 4))
    for layer in range(g.shape[1]):
        ax.plot(g[:, layer], label=labels[layer] if labels else f"layer {layer + 1}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("gradient L2 norm")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=100)
    return fig
