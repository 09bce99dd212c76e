// One optimiser step over the parameter arena: optional clipping of the global
// gradient norm (torch.nn.utils.clip_grad_norm_) over the whole arena, then the
// chosen update rule, elementwise, over one or more contiguous segments (the
// whole arena at once, or weights and biases apart when they decay differently).
// State lives in three arena-shaped buffers whose meaning depends on the rule:
//   SGD          state1 = momentum buffer
//   Adam, AdamW  state1 = m (first moment),  state2 = v (second moment),
//                state3 = max of v (amsgrad only)
//   RMSprop      state1 = square average,    state2 = momentum buffer
//   Adagrad      state1 = sum of squares (starts at initial_accumulator_value)
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include "kernels/reductions.hpp"
#include "common/threads.hpp"
#include "kernels/dispatch.hpp"
#include "optimizers/adagrad.hpp"
#include "optimizers/adam.hpp"
#include "optimizers/rmsprop.hpp"
#include "optimizers/sgd.hpp"

namespace bp {

enum class OptKind { Sgd, Adam, Rmsprop, Adagrad, AdamW };  // AdamW: Adam with decoupled decay

struct OptimizerConfig {
    OptKind kind = OptKind::Sgd;
    double lr = 0.01;
    double weight_decay = 0.0;
    bool decay_bias = true;         // false: weight_decay acts on weights only (sklearn's alpha)
    bool decay_per_sample = false;  // true: each step uses weight_decay / batch rows (sklearn's alpha)
    double clip_norm = 0.0;  // 0: no clipping
    double momentum = 0.0;   // SGD, RMSprop
    bool nesterov = false;   // SGD
    double beta1 = 0.9, beta2 = 0.999;  // Adam, AdamW
    bool amsgrad = false;               // Adam, AdamW: the max of the second moments (state3)
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

// Which state buffers a rule writes.
struct StateUse {
    bool s1, s2, s3;
};
inline StateUse state_used(const OptimizerConfig& c) {
    switch (c.kind) {
        case OptKind::Sgd: return {c.momentum != 0.0, false, false};
        case OptKind::Adam:
        case OptKind::AdamW: return {true, true, c.amsgrad};
        case OptKind::Rmsprop: return {true, c.momentum > 0, false};
        case OptKind::Adagrad: return {true, false, false};
    }
    return {true, true, true};
}

// The weight decay of a step over a batch of `rows` samples (or, with the WeightSum
// normalisation of sample weights, of weights summing to `rows`).
inline double step_weight_decay(const OptimizerConfig& c, double rows) {
    return c.decay_per_sample && rows > 0 ? c.weight_decay / rows : c.weight_decay;
}

// The update rule over n contiguous elements at learning rate lr and weight decay wd
// (no clipping: that is global, done first by the caller); t is the optimiser's
// step number (1-based). Elementwise, so any split into segments gives the same result.
template <typename T>
void apply_update(const OptimizerConfig& c, double lr, double wd, uint64_t t, T* p, const T* grad, T* state1,
                  T* state2, T* state3, std::size_t n) {
    switch (c.kind) {
        case OptKind::Sgd:  // sgd_update, by the active kernel table
            active_kernel_table().arena<T>().sgd(p, grad, state1, n, lr, c.momentum, c.nesterov, wd);
            break;
        case OptKind::Adam:
        case OptKind::AdamW:
            adam_update(p, grad, state1, state2, state3, n, lr, c.beta1, c.beta2, c.eps, wd, t,
                        c.kind == OptKind::AdamW, c.amsgrad);
            break;
        case OptKind::Rmsprop: rmsprop_update(p, grad, state1, state2, n, lr, c.alpha, c.eps, c.momentum, wd); break;
        case OptKind::Adagrad: adagrad_update(p, grad, state1, n, lr, c.lr_decay, c.eps, wd, t); break;
    }
}

// apply_update, split into fixed chunks over threads when n is large (a
// memory-bound pass over a wide network's parameters): elementwise, so the
// result is the same for any split.
template <typename T>
void apply_update_threaded(const OptimizerConfig& c, double lr, double wd, uint64_t t, T* p, const T* grad,
                           T* state1, T* state2, T* state3, std::size_t n) {
    constexpr std::size_t kChunk = std::size_t(1) << 16;
    const int threads = threads_for(4.0 * double(n));  // about 4 operations per element
    if (threads <= 1 || n < 2 * kChunk) return apply_update(c, lr, wd, t, p, grad, state1, state2, state3, n);
    for_each_chunk(n, kChunk, threads, [&](std::size_t, std::size_t off, std::size_t len) {
        apply_update(c, lr, wd, t, p + off, grad + off, state1 + off, state2 + off, state3 + off, len);
    });
}

// Upper bounds on max |p| and max |momentum buffer| over the arena, carried from
// step to step by SGD's update rule: while they stay far below overflow, an SGD
// step cannot produce an inf and its dry run is skipped. Set from the L2 norms
// (each at least the max |x|) at the start of each epoch (Network::fit_epoch),
// then grown with each step's bound on |grad| (the largest layer gradient norm).
struct SgdBounds {
    bool valid = false;
    double p = 0, v = 0;

    // The bounds after a step (lr, decay wd, gradient bound g); false when they would
    // come within a factor 1e8 of `limit` (the type's largest value): do the dry run.
    bool advance(const OptimizerConfig& c, double lr, double wd, double g, double limit) {
        // The rule runs in the parameters' type: an lr, decay or momentum past its largest
        // value would be inf there (and inf · 0 a NaN) whatever the bounds.
        if (!(lr < limit && wd < limit && c.momentum < limit)) return false;
        const double grad = g + wd * p;  // |grad + wd p|
        double np, nv = v;
        if (c.momentum == 0.0) {
            np = p + lr * grad;
        } else {
            nv = c.momentum * v + grad;
            np = p + lr * (c.nesterov ? grad + c.momentum * nv : nv);
        }
        if (!valid || !(np < limit * 1e-8) || !(nv < limit * 1e-8)) return false;
        p = np;
        v = nv;
        return true;
    }

    // SGD without momentum or decay, for a run of `steps` steps at learning rates up to
    // lr: a gradient bound g such that, while each step's is at most g, every step's
    // advance(c, lr, 0, g, limit) would succeed (1e-6 short of exact, so rounding
    // cannot cross it); -1 when there is none. Finite (at most the largest double, also
    // when lr·steps is 0 or so small that the quotient overflows), so an inf gradient
    // is always above it.
    double gradient_limit(const OptimizerConfig& c, double lr, double limit, std::size_t steps) const {
        if (!valid || c.momentum != 0.0 || !(lr < limit) || !(p < limit * 1e-8)) return -1.0;
        const double g = (limit * 1e-8 - p) / (lr * double(steps)) * (1.0 - 1e-6);  // inf for lr = 0
        return std::min(g, std::numeric_limits<double>::max());
    }
    // advance for a step of such a run (its gradient bound within gradient_limit).
    void grow(double lr, double g) { p += lr * g; }
};

// The update's dry run: would apply_update leave every parameter and state value
// finite? It runs the rule on copies of L1-sized blocks and touches nothing, so a
// step can be refused before any value changes, with no copy of the arena kept
// for a rollback. If delta_sq is given, Σ (new − old)² of the parameters is added
// to it (the update's size, for the update-to-weight ratio).
template <typename T>
bool update_stays_finite(const OptimizerConfig& c, double lr, double wd, uint64_t t, const T* p, const T* grad,
                         const T* state1, const T* state2, const T* state3, std::size_t n,
                         double* delta_sq = nullptr) {
    const StateUse use = state_used(c);
    constexpr std::size_t kBlock = 256;
    alignas(64) T np[kBlock], n1[kBlock], n2[kBlock], n3[kBlock];
    for (std::size_t i = 0; i < n; i += kBlock) {
        const std::size_t m = std::min(kBlock, n - i);
        std::memcpy(np, p + i, m * sizeof(T));
        if (use.s1) std::memcpy(n1, state1 + i, m * sizeof(T));
        if (use.s2) std::memcpy(n2, state2 + i, m * sizeof(T));
        if (use.s3) std::memcpy(n3, state3 + i, m * sizeof(T));
        apply_update(c, lr, wd, t, np, grad + i, n1, n2, n3, m);
        if (!all_finite(np, m) || (use.s1 && !all_finite(n1, m)) || (use.s2 && !all_finite(n2, m)) ||
            (use.s3 && !all_finite(n3, m)))
            return false;
        if (delta_sq)
            for (std::size_t j = 0; j < m; ++j) *delta_sq += double(np[j] - p[i + j]) * double(np[j] - p[i + j]);
    }
    return true;
}

}  // namespace bp
