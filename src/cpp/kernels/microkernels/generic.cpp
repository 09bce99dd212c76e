// Portable register-blocked microkernels: plain C++ compiled for the baseline
// ISA. The MR×NR accumulator is a fixed-size local array in fully unrolled
// loops, which the compiler keeps in vector registers. Contract: gemm.hpp.
#include <cstddef>

#include "activations/activations.hpp"
#include "kernels/microkernels/ukernels.hpp"

namespace bp::ukr {
namespace {

template <typename T, int MR, int NR>
inline void generic_kernel(std::ptrdiff_t kc, const T* __restrict a, const T* __restrict b,
                           T* __restrict c, std::ptrdiff_t ldc) {
    T acc[MR][NR] = {};
    for (std::ptrdiff_t p = 0; p < kc; ++p) {
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) {
            const T ai = a[i];
#pragma GCC unroll 16
            for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
        }
        a += MR;
        b += NR;
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
        for (int j = 0; j < NR; ++j) c[i * ldc + j] += acc[i][j];
}

}  // namespace

void generic_f32(std::ptrdiff_t kc, const float* a, const float* b, float* c, std::ptrdiff_t ldc) {
    generic_kernel<float, kGenericMrF32, kGenericNrF32>(kc, a, b, c, ldc);
}
void generic_f64(std::ptrdiff_t kc, const double* a, const double* b, double* c, std::ptrdiff_t ldc) {
    generic_kernel<double, kGenericMrF64, kGenericNrF64>(kc, a, b, c, ldc);
}

void generic_tanh_f32(float* a, const float* z, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) a[i] = fast_tanhf(z[i]);
}

}  // namespace bp::ukr
