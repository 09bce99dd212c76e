// AVX2 + FMA microkernels (this file alone is compiled with -mavx2 -mfma; like
// the whole core with -ffp-contract=off, so an FMA here is always an explicit one).
// Contract: kernels/gemm.hpp. The tile is MR rows × NR columns of C held in
// 12 ymm accumulators; per step p, the NR values of the B micro-panel are two
// aligned loads and each of the MR values of A is one broadcast feeding two
// FMAs: 12 FMAs to 8 loads, which keeps both FMA ports busy.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/microkernels/ukernels.hpp"

namespace bp::ukr {

void avx2_f32(std::ptrdiff_t kc, const float* a, const float* b, float* c, std::ptrdiff_t ldc) {
    static_assert(kAvx2MrF32 == 6 && kAvx2NrF32 == 16, "the code below is a 6x16 tile");
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int i = 0; i < 6; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
#pragma GCC unroll 4
    for (std::ptrdiff_t p = 0; p < kc; ++p) {
        _mm_prefetch(reinterpret_cast<const char*>(a + 6 * 8), _MM_HINT_T0);
        const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        __m256 ai;
        ai = _mm256_broadcast_ss(a + 0);
        c00 = _mm256_fmadd_ps(ai, b0, c00); c01 = _mm256_fmadd_ps(ai, b1, c01);
        ai = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(ai, b0, c10); c11 = _mm256_fmadd_ps(ai, b1, c11);
        ai = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(ai, b0, c20); c21 = _mm256_fmadd_ps(ai, b1, c21);
        ai = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(ai, b0, c30); c31 = _mm256_fmadd_ps(ai, b1, c31);
        ai = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(ai, b0, c40); c41 = _mm256_fmadd_ps(ai, b1, c41);
        ai = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(ai, b0, c50); c51 = _mm256_fmadd_ps(ai, b1, c51);
        a += 6;
        b += 16;
    }
    auto add_row = [ldc, c](int i, __m256 lo, __m256 hi) {
        float* r = c + i * ldc;
        _mm256_storeu_ps(r, _mm256_add_ps(_mm256_loadu_ps(r), lo));
        _mm256_storeu_ps(r + 8, _mm256_add_ps(_mm256_loadu_ps(r + 8), hi));
    };
    add_row(0, c00, c01);
    add_row(1, c10, c11);
    add_row(2, c20, c21);
    add_row(3, c30, c31);
    add_row(4, c40, c41);
    add_row(5, c50, c51);
}

void avx2_f64(std::ptrdiff_t kc, const double* a, const double* b, double* c, std::ptrdiff_t ldc) {
    static_assert(kAvx2MrF64 == 6 && kAvx2NrF64 == 8, "the code below is a 6x8 tile");
    __m256d c00 = _mm256_setzero_pd(), c01 = _mm256_setzero_pd();
    __m256d c10 = _mm256_setzero_pd(), c11 = _mm256_setzero_pd();
    __m256d c20 = _mm256_setzero_pd(), c21 = _mm256_setzero_pd();
    __m256d c30 = _mm256_setzero_pd(), c31 = _mm256_setzero_pd();
    __m256d c40 = _mm256_setzero_pd(), c41 = _mm256_setzero_pd();
    __m256d c50 = _mm256_setzero_pd(), c51 = _mm256_setzero_pd();
    for (int i = 0; i < 6; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
#pragma GCC unroll 4
    for (std::ptrdiff_t p = 0; p < kc; ++p) {
        _mm_prefetch(reinterpret_cast<const char*>(a + 6 * 8), _MM_HINT_T0);
        const __m256d b0 = _mm256_load_pd(b), b1 = _mm256_load_pd(b + 4);
        __m256d ai;
        ai = _mm256_broadcast_sd(a + 0);
        c00 = _mm256_fmadd_pd(ai, b0, c00); c01 = _mm256_fmadd_pd(ai, b1, c01);
        ai = _mm256_broadcast_sd(a + 1);
        c10 = _mm256_fmadd_pd(ai, b0, c10); c11 = _mm256_fmadd_pd(ai, b1, c11);
        ai = _mm256_broadcast_sd(a + 2);
        c20 = _mm256_fmadd_pd(ai, b0, c20); c21 = _mm256_fmadd_pd(ai, b1, c21);
        ai = _mm256_broadcast_sd(a + 3);
        c30 = _mm256_fmadd_pd(ai, b0, c30); c31 = _mm256_fmadd_pd(ai, b1, c31);
        ai = _mm256_broadcast_sd(a + 4);
        c40 = _mm256_fmadd_pd(ai, b0, c40); c41 = _mm256_fmadd_pd(ai, b1, c41);
        ai = _mm256_broadcast_sd(a + 5);
        c50 = _mm256_fmadd_pd(ai, b0, c50); c51 = _mm256_fmadd_pd(ai, b1, c51);
        a += 6;
        b += 8;
    }
    auto add_row = [ldc, c](int i, __m256d lo, __m256d hi) {
        double* r = c + i * ldc;
        _mm256_storeu_pd(r, _mm256_add_pd(_mm256_loadu_pd(r), lo));
        _mm256_storeu_pd(r + 4, _mm256_add_pd(_mm256_loadu_pd(r + 4), hi));
    };
    add_row(0, c00, c01);
    add_row(1, c10, c11);
    add_row(2, c20, c21);
    add_row(3, c30, c31);
    add_row(4, c40, c41);
    add_row(5, c50, c51);
}

// ------------------------------------------------------------ small products
// (ukernels.hpp: SmallFn). A tile is R rows × V vectors of C; with MASK the
// last vector is cut by the right edge of C and its loads and stores of B and
// C are masked (lanes past the edge are neither read nor written), so the
// lanes inside get exactly the arithmetic of a full tile.
namespace {

struct F32 {
    using T = float;
    using V = __m256;
    static constexpr int L = 8;
    static V zero() { return _mm256_setzero_ps(); }
    static V load(const T* p) { return _mm256_loadu_ps(p); }
    static V mload(const T* p, __m256i m) { return _mm256_maskload_ps(p, m); }
    static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
    static void mstore(T* p, __m256i m, V v) { _mm256_maskstore_ps(p, m, v); }
    static V bcast(const T* p) { return _mm256_broadcast_ss(p); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static V add(V a, V b) { return _mm256_add_ps(a, b); }
    static V set1(T x) { return _mm256_set1_ps(x); }
    static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
    static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
    static __m256i mask(std::ptrdiff_t lanes) {  // the first `lanes` of 8
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(lanes)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
};

struct F64 {
    using T = double;
    using V = __m256d;
    static constexpr int L = 4;
    static V zero() { return _mm256_setzero_pd(); }
    static V load(const T* p) { return _mm256_loadu_pd(p); }
    static V mload(const T* p, __m256i m) { return _mm256_maskload_pd(p, m); }
    static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
    static void mstore(T* p, __m256i m, V v) { _mm256_maskstore_pd(p, m, v); }
    static V bcast(const T* p) { return _mm256_broadcast_sd(p); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
    static V add(V a, V b) { return _mm256_add_pd(a, b); }
    static V set1(T x) { return _mm256_set1_pd(x); }
    static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
    static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
    static __m256i mask(std::ptrdiff_t lanes) {  // the first `lanes` of 4
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(lanes), _mm256_setr_epi64x(0, 1, 2, 3));
    }
};

template <class S, int R, int V, bool MASK>
void small_tile(std::ptrdiff_t k, const typename S::T* a, std::ptrdiff_t rsa, std::ptrdiff_t csa,
                const typename S::T* b, std::ptrdiff_t ldb, typename S::T* c, std::ptrdiff_t ldc,
                __m256i mask) {
    typename S::V acc[R][V];
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) acc[i][v] = S::zero();
#pragma GCC unroll 2
    for (std::ptrdiff_t p = 0; p < k; ++p) {
        typename S::V bv[V];
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) bv[v] = (MASK && v == V - 1) ? S::mload(b + v * S::L, mask) : S::load(b + v * S::L);
#pragma GCC unroll 6
        for (int i = 0; i < R; ++i) {
            const typename S::V ai = S::bcast(a + i * rsa);
#pragma GCC unroll 2
            for (int v = 0; v < V; ++v) acc[i][v] = S::fma(ai, bv[v], acc[i][v]);
        }
        a += csa;
        b += ldb;
    }
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) {
            typename S::T* r = c + i * ldc + v * S::L;
            if (MASK && v == V - 1) S::mstore(r, mask, S::add(S::mload(r, mask), acc[i][v]));
            else S::store(r, S::add(S::load(r), acc[i][v]));
        }
}

// One strip of R rows across all n columns, in tiles of 2 vectors.
template <class S, int R>
void small_strip(std::ptrdiff_t n, std::ptrdiff_t k, const typename S::T* a, std::ptrdiff_t rsa,
                 std::ptrdiff_t csa, const typename S::T* b, std::ptrdiff_t ldb, typename S::T* c,
                 std::ptrdiff_t ldc) {
    constexpr int L = S::L;
    const __m256i none = _mm256_setzero_si256();
    std::ptrdiff_t j = 0;
    for (; j + 2 * L <= n; j += 2 * L) small_tile<S, R, 2, false>(k, a, rsa, csa, b + j, ldb, c + j, ldc, none);
    const std::ptrdiff_t rest = n - j;
    if (rest > L) small_tile<S, R, 2, true>(k, a, rsa, csa, b + j, ldb, c + j, ldc, S::mask(rest - L));
    else if (rest == L) small_tile<S, R, 1, false>(k, a, rsa, csa, b + j, ldb, c + j, ldc, none);
    else if (rest > 0) small_tile<S, R, 1, true>(k, a, rsa, csa, b + j, ldb, c + j, ldc, S::mask(rest));
}

// m cut into ceil(m/6) strips of nearly equal height (32 rows: 6,6,5,5,5,5),
// so no strip is so short that its few accumulators wait on the FMA latency.
template <class S>
void small_gemm(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const typename S::T* A,
                std::ptrdiff_t rsa, std::ptrdiff_t csa, const typename S::T* B, std::ptrdiff_t ldb,
                typename S::T* C, std::ptrdiff_t ldc) {
    constexpr std::ptrdiff_t MR = 6;
    const std::ptrdiff_t strips = (m + MR - 1) / MR;
    for (std::ptrdiff_t s = 0, i = 0; s < strips; ++s) {
        const std::ptrdiff_t rows = m * (s + 1) / strips - m * s / strips;
        const typename S::T* a = A + i * rsa;
        typename S::T* c = C + i * ldc;
        switch (rows) {
            case 6: small_strip<S, 6>(n, k, a, rsa, csa, B, ldb, c, ldc); break;
            case 5: small_strip<S, 5>(n, k, a, rsa, csa, B, ldb, c, ldc); break;
            case 4: small_strip<S, 4>(n, k, a, rsa, csa, B, ldb, c, ldc); break;
            case 3: small_strip<S, 3>(n, k, a, rsa, csa, B, ldb, c, ldc); break;
            case 2: small_strip<S, 2>(n, k, a, rsa, csa, B, ldb, c, ldc); break;
            default: small_strip<S, 1>(n, k, a, rsa, csa, B, ldb, c, ldc); break;
        }
        i += rows;
    }
}

}  // namespace

void avx2_small_f32(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const float* A, std::ptrdiff_t rsa,
                    std::ptrdiff_t csa, const float* B, std::ptrdiff_t ldb, float* C, std::ptrdiff_t ldc) {
    small_gemm<F32>(m, n, k, A, rsa, csa, B, ldb, C, ldc);
}
void avx2_small_f64(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const double* A, std::ptrdiff_t rsa,
                    std::ptrdiff_t csa, const double* B, std::ptrdiff_t ldb, double* C, std::ptrdiff_t ldc) {
    small_gemm<F64>(m, n, k, A, rsa, csa, B, ldb, C, ldc);
}

namespace {
// fast_tanhf (activations.hpp) on 8 lanes: the clamp is min/max, the two
// polynomials in x² are Horner chains of FMAs, one division at the end.
inline __m256 tanh8(__m256 x) {
    const __m256 clamp = _mm256_set1_ps(7.90531110763549805f);
    // min/max return their second operand when one is NaN: x second, so a NaN stays NaN
    x = _mm256_min_ps(clamp, _mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), clamp), x));
    const __m256 x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(-2.76076847742355e-16f);
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.00018790482477e-13f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-8.60467152213735e-11f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(5.12229709037114e-08f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(1.48572235717979e-05f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(6.37261928875436e-04f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(4.89352455891786e-03f));
    __m256 q = _mm256_set1_ps(1.19825839466702e-06f);
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(1.18534705686654e-04f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(2.26843463243900e-03f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(4.89352518554385e-03f));
    return _mm256_div_ps(_mm256_mul_ps(x, p), q);
}

// fast_exp_nonpositive (activations.hpp) on 8 lanes, x <= 0.
inline __m256 exp_nonpositive8(__m256 x) {
    const __m256 lowest = _mm256_set1_ps(-87.3365447505531f);
    const __m256 round = _mm256_set1_ps(12582912.0f);  // 1.5·2^23
    const __m256 below = _mm256_cmp_ps(x, lowest, _CMP_LT_OQ);
    x = _mm256_max_ps(lowest, x);  // x second: a NaN stays NaN
    const __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), round);
    const __m256 n = _mm256_sub_ps(t, round);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    const __m256i n_bits = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(0x4B400000));
    const __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n_bits, _mm256_set1_epi32(127)), 23));
    return _mm256_andnot_ps(below, _mm256_mul_ps(p, scale));
}

// fast_sigmoidf: e = exp(-|z|), then (z < 0 ? e : 1) / (1 + e).
inline __m256 sigmoid8(__m256 z) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 e = exp_nonpositive8(_mm256_or_ps(z, sign));  // -|z|
    const __m256 negative = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);
    return _mm256_div_ps(_mm256_blendv_ps(one, e, negative), _mm256_add_ps(one, e));
}

// a[i] = f8(z[i]) over n values; the last 1..7 by a masked load and store (the
// other lanes read as 0 and are not written), so every value gets the same
// arithmetic and a short array costs one vector pass.
template <__m256 (*f8)(__m256)>
void elementwise8(float* a, const float* z, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(a + i, f8(_mm256_loadu_ps(z + i)));
    if (i < n) {
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n - i)), lane);
        _mm256_maskstore_ps(a + i, mask, f8(_mm256_maskload_ps(z + i, mask)));
    }
}
}  // namespace

// ------------------------------------------------------------ arena passes
// (ukernels.hpp: SumSquaresFn, SgdFn)
namespace {

// Σ x² in double: value i into lane i mod 8 of two 4-double accumulators (the
// eight partial sums of sum_squares_portable), combined in its order, the last
// n mod 8 added in order. The square of a float is exact in double, so for
// float32 the FMA rounds as the generic multiply-then-add: the two tables agree
// bitwise; float64 squares round, and may differ.

// Eight values from x, squared into lo (the first four) and hi.
inline void add_squares8(const float* x, __m256d& lo, __m256d& hi) {
    const __m256 v = _mm256_loadu_ps(x);
    const __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), b = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    lo = _mm256_fmadd_pd(a, a, lo);
    hi = _mm256_fmadd_pd(b, b, hi);
}
inline void add_squares8(const double* x, __m256d& lo, __m256d& hi) {
    const __m256d a = _mm256_loadu_pd(x), b = _mm256_loadu_pd(x + 4);
    lo = _mm256_fmadd_pd(a, a, lo);
    hi = _mm256_fmadd_pd(b, b, hi);
}

template <typename T>
double sum_squares(const T* x, std::size_t n) {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    const std::size_t full = n / 8 * 8;
    for (std::size_t i = 0; i < full; i += 8) add_squares8(x + i, lo, hi);
    alignas(32) double acc[8];
    _mm256_store_pd(acc, lo);
    _mm256_store_pd(acc + 4, hi);
    double s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (std::size_t i = full; i < n; ++i) s += double(x[i]) * double(x[i]);
    return s;
}

// sgd_update (optimizers/sgd.hpp) on vectors, the last n mod L values by masked
// loads and stores. Multiplies and adds as written, no FMA (the core is built
// with -ffp-contract=off), so the update is bitwise the generic one's, i.e.
// exactly p - lr·g in the parameters' type:
//   g = grad + wd·p;  buf = μ·buf + g;  p -= lr·(nesterov ? g + μ·buf : buf)   (μ = 0: p -= lr·g)
template <class S>
void sgd(typename S::T* p, const typename S::T* grad, typename S::T* buf, std::size_t n, double lr_,
         double momentum, bool nesterov, double weight_decay) {
    using T = typename S::T;
    using V = typename S::V;
    const V lr = S::set1(T(lr_)), mu = S::set1(T(momentum)), wd = S::set1(T(weight_decay));
    const int mode = momentum == 0.0 ? 0 : (nesterov ? 2 : 1);
    auto block = [&](std::size_t i, auto load, auto store) {
        const V pv = load(p + i), g = S::add(load(grad + i), S::mul(wd, pv));
        if (mode == 0) return store(p + i, S::sub(pv, S::mul(lr, g)));
        const V b = S::add(S::mul(mu, load(buf + i)), g);
        store(buf + i, b);
        store(p + i, S::sub(pv, S::mul(lr, mode == 2 ? S::add(g, S::mul(mu, b)) : b)));
    };
    std::size_t i = 0;
    for (; i + S::L <= n; i += S::L) block(i, S::load, S::store);
    if (i < n) {
        const __m256i m = S::mask(std::ptrdiff_t(n - i));
        block(i, [m](const T* q) { return S::mload(q, m); }, [m](T* q, V v) { S::mstore(q, m, v); });
    }
}
}  // namespace

double avx2_sum_squares_f32(const float* x, std::size_t n) { return sum_squares(x, n); }
double avx2_sum_squares_f64(const double* x, std::size_t n) { return sum_squares(x, n); }
void avx2_sgd_f32(float* p, const float* grad, float* buf, std::size_t n, double lr, double momentum,
                  bool nesterov, double weight_decay) {
    sgd<F32>(p, grad, buf, n, lr, momentum, nesterov, weight_decay);
}
void avx2_sgd_f64(double* p, const double* grad, double* buf, std::size_t n, double lr, double momentum,
                  bool nesterov, double weight_decay) {
    sgd<F64>(p, grad, buf, n, lr, momentum, nesterov, weight_decay);
}

void avx2_tanh_f32(float* a, const float* z, std::size_t n) { elementwise8<tanh8>(a, z, n); }
void avx2_sigmoid_f32(float* a, const float* z, std::size_t n) { elementwise8<sigmoid8>(a, z, n); }

}  // namespace bp::ukr
