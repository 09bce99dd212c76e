"""``solver="lbfgs"``: scikit-learn's full-batch L-BFGS-B over the core's loss and gradient.

scikit-learn's MLP (``_fit_lbfgs``) packs every weight matrix, then every bias vector, into one
vector and hands ``scipy.optimize.minimize(method="L-BFGS-B", jac=True)`` its objective, with
``options={"maxfun": max_fun, "maxiter": max_iter, "gtol": tol}`` (and ``iprint`` where scipy < 1.15
still takes it). :func:`fit_lbfgs` does the same, the objective being ONE core call per evaluation
(:meth:`pybackprop._engine.Engine.flat_loss_and_gradient`: the full-batch loss and the flat gradient,
in inference mode) plus NumPy on flat vectors for scikit-learn's units and its L2 term:

- objective ``loss_factor * core_loss + alpha / (2 n) * ||W||**2`` (weights only, not biases),
- gradient ``grad_factor * core_gradient + alpha / n * W``,

where the factors turn the core's mean losses into scikit-learn's (see ``_BaseMLP._lbfgs_factors``):
the regressor's ``squared_error / 2`` is half the core's ``mse``, and its gradient is what
scikit-learn's backward pass computes (``delta = prediction - y`` over ``n`` rows: for ``c`` outputs
``c`` times the gradient of its loss, kept so that both runs agree); a multilabel classifier's
log-loss sums over the ``k`` labels where the core's binary cross-entropy averages. With sample
weights ``n`` is their sum, as in scikit-learn.

Examples
--------
>>> import numpy as np, pybackprop as bp
>>> m = bp.Sequential([bp.Dense(1)], input_dim=2, dtype="float64", seed=0)
>>> m.compile(loss="mse", optimizer=bp.SGD())
>>> X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]); y = X @ [[2.0], [-1.0]] + 0.5
>>> run = fit_lbfgs(m, X, y, alpha=0.0, loss_factor=0.5, grad_factor=0.5, max_iter=100, max_fun=15000,
...                 tol=1e-10, verbose=False)
>>> np.round(m.get_weights()[0].ravel(), 6).tolist(), run.loss < 1e-12
([2.0, -1.0], True)
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import scipy  # type: ignore[import-untyped]
import scipy.optimize  # type: ignore[import-untyped]
from sklearn.exceptions import ConvergenceWarning  # type: ignore[import-untyped]

from ..model import Sequential


@dataclasses.dataclass(frozen=True)
class LbfgsRun:
    """What a run leaves: the final objective (scikit-learn's units), iterations, evaluations."""

    loss: float
    n_iter: int
    n_fun: int


def _iprint(verbose: Any) -> Dict[str, int]:
    # scikit-learn passes iprint only to scipy < 1.15, which still has it (sklearn.utils.fixes)
    major, minor = (int(v) for v in scipy.__version__.split(".")[:2])
    if (major, minor) >= (1, 15):
        return {}
    return {"iprint": 1 if verbose is True or verbose >= 1 else -1}


def pack(weights: List[np.ndarray]) -> np.ndarray:
    """``[W0, b0, W1, b1, ...]`` -> scikit-learn's flat vector: every W (row-major), then every b."""
    return np.concatenate([w.ravel() for w in weights[0::2]] + [b.ravel() for b in weights[1::2]]).astype(
        np.float64)


def unpack(theta: np.ndarray, like: List[np.ndarray]) -> List[np.ndarray]:
    """The inverse of :func:`pack`, shaped like ``like``."""
    out: List[np.ndarray] = [np.empty(0)] * len(like)
    start = 0
    for k in [*range(0, len(like), 2), *range(1, len(like), 2)]:
        end = start + like[k].size
        out[k] = theta[start:end].reshape(like[k].shape)
        start = end
    return out


def fit_lbfgs(model: Sequential, X: np.ndarray, Y: np.ndarray, *, alpha: float, loss_factor: float,
              grad_factor: float, max_iter: int, max_fun: int, tol: float, verbose: Any,
              loss: Optional[Callable[[np.ndarray, np.ndarray, Optional[np.ndarray]], float]] = None,
              sample_weight: Optional[np.ndarray] = None) -> LbfgsRun:
    """Minimise scikit-learn's objective over all of ``(X, Y)`` from the model's weights; the model
    keeps the result. ``ConvergenceWarning`` as scikit-learn's when L-BFGS-B stops for another
    reason than convergence; a non-finite result raises ``ValueError`` with the weights restored.

    ``sample_weight`` (checked, float64) makes the loss scikit-learn's weighted mean: the model's engine
    is set to the weight normalisation ``"weight_sum"`` (the core's loss and gradient are then
    ``sum(w * l) / sum(w)``, see :meth:`pybackprop._engine.Engine.set_weight_norm`) and the L2 term
    divides by ``sum(w)``.
    ``loss(outputs, Y, sample_weight)``, when given, replaces ``loss_factor * core_loss`` by a value computed from
    the pass's output activations (scikit-learn's log-losses clip the probabilities and take
    ``log(1 - p)``, which differ from the core's exact logit form where predictions are confident:
    L-BFGS-B's line search sees the very numbers scikit-learn's does)."""
    engine = model.engine
    Xc, Yc = engine.data(X, Y)
    positions = engine.arena_positions()  # per Dense layer (W, b): scikit-learn's order is every W, then every b
    if any(b is None for _, b in positions):
        raise ValueError("model: solver='lbfgs' expects a bias in every Dense layer")
    index = np.concatenate([w for w, _ in positions] + [b for _, b in positions if b is not None])
    n_w = sum(w.size for w, _ in positions)
    n = float(Xc.shape[0])
    core_w = None
    if sample_weight is not None:
        engine.set_weight_norm("weight_sum")
        core_w = np.ascontiguousarray(sample_weight, dtype=Xc.dtype)
        n = float(sample_weight.sum())
    initial = model.get_weights()

    def objective(theta: np.ndarray) -> Tuple[float, np.ndarray]:
        value, grad = engine.flat_loss_and_gradient(Xc, Yc, index, theta, core_w)
        value = value * loss_factor if loss is None else loss(engine.last_outputs(), Yc, sample_weight)
        w = theta[:n_w]
        grad *= grad_factor
        grad[:n_w] += (alpha / n) * w
        return value + (0.5 * alpha) * float(np.dot(w, w)) / n, grad

    res = scipy.optimize.minimize(objective, pack(initial), method="L-BFGS-B", jac=True,
                                  options={"maxfun": max_fun, "maxiter": max_iter, "gtol": tol,
                                           **_iprint(verbose)})
    if not np.isfinite(res.x).all():
        model.set_weights(initial)
        raise ValueError("Solver produced non-finite parameter weights. The input data may contain large "
                         "values and need to be preprocessed.")
    model.set_weights(unpack(res.x, initial))
    n_iter = min(int(res.nit), max_iter)
    if res.status != 0:
        msg = f"lbfgs failed to converge after {n_iter} iteration(s) (status={res.status}):\n{res.message}\n"
        if n_iter == max_iter:
            msg += f"\nIncrease the number of iterations to improve the convergence (max_iter={max_iter})."
        msg += ("\nYou might also want to scale the data as shown in:\n"
                "    https://scikit-learn.org/stable/modules/preprocessing.html")
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    return LbfgsRun(float(res.fun), n_iter, int(res.nfev))
