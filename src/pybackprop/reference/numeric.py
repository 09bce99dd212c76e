"""Central finite differences: the one numeric gradient of the project.

``bp.gradient_check`` uses it against the core, the tests against the core and
against this reference. Pure NumPy, like the rest of the folder.

>>> import numpy as np
>>> w = np.array([1.0, 2.0])
>>> np.round(numeric_gradient(lambda: float((w ** 2).sum()), w), 6)   # d/dw sum(w^2) = 2w
array([2., 4.])
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional

import numpy as np


def numeric_gradient(loss: Callable[[], float], x: np.ndarray, eps: float = 1e-6,
                     positions: Optional[Iterable[int]] = None) -> np.ndarray:
    """Central differences ``(loss(x + eps e_i) - loss(x - eps e_i)) / (2 eps)`` for each entry of ``x``.

    ``x`` is changed in place (it is the array ``loss`` reads, e.g. a weight
    view) and every entry is restored. With ``positions`` (flat indices) only
    those entries are differenced; the others stay 0. The result is float64.
    """
    g = np.zeros(x.shape, dtype=np.float64)
    for i in range(x.size) if positions is None else positions:
        idx = np.unravel_index(int(i), x.shape)
        old = x[idx]
        x[idx] = old + eps
        up = loss()
        x[idx] = old - eps
        down = loss()
        x[idx] = old
        g[idx] = (up - down) / (2 * eps)
    return g
