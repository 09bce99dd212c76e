"""Shared helpers of the test suite.

- ``assert_close`` compares two tensors by name and, on failure, reports the
  worst element, its index and both values (as llm.c's test_gpt2 does, but
  failing loudly);
- ``core_and_reference`` builds the core model and the NumPy reference network
  with the same config and the same weights;
- small builders of models and data used by several files.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest

import pybackprop as bp
from pybackprop.reference import Network

#: Parity tolerances (rtol, atol) per dtype. float64: both engines do the same
#: operations, only the summation order of the matrix products differs, so
#: they agree to a few ulps. float32: the same, with float32's ulp (6e-8) and a
#: few dozen terms per sum; atol is taken relative to the tensor's largest
#: element (see ``tolerance``) because a near-zero element produced by
#: cancellation has no meaningful relative error.
TOL = {"float64": (1e-12, 1e-12), "float32": (1e-5, 1e-5)}

ACTIVATIONS = ["identity", "relu", "leaky_relu", "noisy_relu", "sigmoid", "tanh", "elu",
               "softplus", "gelu", "softmax"]
HIDDEN_ACTIVATIONS = [a for a in ACTIVATIONS if a != "softmax"]
LOSSES = ["mse", "mae", "huber", "binary_crossentropy", "categorical_crossentropy"]
INITIALIZERS = ["random_normal", "random_uniform", "glorot_uniform", "glorot_normal", "he_normal",
                "he_uniform", "zeros"]


# ---------------------------------------------------------------------- comparisons
def assert_close(name: str, got: Any, want: Any, rtol: float, atol: float) -> None:
    """Assert ``|got - want| <= atol + rtol * |want|`` elementwise.

    On failure the message names the tensor, how many elements are off, and
    the worst one (largest error relative to its allowance): index, both
    values and the difference. Shapes must match exactly; NaN never matches.
    """
    g = np.asarray(got, dtype=np.float64)
    w = np.asarray(want, dtype=np.float64)
    if g.shape != w.shape:
        raise AssertionError(f"{name}: shape {g.shape} (got) != {w.shape} (want)")
    if g.size == 0:
        return
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(g - w)
        err = np.where(np.isnan(err) | np.isnan(g) | np.isnan(w), np.inf, err)
        # infinities of the same sign are equal
        err = np.where(np.isinf(g) & np.isinf(w) & (np.sign(g) == np.sign(w)), 0.0, err)
        allowed = atol + rtol * np.abs(np.where(np.isfinite(w), w, 0.0))
        bad = err > allowed
    if bad.any():
        ratio = np.where(allowed > 0, err / np.where(allowed > 0, allowed, 1), np.inf)
        ratio = np.where(bad, ratio, -1.0)
        idx = np.unravel_index(int(np.argmax(ratio)), g.shape)
        raise AssertionError(
            f"{name}: {int(bad.sum())} of {g.size} elements differ beyond rtol={rtol:g}, "
            f"atol={atol:g}; worst at index {tuple(int(i) for i in idx)}: got {g[idx]!r}, "
            f"want {w[idx]!r}, |diff| {err[idx]:.3e} (allowed {allowed[idx]:.3e}); "
            f"max |diff| over the tensor {float(np.max(err)):.3e}")


def tolerance(dtype: str, want: Any) -> Tuple[float, float]:
    """(rtol, atol) for comparing a tensor of ``dtype`` against ``want``.

    float64: (1e-12, 1e-12) absolute. float32: rtol 1e-5 and atol 1e-5 times the
    tensor's largest magnitude (at least 1e-5 * 1e-2, so exact zeros compare).
    """
    rtol, atol = TOL[dtype]
    if dtype == "float32":
        scale = float(np.max(np.abs(want))) if np.size(want) else 0.0
        atol = atol * max(scale, 1e-2)
    return rtol, atol


def assert_tensors_close(prefix: str, got: Sequence[Any], want: Sequence[Any], dtype: str,
                         names: Optional[Sequence[str]] = None) -> None:
    """``assert_close`` over two lists of tensors, naming each by position."""
    assert len(got) == len(want), f"{prefix}: {len(got)} tensors (got) != {len(want)} (want)"
    for i, (g, w) in enumerate(zip(got, want)):
        label = names[i] if names is not None else f"[{i}]"
        assert_close(f"{prefix} {label}", g, w, *tolerance(dtype, w))


def assert_gradients_close(prefix: str, got: List[Dict[str, np.ndarray]],
                           want: List[Dict[str, np.ndarray]], dtype: str) -> None:
    """Compare ``loss_and_gradients`` outputs layer by layer, dW and db by name."""
    assert len(got) == len(want), f"{prefix}: {len(got)} layers of gradients != {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        assert sorted(g) == sorted(w), f"{prefix} layer {i}: keys {sorted(g)} != {sorted(w)}"
        for key in sorted(w):
            assert g[key].dtype == np.dtype(dtype), f"{prefix} layer {i} d{key}: dtype {g[key].dtype}"
            assert_close(f"{prefix} layer {i} d{key}", g[key], w[key], *tolerance(dtype, w[key]))


def dense_layers(model: bp.Sequential) -> list:
    """The layers of ``model`` that hold parameters (Dense), in order."""
    return [layer for layer in model.layers if isinstance(layer, bp.Dense)]


def weight_names(model: bp.Sequential) -> List[str]:
    """Names of ``get_weights()`` entries: ``W0``, ``b0``, ``W1``, ... (index in model.layers)."""
    names = []
    for i, layer in enumerate(model.layers):
        if isinstance(layer, bp.Dense):
            names.append(f"W{i}")
            if layer.use_bias:
                names.append(f"b{i}")
    return names


# ---------------------------------------------------------------------- the core's internals
def optimizer_state(model: bp.Sequential) -> List[np.ndarray]:
    """The core's optimiser-state arenas (views): SGD's momentum buffer (``momentum()``;
    ``state1()``/``state2()`` in cores that also implement Adam and friends)."""
    net = model._net
    if hasattr(net, "momentum"):
        return [net.momentum()]
    return [getattr(net, name)() for name in ("state1", "state2") if hasattr(net, name)]


def core_state(model: bp.Sequential) -> Dict[str, Any]:
    """A snapshot (copies) of everything training may change in the core."""
    net = model._net
    return {"weights": model.get_weights(), "params": net.params().copy(),
            "optimizer_state": [s.copy() for s in optimizer_state(model)],
            "epoch_counter": net.epoch_counter, "step_counter": net.step_counter}


def assert_state_unchanged(model: bp.Sequential, before: Dict[str, Any]) -> None:
    """Bitwise comparison with a ``core_state`` snapshot."""
    after = core_state(model)
    for key in ("epoch_counter", "step_counter"):
        assert after[key] == before[key], f"{key} changed: {before[key]} -> {after[key]}"
    assert np.array_equal(after["params"], before["params"]), "parameter arena changed"
    for k, (a, b) in enumerate(zip(after["optimizer_state"], before["optimizer_state"])):
        assert np.array_equal(a, b), f"optimiser state (momentum) arena {k} changed"
    for name, a, b in zip(weight_names(model), after["weights"], before["weights"]):
        assert np.array_equal(a, b), f"weight {name} changed"


def core_momentum(model: bp.Sequential) -> List[np.ndarray]:
    """The SGD momentum buffers of the core, one per parameter, in get_weights() order.

    The momentum arena has the parameter arena's layout (with alignment padding),
    so each W/b view's offset into the parameter arena locates its buffer.
    """
    base = model._net.params().__array_interface__["data"][0]
    mom = optimizer_state(model)[0]
    out = []
    for layer in dense_layers(model):
        for v in [layer.W] + ([layer.b] if layer.use_bias else []):
            off = (v.__array_interface__["data"][0] - base) // v.itemsize
            out.append(mom[off:off + v.size].reshape(v.shape).copy())
    return out


# ---------------------------------------------------------------------- builders
def make_model(hidden: Sequence[Tuple[int, Any]], out_units: int, out_act: Any = "identity",
               loss: Optional[str] = "mse", use_bias: bool = True, dtype: str = "float64",
               seed: int = 0, input_dim: int = 3, init: Any = "glorot_uniform",
               optimizer: Any = None) -> bp.Sequential:
    """A built (and, if ``loss`` is given, compiled) model.

    ``hidden`` is a list of ``(units, activation)``; the output layer has
    ``out_units`` units and activation ``out_act``.
    """
    layers = [bp.Dense(u, activation=a, use_bias=use_bias, init=init) for u, a in hidden]
    layers.append(bp.Dense(out_units, activation=out_act, use_bias=use_bias, init=init))
    model = bp.Sequential(layers, input_dim=input_dim, dtype=dtype, seed=seed)
    if loss is not None:
        model.compile(loss=loss, optimizer=optimizer if optimizer is not None else bp.SGD(lr=0.05))
    return model


def reference_of(model: bp.Sequential) -> Network:
    """The reference network with ``model``'s config and current weights.

    The counters (epoch, step) are copied too, so shuffling and noise streams
    line up even for a model that has already trained.
    """
    ref = Network.from_config(model.get_config(), model.get_weights())
    ref.epoch_counter = model._net.epoch_counter
    ref.step_counter = model._net.step_counter
    return ref


def core_and_reference(**kwargs: Any) -> Tuple[bp.Sequential, Network]:
    """``make_model(**kwargs)`` and its reference twin (same config, same weights)."""
    model = make_model(**kwargs)
    return model, reference_of(model)


def make_data(n: int, input_dim: int, out_units: int, loss: str, dtype: str = "float64",
              seed: int = 0, targets: str = "onehot") -> Tuple[np.ndarray, np.ndarray]:
    """Random inputs and targets suited to ``loss``.

    Regression losses get normal targets, binary_crossentropy targets in {0, 1}
    (and one fractional column, which BCE allows), categorical_crossentropy
    integer labels (``targets="labels"``) or one-hot rows (``"onehot"``). Every
    class appears when n >= out_units.
    """
    r = np.random.default_rng(seed)
    X = r.normal(size=(n, input_dim)).astype(dtype)
    if loss == "categorical_crossentropy":
        labels = np.arange(n) % out_units
        r.shuffle(labels)
        if targets == "labels":
            return X, labels
        return X, np.eye(out_units, dtype=dtype)[labels]
    if loss == "binary_crossentropy":
        y = (r.uniform(size=(n, out_units)) < 0.5).astype(dtype)
        if out_units > 1:
            y[:, -1] = r.uniform(size=n)
        return X, y
    return X, r.normal(size=(n, out_units)).astype(dtype)


@pytest.fixture
def restore_num_threads():
    """Restore the core's thread count after a test that changes it."""
    old = bp.get_num_threads()
    yield
    bp.set_num_threads(old)


# ---------------------------------------------------------------------- a real browser
#: Debian's packages (``apt-get install chromium chromium-driver``); never a downloaded browser.
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = ("/usr/bin/chromedriver",)


def _first_existing(paths: Sequence[str]) -> Optional[str]:
    import os

    return next((p for p in paths if os.path.exists(p)), None)


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium driven by Selenium, shared by the browser tests of a run.

    ``browser.console_errors()`` returns the console entries of level SEVERE
    logged since its last call, so a test can fail on any JavaScript error.
    Skips, with the reason, where Debian's chromium, chromium-driver or the
    selenium package are missing; with ``PYBACKPROP_REQUIRE_BROWSER=1`` (set by
    ``.ci/run``, which installs all three) a missing piece fails instead.
    """
    import os

    missing = pytest.fail if os.environ.get("PYBACKPROP_REQUIRE_BROWSER") == "1" else pytest.skip
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("selenium is not installed (pip install selenium)")
    binary, driver_path = _first_existing(CHROMIUM), _first_existing(CHROMEDRIVER)
    if binary is None or driver_path is None:
        missing("Debian's chromium and chromium-driver are not installed "
                "(apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)

    def console_errors() -> List[Dict[str, Any]]:
        return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]

    driver.console_errors = console_errors  # type: ignore[attr-defined]
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshot_dir(tmp_path):
    """Where browser tests save their screenshots: ``$PYBACKPROP_SCREENSHOTS`` or a temporary folder."""
    import os
    import pathlib

    target = os.environ.get("PYBACKPROP_SCREENSHOTS")
    path = pathlib.Path(target) if target else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def playground():
    """A :class:`~pybackprop.playground.server.PlaygroundServer` on a free port, served from a
    thread for the module's tests (the HTTP API tests and the page in the browser)."""
    from pybackprop.playground.server import PlaygroundServer
    from pybackprop.playground.session import SessionStore

    srv = PlaygroundServer(port=0, store=SessionStore(ttl=600))
    thread = srv.serve_in_thread(poll_interval=0.05)
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)
