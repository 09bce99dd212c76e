"""Weight initialisers (Keras formulas; biases always start at zero).

>>> import pybackprop as bp
>>> sorted(bp.initializers.INITIALIZERS)[:3]
['glorot_normal', 'glorot_uniform', 'he_normal']
>>> bp.initializers.canonical("xavier_uniform")
'glorot_uniform'

Values come from the model's seeded PCG32 generator (docs/internals.md), so a
seed gives the same weights on every platform. An explicit array may be given
instead of a name.
"""
from __future__ import annotations

from typing import Dict

from ._validation import fail

#: name -> formula, for the docs and `summary`
INITIALIZERS: Dict[str, str] = {
    "random_normal": "N(0, 0.05²)",
    "random_uniform": "U(-0.05, 0.05)",
    "glorot_uniform": "U(±sqrt(6 / (fan_in + fan_out)))",
    "glorot_normal": "truncated N(0, 2 / (fan_in + fan_out))",
    "he_normal": "truncated N(0, 2 / fan_in)",
    "he_uniform": "U(±sqrt(6 / fan_in))",
    "zeros": "0",
}
ALIASES = {"xavier_uniform": "glorot_uniform", "xavier_normal": "glorot_normal"}


def canonical(name: str) -> str:
    """The canonical name of an initialiser (resolving the xavier aliases)."""
    if not isinstance(name, str):
        fail("init", "an initialiser name or an array", name, TypeError)
    key = ALIASES.get(name, name)
    if key not in INITIALIZERS:
        fail("init", "one of " + ", ".join(sorted([*INITIALIZERS, *ALIASES])) + ", or an array", name)
    return key
