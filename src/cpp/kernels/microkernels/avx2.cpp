// AVX2 + FMA microkernels (this file alone is compiled with -mavx2 -mfma).
// Contract: kernels/gemm.hpp. The tile is MR rows × NR columns of C held in
// 12 ymm accumulators; per step p, the NR values of the B micro-panel are two
// aligned loads and each of the MR values of A is one broadcast feeding two
// FMAs: 12 FMAs to 8 loads, which keeps both FMA ports busy.
#include <immintrin.h>

#include <cstddef>

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

}  // namespace bp::ukr
