// Portable register-blocked microkernels: plain C++ compiled for the baseline
// ISA. The MR×NR accumulator is a fixed-size local array in fully unrolled
// loops, which the compiler keeps in vector registers. Contract: gemm.hpp.
// The elementwise and arena operators are the scalar forms of kernels/scalar_ops.hpp.
#include <algorithm>
#include <cstddef>

#include "kernels/microkernels/ukernels.hpp"
#include "kernels/scalar_ops.hpp"

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

// Small products (ukernels.hpp: SmallFn): an R×NR tile read straight from A'
// and B; with EDGE only the first nr < NR columns exist (B past them counts as
// zero and C is not touched there), each element's arithmetic unchanged. The
// packed kernel above is this tile at rsa = 1, csa = MR, ldb = NR, but stays its
// own: written as a call to this one (and so under its attribute) GCC 12 compiled
// it to scalar mulss with spills instead of packed mulps (seen in the disassembly).
// GCC would vectorise the loop over p as an in-order reduction when csa == 1
// (4× slower than the SLP-vectorised tile below); this keeps it from trying.
#if defined(__GNUC__) && !defined(__clang__)
#define BP_NO_LOOP_VECTORIZE __attribute__((optimize("no-tree-loop-vectorize")))
#else
#define BP_NO_LOOP_VECTORIZE
#endif

template <typename T, int R, int NR, bool EDGE>
BP_NO_LOOP_VECTORIZE inline void small_tile(std::ptrdiff_t k, const T* __restrict a, std::ptrdiff_t rsa, std::ptrdiff_t csa,
                       const T* __restrict b, std::ptrdiff_t ldb, T* __restrict c, std::ptrdiff_t ldc,
                       std::ptrdiff_t nr) {
    T acc[R][NR] = {};
    T pad[NR] = {};  // EDGE: the row of B, zero past column nr
    for (std::ptrdiff_t p = 0; p < k; ++p) {
        const T* bp = b;
        if (EDGE) {
            for (std::ptrdiff_t j = 0; j < nr; ++j) pad[j] = b[j];
            bp = pad;
        }
#pragma GCC unroll 16
        for (int i = 0; i < R; ++i) {
            const T ai = a[i * rsa];
#pragma GCC unroll 16
            for (int j = 0; j < NR; ++j) acc[i][j] += ai * bp[j];
        }
        a += csa;
        b += ldb;
    }
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 16
        for (int j = 0; j < NR; ++j)
            if (!EDGE || j < nr) c[i * ldc + j] += acc[i][j];
}

template <typename T, int R, int NR>
void small_strip(std::ptrdiff_t n, std::ptrdiff_t k, const T* a, std::ptrdiff_t rsa, std::ptrdiff_t csa,
                 const T* b, std::ptrdiff_t ldb, T* c, std::ptrdiff_t ldc) {
    std::ptrdiff_t j = 0;
    for (; j + NR <= n; j += NR) small_tile<T, R, NR, false>(k, a, rsa, csa, b + j, ldb, c + j, ldc, NR);
    if (j < n) small_tile<T, R, NR, true>(k, a, rsa, csa, b + j, ldb, c + j, ldc, n - j);
}

// m in ceil(m/MR) strips of nearly equal height (as the AVX2 version).
template <typename T, int MR, int NR>
void small_gemm(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const T* A, std::ptrdiff_t rsa,
                std::ptrdiff_t csa, const T* B, std::ptrdiff_t ldb, T* C, std::ptrdiff_t ldc) {
    static_assert(MR == 4, "strips of 1..4 rows below");
    const std::ptrdiff_t strips = (m + MR - 1) / MR;
    for (std::ptrdiff_t s = 0, i = 0; s < strips; ++s) {
        const std::ptrdiff_t rows = m * (s + 1) / strips - m * s / strips;
        const T* a = A + i * rsa;
        T* c = C + i * ldc;
        switch (rows) {
            case 4: small_strip<T, 4, NR>(n, k, a, rsa, csa, B, ldb, c, ldc); break;
            case 3: small_strip<T, 3, NR>(n, k, a, rsa, csa, B, ldb, c, ldc); break;
            case 2: small_strip<T, 2, NR>(n, k, a, rsa, csa, B, ldb, c, ldc); break;
            default: small_strip<T, 1, NR>(n, k, a, rsa, csa, B, ldb, c, ldc); break;
        }
        i += rows;
    }
}

}  // namespace

namespace {
// In 8 × 8 blocks: 8 source rows and 8 destination rows stay in L1.
template <typename T>
void transpose(const T* src, std::ptrdiff_t rs, std::ptrdiff_t cs, T* dst, std::ptrdiff_t k, std::ptrdiff_t n) {
    constexpr std::ptrdiff_t kT = 8;
    for (std::ptrdiff_t j0 = 0; j0 < n; j0 += kT)
        for (std::ptrdiff_t p0 = 0; p0 < k; p0 += kT) {
            const std::ptrdiff_t jn = std::min(kT, n - j0), pn = std::min(kT, k - p0);
            for (std::ptrdiff_t p = p0; p < p0 + pn; ++p)
                for (std::ptrdiff_t j = j0; j < j0 + jn; ++j) dst[p * n + j] = src[p * rs + j * cs];
        }
}
}  // namespace

void generic_transpose_f32(const float* src, std::ptrdiff_t rs, std::ptrdiff_t cs, float* dst, std::ptrdiff_t k,
                           std::ptrdiff_t n) {
    transpose(src, rs, cs, dst, k, n);
}
void generic_transpose_f64(const double* src, std::ptrdiff_t rs, std::ptrdiff_t cs, double* dst, std::ptrdiff_t k,
                           std::ptrdiff_t n) {
    transpose(src, rs, cs, dst, k, n);
}

void generic_small_f32(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const float* A, std::ptrdiff_t rsa,
                       std::ptrdiff_t csa, const float* B, std::ptrdiff_t ldb, float* C, std::ptrdiff_t ldc) {
    small_gemm<float, kGenericMrF32, kGenericNrF32>(m, n, k, A, rsa, csa, B, ldb, C, ldc);
}
void generic_small_f64(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const double* A, std::ptrdiff_t rsa,
                       std::ptrdiff_t csa, const double* B, std::ptrdiff_t ldb, double* C, std::ptrdiff_t ldc) {
    small_gemm<double, kGenericMrF64, kGenericNrF64>(m, n, k, A, rsa, csa, B, ldb, C, ldc);
}

void generic_f32(std::ptrdiff_t kc, const float* a, const float* b, float* c, std::ptrdiff_t ldc) {
    generic_kernel<float, kGenericMrF32, kGenericNrF32>(kc, a, b, c, ldc);
}
void generic_f64(std::ptrdiff_t kc, const double* a, const double* b, double* c, std::ptrdiff_t ldc) {
    generic_kernel<double, kGenericMrF64, kGenericNrF64>(kc, a, b, c, ldc);
}

void generic_tanh_f32(float* a, const float* z, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) a[i] = fast_tanhf(z[i]);
}

void generic_sigmoid_f32(float* a, const float* z, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) a[i] = fast_sigmoidf(z[i]);
}

double generic_sum_squares_f32(const float* x, std::size_t n) { return sum_squares_portable(x, n); }
double generic_sum_squares_f64(const double* x, std::size_t n) { return sum_squares_portable(x, n); }

void generic_sgd_f32(float* p, const float* grad, float* buf, std::size_t n, double lr, double momentum,
                     bool nesterov, double weight_decay) {
    sgd_update(p, grad, buf, n, lr, momentum, nesterov, weight_decay);
}
void generic_sgd_f64(double* p, const double* grad, double* buf, std::size_t n, double lr, double momentum,
                     bool nesterov, double weight_decay) {
    sgd_update(p, grad, buf, n, lr, momentum, nesterov, weight_decay);
}

}  // namespace bp::ukr
