"""Diabetes regression (scikit-learn's load_diabetes): pybackprop's MLPRegressor against
scikit-learn's own MLPRegressor and Ridge, on the same train/test split.

Protocol (fixed before looking at the test set):

- split: 75/25, ``random_state=0``; X and y standardised on the training part
  (predictions are mapped back to the original scale before scoring);
- both MLPs: one hidden layer of 64 ReLU units, Adam, learning rate 1e-3, and
  the same hyperparameters, those that 5-fold cross-validation on the training
  part picked for scikit-learn's MLPRegressor from alpha in {1, 3, 10}, batch
  size in {64, "auto"} and max_iter in {100, 200, 500}: alpha=1, batch_size=64,
  max_iter=500 (with the default tol / n_iter_no_change stopping rule);
- the L-BFGS rows: the same network and alpha with ``solver="lbfgs"`` (full
  batch, max_iter=500 iterations, the default tol): scikit-learn's own and
  pybackprop's, which runs scikit-learn's L-BFGS-B on the core's full-batch
  loss and gradient (from the same random_state, the same initial weights; over
  500 iterations of a ReLU network rounding differences grow, so the rows agree in
  quality, not digit for digit). With this alpha, L-BFGS run to max_iter on the full
  batch overfits (the Adam rows stop by tol after about 220 epochs): the rows show
  the solver as it is, the hyperparameters stay those chosen for the Adam MLP;
- each MLP is trained with random_state 0..seeds-1; the table shows the mean (and
  spread) over the seeds; Ridge's penalty is chosen by RidgeCV on the training part.

Prints test R², test MSE and fit time of each model.

    python examples/diabetes.py [--seeds 10] [--threads N]
"""
from __future__ import annotations

import argparse
import time
import warnings
from typing import Any, Dict, Optional, Sequence

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import RidgeCV
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor as SklearnMLPRegressor
from sklearn.preprocessing import StandardScaler

import pybackprop as bp
from pybackprop.sklearn import MLPRegressor

HIDDEN = (64,)
MLP_PARAMS = dict(hidden_layer_sizes=HIDDEN, alpha=1.0, batch_size=64, learning_rate_init=1e-3, max_iter=500)
LBFGS_PARAMS = dict(hidden_layer_sizes=HIDDEN, alpha=1.0, solver="lbfgs", max_iter=500)


def run(seeds: int = 10, verbose: bool = True) -> Dict[str, Dict[str, float]]:
    """Fit and score the models; returns {name: {r2, r2_std, mse, fit_time, epochs (or iterations)}}."""
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    y_mean, y_std = y_train.mean(), y_train.std()
    z_train = (y_train - y_mean) / y_std

    def evaluate(make: Any, n: int) -> Dict[str, float]:
        r2, mse, times, epochs = [], [], [], []
        for seed in range(n):
            model = make(seed)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # the MLPs, if max_iter is hit
                model.fit(X_train, z_train)
            times.append(time.perf_counter() - start)
            pred = model.predict(X_test) * y_std + y_mean
            r2.append(r2_score(y_test, pred))
            mse.append(mean_squared_error(y_test, pred))
            epochs.append(getattr(model, "n_iter_", 0))
        return {"r2": float(np.mean(r2)), "r2_std": float(np.std(r2)), "mse": float(np.mean(mse)),
                "fit_time": float(np.mean(times)), "epochs": float(np.mean(epochs))}

    results = {
        "Ridge (RidgeCV)": evaluate(lambda s: RidgeCV(alphas=np.logspace(-3, 3, 13)), 1),
        "sklearn MLPRegressor": evaluate(lambda s: SklearnMLPRegressor(random_state=s, **MLP_PARAMS), seeds),
        "pybackprop MLPRegressor": evaluate(lambda s: MLPRegressor(random_state=s, **MLP_PARAMS), seeds),
        "sklearn MLP lbfgs": evaluate(lambda s: SklearnMLPRegressor(random_state=s, **LBFGS_PARAMS), seeds),
        "pybackprop MLP lbfgs": evaluate(lambda s: MLPRegressor(random_state=s, **LBFGS_PARAMS), seeds),
        "pybackprop lbfgs float64": evaluate(lambda s: MLPRegressor(random_state=s, dtype="float64",
                                                                    **LBFGS_PARAMS), seeds),
    }
    if verbose:
        print(f"load_diabetes: {len(X_train)} training / {len(X_test)} test samples, 10 features; "
              f"MLPs 10-{'-'.join(map(str, HIDDEN))}-1 ReLU, Adam (batch 64) or L-BFGS, alpha=1, max_iter 500; "
              f"mean over {seeds} seeds; pybackprop on {bp.get_num_threads()} thread(s)")
        print(f"{'model':<25}  {'test R2':>14}  {'test MSE':>9}  {'iters':>6}  {'fit time':>9}")
        for name, r in results.items():
            spread = f" ± {r['r2_std']:.3f}" if r["r2_std"] else "        "
            epochs = f"{r['epochs']:.0f}" if r["epochs"] else "-"
            print(f"{name:<25}  {r['r2']:>6.4f}{spread}  {r['mse']:>9.1f}  {epochs:>6}  {r['fit_time']:>8.3f}s")
        sk, ours = results["sklearn MLPRegressor"], results["pybackprop MLPRegressor"]
        print(f"pybackprop vs sklearn MLP: R2 {ours['r2'] - sk['r2']:+.4f}, "
              f"fit {sk['fit_time'] / ours['fit_time']:.1f}x faster")
        sk, ours = results["sklearn MLP lbfgs"], results["pybackprop lbfgs float64"]
        print(f"pybackprop vs sklearn lbfgs (float64): R2 {ours['r2'] - sk['r2']:+.4f}, "
              f"fit {sk['fit_time'] / ours['fit_time']:.1f}x faster")
    return results


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="random_state 0..seeds-1 for each MLP")
    parser.add_argument("--threads", type=int, default=None, help="core threads (default: all CPUs)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        bp.set_num_threads(args.threads)
    return run(seeds=args.seeds)


if __name__ == "__main__":
    main()
