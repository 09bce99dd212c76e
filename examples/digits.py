"""Handwritten digits (scikit-learn's load_digits: 1797 8x8 images, 10 classes) with an MLP and dropout.

A fixed, stratified 75/25 train/test split (seed 0); pixels standardised on the
training set; one hidden layer of 256 ReLU units with dropout (keep
probability p = 0.5), softmax output, Adam, mini-batches of 64, 100 epochs.
Prints the test accuracy and the fit time.

    python examples/digits.py [--keep-prob 0.5] [--epochs 100] [--threads N]

Needs scikit-learn (for the data set and the estimator API).
"""
from __future__ import annotations

import argparse
import time
from typing import Any, Dict, Optional, Sequence

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import pybackprop as bp
from pybackprop.sklearn import MLPClassifier


def run(keep_prob: float = 0.5, epochs: int = 100, hidden: Sequence[int] = (256,), seed: int = 0,
        verbose: bool = True) -> Dict[str, Any]:
    """Train and evaluate; returns test accuracy, fit time and the fitted classifier."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    clf = MLPClassifier(hidden_layer_sizes=tuple(hidden), dropout_keep_prob=keep_prob, batch_size=64,
                        learning_rate_init=1e-3, max_iter=epochs, tol=0.0, n_iter_no_change=epochs,
                        random_state=seed)
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    fit_time = time.perf_counter() - start
    accuracy = clf.score(X_test, y_test)
    if verbose:
        print(f"load_digits: {len(X_train)} training and {len(X_test)} test images, 64 pixels, 10 classes")
        print(f"MLP 64-{'-'.join(map(str, hidden))}-10, ReLU, dropout keep_prob p={keep_prob}, Adam, "
              f"batch 64, {clf.n_iter_} epochs, {bp.get_num_threads()} thread(s)")
        print(f"test accuracy: {accuracy:.4f} ({round(accuracy * len(y_test))}/{len(y_test)})")
        print(f"fit time: {fit_time:.2f} s ({1000 * fit_time / clf.n_iter_:.1f} ms per epoch)")
    return {"accuracy": accuracy, "fit_time": fit_time, "classifier": clf}


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-prob", type=float, default=0.5, help="dropout keep probability p (1 = none)")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0, help="train/test split and network seed")
    parser.add_argument("--threads", type=int, default=None, help="core threads (default: all CPUs)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        bp.set_num_threads(args.threads)
    return run(keep_prob=args.keep_prob, epochs=args.epochs, seed=args.seed)


if __name__ == "__main__":
    main()
