#include "network/network.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>

#include "common/errors.hpp"
#include "common/rng.hpp"
#include "layers/dense.hpp"
#include "layers/initializers.hpp"
#include "losses/losses.hpp"

namespace bp {

template <typename T>
Network<T>::Network(std::size_t input_dim, std::vector<DenseSpec> layers, uint64_t seed)
    : input_dim_(input_dim), layers_(std::move(layers)), seed_(seed) {
    require(input_dim_ >= 1, "input_dim", "a positive integer", std::to_string(input_dim_));
    require(!layers_.empty(), "layers", "at least one Dense layer", "none");
    ArenaLayout<T> layout;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        require(layers_[l].units >= 1, "units of layer " + std::to_string(l), "a positive integer",
                std::to_string(layers_[l].units));
        require(layers_[l].act.kind != Act::Softmax || l + 1 == layers_.size(),
                "activation of layer " + std::to_string(l), "softmax only on the output layer",
                "softmax on a hidden layer");
        w_off_.push_back(layout.add(fan_in(l) * fan_out(l)));
        b_off_.push_back(layers_[l].use_bias ? layout.add(fan_out(l)) : 0);
    }
    params_.resize(layout.total());
    grads_.resize(layout.total());
    momentum_.resize(layout.total());
}

template <typename T>
void Network<T>::init_layer(std::size_t l, Init init) {
    Pcg32 rng(seed_, rng_stream(RngPurpose::Init, 0, l));
    init_weights(W(l), fan_in(l), fan_out(l), init, rng);
    if (T* bias = b(l)) std::fill(bias, bias + fan_out(l), T(0));
}

template <typename T>
void Network<T>::set_loss(Loss loss) {
    const Act out = layers_.back().act.kind;
    const Act needed = loss_required_activation(loss);
    if (loss_is_fused(loss) && out != needed)
        throw ValueError(std::string("loss: ") + kLossNames[std::size_t(loss)] +
                         " expected an output layer with activation '" + kActNames[std::size_t(needed)] +
                         "', got '" + kActNames[std::size_t(out)] + "'");
    loss_ = loss;
}

template <typename T>
void Network<T>::ensure_capacity(std::size_t rows) {
    if (rows <= capacity_) return;
    ArenaLayout<T> layout;
    z_off_.clear();
    a_off_.clear();
    std::size_t widest = input_dim_;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        z_off_.push_back(layout.add(rows * fan_out(l)));
        a_off_.push_back(layout.add(rows * fan_out(l)));
        widest = std::max(widest, fan_out(l));
    }
    acts_.resize(layout.total());
    delta_a_.resize(rows * widest);
    delta_b_.resize(rows * widest);
    xbatch_.resize(rows * input_dim_);
    ybatch_.resize(rows * output_dim());
    capacity_ = rows;
}

// Forward pass of a batch X (B, input_dim): Z_l = A_{l-1} W_l + b_l, A_l = f_l(Z_l).
template <typename T>
void Network<T>::forward(const T* X, std::size_t B, bool training) {
    const T* a_prev = X;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        T* z = acts_.data() + z_off_[l];
        T* a = acts_.data() + a_off_[l];
        dense_forward(z, a_prev, W(l), b(l), B, fan_in(l), fan_out(l));
        const Activation& act = layers_[l].act;
        if (training && act.kind == Act::NoisyRelu) {  // Z += sigma · N(0, 1), row-major
            Pcg32 rng(seed_, rng_stream(RngPurpose::Noise, step_counter, l));
            for (std::size_t i = 0; i < B * fan_out(l); ++i)
                z[i] += static_cast<T>(act.sigma * rng.normal());
        }
        activation_forward(act, a, z, B, fan_out(l));
        a_prev = a;
    }
    last_batch_ = B;
}

// Backward pass after forward(X): accumulates dW, db of every layer; returns the loss.
template <typename T>
double Network<T>::backward(const T* X, const T* Y, std::size_t B) {
    const std::size_t L = layers_.size();
    T* delta = delta_a_.data();       // dL/dZ of the layer being processed
    T* delta_prev = delta_b_.data();  // dL/dA, then dL/dZ, of the layer below
    const double loss = loss_forward_backward(loss_, delta, Z(L - 1), A(L - 1), Y, B, output_dim());
    if (!loss_is_fused(loss_))  // delta holds dL/dŶ: through the output activation
        activation_backward(layers_[L - 1].act, delta, delta, Z(L - 1), A(L - 1), B, output_dim());
    for (std::size_t l = L; l-- > 0;) {
        const T* a_prev = l == 0 ? X : A(l - 1);
        dense_backward(l == 0 ? nullptr : delta_prev, dW(l), db(l), delta, a_prev, W(l), B, fan_in(l),
                       fan_out(l));
        if (l > 0) {
            activation_backward(layers_[l - 1].act, delta_prev, delta_prev, Z(l - 1), A(l - 1), B, fan_in(l));
            std::swap(delta, delta_prev);
        }
    }
    return loss;
}

template <typename T>
double Network<T>::layer_grad_norm(std::size_t l) {
    double s = 0;
    const T* g = dW(l);
    for (std::size_t i = 0; i < fan_in(l) * fan_out(l); ++i) s += double(g[i]) * double(g[i]);
    if (const T* gb = db(l))
        for (std::size_t i = 0; i < fan_out(l); ++i) s += double(gb[i]) * double(gb[i]);
    return std::sqrt(s);
}

// Inference in chunks, so memory stays bounded for any n.
constexpr std::size_t kInferenceChunk = 1024;

template <typename T>
void Network<T>::predict(T* out, const T* X, std::size_t n) {
    const std::size_t K = output_dim();
    for (std::size_t start = 0; start < n; start += kInferenceChunk) {
        const std::size_t B = std::min(kInferenceChunk, n - start);
        ensure_capacity(B);
        forward(X + start * input_dim_, B, false);
        std::memcpy(out + start * K, A(layers_.size() - 1), B * K * sizeof(T));
    }
}

template <typename T>
double Network<T>::evaluate(const T* X, const T* Y, std::size_t n) {
    const std::size_t K = output_dim();
    double total = 0;
    for (std::size_t start = 0; start < n; start += kInferenceChunk) {
        const std::size_t B = std::min(kInferenceChunk, n - start);
        ensure_capacity(B);
        forward(X + start * input_dim_, B, false);
        const std::size_t L = layers_.size();
        total += loss_forward_backward<T>(loss_, nullptr, Z(L - 1), A(L - 1), Y + start * K, B, K) * double(B);
    }
    return total / double(n);
}

template <typename T>
double Network<T>::loss_and_gradients(const T* X, const T* Y, std::size_t n, bool training) {
    ensure_capacity(n);
    zero_grads();
    forward(X, n, training);
    return backward(X, Y, n);
}

template <typename T>
double Network<T>::train_step(const T* X, const T* Y, std::size_t n) {
    const double loss = loss_and_gradients(X, Y, n, true);
    update();
    ++step_counter;
    return loss;
}

template <typename T>
EpochStats Network<T>::fit_epoch(const T* X, const T* Y, std::size_t n, std::size_t batch_size,
                                 bool shuffle) {
    require(n >= 1 && n < (std::size_t(1) << 32), "X", "between 1 and 2^32 - 1 samples", std::to_string(n));
    require(batch_size >= 1, "batch_size", "a positive integer", std::to_string(batch_size));
    const std::size_t D = input_dim_, K = output_dim(), bs = std::min(batch_size, n);
    ensure_capacity(bs);

    order_.resize(n);
    std::iota(order_.begin(), order_.end(), std::size_t(0));
    if (shuffle) {  // Fisher-Yates from the epoch's own stream
        Pcg32 rng(seed_, rng_stream(RngPurpose::Shuffle, epoch_counter, 0));
        for (std::size_t i = n - 1; i > 0; --i) std::swap(order_[i], order_[rng.below(uint32_t(i + 1))]);
    }

    EpochStats stats;
    stats.grad_norm.assign(layers_.size(), 0.0);
    for (std::size_t start = 0; start < n; start += bs) {
        const std::size_t B = std::min(bs, n - start);
        const T* xb = X + start * D;
        const T* yb = Y + start * K;
        if (shuffle) {  // gather the batch's rows
            for (std::size_t r = 0; r < B; ++r) {
                const std::size_t src = order_[start + r];
                std::memcpy(xbatch_.data() + r * D, X + src * D, D * sizeof(T));
                std::memcpy(ybatch_.data() + r * K, Y + src * K, K * sizeof(T));
            }
            xb = xbatch_.data();
            yb = ybatch_.data();
        }
        zero_grads();
        forward(xb, B, true);
        stats.loss += backward(xb, yb, B) * double(B);
        for (std::size_t l = 0; l < layers_.size(); ++l) stats.grad_norm[l] += layer_grad_norm(l);
        update();
        ++step_counter;
        ++stats.steps;
    }
    stats.loss /= double(n);
    for (double& g : stats.grad_norm) g /= double(stats.steps);
    ++epoch_counter;
    return stats;
}

template class Network<float>;
template class Network<double>;

}  // namespace bp
