"""The playground's data: four 2-D classification sets, a 1-D regression, and uploaded CSV files.

The 2-D generators are TensorFlow Playground's (``src/dataset.ts``), point for
point, with NumPy's generator in place of ``Math.random``: ``circle`` (a disc
of one class inside a ring of the other), ``xor`` (the four quadrants),
``gauss`` (two gaussians) and ``spiral`` (two interleaved spirals), all in the
square [-6, 6]², noise in percent (0-50) as its slider. Labels are 0 and 1
(the playground's -1 becomes 0), for a sigmoid output and binary
cross-entropy. ``sine`` is the 1-D regression: ``y = sin(x)`` on [-6, 6] with
gaussian noise. A seed makes a set and its train/test split reproducible.

>>> X, y = make_dataset("xor", samples=500, noise=0, seed=1)
>>> X.shape, sorted(set(y.tolist()))
((500, 2), [0.0, 1.0])
>>> data = split(X, y, train_fraction=0.5, seed=1)
>>> data.X_train.shape, data.X_test.shape
((250, 2), (250, 2))
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

__all__ = ["CLASSIFICATION_SETS", "CSVError", "DATASETS", "Data", "MAX_CSV_BYTES", "MAX_CSV_ROWS",
           "MIN_CSV_ROWS", "REGRESSION_SETS", "make_dataset", "parse_csv", "preview", "split"]

#: the domain of the generated sets, as TensorFlow Playground's heat map: [-6, 6] on each axis
DOMAIN = 6.0
#: limits of an uploaded CSV file
MAX_CSV_BYTES, MAX_CSV_ROWS, MIN_CSV_ROWS = 1_000_000, 5000, 10
#: the largest |value| accepted in a CSV file (larger inputs only make the training diverge)
MAX_CSV_VALUE = 1e6

Generator = Callable[[np.random.Generator, int, float], Tuple[np.ndarray, np.ndarray]]


def _uniform(rng: np.random.Generator, a: float, b: float, n: int) -> np.ndarray:
    return rng.uniform(a, b, size=n)


def _circle(rng: np.random.Generator, n: int, noise: float) -> Tuple[np.ndarray, np.ndarray]:
    radius = 5.0
    parts = []
    for r_lo, r_hi, count in ((0.0, radius * 0.5, n // 2), (radius * 0.7, radius, n - n // 2)):
        r = _uniform(rng, r_lo, r_hi, count)
        angle = _uniform(rng, 0.0, 2 * math.pi, count)
        x, y = r * np.sin(angle), r * np.cos(angle)
        nx, ny = _uniform(rng, -radius, radius, count) * noise, _uniform(rng, -radius, radius, count) * noise
        label = (np.hypot(x + nx, y + ny) < radius * 0.5).astype(np.float64)  # the noisy point's side
        parts.append((np.column_stack([x, y]), label))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _xor(rng: np.random.Generator, n: int, noise: float) -> Tuple[np.ndarray, np.ndarray]:
    padding = 0.3
    x = _uniform(rng, -5, 5, n)
    x += np.where(x > 0, padding, -padding)
    y = _uniform(rng, -5, 5, n)
    y += np.where(y > 0, padding, -padding)
    nx, ny = _uniform(rng, -5, 5, n) * noise, _uniform(rng, -5, 5, n) * noise
    label = ((x + nx) * (y + ny) >= 0).astype(np.float64)
    return np.column_stack([x, y]), label


def _gauss(rng: np.random.Generator, n: int, noise: float) -> Tuple[np.ndarray, np.ndarray]:
    variance = 0.5 + (4.0 - 0.5) * noise / 0.5  # TF Playground's scale: noise 0..0.5 -> variance 0.5..4
    half = n // 2
    pos = rng.normal(2.0, math.sqrt(variance), size=(half, 2))
    neg = rng.normal(-2.0, math.sqrt(variance), size=(n - half, 2))
    return np.concatenate([pos, neg]), np.concatenate([np.ones(half), np.zeros(n - half)])


def _spiral(rng: np.random.Generator, n: int, noise: float) -> Tuple[np.ndarray, np.ndarray]:
    parts = []
    for delta, label, count in ((0.0, 1.0, n // 2), (math.pi, 0.0, n - n // 2)):
        i = np.arange(count)
        r = i / count * 5
        t = 1.75 * i / count * 2 * math.pi + delta
        x = r * np.sin(t) + _uniform(rng, -1, 1, count) * noise
        y = r * np.cos(t) + _uniform(rng, -1, 1, count) * noise
        parts.append((np.column_stack([x, y]), np.full(count, label)))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _sine(rng: np.random.Generator, n: int, noise: float) -> Tuple[np.ndarray, np.ndarray]:
    x = _uniform(rng, -DOMAIN, DOMAIN, n)
    y = np.sin(x) + rng.normal(0.0, 1.0, size=n) * noise  # noise 0.5 (the slider's 50): sd 0.5
    return x.reshape(-1, 1), y


CLASSIFICATION_SETS: Dict[str, Generator] = {"circle": _circle, "xor": _xor, "gauss": _gauss, "spiral": _spiral}
REGRESSION_SETS: Dict[str, Generator] = {"sine": _sine}
#: every generated set by name: what it is, its inputs, its problem
DATASETS: Dict[str, Dict[str, object]] = {
    "circle": {"title": "Circle", "inputs": 2, "problem": "classification"},
    "xor": {"title": "Exclusive or", "inputs": 2, "problem": "classification"},
    "gauss": {"title": "Two gaussians", "inputs": 2, "problem": "classification"},
    "spiral": {"title": "Spiral", "inputs": 2, "problem": "classification"},
    "sine": {"title": "1-D regression: sin(x)", "inputs": 1, "problem": "regression"},
}


def make_dataset(name: str, samples: int = 500, noise: float = 0.0, seed: int = 0
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """Generate the set ``name``: inputs ``(samples, 2)`` (``(samples, 1)`` for ``sine``) and targets.

    Parameters
    ----------
    name : {"circle", "xor", "gauss", "spiral", "sine"}
    samples : int
        Number of points (>= 2).
    noise : float
        In percent, 0 to 50, as TensorFlow Playground's slider.
    seed : int
        The same seed gives the same points.

    Returns
    -------
    X : ndarray of float64
    y : ndarray of float64, shape (samples,)
        Class labels 0/1, or the regression target.

    Examples
    --------
    >>> X, y = make_dataset("spiral", samples=10, seed=3)
    >>> X.shape, y.tolist()
    ((10, 2), [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    >>> bool(np.array_equal(make_dataset("circle", seed=7)[0], make_dataset("circle", seed=7)[0]))
    True
    """
    generator = CLASSIFICATION_SETS.get(name) or REGRESSION_SETS.get(name)
    if generator is None:
        raise ValueError(f"dataset: expected one of {', '.join(map(repr, DATASETS))}, got {name!r}")
    if not isinstance(samples, int) or samples < 2:
        raise ValueError(f"samples: expected an integer >= 2, got {samples!r}")
    if not 0.0 <= noise <= 50.0:
        raise ValueError(f"noise: expected a number in [0, 50] (percent), got {noise!r}")
    rng = np.random.default_rng(seed)
    X, y = generator(rng, samples, noise / 100.0)
    return np.ascontiguousarray(X, dtype=np.float64), np.ascontiguousarray(y, dtype=np.float64)


@dataclass
class Data:
    """A data set split into training and test points, with the domain its plots show.

    Attributes
    ----------
    X_train, y_train, X_test, y_test : ndarray
        Inputs ``(n, d)`` (d = 1 or 2) and targets ``(n,)``.
    problem : {"classification", "regression"}
    domain : list of float
        ``[x_min, x_max, y_min, y_max]`` of the heat map (2-D), or
        ``[x_min, x_max, t_min, t_max]`` of the plot (1-D: the input and the target).
    columns : list of str
        The inputs' names and the target's (a CSV header's, else ``x1``, ``x2``, ``label``).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    problem: str
    domain: List[float]
    columns: List[str]

    @property
    def inputs(self) -> int:
        """Number of input features (1 or 2)."""
        return int(self.X_train.shape[1])

    def points(self, which: str) -> List[List[float]]:
        """``[[x1, (x2,) target], ...]`` of the ``"train"`` or ``"test"`` points, for JSON."""
        X, y = (self.X_train, self.y_train) if which == "train" else (self.X_test, self.y_test)
        return np.column_stack([X, y]).tolist()  # type: ignore[no-any-return]


def _domain(X: np.ndarray, y: np.ndarray, generated: bool) -> List[float]:
    if X.shape[1] == 2:
        if generated:
            return [-DOMAIN, DOMAIN, -DOMAIN, DOMAIN]
        lo, hi = X.min(axis=0), X.max(axis=0)
    else:
        lo = np.array([X[:, 0].min(), y.min()])
        hi = np.array([X[:, 0].max(), y.max()])
        if generated:
            lo[0], hi[0] = -DOMAIN, DOMAIN
    pad = np.maximum((hi - lo) * 0.05, 1e-3)
    return [float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])]


def split(X: np.ndarray, y: np.ndarray, train_fraction: float = 0.5, seed: int = 0, problem: Optional[str] = None,
          columns: Optional[List[str]] = None, generated: bool = True) -> Data:
    """Shuffle the points with ``seed`` and cut them into training and test points.

    ``train_fraction`` of the points (rounded down, at least one on each side)
    train; the rest are the test points (TensorFlow Playground's "ratio of
    training to test data").

    >>> X, y = make_dataset("gauss", samples=100, seed=0)
    >>> d = split(X, y, train_fraction=0.8, seed=0)
    >>> len(d.y_train), len(d.y_test), d.problem, d.domain
    (80, 20, 'classification', [-6.0, 6.0, -6.0, 6.0])
    """
    n = X.shape[0]
    if n < 2:
        raise ValueError(f"the data set needs at least 2 points, got {n}")
    order = np.random.default_rng([seed, 1]).permutation(n)  # a stream of its own: not the generator's
    cut = min(max(int(math.floor(n * train_fraction)), 1), n - 1)
    train, test = order[:cut], order[cut:]
    if problem is None:
        problem = "classification" if X.shape[1] == 2 and set(np.unique(y).tolist()) <= {0.0, 1.0} else "regression"
    names = columns or ([f"x{i + 1}" for i in range(X.shape[1])] + ["label" if problem == "classification"
                                                                    else "target"])
    return Data(np.ascontiguousarray(X[train]), np.ascontiguousarray(y[train]), np.ascontiguousarray(X[test]),
                np.ascontiguousarray(y[test]), problem, _domain(X, y, generated), names)


def preview(name: str, samples: int = 200) -> List[List[float]]:
    """Points of ``name`` without noise (seed 0) for the data set picker's thumbnails.

    >>> len(preview("xor", samples=20)), len(preview("xor", samples=20)[0])
    (20, 3)
    """
    X, y = make_dataset(name, samples=samples, noise=0.0, seed=0)
    return np.column_stack([X, y]).round(3).tolist()  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------------------- CSV upload
class CSVError(ValueError):
    """An uploaded CSV file that cannot be used; the message names the row and column."""


def _decode(data: bytes) -> str:
    if len(data) > MAX_CSV_BYTES:
        raise CSVError(f"the file is {len(data):,} bytes; the limit is {MAX_CSV_BYTES:,} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CSVError(f"the file is not UTF-8 text (byte {exc.start} cannot be decoded); "
                       "save it as CSV (UTF-8)") from None


def _number(text: str) -> Optional[float]:
    try:
        return float(text.strip())
    except ValueError:
        return None


def parse_csv(data: "bytes | str", problem: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray, str, List[str]]:
    """Read an uploaded CSV file: two numeric input columns and a label or target column.

    A first row without any number is a header (its names are kept). The
    delimiter is a comma, a semicolon or a tab (read from the first row);
    blank rows are skipped. Classification labels are 0/1 (or -1/1, read as
    0/1); with ``problem=None`` a file whose third column holds only such
    labels is a classification, any other a regression.

    Parameters
    ----------
    data : bytes or str
        The file's content (at most ``MAX_CSV_BYTES``, UTF-8).
    problem : {"classification", "regression"}, optional

    Returns
    -------
    X : ndarray, shape (n, 2)
    y : ndarray, shape (n,)
    problem : str
    columns : list of str
        The three columns' names (``x1``, ``x2``, ``label``/``target`` without a header).

    Raises
    ------
    CSVError
        A ``ValueError`` whose message names the row (1 = the file's first line)
        and the column of the first bad cell, or the limit exceeded.

    Examples
    --------
    >>> X, y, problem, columns = parse_csv("a,b,class\\n" + "\\n".join(f"{i},{-i},{i % 2}" for i in range(10)))
    >>> X.shape, problem, columns
    ((10, 2), 'classification', ['a', 'b', 'class'])
    >>> parse_csv("1,2,0\\n3,x,1\\n")
    Traceback (most recent call last):
    ...
    pybackprop.playground.datasets.CSVError: row 2, column 2: 'x' is not a number
    """
    text = _decode(data) if isinstance(data, (bytes, bytearray)) else str(data)
    if len(text) > MAX_CSV_BYTES:
        raise CSVError(f"the file has {len(text):,} characters; the limit is {MAX_CSV_BYTES:,}")
    if problem not in (None, "classification", "regression"):
        raise CSVError(f"problem: expected 'classification' or 'regression', got {problem!r}")
    if "\x00" in text:
        raise CSVError("the file holds NUL bytes: it is not a text (CSV) file")
    first = next((line for line in text.splitlines() if line.strip()), None)
    if first is None:
        raise CSVError("the file is empty: expected rows of x1, x2, label (or target)")
    delimiter = "\t" if "\t" in first else ";" if ";" in first and "," not in first else ","
    header: Optional[List[str]] = None
    rows: List[Tuple[float, float, float]] = []
    row_numbers: List[int] = []
    try:
        for row_no, cells in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), start=1):
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) != 3:
                raise CSVError(f"row {row_no}: expected 3 columns (x1, x2, label or target), got {len(cells)}"
                               + (f" (the delimiter is {delimiter!r})" if len(cells) == 1 else ""))
            values = [_number(c) for c in cells]
            if header is None and not rows and all(v is None for v in values):
                header = [c.strip() or f"column {k + 1}" for k, c in enumerate(cells)]
                continue
            for col, (cell, v) in enumerate(zip(cells, values), start=1):
                if v is None:
                    raise CSVError(f"row {row_no}, column {col}: {cell.strip()!r} is not a number")
                if not math.isfinite(v):
                    raise CSVError(f"row {row_no}, column {col}: {cell.strip()!r} is not a finite number")
                if abs(v) > MAX_CSV_VALUE:
                    raise CSVError(f"row {row_no}, column {col}: {cell.strip()} is too large "
                                   f"(|value| <= {MAX_CSV_VALUE:g}; scale the column)")
            if len(rows) >= MAX_CSV_ROWS:
                raise CSVError(f"the file has more than {MAX_CSV_ROWS} data rows (the limit)")
            rows.append((values[0], values[1], values[2]))  # type: ignore[arg-type]
            row_numbers.append(row_no)
    except csv.Error as exc:
        raise CSVError(f"the file is not valid CSV: {exc}") from None
    if len(rows) < MIN_CSV_ROWS:
        raise CSVError(f"the file has {len(rows)} data rows; at least {MIN_CSV_ROWS} are needed")
    table = np.array(rows, dtype=np.float64)
    X, y = np.ascontiguousarray(table[:, :2]), table[:, 2].copy()
    labels = set(np.unique(y).tolist())
    if problem is None:
        problem = "classification" if labels <= {0.0, 1.0} or labels <= {-1.0, 1.0} else "regression"
    if problem == "classification":
        allowed = {-1.0, 1.0} if -1.0 in labels else {0.0, 1.0}
        for k, v in enumerate(y):
            if v not in allowed:
                raise CSVError(f"row {row_numbers[k]}, column 3: label {v:g} is not "
                               f"{' or '.join(f'{a:g}' for a in sorted(allowed))} (classification labels are "
                               "0/1 or -1/1; a numeric target is a regression problem)")
        y = (y > 0).astype(np.float64)
    columns = header or ["x1", "x2", "label" if problem == "classification" else "target"]
    return X, y, problem, columns

