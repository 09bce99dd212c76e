#!/usr/bin/env python
"""Coverage-guided fuzzing of the model-file loader (atheris / libFuzzer).

    python tools/fuzz_load.py -max_total_time=30            # fuzz for 30 s
    python tools/fuzz_load.py -runs=0 crash-1234            # replay one input

The target feeds bytes to ``pybackprop.io.model_from_bytes`` (what ``bp.load``
runs on a file's content). The loader must answer every input with a model or
a ``ValueError``; anything else escaping (another exception, a crash of the
interpreter, a hang) is a finding that libFuzzer reports and saves as
``crash-*`` under ``-artifact_prefix``.

The first byte of an input selects a mode, so that mutations reach past the
archive and checksum checks:

- 0: the rest is the file, as is (npz/zip parsing, checksums, header JSON);
- 1: the rest is the JSON header; it is wrapped into an npz together with the
     arrays of a seed model (chosen by the second byte), with the checksums
     recomputed, so mutated configs, counters and shapes reach
     ``Sequential.from_config``, ``set_weights`` and the core;
- 2: the rest replaces the bytes of one array of a seed model (checksums
     recomputed): wrong sizes, NaN/inf weights, odd dtypes;
- 3: structure-aware: the bytes pick one value anywhere in a seed model's
     header (config, layers, optimiser, counters, ...) and replace it with a
     value of another type or an extreme (None, -1, 2**70, Infinity, NaN, a
     string, a list, a dict, deeply nested JSON), checksums recomputed.

Any exception other than ValueError (or MemoryError, below) is a finding and
stops the fuzzer with a crash report. Earlier runs found OverflowError,
RecursionError, AttributeError and TypeError escaping from malformed headers,
and a tiny file claiming a huge layer that the loader allocated before checking
it (tests/test_fuzz_load.py keeps those cases). PYBACKPROP_FUZZ_STRICT=0 only
counts such exceptions instead.

The corpus is seeded with valid model files (written to ``-seed_dir`` or a
temporary directory). ``MemoryError`` is tolerated for configs that ask for
absurd layer sizes (the core's documented answer to those) and counted.
At exit the tool prints ``fuzz_load: N executions, ...``.
"""
from __future__ import annotations

import atexit
import hashlib
import io
import json
import os
import sys
import tempfile
import warnings

import numpy as np

try:
    import atheris
except ImportError:  # pragma: no cover
    print("fuzz_load: atheris is not installed (pip install atheris)", file=sys.stderr)
    sys.exit(2)

with atheris.instrument_imports():
    import pybackprop as bp
    from pybackprop import io as bpio

STATS = {"executions": 0, "loaded": 0, "ValueError": 0, "MemoryError": 0}
STRICT = os.environ.get("PYBACKPROP_FUZZ_STRICT", "1") != "0"
KNOWN_BUGS = (OverflowError, RecursionError, AttributeError, TypeError, KeyError, IndexError)  # once found
FIRST_KNOWN: dict = {}
#: replacement values of mode 3
REPLACEMENTS: list = [None, True, False, -1, 0, 1, 2, 2 ** 63, 2 ** 64, 2 ** 70, 10 ** 12, 2 ** 62, 3 * 10 ** 8,
                      float("inf"), float("-inf"), float("nan"), 0.5, -0.5, 1e-300, 1e300, "", "relu", "softmax",
                      "sgd", "Dense", "Dropout", "float16", [], {}, [1], [[1.0]], {"class_name": "Dense"},
                      {"class_name": "Exponential", "initial": 1.0, "rate": 1e300}, "DEEP"]
SEEDS: list = []  # (header dict, {name: array}) of each seed model


def seed_models() -> list:
    """A handful of valid models covering the file format's features."""
    X = np.random.default_rng(0).normal(size=(16, 3))
    y = X[:, :1] ** 2
    out = []
    m = bp.Sequential([bp.Dense(4, activation="relu"), bp.Dense(1)], input_dim=3, seed=1)
    m.compile(loss="mse", optimizer=bp.SGD(lr=0.1, momentum=0.9))
    m.fit(X, y, epochs=2, batch_size=4, verbose=0)
    out.append(m)
    m = bp.Sequential([bp.Dropout(keep_prob=bp.schedules.Linear(1.0, 0.5, steps=4)),
                       bp.Dense(5, activation="tanh", use_bias=False),
                       bp.Dropout(rate=0.2, scaling="classic", mask="per_batch"),
                       bp.Dense(3, activation="softmax")], input_dim=3, dtype="float64", seed=2)
    m.compile(loss="categorical_crossentropy", optimizer=bp.Adam(lr=bp.schedules.Exponential(1e-2, 0.9)))
    m.fit(X, np.arange(16) % 3, epochs=2, batch_size=8, verbose=0)
    out.append(m)
    m = bp.Sequential([bp.Dense(2, activation=bp.activations.LeakyReLU(alpha=0.1)),
                       bp.Dense(1, activation="sigmoid", init=[[0.5], [-0.5]])], input_dim=3, seed=3)
    m.compile(loss="binary_crossentropy", optimizer=bp.RMSprop(clip_norm=1.0))
    out.append(m)
    out.append(bp.Sequential([bp.Dense(2, activation="elu")], seed=4))  # not built, not compiled
    m = bp.Sequential([bp.Dense(3, activation="gelu"), bp.Dense(2)], input_dim=2, seed=5)
    m.compile(loss="huber", optimizer=bp.Adagrad(lr_decay=0.01, initial_accumulator_value=0.1))
    out.append(m)
    return out


def split(blob: bytes) -> tuple:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    header = json.loads(arrays.pop("header").tobytes().decode("utf-8"))
    return header, arrays


def pack(header_bytes: bytes, arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, header=np.frombuffer(header_bytes, dtype=np.uint8), **arrays)
    return buf.getvalue()


def with_checksums(header_bytes: bytes, arrays: dict) -> bytes:
    """The header with its sha256 table recomputed for ``arrays`` (when it parses)."""
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return header_bytes
    if isinstance(header, dict) and isinstance(header.get("sha256"), dict):
        header["sha256"] = {name: hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
                            for name, a in arrays.items()}
        return json.dumps(header).encode("utf-8")
    return header_bytes


def _paths(obj: object, prefix: tuple = ()) -> list:
    """Every (container, key) position in a JSON value."""
    out = []
    if isinstance(obj, dict):
        for k in sorted(obj):
            out.append((prefix, k))
            out.extend(_paths(obj[k], prefix + (k,)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.append((prefix, i))
            out.extend(_paths(v, prefix + (i,)))
    return out


def mutate_header(header: dict, rest: bytes) -> bytes:
    header = json.loads(json.dumps(header))
    for k in range(0, min(len(rest) - 1, 16), 2):  # each byte pair: a position and a replacement
        positions = _paths(header)
        if not positions:
            break
        prefix, key = positions[rest[k] % len(positions)]
        value = json.loads(json.dumps(REPLACEMENTS[rest[k + 1] % len(REPLACEMENTS)]))  # a fresh copy
        container = header
        for p in prefix:
            container = container[p]
        container[key] = value
    text = json.dumps(header)
    return text.replace('"DEEP"', "[" * 50000 + "]" * 50000).encode("utf-8")


def build_input(data: bytes) -> bytes:
    if not data:
        return b""
    mode, rest = data[0] % 4, data[1:]
    if mode == 3 and SEEDS and rest:
        header, arrays = SEEDS[rest[0] % len(SEEDS)]
        return pack(with_checksums(mutate_header(header, rest[1:]), arrays), arrays)
    if mode == 0 or not SEEDS:
        return rest
    if not rest:
        return b""
    _, arrays = SEEDS[rest[0] % len(SEEDS)]
    rest = rest[1:]
    if mode == 1:
        return pack(with_checksums(rest, arrays), arrays)
    header, arrays = SEEDS[data[1] % len(SEEDS)]
    if not arrays or not rest:
        return pack(json.dumps(header).encode(), arrays)
    arrays = dict(arrays)
    name = sorted(arrays)[rest[0] % len(arrays)]
    dtype = [np.float32, np.float64, np.int64, np.uint8, np.float16][rest[1 % len(rest)] % 5] \
        if len(rest) > 1 and rest[1] < 64 else arrays[name].dtype
    payload = rest[2:]
    usable = len(payload) - len(payload) % np.dtype(dtype).itemsize
    arrays[name] = np.frombuffer(payload[:usable], dtype=dtype).copy()
    return pack(with_checksums(json.dumps(header).encode(), arrays), arrays)


def test_one_input(data: bytes) -> None:
    STATS["executions"] += 1
    if STATS["executions"] & (STATS["executions"] - 1) == 0 and STATS["executions"] >= 1024:
        report()  # at powers of two (libFuzzer may end the process without running atexit)
    blob = build_input(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning from the loader is a finding too
            model = bpio.model_from_bytes(blob)
    except ValueError:
        STATS["ValueError"] += 1
        return
    except MemoryError:
        STATS["MemoryError"] += 1  # a config asking for an absurd layer size
        if STRICT:
            raise
        return
    except KNOWN_BUGS as e:
        if STRICT:
            raise
        name = type(e).__name__
        STATS[name] = STATS.get(name, 0) + 1
        if name not in FIRST_KNOWN:
            FIRST_KNOWN[name] = f"{e}"[:120]
            print(f"fuzz_load: loader raised {name}: {FIRST_KNOWN[name]}", flush=True)
        return
    STATS["loaded"] += 1
    if model.built:  # a model that loads is usable
        for w in model.get_weights():
            assert np.isfinite(w).all(), "a loaded model has non-finite weights"
        x = np.zeros((1, model.input_dim), dtype=model.dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.predict(x)


def write_seeds(directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    for k, model in enumerate(seed_models()):
        blob = bpio.model_to_bytes(model)
        header, arrays = split(blob)
        SEEDS.append((header, arrays))
        with open(os.path.join(directory, f"seed-{k}-file"), "wb") as f:
            f.write(b"\x00" + blob)
        with open(os.path.join(directory, f"seed-{k}-header"), "wb") as f:
            f.write(b"\x01" + bytes([k]) + json.dumps(header).encode("utf-8"))
        with open(os.path.join(directory, f"seed-{k}-structured"), "wb") as f:
            f.write(b"\x03" + bytes([k]))
        for j, name in enumerate(sorted(arrays)):
            with open(os.path.join(directory, f"seed-{k}-array-{j}"), "wb") as f:
                f.write(b"\x02" + bytes([k, j, 255]) + np.ascontiguousarray(arrays[name]).tobytes())


def report() -> None:
    known = ", ".join(f"{STATS.get(e.__name__, 0)} {e.__name__}" for e in KNOWN_BUGS)
    print(f"fuzz_load: {STATS['executions']} executions, {STATS['loaded']} loaded, "
          f"{STATS['ValueError']} ValueError, {STATS['MemoryError']} MemoryError (other exceptions: {known})",
          flush=True)


def main() -> None:
    args = list(sys.argv)
    seed_dir = None
    for a in list(args):
        if a.startswith("-seed_dir="):
            seed_dir = a.split("=", 1)[1]
            args.remove(a)
    try:  # an address-space cap: a config that asks for gigabytes fails fast with MemoryError
        import resource
        limit = int(os.environ.get("PYBACKPROP_FUZZ_AS_MB", "8192")) * 2 ** 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # pragma: no cover
        pass
    if seed_dir is None:
        seed_dir = tempfile.mkdtemp(prefix="pybackprop-fuzz-load-")
    write_seeds(seed_dir)
    replay = any(not a.startswith("-") for a in args[1:])
    if not any(a.startswith("-max_len=") for a in args):
        args.append("-max_len=16384")
    if not replay:
        args.append(seed_dir)  # the corpus directory: seeds in, new coverage out
    atexit.register(report)
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
