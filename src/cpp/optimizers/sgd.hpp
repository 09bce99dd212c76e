// Stochastic gradient descent, exactly torch.optim.SGD with dampening 0:
//   g = grad + weight_decay · p
//   buf = momentum · buf + g            (buf starts at 0, so step 1 gives buf = g)
//   g = nesterov ? g + momentum · buf : buf
//   p = p − lr · g
// This loop is the generic kernel table's; optimizer.hpp calls the active
// table's (kernels/dispatch.hpp), whose AVX2 loop is bitwise the same.
#pragma once
#include <cstddef>

namespace bp {

// p, grad, buf: n elements each (buf unused when momentum == 0).
template <typename T>
void sgd_update(T* p, const T* grad, T* buf, std::size_t n, double lr_, double momentum, bool nesterov,
                double weight_decay) {
    const T lr = T(lr_), mu = T(momentum), wd = T(weight_decay);
    if (momentum == 0.0) {
        for (std::size_t i = 0; i < n; ++i) p[i] -= lr * (grad[i] + wd * p[i]);
    } else if (nesterov) {
        for (std::size_t i = 0; i < n; ++i) {
            const T g = grad[i] + wd * p[i];
            buf[i] = mu * buf[i] + g;
            p[i] -= lr * (g + mu * buf[i]);
        }
    } else {
        for (std::size_t i = 0; i < n; ++i) {
            buf[i] = mu * buf[i] + (grad[i] + wd * p[i]);
            p[i] -= lr * buf[i];
        }
    }
}

}  // namespace bp
