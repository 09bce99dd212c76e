"""The classifier: labels of any type encoded for the core, one sigmoid or a softmax output."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
from sklearn.utils.metaestimators import available_if  # type: ignore[import-untyped]
from sklearn.base import ClassifierMixin  # type: ignore[import-untyped]
from scipy.special import xlogy  # type: ignore[import-untyped]
from sklearn.metrics import accuracy_score  # type: ignore[import-untyped]
from sklearn.utils.multiclass import check_classification_targets, type_of_target  # type: ignore[import-untyped]

from ._base import _BaseMLP


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier, trained by pybackprop's C++ core.

    Two classes: one sigmoid output and binary cross-entropy; more: a softmax
    output per class and categorical cross-entropy; a multilabel indicator
    matrix ``y``: one sigmoid output per label. Labels may be of any type
    (ints, strings, ...): ``classes_`` holds them sorted.

    Parameters are those of :class:`MLPRegressor` (a bad one raises
    :class:`~pybackprop.sklearn.InvalidParameterError` at ``fit``, both a
    ``ValueError`` and a ``TypeError``); with early stopping the validation
    score is the accuracy (the split is stratified).

    Attributes
    ----------
    classes_ : ndarray
        The class labels (``arange(n_labels)`` for multilabel targets).
    model_, loss_curve_, loss_, best_loss_, validation_scores_, best_validation_score_, n_iter_, t_,
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
    >>> w = np.where(y == "yes", 2.0, 1.0)           # each "yes" sample counts twice
    >>> MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", random_state=0).fit(X, y, sample_weight=w).n_iter_ > 0
    True
    """

    @property
    def _loss_scale(self) -> float:  # type: ignore[override]
        # the core's binary cross-entropy averages over the labels, sklearn's log-loss sums them
        return 1.0 / len(self.classes_) if getattr(self, "_multilabel", False) else 1.0

    def _lbfgs_factors(self, n_outputs: int) -> Tuple[float, float]:
        k = 1.0 / self._loss_scale
        return k, k

    def _lbfgs_loss(self, P: np.ndarray, Y: np.ndarray, sample_weight: Optional[np.ndarray]) -> float:
        """scikit-learn's ``binary_log_loss`` (sigmoid outputs) or ``log_loss`` (softmax) of the
        probabilities ``P``, clipped to [eps, 1 - eps] as there (see ``_lbfgs``)."""
        eps = np.finfo(P.dtype).eps
        P = np.clip(P, eps, 1 - eps)
        terms = xlogy(Y, P)
        if self._multilabel or P.shape[1] == 1:
            terms += xlogy(1 - Y, 1 - P)
        return float(-np.average(terms, weights=sample_weight, axis=0).sum())

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

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "MLPClassifier":
        """Train on ``(X, y)`` for up to ``max_iter`` epochs (L-BFGS iterations with ``solver="lbfgs"``),
        each sample's loss weighted by ``sample_weight`` when given (as in scikit-learn, each
        mini-batch's loss, gradient and L2 term divided by that batch's weights' sum; a batch of
        weight zero makes no step); returns ``self``."""
        p = self._validate_params()
        new = not (p["warm_start"] and hasattr(self, "model_"))
        X, y, sw = self._fit_args(X, y, sample_weight, p, reset=new, y_numeric=False)
        if new:
            Y, y_score, _ = self._targets(y, None, first=True)
        else:
            labels = np.unique(y) if y.ndim == 1 else np.arange(y.shape[1])
            if not np.array_equal(labels, self.classes_):
                raise ValueError(f"y: warm_start needs the classes of the previous fit {self.classes_.tolist()}, "
                                 f"got {labels.tolist()}")
            Y, y_score, _ = self._targets(y, None, first=False)
        if sw is not None and not self._multilabel:
            weighted = np.unique(np.asarray(y_score)[sw > 0])
            if len(weighted) < 2:
                raise ValueError(f"sample_weight: expected weights > 0 on samples of at least 2 classes, got weight "
                                 f"on class {self.classes_[weighted[0]]!r} only")
        k, out_act, loss = self._head()
        self._train(X, Y, y_score, p, incremental=False, new_model=new, n_outputs=k, out_activation=out_act,
                    loss=loss, sample_weight=sw)
        return self

    @available_if(_BaseMLP._check_solver)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Optional[Any] = None
                    ) -> "MLPClassifier":
        """One epoch over ``(X, y)`` (weighted by ``sample_weight``, each mini-batch divided by its
        weights' sum, as :meth:`fit`); the first call needs ``classes``
        (all labels that will occur). Not with ``solver="lbfgs"`` (as scikit-learn's)."""
        p = self._validate_params()
        first = not hasattr(self, "model_")
        if first and classes is None:
            raise ValueError("classes: expected all the class labels on the first call to partial_fit "
                             "(e.g. classes=np.unique(y_all)), got None")
        if not first and classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes: expected {self.classes_.tolist()} (as in the first call to partial_fit) "
                             f"or None, got {np.unique(classes).tolist()}")
        X, y, sw = self._fit_args(X, y, sample_weight, p, reset=first, y_numeric=False)
        Y, y_score, _ = self._targets(y, classes, first=first)
        k, out_act, loss = self._head()
        self._train(X, Y, y_score, p, incremental=True, new_model=first, n_outputs=k, out_activation=out_act,
                    loss=loss, sample_weight=sw)
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

    def _validation_score(self, X: np.ndarray, y: Any, sample_weight: Optional[np.ndarray] = None) -> float:
        out = np.asarray(self.model_.predict(X), dtype=np.float64)
        if self._multilabel:
            return float(accuracy_score(y, (out > 0.5).astype(np.float64), sample_weight=sample_weight))
        pred = (out[:, 0] > 0.5).astype(int) if out.shape[1] == 1 else np.argmax(out, axis=1)
        return float(accuracy_score(y, pred, sample_weight=sample_weight))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
