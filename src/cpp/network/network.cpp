#include "network/network.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>

#include "common/errors.hpp"
#include "kernels/reductions.hpp"
#include "common/rng.hpp"
#include "layers/dense.hpp"
#include "layers/epilogues.hpp"
#include "layers/initializers.hpp"
#include "losses/losses.hpp"

namespace bp {

namespace {
void check_keep_prob(double p, const std::string& where) {
    require(p > 0.0 && p <= 1.0, "keep_prob of " + where,
            "a probability of keeping a unit in (0, 1] (drop probability rate = 1 - keep_prob)",
            std::to_string(p));
}
}  // namespace

template <typename T>
Network<T>::Network(std::size_t input_dim, std::vector<DenseSpec> layers, uint64_t seed)
    : input_dim_(input_dim), layers_(std::move(layers)), seed_(seed) {
    require(input_dim_ >= 1, "input_dim", "a positive integer", std::to_string(input_dim_));
    require(!layers_.empty(), "layers", "at least one Dense layer", "none");
    ArenaLayout<T> layout;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        const std::string name = "layer " + std::to_string(layers_[l].index);
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
}

template <typename T>
void Network<T>::init_layer(std::size_t l, Init init) {
    Pcg32 rng(seed_, rng_stream(RngPurpose::Init, 0, layers_[l].index));
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
    const auto [use1, use2] = state_used(opt_);
    if (use1) state1_.zero();
    if (use2) state2_.zero();
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
    std::size_t widest = input_dim_;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
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
    return l == 0 ? X : A(l - 1);
}

// Forward pass of a batch X (B, input_dim), layer by layer:
//   D_l = dropout(A_{l-1})   (when the layer has input dropout)
//   Z_l = D_l W_l + b_l,  A_l = f_l(Z_l)
template <typename T>
void Network<T>::forward(const T* X, std::size_t B, bool training, const std::vector<const T*>* masks) {
    const T* a_prev = X;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        const std::size_t in = fan_in(l), out = fan_out(l);
        if (has_dropout(l)) {
            const DropoutSpec& drop = layers_[l].dropout;
            T* D = acts_.data() + d_off_[l];
            T* M = acts_.data() + m_off_[l];
            if (training) {
                if (masks && (*masks)[l]) {
                    std::memcpy(M, (*masks)[l], B * in * sizeof(T));
                } else {
                    Pcg32 rng = dropout_rng(l);
                    dropout_mask(M, B, in, drop.keep_prob, drop.per_batch, rng);
                }
                dropout_forward(D, a_prev, M, B * in, T(drop.train_scale()));
            } else {
                dropout_forward(D, a_prev, static_cast<const T*>(nullptr), B * in, T(drop.inference_scale()));
            }
        }
        T* z = acts_.data() + z_off_[l];
        T* a = acts_.data() + a_off_[l];
        const Activation& act = layers_[l].act;
        const bool noisy = training && act.kind == Act::NoisyRelu;
        if (act.kind != Act::Softmax && !noisy && !recording_) {  // A = f(Z) fused into the product
            ActivationEpilogue<T> fused{&act, a, z, out};
            const GemmEpilogue epi = fused.epilogue();
            dense_forward(z, layer_input(l, X), W(l), b(l), B, in, out, &epi);
        } else {
            dense_forward(z, layer_input(l, X), W(l), b(l), B, in, out);
            if (noisy) {  // Z += sigma · N(0, 1), row-major
                Pcg32 rng(seed_, rng_stream(RngPurpose::Noise, step_counter, layers_[l].index));
                for (std::size_t i = 0; i < B * out; ++i) z[i] += static_cast<T>(act.sigma * rng.normal());
            }
            activation_forward(act, a, z, B, out);
        }
        a_prev = a;
    }
    last_batch_ = B;
    last_training_ = training;
}

template <typename T>
Pcg32 Network<T>::dropout_rng(std::size_t l) const {
    return Pcg32(seed_, rng_stream(RngPurpose::Dropout, step_counter, layers_[l].dropout.index));
}

template <typename T>
void Network<T>::dropout_mask_rows(std::size_t l, const int64_t* rows, std::size_t R, T* M) const {
    const DropoutSpec& drop = layers_[l].dropout;
    bp::dropout_mask_rows(M, rows, R, fan_in(l), drop.keep_prob, drop.per_batch, dropout_rng(l));
}

template <typename T>
void Network<T>::record(std::size_t l, Recorded what, const T* src, std::size_t n) {
    T* dst = record_.data() + rec_off_[4 * l + std::size_t(what)];
    if (src)
        std::memcpy(dst, src, n * sizeof(T));
    else
        std::fill(dst, dst + n, std::numeric_limits<T>::quiet_NaN());
}

// Backward pass after forward(X): accumulates dW, db of every layer; returns the loss.
template <typename T>
double Network<T>::backward(const T* X, const T* Y, std::size_t B) {
    const std::size_t L = layers_.size();
    T* delta = delta_a_.data();       // dL/dZ of the layer being processed
    T* delta_prev = delta_b_.data();  // dL/dA, then dL/dZ, of the layer below
    if (recording_) {  // one view per (layer, quantity), B rows each
        ArenaLayout<T> layout;
        rec_off_.clear();
        for (std::size_t l = 0; l < L; ++l) {
            rec_off_.push_back(layout.add(B * fan_out(l)));  // dA
            rec_off_.push_back(layout.add(B * fan_out(l)));  // fprime
            rec_off_.push_back(layout.add(B * fan_out(l)));  // dZ
            rec_off_.push_back(layout.add(B * fan_in(l)));   // dIn
        }
        record_.resize(layout.total());
        rec_batch_ = B;
        for (std::size_t l = 0; l < L; ++l) {  // f'(Z): the backward of dA = 1
            T* fp = record_.data() + rec_off_[4 * l + 1];
            const std::size_t n = B * fan_out(l);
            if (layers_[l].act.kind == Act::Softmax) {
                record(l, Recorded::fprime, nullptr, n);
                continue;
            }
            std::fill(fp, fp + n, T(1));
            activation_backward(layers_[l].act, fp, fp, Z(l), A(l), B, fan_out(l));
        }
    }
    const double loss = loss_forward_backward(loss_, delta, Z(L - 1), A(L - 1), Y, B, output_dim());
    if (!loss_is_fused(loss_)) {  // delta holds dL/dŶ: through the output activation
        if (recording_) record(L - 1, Recorded::dA, delta, B * output_dim());
        activation_backward(layers_[L - 1].act, delta, delta, Z(L - 1), A(L - 1), B, output_dim());
    } else if (recording_) {
        record(L - 1, Recorded::dA, nullptr, B * output_dim());
    }
    for (std::size_t l = L; l-- > 0;) {
        const std::size_t in = fan_in(l);
        if (recording_) record(l, Recorded::dZ, delta, B * fan_out(l));
        const bool need_input_grad = l > 0 || recording_;
        // Below the first layer, dL/dD (the gradient at this layer's input) becomes dZ of
        // the layer below: through the dropout, then f'. Fused into the product unless
        // explain() records the intermediate values or the activation is a softmax.
        const Activation* below = l > 0 ? &layers_[l - 1].act : nullptr;
        const bool fuse = below && !recording_ && below->kind != Act::Softmax;
        if (fuse) {
            const DropoutSpec* drop = has_dropout(l) ? &layers_[l].dropout : nullptr;
            const bool masked = drop && last_training_;
            const double scale = !drop ? 1.0 : masked ? drop->train_scale() : drop->inference_scale();
            DeltaEpilogue<T> fused{below, delta_prev, masked ? mask(l) : nullptr, T(scale), Z(l - 1), A(l - 1), in};
            const GemmEpilogue epi = fused.epilogue();
            dense_backward(delta_prev, dW(l), db(l), delta, layer_input(l, X), W(l), B, in, fan_out(l), &epi);
            std::swap(delta, delta_prev);
            continue;
        }
        dense_backward(need_input_grad ? delta_prev : nullptr, dW(l), db(l), delta, layer_input(l, X), W(l), B,
                       in, fan_out(l));
        if (recording_) record(l, Recorded::dIn, delta_prev, B * in);
        if (l == 0) break;
        if (has_dropout(l)) {  // delta_prev = dL/dD: through the dropout to dL/dA
            const DropoutSpec& drop = layers_[l].dropout;
            dropout_backward(delta_prev, last_training_ ? mask(l) : nullptr, B * in,
                             T(last_training_ ? drop.train_scale() : drop.inference_scale()));
        }
        if (recording_) record(l - 1, Recorded::dA, delta_prev, B * in);
        activation_backward(layers_[l - 1].act, delta_prev, delta_prev, Z(l - 1), A(l - 1), B, in);
        std::swap(delta, delta_prev);
    }
    return loss;
}

template <typename T>
bool Network<T>::step(double lr, std::size_t rows, double* layer_delta_sq, double grad_max) {
    const std::size_t n = params_.size();
    T *p = params_.data(), *g = grads_.data(), *s1 = state1_.data(), *s2 = state2_.data();
    if (opt_.clip_norm > 0) clip_global_norm(g, n, opt_.clip_norm);  // only shrinks: grad_max stays a bound
    const double wd = step_weight_decay(opt_, rows);
    const uint64_t t = optimizer_step + 1;
    // The rule runs on the whole arena at once, or per layer on W and b apart when
    // biases do not decay or the update's size is measured per layer. f(offset, length,
    // decay, layer) is called for each segment.
    const bool whole = (opt_.decay_bias || wd == 0) && !layer_delta_sq;
    auto for_each_segment = [&](auto&& f) {
        if (whole) return f(0, n, wd, std::size_t(0));
        bool ok = true;
        for (std::size_t l = 0; l < layers_.size() && ok; ++l) {
            ok = f(w_off_[l], fan_in(l) * fan_out(l), wd, l);
            if (ok && has_bias(l)) ok = f(b_off_[l], fan_out(l), opt_.decay_bias ? wd : 0.0, l);
        }
        return ok;
    };
    // First the dry run: an update that would overflow (a huge lr, inf Adam moments)
    // is refused before anything changes; the model keeps its last finite state.
    // SGD skips it while its bounds prove the step finite.
    const bool proven = opt_.kind == OptKind::Sgd && grad_max >= 0 && !layer_delta_sq &&
                        sgd_bounds_.advance(opt_, lr, wd, grad_max, double(std::numeric_limits<T>::max()));
    if (!proven) {
        const bool finite = for_each_segment([&](std::size_t off, std::size_t len, double decay, std::size_t l) {
            return update_stays_finite(opt_, lr, decay, t, p + off, g + off, s1 + off, s2 + off, len,
                                       layer_delta_sq ? layer_delta_sq + l : nullptr);
        });
        if (!finite) return false;
        sgd_bounds_.valid = false;  // re-measured at the next epoch
    }
    for_each_segment([&](std::size_t off, std::size_t len, double decay, std::size_t) {
        apply_update_threaded(opt_, lr, decay, t, p + off, g + off, s1 + off, s2 + off, len);
        return true;
    });
    ++optimizer_step;
    ++step_counter;
    return true;
}

template <typename T>
bool Network<T>::apply_gradients(double lr, std::size_t rows, double* update_ratio) {
    if (!update_ratio) return step(lr, rows);
    const std::size_t L = layers_.size();
    std::vector<double> norm(L), delta_sq(L, 0.0);
    for (std::size_t l = 0; l < L; ++l) norm[l] = layer_weight_norm(l, params_.data());
    if (!step(lr, rows, delta_sq.data())) return false;
    for (std::size_t l = 0; l < L; ++l) update_ratio[l] = norm[l] > 0 ? std::sqrt(delta_sq[l]) / norm[l] : 0.0;
    return true;
}

template <typename T>
double Network<T>::layer_grad_norm(std::size_t l) {
    double s = sum_squares_chunked(dW(l), fan_in(l) * fan_out(l));
    if (const T* gb = db(l)) s += sum_squares_chunked(gb, fan_out(l));
    return std::sqrt(s);
}

template <typename T>
double Network<T>::layer_weight_norm(std::size_t l, const T* params) {
    double s = sum_squares(params + w_off_[l], fan_in(l) * fan_out(l));
    if (has_bias(l)) s += sum_squares(params + b_off_[l], fan_out(l));
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

// Inference in chunks, so memory stays bounded for any n: of the rows the
// workspace already holds (a training batch), or of 256, enough for the GEMMs'
// blocking while the activations of a wide network stay a few MiB.
constexpr std::size_t kInferenceChunk = 256;

template <typename T>
void Network<T>::predict(T* out, const T* X, std::size_t n) {
    const std::size_t K = output_dim(), chunk = std::max(kInferenceChunk, capacity_);
    for (std::size_t start = 0; start < n; start += chunk) {
        const std::size_t B = std::min(chunk, n - start);
        ensure_capacity(B);
        forward(X + start * input_dim_, B, false);
        std::memcpy(out + start * K, A(layers_.size() - 1), B * K * sizeof(T));
    }
}

template <typename T>
double Network<T>::evaluate(const T* X, const T* Y, std::size_t n) {
    const std::size_t K = output_dim(), L = layers_.size(), chunk = std::max(kInferenceChunk, capacity_);
    double total = 0;
    for (std::size_t start = 0; start < n; start += chunk) {
        const std::size_t B = std::min(chunk, n - start);
        ensure_capacity(B);
        forward(X + start * input_dim_, B, false);
        total += loss_forward_backward<T>(loss_, nullptr, Z(L - 1), A(L - 1), Y + start * K, B, K) * double(B);
    }
    return total / double(n);
}

template <typename T>
double Network<T>::loss_and_gradients(const T* X, const T* Y, std::size_t n, bool training,
                                      const std::vector<const T*>* masks) {
    ensure_capacity(n);
    zero_grads();
    forward(X, n, training, masks);
    activity_reset();
    activity_accumulate(n);
    return backward(X, Y, n);
}

template <typename T>
bool Network<T>::grads_finite() {
    for (std::size_t l = 0; l < layers_.size(); ++l)
        if (!std::isfinite(layer_grad_norm(l))) return false;
    return true;
}

template <typename T>
double Network<T>::train_step(const T* X, const T* Y, std::size_t n, double lr, bool* applied) {
    const double loss = loss_and_gradients(X, Y, n, true);
    const bool ok = std::isfinite(loss) && grads_finite() && step(lr, n);
    if (applied) *applied = ok;
    return loss;
}

template <typename T>
EpochStats Network<T>::fit_epoch(const T* X, const T* Y, std::size_t n, std::size_t batch_size, bool shuffle,
                                 StepSchedule schedule) {
    require(n >= 1 && n < (std::size_t(1) << 32), "X", "between 1 and 2^32 - 1 samples", std::to_string(n));
    require(batch_size >= 1, "batch_size", "a positive integer", std::to_string(batch_size));
    const std::size_t D = input_dim_, K = output_dim(), bs = std::min(batch_size, n);
    const std::size_t steps = (n + bs - 1) / bs, nd = dropout_layers_.size();
    // Check the schedules before touching anything, so a bad value leaves the model as it was.
    for (std::size_t s = 0; schedule.lr && s < steps; ++s)
        require(std::isfinite(schedule.lr[s]) && schedule.lr[s] >= 0, "lr schedule",
                "finite values >= 0", std::to_string(schedule.lr[s]));
    for (std::size_t i = 0; schedule.keep && i < steps * nd; ++i) check_keep_prob(schedule.keep[i], "the schedule");
    ensure_capacity(bs);

    order_.resize(n);
    std::iota(order_.begin(), order_.end(), std::size_t(0));
    if (shuffle) shuffle_order(order_.data(), n, seed_, epoch_counter);

    EpochStats stats;
    stats.n_dropout = nd;
    stats.grad_norm.assign(layers_.size(), 0.0);
    stats.health.assign(layers_.size(), LayerHealth{});
    // SGD: exact bounds for this epoch's steps (see SgdBounds), which spare the dry run.
    const bool track_bounds = opt_.kind == OptKind::Sgd;
    sgd_bounds_.valid = false;
    if (track_bounds) {  // ‖x‖₂ >= max |x|; a NaN or inf norm fails the bounds' check
        sgd_bounds_.valid = true;
        sgd_bounds_.p = std::sqrt(sum_squares_chunked(params_.data(), params_.size()));
        sgd_bounds_.v = opt_.momentum != 0.0 ? std::sqrt(sum_squares_chunked(state1_.data(), state1_.size())) : 0.0;
    }
    std::vector<double> last_ratio(layers_.size(), 0.0);  // the update-to-weight ratio of the last step
    // Batch size 1 on a tiny network: the fused per-sample step (sample_step.cpp), all
    // but the last step, which also measures the update-to-weight ratio.
    const bool per_sample = per_sample_path && bs == 1 && sample_step_eligible();
    activity_reset();
    if (per_sample) sample_plan();
    bool loss_nonfinite = false;
    using Clock = std::chrono::steady_clock;
    auto last_poll = Clock::now();
    std::size_t poll_mask = 0;
    while (poll_mask < 63 && (poll_mask + 1) * 2 * bs * params_.size() <= (std::size_t(1) << 20))
        poll_mask = poll_mask * 2 + 1;
    stats.lr.reserve(steps);
    stats.keep.reserve(steps * nd);
    // Poll for a stop request about every 20 ms, after step s. Reading the clock costs
    // more than a step of a tiny network, so it is read every `poll_mask + 1` steps:
    // about a million multiply-adds of work apart, every step for large layers.
    auto stop_requested = [&](std::size_t s) {
        if (!schedule.should_stop || s + 1 >= steps || (s & poll_mask) != poll_mask ||
            Clock::now() - last_poll < std::chrono::milliseconds(20))
            return false;
        last_poll = Clock::now();
        return stats.interrupted = schedule.should_stop();
    };
    for (std::size_t s = 0; s < steps; ++s) {
        if (per_sample && s + 1 < steps) {
            // Fused steps up to the next poll point (the epoch's last step is the general
            // path's); a step they refuse falls through to the general path below.
            const std::size_t end = std::min(steps - 1, (s | poll_mask) + 1);
            const std::size_t next = sample_steps(X, Y, shuffle ? order_.data() : nullptr, s, end, schedule.lr, stats);
            if (next == end) {  // all made: step end - 1 was the run's last
                s = end - 1;
                if (stop_requested(s)) break;
                continue;
            }
            s = next;  // refused: the general path redoes it
        }
        const std::size_t start = s * bs, B = std::min(bs, n - start);
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
        for (std::size_t k = 0; k < nd; ++k) {
            DropoutSpec& drop = layers_[dropout_layers_[k]].dropout;
            if (schedule.keep) drop.keep_prob = schedule.keep[s * nd + k];
            stats.keep.push_back(drop.keep_prob);
        }
        const double lr = schedule.lr ? schedule.lr[s] : opt_.lr;
        stats.lr.push_back(lr);

        zero_grads();
        forward(xb, B, true);
        activity_accumulate(B);
        const double loss = backward(xb, yb, B);
        bool finite = std::isfinite(loss);
        loss_nonfinite |= !finite;
        double grad_max = 0;  // a bound on max |grad| (each layer's norm bounds its values), for SgdBounds
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            const double g = layer_grad_norm(l);
            grad_max = std::max(grad_max, g);
            stats.grad_norm[l] += g;
            stats.health[l].nonfinite |= !std::isfinite(g);
            finite &= std::isfinite(g);
        }
        // Divergence: a NaN/inf loss or gradient, or an update that would overflow (step()
        // refuses it). The model keeps the weights of the last finite step.
        const bool last = s + 1 == steps;
        if (!finite || !(last ? apply_gradients(lr, B, last_ratio.data())
                              : step(lr, B, nullptr, track_bounds ? grad_max : -1.0))) {
            stats.diverged = true;
            stats.diverged_step = s;
            stats.diverged_loss = loss;
            stats.lr.pop_back();
            stats.keep.resize(stats.keep.size() - nd);
            break;
        }
        stats.loss += loss * double(B);
        ++stats.steps;
        if (stop_requested(s)) break;
    }
    if (per_sample) sample_flush();
    if (stats.diverged || stats.interrupted) return stats;  // an unfinished epoch: no summary
    stats.loss /= double(n);
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        LayerHealth& h = stats.health[l];
        stats.grad_norm[l] /= double(stats.steps);
        h.grad_norm = stats.grad_norm[l];
        h.weight_norm = layer_weight_norm(l, params_.data());
        h.update_ratio = last_ratio[l];
        h.nonfinite |= loss_nonfinite || !std::isfinite(h.weight_norm);
    }
    activity_fill(stats.health);
    ++epoch_counter;
    return stats;
}

template class Network<float>;
template class Network<double>;

}  // namespace bp
