// Declarations of the GEMM microkernels, one group per ISA, each defined in
// its own file (generic.cpp, avx2.cpp, avx512.cpp) which alone is compiled
// with that ISA's flags. The contract is in kernels/gemm.hpp:
//   c[i*ldc + j] += Σ_{p<kc} a[p*MR + i] · b[p*NR + j],  i < MR, j < NR.
// This header holds declarations only: an inline function defined here and
// compiled in an AVX file could be picked by the linker for every caller.
#pragma once
#include <cstddef>

namespace bp::ukr {

template <typename T>
using Fn = void (*)(std::ptrdiff_t kc, const T* a, const T* b, T* c, std::ptrdiff_t ldc);

// Portable C++ (baseline ISA), register-blocked for 16 SSE/NEON registers.
inline constexpr int kGenericMrF32 = 4, kGenericNrF32 = 8;
inline constexpr int kGenericMrF64 = 4, kGenericNrF64 = 4;
void generic_f32(std::ptrdiff_t kc, const float* a, const float* b, float* c, std::ptrdiff_t ldc);
void generic_f64(std::ptrdiff_t kc, const double* a, const double* b, double* c, std::ptrdiff_t ldc);

// AVX2 + FMA: 6 rows × 2 ymm (12 accumulators of 16).
inline constexpr int kAvx2MrF32 = 6, kAvx2NrF32 = 16;
inline constexpr int kAvx2MrF64 = 6, kAvx2NrF64 = 8;
void avx2_f32(std::ptrdiff_t kc, const float* a, const float* b, float* c, std::ptrdiff_t ldc);
void avx2_f64(std::ptrdiff_t kc, const double* a, const double* b, double* c, std::ptrdiff_t ldc);

// AVX-512F: 12 rows × 2 zmm (24 accumulators of 32).
inline constexpr int kAvx512MrF32 = 12, kAvx512NrF32 = 32;
inline constexpr int kAvx512MrF64 = 12, kAvx512NrF64 = 16;
void avx512_f32(std::ptrdiff_t kc, const float* a, const float* b, float* c, std::ptrdiff_t ldc);
void avx512_f64(std::ptrdiff_t kc, const double* a, const double* b, double* c, std::ptrdiff_t ldc);

// Elementwise float32 tanh, a[i] = tanh(z[i]) by the rational approximation of
// activations.hpp (fast_tanhf): clamp, then x·p(x²)/q(x²). The generic loop is
// fast_tanhf itself; the AVX2 one evaluates the same polynomials with FMAs (so
// it may differ from it in the last bit). a may alias z.
using TanhFn = void (*)(float* a, const float* z, std::size_t n);
void generic_tanh_f32(float* a, const float* z, std::size_t n);
void avx2_tanh_f32(float* a, const float* z, std::size_t n);

}  // namespace bp::ukr
