"""The GEMM kernels (src/cpp/kernels): every ISA compiled in and supported by
this CPU against the naive kernel, over the edge shapes of its register tile
and cache blocks; bitwise invariance under the thread count; the dispatch and
its PYBACKPROP_ISA override.

The hook is the private ``_testing.gemm(op, A, B, C, isa)`` (C += op(A, B) in
place): ``isa="reference"`` is the naive kernel, an ISA name forces the blocked
driver with that ISA's microkernels (with ``small=True`` the unpacked
small-product path with that ISA's kernels), ``"auto"`` is what the layers call.
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Dict, List, Tuple

import numpy as np
import pytest

import pybackprop as bp
from pybackprop._core import _testing

ISAS: List[str] = list(_testing.kernel_isas())
OPS = ["nn", "tn", "nt"]
DTYPES = ["float32", "float64"]


def operands(op: str, m: int, n: int, k: int, dtype: str, seed: int = 0):
    """A, B, C for the logical product C[m,n] += A'[m,k] · B'[k,n] of ``op``."""
    r = np.random.default_rng(seed)
    if op == "nn":  # C[M,N] += A[M,K] · B[K,N]
        shapes = (m, k), (k, n)
    elif op == "tn":  # C[K,N] += A[M,K]ᵀ · B[M,N]: logical m = K, k = M
        shapes = (k, m), (k, n)
    else:  # C[M,K] += A[M,N] · B[K,N]ᵀ: logical n = K, k = N
        shapes = (m, k), (n, k)
    A = r.standard_normal(shapes[0]).astype(dtype)
    B = r.standard_normal(shapes[1]).astype(dtype)
    C = r.standard_normal((m, n)).astype(dtype)
    return A, B, C


def logical(op: str, A: np.ndarray, B: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    return (A.T if op == "tn" else A), (B.T if op == "nt" else B)


def gemm(op: str, A: np.ndarray, B: np.ndarray, C: np.ndarray, isa: str, small: bool = False) -> np.ndarray:
    out = C.copy()
    _testing.gemm(op, A, B, out, isa, small=small)
    return out


def assert_gemm_close(label: str, op: str, A, B, C, got, want) -> None:
    """|got - want| within a rounding bound per element, else report the worst.

    The bound, 8 · eps · (|C| + √k · √((A'²)·(B'²))), is a few times the
    random-walk rounding error of either summation order, and far below the
    O(1) error of a wrong, missing or repeated term.
    """
    a, b = logical(op, A.astype(np.float64), B.astype(np.float64))
    k = a.shape[1]
    eps = np.finfo(got.dtype).eps
    bound = 8 * eps * (np.abs(C) + np.sqrt(max(k, 1)) * np.sqrt((a * a) @ (b * b)))
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    bad = ~(err <= bound)
    if bad.any():
        idx = np.unravel_index(int(np.argmax(np.where(bad, err / bound, -1))), got.shape)
        raise AssertionError(
            f"{label}: {int(bad.sum())} of {got.size} elements off; worst at index "
            f"{tuple(int(i) for i in idx)}: got {got[idx]!r}, want {want[idx]!r}, "
            f"|diff| {err[idx]:.3e} > bound {bound[idx]:.3e}")


def tiles(isa: str, dtype: str) -> Dict[str, int]:
    return dict(_testing.kernel_tiles(isa)[dtype])


def edge_shapes(isa: str, dtype: str) -> List[Tuple[int, int, int]]:
    """(m, n, k): 1, MR±1, NR±1, odd k, and sizes past the cache blocks."""
    t = tiles(isa, dtype)
    mr, nr = t["mr"], t["nr"]
    ms = sorted({1, mr - 1, mr, mr + 1, 2 * mr + 1})
    ns = sorted({1, nr - 1, nr, nr + 1, 2 * nr + 3})
    shapes = [(m, n, k) for m in ms for n in ns for k in (1, 7, 33)]
    shapes += [
        (t["mc"] + mr + 1, 2 * nr + 1, t["kc"] + 3),  # two A' blocks, two KC slices
        (mr + 2, t["nc"] + nr - 1, 5),                # two B' panels
        (257, 301, 511),                              # a few hundred, odd everything
        (1000, 1003, 129),                            # thousands
        (64, 1000, 1001),
    ]
    return shapes


def test_isas_are_listed_and_the_active_one_is_reported():
    assert "generic" in ISAS, ISAS
    assert set(ISAS) <= set(_testing.kernel_isas_compiled())
    assert bp.build_info()["isa"] in ISAS
    if not os.environ.get("PYBACKPROP_ISA"):
        assert _testing.isa_note() == ""


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("isa", ISAS)
def test_isa_matches_naive_kernel_on_edge_shapes(isa, op, dtype):
    for m, n, k in edge_shapes(isa, dtype):
        A, B, C = operands(op, m, n, k, dtype, seed=m * 7919 + n * 31 + k)
        got = gemm(op, A, B, C, isa)
        want = gemm(op, A, B, C, "reference")
        assert_gemm_close(f"{isa} {op} {dtype} m={m} n={n} k={k}", op, A, B, C, got, want)


def small_edge_shapes() -> List[Tuple[int, int, int]]:
    """(m, n, k) for the unpacked path: every strip height (m = 1..13: 1-6 rows of
    AVX2, 1-4 of generic), column edges around one and two vectors of either
    dtype (1..33), k = 1 and odd, and the workloads' shapes."""
    shapes = [(m, n, k) for m in (1, 2, 3, 4, 5, 6, 7, 11, 13) for n in (1, 3, 4, 5, 8, 9, 15, 16, 17, 33)
              for k in (1, 7)]
    shapes += [(32, 64, 16), (32, 64, 64), (16, 64, 32), (64, 64, 32), (64, 10, 256), (256, 10, 64),
               (64, 256, 10), (37, 41, 43), (100, 70, 129)]
    # one and two rows take wider tiles (4 and 8 vectors): every column edge around them
    shapes += [(m, n, k) for m in (1, 2) for n in (31, 32, 63, 64, 65, 100, 129, 256) for k in (1, 9)]
    return shapes


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("isa", ISAS)
def test_small_path_matches_naive_kernel_on_edge_shapes(isa, op, dtype):
    """The unpacked small-product path of every ISA, forced at any size."""
    for m, n, k in small_edge_shapes():
        A, B, C = operands(op, m, n, k, dtype, seed=m * 7919 + n * 31 + k)
        got = gemm(op, A, B, C, isa, small=True)
        want = gemm(op, A, B, C, "reference")
        assert_gemm_close(f"{isa} small {op} {dtype} m={m} n={n} k={k}", op, A, B, C, got, want)


@pytest.mark.parametrize("isa", ISAS)
def test_small_path_elements_do_not_depend_on_their_tile(isa):
    """Each element is the same whatever strip height and column tile it lands in: a
    product equals, row for row and column for column, its slices done on their own."""
    for op in OPS:
        m, n, k = 23, 37, 29
        A, B, C = operands(op, m, n, k, "float32", seed=3)
        whole = gemm(op, A, B, C, isa, small=True)
        for r0, r1 in [(0, 1), (1, 8), (8, 23), (5, 11)]:
            for c0, c1 in [(0, 37), (3, 20), (17, 37)]:
                a = A[r0:r1] if op != "tn" else A[:, r0:r1]
                b = (B[:, c0:c1] if op != "nt" else B[c0:c1])
                part = gemm(op, np.ascontiguousarray(a), np.ascontiguousarray(b),
                            np.ascontiguousarray(C[r0:r1, c0:c1]), isa, small=True)
                np.testing.assert_array_equal(part, whole[r0:r1, c0:c1], err_msg=f"{op} rows {r0}:{r1} cols {c0}:{c1}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", OPS)
def test_auto_matches_naive_kernel(op, dtype):
    """What the layers call, on both sides of the direct-path threshold."""
    for m, n, k in [(1, 4, 3), (4, 1, 4), (16, 16, 16), (32, 64, 16), (32, 64, 64), (64, 10, 256),
                    (40, 50, 60), (100, 64, 784), (257, 129, 64)]:
        A, B, C = operands(op, m, n, k, dtype)
        assert_gemm_close(f"auto {op} {dtype} m={m} n={n} k={k}", op, A, B, C,
                          gemm(op, A, B, C, "auto"), gemm(op, A, B, C, "reference"))


@pytest.mark.parametrize("op", OPS)
def test_tiny_products_take_the_direct_path(op):
    """The textbook network's products (3/4/1 units, batch 1) are the naive loops, bit for bit."""
    for m, n, k in [(1, 4, 3), (1, 4, 4), (1, 1, 4), (4, 3, 1), (4, 4, 1), (1, 3, 4), (1, 4, 4)]:
        A, B, C = operands(op, m, n, k, "float32")
        np.testing.assert_array_equal(gemm(op, A, B, C, "auto"), gemm(op, A, B, C, "reference"))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS + ["auto"])
def test_bitwise_identical_for_any_thread_count(isa, dtype, restore_num_threads):
    shapes = [(300, 700, 257), (900, 70, 300), (256, 2048, 1024)]  # split n, split m, `wide`
    for op in OPS:
        for m, n, k in shapes:
            A, B, C = operands(op, m, n, k, dtype)
            results = {}
            for t in (1, 2, 3):
                bp.set_num_threads(t)
                results[t] = gemm(op, A, B, C, isa)
            for t in (2, 3):
                if not np.array_equal(results[t], results[1]):
                    diff = np.argwhere(results[t] != results[1])[0]
                    i = tuple(int(x) for x in diff)
                    raise AssertionError(
                        f"{isa} {op} {dtype} m={m} n={n} k={k}: {t} threads differ from 1 at "
                        f"{i}: {results[t][i]!r} != {results[1][i]!r}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
def test_small_path_bitwise_identical_for_any_thread_count(isa, dtype, restore_num_threads):
    """The unpacked path split over threads (by rows) at sizes where threads_for gives
    more than one: bitwise the 1-thread result."""
    for op in OPS:
        for m, n, k in [(300, 200, 100), (61, 300, 257)]:
            A, B, C = operands(op, m, n, k, dtype)
            results = {}
            for t in (1, 2, 3):
                bp.set_num_threads(t)
                results[t] = gemm(op, A, B, C, isa, small=True)
            for t in (2, 3):
                np.testing.assert_array_equal(results[t], results[1], err_msg=f"{isa} small {op} {dtype} {t} threads")


@pytest.mark.parametrize("isa", ISAS)
def test_isas_agree_with_each_other(isa):
    for op in OPS:
        A, B, C = operands(op, 123, 77, 301, "float64")
        assert_gemm_close(f"{isa} vs generic {op}", op, A, B, C,
                          gemm(op, A, B, C, isa), gemm(op, A, B, C, "generic"))


def test_hook_rejects_bad_arguments():
    A = np.zeros((3, 4), np.float32)
    B = np.zeros((4, 5), np.float32)
    C = np.zeros((3, 5), np.float32)
    with pytest.raises(ValueError, match="op must be"):
        _testing.gemm("tt", A, B, C, "auto")
    with pytest.raises(ValueError, match="isa must be"):
        _testing.gemm("nn", A, B, C, "sse9")
    with pytest.raises(ValueError, match="small=True needs an ISA"):
        _testing.gemm("nn", A, B, C, "auto", small=True)
    with pytest.raises(ValueError, match=r"C has shape \(3, 5\), expected \(4, 5\)"):
        _testing.gemm("tn", A, np.zeros((3, 5), np.float32), C, "auto")
    with pytest.raises(ValueError, match="share one dtype"):
        _testing.gemm("nn", A.astype(np.float64), B, C, "auto")
    with pytest.raises(ValueError, match="C-contiguous"):
        _testing.gemm("nn", A, B, np.zeros((5, 3), np.float32).T, "auto")


def run_with_isa(value: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYBACKPROP_ISA=value)
    code = ("import pybackprop as bp; from pybackprop._core import _testing; "
            "print(bp.build_info()['isa']); print(_testing.isa_note())")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("isa", ISAS)
def test_env_override_selects_each_supported_isa(isa):
    out = run_with_isa(isa)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == isa, out.stdout
    assert out.stderr == "", out.stderr


@pytest.mark.parametrize("value", ["sse9", "AVX2", "avx512"])
def test_env_override_falls_back_visibly(value):
    if value in ISAS:
        pytest.skip(f"{value} is supported here")
    out = run_with_isa(value)
    assert out.returncode == 0, out.stderr
    isa, note = out.stdout.splitlines()[:2]
    default = run_with_isa("").stdout.splitlines()[0]
    assert isa == default, (isa, default)  # the best available
    assert f"PYBACKPROP_ISA={value}" in note and f"using {isa}" in note, note
    assert f"PYBACKPROP_ISA={value}" in out.stderr, out.stderr


@pytest.mark.parametrize("isa", ISAS)
def test_tanh_kernel_of_each_isa(isa):
    """The float32 tanh of every table: within the documented 3.4e-7 of float64 tanh, over
    the clamp and beyond (±inf, ±0), never beyond ±1, odd, and the same for lengths 0..33 (the
    vector body and every tail). FMAs may round the polynomials differently from the generic
    loop (by up to a few ulp), so the ISAs are compared with tanh, not with each other."""
    z = np.concatenate([np.linspace(-12, 12, 4001), [0.0, -0.0, 1e-8, -1e-8, 1e-30, np.inf, -np.inf]])
    z = z.astype(np.float32)
    got = _testing.tanh_f32(z, isa)
    np.testing.assert_allclose(got, np.tanh(z.astype(np.float64)), rtol=3.4e-7, atol=1e-30)
    assert np.all(np.abs(got) <= 1) and np.array_equal(_testing.tanh_f32(-z, isa), -got)
    nan = np.full(11, np.nan, dtype=np.float32)  # a NaN stays NaN (not clamped to +-1), body and tail
    assert np.isnan(_testing.tanh_f32(nan, isa)).all()
    for n in range(34):
        part = z[1000:1000 + n]
        np.testing.assert_array_equal(_testing.tanh_f32(part, isa), got[1000:1000 + n], err_msg=f"length {n}")
    with pytest.raises(ValueError, match="unknown or unsupported isa"):
        _testing.tanh_f32(z, "sse9")


@pytest.mark.parametrize("isa", ISAS)
def test_sigmoid_kernel_of_each_isa(isa):
    """The float32 sigmoid of every table: within 4e-7 relative of float64 sigmoid wherever
    that is a normal float (both tails, |z| up to 100, ±0, tiny z), exactly 0 and 1 at -inf and
    +inf, 0 below -87.34 (where the true value is subnormal), sigmoid(-z) = 1 - sigmoid(z) to
    rounding, NaN kept, and the same for lengths 0..33 (vector body and every tail)."""
    z = np.concatenate([np.linspace(-100, 100, 20001), np.linspace(-1e-3, 1e-3, 201),
                        [0.0, -0.0, 1e-30, -1e-30, -87.3, 87.3]]).astype(np.float32)
    z64 = z.astype(np.float64)
    true = np.exp(-np.logaddexp(0.0, -z64))  # float64 sigmoid, stable in both tails
    got = _testing.sigmoid_f32(z, isa)
    normal = true >= np.finfo(np.float32).tiny
    np.testing.assert_allclose(got[normal], true[normal], rtol=4e-7, atol=0)
    np.testing.assert_allclose(got + _testing.sigmoid_f32(-z, isa), 1.0, rtol=0, atol=1.2e-7)
    edges = np.array([-np.inf, np.inf, -87.34, -90.0, -1e4, 1e4, 0.0], dtype=np.float32)
    np.testing.assert_array_equal(_testing.sigmoid_f32(edges, isa), [0, 1, 0, 0, 0, 1, 0.5])
    assert np.isnan(_testing.sigmoid_f32(np.full(11, np.nan, dtype=np.float32), isa)).all()
    for n in range(34):
        part = z[9000:9000 + n]
        np.testing.assert_array_equal(_testing.sigmoid_f32(part, isa), got[9000:9000 + n], err_msg=f"length {n}")
    with pytest.raises(ValueError, match="unknown or unsupported isa"):
        _testing.sigmoid_f32(z, "sse9")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("isa", ISAS)
def test_sum_squares_kernel_of_each_isa(isa, dtype):
    """The arena sum of squares of every table, for lengths 0..40 and 5000 (vector body and
    every tail): within float64 rounding of the exact sum, and a NaN or inf in any position
    (in the vector body or the tail) shows. For float32 every table gives the generic sum bit
    for bit (a float's square is exact in double, so an FMA rounds like the multiply and add)."""
    x = np.random.default_rng(3).normal(size=5000).astype(dtype) * np.float32(3)
    for n in list(range(41)) + [5000]:
        part = x[:n]
        got = _testing.sum_squares(part, isa)
        exact = float(np.sum(part.astype(np.float64) ** 2))
        assert got == pytest.approx(exact, rel=1e-13, abs=0), n
        if dtype == np.float32:
            assert got == _testing.sum_squares(part, "generic"), n
    for bad in (np.nan, np.inf):
        for n, pos in [(39, 0), (39, 7), (39, 8), (39, 9), (39, 38), (5000, 3000), (5000, 4999)]:
            part = x[:n].copy()
            part[pos] = bad
            got = _testing.sum_squares(part, isa)
            assert np.isnan(got) if np.isnan(bad) else got == np.inf, (bad, n, pos)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("isa", ISAS)
def test_transpose_kernel_of_each_isa_copies_exactly(isa, dtype):
    """The small-product path's row-major copy of a strided B: the transpose of a
    row-major matrix (unit row stride: AVX2's 8 × 8 blocks and every edge), a plain
    matrix and a strided slice, each copied exactly (signed zeros and NaNs too)."""
    rng = np.random.default_rng(5)
    for rows, cols in [(1, 1), (1, 9), (7, 8), (8, 8), (9, 17), (16, 24), (64, 64), (33, 70), (64, 1)]:
        M = rng.normal(size=(rows, cols)).astype(dtype)
        M.flat[::5] = -0.0
        M.flat[3::11] = np.nan
        for view in (M.T, M, M[::2, 1:], M.T[::3]):
            got = _testing.transpose(view, isa)
            assert got.flags.c_contiguous and got.shape == view.shape
            np.testing.assert_array_equal(got, view)
            assert np.array_equal(np.signbit(got), np.signbit(view)), (rows, cols)
    with pytest.raises(ValueError, match="2-D"):
        _testing.transpose(np.zeros(3, dtype=dtype), isa)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
@pytest.mark.parametrize("isa", ISAS)
def test_sgd_kernel_of_each_isa_is_the_formula_bitwise(isa, momentum, nesterov, dtype):
    """The arena SGD update of every table is torch's SGD written out in the parameters' dtype,
    bitwise (no FMA), for lengths 0..20 and 1001 (vector body and every masked tail)."""
    rng = np.random.default_rng(4)
    lr, wd, mu = dtype(0.05), dtype(0.01), dtype(momentum)
    for n in list(range(21)) + [1001]:
        p, g, buf = (rng.normal(size=n).astype(dtype) for _ in range(3))
        pk, bk = p.copy(), buf.copy()
        _testing.sgd(pk, g, bk, 0.05, momentum, nesterov, 0.01, isa)
        d = g + wd * p
        if momentum == 0:
            want_p, want_buf = p - lr * d, buf
        else:
            want_buf = mu * buf + d
            want_p = p - lr * ((d + mu * want_buf) if nesterov else want_buf)
        np.testing.assert_array_equal(pk, want_p, err_msg=f"n={n}")
        np.testing.assert_array_equal(bk, want_buf, err_msg=f"n={n}")
    with pytest.raises(ValueError, match="one dtype and size"):
        _testing.sgd(np.zeros(3, dtype), np.zeros(4, dtype), np.zeros(3, dtype), 0.1, 0.0, False, 0.0, isa)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("isa,small", [("auto", False)] + [(isa, small) for isa in ISAS for small in (False, True)])
@pytest.mark.parametrize("op", ["nn", "nt"])
@pytest.mark.parametrize("shape", [(3, 5, 7), (33, 17, 65), (200, 300, 70), (7, 600, 500)])
def test_epilogue_runs_once_on_every_final_element(shape, op, isa, small, threads, restore_num_threads):
    """The epilogue (here c -> 2c + 1) runs exactly once on each element of C, after its
    whole sum: bitwise the product followed by the same map, for the direct path, each
    ISA's blocked driver and unpacked small-product path, and 1 or 2 threads (blocks cut
    at the MC/NC edges, or every 24 rows)."""
    bp.set_num_threads(threads)
    m, n, k = shape
    rng = np.random.default_rng(5)
    # nn: C[m,n] += A[m,k] · B[k,n];  nt: C[m,k] += A[m,n] · B[k,n]ᵀ
    A = rng.normal(size=(m, k) if op == "nn" else (m, n)).astype(np.float32)
    B = rng.normal(size=(k, n)).astype(np.float32)
    C0 = rng.normal(size=(m, n) if op == "nn" else (m, k)).astype(np.float32)
    plain, fused = C0.copy(), C0.copy()
    _testing.gemm(op, A, B, plain, isa, small=small)
    _testing.gemm(op, A, B, fused, isa, epilogue=True, small=small)
    np.testing.assert_array_equal(fused, np.float32(2) * plain + np.float32(1))
