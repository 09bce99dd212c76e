"""Cross-validated grid search over the dropout keep probability, on a Dask cluster.

    python examples/dask_grid_search.py                      # a LocalCluster on this machine
    python examples/dask_grid_search.py --scheduler tcp://head-node:8786   # an existing cluster
    python examples/dask_grid_search.py --sequential         # no Dask, for comparison

scikit-learn's ``GridSearchCV`` runs its (parameter, fold) fits through joblib;
under ``joblib.parallel_backend("dask")`` every fit is a task on the Dask
workers. The pybackprop estimators pickle (through pybackprop's own file
format) and release the GIL while training, so each worker process (or thread)
trains one model at a time. Every worker needs pybackprop installed (the same
version) — see docs/distributed.md.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def make_data(samples: int, seed: int = 0):
    from sklearn.datasets import make_classification

    return make_classification(n_samples=samples, n_features=20, n_informative=6, n_redundant=4,
                               n_classes=3, random_state=seed)


def make_search(max_iter: int, keep_probs, cv: int, n_jobs):
    from sklearn.model_selection import GridSearchCV

    from pybackprop.sklearn import MLPClassifier

    estimator = MLPClassifier(hidden_layer_sizes=(64, 64), learning_rate_init=0.003, max_iter=max_iter,
                              random_state=0, dtype="float64")
    return GridSearchCV(estimator, {"dropout_keep_prob": list(keep_probs)}, cv=cv, n_jobs=n_jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheduler", default=None,
                        help="address of a running Dask scheduler, e.g. tcp://10.0.0.1:8786 "
                             "(default: start a LocalCluster of --workers processes)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sequential", action="store_true", help="run without Dask")
    parser.add_argument("--samples", type=int, default=1500)
    parser.add_argument("--max-iter", type=int, default=40)
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--keep-probs", type=float, nargs="+", default=[0.5, 0.7, 0.9, 1.0])
    args = parser.parse_args()

    X, y = make_data(args.samples)
    start = time.perf_counter()
    if args.sequential:
        search = make_search(args.max_iter, args.keep_probs, args.cv, n_jobs=None).fit(X, y)
        where = "sequential"
    else:
        import joblib
        from dask.distributed import Client, LocalCluster

        cluster = None
        if args.scheduler is None:
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
        client = Client(args.scheduler or cluster)
        try:
            where = f"Dask at {client.scheduler.address}, {len(client.scheduler_info()['workers'])} workers"
            search = make_search(args.max_iter, args.keep_probs, args.cv, n_jobs=-1)
            with joblib.parallel_backend("dask"):
                search.fit(X, y)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    elapsed = time.perf_counter() - start
    print(f"{where}: {len(args.keep_probs) * args.cv} fits in {elapsed:.1f} s")
    print("dropout_keep_prob  mean CV accuracy  std")
    for p, mean, std in zip(search.cv_results_["param_dropout_keep_prob"], search.cv_results_["mean_test_score"],
                            search.cv_results_["std_test_score"]):
        print(f"{float(p):<17.2f}  {mean:<16.6f}  {std:.6f}")
    print(f"best: dropout_keep_prob = {search.best_params_['dropout_keep_prob']} "
          f"(accuracy {search.best_score_:.6f})")
    print("scores:", " ".join(repr(float(s)) for s in np.asarray(search.cv_results_["mean_test_score"])))


if __name__ == "__main__":
    main()
