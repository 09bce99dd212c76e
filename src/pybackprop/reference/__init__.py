"""pybackprop.reference: the pure-NumPy twin of the C++ core, written to be read.

It takes the same configs and weights as the core, draws the same random
numbers (PCG32, bit for bit) and does the same math, one small function per
concept. It has two jobs:

- to teach: ``network.Network.fit`` -> ``train_step`` -> forward, loss,
  backward, SGD update, each a few lines next to its local derivative
  (``functional.py``);
- to check: the core's tests compare every activation, gradient and weight
  with this reference, which is itself checked against finite differences
  and PyTorch.

It never imports ``pybackprop._core`` (nor anything of pybackprop outside
this folder), and it puts clarity before speed. The exact conventions it
shares with the core are in docs/internals.md.

Examples
--------
>>> import numpy as np
>>> from pybackprop.reference import Network
>>> cfg = {"input_dim": 3, "dtype": "float64", "seed": 0,
...        "layers": [{"class_name": "Dense", "units": 4, "use_bias": True,
...                    "init": "he_normal", "activation": {"name": "relu"}},
...                   {"class_name": "Dense", "units": 1, "use_bias": True,
...                    "init": "glorot_uniform", "activation": {"name": "identity"}}],
...        "compile": {"loss": "mse", "optimizer": {"class_name": "SGD", "lr": 0.05}}}
>>> net = Network.from_config(cfg)
>>> X = np.random.default_rng(0).normal(size=(64, 3)); y = X.sum(axis=1)
>>> hist = net.fit(X, y, epochs=20, batch_size=16)
>>> hist["loss"][-1] < hist["loss"][0]
True
"""

from . import functional, rng
from .functional import (
    ACTIVATIONS,
    LOSSES,
    Activation,
    Loss,
    dense_backward,
    dense_forward,
    sgd_update,
)
from .network import Dense, Network
from .rng import PCG32, init_weights, noise, permutation, stream

__all__ = [
    "ACTIVATIONS", "LOSSES", "Activation", "Loss", "Dense", "Network", "PCG32",
    "dense_backward", "dense_forward", "functional", "init_weights", "noise",
    "permutation", "rng", "sgd_update", "stream",
]
