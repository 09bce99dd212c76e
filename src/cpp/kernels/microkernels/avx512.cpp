// AVX-512F microkernels (this file alone is compiled with -mavx512f -mfma).
// Contract: kernels/gemm.hpp. MR=12 rows × 2 zmm: 24 accumulators of the 32
// registers; per step p two aligned loads of B and 12 broadcasts of A feed
// 24 FMAs. Only called when the CPU reports avx512f (dispatch.cpp).
#include <immintrin.h>

#include <cstddef>

#include "kernels/microkernels/ukernels.hpp"

namespace bp::ukr {
namespace {

template <int MR>
inline void kernel_f32(std::ptrdiff_t kc, const float* a, const float* b, float* c, std::ptrdiff_t ldc) {
    __m512 lo[MR], hi[MR];
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) lo[i] = hi[i] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (std::ptrdiff_t p = 0; p < kc; ++p) {
        const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
        for (int i = 0; i < MR; ++i) {
            const __m512 ai = _mm512_set1_ps(a[i]);
            lo[i] = _mm512_fmadd_ps(ai, b0, lo[i]);
            hi[i] = _mm512_fmadd_ps(ai, b1, hi[i]);
        }
        a += MR;
        b += 32;
    }
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
        float* r = c + i * ldc;
        _mm512_storeu_ps(r, _mm512_add_ps(_mm512_loadu_ps(r), lo[i]));
        _mm512_storeu_ps(r + 16, _mm512_add_ps(_mm512_loadu_ps(r + 16), hi[i]));
    }
}

template <int MR>
inline void kernel_f64(std::ptrdiff_t kc, const double* a, const double* b, double* c, std::ptrdiff_t ldc) {
    __m512d lo[MR], hi[MR];
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) lo[i] = hi[i] = _mm512_setzero_pd();
#pragma GCC unroll 2
    for (std::ptrdiff_t p = 0; p < kc; ++p) {
        const __m512d b0 = _mm512_load_pd(b), b1 = _mm512_load_pd(b + 8);
#pragma GCC unroll 12
        for (int i = 0; i < MR; ++i) {
            const __m512d ai = _mm512_set1_pd(a[i]);
            lo[i] = _mm512_fmadd_pd(ai, b0, lo[i]);
            hi[i] = _mm512_fmadd_pd(ai, b1, hi[i]);
        }
        a += MR;
        b += 16;
    }
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
        double* r = c + i * ldc;
        _mm512_storeu_pd(r, _mm512_add_pd(_mm512_loadu_pd(r), lo[i]));
        _mm512_storeu_pd(r + 8, _mm512_add_pd(_mm512_loadu_pd(r + 8), hi[i]));
    }
}

}  // namespace

void avx512_f32(std::ptrdiff_t kc, const float* a, const float* b, float* c, std::ptrdiff_t ldc) {
    static_assert(kAvx512NrF32 == 32, "two zmm of float per row");
    kernel_f32<kAvx512MrF32>(kc, a, b, c, ldc);
}
void avx512_f64(std::ptrdiff_t kc, const double* a, const double* b, double* c, std::ptrdiff_t ldc) {
    static_assert(kAvx512NrF64 == 16, "two zmm of double per row");
    kernel_f64<kAvx512MrF64>(kc, a, b, c, ldc);
}

}  // namespace bp::ukr
