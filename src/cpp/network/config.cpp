// A network's training configuration, each setting validated where it is set:
// the loss (against the output activation), the optimiser, the keep
// probabilities, and the reset of the optimiser's state.
#include <algorithm>
#include <cmath>
#include <string>

#include "common/errors.hpp"
#include "losses/losses.hpp"
#include "network/network.hpp"

namespace bp {

template <typename T>
void Network<T>::set_loss(Loss loss) {
    check_loss_activation(loss, layers_.back().act.kind);
    loss_ = loss;
}

template <typename T>
void Network<T>::set_optimizer(const OptimizerConfig& c) {
    auto nonneg = [](double v, const char* name) {
        require(std::isfinite(v) && v >= 0, name, "a finite number >= 0", std::to_string(v));
    };
    nonneg(c.lr, "lr");
    nonneg(c.weight_decay, "weight_decay");
    nonneg(c.clip_norm, "clip_norm");
    nonneg(c.momentum, "momentum");
    nonneg(c.eps, "eps");
    nonneg(c.lr_decay, "lr_decay");
    nonneg(c.initial_accumulator_value, "initial_accumulator_value");
    require(c.beta1 >= 0 && c.beta1 < 1, "beta1", "a number in [0, 1)", std::to_string(c.beta1));
    require(c.beta2 >= 0 && c.beta2 < 1, "beta2", "a number in [0, 1)", std::to_string(c.beta2));
    require(c.alpha >= 0 && c.alpha <= 1, "alpha", "a number in [0, 1]", std::to_string(c.alpha));
    opt_ = c;
}

template <typename T>
void Network<T>::reset_optimizer_state() {
    // Only the buffers this rule uses: the others stay untouched (no resident memory).
    const StateUse use = state_used(opt_);
    if (use.s1) state1_.zero();
    if (use.s2) state2_.zero();
    if (use.s3) state3_.zero();
    if (opt_.kind == OptKind::Adagrad)
        std::fill(state1_.data(), state1_.data() + state1_.size(), T(opt_.initial_accumulator_value));
    optimizer_step = 0;
}

template <typename T>
void Network<T>::set_keep_prob(std::size_t l, double keep_prob) {
    require(l < layers_.size() && has_dropout(l), "layer", "a dense layer preceded by dropout", std::to_string(l));
    check_keep_prob(keep_prob, "layer " + std::to_string(layers_[l].dropout.index));
    layers_[l].dropout.keep_prob = keep_prob;
}

#define BP_CONFIG(T)                                                      \
    template void Network<T>::set_loss(Loss);                             \
    template void Network<T>::set_optimizer(const OptimizerConfig&);      \
    template void Network<T>::reset_optimizer_state();                    \
    template void Network<T>::set_keep_prob(std::size_t, double);
BP_CONFIG(float)
BP_CONFIG(double)

}  // namespace bp
