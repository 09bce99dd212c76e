"""The seeded random numbers of pybackprop, bit for bit as the C++ core draws them.

One generator, PCG32 (O'Neill's XSH-RR variant: 64-bit state, 32-bit output),
written with plain Python integers masked to 64 and 32 bits so that every
platform gives the same bits. Everything random in a model comes from a fresh
generator ``PCG32(seed, stream(purpose, counter, index))``:

=========  =======  =====================  ==============================
purpose    value    counter                index
=========  =======  =====================  ==============================
INIT       1        0                      layer index (in the config)
SHUFFLE    2        epoch (epoch_counter)  0
DROPOUT    3        step (step_counter)    layer index
NOISE      4        step (step_counter)    layer index
=========  =======  =====================  ==============================

Floating-point draws are made in float64 and cast to the model dtype last.
"""

from __future__ import annotations

import math

import numpy as np

MASK32 = (1 << 32) - 1
MASK64 = (1 << 64) - 1
MULT = 6364136223846793005

INIT, SHUFFLE, DROPOUT, NOISE = 1, 2, 3, 4

# Keras divides the stddev of a truncated normal by this number: the standard
# deviation of N(0, 1) truncated to [-2, 2], so the *truncated* draws end up
# with the stddev the formula asks for.
TRUNCATED_NORMAL_STD = 0.87962566103423978


class PCG32:
    """PCG32 generator (XSH-RR), as O'Neill's ``pcg32_srandom_r``/``pcg32_random_r``.

    Parameters
    ----------
    seed : int
        Initial state (taken mod 2**64).
    stream : int
        Stream selector (sequence); ``inc = (stream << 1 | 1) mod 2**64``.

    Examples
    --------
    >>> g = PCG32(42, 54)
    >>> hex(g.next())
    '0xa15c02b7'
    """

    def __init__(self, seed: int, stream: int) -> None:
        self.inc = ((stream << 1) | 1) & MASK64
        self.state = 0
        self.next()
        self.state = (self.state + seed) & MASK64
        self.next()

    def next(self) -> int:
        """Advance the state and return the next 32-bit output.

        Examples
        --------
        >>> PCG32(42, 54).next() == 0xA15C02B7
        True
        """
        old = self.state
        self.state = (old * MULT + self.inc) & MASK64
        xorshifted = (((old >> 18) ^ old) >> 27) & MASK32
        rot = old >> 59
        return ((xorshifted >> rot) | (xorshifted << ((-rot) & 31))) & MASK32

    def uniform01(self) -> float:
        """Uniform float64 in [0, 1) with 53 random bits (27 + 26 from two outputs).

        Examples
        --------
        >>> 0.0 <= PCG32(0, 1).uniform01() < 1.0
        True
        """
        a = self.next() >> 5
        b = self.next() >> 6
        return (a * 67108864 + b) / 9007199254740992.0  # (a * 2**26 + b) / 2**53

    def normal(self) -> float:
        """Standard normal by Box-Muller, one value per call (the sine half is dropped).

        Examples
        --------
        >>> isinstance(PCG32(0, 1).normal(), float)
        True
        """
        u1 = 1.0 - self.uniform01()  # in (0, 1], so log(u1) is finite
        u2 = self.uniform01()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)

    def below(self, n: int) -> int:
        """Unbiased integer in [0, n) by rejection (O'Neill's ``bounded_rand``), n < 2**32.

        Examples
        --------
        >>> 0 <= PCG32(0, 1).below(10) < 10
        True
        """
        threshold = ((1 << 32) - n) % n
        while True:
            r = self.next()
            if r >= threshold:
                return r % n


def stream(purpose: int, counter: int, index: int) -> int:
    """Stream number of one use of randomness: ``purpose << 56 | counter << 16 | index``.

    Examples
    --------
    >>> hex(stream(SHUFFLE, 3, 0))
    '0x200000000030000'
    """
    return (purpose << 56) | (counter << 16) | index


def permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """Shuffled sample order of one epoch: Fisher-Yates driven by ``below``.

    Parameters
    ----------
    seed : int
        The model's seed.
    epoch : int
        The model's ``epoch_counter`` for this epoch.
    n : int
        Number of samples.

    Returns
    -------
    numpy.ndarray
        int64 array of shape (n,), a permutation of ``arange(n)``.

    Examples
    --------
    >>> sorted(permutation(0, 0, 5).tolist())
    [0, 1, 2, 3, 4]
    """
    gen = PCG32(seed, stream(SHUFFLE, epoch, 0))
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = gen.below(i + 1)
        order[i], order[j] = order[j], order[i]
    return np.array(order, dtype=np.int64)


def noise(seed: int, step: int, layer_index: int, shape: tuple[int, ...],
          sigma: float, dtype: str | np.dtype = "float64") -> np.ndarray:
    """Gaussian noise ``eps = sigma * normal()`` of a noisy_relu layer at one step.

    One ``normal()`` per element of Z, in row-major order, computed in float64
    and cast to ``dtype``.

    Examples
    --------
    >>> noise(0, step=0, layer_index=1, shape=(2, 3), sigma=0.1).shape
    (2, 3)
    """
    gen = PCG32(seed, stream(NOISE, step, layer_index))
    size = math.prod(shape)
    eps = np.array([sigma * gen.normal() for _ in range(size)], dtype=np.float64)
    return eps.reshape(shape).astype(dtype)


def dropout_mask(seed: int, step: int, layer_index: int, shape: tuple[int, int], keep_prob: float,
                 per_batch: bool = False, dtype: str | np.dtype = "float64") -> np.ndarray:
    """The 0/1 mask of a Dropout layer at one step: 1 = kept, with probability keep_prob.

    Drawn from stream(DROPOUT, step, layer_index): an element is kept iff
    ``next() < floor(keep_prob * 2**32)`` (so keep_prob = 1 keeps everything).
    Per sample: one draw per element of the (B, F) mask, row-major. Per batch:
    F draws, the one row repeated for every sample.

    Parameters
    ----------
    seed : int
        The model's seed.
    step : int
        The model's ``step_counter``.
    layer_index : int
        Position of the Dropout in the model's layer list.
    shape : (B, F)
        Batch size and number of units (features) the Dropout sees.
    keep_prob : float
        In (0, 1].
    per_batch : bool
        One mask row for the whole batch instead of one per sample.

    Examples
    --------
    >>> dropout_mask(0, step=0, layer_index=1, shape=(2, 5), keep_prob=1.0).tolist()
    [[1.0, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0]]
    >>> m = dropout_mask(0, 0, 1, (3, 4), 0.5, per_batch=True)
    >>> bool((m == m[0]).all())
    True
    """
    gen = PCG32(seed, stream(DROPOUT, step, layer_index))
    threshold = math.floor(keep_prob * 4294967296.0)  # floor(p * 2**32)
    B, F = shape
    draws = F if per_batch else B * F
    kept = np.array([gen.next() < threshold for _ in range(draws)], dtype=dtype)
    if per_batch:
        return np.tile(kept, (B, 1))  # the same row for every sample
    return kept.reshape(B, F)


# Initialiser aliases: xavier_* are the same formulas as glorot_*.
INIT_ALIASES = {"xavier_uniform": "glorot_uniform", "xavier_normal": "glorot_normal"}
INITIALIZERS = ("random_normal", "random_uniform", "glorot_uniform", "glorot_normal",
                "he_normal", "he_uniform", "zeros", "xavier_uniform", "xavier_normal")


def _truncated_normal(gen: PCG32) -> float:
    """One N(0, 1) draw truncated to [-2, 2] (draws again until it falls inside)."""
    while True:
        x = gen.normal()
        if abs(x) <= 2.0:
            return x


def init_weights(name: str, fan_in: int, fan_out: int, seed: int, layer_index: int,
                 dtype: str | np.dtype = "float64") -> np.ndarray:
    """Initial W of a Dense layer, Keras formulas, drawn row-major from stream(INIT, 0, layer).

    Parameters
    ----------
    name : str
        One of ``random_normal``, ``random_uniform``, ``glorot_uniform``
        (``xavier_uniform``), ``glorot_normal`` (``xavier_normal``), ``he_normal``,
        ``he_uniform``, ``zeros``.
    fan_in, fan_out : int
        Shape of W is ``(fan_in, fan_out)``.
    seed : int
        The model's seed.
    layer_index : int
        Index of the layer in the model's layer list.
    dtype : str or numpy.dtype
        The values are computed in float64, then cast to this dtype.

    Returns
    -------
    numpy.ndarray
        W, shape (fan_in, fan_out). Biases are not drawn: they start at zero.

    Examples
    --------
    >>> W = init_weights("glorot_uniform", 3, 4, seed=0, layer_index=0)
    >>> bool(abs(W).max() <= (6 / 7) ** 0.5)
    True
    """
    name = INIT_ALIASES.get(name, name)
    if name == "zeros":
        return np.zeros((fan_in, fan_out), dtype=dtype)
    gen = PCG32(seed, stream(INIT, 0, layer_index))
    if name == "random_normal":
        draw = lambda: 0.05 * gen.normal()  # noqa: E731
    elif name == "random_uniform":
        draw = lambda: -0.05 + 0.1 * gen.uniform01()  # noqa: E731
    elif name in ("glorot_uniform", "he_uniform"):
        limit = math.sqrt(6.0 / (fan_in + fan_out) if name == "glorot_uniform" else 6.0 / fan_in)
        draw = lambda: -limit + 2.0 * limit * gen.uniform01()  # noqa: E731
    elif name in ("glorot_normal", "he_normal"):
        var = 2.0 / (fan_in + fan_out) if name == "glorot_normal" else 2.0 / fan_in
        stddev = math.sqrt(var) / TRUNCATED_NORMAL_STD
        draw = lambda: stddev * _truncated_normal(gen)  # noqa: E731
    else:
        raise ValueError(f"init: expected one of {', '.join(INITIALIZERS)}, got {name!r}")
    values = [draw() for _ in range(fan_in * fan_out)]
    return np.array(values, dtype=np.float64).reshape(fan_in, fan_out).astype(dtype)
