// One optimiser step over the whole parameter arena, as one flat vector:
// optional clipping of the global gradient norm (torch.nn.utils.clip_grad_norm_),
// then the chosen update rule. State lives in two arena-shaped buffers whose
// meaning depends on the rule:
//   SGD      state1 = momentum buffer
//   Adam     state1 = m (first moment),  state2 = v (second moment)
//   RMSprop  state1 = square average,    state2 = momentum buffer
//   Adagrad  state1 = sum of squares (starts at initial_accumulator_value)
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "common/reductions.hpp"
#include "optimizers/adagrad.hpp"
#include "optimizers/adam.hpp"
#include "optimizers/rmsprop.hpp"
#include "optimizers/sgd.hpp"

namespace bp {

enum class OptKind { Sgd, Adam, Rmsprop, Adagrad };

struct OptimizerConfig {
    OptKind kind = OptKind::Sgd;
    double lr = 0.01;
    double weight_decay = 0.0;
    double clip_norm = 0.0;  // 0: no clipping
    double momentum = 0.0;   // SGD, RMSprop
    bool nesterov = false;   // SGD
    double beta1 = 0.9, beta2 = 0.999;  // Adam
    double eps = 1e-8;                  // Adam, RMSprop, Adagrad
    double alpha = 0.99;                // RMSprop
    double lr_decay = 0.0;              // Adagrad
    double initial_accumulator_value = 0.0;  // Adagrad
};

// Global L2 norm of g (n elements), accumulated in double.
template <typename T>
double global_norm(const T* g, std::size_t n) {
    return std::sqrt(sum_squares(g, n));
}

// Scales g so that its global norm is at most max_norm (torch's formula:
// coefficient max_norm / (norm + 1e-6), applied only when below 1).
template <typename T>
void clip_global_norm(T* g, std::size_t n, double max_norm) {
    const double coef = max_norm / (global_norm(g, n) + 1e-6);
    if (coef < 1.0) {
        const T c = T(coef);
        for (std::size_t i = 0; i < n; ++i) g[i] *= c;
    }
}

// Which state buffers a rule writes: {state1, state2}.
inline std::pair<bool, bool> state_used(const OptimizerConfig& c) {
    switch (c.kind) {
        case OptKind::Sgd: return {c.momentum != 0.0, false};
        case OptKind::Adam: return {true, true};
        case OptKind::Rmsprop: return {true, c.momentum > 0};
        case OptKind::Adagrad: return {true, false};
    }
    return {true, true};
}

// One step at learning rate lr; t is the optimiser's step number (1-based).
template <typename T>
void apply_optimizer(const OptimizerConfig& c, double lr, uint64_t t, T* p, T* grad, T* state1, T* state2,
                    std::size_t n) {
    if (c.clip_norm > 0) clip_global_norm(grad, n, c.clip_norm);
    switch (c.kind) {
        case OptKind::Sgd: sgd_update(p, grad, state1, n, lr, c.momentum, c.nesterov, c.weight_decay); break;
        case OptKind::Adam: adam_update(p, grad, state1, state2, n, lr, c.beta1, c.beta2, c.eps, c.weight_decay, t); break;
        case OptKind::Rmsprop:
            rmsprop_update(p, grad, state1, state2, n, lr, c.alpha, c.eps, c.momentum, c.weight_decay);
            break;
        case OptKind::Adagrad: adagrad_update(p, grad, state1, n, lr, c.lr_decay, c.eps, c.weight_decay, t); break;
    }
}

}  // namespace bp
