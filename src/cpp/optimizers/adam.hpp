// Adam and AdamW, exactly torch.optim.Adam / torch.optim.AdamW, at step t = 1, 2, ...:
//   Adam:   g = grad + weight_decay · p               (L2 decay, in the gradient)
//   AdamW:  p = p · (1 − lr · weight_decay),  g = grad (decoupled decay, before the update)
//   m = β1 m + (1 − β1) g,   v = β2 v + (1 − β2) g²
//   amsgrad: vmax = max(vmax, v), and vmax takes v's place below (torch's max_exp_avg_sq)
//   p = p − lr / (1 − β1^t) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)
// The variant is a template argument: each loop is branch-free, and plain Adam's
// arithmetic is what it always was.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace bp {

template <bool Decoupled, bool Amsgrad, typename T>
void adam_rule(T* p, const T* grad, T* m, T* v, T* vmax, std::size_t n, double lr, double beta1, double beta2,
               double eps, double weight_decay, uint64_t t) {
    const T b1 = T(beta1), b2 = T(beta2), wd = T(weight_decay), e = T(eps);
    const T shrink = T(1.0 - lr * weight_decay);  // torch: param.mul_(1 - lr * weight_decay)
    const T step_size = T(lr / (1.0 - std::pow(beta1, double(t))));
    const T bc2_sqrt = T(std::sqrt(1.0 - std::pow(beta2, double(t))));
    for (std::size_t i = 0; i < n; ++i) {
        T g = grad[i];
        if constexpr (Decoupled) {
            p[i] *= shrink;
        } else {
            g += wd * p[i];
        }
        m[i] = b1 * m[i] + (T(1) - b1) * g;
        v[i] = b2 * v[i] + (T(1) - b2) * g * g;
        T second = v[i];
        if constexpr (Amsgrad) {
            vmax[i] = std::max(vmax[i], v[i]);
            second = vmax[i];
        }
        p[i] -= step_size * m[i] / (std::sqrt(second) / bc2_sqrt + e);
    }
}

// Adam (decoupled = false) or AdamW (true), with or without amsgrad (vmax unused without).
template <typename T>
void adam_update(T* p, const T* grad, T* m, T* v, T* vmax, std::size_t n, double lr, double beta1, double beta2,
                 double eps, double weight_decay, uint64_t t, bool decoupled, bool amsgrad) {
    if (decoupled) {
        if (amsgrad) return adam_rule<true, true>(p, grad, m, v, vmax, n, lr, beta1, beta2, eps, weight_decay, t);
        return adam_rule<true, false>(p, grad, m, v, vmax, n, lr, beta1, beta2, eps, weight_decay, t);
    }
    if (amsgrad) return adam_rule<false, true>(p, grad, m, v, vmax, n, lr, beta1, beta2, eps, weight_decay, t);
    return adam_rule<false, false>(p, grad, m, v, vmax, n, lr, beta1, beta2, eps, weight_decay, t);
}

}  // namespace bp
