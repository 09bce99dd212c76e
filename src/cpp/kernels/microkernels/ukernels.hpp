// Declarations of the microkernels, one group per ISA, defined in that ISA's
// files (generic.cpp; avx2_gemm.cpp, avx2_elementwise.cpp, avx2_arena.cpp,
// avx2_tiny_step.cpp; avx512.cpp), which alone are compiled with its flags.
// The GEMM contract is in kernels/gemm.hpp:
//   c[i*ldc + j] += Σ_{p<kc} a[p*MR + i] · b[p*NR + j],  i < MR, j < NR.
// This header holds declarations only: an inline function defined here and
// compiled in an AVX file could be picked by the linker for every caller.
#pragma once
#include <cstddef>

#include "kernels/layer_view.hpp"

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

// Small products without packing (gemm.hpp: gemm_small). One call does a whole
//   C[m,n] += A'[m,k] · B[k,n],  A'(i,p) = A[i*rsa + p*csa],  B(p,j) = B[p*ldb + j]
// (B with unit column stride; the driver transposes it first if it has not),
// any m, n >= 1 and k >= 1. A is read through its strides with broadcasts and
// B's rows directly, in register tiles of a few rows (m is cut into strips of
// nearly equal height, at most the ISA's MR) × the microkernel's NR columns;
// the edge columns are masked, not copied. Every element
// gets the same arithmetic wherever its tile is: a sum from zero over p in
// increasing order (one FMA per term on the FMA ISAs), then added to C once.
template <typename T>
using SmallFn = void (*)(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const T* A,
                         std::ptrdiff_t rsa, std::ptrdiff_t csa, const T* B, std::ptrdiff_t ldb, T* C,
                         std::ptrdiff_t ldc);
void generic_small_f32(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const float* A, std::ptrdiff_t rsa,
                       std::ptrdiff_t csa, const float* B, std::ptrdiff_t ldb, float* C, std::ptrdiff_t ldc);
void generic_small_f64(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const double* A, std::ptrdiff_t rsa,
                       std::ptrdiff_t csa, const double* B, std::ptrdiff_t ldb, double* C, std::ptrdiff_t ldc);
// AVX2 + FMA, up to 6 rows × 2 ymm; also the AVX-512 table's (see dispatch.cpp).
void avx2_small_f32(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const float* A, std::ptrdiff_t rsa,
                    std::ptrdiff_t csa, const float* B, std::ptrdiff_t ldb, float* C, std::ptrdiff_t ldc);
void avx2_small_f64(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const double* A, std::ptrdiff_t rsa,
                    std::ptrdiff_t csa, const double* B, std::ptrdiff_t ldb, double* C, std::ptrdiff_t ldc);

// The strided B of a small product made row-major for SmallFn (gemm_small; e.g.
// matmul_nt's Wᵀ): dst[p·n + j] = src[p·rs + j·cs] for p < k, j < n. Copies
// only, so every table gives the same bits. AVX2: float32 with rs = 1 (Wᵀ of a
// row-major W) in 8 × 8 blocks transposed in registers; the rest element by element.
template <typename T>
using TransposeFn = void (*)(const T* src, std::ptrdiff_t rs, std::ptrdiff_t cs, T* dst, std::ptrdiff_t k,
                             std::ptrdiff_t n);
void generic_transpose_f32(const float* src, std::ptrdiff_t rs, std::ptrdiff_t cs, float* dst, std::ptrdiff_t k,
                           std::ptrdiff_t n);
void generic_transpose_f64(const double* src, std::ptrdiff_t rs, std::ptrdiff_t cs, double* dst, std::ptrdiff_t k,
                           std::ptrdiff_t n);
void avx2_transpose_f32(const float* src, std::ptrdiff_t rs, std::ptrdiff_t cs, float* dst, std::ptrdiff_t k,
                        std::ptrdiff_t n);

// Elementwise float32 activations, a[i] = f(z[i]); a may alias z.
using UnaryFn = void (*)(float* a, const float* z, std::size_t n);
// tanh by the rational approximation of kernels/scalar_ops.hpp (fast_tanhf): clamp,
// then x·p(x²)/q(x²). The generic loop is fast_tanhf itself; the AVX2 one
// evaluates the same polynomials with FMAs (so it may differ in the last bit).
void generic_tanh_f32(float* a, const float* z, std::size_t n);
void avx2_tanh_f32(float* a, const float* z, std::size_t n);
// sigmoid by fast_sigmoidf (kernels/scalar_ops.hpp); the AVX2 loop evaluates its exp
// with FMAs (so it may differ in the last bit).
void generic_sigmoid_f32(float* a, const float* z, std::size_t n);
void avx2_sigmoid_f32(float* a, const float* z, std::size_t n);

// Σ x² in double over n values with eight partial sums (value i goes to sum
// i mod 8, the sums combined pairwise, then the last n mod 8 added in order:
// kernels/scalar_ops.hpp, sum_squares_portable). The AVX2 loops use FMAs:
// bitwise the generic result for float32 (a float's square is exact in
// double), possibly not in the last bits for float64.
template <typename T>
using SumSquaresFn = double (*)(const T* x, std::size_t n);
double generic_sum_squares_f32(const float* x, std::size_t n);
double generic_sum_squares_f64(const double* x, std::size_t n);
double avx2_sum_squares_f32(const float* x, std::size_t n);
double avx2_sum_squares_f64(const double* x, std::size_t n);

// The SGD update of kernels/scalar_ops.hpp (sgd_update) over n values, bitwise the
// same on every table (no FMA: p - lr·g as written).
template <typename T>
using SgdFn = void (*)(T* p, const T* grad, T* buf, std::size_t n, double lr, double momentum, bool nesterov,
                       double weight_decay);
void generic_sgd_f32(float* p, const float* grad, float* buf, std::size_t n, double lr, double momentum,
                     bool nesterov, double weight_decay);
void generic_sgd_f64(double* p, const double* grad, double* buf, std::size_t n, double lr, double momentum,
                     bool nesterov, double weight_decay);
void avx2_sgd_f32(float* p, const float* grad, float* buf, std::size_t n, double lr, double momentum,
                  bool nesterov, double weight_decay);
void avx2_sgd_f64(double* p, const double* grad, double* buf, std::size_t n, double lr, double momentum,
                  bool nesterov, double weight_decay);

// The fused per-sample step's forward and backward (training/sample_step.cpp) for a
// float32 network of at most kTinyMaxLayers dense layers, each at most 8 units wide
// (inputs too), activations identity, relu, leaky_relu, sigmoid or tanh (TinyAct), and the
// mean squared error: with the general path's operations in its order, so bitwise
// its z, a, dW, db, loss and norms; and, when asked, plain SGD's update (TinyUpdate).
// AVX2 only (the generic table has none: the step runs its portable loops).
// The layers are LayerView<float> (kernels/layer_view.hpp: TinyLayerF32).
inline constexpr int kTinyMaxLayers = 8, kTinyMaxWidth = 8;  // a layer's row fits one ymm
// Plain SGD's update, W -= lr·dW and b -= lr·db (the table's sgd with no momentum and
// no decay, bitwise), made by the kernel itself when the loss and every layer's
// gradient norm are finite and none is above grad_limit: the caller's proof that the
// update stays finite (SgdBounds::gradient_limit). Otherwise nothing is updated.
struct TinyUpdate {
    float lr;
    double grad_limit;  // finite (-1: never)
};
struct TinyStepStats {
    double grad_norm[kTinyMaxLayers];     // √(Σ dW² + Σ db²) per layer (the sums in sum_squares' order)
    unsigned alive[kTinyMaxLayers];       // bit j: z_j > 0
    unsigned saturated[kTinyMaxLayers];   // values with a < lo or a > 0.99 (lo: 0.01 sigmoid, -0.99 otherwise)
    bool updated;                         // the TinyUpdate was made
};
// Returns the loss; y holds the last layer's `out` targets; update: null for none.
using TinyStepFn = double (*)(const TinyLayerF32* layers, int L, const float* x, const float* y,
                              const TinyUpdate* update, TinyStepStats* stats);
double avx2_tiny_step_f32(const TinyLayerF32* layers, int L, const float* x, const float* y, const TinyUpdate* update,
                          TinyStepStats* stats);

}  // namespace bp::ukr
