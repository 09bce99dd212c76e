// Stochastic gradient descent, exactly torch.optim.SGD with dampening 0, over
// the whole parameter arena as one flat vector:
//   g = grad + weight_decay · p
//   buf = momentum · buf + g            (buf starts at 0, so step 1 gives buf = g)
//   g = nesterov ? g + momentum · buf : buf
//   p = p − lr · g
#pragma once
#include <cstddef>

namespace bp {

struct SgdConfig {
    double lr = 0.01;
    double momentum = 0.0;
    bool nesterov = false;
    double weight_decay = 0.0;
};

// p, grad, buf: n elements each (buf unused when momentum == 0).
template <typename T>
void sgd_update(T* p, const T* grad, T* buf, std::size_t n, const SgdConfig& c) {
    const T lr = static_cast<T>(c.lr), mu = static_cast<T>(c.momentum),
            wd = static_cast<T>(c.weight_decay);
    if (c.momentum == 0.0) {
        for (std::size_t i = 0; i < n; ++i) p[i] -= lr * (grad[i] + wd * p[i]);
        return;
    }
    if (c.nesterov) {
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
