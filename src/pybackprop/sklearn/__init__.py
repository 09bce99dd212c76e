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
- ``solver``: ``"adam"`` (default), ``"sgd"``, ``"lbfgs"``, and pybackprop's
  ``"rmsprop"`` and ``"adagrad"``. ``"lbfgs"`` is scikit-learn's: ``scipy.optimize.minimize(
  method="L-BFGS-B")`` with ``maxiter=max_iter``, ``maxfun=max_fun``, ``gtol=tol`` on
  scikit-learn's objective (``squared_error / 2`` or its log-loss, probabilities clipped as
  there, plus ``alpha / (2 n) * ||W||**2``), each evaluation ONE full-batch pass of the core;
  from the same weights its iterations and results are scikit-learn's (to ~1e-9 in float64, see
  tests/test_sklearn.py), its ``ConvergenceWarning`` too; it has no ``loss_curve_``, no
  ``partial_fit`` and no dropout (a deterministic objective); needs scipy (in the ``sklearn`` extra).
- ``learning_rate`` (``"constant"``, ``"invscaling"``, ``"adaptive"``) and ``power_t`` act, as
  in scikit-learn, with ``solver="sgd"`` only: ``learning_rate_init / (t_ + 1) ** power_t`` from
  the second epoch on, or divided by 5 where the ``tol`` / ``n_iter_no_change`` rule would stop
  (stopping once it is <= 1e-6). The core's SGD keeps torch's momentum buffer, which is rescaled
  when the rate changes so that the steps stay scikit-learn's (velocity) steps.
- ``alpha`` is exactly scikit-learn's L2 penalty: ``alpha / (2 * rows) *
  ||W||**2`` added to the loss of each mini-batch of ``rows`` samples (with sample weights:
  divided by the batch's weights' sum instead), on the
  weights only (not the biases). It reaches the core as the optimiser's
  ``weight_decay`` with ``decay_bias=False`` and ``decay_per_sample=True``:
  ``alpha`` times the ratio of the core's gradient to scikit-learn's, divided by each step's
  rows (or weights' sum), so a short last batch takes the larger share as in scikit-learn.
  That ratio is 1 for the classifier, ``1 / k`` for a multilabel one (its binary
  cross-entropy averages over the k labels where scikit-learn's sums), and ``2 / k`` for the
  regressor with k targets (the core's ``"mse"``, a mean over all elements, is twice
  scikit-learn's ``squared_error / 2``, itself a mean over the targets, whose gradient
  scikit-learn nevertheless takes as ``prediction - y`` over the rows, k times the gradient
  of its loss). SGD runs at ``learning_rate_init`` divided by the ratio and the adaptive
  solvers at ``epsilon`` times it: the steps are scikit-learn's (``sgd`` exactly; ``adam`` up
  to where epsilon enters, see the tests).
- ``loss_curve_`` and ``loss_`` hold, as scikit-learn's, the objective of each epoch: the
  mean training loss over the mini-batches as they were seen (dropout active, each batch
  counted by its rows) plus each batch's L2 term with the weights before its step, as
  scikit-learn's (the core reports it, ``EpochResult.penalty``), in
  pybackprop's units: mean squared error for the regressor (twice
  scikit-learn's ``squared_error / 2``), cross-entropy for the classifier (a mean
  over the labels for multilabel targets); ``loss_`` of ``"lbfgs"`` is its final
  objective in the same units. ``tol`` and ``n_iter_no_change`` are applied as
  scikit-learn does, in scikit-learn's units.
- Weights and biases start as scikit-learn's, uniform in ``±sqrt(6 / (fan_in +
  fan_out))`` (``±sqrt(2 / ...)`` with logistic hidden units), drawn layer by layer from
  ``numpy.random.RandomState(random_state)`` as scikit-learn draws them: the same numbers for
  the same integer ``random_state``; early stopping's validation split is then scikit-learn's
  too (``train_test_split`` with that RandomState, stratified for two classes). The mini-batch
  shuffle is the core's own: without shuffling, ``sgd`` runs are scikit-learn's to 1e-12.
- ``sample_weight`` (``fit``, ``partial_fit``): each sample's loss weighted, and as in
  scikit-learn each mini-batch's loss, gradient and L2 term divided by that batch's weights'
  sum (the core's weight normalisation ``"weight_sum"``, see
  :meth:`pybackprop._engine.Engine.set_weight_norm`; ``"lbfgs"``: the weights' sum of all the
  data): from the same weights, the runs are scikit-learn's (tests/test_sklearn.py). A
  mini-batch whose weights are all zero has loss 0 and makes no step (scikit-learn's own divides
  by zero). Weights must be finite, >= 0 and not all zero (scikit-learn also takes negative
  ones); weights of one give bitwise the results without weights.
- ``warm_start`` continues the previous fit's optimiser state and learning rate (scikit-learn
  restarts its optimiser at every ``fit``).
- Warnings: ``"lbfgs"`` warns as scikit-learn's; the stochastic solvers warn about nothing
  while training (no ``ConvergenceWarning``: ``n_iter_ == max_iter`` tells that training hit the
  epoch limit before the ``tol`` / ``n_iter_no_change`` rule stopped it), and pybackprop's
  ``GradientFlowWarning`` is silenced (it also fires when a converged network's
  gradients vanish for good reasons); the per-layer gradient norms stay in
  ``model_.history.history["grad_norm"]``.
- Predictions and probabilities are float64 arrays whatever ``dtype`` (the
  precision of the weights and of the arithmetic) is; a ``batch_size`` larger
  than the data is clipped silently.
- Sparse inputs are not supported.
- A bad parameter raises, at ``fit``, :class:`InvalidParameterError`: a
  ``ValueError`` and a ``TypeError`` (as scikit-learn's own), its message
  naming the parameter, what it accepts and what came.

The package
-----------
``_constraints`` the parameters' table (what each accepts, checked at fit), ``_base`` what the
two estimators share (building the network, the training loop, the stopping rule and the
learning-rate schedules), ``_lbfgs`` the L-BFGS solver, ``_regressor`` and ``_classifier`` the
estimators.

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
