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
    // The polynomial by Estrin's scheme: pairs of terms side by side, then r² and r⁴,
    // 3 dependent FMAs where Horner's rule takes 5 (within the same 1 ulp).
    const __m256 r2 = _mm256_mul_ps(r, r), r4 = _mm256_mul_ps(r2, r2);
    const __m256 p01 = _mm256_fmadd_ps(_mm256_set1_ps(1.6666665459e-1f), r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 p23 = _mm256_fmadd_ps(_mm256_set1_ps(8.3334519073e-3f), r, _mm256_set1_ps(4.1665795894e-2f));
    const __m256 p45 = _mm256_fmadd_ps(_mm256_set1_ps(1.9875691500e-4f), r, _mm256_set1_ps(1.3981999507e-3f));
    __m256 p = _mm256_fmadd_ps(p45, r4, _mm256_fmadd_ps(p23, r2, p01));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0f));
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
inline void add_squares8(__m256 v, __m256d& lo, __m256d& hi) {
    const __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), b = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    lo = _mm256_fmadd_pd(a, a, lo);
    hi = _mm256_fmadd_pd(b, b, hi);
}
inline void add_squares8(const float* x, __m256d& lo, __m256d& hi) { add_squares8(_mm256_loadu_ps(x), lo, hi); }
inline void add_squares8(const double* x, __m256d& lo, __m256d& hi) {
    const __m256d a = _mm256_loadu_pd(x), b = _mm256_loadu_pd(x + 4);
    lo = _mm256_fmadd_pd(a, a, lo);
    hi = _mm256_fmadd_pd(b, b, hi);
}

// The eight partial sums (lanes of lo, then hi) combined pairwise:
// ((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7)).
inline double combine8(__m256d lo, __m256d hi) {
    const __m256d pairs = _mm256_add_pd(lo, hi);
    const __m128d halves = _mm_hadd_pd(_mm256_castpd256_pd128(pairs), _mm256_extractf128_pd(pairs, 1));
    return _mm_cvtsd_f64(halves) + _mm_cvtsd_f64(_mm_unpackhi_pd(halves, halves));
}

template <typename T>
double sum_squares(const T* x, std::size_t n) {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    const std::size_t full = n / 8 * 8;
    for (std::size_t i = 0; i < full; i += 8) add_squares8(x + i, lo, hi);
    double s = combine8(lo, hi);
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

// ------------------------------------------------------------ transposes
namespace {

// out[j] = lane j of each of the 8 rows: out[j][k] = row[k][j] (24 shuffles).
void transpose8(__m256 out[8], const __m256 row[8]) {
    __m256 t[8], u[8];
    for (int k = 0; k < 8; k += 2) {  // interleave pairs of rows
        t[k] = _mm256_unpacklo_ps(row[k], row[k + 1]);
        t[k + 1] = _mm256_unpackhi_ps(row[k], row[k + 1]);
    }
    for (int k = 0; k < 8; k += 4) {  // then pairs of pairs
        u[k] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int j = 0; j < 4; ++j) {  // then the 128-bit halves
        out[j] = _mm256_permute2f128_ps(u[j], u[j + 4], 0x20);
        out[j + 4] = _mm256_permute2f128_ps(u[j], u[j + 4], 0x31);
    }
}

}  // namespace

// (ukernels.hpp: TransposeFn) With rs = 1 each source column j is contiguous in p:
// 8 of them are loaded, transposed in registers and stored as 8 destination rows.
void avx2_transpose_f32(const float* src, std::ptrdiff_t rs, std::ptrdiff_t cs, float* dst, std::ptrdiff_t k,
                        std::ptrdiff_t n) {
    std::ptrdiff_t jf = 0, pf = 0;  // the full 8 × 8 blocks cover j < jf, p < pf
    if (rs == 1) {
        jf = n / 8 * 8;
        pf = k / 8 * 8;
        for (std::ptrdiff_t j0 = 0; j0 < jf; j0 += 8)
            for (std::ptrdiff_t p0 = 0; p0 < pf; p0 += 8) {
                __m256 col[8], row[8];
                for (int j = 0; j < 8; ++j) col[j] = _mm256_loadu_ps(src + (j0 + j) * cs + p0);
                transpose8(row, col);
                for (int p = 0; p < 8; ++p) _mm256_storeu_ps(dst + (p0 + p) * n + j0, row[p]);
            }
    }
    for (std::ptrdiff_t p = 0; p < k; ++p)  // the rest: columns past jf in every row, rows past pf
        for (std::ptrdiff_t j = p < pf ? jf : 0; j < n; ++j) dst[p * n + j] = src[p * rs + j * cs];
}

// ------------------------------------------------------------ tiny networks
// (ukernels.hpp: TinyStepFn) The forward and backward pass of one row through a
// network of layers at most 8 wide, each layer's row in one ymm register from
// input to gradient. The lanes past a layer's width never reach a real lane: a
// lane is picked by a permute (not through memory, so no store waits to be
// forwarded), and whole-vector stores only go to padding (z and a: their views
// hold at least 16 values; the gradients: +0, see outer_product). Every value
// gets the general path's operations in its order, mul then add (the one FMA,
// in the sums of squares, is exact): kernels/gemm_reference.hpp, activations.hpp,
// losses.hpp (mse).
namespace {

// Permute indices as constants (a permute then reads its index from memory, one
// instruction): kSplat[k] picks lane k for every lane; kOuter the factors of the
// outer product's chunk c of an in × out block, k = f / out and j = f % out of the
// flat index f = 8c + i of lane i (past the block, lanes the mask clears).
struct OuterIndex {
    alignas(32) int32_t k[kTinyMaxWidth][kTinyMaxWidth][8];  // [out - 1][c][i]
    alignas(32) int32_t j[kTinyMaxWidth][kTinyMaxWidth][8];
};
constexpr OuterIndex outer_index() {
    OuterIndex t{};
    for (int out = 1; out <= kTinyMaxWidth; ++out)
        for (int c = 0; c < kTinyMaxWidth; ++c)
            for (int i = 0; i < 8; ++i) {
                t.k[out - 1][c][i] = (8 * c + i) / out;
                t.j[out - 1][c][i] = (8 * c + i) % out;
            }
    return t;
}
constexpr OuterIndex kOuter = outer_index();
alignas(32) constexpr int32_t kSplat[8][8] = {{0, 0, 0, 0, 0, 0, 0, 0}, {1, 1, 1, 1, 1, 1, 1, 1}, {2, 2, 2, 2, 2, 2, 2, 2},
                                              {3, 3, 3, 3, 3, 3, 3, 3}, {4, 4, 4, 4, 4, 4, 4, 4}, {5, 5, 5, 5, 5, 5, 5, 5},
                                              {6, 6, 6, 6, 6, 6, 6, 6}, {7, 7, 7, 7, 7, 7, 7, 7}};
__m256i index8(const int32_t* i) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(i)); }

__m256i first_lanes(int n) { return F32::mask(n); }
__m256 lane(__m256 v, int k) { return _mm256_permutevar8x32_ps(v, index8(kSplat[k])); }  // v[k] in all lanes
float lane0(__m256 v) { return _mm256_cvtss_f32(v); }

// The n <= 8 floats at p in the first lanes, 0 in the rest. A width of 1, 2, 4 or 8
// is read by a plain load of exactly those bytes: a row of such a width lies inside
// one of the 32-byte chunks the previous step's update stored, so the store forwards
// to it (a masked load waits for the store to reach the cache, on the chain from one
// step to the next).
__m256 load_row(const float* p, int n) {
    switch (n) {
        case 1: return _mm256_zextps128_ps256(_mm_load_ss(p));
        case 2: return _mm256_zextps128_ps256(_mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
        case 4: return _mm256_zextps128_ps256(_mm_loadu_ps(p));
        case 8: return _mm256_loadu_ps(p);
        default: return _mm256_maskload_ps(p, first_lanes(n));
    }
}

// gemm_reference.hpp's dot(x, y, n) for n <= 8 from the products p_j = x_j y_j in
// lanes: eight partial sums of one product each combined pairwise, + an empty
// tail (n = 8), or the tail alone, in order, after the zero partial sums.
float dot_of_products(__m256 p, int n) {
    if (n == 8) {
        const __m256 acc = _mm256_add_ps(_mm256_setzero_ps(), p);
        const __m128 pairs = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));  // a_l + a_{l+4}
        const float left = _mm_cvtss_f32(pairs) + _mm_cvtss_f32(_mm_shuffle_ps(pairs, pairs, 1));
        const float right = _mm_cvtss_f32(_mm_shuffle_ps(pairs, pairs, 2)) + _mm_cvtss_f32(_mm_shuffle_ps(pairs, pairs, 3));
        return (left + right) + 0.0f;
    }
    float tail = 0.0f;
    for (int j = 0; j < n; ++j) tail += lane0(lane(p, j));
    return tail;  // + the zero partial sums: a sum from +0 is never -0, so 0 + tail = tail
}

// f(z): identity, relu (z > 0 ? z : 0), leaky_relu (z > 0 ? z : alpha z), sigmoid, tanh.
__m256 tiny_activation(TinyAct act, float alpha, __m256 z) {
    const __m256 positive = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_GT_OQ);
    switch (act) {
        case TinyAct::Relu: return _mm256_and_ps(z, positive);
        case TinyAct::LeakyRelu: return _mm256_blendv_ps(_mm256_mul_ps(_mm256_set1_ps(alpha), z), z, positive);
        case TinyAct::Sigmoid: return sigmoid8(z);
        case TinyAct::Tanh: return tanh8(z);
        case TinyAct::Identity: break;
    }
    return z;
}

// d · f'(z): relu z > 0 ? d : 0, leaky_relu z > 0 ? d : alpha d, sigmoid d · a · (1 − a),
// tanh d · (1 − a²), identity d.
__m256 tiny_derivative(TinyAct act, float alpha, __m256 d, __m256 z, __m256 a) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 positive = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_GT_OQ);
    switch (act) {
        case TinyAct::Relu: return _mm256_and_ps(d, positive);
        case TinyAct::LeakyRelu: return _mm256_blendv_ps(_mm256_mul_ps(_mm256_set1_ps(alpha), d), d, positive);
        case TinyAct::Sigmoid: return _mm256_mul_ps(_mm256_mul_ps(d, a), _mm256_sub_ps(one, a));
        case TinyAct::Tanh: return _mm256_mul_ps(d, _mm256_sub_ps(one, _mm256_mul_ps(a, a)));
        case TinyAct::Identity: break;
    }
    return d;
}

// G = 0 + x_k · δ_j, the dense in × out block (tn_narrow_row onto zeroed
// gradients; with x = 1, db = 0 + δ), written 8 values at a time with whole
// stores: lane i of chunk c picks its factors x_k, δ_j by permutes (kOuter; the
// lanes past the block store +0: the arena pads each block to 16 values). Returns
// Σ G² in double as sum_squares does: whole chunks into eight partial sums (lane i
// into sum i), combined pairwise, then the rest in order (from the chunk in
// register, not back from memory).
double outer_product(float* G, __m256 x, __m256 delta, int in, int out) {
    const int n = in * out, full = n / 8;
    const int32_t(*k)[8] = kOuter.k[out - 1];
    const int32_t(*j)[8] = kOuter.j[out - 1];
    auto chunk = [&](int c) {
        return _mm256_add_ps(_mm256_setzero_ps(), _mm256_mul_ps(_mm256_permutevar8x32_ps(x, index8(k[c])),
                                                                _mm256_permutevar8x32_ps(delta, index8(j[c]))));
    };
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    for (int c = 0; c < full; ++c) {
        const __m256 v = chunk(c);
        _mm256_storeu_ps(G + 8 * c, v);
        add_squares8(v, lo, hi);
    }
    double s = combine8(lo, hi);
    if (const int rest = n - 8 * full) {
        const __m256 v = _mm256_and_ps(chunk(full), _mm256_castsi256_ps(first_lanes(rest)));
        _mm256_storeu_ps(G + 8 * full, v);
        alignas(32) double sq[8];  // the squares in double, exact
        const __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), b = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        _mm256_store_pd(sq, _mm256_mul_pd(a, a));
        _mm256_store_pd(sq + 4, _mm256_mul_pd(b, b));
        for (int i = 0; i < rest; ++i) s += sq[i];
    }
    return s;
}

// col[j] = column j of the in × out matrix W (row-major, in, out <= 8): lane k holds
// W[k·out + j] for k < in and 0 past it; col[out..7] are 0. The rows are loaded and
// transposed in registers: 4 × 4 in the low halves (8 shuffles) when both are at most
// 4, else 8 × 8 (transpose8).
void columns(__m256 col[8], const float* W, int in, int out) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 row[8];
    for (int k = 0; k < 8; ++k) row[k] = k < in ? load_row(W + k * out, out) : zero;
    if (in <= 4 && out <= 4) {
        __m128 r0 = _mm256_castps256_ps128(row[0]), r1 = _mm256_castps256_ps128(row[1]);
        __m128 r2 = _mm256_castps256_ps128(row[2]), r3 = _mm256_castps256_ps128(row[3]);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        col[0] = _mm256_zextps128_ps256(r0);
        col[1] = _mm256_zextps128_ps256(r1);
        col[2] = _mm256_zextps128_ps256(r2);
        col[3] = _mm256_zextps128_ps256(r3);
        for (int j = 4; j < 8; ++j) col[j] = zero;
        return;
    }
    transpose8(col, row);
}

}  // namespace

double avx2_tiny_step_f32(const TinyLayerF32* layers, int L, const float* x, const float* y, const TinyUpdate* update,
                          TinyStepStats* stats) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 z[kTinyMaxLayers], a[kTinyMaxLayers];
    // Forward: z = b + x·W (nn_narrow_row: from b or +0, + x_k W_k for k in order;
    // one output: b + dot(x, W)), a = f(z).
    __m256 in = load_row(x, layers[0].in);
    for (int l = 0; l < L; ++l) {
        const TinyLayerF32& t = layers[l];
        __m256 acc;
        if (t.out == 1) {
            const __m256 p = _mm256_mul_ps(in, load_row(t.W, t.in));
            const float dot = dot_of_products(p, t.in);  // never -0, so 0 + dot = dot without a bias
            acc = _mm256_set_ps(0, 0, 0, 0, 0, 0, 0, t.b ? t.b[0] + dot : dot);
        } else {
            acc = t.b ? load_row(t.b, t.out) : zero;
            for (int k = 0; k < t.in; ++k)
                acc = _mm256_add_ps(acc, _mm256_mul_ps(lane(in, k), load_row(t.W + k * t.out, t.out)));
        }
        z[l] = acc;
        a[l] = tiny_activation(t.act, t.alpha, acc);
        _mm256_storeu_ps(t.z, z[l]);  // row 0 of views of at least 16 values: the rest is not this step's
        _mm256_storeu_ps(t.a, a[l]);
        const int lanes = (1 << t.out) - 1;
        stats->alive[l] = _mm256_movemask_ps(_mm256_cmp_ps(acc, zero, _CMP_GT_OQ)) & lanes;
        const float lo = t.act == TinyAct::Sigmoid ? 0.01f : -0.99f;
        const __m256 sat = _mm256_or_ps(_mm256_cmp_ps(a[l], _mm256_set1_ps(lo), _CMP_LT_OQ),
                                        _mm256_cmp_ps(a[l], _mm256_set1_ps(0.99f), _CMP_GT_OQ));
        stats->saturated[l] = unsigned(__builtin_popcount(unsigned(_mm256_movemask_ps(sat) & lanes)));
        in = a[l];
    }
    // Mean squared error over the K outputs (losses.hpp): the sum in double in order,
    // the gradient (2 d) / K; then through the output activation.
    const TinyLayerF32& top = layers[L - 1];
    const int K = top.out;
    const __m256 d = _mm256_sub_ps(a[L - 1], load_row(y, K));
    double sum = 0;
    for (int i = 0; i < K; ++i) {
        const double di = lane0(lane(d, i));
        sum += di * di;
    }
    const float inv_n = 1.0f / float(K);
    __m256 delta = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(2.0f), d), _mm256_set1_ps(inv_n));
    delta = tiny_derivative(top.act, top.alpha, delta, z[L - 1], a[L - 1]);
    // Backward, from the top: dW = 0 + inputᵀ·δ, db = 0 + δ (onto zeroed gradients),
    // then δ of the layer below = (0 + δ·Wᵀ) ⊙ f'(z below).
    for (int l = L - 1; l >= 0; --l) {
        const TinyLayerF32& t = layers[l];
        const __m256 input = l > 0 ? a[l - 1] : load_row(x, t.in);
        double sq = outer_product(t.dW, input, delta, t.in, t.out);
        if (t.db) sq += outer_product(t.db, _mm256_set1_ps(1.0f), delta, 1, t.out);
        stats->grad_norm[l] = _mm_cvtsd_f64(_mm_sqrt_pd(_mm_set1_pd(sq)));  // correctly rounded, as std::sqrt
        if (l == 0) break;
        // dx_k = 0 + dot(δ, W_k) for the in lanes k at once, from W's columns (its rows
        // transposed in registers: they depend on nothing of this step, so the transpose
        // runs beside the chain of δ; a gather would cost more). One output: the outer
        // product 0 + δ_0 W, W's one column.
        const __m256i mi = first_lanes(t.in);
        __m256 r;
        if (t.out == 1) {
            r = _mm256_add_ps(zero, _mm256_mul_ps(lane(delta, 0), load_row(t.W, t.in)));
        } else {
            __m256 col[8];
            columns(col, t.W, t.in, t.out);
            auto column = [&](int j) { return _mm256_mul_ps(lane(delta, j), col[j]); };
            if (t.out == 8) {  // eight partial sums of one product each, combined pairwise, + the empty tail
                __m256 p[8];
                for (int j = 0; j < 8; ++j) p[j] = _mm256_add_ps(zero, column(j));
                r = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(p[0], p[4]), _mm256_add_ps(p[1], p[5])),
                                  _mm256_add_ps(_mm256_add_ps(p[2], p[6]), _mm256_add_ps(p[3], p[7])));
            } else {  // the tail in order from +0 (the partial sums stay zero)
                r = zero;
                for (int j = 0; j < t.out; ++j) r = _mm256_add_ps(r, column(j));
            }
            // The reference then adds the empty tail or the zero partial sums, and the
            // result onto the zeroed dx: each + 0 of a sum from +0 (never -0) changes nothing.
        }
        const TinyLayerF32& below = layers[l - 1];
        delta = _mm256_and_ps(tiny_derivative(below.act, below.alpha, r, z[l - 1], a[l - 1]), _mm256_castsi256_ps(mi));
    }
    const double loss = sum / double(K);
    // The update, once every norm is known: p - lr·g chunk by chunk over the blocks
    // just written (their lanes past the block are 0 - lr·0 = 0). With no momentum
    // and no decay this is the table's sgd to the bit (g + 0·p and p - lr·g agree on
    // every sign of zero).
    stats->updated = false;
    if (!update) return loss;
    bool ok = __builtin_isfinite(loss);
    for (int l = 0; l < L; ++l) ok &= stats->grad_norm[l] <= update->grad_limit;  // false for NaN and inf
    if (!ok) return loss;
    const __m256 lr = _mm256_set1_ps(update->lr);
    auto sgd = [&](float* p, const float* g, int n) {
        for (int c = 0; c < n; c += 8)
            _mm256_storeu_ps(p + c, _mm256_sub_ps(_mm256_loadu_ps(p + c), _mm256_mul_ps(lr, _mm256_loadu_ps(g + c))));
    };
    for (int l = 0; l < L; ++l) {
        const TinyLayerF32& t = layers[l];
        sgd(t.W, t.dW, t.in * t.out);
        if (t.b) sgd(t.b, t.db, t.out);
    }
    stats->updated = true;
    return loss;
}

}  // namespace bp::ukr
