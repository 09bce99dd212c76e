"""scikit-learn estimators backed by pybackprop: :class:`MLPRegressor`, :class:`MLPClassifier`.

They take the parameter names of ``sklearn.neural_network.MLPRegressor`` and
``MLPClassifier`` where these mean the same thing, plus ``dropout_keep_prob``
(a Dropout layer after every hidden layer when < 1, p being the probability of
KEEPING a unit) and ``dtype``. They pass
``sklearn.utils.estimator_checks.check_estimator``, so they work in pipelines,
``cross_validate`` and ``GridSearchCV`` (which can pick the keep probability p
by cross-validation), and they pickle (through pybackprop's own file format).

Needs scikit-learn (``pip install pybackprop[sklearn]``).

Differences from scikit-learn's MLP estimators
-----------------------------------------------
- ``solver``: ``"adam"`` (default), ``"sgd"``, ``"rmsprop"`` or ``"adagrad"``;
  no ``"lbfgs"``. ``learning_rate`` schedules, ``power_t`` and ``max_fun`` do
  not exist (use :class:`pybackprop.Sequential` with a schedule for those).
- ``alpha`` is exactly scikit-learn's L2 penalty: ``alpha / (2 * rows) *
  ||W||**2`` added to the loss of each mini-batch of ``rows`` samples, on the
  weights only (not the biases). It reaches the core as the optimiser's
  ``weight_decay`` with ``decay_bias=False`` and ``decay_per_sample=True``:
  ``alpha`` (classifier) or ``2 * alpha`` (regressor, whose loss ``"mse"`` is
  twice scikit-learn's ``squared_error / 2``), divided by each step's rows, so a
  short last batch takes the larger share as in scikit-learn. For the same
  reason the regressor's SGD runs at ``learning_rate_init / 2`` and its
  adaptive solvers at ``2 * epsilon``: the steps are scikit-learn's (``sgd``
  exactly; ``adam`` up to where epsilon enters, see the tests).
- ``loss_curve_`` holds, as scikit-learn's, the objective of each epoch: the
  mean training loss over the mini-batches as they were seen (dropout active)
  plus the batches' L2 terms, ``steps * alpha / (2 * n) * ||W||**2`` with the
  weights at the epoch's end (scikit-learn uses each batch's weights), in
  pybackprop's units: mean squared error for the regressor (twice
  scikit-learn's ``squared_error / 2``), cross-entropy for the classifier.
  ``tol`` and ``n_iter_no_change`` are applied to it as scikit-learn does.
- Weights and biases start as scikit-learn's, uniform in ``±sqrt(6 / (fan_in +
  fan_out))`` (``±sqrt(2 / ...)`` with logistic hidden units), drawn from
  ``numpy.random.default_rng(random_state)``: another sequence of random numbers
  than scikit-learn's, so results agree in quality, not digit for digit (from
  the same weights, SGD steps agree to 1e-12; see tests/test_sklearn.py).
- No warnings while training: no ``ConvergenceWarning`` (``n_iter_ ==
  max_iter`` tells that training hit the epoch limit before the ``tol`` /
  ``n_iter_no_change`` rule stopped it), and pybackprop's
  ``GradientFlowWarning`` is silenced (it also fires when a converged network's
  gradients vanish for good reasons); the per-layer gradient norms stay in
  ``model_.history.history["grad_norm"]``.
- Predictions and probabilities are float64 arrays whatever ``dtype`` (the
  precision of the weights and of the arithmetic) is; a ``batch_size`` larger
  than the data is clipped silently.
- Sparse inputs and ``sample_weight`` are not supported.

Examples
--------
>>> from sklearn.datasets import load_iris
>>> from pybackprop.sklearn import MLPClassifier
>>> X, y = load_iris(return_X_y=True)
>>> clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=300,
...                     random_state=0).fit(X, y)
>>> clf.score(X, y) > 0.9
True
>>> clf.predict_proba(X[:2]).shape
(2, 3)
"""
from __future__ import annotations

import numbers
import warnings
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin  # type: ignore[import-untyped]
    from sklearn.metrics import accuracy_score, r2_score  # type: ignore[import-untyped]
    from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]
    from sklearn.utils import check_random_state  # type: ignore[import-untyped]
    from sklearn.utils.multiclass import check_classification_targets, type_of_target  # type: ignore[import-untyped]
    from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("pybackprop.sklearn needs scikit-learn >= 1.6: pip install 'pybackprop[sklearn]' "
                      f"(import failed: {exc})") from exc

from . import activations as _activations
from . import optimizers as _optimizers
from .callbacks import Callback
from .layers import Dense, Dropout
from .model import GradientFlowWarning, Sequential

__all__ = ["MLPClassifier", "MLPRegressor"]

#: sklearn's activation names and pybackprop's own (softmax is for outputs only)
_ACTIVATION_ALIASES = {"logistic": "sigmoid"}
_ACTIVATIONS = sorted({*_ACTIVATION_ALIASES, *_activations.ACTIVATIONS, *_activations.ALIASES} - {"softmax"})
_SOLVERS = ("adam", "sgd", "rmsprop", "adagrad")


def _bad(name: str, expected: str, value: Any, exc: type = ValueError) -> None:
    raise exc(f"{name}: expected {expected}, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) \
        and bool(np.isfinite(float(value)))


def _check_real(name: str, value: Any, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> float:
    text = f"a number in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if not _is_real(value):
        _bad(name, text, value, TypeError if not isinstance(value, numbers.Real) else ValueError)
    v = float(value)
    if v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
        _bad(name, text, value)
    return v


def _check_int(name: str, value: Any, minimum: int) -> int:
    if not _is_int(value):
        _bad(name, f"an integer >= {minimum}", value, TypeError)
    if value < minimum:
        _bad(name, f"an integer >= {minimum}", value)
    return int(value)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        _bad(name, "True or False", value, TypeError)
    return bool(value)


class _Monitor(Callback):
    """Runs between the epochs of ``Sequential.fit``: records sklearn's fitted
    attributes and applies sklearn's stopping rule (``tol``, ``n_iter_no_change``),
    on the training loss or, with early stopping, on the validation score."""

    def __init__(self, est: "_BaseMLP", n_train: int, incremental: bool,
                 validation: Optional[Tuple[np.ndarray, Any]]) -> None:
        self.est, self.n_train, self.incremental, self.validation = est, n_train, incremental, validation
        self.best_weights: Optional[List[np.ndarray]] = None

    def on_epoch_end(self, epoch: int, logs: Dict[str, Any]) -> None:
        est = self.est
        loss = float(logs["loss"])
        wd = self.model.optimizer.weight_decay if self.model.optimizer is not None else 0.0
        if wd:  # sklearn's objective: the loss plus each batch's L2 term (weights only, at the epoch's end)
            steps = -(-self.n_train // est._batch(self.n_train))
            loss += 0.5 * wd * steps / self.n_train * sum(float(np.vdot(w, w)) for w in est._weight_views())
        est.loss_curve_.append(loss)
        est.n_iter_ += 1
        est.t_ += self.n_train
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {loss:.8f}")
        tol = est.tol
        if self.validation is not None:
            score = est._validation_score(*self.validation)
            est.validation_scores_.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}")
            est._no_improvement_count = est._no_improvement_count + 1 \
                if score < est.best_validation_score_ + tol else 0
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                self.best_weights = self.model.get_weights()
        else:
            best = np.inf if est.best_loss_ is None else est.best_loss_
            est._no_improvement_count = est._no_improvement_count + 1 if loss > best - tol else 0
            if loss < best:
                est.best_loss_ = loss
        if not self.incremental and est._no_improvement_count > est.n_iter_no_change:
            if est.verbose:
                what = "Validation score" if self.validation is not None else "Training loss"
                print(f"{what} did not improve more than tol={tol:f} for {est.n_iter_no_change} "
                      "consecutive epochs. Stopping.")
            self.model.stop_training = True

    def on_train_end(self, logs: Optional[Dict[str, Any]] = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class _BaseMLP(BaseEstimator):
    """Shared parameters, validation and training loop of the two estimators."""

    _loss_scale = 1.0  # the core's loss over sklearn's (see the module docstring and _optimizer)

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", *, solver: str = "adam",
                 alpha: float = 0.0001, batch_size: Any = "auto", learning_rate_init: float = 0.001,
                 max_iter: int = 200, shuffle: bool = True, random_state: Any = None, tol: float = 1e-4,
                 verbose: Any = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8, n_iter_no_change: int = 10,
                 dropout_keep_prob: float = 1.0, dtype: str = "float32") -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.dropout_keep_prob = dropout_keep_prob
        self.dtype = dtype

    # ------------------------------------------------------------------ parameters
    def _validated_params(self) -> Dict[str, Any]:
        """Check every parameter (at fit time, as sklearn does) and return them normalised."""
        p: Dict[str, Any] = {}
        sizes = self.hidden_layer_sizes
        if _is_int(sizes):
            sizes = (sizes,)
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            _bad("hidden_layer_sizes", "an integer or a sequence of integers >= 1 such as (100,)", sizes,
                 TypeError)
        sizes = list(sizes)
        if not all(_is_int(s) and s >= 1 for s in sizes):
            _bad("hidden_layer_sizes", "integers >= 1 (units of each hidden layer)", self.hidden_layer_sizes)
        p["hidden_layer_sizes"] = [int(s) for s in sizes]
        if not isinstance(self.activation, str) or self.activation not in _ACTIVATIONS:
            _bad("activation", "one of " + ", ".join(repr(a) for a in _ACTIVATIONS), self.activation)
        p["activation"] = _ACTIVATION_ALIASES.get(self.activation, self.activation)
        if self.solver == "lbfgs":
            raise ValueError("solver: 'lbfgs' is not supported by pybackprop (a mini-batch gradient trainer); "
                             f"expected one of {', '.join(map(repr, _SOLVERS))}")
        if not isinstance(self.solver, str) or self.solver not in _SOLVERS:
            _bad("solver", "one of " + ", ".join(map(repr, _SOLVERS)), self.solver)
        p["alpha"] = _check_real("alpha", self.alpha, 0.0, np.inf)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            _check_int("batch_size", self.batch_size, 1) if not isinstance(self.batch_size, str) else \
                _bad("batch_size", "'auto' or an integer >= 1", self.batch_size)
        p["learning_rate_init"] = _check_real("learning_rate_init", self.learning_rate_init, 0.0, np.inf,
                                              lo_open=True)
        p["max_iter"] = _check_int("max_iter", self.max_iter, 1)
        _check_bool("shuffle", self.shuffle)
        if not (self.random_state is None or _is_int(self.random_state)
                or isinstance(self.random_state, np.random.RandomState)):
            _bad("random_state", "None, an integer or a numpy.random.RandomState", self.random_state, TypeError)
        if _is_int(self.random_state) and not 0 <= self.random_state < 2 ** 63:
            _bad("random_state", "an integer in [0, 2**63)", self.random_state)
        p["tol"] = _check_real("tol", self.tol, 0.0, np.inf)
        if not (_is_int(self.verbose) or isinstance(self.verbose, (bool, np.bool_))) or self.verbose < 0:
            _bad("verbose", "a bool or an integer >= 0", self.verbose, TypeError)
        _check_bool("warm_start", self.warm_start)
        p["momentum"] = _check_real("momentum", self.momentum, 0.0, 1.0, hi_open=True)
        _check_bool("nesterovs_momentum", self.nesterovs_momentum)
        _check_bool("early_stopping", self.early_stopping)
        p["validation_fraction"] = _check_real("validation_fraction", self.validation_fraction, 0.0, 1.0,
                                               lo_open=True, hi_open=True)
        p["beta_1"] = _check_real("beta_1", self.beta_1, 0.0, 1.0, hi_open=True)
        p["beta_2"] = _check_real("beta_2", self.beta_2, 0.0, 1.0, hi_open=True)
        p["epsilon"] = _check_real("epsilon", self.epsilon, 0.0, np.inf, lo_open=True)
        p["n_iter_no_change"] = _check_int("n_iter_no_change", self.n_iter_no_change, 1)
        keep = self.dropout_keep_prob
        if not _is_real(keep) or not 0.0 < keep <= 1.0:
            raise (TypeError if not isinstance(keep, numbers.Real) or isinstance(keep, bool) else ValueError)(
                "dropout_keep_prob: expected the probability of KEEPING a hidden unit, in (0, 1] (1 = no "
                f"dropout; the drop rate of Keras/PyTorch is 1 - dropout_keep_prob), got {keep!r}")
        p["dropout_keep_prob"] = float(keep)
        if self.dtype not in ("float32", "float64", np.float32, np.float64):
            _bad("dtype", "'float32' or 'float64'", self.dtype)
        p["dtype"] = np.dtype(self.dtype).name
        return p

    def _batch(self, n: int) -> int:
        return min(200, n) if isinstance(self.batch_size, str) else min(int(self.batch_size), n)

    def _optimizer(self, p: Dict[str, Any]) -> _optimizers.Optimizer:
        # sklearn's alpha: weights only, divided by each batch's rows (see the module docstring)
        # The core's gradients are _loss_scale times sklearn's: SGD takes lr / scale, the adaptive
        # rules (invariant to the scale but for eps) eps * scale, so the steps are sklearn's.
        scale = self._loss_scale
        decay = dict(weight_decay=scale * p["alpha"], decay_bias=False, decay_per_sample=True)
        lr = p["learning_rate_init"]
        if self.solver == "sgd":
            return _optimizers.SGD(lr=lr / scale, momentum=p["momentum"],
                                   nesterov=bool(self.nesterovs_momentum) and p["momentum"] > 0, **decay)
        if self.solver == "adam":
            return _optimizers.Adam(lr=lr, beta1=p["beta_1"], beta2=p["beta_2"], eps=p["epsilon"] * scale, **decay)
        if self.solver == "rmsprop":
            return _optimizers.RMSprop(lr=lr, eps=p["epsilon"] * scale, momentum=p["momentum"], **decay)
        return _optimizers.Adagrad(lr=lr, eps=1e-10 * scale, **decay)

    def _seed(self) -> int:
        if _is_int(self.random_state):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(0, np.iinfo(np.int32).max))

    # ------------------------------------------------------------------ training
    def _new_model(self, p: Dict[str, Any], n_features: int, n_outputs: int, out_activation: str, loss: str,
                   seed: int) -> Sequential:
        layers: List[Any] = []
        for units in p["hidden_layer_sizes"]:
            layers.append(Dense(units, activation=p["activation"]))
            if p["dropout_keep_prob"] < 1.0:
                layers.append(Dropout(keep_prob=p["dropout_keep_prob"]))
        layers.append(Dense(n_outputs, activation=out_activation))
        model = Sequential(layers, input_dim=n_features, dtype=p["dtype"], seed=seed)
        model.compile(loss=loss, optimizer=self._optimizer(p))
        # scikit-learn's initialisation: W and b ~ U(-bound, bound), bound = sqrt(factor / (fan_in + fan_out)),
        # factor 2 with logistic hidden units and 6 otherwise (Glorot), from a generator seeded by random_state
        rng = np.random.default_rng(seed)
        factor = 2.0 if p["activation"] == "sigmoid" else 6.0
        dims = [n_features, *p["hidden_layer_sizes"], n_outputs]
        weights = []
        for fan_in, fan_out in zip(dims[:-1], dims[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            weights += [rng.uniform(-bound, bound, (fan_in, fan_out)), rng.uniform(-bound, bound, fan_out)]
        model.set_weights(weights)
        return model

    def _train(self, X: np.ndarray, Y: np.ndarray, y_score: Any, p: Dict[str, Any], incremental: bool,
               new_model: bool, n_outputs: int, out_activation: str, loss: str) -> None:
        """Build (or reuse) the network and run the epochs; ``Y`` is what the core trains on,
        ``y_score`` the targets in the form ``_validation_score`` compares with."""
        seed = self._seed()
        early = bool(self.early_stopping) and not incremental
        validation = None
        if early:
            idx_train, idx_val = self._split(X.shape[0], y_score, p["validation_fraction"], seed)
            validation = (X[idx_val], y_score[idx_val])
            X, Y = X[idx_train], Y[idx_train]
        n = X.shape[0]
        batch = self._batch(n)
        if new_model:
            self.model_ = self._new_model(p, X.shape[1], n_outputs, out_activation, loss, seed)
            self.loss_curve_: List[float] = []
            self.n_iter_ = 0
            self.t_ = 0
            self.best_loss_: Optional[float] = np.inf
            self._no_improvement_count = 0
            self.out_activation_ = "logistic" if out_activation == "sigmoid" else out_activation
            self.n_outputs_ = n_outputs
            self.n_layers_ = len(p["hidden_layer_sizes"]) + 2
        else:
            opt = self.model_.optimizer
            assert opt is not None
            wd = self._optimizer(p).weight_decay  # sklearn reads alpha at every call; the rest it keeps
            if opt.weight_decay != wd:  # alpha changed (set_params between partial_fit calls)
                opt.weight_decay = wd
                self.model_.engine.configure_optimizer(reset_state=False)
            if self.best_loss_ is None:
                self.best_loss_ = np.inf
        if early:
            self.validation_scores_: List[float] = []
            self.best_validation_score_ = -np.inf
            self._no_improvement_count = 0
        elif not incremental:
            self._no_improvement_count = 0
        monitor = _Monitor(self, n, incremental, validation)
        with warnings.catch_warnings():
            # The gradient-flow heuristic of Sequential.fit (first layer's gradient norm against the
            # last's) also fires when a small net has converged and its gradients vanish for good
            # reasons; sklearn estimators warn about nothing while training (see the module docstring).
            # model_.history.history["grad_norm"] keeps the per-layer norms.
            warnings.filterwarnings("ignore", category=GradientFlowWarning)
            self.model_.fit(X, Y, epochs=1 if incremental else p["max_iter"], batch_size=batch,
                            shuffle=bool(self.shuffle), verbose=0, callbacks=[monitor])
        if early:
            self.best_loss_ = None

    def _split(self, n: int, y_score: Any, fraction: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
        """Training and validation indices for early stopping (as sklearn: ``ceil(fraction * n)``
        validation samples, stratified for single-label classification), with the minimum sizes the
        score needs: 2 samples for R², one per class when stratifying (else a plain random split)."""
        classifier = isinstance(self, ClassifierMixin)
        stratify = None
        n_val = max(int(np.ceil(fraction * n)), 1 if classifier else 2)
        if classifier and np.ndim(y_score) == 1:
            _, counts = np.unique(y_score, return_counts=True)
            k = len(counts)
            if counts.min() >= 2 and n - max(n_val, k) >= k:
                stratify, n_val = y_score, max(n_val, k)
        if n - n_val < 1:
            raise ValueError(f"early_stopping: n_samples = {n} is too few to hold out a validation set of "
                             f"{n_val} sample(s) (validation_fraction={fraction}) and keep one to train on; "
                             "use early_stopping=False")
        return train_test_split(np.arange(n), test_size=n_val, random_state=np.random.RandomState(seed % 2 ** 32),
                                stratify=stratify)

    def _outputs(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        Xc = validate_data(self, X, reset=False, dtype=self.model_.dtype)
        return np.asarray(self.model_.predict(Xc), dtype=np.float64)

    def _validation_score(self, X: np.ndarray, y: Any) -> float:
        raise NotImplementedError

    def _fit_args(self, X: Any, y: Any, reset: bool, y_numeric: bool) -> Tuple[np.ndarray, Any]:
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=y_numeric,
                             dtype=self._validated_dtype(), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _validated_dtype(self) -> str:
        return "float64" if self.dtype in ("float64", np.float64) else "float32"

    # ------------------------------------------------------------------ sklearn-style attributes
    @property
    def coefs_(self) -> List[np.ndarray]:
        """Weight matrices ``W`` of shape ``(fan_in, fan_out)``, one per layer (copies)."""
        check_is_fitted(self)
        return [layer.W.copy() for layer in self.model_.layers if isinstance(layer, Dense)]

    @property
    def intercepts_(self) -> List[np.ndarray]:
        """Bias vectors, one per layer (copies)."""
        check_is_fitted(self)
        return [layer.b.copy() for layer in self.model_.layers if isinstance(layer, Dense)]  # type: ignore

    def _weight_views(self) -> List[np.ndarray]:
        return [layer.W for layer in self.model_.layers if isinstance(layer, Dense)]

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")


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
    solver : {"adam", "sgd", "rmsprop", "adagrad"}, default="adam"
    alpha : float, default=0.0001
        L2 penalty, scaled as scikit-learn's (see the module docstring).
    batch_size : int or "auto", default="auto"
        ``"auto"`` is ``min(200, n_samples)``.
    learning_rate_init : float, default=0.001
    max_iter : int, default=200
        Maximum number of epochs.
    shuffle : bool, default=True
        Reshuffle the samples every epoch.
    random_state : int, RandomState or None, default=None
        Seeds initial weights, shuffling, dropout and the validation split.
    tol : float, default=1e-4
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
    dropout_keep_prob : float, default=1.0
        Probability p of KEEPING a hidden unit (a Dropout after every hidden
        layer when p < 1; inverted scaling, so nothing changes at inference).
    dtype : {"float32", "float64"}, default="float32"
        Precision of the weights and the arithmetic.

    Attributes
    ----------
    model_ : pybackprop.Sequential
        The trained network (``model_.explain``, ``model_.save`` ...).
    loss_curve_ : list of float
        Mean training loss (MSE) of every epoch, plus the L2 term.
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
    """

    _loss_scale = 2.0

    def fit(self, X: Any, y: Any) -> "MLPRegressor":
        """Train on ``(X, y)`` for up to ``max_iter`` epochs; returns ``self``."""
        p = self._validated_params()
        new = not (self.warm_start and hasattr(self, "model_"))
        X, y = self._fit_args(X, y, reset=new, y_numeric=True)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if not new and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y: expected {self.n_outputs_} outputs (warm_start continues the previous fit), "
                             f"got {Y.shape[1]}")
        self._train(X, Y, Y, p, incremental=False, new_model=new, n_outputs=Y.shape[1],
                    out_activation="identity", loss="mse")
        return self

    def partial_fit(self, X: Any, y: Any) -> "MLPRegressor":
        """One epoch over ``(X, y)``, continuing from the current weights; returns ``self``."""
        p = self._validated_params()
        new = not hasattr(self, "model_")
        X, y = self._fit_args(X, y, reset=new, y_numeric=True)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if not new and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y: expected {self.n_outputs_} outputs, as in the earlier calls, got {Y.shape[1]}")
        self._train(X, Y, Y, p, incremental=True, new_model=new, n_outputs=Y.shape[1],
                    out_activation="identity", loss="mse")
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions, shape ``(n_samples,)`` for one output, else ``(n_samples, n_outputs)``."""
        out = self._outputs(X)
        return out.ravel() if out.shape[1] == 1 else out

    def _validation_score(self, X: np.ndarray, y: Any) -> float:
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging net scores -inf, not a warning
            score = float(r2_score(y, np.asarray(self.model_.predict(X), dtype=np.float64)))
        return score if np.isfinite(score) else -np.inf

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, trained by pybackprop's C++ core.

    Two classes: one sigmoid output and binary cross-entropy; more: a softmax
    output per class and categorical cross-entropy; a multilabel indicator
    matrix ``y``: one sigmoid output per label. Labels may be of any type
    (ints, strings, ...): ``classes_`` holds them sorted.

    Parameters are those of :class:`MLPRegressor`; with early stopping the
    validation score is the accuracy (the split is stratified).

    Attributes
    ----------
    classes_ : ndarray
        The class labels (``arange(n_labels)`` for multilabel targets).
    model_, loss_curve_, best_loss_, validation_scores_, best_validation_score_, n_iter_, t_,
    n_features_in_, feature_names_in_, n_outputs_, coefs_, intercepts_
        As for :class:`MLPRegressor`; ``loss_curve_`` is the cross-entropy.

    Examples
    --------
    >>> import numpy as np
    >>> from pybackprop.sklearn import MLPClassifier
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    >>> clf = MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01, random_state=0).fit(X, y)
    >>> clf.classes_
    array(['no', 'yes'], dtype='<U3')
    >>> clf.score(X, y) > 0.95
    True
    """

    def _targets(self, y: Any, classes: Optional[Any], first: bool) -> Tuple[Any, Any, bool]:
        """Encode the labels: (core targets, targets of the validation score, multilabel?)."""
        check_classification_targets(y)
        kind = type_of_target(y, input_name="y")
        if kind == "multiclass-multioutput":
            raise ValueError("y: multiclass-multioutput targets are not supported (a 2-D y must be a multilabel "
                             "indicator matrix of 0/1)")
        multilabel = kind == "multilabel-indicator"
        if first:
            if multilabel:
                self.classes_ = np.arange(y.shape[1])
                if classes is not None and len(np.unique(classes)) != y.shape[1]:
                    raise ValueError(f"classes: expected {y.shape[1]} labels (the columns of the multilabel y), "
                                     f"got {len(np.unique(classes))}")
            else:
                self.classes_ = np.unique(y if classes is None else classes)
            if len(self.classes_) < 2 and not multilabel:
                raise ValueError(f"y: a classifier needs samples of at least 2 classes; got 1 class "
                                 f"({self.classes_[0]!r})")
            self._multilabel = multilabel
        elif multilabel != self._multilabel:
            raise ValueError("y: the type of target (multilabel or not) changed since the first fit")
        if multilabel:
            if y.shape[1] != len(self.classes_):
                raise ValueError(f"y: expected {len(self.classes_)} label columns, got {y.shape[1]}")
            Y = np.asarray(y, dtype=np.float64)
            return Y, Y, True
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if len(unknown):
            raise ValueError(f"y: labels {unknown.tolist()} are not in classes_ {self.classes_.tolist()} "
                             "(pass all classes to the first partial_fit with classes=, or use fit)")
        codes = np.searchsorted(self.classes_, y)
        if len(self.classes_) == 2:
            return codes.astype(np.float64).reshape(-1, 1), codes, False
        return codes, codes, False

    def _head(self) -> Tuple[int, str, str]:
        k = len(self.classes_)
        if self._multilabel:
            return k, "sigmoid", "binary_crossentropy"
        if k == 2:
            return 1, "sigmoid", "binary_crossentropy"
        return k, "softmax", "categorical_crossentropy"

    def fit(self, X: Any, y: Any) -> "MLPClassifier":
        """Train on ``(X, y)`` for up to ``max_iter`` epochs; returns ``self``."""
        p = self._validated_params()
        new = not (self.warm_start and hasattr(self, "model_"))
        X, y = self._fit_args(X, y, reset=new, y_numeric=False)
        if new:
            Y, y_score, _ = self._targets(y, None, first=True)
        else:
            labels = np.unique(y) if y.ndim == 1 else np.arange(y.shape[1])
            if not np.array_equal(labels, self.classes_):
                raise ValueError(f"y: warm_start needs the classes of the previous fit {self.classes_.tolist()}, "
                                 f"got {labels.tolist()}")
            Y, y_score, _ = self._targets(y, None, first=False)
        k, out_act, loss = self._head()
        self._train(X, Y, y_score, p, incremental=False, new_model=new, n_outputs=k, out_activation=out_act,
                    loss=loss)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Optional[Any] = None) -> "MLPClassifier":
        """One epoch over ``(X, y)``; the first call needs ``classes`` (all labels that will occur)."""
        p = self._validated_params()
        first = not hasattr(self, "model_")
        if first and classes is None:
            raise ValueError("classes: expected all the class labels on the first call to partial_fit "
                             "(e.g. classes=np.unique(y_all)), got None")
        if not first and classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes: expected {self.classes_.tolist()} (as in the first call to partial_fit) "
                             f"or None, got {np.unique(classes).tolist()}")
        X, y = self._fit_args(X, y, reset=first, y_numeric=False)
        Y, y_score, _ = self._targets(y, classes, first=first)
        k, out_act, loss = self._head()
        self._train(X, Y, y_score, p, incremental=True, new_model=first, n_outputs=k, out_activation=out_act,
                    loss=loss)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape ``(n_samples, n_classes)``, columns in the order of ``classes_``
        (rows sum to 1, except for multilabel targets: one independent probability per label)."""
        out = self._outputs(X)
        if self._multilabel:
            return out
        if out.shape[1] == 1:
            return np.hstack([1.0 - out, out])
        return out / out.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of each sample (a 0/1 indicator matrix for multilabel targets)."""
        proba = self.predict_proba(X)
        if self._multilabel:
            return (proba > 0.5).astype(int)
        return self.classes_[np.argmax(proba, axis=1)]

    def _validation_score(self, X: np.ndarray, y: Any) -> float:
        out = np.asarray(self.model_.predict(X), dtype=np.float64)
        if self._multilabel:
            return float(accuracy_score(y, (out > 0.5).astype(np.float64)))
        pred = (out[:, 0] > 0.5).astype(int) if out.shape[1] == 1 else np.argmax(out, axis=1)
        return float(accuracy_score(y, pred))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
