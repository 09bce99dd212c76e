"""Dropout with keep probability p (DESIGN.md "Dropout", docs/internals.md "Dropout").

- parity of the C++ core with the NumPy reference: the masks drawn for a step
  are bitwise equal in both engines, the gradients agree to rounding with the
  drawn masks and with given (replayed) masks, and 3 epochs of ``fit`` with
  shuffling agree; for Dropout first, between layers and several Dropouts,
  both scalings, both mask modes, float32 and float64;
- statistics: the mean training-time output over many masks equals the
  inference output (both scalings), the empirical keep rate is p;
- exact properties: with mask="per_batch" and plain SGD a dropped unit's
  incoming and outgoing weights are bitwise unchanged by a step while all
  others move; keep_prob=1 is bitwise the model without Dropout;
  ``rate=`` is ``keep_prob = 1 - rate``; predict/evaluate never drop;
- the error messages (keep versus drop).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

import pybackprop as bp
from conftest import assert_close, assert_gradients_close, assert_tensors_close, reference_of, tolerance
from pybackprop.reference import dropout_mask

DTYPES = ["float32", "float64"]
INPUT_DIM = 4
N = 20  # samples; batch size 7 leaves a partial last batch


def layers_for(placement: str, scaling: str, mask: str) -> List[bp.layers.Layer]:
    """Models with Dropout first, between two Dense layers, several Dropouts, or around noisy_relu."""
    drop = lambda p, s=scaling, m=mask: bp.Dropout(keep_prob=p, scaling=s, mask=m)  # noqa: E731
    if placement == "first":
        return [drop(0.8), bp.Dense(6, activation="tanh"), bp.Dense(2)]
    if placement == "between":
        return [bp.Dense(6, activation="relu", init="he_normal"), drop(0.6), bp.Dense(2)]
    if placement == "noisy":  # noise streams use the position in the full layer list too
        return [drop(0.8), bp.Dense(6, activation=bp.activations.NoisyReLU(sigma=0.2)), drop(0.6),
                bp.Dense(2)]
    other_s = "classic" if scaling == "inverted" else "inverted"
    other_m = "per_batch" if mask == "per_sample" else "per_sample"
    return [drop(0.9), bp.Dense(6, activation="tanh"), drop(0.5, other_s, other_m),
            bp.Dense(5, activation="sigmoid"), drop(0.7, scaling, other_m), bp.Dense(2)]


CASES = [pytest.param(p, s, m, id=f"{p}-{s}-{m}") for p in ("first", "between", "several")
         for s in ("inverted", "classic") for m in ("per_sample", "per_batch")]
CASES += [pytest.param("noisy", "inverted", "per_sample", id="noisy-inverted-per_sample"),
          pytest.param("noisy", "classic", "per_batch", id="noisy-classic-per_batch")]


def make(layers: List[bp.layers.Layer], dtype: str = "float64", seed: int = 3,
         optimizer: Any = None, loss: str = "mse", input_dim: int = INPUT_DIM) -> bp.Sequential:
    model = bp.Sequential(layers, input_dim=input_dim, dtype=dtype, seed=seed)
    model.compile(loss=loss, optimizer=optimizer if optimizer is not None else bp.SGD(lr=0.1))
    return model


def data(dtype: str = "float64", n: int = N, seed: int = 0, k: int = 2) -> Tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(seed)
    return r.normal(size=(n, INPUT_DIM)).astype(dtype), r.normal(size=(n, k)).astype(dtype)


def dropout_indices(model: bp.Sequential) -> List[int]:
    return [i for i, layer in enumerate(model.layers) if isinstance(layer, bp.Dropout)]


# ------------------------------------------------------------------------ parity with the reference
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("placement,scaling,mask", CASES)
def test_masks_and_gradients_match_the_reference(placement, scaling, mask, dtype):
    model = make(layers_for(placement, scaling, mask), dtype, optimizer=bp.SGD(lr=0.05, momentum=0.5))
    X, y = data(dtype)
    model.fit(X, y, epochs=1, batch_size=7, verbose=0)  # step_counter 3: not only step 0
    ref = reference_of(model)
    assert ref.step_counter == model._net.step_counter == 3
    loss, grads, masks = model.loss_and_gradients(X, y, training=True, return_masks=True)
    loss_r, grads_r, masks_r = ref.loss_and_gradients(X, y, training=True, return_masks=True)
    assert sorted(masks) == sorted(masks_r) == dropout_indices(model)
    for i in masks:  # the same bits: PCG32 stream(DROPOUT, step, i), next() < floor(p 2^32)
        assert masks[i].dtype == np.dtype(dtype) and masks[i].shape == masks_r[i].shape
        assert np.array_equal(masks[i], masks_r[i]), f"mask of layer {i} differs between engines"
        if model.layers[i].mask == "per_batch":
            assert (masks[i] == masks[i][0]).all(), f"per_batch mask of layer {i} varies across rows"
    assert_close("loss", loss, loss_r, *tolerance(dtype, loss_r))
    assert_gradients_close("drawn masks", grads, grads_r, dtype)

    # Replaying the returned masks gives bitwise the same step.
    loss2, grads2 = model.loss_and_gradients(X, y, training=True, masks=masks)
    assert loss2 == loss
    for g, g2 in zip(grads, grads2):
        assert all(np.array_equal(g[k], g2[k]) for k in g)

    # Masks given by the caller (any 0/1 arrays; rows broadcast) in both engines.
    r = np.random.default_rng(5)
    given: Dict[int, np.ndarray] = {}
    for i in masks:
        shape = masks[i].shape if i % 2 == 0 else masks[i].shape[1:]
        given[i] = (r.uniform(size=shape) < 0.5).astype(dtype)
    loss_g, grads_g, used = model.loss_and_gradients(X, y, training=True, masks=given, return_masks=True)
    loss_gr, grads_gr = ref.loss_and_gradients(X, y, training=True, masks=given)
    for i in given:
        assert np.array_equal(used[i], np.broadcast_to(given[i], masks[i].shape))
    assert_close("loss with given masks", loss_g, loss_gr, *tolerance(dtype, loss_gr))
    assert_gradients_close("given masks", grads_g, grads_gr, dtype)
    assert model._net.step_counter == 3  # loss_and_gradients never advances the step


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("placement,scaling,mask", CASES)
def test_fit_matches_the_reference(placement, scaling, mask, dtype):
    model = make(layers_for(placement, scaling, mask), dtype, seed=11,
                 optimizer=bp.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3))
    ref = reference_of(model)
    X, y = data(dtype, seed=1)
    hist = model.fit(X, y, epochs=3, batch_size=7, shuffle=True, verbose=0)
    hist_r = ref.fit(X, y, epochs=3, batch_size=7, shuffle=True)
    assert_tensors_close("loss per epoch", [np.array(hist.history["loss"])], [np.array(hist_r["loss"])], dtype)
    assert_tensors_close("grad_norm", [np.array(hist.history["grad_norm"])], [np.array(hist_r["grad_norm"])],
                         dtype)
    assert_tensors_close("weights after fit", model.get_weights(), ref.get_weights(), dtype)
    assert (model._net.epoch_counter, model._net.step_counter) == (ref.epoch_counter, ref.step_counter) == (3, 9)
    assert_close("predict", model.predict(X), ref.predict(X), *tolerance(dtype, ref.predict(X)))
    assert_close("evaluate", model.evaluate(X, y), ref.evaluate(X, y), *tolerance(dtype, ref.evaluate(X, y)))


def test_fit_with_adam_and_clipping_matches_the_reference():
    model = make(layers_for("several", "inverted", "per_sample"), "float64", seed=4,
                 optimizer=bp.Adam(lr=0.01, weight_decay=0.01, clip_norm=0.5))
    ref = reference_of(model)
    X, y = data("float64", seed=2)
    model.fit(X, y, epochs=3, batch_size=6, verbose=0)
    ref.fit(X, y, epochs=3, batch_size=6)
    assert_tensors_close("weights after fit", model.get_weights(), ref.get_weights(), "float64")


@pytest.mark.parametrize("rows,units", [(9, 5), (1, 1), (1, 7), (1, 8), (3, 3), (2, 9), (5, 13), (7, 300)])
def test_reference_mask_function_is_the_core_mask(rows, units):
    """The core draws masks four PCG32 states at a time (and 512 at a time per chunk); the
    numbers must still be the one stream of the spec, for any size (short, odd, > a chunk)."""
    model = make([bp.Dense(units, activation="tanh"), bp.Dropout(0.3, mask="per_sample"), bp.Dense(1)], seed=77)
    X, y = data(n=rows, k=1)
    model._net.step_counter = 123456
    _, _, masks = model.loss_and_gradients(X, y, training=True, return_masks=True)
    np.testing.assert_array_equal(masks[1], dropout_mask(77, 123456, 1, (rows, units), 0.3))


# ------------------------------------------------------------------------ statistics
def mean_training_output(model: bp.Sequential, x: np.ndarray, draws: int, per_batch: bool) -> np.ndarray:
    """Mean over ``draws`` masks of the training-mode output for the single input ``x``.

    With an identity output layer, MSE and target 0, the output bias gradient is
    db_k = 2 sum_n yhat_nk / (B K), so yhat averaged over the batch rows is
    db K / 2: one call with B copies of x averages B per-sample masks. Per-batch
    masks share one mask per call, so those average over calls (steps).
    """
    K = model.output_dim
    if not per_batch:
        X = np.tile(x, (draws, 1))
        _, grads = model.loss_and_gradients(X, np.zeros((draws, K)), training=True)
        return grads[-1]["b"].astype(np.float64) * K / 2
    total = np.zeros(K)
    X = np.tile(x, (4, 1))
    for s in range(draws):
        model._net.step_counter = s  # a new mask every step
        _, grads = model.loss_and_gradients(X, np.zeros((4, K)), training=True)
        total += grads[-1]["b"].astype(np.float64) * K / 2
    return total / draws


@pytest.mark.parametrize("mask,draws", [("per_sample", 40000), ("per_batch", 3000)])
@pytest.mark.parametrize("scaling", ["inverted", "classic"])
@pytest.mark.parametrize("first", [True, False])
def test_mean_training_output_equals_inference_output(first, scaling, mask, draws):
    p = 0.6
    drop = bp.Dropout(keep_prob=p, scaling=scaling, mask=mask)
    layers = [drop, bp.Dense(3)] if first else [bp.Dense(5, activation="tanh"), drop, bp.Dense(3)]
    model = make(layers, "float64", seed=8, optimizer=bp.SGD(lr=0.0))
    x = np.random.default_rng(9).normal(size=(1, INPUT_DIM))
    # what the Dropout sees and the weights after it
    a = x if first else np.tanh(x @ model.layers[0].W + model.layers[0].b)
    W = model.layers[-1].W
    s_train = 1 / p if scaling == "inverted" else 1.0
    # per output: variance over masks of sum_j a_j M_j s W_jk = sum_j (a_j s W_jk)^2 p (1 - p)
    std = np.sqrt((((a[0] * s_train)[:, None] * W) ** 2).sum(axis=0) * p * (1 - p))
    mc = mean_training_output(model, x, draws, mask == "per_batch")
    inference = model.predict(x)[0]
    bound = 5 * std / math.sqrt(draws)
    assert np.all(np.abs(mc - inference) < bound), (mc, inference, bound)
    # the scalings differ in training but not in expectation: classic scales by p at inference
    s_inference = p if scaling == "classic" else 1.0
    np.testing.assert_allclose(inference, ((a * s_inference) @ W + model.layers[-1].b)[0], rtol=1e-12)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.85])
@pytest.mark.parametrize("mask", ["per_sample", "per_batch"])
def test_empirical_keep_rate_is_p(p, mask):
    model = make([bp.Dropout(keep_prob=p, mask=mask), bp.Dense(1)], seed=int(p * 100),
                 optimizer=bp.SGD(lr=0.0))
    X, y = np.ones((50, INPUT_DIM)), np.zeros(50)
    kept, total, previous = 0, 0, None
    for step in range(400):
        _, _, masks = model.loss_and_gradients(X, y, training=True, return_masks=True)
        m = masks[0] if mask == "per_sample" else masks[0][0]  # per batch: the draws are one row
        kept, total = kept + int(m.sum()), total + m.size
        if previous is not None:
            assert not np.array_equal(m, previous) or m.size < 8, "the mask did not change between steps"
        previous = m
        model.train_step(X, y)  # lr 0: only the step counter moves
    assert model._net.step_counter == 400
    rate, sigma = kept / total, math.sqrt(p * (1 - p) / total)
    assert abs(rate - p) < 5 * sigma, f"keep rate {rate:.5f} vs p = {p} (5 sigma = {5 * sigma:.5f}, {total} draws)"


# ------------------------------------------------------------------------ exact properties
@pytest.mark.parametrize("dtype", DTYPES)
def test_per_batch_mask_freezes_the_weights_of_dropped_units(dtype):
    model = make([bp.Dense(6, activation="tanh"), bp.Dropout(0.5, mask="per_batch"),
                  bp.Dense(5, activation="tanh"), bp.Dropout(0.5, mask="per_batch", scaling="classic"),
                  bp.Dense(2)], dtype, seed=2, optimizer=bp.SGD(lr=0.1))
    X, y = data(dtype, n=8)
    for _ in range(20):  # train until a step whose masks drop some units and keep some, in both layers
        model.train_step(X, y)
        _, _, masks = model.loss_and_gradients(X, y, training=True, return_masks=True)  # those of the next step
        keep1, keep3 = masks[1][0].astype(bool), masks[3][0].astype(bool)
        if 0 < keep1.sum() < 6 and 0 < keep3.sum() < 5:
            break
    else:
        pytest.fail("no step in 20 drops some units and keeps some in both layers")
    before = [w.copy() for w in model.get_weights()]
    model.train_step(X, y)
    W0, b0, W2, b2, W4, b4 = before
    nW0, nb0, nW2, nb2, nW4, nb4 = model.get_weights()
    # incoming (W0[:, j], b0[j]) and outgoing (W2[j, :]) weights of the units of layer 0 dropped by layer 1,
    # then likewise for the units of layer 2 dropped by layer 3
    frozen_W0 = np.broadcast_to(~keep1, W0.shape)
    frozen_W2 = (~keep1)[:, None] | (~keep3)[None, :]
    frozen_W4 = np.broadcast_to((~keep3)[:, None], W4.shape)
    for name, new, old, frozen in [("W0", nW0, W0, frozen_W0), ("b0", nb0, b0, ~keep1), ("W2", nW2, W2, frozen_W2),
                                   ("b2", nb2, b2, ~keep3), ("W4", nW4, W4, frozen_W4)]:
        assert np.array_equal(new[frozen], old[frozen]), f"{name}: a weight of a dropped unit moved"
        assert np.all(new[~frozen] != old[~frozen]), f"{name}: a weight of a kept unit did not move"
    assert np.all(nb4 != b4)
    # the mask of that step was the one loss_and_gradients showed: replaying it gives the same update
    replay = make([bp.Dense(6, activation="tanh"), bp.Dropout(0.5, mask="per_batch"),
                   bp.Dense(5, activation="tanh"), bp.Dropout(0.5, mask="per_batch", scaling="classic"),
                   bp.Dense(2)], dtype, seed=2, optimizer=bp.SGD(lr=0.1))
    replay.set_weights(before)
    _, grads = replay.loss_and_gradients(X, y, training=True, masks=masks)
    flat = [g[k] for g in grads for k in ("W", "b") if k in g]
    for w, g, new in zip(before, flat, model.get_weights()):
        np.testing.assert_array_equal(w - np.asarray(0.1, dtype) * g, new)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scaling,mask", [("inverted", "per_sample"), ("classic", "per_batch")])
def test_keep_prob_one_is_bitwise_the_model_without_dropout(scaling, mask, dtype):
    def build(with_dropout: bool) -> bp.Sequential:
        d = lambda: [bp.Dropout(keep_prob=1.0, scaling=scaling, mask=mask)] if with_dropout else []  # noqa: E731
        layers = d() + [bp.Dense(7, activation="relu")] + d() + [bp.Dense(4, activation="tanh")] + d() + \
            [bp.Dense(2)]
        return make(layers, dtype, seed=5, optimizer=bp.Adam(lr=0.01))
    plain, dropped = build(False), build(True)
    dropped.set_weights(plain.get_weights())  # Dense positions differ, so the seeded inits do too
    X, y = data(dtype, seed=6)
    hp = plain.fit(X, y, epochs=3, batch_size=6, verbose=0)
    hd = dropped.fit(X, y, epochs=3, batch_size=6, verbose=0)
    assert hp.history["loss"] == hd.history["loss"]
    for wp, wd in zip(plain.get_weights(), dropped.get_weights()):
        assert np.array_equal(wp, wd)
    assert np.array_equal(plain.predict(X), dropped.predict(X))
    assert plain.evaluate(X, y) == dropped.evaluate(X, y)
    _, _, masks = dropped.loss_and_gradients(X, y, training=True, return_masks=True)
    assert all(np.all(m == 1) for m in masks.values())


def test_rate_is_one_minus_keep_prob():
    assert bp.Dropout(rate=0.2).keep_prob == 0.8
    assert bp.Dropout(rate=0.0).keep_prob == 1.0
    a = make([bp.Dense(6, activation="tanh"), bp.Dropout(rate=0.25, mask="per_batch"), bp.Dense(2)], seed=9)
    b = make([bp.Dense(6, activation="tanh"), bp.Dropout(keep_prob=0.75, mask="per_batch"), bp.Dense(2)], seed=9)
    assert a.get_config() == b.get_config()
    X, y = data()
    a.fit(X, y, epochs=2, batch_size=5, verbose=0)
    b.fit(X, y, epochs=2, batch_size=5, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)


@pytest.mark.parametrize("scaling", ["inverted", "classic"])
def test_predict_and_evaluate_never_drop(scaling):
    p = 0.4
    model = make([bp.Dense(6, activation="tanh"), bp.Dropout(p, scaling=scaling), bp.Dense(2)], seed=12)
    X, y = data()
    out = model.predict(X)
    loss = model.evaluate(X, y)
    model.fit(X, y, epochs=1, batch_size=5, verbose=0)  # the step counter moves, the weights too
    weights = model.get_weights()
    out, loss = model.predict(X), model.evaluate(X, y)
    for _ in range(3):
        model._net.step_counter += 1
        assert np.array_equal(model.predict(X), out)
        assert model.evaluate(X, y) == loss
        l_inf, g_inf = model.loss_and_gradients(X, y, training=False)
        assert l_inf == loss
    # inference: the plain network, with the hidden activations times p for classic scaling
    W0, b0, W1, b1 = weights
    hidden = np.tanh(X @ W0 + b0) * (p if scaling == "classic" else 1.0)
    np.testing.assert_allclose(out, hidden @ W1 + b1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(loss, np.mean((out - y) ** 2), rtol=1e-12)
    # inference-mode gradients go through the same scaled layer
    ref = reference_of(model)
    assert_gradients_close("inference grads", g_inf, ref.loss_and_gradients(X, y)[1], "float64")
    assert model.loss_and_gradients(X, y, training=True)[0] != loss  # training mode does drop


# ------------------------------------------------------------------------ errors
@pytest.mark.parametrize("kwargs,words", [
    (dict(keep_prob=0.8, rate=0.2), ["exactly one", "KEEPING", "DROPPING", "both"]),
    (dict(), ["exactly one", "KEEPING", "DROPPING", "neither"]),
    (dict(keep_prob=0.0), ["keep_prob", "KEEPING", "(0, 1]", "drop"]),
    (dict(keep_prob=1.5), ["keep_prob", "KEEPING", "(0, 1]"]),
    (dict(keep_prob=-0.2), ["keep_prob", "KEEPING"]),
    (dict(rate=1.0), ["rate", "DROPPING", "[0, 1)", "keep_prob = 1 - rate"]),
    (dict(rate=-0.1), ["rate", "DROPPING"]),
])
def test_dropout_argument_errors_explain_keep_versus_drop(kwargs, words):
    with pytest.raises(ValueError) as info:
        bp.Dropout(**kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_dropout_structure_and_option_errors():
    with pytest.raises(ValueError, match="scaling"):
        bp.Dropout(0.5, scaling="upscale")
    with pytest.raises(ValueError, match="mask"):
        bp.Dropout(0.5, mask="per_feature")
    with pytest.raises(ValueError, match="Dropout cannot be the output"):
        bp.Sequential([bp.Dense(3), bp.Dropout(0.5)], input_dim=2)
    with pytest.raises(ValueError, match="between two Dropout"):
        bp.Sequential([bp.Dropout(0.5), bp.Dropout(0.5), bp.Dense(1)], input_dim=2)
    model = make([bp.Dense(3), bp.Dropout(0.5), bp.Dense(1)])
    X, y = data(n=4, k=1)
    with pytest.raises(ValueError, match="masks"):
        model.loss_and_gradients(X, y, training=True, masks={0: np.ones((4, 3))})  # not a Dropout
    with pytest.raises(ValueError, match=r"masks\[1\]"):
        model.loss_and_gradients(X, y, training=True, masks={1: np.ones((4, 2))})  # wrong shape
    with pytest.raises(ValueError, match="0 \\(dropped\\) and 1 \\(kept\\)"):
        model.loss_and_gradients(X, y, training=True, masks={1: np.full((4, 3), 0.5)})
    with pytest.raises(TypeError, match="masks"):
        model.loss_and_gradients(X, y, training=True, masks=[np.ones((4, 3))])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mask", ["per_sample", "per_batch"])
def test_dropout_masks_of_any_rows_are_the_references_and_the_forward_passes(dtype, mask):
    """net.dropout_masks(rows): rows of the masks the coming step draws (distributed
    training's ranks each draw the rows they hold), bitwise the reference's and the
    core's own forward pass's, past one 512-draw chunk, at keep_prob 1 too; None for
    a dense layer without input dropout."""
    seed, step, B = 2 ** 62 + 7, 1234, 200
    layers = [bp.Dropout(keep_prob=0.7, mask=mask), bp.Dense(5, activation="relu"),
              bp.Dropout(keep_prob=0.4, mask=mask), bp.Dense(3, activation="tanh"),
              bp.Dropout(keep_prob=1.0, mask=mask), bp.Dense(2), bp.Dense(1)]
    m = bp.Sequential(layers, input_dim=INPUT_DIM, dtype=dtype, seed=seed)
    m.compile(loss="mse", optimizer="sgd")
    net = m._net
    net.step_counter = step
    fans = {0: INPUT_DIM, 1: 5, 2: 3}  # dense layer -> its input width
    positions = {0: 0, 1: 2, 2: 4}     # its Dropout's place in the layer list (the mask stream)
    rows = np.array([0, 3, 127, 128, 129, 199, 5, 5])
    got = net.dropout_masks(rows)
    assert len(got) == 4 and got[3] is None
    for d, fan in fans.items():
        keep = layers[positions[d]].keep_prob
        want = dropout_mask(seed, step, positions[d], (B, fan), keep, per_batch=mask == "per_batch", dtype=dtype)
        assert got[d].dtype == np.dtype(dtype) and got[d].shape == (rows.size, fan)
        np.testing.assert_array_equal(got[d], want[rows], err_msg=f"dense layer {d}")
    X = np.random.default_rng(0).normal(size=(B, INPUT_DIM)).astype(dtype)
    Y = np.zeros((B, 1), dtype=dtype)
    _, _, used = net.loss_and_gradients(X, Y, True)
    every = net.dropout_masks(np.arange(B))
    for k, d in enumerate(fans):
        np.testing.assert_array_equal(every[d], used[k], err_msg=f"dense layer {d}")
    assert [a.shape for a in net.dropout_masks(np.arange(0)) if a is not None] == [(0, 4), (0, 5), (0, 3)]
    with pytest.raises(ValueError, match="rows"):
        net.dropout_masks(np.array([-1]))
