"""The regressor: squared error, one identity output per target column."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
from sklearn.utils.metaestimators import available_if  # type: ignore[import-untyped]
from sklearn.base import RegressorMixin  # type: ignore[import-untyped]
from sklearn.metrics import r2_score  # type: ignore[import-untyped]

from ._base import _BaseMLP


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor (squared error), trained by pybackprop's C++ core.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=(100,)
        Units of each hidden layer; ``()`` gives a linear model.
    activation : str, default="relu"
        Of the hidden layers: sklearn's ``"identity"``, ``"logistic"``, ``"tanh"``,
        ``"relu"``, or any pybackprop activation (``"leaky_relu"``, ``"elu"``,
        ``"gelu"``, ``"softplus"``, ``"sigmoid"``, ...).
    solver : {"adam", "sgd", "lbfgs", "rmsprop", "adagrad"}, default="adam"
        ``"lbfgs"``: scikit-learn's full-batch L-BFGS-B (scipy), see the package docstring.
    alpha : float, default=0.0001
        L2 penalty, scaled as scikit-learn's (see the module docstring).
    batch_size : int or "auto", default="auto"
        ``"auto"`` is ``min(200, n_samples)`` (not used by ``"lbfgs"``).
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        For ``"sgd"``: constant, ``learning_rate_init / (t_ + 1) ** power_t`` after each epoch,
        or divided by 5 where the ``tol`` rule would stop (as scikit-learn's).
    learning_rate_init : float, default=0.001
    power_t : float, default=0.5
        Exponent of ``"invscaling"``.
    max_iter : int, default=200
        Maximum number of epochs (of iterations for ``"lbfgs"``).
    shuffle : bool, default=True
        Reshuffle the samples every epoch.
    random_state : int, RandomState or None, default=None
        Seeds initial weights, shuffling, dropout and the validation split.
    tol : float, default=1e-4
        Improvement of the loss (scikit-learn's units) or validation score below which an epoch
        counts as none; the projected-gradient tolerance (``gtol``) of ``"lbfgs"``.
    verbose : bool or int, default=False
        Print the loss of every epoch.
    warm_start : bool, default=False
        Continue from the previous fit's weights.
    momentum : float, default=0.9
        For ``"sgd"`` (and ``"rmsprop"``).
    nesterovs_momentum : bool, default=True
        For ``"sgd"`` with momentum > 0.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data, stop when its R² has not
        improved by ``tol`` for ``n_iter_no_change`` epochs, keep the best weights.
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float
        Adam's moment decay rates and denominator term.
    n_iter_no_change : int, default=10
    max_fun : int, default=15000
        Maximum number of loss evaluations of ``"lbfgs"``.
    dropout_keep_prob : float, default=1.0
        Probability p of KEEPING a hidden unit (a Dropout after every hidden
        layer when p < 1; inverted scaling, so nothing changes at inference).
    dtype : {"float32", "float64"}, default="float32"
        Precision of the weights and the arithmetic.

    The parameters are checked when ``fit`` or ``partial_fit`` starts (``__init__``
    and ``set_params`` only store them): a bad one raises
    :class:`~pybackprop.sklearn.InvalidParameterError`, which is both a
    ``ValueError`` and a ``TypeError`` (as scikit-learn's own), so either
    ``except`` clause catches it.

    Attributes
    ----------
    model_ : pybackprop.Sequential
        The trained network (``model_.explain``, ``model_.save`` ...).
    loss_curve_ : list of float
        Mean training loss (MSE) of every epoch, plus the L2 term (not with ``"lbfgs"``).
    loss_ : float
        The last epoch's loss (``"lbfgs"``: its final objective), in the same units.
    best_loss_ : float or None
        Lowest training loss (None with early stopping).
    validation_scores_ : list of float
        R² on the held-out set after every epoch (early stopping only).
    best_validation_score_ : float
        Best of ``validation_scores_`` (early stopping only).
    n_iter_ : int
        Epochs run.
    t_ : int
        Training samples seen.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        When fitted on a DataFrame with string column names.
    n_outputs_ : int
    coefs_, intercepts_ : list of ndarray
        Weights and biases per layer (copies).

    Examples
    --------
    >>> import numpy as np
    >>> from pybackprop.sklearn import MLPRegressor
    >>> X = np.random.default_rng(0).normal(size=(300, 2)); y = X[:, 0] - 2 * X[:, 1]
    >>> reg = MLPRegressor(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.95
    True
    >>> lbfgs = MLPRegressor(hidden_layer_sizes=(16,), solver="lbfgs", random_state=0).fit(X, y)
    >>> lbfgs.score(X, y) > 0.99, hasattr(lbfgs, "loss_curve_")
    (True, False)
    >>> w = np.where(X[:, 0] > 0, 3.0, 1.0)   # batches of 32, each divided by its weights' sum
    >>> sgd = MLPRegressor(hidden_layer_sizes=(16,), solver="sgd", batch_size=32, random_state=0)
    >>> sgd.fit(X, y, sample_weight=w).score(X, y, sample_weight=w) > 0.9
    True
    """

    _loss_scale = 2.0

    def _grad_scale(self, n_outputs: int) -> float:
        # sklearn's loss is squared_error / 2 averaged over the outputs (half the core's mse), but
        # its gradient is delta = prediction - y over the rows, not divided by the outputs: the core's
        # mse gradient, 2 (prediction - y) / (rows * n_outputs), is 2 / n_outputs times sklearn's
        return 2.0 / n_outputs

    def _lbfgs_factors(self, n_outputs: int) -> Tuple[float, float]:
        # sklearn's squared_error / 2 is half the core's mse; its gradient (delta = prediction - y
        # over the rows) is n_outputs times its loss's, and the core's mse gradient is 2 / n_outputs of that
        return 0.5, 0.5 * n_outputs

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "MLPRegressor":
        """Train on ``(X, y)`` for up to ``max_iter`` epochs (``max_iter`` L-BFGS iterations with
        ``solver="lbfgs"``), each sample's loss weighted by ``sample_weight`` when given (finite,
        >= 0, not all zero): as in scikit-learn, each mini-batch's loss, gradient and L2 term are
        divided by that batch's weights' sum (see the package docstring); returns ``self``."""
        p = self._validate_params()
        new = not (p["warm_start"] and hasattr(self, "model_"))
        X, y, sw = self._fit_args(X, y, sample_weight, p, reset=new, y_numeric=True)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if not new and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y: expected {self.n_outputs_} outputs (warm_start continues the previous fit), "
                             f"got {Y.shape[1]}")
        self._train(X, Y, Y, p, incremental=False, new_model=new, n_outputs=Y.shape[1],
                    out_activation="identity", loss="mse", sample_weight=sw)
        return self

    @available_if(_BaseMLP._check_solver)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> "MLPRegressor":
        """One epoch over ``(X, y)`` (weighted by ``sample_weight``, each mini-batch divided by its
        weights' sum, as :meth:`fit`), continuing from the current weights; returns ``self``. Not
        with ``solver="lbfgs"`` (as scikit-learn's)."""
        p = self._validate_params()
        new = not hasattr(self, "model_")
        X, y, sw = self._fit_args(X, y, sample_weight, p, reset=new, y_numeric=True)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if not new and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y: expected {self.n_outputs_} outputs, as in the earlier calls, got {Y.shape[1]}")
        self._train(X, Y, Y, p, incremental=True, new_model=new, n_outputs=Y.shape[1],
                    out_activation="identity", loss="mse", sample_weight=sw)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions, shape ``(n_samples,)`` for one output, else ``(n_samples, n_outputs)``."""
        out = self._outputs(X)
        return out.ravel() if out.shape[1] == 1 else out

    def _validation_score(self, X: np.ndarray, y: Any, sample_weight: Optional[np.ndarray] = None) -> float:
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging net scores -inf, not a warning
            score = float(r2_score(y, np.asarray(self.model_.predict(X), dtype=np.float64),
                                   sample_weight=sample_weight))
        return score if np.isfinite(score) else -np.inf

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
