// Adagrad, exactly torch.optim.Adagrad, at step t = 1, 2, ...:
//   g = grad + weight_decay · p
//   clr = lr / (1 + (t − 1) · lr_decay)
//   sum = sum + g²     (sum starts at initial_accumulator_value)
//   p = p − clr · g / (sqrt(sum) + eps)
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace bp {

template <typename T>
void adagrad_update(T* p, const T* grad, T* sum, std::size_t n, double lr, double lr_decay, double eps,
                    double weight_decay, uint64_t t) {
    const T clr = T(lr / (1.0 + double(t - 1) * lr_decay)), e = T(eps), wd = T(weight_decay);
    for (std::size_t i = 0; i < n; ++i) {
        const T g = grad[i] + wd * p[i];
        sum[i] += g * g;
        p[i] -= clr * g / (std::sqrt(sum[i]) + e);
    }
}

}  // namespace bp
