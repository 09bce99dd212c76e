// What the AVX2 + FMA kernel files share (avx2_gemm.cpp, avx2_elementwise.cpp,
// avx2_arena.cpp, avx2_tiny_step.cpp): the vector traits F32/F64 and the
// 8-lane helpers. Included only by those files, which alone are compiled with
// -mavx2 -mfma (and, like the whole core, -ffp-contract=off, so an FMA here is
// always an explicit one). Internal linkage: no caller outside them can be
// handed a copy compiled with these flags.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/microkernels/ukernels.hpp"

namespace bp::ukr {
namespace {

// One ymm of T: the intrinsics the templates are written in.
struct F32 {
    using T = float;
    using V = __m256;
    static constexpr int L = 8;
    static V zero() { return _mm256_setzero_ps(); }
    static V load(const T* p) { return _mm256_loadu_ps(p); }
    static V aload(const T* p) { return _mm256_load_ps(p); }  // 32-byte aligned
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
    static V aload(const T* p) { return _mm256_load_pd(p); }  // 32-byte aligned
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

// ------------------------------------------------------------ activations
// fast_tanhf (kernels/scalar_ops.hpp) on 8 lanes: the clamp is min/max, the two
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

// fast_exp_nonpositive (kernels/scalar_ops.hpp) on 8 lanes, x <= 0.
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

// ------------------------------------------------------------ sums of squares
// Σ x² in double: value i into lane i mod 8 of two 4-double accumulators (the
// eight partial sums of sum_squares_portable, kernels/scalar_ops.hpp), combined
// in its order. The square of a float is exact in double, so for float32 the
// FMA rounds as the generic multiply-then-add: the two tables agree bitwise;
// float64 squares round, and may differ.

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

// ------------------------------------------------------------ transposes
// out[j] = lane j of each of the 8 rows: out[j][k] = row[k][j] (24 shuffles).
inline void transpose8(__m256 out[8], const __m256 row[8]) {
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
}  // namespace bp::ukr
