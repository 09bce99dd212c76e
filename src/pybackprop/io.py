"""Saving and loading models: one ``.npz`` file, no pickle.

The file holds a JSON header (format name and version, library version, the
model config, RNG and optimiser counters, keep probabilities, and a SHA-256 of
every array) and the raw arrays: ``weight_<i>`` in ``get_weights()`` order (a
BatchNorm's γ, β, running mean and running variance among them, so its running
statistics are saved and loaded; files without normalisation layers are as before) and
``optimizer_<name>`` for each named optimiser state of the engine
(``momentum_buffer``, ``exp_avg``, ...; format 1 wrote ``optimizer_state1`` and
``optimizer_state2``, still read). Everything comes from and goes to one
:class:`~pybackprop._engine.EngineState`. Loading uses ``allow_pickle=False`` and
checks format, version and checksums, so a truncated, corrupted or tampered
file raises a clear ``ValueError`` and nothing from the file is executed.

>>> import os, tempfile, pybackprop as bp
>>> m = bp.Sequential([bp.Dense(1)], input_dim=2, seed=3)
>>> path = os.path.join(tempfile.mkdtemp(), "model.pbp")
>>> m.save(path)
>>> bp.load(path).get_config() == m.get_config()
True
"""
from __future__ import annotations

import hashlib
import io as _io
import json
import os
import tempfile
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Dict, List

import numpy as np

from ._engine import EngineState

if TYPE_CHECKING:  # pragma: no cover
    from .model import Sequential

FORMAT = "pybackprop-model"
FORMAT_VERSION = 2
#: versions this reader accepts (1: the optimiser state stored as state1/state2)
READABLE_VERSIONS = (1, 2)


def _sha256(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def _write(model: "Sequential", f: Any) -> None:
    from . import __version__

    state = model.engine.state() if model.built else None
    arrays: Dict[str, np.ndarray] = {}
    if state is not None:
        arrays = {f"weight_{i}": w for i, w in enumerate(state.weights)}
        arrays.update({f"optimizer_{name}": a for name, a in state.optimizer.items()})
    config = model.get_config()
    header: Dict[str, Any] = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "library_version": __version__,
        "config": config,
        "counters": None if state is None else state.counters,
        "keep_probs": None if state is None else state.keep_probs,
        "sha256": {name: _sha256(a) for name, a in arrays.items()},
    }
    if any(_is_callable_schedule(v) for v in _schedule_configs(config)):
        raise ValueError("save: the model uses a Python callable as a schedule, which cannot be stored; "
                         "use a pybackprop.schedules object (TimeBased, Exponential, Step, Linear)")
    blob = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    np.savez(f, header=blob, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool


def _schedule_configs(config: Dict[str, Any]) -> list:
    values = [layer.get("keep_prob") for layer in config["layers"]]
    if config.get("compile"):
        values.append(config["compile"]["optimizer"].get("lr"))
    return values


def _is_callable_schedule(value: Any) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "FromCallable"


def write_atomically(path: Any, write: Callable[[BinaryIO], Any]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it over ``path``.

    A failed write (an exception from ``write``, a full disk, Ctrl-C) removes the
    temporary file and leaves an earlier file at ``path`` as it was. Used by
    :func:`save_model` and :func:`pybackprop.export.to_onnx`.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "out.bin")
    >>> write_atomically(path, lambda f: f.write(b"abc"))
    >>> with open(path, "rb") as f:
    ...     f.read()
    b'abc'
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".pybackprop-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_model(model: "Sequential", path: Any) -> None:
    """Write ``model`` to ``path`` atomically (temporary file, then rename)."""
    write_atomically(path, lambda f: _write(model, f))


def model_to_bytes(model: "Sequential") -> bytes:
    """The file format in memory (used by pickle and deepcopy)."""
    buf = _io.BytesIO()
    _write(model, buf)
    return buf.getvalue()


def _bad(source: str, problem: str) -> ValueError:
    return ValueError(f"load: {source} is not a valid pybackprop model file: {problem}")


def _read(f: Any, source: str) -> "Sequential":
    from .model import Sequential

    try:
        with np.load(f, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - untrusted bytes: zipfile, zlib and numpy raise many kinds
        # (BadZipFile, EOFError, NotImplementedError for an unknown compression method, zlib.error,
        # struct.error, ValueError for object arrays, ...): all mean "not a model file".
        raise _bad(source, f"cannot read it as an npz archive ({type(e).__name__}: {e})") from None
    if "header" not in arrays:
        raise _bad(source, "no header")
    try:
        header = json.loads(arrays.pop("header").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise _bad(source, f"the header is not JSON ({type(e).__name__}: {e})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _bad(source, f"the header's format is not '{FORMAT}'")
    if header.get("format_version") not in READABLE_VERSIONS:
        raise _bad(source, f"format version {header.get('format_version')!r}; this pybackprop reads versions "
                           f"{', '.join(map(str, READABLE_VERSIONS))}")
    sums = header.get("sha256", {})
    if not isinstance(sums, dict):
        raise _bad(source, "the header's sha256 entry is not a table of checksums")
    if set(sums) != set(arrays):
        raise _bad(source, f"arrays {sorted(arrays)} do not match the header's {sorted(sums)}")
    for name, arr in arrays.items():
        if _sha256(arr) != sums[name]:
            raise _bad(source, f"checksum mismatch in '{name}' (the file was modified or corrupted)")
    try:
        _check_shapes(header.get("config"), arrays)  # before anything is allocated
        model = Sequential.from_config(header["config"])
        counters = header.get("counters")
        if counters is not None:
            if not model.built:
                raise ValueError("counters for a model that is not built")
            weights = [arrays[f"weight_{i}"] for i in range(sum(1 for k in arrays if k.startswith("weight_")))]
            optimizer = {k[len("optimizer_"):]: a for k, a in arrays.items() if k.startswith("optimizer_")}
            keep_probs = header.get("keep_probs") or []
            if not isinstance(counters, dict) or not isinstance(keep_probs, list):
                raise ValueError("the counters or keep probabilities are not a table and a list")
            model.engine.load_state(EngineState(weights, optimizer, counters, [float(p) for p in keep_probs]))
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - a tampered config can fail anywhere while being built
        # (KeyError, TypeError, AttributeError, OverflowError, RecursionError, ... were all seen
        # by the fuzzer): whatever it is, the file is not a valid model.
        raise _bad(source, f"{type(e).__name__}: {e}") from None
    return model


def _check_shapes(config: Any, arrays: Dict[str, np.ndarray]) -> None:
    """The weight shapes the config declares must be the stored arrays' (checked before building,
    so a small file cannot make the loader allocate a huge model)."""
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ValueError("the config has no list of layers")
    fan_in = config.get("input_dim")
    expected: List[tuple] = []
    for k, layer in enumerate(config["layers"]):
        if not isinstance(layer, dict):
            raise ValueError(f"layer {k} of the config is not a table")
        if layer.get("class_name") in ("BatchNorm", "LayerNorm"):  # γ, β (affine), running mean and var
            affine = layer.get("affine", layer.get("elementwise_affine", True))
            count = (2 if affine else 0) + (2 if layer["class_name"] == "BatchNorm" else 0)
            if fan_in is not None:
                expected.extend([(fan_in,)] * count)
            continue
        if layer.get("class_name") != "Dense":
            continue
        units = layer.get("units")
        if not isinstance(units, int) or isinstance(units, bool) or units < 1:
            raise ValueError(f"layer {k}: units must be a positive integer, got {units!r}")
        if fan_in is not None:
            expected.append((fan_in, units))
            if layer.get("use_bias", True):
                expected.append((units,))
        fan_in = units
    stored = sorted((k for k in arrays if k.startswith("weight_")), key=lambda k: int(k.split("_")[1]))
    if config.get("input_dim") is None:
        if stored:
            raise ValueError("weights stored for a model without input_dim")
        return
    if not isinstance(config["input_dim"], int) or config["input_dim"] < 1:
        raise ValueError(f"input_dim must be a positive integer, got {config['input_dim']!r}")
    shapes = [tuple(arrays[k].shape) for k in stored]
    if shapes != expected:
        raise ValueError(f"the config declares weights of shapes {expected[:6]}{'...' if len(expected) > 6 else ''}"
                         f" but the file stores {shapes[:6]}{'...' if len(shapes) > 6 else ''}")


def load(path: Any) -> "Sequential":
    """Load a model written by :meth:`Sequential.save`.

    It predicts bitwise-identically and resumes training exactly (same
    optimiser state, same RNG counters) as the saved model.

    Raises
    ------
    ValueError
        When the file is not a readable pybackprop model (truncated, corrupted,
        another format or version, or modified after writing).
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        return _read(f, repr(path))


def model_from_bytes(blob: bytes) -> "Sequential":
    """Inverse of :func:`model_to_bytes`."""
    return _read(_io.BytesIO(blob), "the pickled data")
