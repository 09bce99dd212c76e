// The explainer's recording as its own pass: backward_recorded() is backward()
// without the fused epilogues, keeping every intermediate of the chain rule per
// layer (see Network::Recorded): dA, f'(Z), dZ = δ, dIn = δ Wᵀ and, for a layer
// with input normalisation, dNorm = dL/dN and dNormIn (its μ, σ², x̂ are in the forward's
// views: norm_stat, norm_xhat). It computes
// the same gradients from the same pieces; only loss_and_gradients with
// set_recording(true) runs it, so the hot backward has no recording branch.
#include <algorithm>
#include <cstring>
#include <limits>

#include "losses/losses.hpp"
#include "network/network.hpp"

namespace bp {

template <typename T>
void Network<T>::record(std::size_t l, Recorded what, const T* src, std::size_t n) {
    T* dst = record_.data() + rec_off_[kRecorded * l + std::size_t(what)];
    if (src)
        std::memcpy(dst, src, n * sizeof(T));
    else
        std::fill(dst, dst + n, std::numeric_limits<T>::quiet_NaN());
}

template <typename T>
double Network<T>::backward_recorded(const T* X, const T* Y, std::size_t B, const T* weights) {
    const std::size_t L = layers_.size();
    ArenaLayout<T> layout;  // one view per (layer, quantity), B rows each
    rec_off_.clear();
    for (std::size_t l = 0; l < L; ++l) {
        rec_off_.push_back(layout.add(B * fan_out(l)));  // dA
        rec_off_.push_back(layout.add(B * fan_out(l)));  // fprime
        rec_off_.push_back(layout.add(B * fan_out(l)));  // dZ
        rec_off_.push_back(layout.add(B * fan_in(l)));   // dIn
        rec_off_.push_back(layout.add(has_norm(l) ? B * fan_in(l) : 0));  // dNorm
        rec_off_.push_back(layout.add(has_norm(l) ? B * fan_in(l) : 0));  // dNormIn
    }
    record_.resize(layout.total());
    rec_batch_ = B;
    for (std::size_t l = 0; l < L; ++l) {  // f'(Z): the backward of dA = 1
        const std::size_t n = B * fan_out(l);
        if (layers_[l].act.kind == Act::Softmax) {
            record(l, Recorded::fprime, nullptr, n);
            continue;
        }
        T* fp = record_.data() + rec_off_[kRecorded * l + std::size_t(Recorded::fprime)];
        std::fill(fp, fp + n, T(1));
        activation_backward_of(l, fp, B);
    }

    T* delta = delta_a_.data();       // dL/dZ of the layer being processed
    T* delta_prev = delta_b_.data();  // dL/dA, then dL/dZ, of the layer below
    const double loss = output_gradient(delta, Y, B, weights);
    const bool fused = loss_is_fused(loss_);
    record(L - 1, Recorded::dA, fused ? nullptr : delta, B * output_dim());
    if (!fused) activation_backward_of(L - 1, delta, B);
    for (std::size_t l = L; l-- > 0;) {
        const std::size_t in = fan_in(l);
        record(l, Recorded::dZ, delta, B * fan_out(l));
        dense_backward_of(l, delta_prev, delta, X, B);
        record(l, Recorded::dIn, delta_prev, B * in);
        dropout_backward_of(l, delta_prev, B);
        if (has_norm(l)) {
            record(l, Recorded::dNorm, delta_prev, B * in);
            norm_backward_of(l, delta_prev, B, norm_input_grad(l));
            record(l, Recorded::dNormIn, delta_prev, B * in);
        }
        if (l == 0) break;
        record(l - 1, Recorded::dA, delta_prev, B * in);
        activation_backward_of(l - 1, delta_prev, B);
        std::swap(delta, delta_prev);
    }
    return loss;
}

#define BP_RECORDING(T)                                                                  \
    template void Network<T>::record(std::size_t, Recorded, const T*, std::size_t);      \
    template double Network<T>::backward_recorded(const T*, const T*, std::size_t, const T*);
BP_RECORDING(float)
BP_RECORDING(double)

}  // namespace bp
