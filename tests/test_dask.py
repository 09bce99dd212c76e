"""Model selection on Dask: GridSearchCV over dropout_keep_prob with joblib's Dask backend.

A ``LocalCluster`` of 2 worker processes (1 thread each) runs a small grid
search of the scikit-learn adapter; the cross-validation results must equal
those of the sequential run exactly (every fit is seeded, and pybackprop's
results do not depend on the process or thread count). Skipped when dask,
distributed or scikit-learn are missing (``pip install "pybackprop[dask]"``).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")

import pybackprop as bp  # noqa: E402
from pybackprop.sklearn import MLPClassifier  # noqa: E402

# distributed's own notice on a slow disk, not about pybackprop
pytestmark = pytest.mark.filterwarnings("ignore:Creating scratch directories is taking:UserWarning")

ROOT = Path(__file__).resolve().parent.parent
SRC = Path(bp.__file__).resolve().parent.parent
GRID = {"dropout_keep_prob": [0.6, 0.8, 1.0]}


def data():
    from sklearn.datasets import make_classification

    return make_classification(n_samples=300, n_features=8, n_informative=4, n_classes=3, random_state=0)


def search(n_jobs):
    from sklearn.model_selection import GridSearchCV

    est = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=15, random_state=0,
                        dtype="float64")
    return GridSearchCV(est, GRID, cv=3, n_jobs=n_jobs)


@pytest.fixture(scope="module")
def cluster():
    # The workers are new processes: they must import this pybackprop too.
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), old]))
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as local:
            yield local
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old


def test_grid_search_on_dask_equals_sequential(cluster):
    X, y = data()
    sequential = search(n_jobs=None).fit(X, y)
    with distributed.Client(cluster) as client:
        on_dask = search(n_jobs=-1)
        with joblib.parallel_backend("dask"):
            on_dask.fit(X, y)
        assert len(client.scheduler_info()["workers"]) == 2
    for key in ("mean_test_score", "std_test_score", "split0_test_score", "split1_test_score",
                "split2_test_score"):
        np.testing.assert_array_equal(on_dask.cv_results_[key], sequential.cv_results_[key], err_msg=key)
    assert on_dask.best_params_ == sequential.best_params_
    np.testing.assert_array_equal(on_dask.best_estimator_.predict_proba(X),
                                  sequential.best_estimator_.predict_proba(X))


def test_example_against_a_running_scheduler(cluster):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    common = ["--samples", "300", "--max-iter", "5", "--cv", "2", "--keep-probs", "0.7", "1.0"]
    runs = {}
    for name, extra in (("dask", ["--scheduler", cluster.scheduler_address]), ("sequential", ["--sequential"])):
        proc = subprocess.run([sys.executable, str(ROOT / "examples" / "dask_grid_search.py"), *common, *extra],
                              capture_output=True, text=True, timeout=120, env=env)
        assert proc.returncode == 0, proc.stderr
        runs[name] = proc.stdout
    assert f"Dask at {cluster.scheduler_address}, 2 workers" in runs["dask"]
    scores = {name: out.split("scores:")[1].strip() for name, out in runs.items()}
    assert scores["dask"] == scores["sequential"]
