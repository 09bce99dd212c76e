"""One playground run: its configuration, its data, its model, and what a redraw of the page needs.

A :class:`Config` states a run (data set, noise, seed, split, hidden layers
with an activation each, learning rate, batch size, optimiser, L2, dropout,
problem) and checks every field when it is made: an unknown field, a wrong
type or an absurd value (10⁶ units, 10⁴ layers, a NaN or negative learning
rate) is a ``ValueError`` naming the field. A :class:`Session` holds one
:class:`~pybackprop.Sequential` built from it; :meth:`Session.step` trains k
mini-batches in the C++ core (``model.engine.train_step``) and returns the
:meth:`Session.snapshot` the page redraws from: the weights in the network
drawing's format, the losses, the model's output over the plane (or along the
line), the per-layer gradient norms and the gradient-flow warning. A
diverging step is refused by the core, so the session keeps the last finite
weights and reports the :class:`~pybackprop.DivergenceError` message.

>>> s = Session(Config(dataset="xor", layers=[4], activations=["tanh"], lr=0.1))
>>> first = s.snapshot()["loss"]["test"]
>>> snap = s.step(200)
>>> snap["step"], snap["net"]["sizes"], bool(snap["loss"]["test"] < first)
(200, [2, 4, 1], True)
"""
from __future__ import annotations

import dataclasses
import html
import math
import secrets
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .. import optimizers as _optimizers
from .._validation import Checked, Options, Real, fail, parameter
from ..layers import Dense, Dropout
from ..model import DivergenceError, Sequential, gradient_flow_problem, gradient_flow_ratio
from . import datasets as _datasets

__all__ = ["ACTIVATIONS", "Config", "MAX_LAYERS", "MAX_STEPS", "MAX_UNITS", "OPTIMIZERS", "Session",
           "SessionStore", "gradient_flow"]

#: hidden layers and units per layer the playground draws (TensorFlow Playground's limits)
MAX_LAYERS, MAX_UNITS = 6, 8
#: training steps one request may ask for
MAX_STEPS = 5000
#: the hidden activations offered (softmax is an output activation; noisy_relu's noise hides the lesson)
ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity", "leaky_relu", "elu", "softplus", "gelu")
OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop", "adagrad")
PROBLEMS = ("classification", "regression")
#: heat-map cells per side (2-D) and points along the line (1-D)
GRID, LINE = 40, 100
#: loss history entries kept (older ones are thinned out, every other one dropped)
HISTORY = 1000


# ------------------------------------------------------------------------------ the configuration
def _as_value_error(constraint: Any) -> Any:
    """``constraint`` whose TypeError (a wrong kind of value) is a ValueError too: one kind of error."""
    def check(name: str, value: Any) -> Any:
        try:
            return constraint(name, value)
        except TypeError as exc:
            raise ValueError(str(exc)) from None
    check.expected = getattr(constraint, "expected", "")  # type: ignore[attr-defined]
    return check


class IntRange:
    """An integer in ``[low, high]`` (not a bool, not a float)."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    @property
    def expected(self) -> str:
        return f"an integer in [{self.low}, {self.high}]"

    def __call__(self, name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not self.low <= value <= self.high:
            fail(name, self.expected, value)
        return int(value)


class ListOf:
    """A list (or tuple) of ``low`` to ``high`` items, each checked by ``item`` as ``name[i]``; a tuple."""

    def __init__(self, item: Any, low: int, high: int, what: str) -> None:
        self.item, self.low, self.high, self.what = item, low, high, what

    @property
    def expected(self) -> str:
        return f"a list of {self.low} to {self.high} {self.what}"

    def __call__(self, name: str, value: Any) -> Tuple[Any, ...]:
        if not isinstance(value, (list, tuple)):
            fail(name, self.expected, value)
        if not self.low <= len(value) <= self.high:
            raise ValueError(f"{name}: expected {self.low} to {self.high} {self.what}, got {len(value)}")
        return tuple(_as_value_error(self.item)(f"{name}[{i}]", v) for i, v in enumerate(value))


DATASET_CHOICES = tuple(_datasets.DATASETS) + ("csv",)


@dataclasses.dataclass
class Config(Checked):
    """A playground run, every field checked (a ``ValueError`` naming the field).

    Parameters
    ----------
    dataset : {"circle", "xor", "gauss", "spiral", "sine", "csv"}
        ``"csv"``: the file uploaded to the session.
    noise : float
        Percent, 0 to 50 (generated sets).
    seed : int
        Of the data, the split, the initial weights, the batches and the dropout masks.
    train_fraction : float
        Share of the points that train, 0.1 to 0.9; the rest test.
    samples : int
        Points generated, 10 to 2000.
    layers : list of int
        Units of each hidden layer: 0 to 6 layers of 1 to 8 units.
    activations : list of str
        One per hidden layer, from ``ACTIVATIONS``.
    lr : float
        Learning rate, in (0, 10].
    batch_size : int
        1 to 2000 (at most the training points are used).
    optimizer : {"sgd", "momentum", "adam", "rmsprop", "adagrad"}
        ``"momentum"`` is SGD with momentum 0.9.
    l2 : float
        Weight decay (the L2 penalty's rate), 0 to 1, on the weights (not the biases).
    keep_prob : float
        Dropout keep probability of every hidden layer's output, in (0, 1] (1: no dropout).
    problem : {"classification", "regression"}
        Sigmoid output and binary cross-entropy, or identity output and squared error.

    Examples
    --------
    >>> Config(layers=[3, 2], activations=["relu", "tanh"]).layers
    (3, 2)
    >>> Config.from_dict({"layers": [10**6], "activations": ["tanh"]})
    Traceback (most recent call last):
    ...
    ValueError: layers[0]: expected an integer in [1, 8], got 1000000 (int)
    >>> Config.from_dict({"lr": float("nan")})
    Traceback (most recent call last):
    ...
    ValueError: lr: expected a finite number in (0.0, 10.0], got nan (float)
    >>> Config.from_dict({"colour": "red"})
    Traceback (most recent call last):
    ...
    ValueError: colour: unknown field (the fields are dataset, noise, seed, train_fraction, samples, layers, \
activations, lr, batch_size, optimizer, l2, keep_prob, problem)
    """

    dataset: str = parameter(_as_value_error(Options(DATASET_CHOICES)), "circle")
    noise: float = parameter(_as_value_error(Real(0.0, 50.0)), 0.0)
    seed: int = parameter(IntRange(0, 2 ** 31 - 1), 0)
    train_fraction: float = parameter(_as_value_error(Real(0.1, 0.9)), 0.5)
    samples: int = parameter(IntRange(10, 2000), 500)
    layers: Sequence[int] = parameter(ListOf(IntRange(1, MAX_UNITS), 0, MAX_LAYERS, "hidden layers"), (4, 2))
    activations: Sequence[str] = parameter(ListOf(Options(ACTIVATIONS), 0, MAX_LAYERS, "activations"),
                                           ("tanh", "tanh"))
    lr: float = parameter(_as_value_error(Real(0.0, 10.0, min_inclusive=False)), 0.03)
    batch_size: int = parameter(IntRange(1, 2000), 10)
    optimizer: str = parameter(_as_value_error(Options(OPTIMIZERS)), "sgd")
    l2: float = parameter(_as_value_error(Real(0.0, 1.0)), 0.0)
    keep_prob: float = parameter(_as_value_error(Real(0.0, 1.0, min_inclusive=False)), 1.0)
    problem: str = parameter(_as_value_error(Options(PROBLEMS)), "classification")

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.activations) != len(self.layers):
            raise ValueError(f"activations: expected one per hidden layer ({len(self.layers)}), "
                             f"got {len(self.activations)}")
        if self.dataset in _datasets.REGRESSION_SETS and self.problem != "regression":
            raise ValueError(f"problem: the data set {self.dataset!r} has a numeric target: expected "
                             f"'regression', got {self.problem!r}")

    @classmethod
    def fields(cls) -> List[str]:
        """The field names, in order (the URL's keys)."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: Any, base: Optional["Config"] = None) -> "Config":
        """A config from a JSON object: the fields given replace ``base``'s (or the defaults).

        Anything but an object, and any unknown field, is a ``ValueError``.

        >>> Config.from_dict({"dataset": "spiral"}, base=Config(noise=10)).noise
        10.0
        """
        if not isinstance(values, Mapping):
            raise ValueError(f"config: expected a JSON object of fields, got {type(values).__name__}")
        names = cls.fields()
        for key in values:
            if key not in names:
                shown = key if isinstance(key, str) and len(key) <= 40 else repr(key)[:40]
                raise ValueError(f"{shown}: unknown field (the fields are {', '.join(names)})")
        merged = dict(dataclasses.asdict(base)) if base is not None else {}
        merged.update(values)
        return cls(**merged)

    def to_dict(self) -> Dict[str, Any]:
        """The fields as JSON values (lists for the layers).

        >>> Config().to_dict()["layers"]
        [4, 2]
        """
        out = dataclasses.asdict(self)
        out["layers"], out["activations"] = list(self.layers), list(self.activations)
        return out


# ------------------------------------------------------------------------------ gradient flow
def gradient_flow(grad_norm: Sequence[float]) -> Optional[Dict[str, Any]]:
    """The fit loop's gradient-flow rule on per-layer gradient norms: a warning dict when it fires.

    The rule is :func:`pybackprop.model.gradient_flow_problem`, the one behind
    :class:`~pybackprop.GradientFlowWarning`: the first layer's norm over the
    last's below ``VANISHING_RATIO`` (1e-4) is vanishing, above
    ``EXPLODING_RATIO`` (1e4) exploding. The hints name the playground's controls.

    >>> gradient_flow([1e-6, 1.0])["kind"]
    'vanishing'
    >>> gradient_flow([0.5, 1.0]) is None
    True
    """
    problem = gradient_flow_problem(grad_norm)
    if problem is None:
        return None
    kind, ratio = problem
    hint = ("try relu or leaky_relu, or fewer layers" if kind == "vanishing"
            else "try a smaller learning rate or fewer layers")
    return {"kind": kind, "ratio": ratio,
            "message": f"{kind} gradients: the first layer's gradient norm is {ratio:.2e} times the last "
                       f"layer's ({hint})"}


# ------------------------------------------------------------------------------ the session
def _finite(v: float) -> Optional[float]:
    return float(v) if math.isfinite(v) else None


def _rounded(values: np.ndarray, digits: int = 5) -> List[Optional[float]]:
    """``values`` rounded for JSON, None where not finite."""
    out = np.round(values.astype(np.float64), digits)
    finite = np.isfinite(out)
    if finite.all():
        return out.tolist()  # type: ignore[no-any-return]
    return [float(v) if ok else None for v, ok in zip(out.tolist(), finite.tolist())]


def _optimizer(config: Config) -> _optimizers.Optimizer:
    lr, l2 = config.lr, config.l2  # L2 on the weights only, as TensorFlow Playground's regularisation
    if config.optimizer == "sgd":
        return _optimizers.SGD(lr, weight_decay=l2, decay_bias=False)
    if config.optimizer == "momentum":
        return _optimizers.SGD(lr, momentum=0.9, weight_decay=l2, decay_bias=False)
    if config.optimizer == "adam":
        return _optimizers.Adam(lr, weight_decay=l2, decay_bias=False)
    if config.optimizer == "rmsprop":
        return _optimizers.RMSprop(lr, weight_decay=l2, decay_bias=False)
    return _optimizers.Adagrad(lr, weight_decay=l2, decay_bias=False)


class Session:
    """One browser tab's run: the data, one model, the training counters and the loss history.

    Every public method holds the session's lock, so requests of two tabs (or
    two requests of one) never interleave on a model.

    Parameters
    ----------
    config : Config
    csv : bytes or str, optional
        An uploaded file (see :func:`~pybackprop.playground.datasets.parse_csv`),
        used when ``config.dataset == "csv"``.
    session_id : str, optional
        Drawn at random when omitted.

    Examples
    --------
    >>> s = Session(Config(dataset="sine", problem="regression", layers=[8], activations=["tanh"]))
    >>> snap = s.step(10)
    >>> snap["output"]["kind"], len(snap["output"]["y"])
    ('line', 100)
    """

    def __init__(self, config: Config, csv: "bytes | str | None" = None, session_id: Optional[str] = None) -> None:
        self.id = session_id or secrets.token_urlsafe(12)
        self.lock = threading.RLock()
        self.last_used = time.monotonic()
        self.csv: Optional[Tuple[np.ndarray, np.ndarray, str, List[str]]] = None
        if csv is not None:
            self.csv = _datasets.parse_csv(csv)
        self.configure(config)

    # .......................................................................... setting up
    def configure(self, config: Config) -> None:
        """Use ``config``: new data and a new model (the uploaded file is kept)."""
        with self.lock:
            data = self._data(config)
            model = self._model(config, data)
            self.config, self.data, self.model = config, data, model
            self._start()

    def update(self, values: Mapping[str, Any]) -> None:
        """Change some fields (a JSON object) and start again; a bad field changes nothing."""
        with self.lock:
            self.configure(Config.from_dict(values, base=self.config))

    def reset(self) -> None:
        """Start again with the same configuration: the same data and initial weights."""
        with self.lock:
            self.model = self._model(self.config, self.data)
            self._start()

    def upload_csv(self, data: "bytes | str") -> None:
        """Train on an uploaded CSV file from now on (``dataset`` becomes ``"csv"``).

        A bad file raises :class:`~pybackprop.playground.datasets.CSVError` and changes nothing.
        """
        parsed = _datasets.parse_csv(data)
        with self.lock:
            previous = self.csv
            self.csv = parsed
            try:
                self.configure(Config.from_dict({"dataset": "csv", "problem": parsed[2]}, base=self.config))
            except Exception:
                self.csv = previous
                raise

    def _data(self, config: Config) -> _datasets.Data:
        if config.dataset == "csv":
            if self.csv is None:
                raise ValueError("dataset: 'csv' needs an uploaded CSV file (none in this session): upload one")
            X, y, problem, names = self.csv
            if problem == "regression" and config.problem == "classification":
                raise ValueError("problem: the uploaded file has a numeric target: expected 'regression', "
                                 "got 'classification'")
            return _datasets.split(X, y, config.train_fraction, config.seed, config.problem, names, generated=False)
        X, y = _datasets.make_dataset(config.dataset, config.samples, config.noise, config.seed)
        columns: Optional[List[str]] = None
        if config.problem == "regression" and config.dataset in _datasets.CLASSIFICATION_SETS:
            columns = ["x1", "x2", "target"]
        return _datasets.split(X, y, config.train_fraction, config.seed, config.problem, columns)

    @staticmethod
    def _model(config: Config, data: _datasets.Data) -> Sequential:
        layers: List[Any] = []
        for units, activation in zip(config.layers, config.activations):
            layers.append(Dense(units, activation=activation))
            if config.keep_prob < 1.0:
                layers.append(Dropout(keep_prob=config.keep_prob))
        classify = config.problem == "classification"
        layers.append(Dense(1, activation="sigmoid" if classify else "identity"))
        model = Sequential(layers, input_dim=data.inputs, dtype="float64", seed=config.seed)
        model.compile(loss="binary_crossentropy" if classify else "mse", optimizer=_optimizer(config))
        return model

    def _start(self) -> None:
        data, engine = self.data, self.model.engine
        self._X, self._Y = engine.data(data.X_train, data.y_train)  # cast once
        self._Xt, self._Yt = engine.data(data.X_test, data.y_test)
        self._grid = self._grid_inputs()
        self.steps = 0
        self.epoch = 0
        self._order = self._permutation(0)
        self._pos = 0
        self.error: Optional[str] = None
        self.grad_norm: List[float] = [0.0] * len(engine.dense)
        self.history: List[Tuple[int, Optional[float], Optional[float]]] = []
        self._record()

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.config.seed, 2, epoch]).permutation(self._X.shape[0])

    def _grid_inputs(self) -> np.ndarray:
        lo_x, hi_x, lo_y, hi_y = self.data.domain
        if self.data.inputs == 1:
            return np.linspace(lo_x, hi_x, LINE).reshape(-1, 1)
        xs = lo_x + (np.arange(GRID) + 0.5) * (hi_x - lo_x) / GRID  # cell centres, left to right
        ys = hi_y - (np.arange(GRID) + 0.5) * (hi_y - lo_y) / GRID  # top to bottom
        gx, gy = np.meshgrid(xs, ys)
        return np.column_stack([gx.ravel(), gy.ravel()])

    # .......................................................................... training
    def step(self, steps: int = 1, probe: Optional[Sequence[float]] = None) -> Dict[str, Any]:
        """Train ``steps`` mini-batches (1 to ``MAX_STEPS``) and return the :meth:`snapshot`.

        The batches walk through the training points in an order reshuffled
        every epoch from the seed (the last batch of an epoch may be smaller).
        After a diverging step the session trains no more until it is reset or
        reconfigured; its weights are those of the last finite step. With a
        ``probe`` input the snapshot has ``values``, :meth:`unit_values` of the
        new weights. Both arguments are checked before anything trains, and the
        whole request holds the lock (no other request's change in between).

        >>> s = Session(Config(layers=[3], activations=["tanh"]))
        >>> snap = s.step(4, probe=[0.5, -0.5])
        >>> snap["step"], [len(v) for v in snap["values"]]
        (4, [2, 3, 1])
        """
        steps = IntRange(1, MAX_STEPS)("steps", steps)
        with self.lock:
            if probe is not None:
                self._probe(probe, "probe")
            self.last_used = time.monotonic()
            if self.error is None:
                self._train(steps)
                self._record()
            snap = self.snapshot()
            if probe is not None:
                snap["values"] = self.unit_values(probe)
            return snap

    def _train(self, steps: int) -> None:
        engine = self.model.engine
        net = engine.net
        n = self._X.shape[0]
        batch = min(self.config.batch_size, n)
        sums = np.zeros(len(engine.dense))
        done = 0
        for _ in range(steps):
            if self._pos >= n:
                self.epoch += 1
                self._order, self._pos = self._permutation(self.epoch), 0
            rows = self._order[self._pos:self._pos + batch]
            try:
                engine.train_step(self._X[rows], self._Y[rows])
            except DivergenceError as exc:  # the core refused the step: the weights are the last finite ones
                self.error = str(DivergenceError(self.epoch, self._pos // batch, exc.loss))
                break
            self._pos += len(rows)
            self.steps += 1
            done += 1
            sums += net.grad_norms()
        if done:
            self.grad_norm = [float(v) for v in sums / done]

    def _record(self) -> None:
        with np.errstate(all="ignore"):
            train, test = self.model.evaluate(self._X, self._Y), self.model.evaluate(self._Xt, self._Yt)
        self.history.append((self.steps, _finite(train), _finite(test)))
        if len(self.history) > HISTORY:
            self.history = self.history[:-1:2] + [self.history[-1]]

    # .......................................................................... what the page draws
    def net(self) -> Dict[str, Any]:
        """The weights in the network drawing's format (``PBNet.render``'s ``net``).

        >>> Session(Config(layers=[3], activations=["relu"])).net()["sizes"]
        [2, 3, 1]
        """
        engine = self.model.engine
        dense = engine.dense
        sizes = [self.data.inputs] + [layer.units for layer in dense]
        dropout: List[Optional[Dict[str, Any]]] = [None] * len(dense)
        if self.config.keep_prob < 1.0:
            p = self.config.keep_prob
            dropout = [None] + [{"keep_prob": p, "mask": None, "scale": 1.0 / p} for _ in dense[1:]]
        W, b = [], []
        for d in range(len(dense)):
            W.append(engine.W(d).tolist())
            bias = engine.b(d)
            b.append(None if bias is None else bias.tolist())
        return {"sizes": sizes, "activations": [layer.activation.name for layer in dense], "W": W, "b": b,
                "dropout": dropout}

    def unit_values(self, x: Sequence[float]) -> List[List[float]]:
        """Every unit's output for the input ``x`` in inference mode: ``[[x...], [a1...], ..., [y_hat]]``.

        One inference forward pass of ``x`` in the core (``net.forward_views``), then each Dense layer's
        output of that forward pass (``model.engine.net.A(d)``): the numbers the
        hover labels show are the core's own.

        >>> s = Session(Config(layers=[2], activations=["relu"]))
        >>> values = s.unit_values([1.0, -1.0])
        >>> [len(v) for v in values], values[-1][0] == float(s.model.predict([[1.0, -1.0]])[0, 0])
        ([2, 2, 1], True)
        """
        with self.lock:
            a = self._probe(x)
            engine = self.model.engine
            with np.errstate(all="ignore"):
                engine.net.forward_views(np.ascontiguousarray(a, dtype=engine.dtype))
            return [a[0].tolist()] + [engine.net.A(d)[0].tolist() for d in range(len(engine.dense))]

    def _probe(self, x: Any, name: str = "x") -> np.ndarray:
        """``x`` as one finite input row of this session's data (a ValueError naming ``name`` otherwise)."""
        expected = f"{name}: expected {self.data.inputs} finite numbers, got"
        try:
            a = np.asarray(x, dtype=np.float64).reshape(1, -1)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{expected} {str(x)[:40]}") from None
        if a.shape[1] != self.data.inputs or not np.isfinite(a).all():
            raise ValueError(f"{expected} {list(np.ravel(x))[:4]!r}")
        return a

    def output(self) -> Dict[str, Any]:
        """The model's output over the heat map's grid (2-D, row by row from the top) or along the line (1-D)."""
        with np.errstate(all="ignore"):
            pred = self.model.predict(self._grid)[:, 0]
        values = _rounded(pred)
        if self.data.inputs == 1:
            return {"kind": "line", "x": _rounded(self._grid[:, 0]), "y": values,
                    "domain": self.data.domain}
        return {"kind": "plane", "size": GRID, "values": values, "domain": self.data.domain}

    def snapshot(self, full: bool = False) -> Dict[str, Any]:
        """What one redraw needs; ``full`` adds the config, the points and the whole loss history.

        Keys: ``session``, ``step``, ``epoch``, ``net`` (:meth:`net`),
        ``loss`` (``{"step", "train", "test"}`` now), ``output`` (:meth:`output`),
        ``grad_norm`` (per Dense layer, averaged over the last request's steps),
        ``grad_ratio`` (the first layer's over the last's, what the rule looks at),
        ``warning`` (:func:`gradient_flow` or None), ``error`` (the
        divergence message or None); with ``full``: ``config``, ``problem``,
        ``columns``, ``train``/``test`` points ``[[x1, (x2,) target], ...]`` and
        ``history`` (``[[step, train loss, test loss], ...]``).
        """
        with self.lock:
            step, train, test = self.history[-1]
            snap: Dict[str, Any] = {
                "session": self.id, "step": self.steps, "epoch": self.epoch, "net": self.net(),
                "loss": {"step": step, "train": train, "test": test}, "output": self.output(),
                "grad_norm": [_finite(g) for g in self.grad_norm], "grad_ratio": gradient_flow_ratio(self.grad_norm),
                "warning": gradient_flow(self.grad_norm),
                "error": self.error,
            }
            if full:
                snap.update({"config": self.config.to_dict(), "problem": self.data.problem,
                             "columns": self.data.columns, "train": self.data.points("train"),
                             "test": self.data.points("test"), "history": [list(h) for h in self.history]})
            return snap

    def explain(self, which: str, index: int) -> str:
        """The step picture (an HTML document) of one SGD step on point ``index`` of ``which`` set.

        ``model.explain(x, y, lr)`` with the current weights (on a copy: the
        run is not changed), drawn by ``Trace.to_html()``.

        >>> Session(Config()).explain("train", 0).startswith("<!DOCTYPE html>")
        True
        """
        if which not in ("train", "test"):
            raise ValueError(f"split: expected 'train' or 'test', got {which!r}")
        with self.lock:
            self.last_used = time.monotonic()
            X, y = (self.data.X_train, self.data.y_train) if which == "train" else (self.data.X_test, self.data.y_test)
            index = IntRange(0, len(y) - 1)("index", index)
            trace = self.model.explain(X[index], [y[index]], lr=self.config.lr)
            to_html = getattr(trace, "to_html", None)
            if to_html is not None:
                return str(to_html())
            return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>One step of "
                    f"backpropagation</title></head><body><pre>{html.escape(str(trace))}</pre></body></html>")


# ------------------------------------------------------------------------------ many sessions
class SessionStore:
    """The sessions of a server by id, dropped after ``ttl`` seconds idle (at most ``capacity`` kept).

    >>> store = SessionStore(ttl=60)
    >>> s = store.create(Config())
    >>> store.get(s.id) is s, store.get("nope")
    (True, None)
    """

    def __init__(self, ttl: float = 1800.0, capacity: int = 64) -> None:
        self.ttl, self.capacity = ttl, capacity
        self._sessions: Dict[str, Session] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def expire(self) -> None:
        """Drop the sessions idle for longer than ``ttl``."""
        now = time.monotonic()
        with self._lock:
            for key in [k for k, s in self._sessions.items() if now - s.last_used > self.ttl]:
                del self._sessions[key]

    def create(self, config: Config, csv: "bytes | str | None" = None) -> Session:
        """A new session (the least recently used one dropped when ``capacity`` are open)."""
        self.expire()
        session = Session(config, csv)
        with self._lock:
            while len(self._sessions) >= self.capacity:
                oldest = min(self._sessions.values(), key=lambda s: s.last_used)
                del self._sessions[oldest.id]
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str) -> Optional[Session]:
        """The session ``session_id`` (its idle clock restarted), or None when unknown or expired."""
        self.expire()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None:
                session.last_used = time.monotonic()
            return session
