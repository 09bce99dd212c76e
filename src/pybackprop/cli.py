"""The ``pybackprop`` command line (also ``python -m pybackprop``).

- ``pybackprop demo``: train the textbook network (3 inputs → 4 ReLU → 4 sigmoid
  → 1 identity, no biases, squared error) on a built-in synthetic regression set
  with mini-batch SGD and show the loss falling.
- ``pybackprop explain``: the chain-rule walk-through of one SGD step of that
  network on one sample (``--html FILE``: also the step picture, one HTML page).
- ``pybackprop vanishing``: the first layer's gradient relative to the last in a
  deep net, sigmoid against tanh, relu and leaky_relu; and exploding gradients
  tamed by ``clip_norm``.
- ``pybackprop playground``: a local web page to train small networks on 2-D data
  and watch every weight, loss and gradient (``--no-browser``, ``--port``).
- ``pybackprop bench``: training speed against the NumPy reference and PyTorch
  (``--quick``: a subset in under a minute).
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional, Tuple

import numpy as np


def textbook_model(seed: int = 0, lr: float = 0.05, momentum: float = 0.9, dtype: str = "float32"):  # type: ignore[no-untyped-def]
    """The textbook network of the docs, compiled with MSE and SGD.

    >>> textbook_model().summary()
    Sequential (float32, seed 0)
    #   layer   units  activation  bias  params
    0   Dense   4      relu        no    12
    1   Dense   4      sigmoid     no    16
    2   Dense   1      identity    no    4
    Total params: 32
    """
    import pybackprop as bp

    model = bp.Sequential([
        bp.Dense(4, activation="relu", use_bias=False, init="he_normal"),
        bp.Dense(4, activation="sigmoid", use_bias=False),
        bp.Dense(1, activation="identity", use_bias=False),
    ], input_dim=3, dtype=dtype, seed=seed)
    model.compile(loss="mse", optimizer=bp.SGD(lr=lr, momentum=momentum))
    return model


def synthetic_regression(n: int = 2000, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """The demo's data: 3 features in [-1, 1], a smooth target plus a little noise.

    >>> X, y = synthetic_regression(10)
    >>> X.shape, y.shape
    ((10, 3), (10,))
    """
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n, 3))
    y = 0.8 * np.tanh(2.0 * X[:, 0] - X[:, 1]) + 0.5 * X[:, 2] ** 2 + 0.05 * rng.normal(size=n)
    return X, y


def demo(args: argparse.Namespace) -> int:
    X, y = synthetic_regression(args.samples, args.seed)
    n_train = int(0.8 * len(X))
    X_train, y_train, X_test, y_test = X[:n_train], y[:n_train], X[n_train:], y[n_train:]
    model = textbook_model(seed=args.seed, lr=args.lr)
    print("pybackprop demo: the textbook network, 3 inputs -> 4 ReLU -> 4 sigmoid -> 1 identity,")
    print(f"no biases, MSE, mini-batch SGD (lr {args.lr}, momentum 0.9, batch {args.batch_size}),")
    print(f"{n_train} training and {len(X) - n_train} test samples of a synthetic regression set.\n")
    baseline = float(np.mean((y_test - y_train.mean()) ** 2))
    print(f"before training: train MSE {model.evaluate(X_train, y_train):.4f}, "
          f"test MSE {model.evaluate(X_test, y_test):.4f} (predicting the mean: {baseline:.4f})")
    start = time.perf_counter()
    losses: List[float] = []
    val_losses: List[float] = []
    every = max(1, args.epochs // 10)
    for epoch in range(args.epochs):
        hist = model.fit(X_train, y_train, epochs=1, batch_size=args.batch_size,
                         validation_data=(X_test, y_test), verbose=0)
        losses.append(hist.history["loss"][0])
        val_losses.append(hist.history["val_loss"][0])
        if epoch % every == 0 or epoch == args.epochs - 1:
            bar = "#" * max(1, int(40 * losses[-1] / losses[0]))
            print(f"epoch {epoch + 1:4d}/{args.epochs}  loss {losses[-1]:.5f}  val_loss {val_losses[-1]:.5f}  {bar}")
    elapsed = time.perf_counter() - start
    train_mse, test_mse = model.evaluate(X_train, y_train), model.evaluate(X_test, y_test)
    print(f"\nafter {args.epochs} epochs ({elapsed:.2f} s): train MSE {train_mse:.4f}, test MSE {test_mse:.4f}")
    print(f"the loss fell by a factor {losses[0] / losses[-1]:.1f} over training")
    if args.plot:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("--plot needs matplotlib: pip install 'pybackprop[plot]'", file=sys.stderr)
            return 1
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(range(1, len(losses) + 1), losses, label="train loss")
        ax.plot(range(1, len(val_losses) + 1), val_losses, label="test loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("MSE")
        ax.set_yscale("log")
        ax.set_title("pybackprop demo: the textbook network")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"loss curve written to {args.plot}")
    return 0


def _floats(text: str) -> List[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 1,2,3, got {text!r}") from None


def explain_cmd(args: argparse.Namespace) -> int:
    if len(args.x) != 3:
        print(f"pybackprop explain: --x: expected 3 numbers (the textbook network has 3 inputs), got {len(args.x)}",
              file=sys.stderr)
        return 2
    model = textbook_model(seed=args.seed, lr=args.lr, momentum=0.0, dtype="float64")
    trace = model.explain(args.x, [args.y], lr=args.lr)
    print(trace.to_markdown() if args.markdown else trace)
    if args.html:
        import os
        import tempfile

        target = os.path.abspath(args.html)
        fd, tmp = tempfile.mkstemp(prefix=".pybackprop-", suffix=".html", dir=os.path.dirname(target))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(trace.to_html())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp's file is private; the page is an ordinary file
            os.replace(tmp, target)  # atomic: a reader sees the old file or the whole new one
        except BaseException:
            os.unlink(tmp)
            raise
        print(f"\nstep picture written to {args.html} (open it in a browser)")
    return 0


def vanishing_cmd(args: argparse.Namespace) -> int:
    from .diagnostics import exploding_comparison, vanishing_comparison

    rows = vanishing_comparison(depth=args.depth, width=args.width, epochs=args.epochs, seed=args.seed)
    print(f"Vanishing gradients: {args.depth} dense layers of {args.width} units, SGD lr 0.01 momentum 0.9, "
          f"{args.epochs} epochs on a synthetic regression set.\n")
    print(f"{'activation':12s} {'|dW first| / |dW last|':>24s} {'loss before':>12s} {'loss after':>11s}")
    for r in rows:
        print(f"{r['activation']:12s} {r['relative_grad']:24.2e} {r['loss_before']:12.4f} {r['loss_after']:11.4f}")
    print("\nEach sigmoid layer multiplies the gradient by at most 0.25 on its way back, so the first layers "
          "barely learn;\ntanh, relu and leaky_relu keep it near 1.\n")
    boom = exploding_comparison(epochs=args.epochs, seed=args.seed)
    print("Exploding gradients: 8 relu layers initialised 2x too large, SGD lr 0.01.\n")
    print(f"{'clip_norm':>10s} {'first |dW| (epoch 1)':>21s} {'loss before':>12s} {'loss after':>11s}  outcome")
    for r in boom:
        outcome = "trained" if r["diverged"] is None else \
            f"DivergenceError in epoch {r['diverged'][0]}, step {r['diverged'][1]}"
        print(f"{str(r['clip_norm']):>10s} {r['first_grad_norm']:21.4g} {r['loss_before']:12.4g} "
              f"{r['loss_after']:11.4g}  {outcome}")
    if args.plot:
        from .plot import _pyplot

        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(7, 4))
        for r in rows:
            ax.plot(range(1, len(r["grad_norm"]) + 1), r["grad_norm"], marker="o", label=r["activation"])
        ax.set_yscale("log")
        ax.set_xlabel("layer (1 = first)")
        ax.set_ylabel("gradient L2 norm, epoch 1")
        ax.set_title(f"gradient flow through {args.depth} layers")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"\nplot written to {args.plot}")
    return 0


def playground_cmd(args: argparse.Namespace) -> int:
    """``pybackprop playground``: serve the page until Ctrl-C (the browser opened unless ``--no-browser``)."""
    import webbrowser

    from .playground.server import make_server

    try:
        server = make_server(args.host, args.port)
    except OSError as exc:
        print(f"pybackprop playground: {exc.strerror}", file=sys.stderr)
        return 1
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}: other machines can reach the playground", file=sys.stderr)
    print(f"pybackprop playground: {server.url}  (Ctrl-C stops it)", flush=True)
    if not args.no_browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print("\nstopped", flush=True)
    finally:
        server.server_close()
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _add_seed_and_plot(p: argparse.ArgumentParser, plotted: str) -> None:
    """The options of a command that trains from a seed and can plot what it saw."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="PNG", help=f"write {plotted} to this file (needs matplotlib)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pybackprop", description="Backpropagation, fast and visible.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="train the textbook network and show the loss falling")
    p.add_argument("--epochs", type=_positive_int, default=40)
    p.add_argument("--batch-size", type=_positive_int, default=16)
    p.add_argument("--lr", type=_positive_float, default=0.05)
    p.add_argument("--samples", type=_positive_int, default=2000)
    _add_seed_and_plot(p, "the loss curve")
    p.set_defaults(func=demo)

    p = sub.add_parser("explain", help="the chain-rule walk-through of one SGD step of the textbook network")
    p.add_argument("--x", type=_floats, default=[1.0, 2.0, 3.0], help="the sample, e.g. 1,2,3")
    p.add_argument("--y", type=float, default=0.5, help="its target (default 0.5)")
    p.add_argument("--lr", type=_positive_float, default=0.1)
    p.add_argument("--seed", type=int, default=4, help="seed of the initial weights")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table instead")
    p.add_argument("--html", metavar="FILE", help="also write the step picture (one self-contained HTML page) to FILE")
    p.set_defaults(func=explain_cmd)

    p = sub.add_parser("vanishing", help="vanishing and exploding gradients in deep nets, shown")
    p.add_argument("--depth", type=_positive_int, default=12)
    p.add_argument("--width", type=_positive_int, default=32)
    p.add_argument("--epochs", type=_positive_int, default=20)
    _add_seed_and_plot(p, "per-layer gradient norms")
    p.set_defaults(func=vanishing_cmd)

    p = sub.add_parser("playground", help="train a small network in the browser and watch every number")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (0: a free one; default 8000)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--no-browser", action="store_true", help="only print the URL, do not open a browser")
    p.set_defaults(func=playground_cmd)

    from .bench.cli import add_parser as add_bench_parser

    add_bench_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``pybackprop`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
