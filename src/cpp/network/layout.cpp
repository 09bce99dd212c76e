// A network's construction and memory: the layers checked, the size tables of
// the parameter arenas (fixed) and of the activation buffers (grown to the
// largest batch seen), and the initial weights.
#include <algorithm>
#include <cmath>
#include <string>

#include "common/errors.hpp"
#include "layers/initializers.hpp"
#include "network/network.hpp"

namespace bp {

template <typename T>
Network<T>::Network(std::size_t input_dim, std::vector<DenseSpec> layers, uint64_t seed)
    : input_dim_(input_dim), layers_(std::move(layers)), seed_(seed) {
    require(input_dim_ >= 1, "input_dim", "a positive integer", std::to_string(input_dim_));
    require(!layers_.empty(), "layers", "at least one Dense layer", "none");
    ArenaLayout<T> layout, running;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        const std::string name = "layer " + std::to_string(layers_[l].index);
        const NormSpec& nm = layers_[l].norm;
        g_off_.push_back(0);
        be_off_.push_back(0);
        rm_off_.push_back(0);
        rv_off_.push_back(0);
        if (nm.kind != NormKind::None) {
            const std::string what = (nm.kind == NormKind::Batch ? "BatchNorm layer " : "LayerNorm layer ") +
                                     std::to_string(nm.index);
            require(nm.eps > 0 && std::isfinite(nm.eps), "eps of " + what, "a finite number > 0",
                    std::to_string(nm.eps));
            require(nm.momentum >= 0 && nm.momentum <= 1, "momentum of " + what, "a number in [0, 1]",
                    std::to_string(nm.momentum));
            if (nm.affine) {
                g_off_[l] = layout.add(fan_in(l));
                be_off_[l] = layout.add(fan_in(l));
            }
            if (nm.kind == NormKind::Batch) {
                has_batchnorm_ = true;
                rm_off_[l] = running.add(fan_in(l));
                rv_off_[l] = running.add(fan_in(l));
            }
        }
        require(layers_[l].units >= 1, "units of " + name, "a positive integer", std::to_string(layers_[l].units));
        require(layers_[l].act.kind != Act::Softmax || l + 1 == layers_.size(), "activation of " + name,
                "softmax only on the output layer", "softmax on a hidden layer");
        if (layers_[l].dropout.enabled) {
            check_keep_prob(layers_[l].dropout.keep_prob, "the dropout before " + name);
            dropout_layers_.push_back(l);
        }
        w_off_.push_back(layout.add(fan_in(l), fan_out(l)));  // overflow-checked
        b_off_.push_back(layers_[l].use_bias ? layout.add(fan_out(l)) : 0);
    }
    params_.resize(layout.total());
    grads_.resize(layout.total());
    state1_.resize(layout.total());
    state2_.resize(layout.total());
    state3_.resize(layout.total());
    running_.resize(running.total());
    running_before_.resize(running.total());
}

template <typename T>
void Network<T>::init_layer(std::size_t l, Init init) {
    Pcg32 rng(seed_, rng_stream(RngPurpose::Init, 0, layers_[l].index));
    init_weights(W(l), fan_in(l), fan_out(l), init, rng);
    if (T* bias = b(l)) std::fill(bias, bias + fan_out(l), T(0));
    if (T* g = gamma(l)) {
        std::fill(g, g + fan_in(l), T(1));
        std::fill(beta(l), beta(l) + fan_in(l), T(0));
    }
    if (norm(l).kind == NormKind::Batch) {
        std::fill(running_mean(l), running_mean(l) + fan_in(l), T(0));
        std::fill(running_var(l), running_var(l) + fan_in(l), T(1));
    }
}

template <typename T>
void Network<T>::ensure_capacity(std::size_t rows) {
    if (rows <= capacity_) return;
    // A batch too large to allocate throws std::bad_alloc (MemoryError) from here; the
    // buffers may then be released, so forget the old capacity and the last batch first:
    // the next call reallocates instead of using stale views.
    capacity_ = 0;
    last_batch_ = 0;
    ArenaLayout<T> layout;
    d_off_.clear();
    m_off_.clear();
    z_off_.clear();
    a_off_.clear();
    n_off_.clear();
    xh_off_.clear();
    s_off_.clear();
    std::size_t widest = input_dim_;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        const std::size_t normed = has_norm(l) ? checked_mul(rows, fan_in(l)) : 0;
        n_off_.push_back(layout.add(normed));
        xh_off_.push_back(layout.add(normed));
        // BatchNorm: μ, σ², 1/√(σ²+ε) and the backward's two sums per feature; LayerNorm: μ, σ², 1/√(σ²+ε) per row
        s_off_.push_back(layout.add(!has_norm(l) ? 0 : norm(l).kind == NormKind::Batch ? 5 * fan_in(l)
                                                                                    : checked_mul(3, rows)));
        const std::size_t drop = has_dropout(l) ? checked_mul(rows, fan_in(l)) : 0;
        d_off_.push_back(layout.add(drop));
        m_off_.push_back(layout.add(drop));
        z_off_.push_back(layout.add(rows, fan_out(l)));
        a_off_.push_back(layout.add(rows, fan_out(l)));
        widest = std::max(widest, fan_out(l));
    }
    acts_.resize(layout.total());
    delta_a_.resize(checked_mul(rows, widest));
    delta_b_.resize(checked_mul(rows, widest));
    xbatch_.resize(checked_mul(rows, input_dim_));
    ybatch_.resize(checked_mul(rows, output_dim()));
    capacity_ = rows;
}

template <typename T>
const T* Network<T>::layer_input(std::size_t l, const T* X) const {
    if (has_dropout(l)) return acts_.data() + d_off_[l];
    return dropout_input(l, X);
}

#define BP_LAYOUT(T)                                                                    \
    template Network<T>::Network(std::size_t, std::vector<DenseSpec>, uint64_t);        \
    template void Network<T>::init_layer(std::size_t, Init);                            \
    template void Network<T>::ensure_capacity(std::size_t);                             \
    template const T* Network<T>::layer_input(std::size_t, const T*) const;
BP_LAYOUT(float)
BP_LAYOUT(double)

}  // namespace bp
