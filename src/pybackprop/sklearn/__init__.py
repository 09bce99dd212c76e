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
- A bad parameter raises, at ``fit``, :class:`InvalidParameterError`: a
  ``ValueError`` and a ``TypeError`` (as scikit-learn's own), its message
  naming the parameter, what it accepts and what came.

The package
-----------
``_constraints`` the parameters' table (what each accepts, checked at fit), ``_base`` what the
two estimators share (building the network, the training loop, the stopping rule),
``_regressor`` and ``_classifier`` the estimators.

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

try:  # scikit-learn >= 1.6 (validate_data, __sklearn_tags__)
    from sklearn.utils.validation import validate_data as _validate_data  # type: ignore[import-untyped]  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("pybackprop.sklearn needs scikit-learn >= 1.6: pip install 'pybackprop[sklearn]' "
                      f"(import failed: {exc})", name=exc.name) from exc

from ._classifier import MLPClassifier
from ._constraints import InvalidParameterError
from ._regressor import MLPRegressor

__all__ = ["InvalidParameterError", "MLPClassifier", "MLPRegressor"]
