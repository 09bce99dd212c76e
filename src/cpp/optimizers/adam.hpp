// Adam, exactly torch.optim.Adam (amsgrad off), at step t = 1, 2, ...:
//   g = grad + weight_decay · p
//   m = β1 m + (1 − β1) g,   v = β2 v + (1 − β2) g²
//   p = p − lr / (1 − β1^t) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace bp {

template <typename T>
void adam_update(T* p, const T* grad, T* m, T* v, std::size_t n, double lr, double beta1, double beta2,
                 double eps, double weight_decay, uint64_t t) {
    const T b1 = T(beta1), b2 = T(beta2), wd = T(weight_decay), e = T(eps);
    const T step_size = T(lr / (1.0 - std::pow(beta1, double(t))));
    const T bc2_sqrt = T(std::sqrt(1.0 - std::pow(beta2, double(t))));
    for (std::size_t i = 0; i < n; ++i) {
        const T g = grad[i] + wd * p[i];
        m[i] = b1 * m[i] + (T(1) - b1) * g;
        v[i] = b2 * v[i] + (T(1) - b2) * g * g;
        p[i] -= step_size * m[i] / (std::sqrt(v[i]) / bc2_sqrt + e);
    }
}

}  // namespace bp
