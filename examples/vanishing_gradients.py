"""Vanishing and exploding gradients, shown rather than told.

A 12-layer network with sigmoid, tanh, relu and leaky_relu: how large the first
layer's gradient is relative to the last layer's, and how far the loss falls;
then a ReLU net initialised too large, without and with clip_norm.

    python examples/vanishing_gradients.py [--plot flow.png]
"""
import argparse

from pybackprop import cli

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--plot", help="write the per-layer gradient norms to this PNG")
parser.add_argument("--epochs", default="20")
args = parser.parse_args()
cli.main(["vanishing", "--epochs", args.epochs] + (["--plot", args.plot] if args.plot else []))
