"""Choose the dropout keep probability p by 5-fold cross-validation (GridSearchCV) on load_digits.

pybackprop's MLPClassifier is a scikit-learn estimator, so GridSearchCV can
tune ``dropout_keep_prob`` (p = probability of KEEPING a hidden unit; 1 = no
dropout) like any other hyperparameter. The pipeline standardises the pixels
inside each fold; the folds are stratified and shuffled with a fixed seed.
Prints the table of p against the mean (and spread) of the validation
accuracy over the 5 folds, and the p chosen.

    python examples/cross_validate_dropout.py [--quick] [--threads N]

``--quick`` tries fewer values of p with fewer epochs (for the test suite).
"""
from __future__ import annotations

import argparse
import time
from typing import Any, Dict, Optional, Sequence

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import pybackprop as bp
from pybackprop.sklearn import MLPClassifier


def run(keep_probs: Sequence[float] = (0.3, 0.5, 0.7, 0.9, 1.0), epochs: int = 60, folds: int = 5,
        verbose: bool = True) -> Dict[str, Any]:
    X, y = load_digits(return_X_y=True)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("mlp", MLPClassifier(hidden_layer_sizes=(256,), batch_size=64, learning_rate_init=1e-3,
                                           max_iter=epochs, tol=0.0, n_iter_no_change=epochs, random_state=0))])
    search = GridSearchCV(pipe, {"mlp__dropout_keep_prob": list(keep_probs)},
                          cv=StratifiedKFold(folds, shuffle=True, random_state=0))
    start = time.perf_counter()
    search.fit(X, y)
    elapsed = time.perf_counter() - start
    res = search.cv_results_
    if verbose:
        print(f"load_digits ({len(X)} images), MLP 64-256-10 with dropout after the hidden layer, {epochs} epochs, "
              f"{folds}-fold stratified CV, {bp.get_num_threads()} thread(s)")
        print(f"{'keep prob p':>11}  {'mean CV accuracy':>16}  {'std':>6}  {'rank':>4}  {'fit s/fold':>10}")
        for i, p in enumerate(res["param_mlp__dropout_keep_prob"]):
            print(f"{p:>11.2f}  {res['mean_test_score'][i]:>16.4f}  {res['std_test_score'][i]:>6.4f}  "
                  f"{res['rank_test_score'][i]:>4d}  {res['mean_fit_time'][i]:>10.2f}")
        print(f"best keep probability p = {search.best_params_['mlp__dropout_keep_prob']} "
              f"(mean CV accuracy {search.best_score_:.4f}); search took {elapsed:.1f} s")
    return {"search": search, "best_keep_prob": search.best_params_["mlp__dropout_keep_prob"],
            "mean_scores": np.asarray(res["mean_test_score"]), "elapsed": elapsed}


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 values of p, 10 epochs")
    parser.add_argument("--threads", type=int, default=None, help="core threads (default: all CPUs)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        bp.set_num_threads(args.threads)
    if args.quick:
        return run(keep_probs=(0.5, 0.8, 1.0), epochs=10)
    return run()


if __name__ == "__main__":
    main()
