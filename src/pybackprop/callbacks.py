"""Training history (and, later, callbacks).

>>> h = History()
>>> h.history
{}
"""
from __future__ import annotations

from typing import Any, Dict, List


class History:
    """What ``fit`` returns: one entry per epoch under each key.

    Attributes
    ----------
    history : dict
        ``"loss"``: mean training loss of the epoch (sample-weighted over its
        mini-batches, as they were seen); ``"grad_norm"``: per epoch, the list
        of per-layer gradient L2 norms (over W and b, averaged over the epoch's
        steps); ``"val_loss"`` when validation data was given.
    epoch : list of int
        The model's epoch numbers (they continue across ``fit`` calls).

    Examples
    --------
    >>> import numpy as np, pybackprop as bp
    >>> m = bp.Sequential([bp.Dense(1)], input_dim=2, seed=0)
    >>> m.compile(loss="mse", optimizer=bp.SGD(lr=0.1))
    >>> h = m.fit(np.ones((4, 2)), np.ones(4), epochs=3, verbose=0)
    >>> len(h.history["loss"]), len(h.history["grad_norm"][0])
    (3, 1)
    """

    def __init__(self) -> None:
        self.history: Dict[str, List[Any]] = {}
        self.epoch: List[int] = []
        self.params: Dict[str, Any] = {}

    def append(self, epoch: int, logs: Dict[str, Any]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"
