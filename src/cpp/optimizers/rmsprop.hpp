// RMSprop, exactly torch.optim.RMSprop (centered off):
//   g = grad + weight_decay · p
//   s = α s + (1 − α) g²,   d = g / (sqrt(s) + eps)
//   momentum > 0: buf = momentum · buf + d,  p = p − lr · buf;   else p = p − lr · d
#pragma once
#include <cmath>
#include <cstddef>

namespace bp {

template <typename T>
void rmsprop_update(T* p, const T* grad, T* square_avg, T* buf, std::size_t n, double lr_, double alpha,
                    double eps, double momentum, double weight_decay) {
    const T lr = T(lr_), a = T(alpha), e = T(eps), mu = T(momentum), wd = T(weight_decay);
    for (std::size_t i = 0; i < n; ++i) {
        const T g = grad[i] + wd * p[i];
        square_avg[i] = a * square_avg[i] + (T(1) - a) * g * g;
        const T d = g / (std::sqrt(square_avg[i]) + e);
        if (momentum > 0) {
            buf[i] = mu * buf[i] + d;
            p[i] -= lr * buf[i];
        } else {
            p[i] -= lr * d;
        }
    }
}

}  // namespace bp
