// AVX-512F microkernels (this file alone is compiled with -mavx512f -mfma).
// Contract: kernels/gemm.hpp. MR=12 rows × 2 zmm: 24 accumulators of the 32
// registers; per step p two aligned loads of B and 12 broadcasts of A feed
// 24 FMAs. Only called when the CPU reports avx512f (dispatch.cpp).
#include <immintrin.h>

#include <cstddef>

#include "kernels/microkernels/ukernels.hpp"

namespace bp::ukr {
namespace {

// One zmm of T: the intrinsics the kernel is written in.
struct Z32 {
    using T = float;
    using V = __m512;
    static constexpr int L = 16;
    static V zero() { return _mm512_setzero_ps(); }
    static V aload(const T* p) { return _mm512_load_ps(p); }
    static V load(const T* p) { return _mm512_loadu_ps(p); }
    static void store(T* p, V v) { _mm512_storeu_ps(p, v); }
    static V set1(T x) { return _mm512_set1_ps(x); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    static V add(V a, V b) { return _mm512_add_ps(a, b); }
};
struct Z64 {
    using T = double;
    using V = __m512d;
    static constexpr int L = 8;
    static V zero() { return _mm512_setzero_pd(); }
    static V aload(const T* p) { return _mm512_load_pd(p); }
    static V load(const T* p) { return _mm512_loadu_pd(p); }
    static void store(T* p, V v) { _mm512_storeu_pd(p, v); }
    static V set1(T x) { return _mm512_set1_pd(x); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
    static V add(V a, V b) { return _mm512_add_pd(a, b); }
};

template <class S, int MR>
inline void kernel(std::ptrdiff_t kc, const typename S::T* a, const typename S::T* b, typename S::T* c,
                   std::ptrdiff_t ldc) {
    using V = typename S::V;
    V lo[MR], hi[MR];
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) lo[i] = hi[i] = S::zero();
#pragma GCC unroll 2
    for (std::ptrdiff_t p = 0; p < kc; ++p) {
        const V b0 = S::aload(b), b1 = S::aload(b + S::L);
#pragma GCC unroll 12
        for (int i = 0; i < MR; ++i) {
            const V ai = S::set1(a[i]);
            lo[i] = S::fma(ai, b0, lo[i]);
            hi[i] = S::fma(ai, b1, hi[i]);
        }
        a += MR;
        b += 2 * S::L;
    }
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
        typename S::T* r = c + i * ldc;
        S::store(r, S::add(S::load(r), lo[i]));
        S::store(r + S::L, S::add(S::load(r + S::L), hi[i]));
    }
}

}  // namespace

void avx512_f32(std::ptrdiff_t kc, const float* a, const float* b, float* c, std::ptrdiff_t ldc) {
    static_assert(kAvx512NrF32 == 2 * Z32::L, "two zmm of float per row");
    kernel<Z32, kAvx512MrF32>(kc, a, b, c, ldc);
}
void avx512_f64(std::ptrdiff_t kc, const double* a, const double* b, double* c, std::ptrdiff_t ldc) {
    static_assert(kAvx512NrF64 == 2 * Z64::L, "two zmm of double per row");
    kernel<Z64, kAvx512MrF64>(kc, a, b, c, ldc);
}

}  // namespace bp::ukr
