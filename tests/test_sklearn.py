"""The scikit-learn adapter: check_estimator in full, and the behaviours users rely on."""
import copy
import functools
import inspect
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_iris, make_classification, make_regression  # noqa: E402
from unittest import SkipTest  # noqa: E402  (what sklearn's checks raise)

from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import estimator_checks_generator, parametrize_with_checks  # noqa: E402

import pybackprop as bp  # noqa: E402
from pybackprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

#: The defaults, a second configuration exercising what the defaults do not: dropout, early
#: stopping (validation split inside fit), float64, SGD with Nesterov momentum (and the adaptive
#: learning rate), and the full-batch L-BFGS solver.
ESTIMATORS = [
    MLPRegressor(),
    MLPClassifier(),
    MLPRegressor(dropout_keep_prob=0.8, early_stopping=True, dtype="float64", solver="sgd"),
    MLPClassifier(dropout_keep_prob=0.8, early_stopping=True, dtype="float64", solver="sgd",
                  learning_rate="adaptive", learning_rate_init=0.01, hidden_layer_sizes=(32, 16), activation="tanh"),
    MLPRegressor(solver="lbfgs"),
    # max_iter=100, as scikit-learn checks its own MLPs: with 200 L-BFGS iterations the multilabel
    # check's probabilities reach exactly 1.0 (scikit-learn's own too: the same numbers), which the
    # check refuses (it wants them strictly inside (0, 1)); float64, where float32's sigmoid rounds sooner
    MLPClassifier(solver="lbfgs", dtype="float64", max_iter=100),
]


def _check_name(check):
    return check.func.__name__ if isinstance(check, functools.partial) else check.__name__


_ARRAY_API_CODE = """
import pickle, sys, traceback
results = []
for check, est in pickle.load(sys.stdin.buffer):
    try:
        check(est)
        results.append(None)
    except BaseException:
        results.append(traceback.format_exc())
sys.stdout.buffer.write(pickle.dumps(results))
"""


@functools.lru_cache(maxsize=None)
def _array_api_results():
    """sklearn skips its array-API check unless SCIPY_ARRAY_API=1 was set before scipy was imported,
    which a pytest session cannot guarantee: run those checks in one fresh interpreter (warnings are
    errors there too) and return {(estimator repr, check repr): traceback or None}."""
    jobs = [(check, est) for estimator in ESTIMATORS
            for est, check in estimator_checks_generator(estimator, legacy=True, mark=None)
            if _check_name(check).startswith("check_array_api")]
    proc = subprocess.run([sys.executable, "-W", "error", "-c", _ARRAY_API_CODE], input=pickle.dumps(jobs),
                          capture_output=True, env={**os.environ, "SCIPY_ARRAY_API": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()
    return {(repr(est), repr(check)): res for (check, est), res in zip(jobs, pickle.loads(proc.stdout))}


@parametrize_with_checks(ESTIMATORS)
def test_check_estimator(estimator, check):
    name = _check_name(check)
    if name.startswith("check_array_api") and os.environ.get("SCIPY_ARRAY_API") is None:
        # check is a partial of (check function, estimator name, keywords): compare by repr
        key = (repr(estimator), repr(check))
        results = _array_api_results()
        assert key in results, f"{key} not run in the subprocess: {sorted(results)}"
        assert results[key] is None, results[key]
        return
    if name == "check_sample_weight_equivalence_on_dense_data":
        # Weights equal repeated rows up to rounding; as scikit-learn runs this check on its own MLPs
        # with per-check parameters, it runs here in float64 (float32 rounding grows over 200 epochs
        # beyond the check's 1e-7), without dropout (repeated rows draw other random masks) and
        # without early stopping (the validation split of 15 weighted rows is not that of the
        # repeated ones; scikit-learn's split ignores the weights likewise)
        estimator = clone(estimator).set_params(dtype="float64", dropout_keep_prob=1.0, early_stopping=False)
    try:
        with warnings.catch_warnings():
            if estimator.solver == "lbfgs":  # warns at max_iter as scikit-learn's own (tested below)
                warnings.simplefilter("ignore", ConvergenceWarning)
            check(estimator)
    except SkipTest as exc:
        # The only SkipTest sklearn raises for these estimators: the multilabel output-format check
        # of decision_function, which neither this MLPClassifier nor sklearn's own has (scores are
        # given by predict_proba). Any other skip fails here.
        assert name == "check_classifiers_multilabel_output_format_decision_function", (name, exc)
        assert not hasattr(estimator, "decision_function")
        pytest.skip(f"{name}: the estimator has no decision_function (as sklearn's MLPClassifier)")


# ---------------------------------------------------------------------- data
def blobs(n=200, classes=3, seed=0):
    X, y = make_classification(n_samples=n, n_features=6, n_informative=4, n_classes=classes,
                               n_clusters_per_class=1, class_sep=2.0, random_state=seed)
    return X, y


def regression(n=200, outputs=1, seed=0):
    X, y = make_regression(n_samples=n, n_features=5, n_informative=5, n_targets=outputs, noise=1.0,
                           random_state=seed)
    return StandardScaler().fit_transform(X), y / np.std(y, axis=0)


# ---------------------------------------------------------------------- behaviour
def test_grid_search_over_dropout_keep_prob():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    grid = GridSearchCV(MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=60,
                                      random_state=0),
                        {"dropout_keep_prob": [0.5, 0.8, 1.0]}, cv=3)
    grid.fit(X, y)
    assert grid.best_params_["dropout_keep_prob"] in (0.5, 0.8, 1.0)
    assert list(grid.cv_results_["param_dropout_keep_prob"]) == [0.5, 0.8, 1.0]
    assert grid.best_score_ > 0.8
    # the refitted best estimator has a Dropout layer exactly when p < 1
    n_dropout = sum(isinstance(layer, bp.Dropout) for layer in grid.best_estimator_.model_.layers)
    assert n_dropout == (grid.best_params_["dropout_keep_prob"] < 1)


@pytest.mark.parametrize("make", [
    lambda: (MLPRegressor(hidden_layer_sizes=(8,), batch_size=16, random_state=3), regression()),
    lambda: (MLPClassifier(hidden_layer_sizes=(8,), batch_size=16, dropout_keep_prob=0.7, random_state=3), blobs()),
    lambda: (MLPClassifier(hidden_layer_sizes=(8,), batch_size=16, solver="sgd", random_state=3), blobs(classes=2)),
], ids=["regressor", "multiclass+dropout", "binary+sgd"])
def test_partial_fit_equals_fit_for_one_epoch(make):
    est, (X, y) = make()
    fitted = clone(est).set_params(max_iter=1).fit(X, y)
    kwargs = {"classes": np.unique(y)} if isinstance(est, MLPClassifier) else {}
    partial = clone(est).partial_fit(X, y, **kwargs)
    for a, b in zip(fitted.model_.get_weights(), partial.model_.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert fitted.loss_curve_ == partial.loss_curve_ and partial.n_iter_ == 1 and partial.t_ == len(X)
    partial.partial_fit(X, y)
    assert partial.n_iter_ == 2 and partial.t_ == 2 * len(X) and len(partial.loss_curve_) == 2


def test_partial_fit_classes():
    X, y = blobs()
    clf = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
    with pytest.raises(ValueError, match="classes: expected all the class labels on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[y != 2], y[y != 2], classes=[0, 1, 2])   # a class absent from the first batch
    assert list(clf.classes_) == [0, 1, 2] and clf.predict_proba(X).shape == (len(X), 3)
    with pytest.raises(ValueError, match=r"labels \[7\] are not in classes_"):
        clf.partial_fit(X[:3], [0, 1, 7])
    with pytest.raises(ValueError, match="classes: expected"):
        clf.partial_fit(X, y, classes=[0, 1])


@pytest.mark.parametrize("classes", [2, 5])
def test_predict_proba_rows_sum_to_one(classes):
    X, y = blobs(classes=classes)
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), classes) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba)
    assert clf.score(X, y) > 0.9
    expected = ("logistic", 1) if classes == 2 else ("softmax", classes)
    assert (clf.out_activation_, clf.n_outputs_) == expected


@pytest.mark.parametrize("labels, dtype", [(["cat", "dog", "emu"], None), (["no", "yes"], object),
                                           ([-1, 3, 10], None), ([True, False], None)])
def test_labels_of_any_type(labels, dtype):
    X, codes = blobs(classes=len(labels))
    y = np.array(labels, dtype=dtype)[codes]
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0).fit(X, y)
    assert list(clf.classes_) == sorted(labels)
    pred = clf.predict(X)
    assert set(pred) <= set(labels) and (pred == y).mean() > 0.9
    assert clf.score(X, y) == (pred == y).mean()


def test_multilabel_and_multioutput():
    X, y = blobs(classes=3)
    Y = np.column_stack([y == 0, y == 1, y != 1]).astype(int)
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0).fit(X, Y)
    assert clf.predict(X).shape == Y.shape and clf.predict_proba(X).shape == Y.shape
    assert clf.score(X, Y) > 0.8 and clf.out_activation_ == "logistic"
    Xr, Yr = regression(outputs=3)
    reg = MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, random_state=0).fit(Xr, Yr)
    assert reg.predict(Xr).shape == (len(Xr), 3) and reg.score(Xr, Yr) > 0.9
    assert reg.predict(Xr).dtype == np.float64
    assert reg.fit(Xr, Yr[:, 0]).predict(Xr).shape == (len(Xr),)


@pytest.mark.parametrize("Est", [MLPRegressor, MLPClassifier])
def test_early_stopping_fills_validation_scores(Est):
    X, y = blobs(n=400) if Est is MLPClassifier else regression(n=400)
    est = Est(hidden_layer_sizes=(32,), learning_rate_init=0.05, early_stopping=True, n_iter_no_change=5,
              max_iter=500, random_state=0).fit(X, y)
    scores = est.validation_scores_
    assert len(scores) == est.n_iter_ == len(est.loss_curve_) and est.n_iter_ < 500
    assert est.best_validation_score_ == max(scores) and est.best_loss_ is None
    # stopped at the first epoch where n_iter_no_change + 1 epochs in a row did not beat the best
    # score so far by tol (sklearn's rule: an improvement below tol still becomes the best)
    count, best = 0, -np.inf
    for epoch, score in enumerate(scores):
        count = count + 1 if score < best + est.tol else 0
        best = max(best, score)
        if count > est.n_iter_no_change:
            break
    assert epoch == est.n_iter_ - 1 and count > est.n_iter_no_change
    assert est.score(X, y) > 0.8
    # without early stopping: best_loss_, no validation_scores_
    plain = clone(est).set_params(early_stopping=False, max_iter=20).fit(X, y)
    assert plain.best_loss_ == min(plain.loss_curve_) and not hasattr(plain, "validation_scores_")


@pytest.mark.parametrize("Est", [MLPRegressor, MLPClassifier])
def test_pickle_deepcopy_clone(Est):
    X, y = blobs() if Est is MLPClassifier else regression()
    est = Est(hidden_layer_sizes=(16,), dropout_keep_prob=0.9, max_iter=5, random_state=0).fit(X, y)
    for other in (pickle.loads(pickle.dumps(est)), copy.deepcopy(est)):
        np.testing.assert_array_equal(other.predict(X), est.predict(X))
        assert other.loss_curve_ == est.loss_curve_ and other.n_features_in_ == est.n_features_in_
    # training resumes exactly as if never pickled (optimiser state and RNG travel along)
    restored = pickle.loads(pickle.dumps(est))
    kwargs = {"classes": est.classes_} if Est is MLPClassifier else {}
    est.partial_fit(X, y, **kwargs)
    restored.partial_fit(X, y, **kwargs)
    np.testing.assert_array_equal(restored.predict(X), est.predict(X))
    fresh = clone(est)
    assert fresh.get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        fresh.predict(X)


@pytest.mark.parametrize("Est", [MLPRegressor, MLPClassifier])
def test_random_state_determinism(Est):
    X, y = blobs() if Est is MLPClassifier else regression()
    make = functools.partial(Est, hidden_layer_sizes=(16,), dropout_keep_prob=0.8, max_iter=10)
    a = make(random_state=7).fit(X, y).predict(X)
    np.testing.assert_array_equal(make(random_state=7).fit(X, y).predict(X), a)
    assert make(random_state=7).fit(X, y).model_.seed == 7
    b = make(random_state=8).fit(X, y)
    assert not np.array_equal(b.model_.get_weights()[0], make(random_state=7).fit(X, y).model_.get_weights()[0])
    np.random.seed(0)
    c = make().fit(X, y).predict(X)
    np.random.seed(0)
    np.testing.assert_array_equal(make().fit(X, y).predict(X), c)


def test_input_dtypes_and_n_features():
    X, y = blobs()
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    ref = clf.fit(X.astype(np.float32), y).predict_proba(X)
    for dtype in (np.float64, np.int64, np.int32):
        Xd = X.astype(dtype) if dtype == np.float64 else np.round(X * 10).astype(dtype)
        out = clone(clf).fit(Xd, y).predict_proba(Xd)
        assert out.dtype == np.float64 and out.shape == ref.shape
    np.testing.assert_array_equal(clone(clf).fit(X, y).predict_proba(X), ref)  # float32 model: same cast
    assert clf.n_features_in_ == 6 and clf.model_.dtype == "float32"
    assert clone(clf).set_params(dtype="float64").fit(X, y).model_.dtype == "float64"
    with pytest.raises(ValueError, match="X has 5 features, but MLPClassifier is expecting 6 features"):
        clf.predict(X[:, :5])


def test_warm_start_continues():
    X, y = regression()
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, warm_start=True, random_state=0).fit(X, y)
    w = reg.model_.get_weights()
    reg.fit(X, y)
    assert reg.n_iter_ == 6 and len(reg.loss_curve_) == 6
    cold = clone(reg).set_params(warm_start=False, max_iter=6).fit(X, y)
    np.testing.assert_array_equal(cold.model_.get_weights()[0], reg.model_.get_weights()[0])
    assert not np.array_equal(w[0], reg.model_.get_weights()[0])


def test_alpha_scaling_and_solvers():
    X, y = regression()
    for solver, cls in [("adam", bp.Adam), ("sgd", bp.SGD), ("rmsprop", bp.RMSprop), ("adagrad", bp.Adagrad)]:
        reg = MLPRegressor(hidden_layer_sizes=(4,), solver=solver, alpha=0.5, batch_size=50, max_iter=2,
                           random_state=0).fit(X, y)
        opt = reg.model_.optimizer
        assert isinstance(opt, cls)
        assert opt.weight_decay == pytest.approx(2 * 0.5)  # mse = 2 x sklearn's loss
        assert opt.decay_per_sample and not opt.decay_bias
    Xc, yc = blobs()
    clf = MLPClassifier(hidden_layer_sizes=(4,), alpha=0.5, max_iter=2, random_state=0).fit(Xc, yc)
    assert clf.model_.optimizer.weight_decay == pytest.approx(0.5)
    sgd = MLPClassifier(solver="sgd", momentum=0.5, nesterovs_momentum=True, max_iter=1).fit(Xc, yc)
    assert sgd.model_.optimizer.momentum == 0.5 and sgd.model_.optimizer.nesterov
    assert len(sgd.coefs_) == 2 and sgd.coefs_[0].shape == (6, 100) and sgd.intercepts_[1].shape == (3,)


@pytest.mark.parametrize("activation,factor", [("relu", 6.0), ("logistic", 2.0)])
def test_initial_weights_use_sklearns_bounds(activation, factor):
    """Before any step W and b of every layer are drawn from U(-bound, bound), bound =
    sqrt(factor / (fan_in + fan_out)) as scikit-learn draws them (factor 2 with logistic units),
    filling the interval, and the same random_state gives the same draw."""
    X, y = regression()
    reg = MLPRegressor(hidden_layer_sizes=(40, 30), activation=activation, random_state=3, max_iter=1,
                       learning_rate_init=1e-300, solver="sgd", momentum=0.0).fit(X, y)  # steps too small to move them
    dims = [X.shape[1], 40, 30, 1]
    for k, (W, b) in enumerate(zip(reg.coefs_, reg.intercepts_)):
        bound = np.sqrt(factor / (dims[k] + dims[k + 1]))
        assert W.shape == (dims[k], dims[k + 1]) and b.shape == (dims[k + 1],)
        assert np.abs(W).max() <= bound and np.abs(b).max() <= bound
        assert np.abs(W).max() > 0.8 * bound  # the draw fills the interval (not a narrower init)
        if k < 2:  # biases drawn too (a Keras-style init leaves them 0; for relu its W bound is the same)
            assert np.abs(b).max() > 0.5 * bound
    again = MLPRegressor(hidden_layer_sizes=(40, 30), activation=activation, random_state=3, max_iter=1,
                         learning_rate_init=1e-300, solver="sgd", momentum=0.0).fit(X, y)
    np.testing.assert_array_equal(again.coefs_[0], reg.coefs_[0])


@pytest.mark.parametrize("solver,momentum,nesterov,rtol", [
    ("sgd", 0.0, False, 1e-12), ("sgd", 0.9, True, 1e-12), ("adam", 0.9, False, 1e-3)])
@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_training_steps_are_sklearns(kind, solver, momentum, nesterov, rtol):
    """From the same weights, three epochs of partial_fit (no shuffling, batches of 16 over 50
    samples, so a 2-row last batch) give sklearn's MLP weights: alpha (weights only, per batch
    row), the loss scale and the update rules all line up. Adam agrees to 1e-3 relative only: sklearn
    adds epsilon to sqrt(v) before the bias correction, torch (and pybackprop) after it, which
    matters where a gradient is tiny."""
    from sklearn import neural_network

    X, y = (regression() if kind == "regressor" else blobs())
    X, y = X[:50], y[:50]
    params = dict(hidden_layer_sizes=(6,), activation="tanh", solver=solver, alpha=0.3, batch_size=16,
                  learning_rate_init=0.05, momentum=momentum, nesterovs_momentum=nesterov, shuffle=False,
                  random_state=0)
    ours = (MLPRegressor if kind == "regressor" else MLPClassifier)(dtype="float64", **params)
    theirs = getattr(neural_network, "MLPRegressor" if kind == "regressor" else "MLPClassifier")(**params)
    first = {"classes": np.unique(y)} if kind == "classifier" else {}
    ours.partial_fit(X, y, **first)  # builds both networks (and trains an epoch, which does not matter)
    theirs.partial_fit(X, y, **first)
    theirs.coefs_ = [w.copy() for w in ours.coefs_]  # the same start, and fresh optimisers on both sides
    theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
    del theirs._optimizer
    ours.model_.compile(loss=ours.model_.loss, optimizer=ours.model_.optimizer)
    for _ in range(3):
        ours.partial_fit(X, y)
        theirs.partial_fit(X, y)
    assert ours.model_._net.optimizer_step == 3 * 4
    for k, (a, b) in enumerate(zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-2, err_msg=f"{kind} {solver} parameter {k}")


@pytest.mark.parametrize("param, value, exc, match", [
    ("hidden_layer_sizes", (10, 0), ValueError, "hidden_layer_sizes: expected integers >= 1"),
    ("hidden_layer_sizes", "big", TypeError, "hidden_layer_sizes"),
    ("activation", "swish", ValueError, "activation: expected one of"),
    ("solver", "newton", ValueError, "solver: expected one of 'adam', 'sgd'"),
    ("learning_rate", "optimal", ValueError, "learning_rate: expected one of 'constant', 'invscaling', 'adaptive'"),
    ("power_t", -0.5, ValueError, r"power_t: expected a finite number in \[0.0, inf\)"),
    ("max_fun", 0, ValueError, "max_fun: expected an integer >= 1"),
    ("alpha", -1.0, ValueError, r"alpha: expected a finite number in \[0.0, inf\)"),
    ("batch_size", 0, ValueError, "batch_size: expected 'auto' or an integer >= 1"),
    ("batch_size", "big", ValueError, "batch_size: expected 'auto' or an integer"),
    ("learning_rate_init", 0.0, ValueError, "learning_rate_init"),
    ("max_iter", 0, ValueError, "max_iter: expected an integer >= 1"),
    ("momentum", 1.0, ValueError, "momentum"),
    ("validation_fraction", 1.0, ValueError, "validation_fraction"),
    ("dropout_keep_prob", 0.0, ValueError, "dropout_keep_prob: expected the probability of KEEPING"),
    ("dropout_keep_prob", 1.5, ValueError, "drop rate of Keras/PyTorch is 1 - dropout_keep_prob"),
    ("dtype", "float16", ValueError, "dtype: expected 'float32' or 'float64'"),
    ("random_state", "seed", TypeError, "random_state"),
    ("shuffle", "yes", TypeError, "shuffle: expected True or False"),
])
def test_bad_parameters_fail_at_fit_with_clear_errors(param, value, exc, match):
    X, y = blobs()
    clf = MLPClassifier(**{param: value})  # __init__ only stores
    assert clf.get_params()[param] == value
    with pytest.raises(exc, match=match):
        clf.fit(X, y)
    assert not hasattr(clf, "model_")


@pytest.mark.parametrize("param, value, exc", [
    # pybackprop's rule everywhere: TypeError for a wrong kind of value, ValueError for a wrong value
    ("alpha", True, TypeError), ("tol", np.nan, ValueError), ("solver", 3, TypeError),
    ("activation", None, TypeError), ("verbose", -1, ValueError), ("verbose", 0.5, TypeError),
    ("batch_size", 1.5, TypeError), ("random_state", -1, ValueError), ("random_state", 1.5, TypeError),
    ("hidden_layer_sizes", (4, 2.5), ValueError), ("dropout_keep_prob", "half", TypeError),
    ("dtype", None, TypeError), ("n_iter_no_change", 0, ValueError), ("early_stopping", 1, TypeError),
    ("learning_rate", 1, TypeError), ("power_t", "half", TypeError), ("max_fun", 2.5, TypeError),
])
def test_bad_parameters_follow_the_error_rule(param, value, exc):
    """The message follows pybackprop's rule (``exc`` is the kind it names); the class is
    InvalidParameterError, both a ValueError and a TypeError as scikit-learn's own, so an
    ``except ValueError`` (scikit-learn's convention) catches every bad parameter."""
    from pybackprop.sklearn import InvalidParameterError

    X, y = blobs(n=40)
    with pytest.raises(exc, match=rf"^{param}: expected .*, got ") as info:
        MLPRegressor(**{param: value}).fit(X, y)
    assert isinstance(info.value, InvalidParameterError)
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


def test_the_constraints_table_covers_every_parameter():
    """One row per parameter, in __init__'s order (as sklearn's check_param_validation asks of
    its own estimators), and the checks happen in fit and partial_fit, not in set_params."""
    for Est in (MLPRegressor, MLPClassifier):
        assert list(Est._parameter_constraints) == list(inspect.signature(Est.__init__).parameters)[1:]
        assert set(Est._parameter_constraints) == set(Est().get_params(deep=False))
    X, y = blobs(n=40)
    clf = MLPClassifier().set_params(max_iter=0, alpha=-1)  # the first bad row is reported
    with pytest.raises(ValueError, match="^alpha:"):
        clf.partial_fit(X, y, classes=np.unique(y))


def test_one_class_and_continuous_targets_are_rejected():
    X, y = blobs()
    with pytest.raises(ValueError, match="at least 2 classes; got 1 class"):
        MLPClassifier().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="Unknown label type"):
        MLPClassifier().fit(X, np.linspace(0, 1, len(X)))


def test_verbose_prints_the_loss(capsys):
    X, y = regression()
    MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, verbose=True, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Iteration 1, loss = ") and len(lines) == 3


def test_pipeline_with_dataframe():
    pd = pytest.importorskip("pandas")
    X, y = blobs()
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01,
                                                               max_iter=50, random_state=0))
    pipe.fit(df, y)
    assert pipe.score(df, y) > 0.8
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(df, y)
    assert list(clf.feature_names_in_) == list(df.columns)


def test_cross_validate_dropout_example():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "cross_validate_dropout.py"), "--quick"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "best keep probability p" in out.stdout and "mean CV accuracy" in out.stdout


# ---------------------------------------------------------------------- scikit-learn's own numbers
def _sk(est):
    """scikit-learn's own estimator with ``est``'s parameters (those both have)."""
    from sklearn import neural_network

    theirs = getattr(neural_network, type(est).__name__)()
    return theirs.set_params(**{k: v for k, v in est.get_params().items() if k in theirs.get_params()})


def _targets(kind):
    if kind.startswith("regressor"):
        X, y = regression(n=120, outputs=3 if kind == "regressor-3" else 1)
        return MLPRegressor, X, y
    X, y = blobs(n=150, classes=2 if kind == "binary" else 3)
    if kind == "multilabel":
        y = np.column_stack([y == 0, y == 1, y != 1]).astype(int)
    return MLPClassifier, X, y


def _assert_same_parameters(ours, theirs, rtol, atol=0.0):
    for k, (a, b) in enumerate(zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"parameter {k}")


@pytest.mark.parametrize("activation", ["relu", "logistic", "tanh"])
def test_initial_weights_are_sklearns(activation):
    """The same random_state draws the same initial W and b as scikit-learn's MLP (its RandomState,
    layer by layer, W then b), so runs from one seed start alike (a step of lr 1e-300 moves nothing)."""
    from sklearn.neural_network import MLPRegressor as Theirs

    X, y = regression()
    ours = MLPRegressor(hidden_layer_sizes=(40, 30), activation=activation, random_state=3, max_iter=1,
                        learning_rate_init=1e-300, solver="sgd", momentum=0.0, dtype="float64").fit(X, y)
    theirs = Theirs(hidden_layer_sizes=(40, 30), activation=activation)
    theirs._random_state = np.random.RandomState(3)
    theirs._initialize(y.reshape(-1, 1), [X.shape[1], 40, 30, 1], np.float64)
    _assert_same_parameters(ours, theirs, rtol=0.0)


@pytest.mark.parametrize("kind", ["regressor", "regressor-3", "binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("activation, alpha", [("tanh", 0.3), ("relu", 1e-4), ("logistic", 0.0)])
def test_lbfgs_is_sklearns(kind, activation, alpha):
    """solver="lbfgs" runs scikit-learn's L-BFGS-B on its objective (squared_error / 2 or log-loss,
    + alpha / (2 n) ||W||² on the weights only) from the same initial weights: the same iterations,
    the same weights to ~1e-9, loss_ in the units of loss_curve_ (the regressor's mse is twice
    scikit-learn's loss, the multilabel cross-entropy a mean over the labels), the same
    ConvergenceWarning at max_iter, no loss_curve_ and no partial_fit."""
    from sklearn.exceptions import ConvergenceWarning

    Est, X, y = _targets(kind)
    ours = Est(hidden_layer_sizes=(7, 5), activation=activation, solver="lbfgs", alpha=alpha, max_iter=30,
               random_state=0, dtype="float64")
    theirs = _sk(ours)
    with warnings.catch_warnings(record=True) as ours_w:
        warnings.simplefilter("always")
        ours.fit(X, y)
    with warnings.catch_warnings(record=True) as theirs_w:
        warnings.simplefilter("always")
        theirs.fit(X, y)
    assert [(w.category, str(w.message)) for w in ours_w] == [(w.category, str(w.message)) for w in theirs_w]
    assert all(issubclass(w.category, ConvergenceWarning) for w in ours_w)
    if kind.startswith("regressor"):  # the blobs converge before max_iter (no warning on either side)
        assert "lbfgs failed to converge after 30 iteration(s)" in str(ours_w[0].message)
    assert ours.n_iter_ == theirs.n_iter_
    scale = {"regressor": 2.0, "regressor-3": 2.0, "multilabel": 1 / 3}.get(kind, 1.0)
    assert ours.loss_ == pytest.approx(scale * theirs.loss_, rel=1e-8)
    _assert_same_parameters(ours, theirs, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(ours.predict_proba(X) if Est is MLPClassifier else ours.predict(X),
                               theirs.predict_proba(X) if Est is MLPClassifier else theirs.predict(X),
                               rtol=1e-8, atol=1e-10)
    assert not hasattr(ours, "loss_curve_") and not hasattr(ours, "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute .partial_fit."):  # sklearn's available_if
        ours.partial_fit(X, y)


def test_lbfgs_limits_and_convergence():
    """tol is L-BFGS-B's gtol (converged: no warning, fewer iterations than max_iter, as
    scikit-learn's), max_fun its maxfun; warm_start continues from the weights; float32 trains too."""
    from sklearn.exceptions import ConvergenceWarning

    X, y = regression(n=100)
    ours = MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", tol=1e-3, max_iter=500, random_state=1,
                        dtype="float64")
    theirs = _sk(ours)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ours.fit(X, y), theirs.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ < 500
    _assert_same_parameters(ours, theirs, rtol=1e-8, atol=1e-10)
    short = clone(ours).set_params(max_fun=5, tol=0.0)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        short.fit(X, y)
    with pytest.warns(ConvergenceWarning):
        their_short = _sk(short).fit(X, y)
    assert short.n_iter_ == their_short.n_iter_ <= 5
    _assert_same_parameters(short, their_short, rtol=1e-10, atol=1e-12)
    warm, their_warm = clone(short).set_params(warm_start=True), _sk(short).set_params(warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm.fit(X, y), their_warm.fit(X, y)
        first, first_loss = warm.coefs_[0], warm.loss_
        warm.fit(X, y), their_warm.fit(X, y)  # 5 more evaluations from there
    assert warm.loss_ < first_loss and not np.array_equal(first, warm.coefs_[0])
    _assert_same_parameters(warm, their_warm, rtol=1e-10, atol=1e-12)
    f32 = MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=200, random_state=0).fit(X, y)
    assert f32.model_.dtype == "float32" and f32.score(X, y) > 0.95


def test_lbfgs_refuses_dropout_and_restores_on_non_finite_results():
    X, y = regression(n=60)
    est = MLPRegressor(solver="lbfgs", dropout_keep_prob=0.8)
    with pytest.raises(ValueError, match=r"^dropout_keep_prob: expected 1.0 with solver='lbfgs'"):
        est.fit(X, y)
    assert not hasattr(est, "model_")


@pytest.mark.parametrize("kind", ["regressor", "binary", "multiclass"])
@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adaptive"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_sgd_learning_rates_and_early_stopping_are_sklearns(kind, learning_rate, early_stopping):
    """solver="sgd" with scikit-learn's schedules: "invscaling" (learning_rate_init / (t + 1) **
    power_t after each epoch, t the samples seen) and "adaptive" (divided by 5 where the tol /
    n_iter_no_change rule would stop, until <= 1e-6), with or without early stopping (the same
    validation split as scikit-learn's, stratified for two classes; the best weights restored):
    without shuffling, from the same random_state, every epoch's loss, validation score, the epoch
    count, the final learning rate and the weights are scikit-learn's (float64, ~1e-12), with
    alpha > 0 over several batches (each batch's L2 term in loss_curve_, as scikit-learn's)."""
    Est, X, y = _targets(kind)
    ours = Est(hidden_layer_sizes=(6,), activation="tanh", solver="sgd", alpha=0.1, batch_size=16,
               learning_rate=learning_rate, learning_rate_init=0.05, power_t=0.3, shuffle=False, max_iter=60,
               tol=0.05 if learning_rate == "adaptive" else 1e-4, n_iter_no_change=2 if learning_rate == "adaptive"
               else 10, early_stopping=early_stopping, random_state=0, dtype="float64")
    theirs = _sk(ours)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's ConvergenceWarning at max_iter
        ours.fit(X, y), theirs.fit(X, y)
    scale = 2.0 if kind == "regressor" else 1.0
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_
    np.testing.assert_allclose(np.array(ours.loss_curve_) / scale, theirs.loss_curve_, rtol=1e-12)
    assert ours.loss_ == ours.loss_curve_[-1] == pytest.approx(scale * theirs.loss_, rel=1e-12)
    assert ours._learning_rate == pytest.approx(theirs._optimizer.learning_rate, rel=1e-15)
    if learning_rate == "adaptive":
        assert ours._learning_rate < 0.05 / 5  # the schedule acted
    if early_stopping:
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-12)
        assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_, rel=1e-12)
        assert ours.best_loss_ is None and theirs.best_loss_ is None
    else:
        assert ours.best_loss_ == pytest.approx(scale * theirs.best_loss_, rel=1e-12)
    _assert_same_parameters(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("learning_rate", ["invscaling", "adaptive"])
def test_learning_rate_sequence_over_partial_fit_is_sklearns(learning_rate):
    """Epoch by epoch through partial_fit (which continues the schedule, as scikit-learn's optimiser
    does), the learning rate the core used in each epoch is scikit-learn's of that epoch, with Nesterov
    momentum (the core's momentum buffer rescaled so that its steps stay scikit-learn's)."""
    X, y = regression(n=80)
    ours = MLPRegressor(hidden_layer_sizes=(5,), solver="sgd", learning_rate=learning_rate, power_t=0.7,
                        learning_rate_init=0.02, batch_size=20, shuffle=False, tol=0.5, n_iter_no_change=1,
                        random_state=2, dtype="float64")
    theirs = _sk(ours)
    for _ in range(12):
        before = theirs._optimizer.learning_rate if hasattr(theirs, "_optimizer") else 0.02
        ours.partial_fit(X, y)
        theirs.partial_fit(X, y)
        used = ours.model_.history.history["lr"][-1] * 2.0  # the core runs at sklearn's lr / 2 (mse)
        assert used == pytest.approx(before, rel=1e-15)
        assert ours._learning_rate == pytest.approx(theirs._optimizer.learning_rate, rel=1e-15)
    assert theirs._optimizer.learning_rate < 0.02 / 5
    _assert_same_parameters(ours, theirs, rtol=1e-10, atol=1e-12)


def test_early_stopping_split_and_its_errors():
    """The validation set is scikit-learn's: ``train_test_split(test_size=validation_fraction,
    stratify=...)`` with its RandomState after the initial weights, stratified for two classes only
    (scikit-learn stratifies when n_outputs_ == 1); where scikit-learn would refuse (fewer than 2
    validation samples) the set grows to what the score needs instead."""
    from sklearn.model_selection import train_test_split

    X, y = blobs(n=101, classes=2)
    est = MLPClassifier(hidden_layer_sizes=(3,), early_stopping=True, validation_fraction=0.2, random_state=4,
                        max_iter=1).fit(X, y)

    def after_init():  # RandomState(4) after the draws of W0 (6, 3), b0, W1 (3, 1), b1
        rs = np.random.RandomState(4)
        for shape in [(6, 3), (3,), (3, 1), (1,)]:
            rs.uniform(size=shape)
        return rs

    _, val = est._split(len(X), y, 0.2, after_init())
    _, expected = train_test_split(np.arange(len(X)), test_size=0.2, random_state=after_init(), stratify=y)
    np.testing.assert_array_equal(val, expected)
    assert len(val) == 21 and abs(y[val].mean() - y.mean()) < 0.05
    _, tiny = MLPRegressor()._split(10, np.zeros(10), 0.1, np.random.RandomState(0))
    assert len(tiny) == 2
    with pytest.raises(ValueError, match="early_stopping: n_samples = 2 is too few"):
        MLPRegressor()._split(2, np.zeros(2), 0.5, np.random.RandomState(0))


# ---------------------------------------------------------------------- sample weights
def _weights(n, seed=0):
    return np.random.default_rng(seed).choice([0.0, 0.5, 1.0, 3.0], size=n)


@pytest.mark.parametrize("kind", ["regressor", "regressor-3", "binary", "multiclass", "multilabel"])
def test_sample_weight_lbfgs_is_sklearns(kind):
    """lbfgs with sample_weight minimises scikit-learn's weighted objective (the loss and the L2
    term divided by the weights' sum): the same iterations and weights as scikit-learn's."""
    Est, X, y = _targets(kind)
    w = _weights(len(X))
    ours = Est(hidden_layer_sizes=(6,), activation="tanh", solver="lbfgs", alpha=0.5, max_iter=25, random_state=0,
               dtype="float64")
    theirs = _sk(ours)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X, y, sample_weight=w), theirs.fit(X, y, sample_weight=w)
    assert ours.n_iter_ == theirs.n_iter_
    scale = {"regressor": 2.0, "regressor-3": 2.0, "multilabel": 1 / 3}.get(kind, 1.0)
    assert ours.loss_ == pytest.approx(scale * theirs.loss_, rel=1e-9)
    _assert_same_parameters(ours, theirs, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("kind", ["regressor", "binary", "multiclass"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_sample_weight_sgd_is_sklearns_with_one_batch(kind, early_stopping):
    """With one batch per epoch (batch_size="auto" on < 200 samples) the stochastic solvers' weighted
    loss is scikit-learn's (normalised by the weights' sum, the L2 term too; the weighted validation
    score with early stopping): sgd's epochs, losses, scores and weights equal scikit-learn's; and
    partial_fit with weights continues alike."""
    Est, X, y = _targets(kind)
    w = _weights(len(X), seed=1)
    ours = Est(hidden_layer_sizes=(6,), activation="tanh", solver="sgd", alpha=0.2, learning_rate_init=0.1,
               learning_rate="invscaling", max_iter=40, early_stopping=early_stopping, random_state=0,
               dtype="float64")
    theirs = _sk(ours)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X, y, sample_weight=w), theirs.fit(X, y, sample_weight=w)
    scale = 2.0 if kind == "regressor" else 1.0
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(np.array(ours.loss_curve_) / scale, theirs.loss_curve_, rtol=1e-11)
    if early_stopping:
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-11)
    _assert_same_parameters(ours, theirs, rtol=1e-10, atol=1e-12)
    if not early_stopping:
        kwargs = {"classes": np.unique(y)} if Est is MLPClassifier else {}
        ours_p, theirs_p = clone(ours), clone(theirs)
        for _ in range(3):
            ours_p.partial_fit(X, y, sample_weight=w, **kwargs)
            theirs_p.partial_fit(X, y, sample_weight=w, **kwargs)
        _assert_same_parameters(ours_p, theirs_p, rtol=1e-10, atol=1e-12)


#: the stochastic solvers as compared with scikit-learn's: sgd with Nesterov momentum, and adam with an
#: epsilon too small to count (scikit-learn adds epsilon to sqrt(v) before the bias correction, torch and
#: pybackprop after it: with the default 1e-8 the two differ where a gradient is tiny, to ~1e-3 relative,
#: see test_training_steps_are_sklearns; with epsilon=1e-30 they agree to rounding)
STOCHASTIC = [("sgd", dict(momentum=0.9, nesterovs_momentum=True)), ("adam", dict(epsilon=1e-30))]


@pytest.mark.parametrize("solver, extra", STOCHASTIC, ids=[s for s, _ in STOCHASTIC])
@pytest.mark.parametrize("kind", ["regressor", "regressor-3", "binary", "multiclass", "multilabel"])
def test_sample_weight_with_several_batches_is_sklearns(kind, solver, extra):
    """Mini-batches of 16 (the last one short), weights with zeros, alpha = 0.3: each batch's loss,
    gradient and L2 term divided by that batch's weights' sum, as scikit-learn's. Five epochs of fit,
    then three of partial_fit: the weights and every epoch's loss_curve_ (with each batch's L2 term
    at its weights before the step) are scikit-learn's to rounding (float64)."""
    Est, X, y = _targets(kind)
    w = _weights(len(X), seed=1)
    ours = Est(hidden_layer_sizes=(6,), activation="tanh", solver=solver, alpha=0.3, batch_size=16,
               learning_rate_init=0.05, shuffle=False, max_iter=5, random_state=0, dtype="float64", **extra)
    theirs = _sk(ours)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter (scikit-learn's)
        ours.fit(X, y, sample_weight=w), theirs.fit(X, y, sample_weight=w)
        for _ in range(3):
            ours.partial_fit(X, y, sample_weight=w), theirs.partial_fit(X, y, sample_weight=w)
    assert len(theirs.loss_curve_) == 8 and -(-len(X) // 16) > 2
    scale = {"regressor": 2.0, "regressor-3": 2.0, "multilabel": 1 / 3}.get(kind, 1.0)
    np.testing.assert_allclose(np.array(ours.loss_curve_) / scale, theirs.loss_curve_, rtol=1e-12)
    _assert_same_parameters(ours, theirs, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("solver, extra", STOCHASTIC, ids=[s for s, _ in STOCHASTIC])
def test_multi_target_regression_is_sklearns(solver, extra):
    """Three targets: scikit-learn's loss is squared_error / 2 averaged over the targets (half the
    core's mse), but its gradient is (prediction - y) over the rows, not divided by the targets, so
    the core's gradient is 2 / 3 of it: the regressor's lr, epsilon and decay follow that scale, and
    fit then partial_fit (batches of 16, alpha = 0.3) give scikit-learn's weights and loss_curve_."""
    X, y = regression(n=120, outputs=3)
    ours = MLPRegressor(hidden_layer_sizes=(6,), activation="tanh", solver=solver, alpha=0.3, batch_size=16,
                        learning_rate_init=0.05, shuffle=False, max_iter=5, random_state=0, dtype="float64", **extra)
    theirs = _sk(ours)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter (scikit-learn's)
        ours.fit(X, y), theirs.fit(X, y)
        for _ in range(3):
            ours.partial_fit(X, y), theirs.partial_fit(X, y)
    np.testing.assert_allclose(np.array(ours.loss_curve_) / 2.0, theirs.loss_curve_, rtol=1e-12)
    _assert_same_parameters(ours, theirs, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("solver, extra", STOCHASTIC, ids=[s for s, _ in STOCHASTIC])
def test_a_batch_of_weight_zero_makes_no_step(solver, extra):
    """A mini-batch whose weights are all zero has loss 0 and makes no step (scikit-learn's own
    divides by zero there): the weights are those of scikit-learn's fit without those rows, and
    loss_curve_ counts the batch's rows with loss 0."""
    X, y = blobs(n=150, classes=3)
    w = _weights(len(X), seed=2)
    w[144:] = 0.0  # the last batch (rows 144..149)
    ours = MLPClassifier(hidden_layer_sizes=(6,), activation="tanh", solver=solver, alpha=0.3, batch_size=16,
                         learning_rate_init=0.05, shuffle=False, max_iter=4, random_state=0, dtype="float64",
                         **extra)
    theirs = _sk(ours)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X, y, sample_weight=w), theirs.fit(X[:144], y[:144], sample_weight=w[:144])
    np.testing.assert_allclose(np.array(ours.loss_curve_) * 150 / 144, theirs.loss_curve_, rtol=1e-12)
    _assert_same_parameters(ours, theirs, rtol=1e-11, atol=1e-13)
    assert ours.model_.engine.net.optimizer_step == 4 * 9


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_integer_sample_weights_repeat_rows(solver):
    """Weights 0, 1, 2, ... equal removing or repeating the rows (one batch for adam)."""
    X, y = blobs(n=60, classes=3)
    w = np.random.default_rng(3).integers(0, 4, size=len(X))
    make = functools.partial(MLPClassifier, hidden_layer_sizes=(5,), solver=solver, max_iter=50, random_state=0,
                             dtype="float64", batch_size=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weighted = make().fit(X, y, sample_weight=w)
        repeated = make().fit(X.repeat(w, axis=0), y.repeat(w))
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("est", [
    MLPRegressor(hidden_layer_sizes=(8,), batch_size=16, max_iter=5, random_state=0, dtype="float64"),
    MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", batch_size=16, max_iter=5, random_state=0),
    MLPClassifier(hidden_layer_sizes=(8,), batch_size=1, max_iter=2, random_state=0, dtype="float64"),
    MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=20, random_state=0, dtype="float64")])
def test_sample_weights_of_one_change_nothing(est):
    """Weights of one are bitwise no weights: losses and weights (several batches, alpha > 0)."""
    X, y = regression(n=90) if isinstance(est, MLPRegressor) else blobs(n=90)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = clone(est).fit(X, y)
        b = clone(est).fit(X, y, sample_weight=np.ones(len(X)))
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(u, v)
    assert getattr(a, "loss_curve_", None) == getattr(b, "loss_curve_", None) and a.loss_ == b.loss_


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("weights, exc, match", [
    (np.ones(5), ValueError, r"^sample_weight: expected a 1-D array of 40 weights"),
    (np.ones((40, 2)), ValueError, r"^sample_weight: expected a 1-D array of 40 weights"),
    (np.r_[-1.0, np.ones(39)], ValueError, r"^sample_weight: expected weights >= 0"),
    (np.r_[np.nan, np.ones(39)], ValueError, r"^sample_weight: expected finite weights"),
    (np.zeros(40), ValueError, r"^sample_weight: expected at least one weight > 0"),
    (["a"] * 40, TypeError, r"^sample_weight"),
])
def test_bad_sample_weights(solver, weights, exc, match):
    X, y = blobs(n=40)
    est = MLPClassifier(solver=solver, max_iter=2)
    with pytest.raises(exc, match=match):
        est.fit(X, y, sample_weight=weights)
    assert not hasattr(est, "model_")
    fitted = MLPClassifier(solver="sgd", max_iter=2, random_state=0).fit(X, y)
    before = fitted.coefs_
    with pytest.raises(exc, match=match):
        fitted.partial_fit(X, y, sample_weight=weights)
    _assert_same_parameters(fitted, type("W", (), {"coefs_": before, "intercepts_": fitted.intercepts_}), rtol=0)
