// Gradient-flow diagnostics: per-layer gradient and weight norms, and unit
// activity (relu units that never fire, saturated sigmoid/tanh values) counted
// over the batches of an epoch or one batch (batch_health). A layer's parameters
// here include the γ, β of its input normalisation.
#include <cmath>

#include "kernels/reductions.hpp"
#include "network/network.hpp"

namespace bp {

template <typename T>
double Network<T>::layer_grad_norm(std::size_t l) {
    double s = sum_squares_chunked(dW(l), fan_in(l) * fan_out(l));
    if (const T* gb = db(l)) s += sum_squares_chunked(gb, fan_out(l));
    if (const T* gg = dgamma(l)) s += sum_squares_chunked(gg, fan_in(l)) + sum_squares_chunked(dbeta(l), fan_in(l));
    return std::sqrt(s);
}

template <typename T>
std::vector<double> Network<T>::grad_norms() {
    std::vector<double> out(layers_.size());
    for (std::size_t l = 0; l < layers_.size(); ++l) out[l] = layer_grad_norm(l);
    return out;
}

template <typename T>
bool Network<T>::grads_finite() {
    for (std::size_t l = 0; l < layers_.size(); ++l)
        if (!std::isfinite(layer_grad_norm(l))) return false;
    return true;
}

template <typename T>
double Network<T>::layer_weight_norm(std::size_t l, const T* params) {
    double s = sum_squares(params + w_off_[l], fan_in(l) * fan_out(l));
    if (has_bias(l)) s += sum_squares(params + b_off_[l], fan_out(l));
    if (has_affine(l)) s += sum_squares(params + g_off_[l], fan_in(l)) + sum_squares(params + be_off_[l], fan_in(l));
    return std::sqrt(s);
}

template <typename T>
void Network<T>::activity_reset() {
    alive_.assign(layers_.size(), {});
    saturated_.assign(layers_.size(), 0.0);
    seen_.assign(layers_.size(), 0.0);
    for (std::size_t l = 0; l < layers_.size(); ++l)
        if (relu_like(layers_[l].act.kind)) alive_[l].assign(fan_out(l), 0);
}

// After a forward pass of B rows: which relu units fired, how many sigmoid/tanh values saturated.
template <typename T>
void Network<T>::activity_accumulate(std::size_t B) {
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        const Act kind = layers_[l].act.kind;
        const std::size_t out = fan_out(l);
        if (relu_like(kind)) {
            const T* z = Z(l);
            uint8_t* alive = alive_[l].data();
            for (std::size_t r = 0; r < B; ++r)
                for (std::size_t j = 0; j < out; ++j) alive[j] |= z[r * out + j] > T(0);
        } else if (saturating(kind)) {
            const T* a = A(l);
            const T lo = saturation_low<T>(kind), hi = saturation_high<T>();
            std::size_t count = 0;
            for (std::size_t i = 0; i < B * out; ++i) count += (a[i] < lo) | (a[i] > hi);
            saturated_[l] += double(count);
            seen_[l] += double(B * out);
        }
    }
}

template <typename T>
void Network<T>::activity_fill(std::vector<LayerHealth>& health) const {
    if (alive_.size() != layers_.size()) return;  // no forward pass yet
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        if (!alive_[l].empty()) {
            std::size_t dead = 0;
            for (uint8_t a : alive_[l]) dead += !a;
            health[l].dead_fraction = double(dead) / double(alive_[l].size());
        }
        if (seen_[l] > 0) health[l].saturated_fraction = saturated_[l] / seen_[l];
    }
}

template <typename T>
std::vector<LayerHealth> Network<T>::batch_health() {
    std::vector<LayerHealth> health(layers_.size());
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        health[l].grad_norm = layer_grad_norm(l);
        health[l].weight_norm = layer_weight_norm(l, params_.data());
        health[l].nonfinite = !std::isfinite(health[l].grad_norm);
    }
    activity_fill(health);
    return health;
}

#define BP_DIAGNOSTICS(T)                                                                \
    template double Network<T>::layer_grad_norm(std::size_t);                            \
    template std::vector<double> Network<T>::grad_norms();                               \
    template bool Network<T>::grads_finite();                                            \
    template double Network<T>::layer_weight_norm(std::size_t, const T*);                \
    template void Network<T>::activity_reset();                                          \
    template void Network<T>::activity_accumulate(std::size_t);                          \
    template void Network<T>::activity_fill(std::vector<LayerHealth>&) const;            \
    template std::vector<LayerHealth> Network<T>::batch_health();
BP_DIAGNOSTICS(float)
BP_DIAGNOSTICS(double)

}  // namespace bp
