"""Gradient diagnostics: gradient checking and gradient flow.

``gradient_check`` compares the core's analytic gradients with central finite
differences, in float64 even for a float32 model (in float32 a finite
difference loses about half of its digits: a classic trap). ``gradient_flow``
reports, for one batch, each layer's gradient and weight norms and the share of
dead ReLU and saturated sigmoid/tanh units; ``fit`` records the same per epoch
in its History and warns when the first layer's gradient vanishes or explodes
relative to the last layer's.

Thresholds for the relative error of ``gradient_check`` (float64, eps 1e-6):
below 1e-6 the gradient is right; up to 1e-4 is fine near kinks (ReLU at 0,
MAE, Huber) or for gradients near zero; above 1e-4 something is wrong.

>>> import numpy as np, pybackprop as bp
>>> m = bp.Sequential([bp.Dense(5, activation="tanh"), bp.Dense(1)], input_dim=3, seed=0)
>>> m.compile(loss="mse")
>>> X = np.random.default_rng(0).normal(size=(8, 3)); y = X.sum(axis=1)
>>> bool(bp.gradient_check(m, X, y)["max_rel_error"] < 1e-7)
True
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

import numpy as np

from ._history import History
from ._validation import check_float, check_int
from .layers import Dense
from .reference.numeric import numeric_gradient

if TYPE_CHECKING:  # pragma: no cover
    from .model import Sequential

#: relative-error thresholds documented above
GOOD, ACCEPTABLE = 1e-6, 1e-4


def _float64_twin(model: "Sequential") -> "Sequential":
    """The model in float64: same config, weights, counters and keep probabilities (fresh optimiser state)."""
    from .model import Sequential

    cfg = model.get_config()
    cfg["dtype"] = "float64"
    twin = Sequential.from_config(cfg)
    state = model.engine.state()
    state.optimizer = {}  # not needed for a loss, and its arenas' padding depends on the dtype
    twin.engine.load_state(state)
    return twin


def gradient_check(model: "Sequential", X: Any, y: Any, eps: float = 1e-6, training: bool = False,
                   max_checks_per_layer: Optional[int] = 200, seed: int = 0) -> Dict[str, Any]:
    """Relative error of the analytic gradient against central differences, per layer.

    The check runs on a float64 copy of the model (the model is not changed).
    With ``training=True`` Dropout masks are drawn once and the same masks are
    used for the analytic gradient and for every perturbed loss.

    Parameters
    ----------
    model : Sequential
        A compiled, built model.
    X, y : arrays
        One batch.
    eps : float
        Perturbation of each checked weight.
    training : bool
        Check the training-mode loss (dropout, noise) instead of inference mode.
    max_checks_per_layer : int or None
        Check at most this many randomly chosen entries of each W and b (None: all).
    seed : int
        Chooses the checked entries.

    Returns
    -------
    dict
        ``"max_rel_error"``, and ``"layers"``: one dict per Dense layer with
        ``"W"`` (and ``"b"``; ``"gamma"``, ``"beta"`` of an affine BatchNorm or
        LayerNorm in front of it) max relative errors and ``"checked"`` counts.
    """
    eps = check_float("eps", eps, minimum=0.0, min_inclusive=False)
    if max_checks_per_layer is not None:
        max_checks_per_layer = check_int("max_checks_per_layer", max_checks_per_layer, minimum=1)
    Xc, Yc = model.engine.data(X, y)
    twin = _float64_twin(model)
    Xd, Yd = Xc.astype(np.float64), Yc.astype(np.float64)
    masks = None
    if training and twin.engine.dropouts:
        _, _, masks = twin.loss_and_gradients(Xd, Yd, training=True, return_masks=True)
    _, grads = twin.loss_and_gradients(Xd, Yd, training=training, masks=masks)
    rng = np.random.default_rng(seed)

    def loss_at() -> float:
        return float(twin.loss_and_gradients(Xd, Yd, training=training, masks=masks)[0])

    report: List[Dict[str, Any]] = []
    worst = 0.0
    dense_grads = [g for g, layer in zip(grads, twin.layers) if isinstance(layer, Dense)]
    norm_grads: Dict[int, Dict[str, np.ndarray]] = {}  # by the Dense layer whose input it normalises
    seen = 0
    for g, layer in zip(grads, twin.layers):
        seen += isinstance(layer, Dense)
        if g and not isinstance(layer, Dense):  # an affine BatchNorm or LayerNorm: dγ, dβ
            norm_grads[seen] = g
    for d, g in enumerate(dense_grads):
        entry: Dict[str, Any] = {"checked": 0}
        ng = norm_grads.get(d, {})
        checks = [("W", twin.engine.W(d), g), ("b", twin.engine.b(d), g)]
        if ng:
            checks += [("gamma", twin.engine.norm_view(d, "gamma"), {"gamma": ng["weight"]}),
                       ("beta", twin.engine.norm_view(d, "beta"), {"beta": ng["bias"]})]
        for key, param, source in checks:
            if param is None:
                continue
            idx = np.arange(param.size)
            if max_checks_per_layer is not None and param.size > max_checks_per_layer:
                idx = rng.choice(param.size, size=max_checks_per_layer, replace=False)
            numeric = numeric_gradient(loss_at, param, eps, idx).reshape(-1)[idx]
            analytic = source[key].reshape(-1)[idx]
            denom = np.maximum(np.abs(numeric) + np.abs(analytic), 1e-12)
            err = float(np.max(np.abs(numeric - analytic) / denom)) if idx.size else 0.0
            entry[key] = err
            entry["checked"] += len(idx)
            worst = max(worst, err)
        report.append(entry)
    return {"max_rel_error": float(worst), "layers": report, "eps": eps}


def gradient_flow(model: "Sequential", X: Any, y: Any, training: bool = False) -> Dict[str, Any]:
    """Per-layer gradient-flow diagnostics of one batch, from the C++ core.

    Returns
    -------
    dict
        Lists with one value per Dense layer: ``"grad_norm"``, ``"weight_norm"``,
        ``"relative_grad"`` (grad norm over the last layer's), ``"dead_fraction"``
        (ReLU-like layers: units with z <= 0 for every sample), ``"saturated_fraction"``
        (sigmoid/tanh outputs beyond 0.01 / 0.99), ``"nonfinite"``.

    Examples
    --------
    >>> import numpy as np, pybackprop as bp
    >>> deep = bp.Sequential([bp.Dense(16, activation="sigmoid") for _ in range(10)] + [bp.Dense(1)],
    ...                      input_dim=4, seed=0)
    >>> deep.compile(loss="mse")
    >>> X = np.random.default_rng(0).normal(size=(32, 4))
    >>> flow = bp.diagnostics.gradient_flow(deep, X, X.sum(axis=1))
    >>> bool(flow["relative_grad"][0] < 1e-4)    # vanishing: the first layer barely learns
    True
    """
    model.loss_and_gradients(X, y, training=training)
    health = dict(model.engine.net.batch_health())
    last = health["grad_norm"][-1]
    health["relative_grad"] = [g / last if last else float("nan") for g in health["grad_norm"]]
    del health["update_ratio"]  # a property of training over time, not of one batch
    return health




def _regression_data(n: int, features: int, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features))
    return X, np.tanh(X[:, 0] - 0.5 * X[:, 1]) + 0.3 * X[:, 2] * X[:, 3]


def vanishing_comparison(depth: int = 12, width: int = 32, epochs: int = 20,
                         activations: Sequence[str] = ("sigmoid", "tanh", "relu", "leaky_relu"),
                         seed: int = 0) -> List[Dict[str, Any]]:
    """Vanishing gradients shown: the same deep net with different activations.

    Each row: the activation, the first layer's gradient norm relative to the
    last layer's (in the first epoch), the loss before and after ``epochs``
    epochs of SGD, and the per-layer gradient norms of the first epoch.

    >>> rows = vanishing_comparison(depth=10, epochs=2, activations=("sigmoid", "relu"))
    >>> bool(rows[0]["relative_grad"] < 1e-3 < rows[1]["relative_grad"])
    True
    """
    from .model import Sequential
    from .optimizers import SGD

    depth = check_int("depth", depth, minimum=2)
    X, y = _regression_data(512, 8, seed)
    rows = []
    for act in activations:
        init = "he_normal" if "relu" in act else "glorot_uniform"
        model = Sequential([Dense(width, activation=act, init=init) for _ in range(depth - 1)] + [Dense(1)],
                           input_dim=X.shape[1], seed=seed)
        model.compile(loss="mse", optimizer=SGD(lr=0.01, momentum=0.9))
        before = model.evaluate(X, y)
        with warnings.catch_warnings():  # the vanishing case warns: here it is the point
            warnings.simplefilter("ignore")
            hist = model.fit(X, y, epochs=epochs, batch_size=32, verbose=0)
        first = hist.history["grad_norm"][0]
        rows.append({"activation": act, "depth": depth, "relative_grad": first[0] / first[-1],
                     "loss_before": before, "loss_after": hist.history["loss"][-1], "grad_norm": first})
    return rows


def exploding_comparison(depth: int = 8, width: int = 32, init_scale: float = 2.0, epochs: int = 20,
                         clip_norm: float = 1.0, seed: int = 0) -> List[Dict[str, Any]]:
    """Exploding gradients shown: a deep ReLU net with too large an init, without and with ``clip_norm``.

    Each row: ``clip_norm``, the loss before and after (the NaN/inf loss where
    training diverged), the first layer's gradient norm in the first epoch
    (before clipping; NaN if it diverged then), and ``diverged``: None or
    (epoch, step) of the :class:`~pybackprop.DivergenceError`.

    >>> rows = exploding_comparison(epochs=3)
    >>> rows[0]["diverged"], rows[1]["diverged"], bool(rows[1]["loss_after"] < rows[1]["loss_before"])
    ((0, 1), None, True)
    """
    from .model import DivergenceError, Sequential
    from .optimizers import SGD

    X, y = _regression_data(512, 8, seed)
    rng = np.random.default_rng(seed)
    fans = [X.shape[1]] + [width] * (depth - 1) + [1]
    inits = [rng.normal(0, init_scale * np.sqrt(2.0 / fans[i]), size=(fans[i], fans[i + 1]))
             for i in range(depth)]
    rows = []
    for clip in (None, clip_norm):
        layers = [Dense(width, activation="relu", init=w) for w in inits[:-1]] + [Dense(1, init=inits[-1])]
        model = Sequential(layers, input_dim=X.shape[1], seed=seed)
        model.compile(loss="mse", optimizer=SGD(lr=0.01, clip_norm=clip))
        before = model.evaluate(X, y)
        diverged = None
        with warnings.catch_warnings():  # fit warns of exploding gradients: here it is the point
            warnings.simplefilter("ignore")
            hist: Optional[History]
            try:
                hist = model.fit(X, y, epochs=epochs, batch_size=32, verbose=0)
            except DivergenceError as e:
                diverged, hist = e, e.history
        h = hist.history if hist is not None else {}
        rows.append({"clip_norm": clip, "loss_before": before,
                     "loss_after": diverged.loss if diverged else h["loss"][-1],
                     "first_grad_norm": h["grad_norm"][0][0] if h.get("grad_norm") else float("nan"),
                     "diverged": None if diverged is None else (diverged.epoch, diverged.step)})
    return rows
