"""Dropout against overfitting, the textbook setting.

500 noisy training points with 20 features (4 of them matter) and a deep, wide
network with far more weights (~36,000) than points: without dropout it
memorises the noise (training loss near zero, validation loss far above the
noise floor); dropout with keep probability p = 0.8, or a keep probability
ramping from 1.0 down to 0.5 over training (with early stopping on the
validation loss), narrows the gap.

    python examples/dropout_overfitting.py [--epochs 150] [--plot curves.png]
"""
from __future__ import annotations

import argparse

import numpy as np

import pybackprop as bp


def make_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(2500, 20))
    signal = np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] - 0.5 * X[:, 3] ** 2
    y = signal + 0.3 * rng.normal(size=len(X))  # noise a big network can memorise
    return (X[:500], y[:500]), (X[500:], y[500:])


def make_model(dropout, seed: int = 0) -> bp.Sequential:
    """20 -> 128 -> 128 -> 128 -> 1 (ReLU), with a Dropout after each hidden layer when given."""
    layers = []
    for _ in range(3):
        layers.append(bp.Dense(128, activation="relu", init="he_normal"))
        if dropout is not None:
            layers.append(bp.Dropout(keep_prob=dropout))
    layers.append(bp.Dense(1))
    model = bp.Sequential(layers, input_dim=20, seed=seed)
    model.compile(loss="mse", optimizer=bp.SGD(lr=0.005, momentum=0.9))
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--plot", help="write the loss curves to this PNG (needs matplotlib)")
    args = parser.parse_args()
    (X, y), (Xv, yv) = make_data()
    ramp = bp.schedules.Linear(1.0, 0.5, steps=args.epochs)
    settings = {  # name: (keep_prob, callbacks)
        "no dropout": (None, []),
        "keep_prob 0.8": (0.8, []),
        "keep_prob 1.0 -> 0.5": (ramp, []),
        "1.0 -> 0.5, early stop": (ramp, [bp.EarlyStopping(patience=10, restore_best_weights=True)]),
    }
    print(f"{len(X)} training points, {len(Xv)} validation points, "
          f"{make_model(None).count_params():,} weights, {args.epochs} epochs, batch 32\n")
    print(f"{'setting':24s} {'epochs':>6s} {'train loss':>10s} {'val loss':>10s} {'gap':>8s}")
    curves = {}
    for name, (dropout, callbacks) in settings.items():
        model = make_model(dropout)
        hist = model.fit(X, y, epochs=args.epochs, batch_size=32, validation_data=(Xv, yv),
                         callbacks=callbacks, verbose=0)
        train, val = model.evaluate(X, y), model.evaluate(Xv, yv)  # both in inference mode
        curves[name] = hist.history
        print(f"{name:24s} {len(hist.epoch):6d} {train:10.4f} {val:10.4f} {val - train:8.4f}")
    print("\n(losses in inference mode with the final weights; the noise floor is 0.09)")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        for (name, h), color in zip(curves.items(), ("C0", "C1", "C2", "C3")):
            ax.plot(h["loss"], color=color, linestyle="--", label=f"{name} (train)")
            ax.plot(h["val_loss"], color=color, label=f"{name} (val)")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("MSE")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"curves written to {args.plot}")


if __name__ == "__main__":
    main()
