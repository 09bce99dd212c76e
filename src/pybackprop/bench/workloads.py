"""The workloads of WORKLOADS.md: the table, the data, the initial weights and
what an epoch costs (FLOPs, bytes).

Every peer trains the same network from the same weights on the same data:
:func:`make_data` and :func:`init_weights` are the one definition of both.

>>> wl = WORKLOADS["small"]
>>> wl.steps, wl.epoch_samples, wl.n_params
(1562, 49984, 5313)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

__all__ = ["Workload", "WORKLOADS", "QUICK_WORKLOADS", "GEMM_BOUND", "make_data", "init_weights",
           "memory_estimate"]

InitWeights = List[Tuple[np.ndarray, Optional[np.ndarray]]]
"""``[(W, b), ...]`` per dense layer, b None without bias."""


@dataclass(frozen=True)
class Workload:
    """One row of WORKLOADS.md's table.

    Parameters
    ----------
    name : str
        The row's name, e.g. ``"seed-sgd"``.
    n_in : int
        Input features.
    layers : tuple of (int, str)
        ``(units, activation)`` per dense layer. For ``loss == "softmax_ce"``
        the last layer's activation is ``identity`` (the logits) and the
        softmax belongs to the loss.
    bias : bool
        Whether every dense layer has a bias.
    loss : str
        ``"mse"`` or ``"softmax_ce"``.
    lr, momentum : float
        SGD's learning rate and momentum.
    batch : int
        Mini-batch size.
    samples : int
        Generated samples; an epoch uses the drop-last prefix of
        :attr:`epoch_samples`.
    dtype : str
        ``"float32"`` or ``"float64"``.
    keep_prob : float or None
        An inverted dropout after every hidden activation, keeping this
        fraction (None: no dropout).

    Examples
    --------
    >>> wl = WORKLOADS["seed-minibatch"]
    >>> wl.shapes, wl.steps
    ([(3, 4), (4, 4), (4, 1)], 100)
    >>> wl.scaled(0.2).samples
    2000
    """

    name: str
    n_in: int
    layers: Tuple[Tuple[int, str], ...]
    bias: bool
    loss: str  # "mse" or "softmax_ce"
    lr: float
    momentum: float
    batch: int
    samples: int  # generated samples; an epoch uses the drop-last prefix
    dtype: str
    keep_prob: Optional[float] = None

    @property
    def n_out(self) -> int:
        """Units of the last layer."""
        return self.layers[-1][0]

    @property
    def steps(self) -> int:
        """Full batches in an epoch (the last partial batch is dropped)."""
        return self.samples // self.batch

    @property
    def epoch_samples(self) -> int:
        """Samples an epoch trains on: ``steps * batch``."""
        return self.steps * self.batch

    @property
    def shapes(self) -> List[Tuple[int, int]]:
        """``(fan_in, fan_out)`` of each dense layer."""
        dims = [self.n_in] + [u for u, _ in self.layers]
        return list(zip(dims[:-1], dims[1:]))

    @property
    def n_params(self) -> int:
        """Weights and biases of the network."""
        return sum(i * o + (o if self.bias else 0) for i, o in self.shapes)

    @property
    def flops_per_sample(self) -> int:
        """Dense matmuls only: forward 2·in·out per layer, backward twice that."""
        return 3 * sum(2 * i * o for i, o in self.shapes)

    @property
    def flops_per_epoch(self) -> int:
        """:attr:`flops_per_sample` times :attr:`epoch_samples`."""
        return self.flops_per_sample * self.epoch_samples

    def describe(self) -> str:
        """One line for the report's heading.

        Examples
        --------
        >>> print(WORKLOADS["seed-sgd"].describe())
        3 → 4 relu → 4 sigmoid → 1 identity, no bias, MSE, SGD lr 0.01, batch 1, 10,000 samples/epoch (10,000 steps), float32
        """
        parts = [str(self.n_in)]
        for k, (units, act) in enumerate(self.layers):
            last = k == len(self.layers) - 1
            parts.append(f"{units} {act}" + ("" if last or self.keep_prob is None
                                              else f" → dropout(keep {self.keep_prob:g})"))
        opt = f"SGD lr {self.lr:g}" + (f", momentum {self.momentum:g}" if self.momentum else "")
        loss = "MSE" if self.loss == "mse" else "softmax cross-entropy"
        return (f"{' → '.join(parts)}, {'bias' if self.bias else 'no bias'}, {loss}, {opt}, "
                f"batch {self.batch}, {self.epoch_samples:,} samples/epoch ({self.steps:,} steps), {self.dtype}")

    def scaled(self, scale: float) -> "Workload":
        """The same workload on ``scale`` times the samples (at least two batches)."""
        if scale == 1.0:
            return self
        return replace(self, samples=max(2 * self.batch, int(round(self.samples * scale))))

    @classmethod
    def from_dict(cls, record: Dict[str, Any]) -> "Workload":
        """The workload of ``dataclasses.asdict(wl)`` (after a JSON round trip,
        where the layers' tuples came back as lists).

        Examples
        --------
        >>> import json
        >>> from dataclasses import asdict
        >>> wl = WORKLOADS["mnist-like"]
        >>> Workload.from_dict(json.loads(json.dumps(asdict(wl)))) == wl
        True
        """
        return cls(**{**record, "layers": tuple(tuple(x) for x in record["layers"])})


_SEED = ((4, "relu"), (4, "sigmoid"), (1, "identity"))
_WIDE = ((2048, "relu"), (2048, "relu"), (1024, "identity"))

WORKLOADS: Dict[str, Workload] = {w.name: w for w in [
    Workload("seed-sgd", 3, _SEED, False, "mse", 0.01, 0.0, 1, 10_000, "float32"),
    Workload("seed-minibatch", 3, _SEED, False, "mse", 0.01, 0.0, 100, 10_000, "float32"),
    Workload("small", 16, ((64, "tanh"), (64, "tanh"), (1, "identity")), True, "mse", 0.01, 0.9, 32,
             50_000, "float32"),
    Workload("mnist-like", 784, ((256, "relu"), (256, "relu"), (10, "identity")), True, "softmax_ce", 0.05,
             0.0, 64, 20_000, "float32", keep_prob=0.8),
    Workload("wide", 1024, _WIDE, True, "mse", 0.001, 0.0, 256, 4096, "float32"),
    Workload("wide-f64", 1024, _WIDE, True, "mse", 0.001, 0.0, 256, 4096, "float64"),
]}
"""The rows of WORKLOADS.md, by name."""
QUICK_WORKLOADS = ("seed-sgd", "seed-minibatch", "small")
"""The workloads of ``--quick``."""
GEMM_BOUND = ("mnist-like", "wide", "wide-f64")
"""Workloads where the fraction of the machine's GEMM rate is meaningful."""


def make_data(wl: Workload) -> Tuple[np.ndarray, np.ndarray]:
    """The workload's data, as WORKLOADS.md defines it.

    ``default_rng(0)``; X ~ N(0, 1); a teacher ``tanh(X @ A) @ B`` with
    A ~ N(0, 1/n_in) (n_in×32) and B ~ N(0, 1/32) (32×n_out), drawn after X.

    Parameters
    ----------
    wl : Workload
        The workload (its ``samples``, ``n_in``, ``n_out``, ``loss``, ``dtype``).

    Returns
    -------
    X : ndarray, shape (samples, n_in)
        C-contiguous, in the workload's dtype.
    Y : ndarray
        For MSE the teacher's output, (samples, n_out) in the workload's dtype;
        for softmax cross-entropy the int64 labels ``argmax`` of it, (samples,).

    Examples
    --------
    >>> X, Y = make_data(WORKLOADS["seed-sgd"])
    >>> X.shape, Y.shape, X.dtype
    ((10000, 3), (10000, 1), dtype('float32'))
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(wl.samples, wl.n_in))
    A = rng.normal(0.0, math.sqrt(1.0 / wl.n_in), size=(wl.n_in, 32))
    B = rng.normal(0.0, math.sqrt(1.0 / 32), size=(32, wl.n_out))
    T = np.tanh(X @ A) @ B
    Xc = np.ascontiguousarray(X, dtype=wl.dtype)
    if wl.loss == "softmax_ce":
        return Xc, np.argmax(T, axis=1).astype(np.int64)
    return Xc, np.ascontiguousarray(T, dtype=wl.dtype)


def init_weights(wl: Workload) -> InitWeights:
    """The workload's initial weights, the same for every peer.

    ``default_rng(1)``, drawn layer by layer, W (in×out) then b (out,), each
    ~ U(-1/√in, 1/√in) (torch's ``nn.Linear`` bound); b is None (and not drawn)
    without bias.

    Parameters
    ----------
    wl : Workload
        The workload (its ``shapes``, ``bias``, ``dtype``).

    Returns
    -------
    list of (ndarray, ndarray or None)
        ``[(W, b), ...]`` per dense layer, in the workload's dtype.

    Examples
    --------
    >>> [(W.shape, b) for W, b in init_weights(WORKLOADS["seed-sgd"])]
    [((3, 4), None), ((4, 4), None), ((4, 1), None)]
    """
    rng = np.random.default_rng(1)
    out: InitWeights = []
    for fan_in, fan_out in wl.shapes:
        bound = 1.0 / math.sqrt(fan_in)
        W = rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype(wl.dtype)
        b = rng.uniform(-bound, bound, size=(fan_out,)).astype(wl.dtype) if wl.bias else None
        out.append((W, b))
    return out


def memory_estimate(wl: Workload) -> Dict[str, int]:
    """Bytes of what training must hold.

    The data, parameters, gradients, optimiser state and one batch of
    activations (inputs and every layer's output). ``small`` networks are
    dwarfed by the interpreter's own pages.

    Parameters
    ----------
    wl : Workload
        The workload.

    Returns
    -------
    dict of str to int
        ``data``, ``parameters``, ``gradients``, ``optimiser``, ``activations``
        and their ``total``, in bytes.

    Examples
    --------
    >>> memory_estimate(WORKLOADS["seed-sgd"])["total"]   # the data: 10,000 × (3 + 1) float32
    160304
    """
    item = np.dtype(wl.dtype).itemsize
    y_cols = wl.n_out  # one-hot targets for the classifier
    params = wl.n_params * item
    parts = {
        "data": wl.samples * (wl.n_in + y_cols) * item,
        "parameters": params,
        "gradients": params,
        "optimiser": params if wl.momentum else 0,
        "activations": wl.batch * (wl.n_in + sum(u for u, _ in wl.layers)) * item,
    }
    parts["total"] = sum(parts.values())
    return parts
