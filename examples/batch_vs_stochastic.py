"""Stochastic, mini-batch and full-batch gradient descent on the same problem.

10,000 points, the textbook network; batch size 1 (stochastic: 10,000 updates
an epoch), 100 (mini-batch: 100 updates) and 10,000 (full batch: 1 update).
Prints the loss after each epoch and the time an epoch takes.

    python examples/batch_vs_stochastic.py [--epochs 10]
"""
import argparse
import time

import numpy as np

import pybackprop as bp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--samples", type=int, default=10_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(args.samples, 3))
    y = np.tanh(2 * X[:, 0] - X[:, 1]) + 0.5 * X[:, 2] ** 2
    print(f"{'batch size':>10s} {'updates/epoch':>13s} {'s/epoch':>8s}  loss after each epoch")
    for batch, lr in ((1, 0.01), (100, 0.1), (args.samples, 0.5)):
        model = bp.Sequential([bp.Dense(4, activation="relu", use_bias=False, init="he_normal"),
                               bp.Dense(4, activation="sigmoid", use_bias=False),
                               bp.Dense(1, use_bias=False)], input_dim=3, seed=0)
        model.compile(loss="mse", optimizer=bp.SGD(lr=lr, momentum=0.9))
        start = time.perf_counter()
        hist = model.fit(X, y, epochs=args.epochs, batch_size=batch, verbose=0)
        per_epoch = (time.perf_counter() - start) / args.epochs
        losses = " ".join(f"{v:.4f}" for v in hist.history["loss"])
        print(f"{batch:10d} {-(-args.samples // batch):13d} {per_epoch:8.4f}  {losses}")
    print("\nSmaller batches: more, noisier updates per epoch (lower loss per epoch, more time per epoch);"
          "\nthe full batch takes one exact gradient step per epoch and needs a larger lr and many epochs.")


if __name__ == "__main__":
    main()
