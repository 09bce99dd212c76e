// AVX2 + FMA passes over whole arenas (ukernels.hpp: SumSquaresFn, SgdFn): the
// gradient and weight norms' Σ x², and the SGD update.
#include <cstddef>

#include "kernels/microkernels/avx2.hpp"

namespace bp::ukr {
namespace {

// Σ x² in double: the eight partial sums of avx2.hpp (add_squares8, combine8), then
// the last n mod 8 added in order.
template <typename T>
double sum_squares(const T* x, std::size_t n) {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    const std::size_t full = n / 8 * 8;
    for (std::size_t i = 0; i < full; i += 8) add_squares8(x + i, lo, hi);
    double s = combine8(lo, hi);
    for (std::size_t i = full; i < n; ++i) s += double(x[i]) * double(x[i]);
    return s;
}

// sgd_update (kernels/scalar_ops.hpp) on vectors, the last n mod L values by masked
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

}  // namespace bp::ukr
