"""pybackprop.reference: the pure-NumPy twin of the C++ core, written to be read.

It takes the same configs and weights as the core, draws the same random
numbers (PCG32, bit for bit) and does the same math, one small function per
concept. It has two jobs:

- to teach: ``network.Network.fit`` -> ``train_step`` -> forward (Dense,
  Dropout, BatchNorm and LayerNorm layers), loss, backward, optimiser update (SGD, Adam, RMSprop,
  Adagrad), each a few lines next to its local derivative (``functional.py``);
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

from . import functional, numeric, rng
from .functional import (ACTIVATIONS, LOSSES, Activation, Loss, adagrad_update, adam_update, batchnorm_backward,
                         batchnorm_forward, batchnorm_running, clip_grad_norm, dense_backward, dense_forward,
                         dropout_backward, dropout_forward, dropout_scales, layernorm_backward, layernorm_forward,
                         rmsprop_update, schedule_value, sgd_update)
from .network import OPTIMIZERS, Dense, Dropout, Network, Norm
from .numeric import numeric_gradient
from .rng import PCG32, dropout_mask, init_weights, noise, permutation, stream

__all__ = [
    "ACTIVATIONS", "LOSSES", "OPTIMIZERS", "Activation", "Loss", "Dense", "Dropout", "Network", "Norm",
    "PCG32", "adagrad_update", "adam_update", "batchnorm_backward", "batchnorm_forward", "batchnorm_running",
    "clip_grad_norm", "dense_backward", "dense_forward",
    "dropout_backward", "dropout_forward", "dropout_mask", "dropout_scales", "functional",
    "layernorm_backward", "layernorm_forward",
    "init_weights", "noise", "numeric", "numeric_gradient", "permutation", "rmsprop_update", "rng", "schedule_value",
    "sgd_update", "stream",
]
