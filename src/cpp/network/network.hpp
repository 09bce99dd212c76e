// A sequential network of dense layers and its training loop.
//
// Memory, one allocation per family (llm.c style), each carved into per-layer
// views by a size table:
//   params_   W0 b0 W1 b1 ...          (the parameter arena; W is (fan_in, fan_out))
//   grads_    dW0 db0 dW1 db1 ...      (same layout as params_)
//   momentum_ one buffer per parameter (same layout; SGD with momentum)
//   acts_     Z0 A0 Z1 A1 ...          (batch-major activations, `capacity_` rows)
//
// Data flows: forward() fills Z and A of every layer; backward() turns the
// loss gradient into dW, db layer by layer from the last; update() moves the
// whole parameter arena at once. train_step() and fit_epoch() are those three
// in a loop, with no allocation per step once the buffers have grown.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "activations/activations.hpp"
#include "common/enums.hpp"
#include "memory/arena.hpp"
#include "optimizers/sgd.hpp"

namespace bp {

struct DenseSpec {
    std::size_t units = 1;
    Activation act;
    bool use_bias = true;
};

struct EpochStats {
    double loss = 0;                 // sample-weighted mean of the batch losses
    std::vector<double> grad_norm;   // per layer: mean over steps of ‖(dW, db)‖₂
    std::size_t steps = 0;
};

template <typename T>
class Network {
public:
    Network(std::size_t input_dim, std::vector<DenseSpec> layers, uint64_t seed);

    // --- structure and parameters -------------------------------------------
    std::size_t input_dim() const { return input_dim_; }
    std::size_t output_dim() const { return layers_.back().units; }
    std::size_t num_layers() const { return layers_.size(); }
    std::size_t fan_in(std::size_t l) const { return l == 0 ? input_dim_ : layers_[l - 1].units; }
    std::size_t fan_out(std::size_t l) const { return layers_[l].units; }
    bool has_bias(std::size_t l) const { return layers_[l].use_bias; }
    uint64_t seed() const { return seed_; }

    T* W(std::size_t l) { return params_.data() + w_off_[l]; }
    T* b(std::size_t l) { return has_bias(l) ? params_.data() + b_off_[l] : nullptr; }
    T* dW(std::size_t l) { return grads_.data() + w_off_[l]; }
    T* db(std::size_t l) { return has_bias(l) ? grads_.data() + b_off_[l] : nullptr; }
    T* params() { return params_.data(); }
    T* grads() { return grads_.data(); }
    T* momentum() { return momentum_.data(); }
    std::size_t arena_size() const { return params_.size(); }
    std::size_t w_offset(std::size_t l) const { return w_off_[l]; }
    std::size_t b_offset(std::size_t l) const { return b_off_[l]; }

    // Draws layer l's W from the model's RNG, stream (Init, 0, l); zeroes b.
    void init_layer(std::size_t l, Init init);

    // --- training configuration ----------------------------------------------
    void set_loss(Loss loss);  // checks fused losses against the output activation
    Loss loss() const { return loss_; }
    void set_sgd(const SgdConfig& c) { sgd_ = c; }
    const SgdConfig& sgd() const { return sgd_; }
    void reset_optimizer_state() { momentum_.zero(); }

    uint64_t epoch_counter = 0;  // drives the shuffle stream
    uint64_t step_counter = 0;   // drives noise (and, later, dropout) streams

    // --- computation (X: n × input_dim, Y: n × output_dim, row-major) ---------
    void predict(T* out, const T* X, std::size_t n);
    double evaluate(const T* X, const T* Y, std::size_t n);
    // Loss of the whole (X, Y) as one batch; gradients left in grads().
    double loss_and_gradients(const T* X, const T* Y, std::size_t n, bool training);
    // One update on (X, Y) as one batch; returns the loss before the update.
    double train_step(const T* X, const T* Y, std::size_t n);
    // One epoch of mini-batch SGD over (X, Y).
    EpochStats fit_epoch(const T* X, const T* Y, std::size_t n, std::size_t batch_size, bool shuffle);

    // Activations of the last forward pass (rows = its batch size).
    const T* Z(std::size_t l) const { return acts_.data() + z_off_[l]; }
    const T* A(std::size_t l) const { return acts_.data() + a_off_[l]; }
    std::size_t last_batch() const { return last_batch_; }

    // Serialises the public methods of one network between threads.
    std::mutex& mutex() { return mutex_; }

private:
    void ensure_capacity(std::size_t rows);
    void zero_grads() { grads_.zero(); }
    void forward(const T* X, std::size_t B, bool training);
    double backward(const T* X, const T* Y, std::size_t B);  // returns the loss
    void update() { sgd_update(params_.data(), grads_.data(), momentum_.data(), params_.size(), sgd_); }
    double layer_grad_norm(std::size_t l);

    std::size_t input_dim_;
    std::vector<DenseSpec> layers_;
    uint64_t seed_;
    Loss loss_ = Loss::Mse;
    SgdConfig sgd_;

    std::vector<std::size_t> w_off_, b_off_;  // views into params_ / grads_ / momentum_
    AlignedBuffer<T> params_, grads_, momentum_;

    std::size_t capacity_ = 0, last_batch_ = 0;
    std::vector<std::size_t> z_off_, a_off_;  // views into acts_
    AlignedBuffer<T> acts_, delta_a_, delta_b_, xbatch_, ybatch_;
    std::vector<std::size_t> order_;
    std::mutex mutex_;
};

}  // namespace bp
