"""What the two estimators share: parameters, the network they build, the training loop, the stopping rule.

:class:`_BaseMLP` stores the parameters (``__init__`` only stores), checks them at
``fit`` against :data:`~pybackprop.sklearn._constraints.PARAMETER_CONSTRAINTS`, builds a
:class:`pybackprop.Sequential` with scikit-learn's initialisation and runs its ``fit``
with a :class:`_Monitor` callback, which records scikit-learn's fitted attributes and
applies scikit-learn's stopping rule between epochs. It uses the model's public surface
only (``compile``, ``fit``, ``predict``, ``get_weights``/``set_weights``, ``optimizer``,
``stop_training``, ``layers``).
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, ClassVar, Dict, List, Mapping, Optional, Tuple

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin  # type: ignore[import-untyped]
from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]
from sklearn.utils import check_random_state  # type: ignore[import-untyped]
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data  # type: ignore[import-untyped]

from .. import optimizers as _optimizers
from .._validation import Check, check_params
from ..callbacks import Callback
from ..layers import Dense, Dropout
from .._engine import check_sample_weight
from ..model import GradientFlowWarning, Sequential
from ._constraints import ACTIVATION_ALIASES, PARAMETER_CONSTRAINTS, InvalidParameterError
from ._lbfgs import fit_lbfgs

Params = Dict[str, Any]  # the parameters checked and normalised (_BaseMLP._validate_params)


class _Monitor(Callback):
    """Runs between the epochs of ``Sequential.fit``: records scikit-learn's fitted attributes and
    applies its stopping rule (``tol``, ``n_iter_no_change``), on the training loss or, with early
    stopping, on the validation score (then restoring the best weights at the end), and sets the
    next epoch's learning rate of ``solver="sgd"`` as scikit-learn's ``SGDOptimizer`` does: with
    ``"invscaling"`` ``learning_rate_init / (t_ + 1) ** power_t`` after every epoch (``t_`` the
    samples seen), with ``"adaptive"`` divided by 5 where the rule would stop (until it is
    <= 1e-6, then it stops)."""

    def __init__(self, est: "_BaseMLP", p: Params, n_train: int, batch: int, incremental: bool,
                 validation: Optional[Tuple[np.ndarray, Any, Optional[np.ndarray]]]) -> None:
        self.est, self.p, self.n_train, self.batch = est, p, n_train, batch
        self.incremental, self.validation = incremental, validation
        self.best_weights: Optional[List[np.ndarray]] = None

    def on_epoch_end(self, epoch: int, logs: Dict[str, Any]) -> None:
        est, p = self.est, self.p
        # sklearn's objective: the loss plus each batch's L2 term alpha / 2 * ||W||^2 / (the batch's rows
        # or weights' sum), with the weights before its step, averaged over the batches by their rows:
        # the core adds up that term of its per-sample weight decay (EpochResult.penalty), which is
        # in the gradient's units (the decay is grad_scale * alpha): turned into the loss's here
        scale = est._loss_scale / est._grad_scale(est.n_outputs_)
        loss = float(logs["loss"]) + self.model.engine.last_penalty * scale
        est.loss_curve_.append(loss)
        est.loss_ = loss
        est.n_iter_ += 1
        est.t_ += self.n_train
        if p["verbose"]:
            print(f"Iteration {est.n_iter_}, loss = {loss:.8f}")
        tol = p["tol"]
        if self.validation is not None:
            score = est._validation_score(*self.validation)
            est.validation_scores_.append(score)
            if p["verbose"]:
                print(f"Validation score: {score:f}")
            est._no_improvement_count = est._no_improvement_count + 1 \
                if score < est.best_validation_score_ + tol else 0
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                self.best_weights = self.model.get_weights()
        else:
            best = np.inf if est.best_loss_ is None else est.best_loss_
            # tol is in sklearn's units of the loss: loss_curve_'s are _loss_scale times those
            est._no_improvement_count = est._no_improvement_count + 1 \
                if loss > best - tol * est._loss_scale else 0
            if loss < best:
                est.best_loss_ = loss
        schedule = p["learning_rate"] if p["solver"] == "sgd" else "constant"
        if schedule == "invscaling":  # sklearn's iteration_ends(t_), before the stopping rule
            est._set_learning_rate(p["learning_rate_init"] / (est.t_ + 1) ** p["power_t"])
        if est._no_improvement_count > p["n_iter_no_change"]:
            what = "Validation score" if self.validation is not None else "Training loss"
            msg = f"{what} did not improve more than tol={tol:f} for {p['n_iter_no_change']} consecutive epochs."
            if schedule != "adaptive":
                if p["verbose"]:
                    print(msg + " Stopping.")
                self.model.stop_training = True  # (partial_fit runs one epoch anyway)
            elif est._learning_rate <= 1e-6:
                if p["verbose"]:
                    print(msg + " Learning rate too small. Stopping.")
                self.model.stop_training = True
            else:
                est._set_learning_rate(est._learning_rate / 5.0)
                est._no_improvement_count = 0
                if p["verbose"]:
                    print(msg + f" Setting learning rate to {est._learning_rate:f}")

    def on_train_end(self, logs: Optional[Dict[str, Any]] = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class _BaseMLP(BaseEstimator):
    """Shared parameters, validation and training loop of the two estimators.

    Subclasses give ``fit``/``partial_fit`` (turning ``y`` into the core's targets and choosing
    the output layer and loss), ``predict`` and ``_validation_score``.
    """

    #: What each parameter accepts (scikit-learn's name for the table); checked by _validate_params.
    _parameter_constraints: ClassVar[Mapping[str, Check]] = PARAMETER_CONSTRAINTS
    _loss_scale = 1.0  # the core's loss over sklearn's (see the package docstring and _optimizer)

    def _grad_scale(self, n_outputs: int) -> float:
        """The core's gradient over scikit-learn's (that of its loss, but for the multi-output regressor)."""
        return self._loss_scale

    def __init__(self, hidden_layer_sizes: Any = (100,), activation: str = "relu", *, solver: str = "adam",
                 alpha: float = 0.0001, batch_size: Any = "auto", learning_rate: str = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5,
                 max_iter: int = 200, shuffle: bool = True, random_state: Any = None, tol: float = 1e-4,
                 verbose: Any = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8, n_iter_no_change: int = 10,
                 max_fun: int = 15000, dropout_keep_prob: float = 1.0, dtype: str = "float32") -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
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
        self.max_fun = max_fun
        self.dropout_keep_prob = dropout_keep_prob
        self.dtype = dtype

    # ------------------------------------------------------------------ parameters
    def _validate_params(self) -> Params:
        """Check every parameter against ``_parameter_constraints`` (at fit time, as scikit-learn
        does; the first bad one raises) and return them normalised (``hidden_layer_sizes`` a list,
        numbers as int/float, ``dtype`` a name). A refused parameter raises
        :class:`InvalidParameterError` (a ValueError and a TypeError) with the table's message."""
        try:
            p = check_params(self._parameter_constraints, self.get_params(deep=False))
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(str(exc)) from None
        if p["solver"] == "lbfgs" and p["dropout_keep_prob"] < 1.0:
            # the full-batch objective of L-BFGS must be deterministic: no random masks
            raise InvalidParameterError(f"dropout_keep_prob: expected 1.0 with solver='lbfgs' (L-BFGS minimises a "
                                        f"deterministic full-batch loss), got {p['dropout_keep_prob']!r}")
        return p

    def _check_solver(self) -> bool:
        """``partial_fit`` exists for the stochastic solvers only (scikit-learn's ``available_if``)."""
        if self.solver == "lbfgs":
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. {self.solver} is not "
                                 "stochastic.")
        return True

    @staticmethod
    def _batch(p: Params, n: int) -> int:
        return min(200, n) if p["batch_size"] == "auto" else min(p["batch_size"], n)

    def _optimizer(self, p: Params, n_outputs: int) -> _optimizers.Optimizer:
        # sklearn's alpha: weights only, divided by each batch's rows (see the package docstring)
        # The core's gradients are _grad_scale times sklearn's: SGD takes lr / scale, the adaptive
        # rules (invariant to the scale but for eps) eps * scale, the decay scale * alpha, so the
        # steps are sklearn's.
        # ("lbfgs" trains outside the optimiser: the model keeps a plain SGD for later fits of its own.)
        scale = self._grad_scale(n_outputs)
        decay = dict(weight_decay=scale * p["alpha"], decay_bias=False, decay_per_sample=True)
        lr = p["learning_rate_init"]
        if p["solver"] in ("sgd", "lbfgs"):
            momentum = p["momentum"] if p["solver"] == "sgd" else 0.0
            return _optimizers.SGD(lr=lr / scale, momentum=momentum,
                                   nesterov=p["nesterovs_momentum"] and momentum > 0, **decay)
        if p["solver"] == "adam":
            return _optimizers.Adam(lr=lr, beta1=p["beta_1"], beta2=p["beta_2"], eps=p["epsilon"] * scale, **decay)
        if p["solver"] == "rmsprop":
            return _optimizers.RMSprop(lr=lr, eps=p["epsilon"] * scale, momentum=p["momentum"], **decay)
        return _optimizers.Adagrad(lr=lr, eps=1e-10 * scale, **decay)

    def _lbfgs_factors(self, n_outputs: int) -> Tuple[float, float]:
        """(loss, gradient) factors from the core's mean loss to scikit-learn's (see ``_lbfgs``)."""
        raise NotImplementedError

    #: scikit-learn's loss from the output activations and the core's targets, where the core's
    #: value is not scikit-learn's to the last digits (the classifier's clipped log-losses)
    _lbfgs_loss: Optional[Callable[[np.ndarray, np.ndarray, Optional[np.ndarray]], float]] = None

    def _set_learning_rate(self, lr: float) -> None:
        """scikit-learn's current learning rate of ``solver="sgd"`` (its units), to the core (divided by
        the gradient scale, as ``_optimizer``), the optimiser's state kept and rescaled to sklearn's rule."""
        opt = self.model_.optimizer
        assert opt is not None and isinstance(opt.lr, float)  # the estimators' optimisers have a constant lr
        old, new = opt.lr, float(lr) / self._grad_scale(self.n_outputs_)
        self._learning_rate = float(lr)
        if new == old:
            return
        opt.lr = new
        self.model_.engine.configure_optimizer(reset_state=False)
        if isinstance(opt, _optimizers.SGD) and opt.momentum > 0:
            # sklearn's velocity holds lr * the momentum sum: the core's buffer (the sum) rescaled
            # keeps the coming steps sklearn's (see Engine.scale_optimizer_state)
            self.model_.engine.scale_optimizer_state("momentum_buffer", old / new)

    @staticmethod
    def _seed(p: Params) -> int:
        if isinstance(p["random_state"], int):
            return p["random_state"]  # type: ignore[no-any-return]
        return int(check_random_state(p["random_state"]).randint(0, np.iinfo(np.int32).max))

    # ------------------------------------------------------------------ training
    def _new_model(self, p: Params, n_features: int, n_outputs: int, out_activation: str, loss: str,
                   seed: int, rs: np.random.RandomState) -> Sequential:
        activation: str = p["activation"]
        activation = ACTIVATION_ALIASES.get(activation, activation)  # scikit-learn's name -> pybackprop's
        layers: List[Any] = []
        for units in p["hidden_layer_sizes"]:
            layers.append(Dense(units, activation=activation))
            if p["dropout_keep_prob"] < 1.0:
                layers.append(Dropout(keep_prob=p["dropout_keep_prob"]))
        layers.append(Dense(n_outputs, activation=out_activation))
        model = Sequential(layers, input_dim=n_features, dtype=p["dtype"], seed=seed)
        model.compile(loss=loss, optimizer=self._optimizer(p, n_outputs))
        # scikit-learn's initialisation: W and b ~ U(-bound, bound), bound = sqrt(factor / (fan_in + fan_out)),
        # factor 2 with logistic hidden units and 6 otherwise (Glorot), drawn layer by layer (W, then b)
        # from numpy.random.RandomState(random_state) as scikit-learn draws them: the same numbers
        factor = 2.0 if activation == "sigmoid" else 6.0
        dims = [n_features, *p["hidden_layer_sizes"], n_outputs]
        weights = []
        for fan_in, fan_out in zip(dims[:-1], dims[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            weights += [rs.uniform(-bound, bound, (fan_in, fan_out)), rs.uniform(-bound, bound, fan_out)]
        model.set_weights(weights)
        return model

    def _train(self, X: np.ndarray, Y: np.ndarray, y_score: Any, p: Params, incremental: bool,
               new_model: bool, n_outputs: int, out_activation: str, loss: str,
               sample_weight: Optional[np.ndarray] = None) -> None:
        """Build (or reuse) the network and run the epochs; ``Y`` is what the core trains on,
        ``y_score`` the targets in the form ``_validation_score`` compares with.

        With ``sample_weight`` the loss is scikit-learn's weighted mean: the core runs with the weight
        normalisation ``"weight_sum"`` (:meth:`pybackprop._engine.Engine.set_weight_norm`), so each
        mini-batch's loss, its gradient and the L2 term's weight decay are divided by that batch's
        weights' sum, as scikit-learn's (a batch of weight zero makes no step)."""
        seed = self._seed(p)
        # scikit-learn's one RandomState: the initial weights, then the validation split
        rs = np.random.RandomState(seed % 2 ** 32)
        model = self._new_model(p, X.shape[1], n_outputs, out_activation, loss, seed, rs) if new_model else None
        if p["solver"] == "lbfgs":
            self._train_lbfgs(X, Y, p, model, n_outputs, out_activation, sample_weight)
            return
        early = p["early_stopping"] and not incremental
        validation = None
        if early:
            idx_train, idx_val = self._split(X.shape[0], y_score, p["validation_fraction"], rs)
            w_val = None if sample_weight is None else sample_weight[idx_val]
            if w_val is not None and not (w_val > 0).any():
                w_val = None  # a validation set of weight zero would have no score: scored unweighted
            validation = (X[idx_val], y_score[idx_val], w_val)
            X, Y = X[idx_train], Y[idx_train]
            sample_weight = None if sample_weight is None else sample_weight[idx_train]
        n = X.shape[0]
        core_w = None
        if sample_weight is not None:
            core_w = check_sample_weight(sample_weight, n, p["dtype"],
                                         "sample_weight (of the training part after the validation split)")
        batch = self._batch(p, n)
        if model is not None:
            self.model_ = model
            self._new_attributes(p, n_outputs, out_activation)
            self.loss_curve_: List[float] = []
            self.best_loss_: Optional[float] = np.inf
            self._no_improvement_count = 0
        # sklearn reads alpha at every call; the rest it keeps
        self._retune_weight_decay(self._optimizer(p, n_outputs).weight_decay)
        self.model_.engine.set_weight_norm("weight_sum")  # sklearn's weighted mean (not saved: set at every call)
        if model is None:
            if getattr(self, "loss_curve_", None) is None:  # continuing a model fitted by lbfgs
                self.loss_curve_ = []
            if getattr(self, "best_loss_", None) is None:
                self.best_loss_ = np.inf
        # sklearn's SGDOptimizer starts at learning_rate_init in each fit (a partial_fit continues)
        if p["solver"] == "sgd" and (not incremental or model is not None or not hasattr(self, "_learning_rate")):
            self._set_learning_rate(p["learning_rate_init"])
        if early:
            self.validation_scores_: List[float] = []
            self.best_validation_score_ = -np.inf
            self._no_improvement_count = 0
        elif not incremental:
            self._no_improvement_count = 0
        monitor = _Monitor(self, p, n, batch, incremental, validation)
        with warnings.catch_warnings():
            # The gradient-flow heuristic of Sequential.fit (first layer's gradient norm against the
            # last's) also fires when a small net has converged and its gradients vanish for good
            # reasons; sklearn estimators warn about nothing while training (see the package docstring).
            # model_.history.history["grad_norm"] keeps the per-layer norms.
            warnings.filterwarnings("ignore", category=GradientFlowWarning)
            self.model_.fit(X, Y, epochs=1 if incremental else p["max_iter"], batch_size=batch,
                            shuffle=p["shuffle"], verbose=0, callbacks=[monitor], sample_weight=core_w)
        if early:
            self.best_loss_ = None

    def _new_attributes(self, p: Params, n_outputs: int, out_activation: str) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.out_activation_ = "logistic" if out_activation == "sigmoid" else out_activation
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(p["hidden_layer_sizes"]) + 2

    def _train_lbfgs(self, X: np.ndarray, Y: np.ndarray, p: Params, model: Optional[Sequential], n_outputs: int,
                     out_activation: str, sample_weight: Optional[np.ndarray]) -> None:
        """scikit-learn's ``_fit_lbfgs`` (see ``_lbfgs``): ``n_iter_``, ``loss_`` (in the units of
        ``loss_curve_`` of the other solvers, which lbfgs, as scikit-learn's, does not have)."""
        target = model if model is not None else self.model_
        loss_factor, grad_factor = self._lbfgs_factors(n_outputs)
        run = fit_lbfgs(target, X, Y, alpha=p["alpha"], loss_factor=loss_factor, grad_factor=grad_factor,
                        max_iter=p["max_iter"], max_fun=p["max_fun"], tol=p["tol"], verbose=p["verbose"],
                        loss=self._lbfgs_loss, sample_weight=sample_weight)
        if model is not None:  # the new model only now that it is trained
            self.model_ = model
            self._new_attributes(p, n_outputs, out_activation)
            for name in ("loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_"):
                self.__dict__.pop(name, None)
        self.n_iter_ = run.n_iter
        self.loss_ = run.loss / loss_factor

    def _retune_weight_decay(self, weight_decay: float) -> None:
        """Give the optimiser a new ``weight_decay`` (alpha changed by ``set_params`` between
        ``partial_fit`` calls), keeping its state (momentum buffers, moments)."""
        opt = self.model_.optimizer
        assert opt is not None
        if opt.weight_decay != weight_decay:
            opt.weight_decay = weight_decay
            self.model_.engine.configure_optimizer(reset_state=False)

    def _split(self, n: int, y_score: Any, fraction: float, rs: np.random.RandomState
               ) -> Tuple[np.ndarray, np.ndarray]:
        """Training and validation indices for early stopping: scikit-learn's
        ``train_test_split(test_size=validation_fraction, random_state=rs, stratify=y)`` with its
        RandomState after the initial weights (so the same split as scikit-learn's), stratified for
        binary classification (scikit-learn's ``n_outputs_ == 1``). Where scikit-learn would refuse
        (fewer than 2 validation samples, a class too small to stratify) the validation set grows
        to the minimum the score needs (2 samples for R², one for accuracy) and the split is plain."""
        classifier = isinstance(self, ClassifierMixin)
        n_val = int(np.ceil(fraction * n))
        usable = n_val >= 2 and n - n_val >= 1  # scikit-learn needs 2 validation samples
        stratify = None
        if classifier and np.ndim(y_score) == 1 and len(self.classes_) == 2:
            # StratifiedShuffleSplit: 2 samples of each class, both classes on each side
            counts = np.bincount(np.asarray(y_score, dtype=np.intp), minlength=2)
            usable = usable and counts.min() >= 2 and n - n_val >= 2
            stratify = y_score
        if usable:
            return train_test_split(np.arange(n), test_size=fraction, random_state=rs,  # type: ignore[no-any-return]
                                    stratify=stratify)
        n_val = max(n_val, 1 if classifier else 2)
        if n - n_val < 1:
            raise ValueError(f"early_stopping: n_samples = {n} is too few to hold out a validation set of "
                             f"{n_val} sample(s) (validation_fraction={fraction}) and keep one to train on; "
                             "use early_stopping=False")
        return train_test_split(np.arange(n), test_size=n_val, random_state=rs)

    def _outputs(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        Xc = validate_data(self, X, reset=False, dtype=self.model_.dtype)
        return np.asarray(self.model_.predict(Xc), dtype=np.float64)

    def _validation_score(self, X: np.ndarray, y: Any, sample_weight: Optional[np.ndarray] = None) -> float:
        raise NotImplementedError

    def _fit_args(self, X: Any, y: Any, sample_weight: Any, p: Params, reset: bool, y_numeric: bool
                  ) -> Tuple[np.ndarray, Any, Optional[np.ndarray]]:
        """X and y validated (scikit-learn's validate_data), ``sample_weight`` checked (pybackprop's
        rule: finite, >= 0, not all zero, one per row) as float64; nothing is written before."""
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=y_numeric, dtype=p["dtype"], reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y, check_sample_weight(sample_weight, X.shape[0], "float64")

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

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")
