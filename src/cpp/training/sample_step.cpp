// The per-sample fast path of fit_epoch: one whole SGD step on one row of a
// tiny network (the textbook 3 → 4 → 4 → 1 and its kin), in one function.
//
// A step of such a network is a chain of products of a few values each, so
// what costs is not arithmetic but the general path's machinery around it:
// zeroing the whole gradient arena, epilogue objects, per-step bookkeeping, the
// update's dry run. Here the same step runs for B = 1 in the same memory
// (acts_, grads_) through the same layer functions (dense_forward,
// dense_backward, activation_*, loss_forward_backward, layer_grad_norm, the
// table's sgd), so its results are bitwise those of Network::forward/backward/
// step; the tests check fit with and without this path bit for bit.
//
// For float32 networks of layers at most 8 wide with the mean squared error,
// the forward and backward pass is the kernel table's tiny-network step
// (ukr::TinyStepFn: on AVX2, each layer's row in one register, bitwise the same
// results), which with plain SGD makes the update too while SgdBounds proves it
// finite (ukr::TinyUpdate); the portable pass below runs everything else
// (float64, wider layers, other losses, the generic table).
//
// It commits nothing until the step is known good. When the loss or a
// gradient is NaN/inf, or the update would overflow, it returns false with the
// parameters, optimiser state, counters and saturation counts untouched (the
// relu units seen firing stay marked: the general path marks the same), and
// fit_epoch redoes the step on the general path, which refuses it there in
// the usual way (the divergence report).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "layers/dense.hpp"
#include "losses/losses.hpp"
#include "network/network.hpp"

namespace bp {

template <typename T>
bool Network<T>::sample_step_eligible() const {
    if (loss_ == Loss::CategoricalCrossentropy || recording_) return false;
    if (opt_.kind != OptKind::Sgd || opt_.clip_norm > 0 || !(opt_.decay_bias || opt_.weight_decay == 0))
        return false;
    if (layers_.size() > kSampleMaxLayers || input_dim_ > kSampleMaxWidth) return false;
    for (const DenseSpec& d : layers_)
        if (d.units > kSampleMaxWidth || d.dropout.enabled || d.norm.kind != NormKind::None || d.act.kind == Act::Softmax ||
            d.act.kind == Act::NoisyRelu)
            return false;
    return true;
}

template <typename T>
void Network<T>::sample_plan(bool portable_only) {
    sample_views_.clear();
    sample_layers_.clear();
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        const Activation& act = layers_[l].act;
        sample_views_.push_back({W(l), b(l), dW(l), db(l), acts_.data() + z_off_[l], acts_.data() + a_off_[l],
                                 int(fan_in(l)), int(fan_out(l)), tiny_kernel_act(act.kind), float(act.alpha)});
        sample_layers_.push_back({&act, relu_like(act.kind), saturating(act.kind)});
    }
    sample_steps_ = 0;
    sample_sgd_ = active_kernel_table().arena<T>().sgd;
    sample_plain_sgd_ = opt_.momentum == 0.0 && step_weight_decay(opt_, 1) == 0.0;
    sample_kernel_ = nullptr;
    if constexpr (std::is_same_v<T, float>)
        if (sample_kernel_applies() && !portable_only) sample_kernel_ = active_kernel_table().tiny_step_f32;
}

template <typename T>
void Network<T>::sample_flush() {
    for (std::size_t l = 0; l < sample_layers_.size(); ++l) {
        SampleLayer& s = sample_layers_[l];
        const std::size_t out = fan_out(l);
        if (s.relu_like)
            for (std::size_t j = 0; j < out; ++j) alive_[l][j] |= (s.alive >> j) & 1u;
        if (s.saturating) {  // counts, so the sums are exact in any order
            saturated_[l] += double(s.saturated);
            seen_[l] += double(sample_steps_ * out);
        }
        s.alive = 0;
        s.saturated = 0;
    }
    sample_steps_ = 0;
}

template <typename T>
bool Network<T>::sample_kernel_applies() const {
    static_assert(kSampleMaxLayers <= std::size_t(ukr::kTinyMaxLayers), "the kernel takes every eligible depth");
    const std::size_t widest = ukr::kTinyMaxWidth;
    if (!std::is_same_v<T, float> || !active_kernel_table().tiny_step_f32 || loss_ != Loss::Mse || input_dim_ > widest)
        return false;
    for (const DenseSpec& d : layers_)
        if (d.units > widest || tiny_kernel_act(d.act.kind) == kNoTinyAct) return false;
    return true;
}

template <typename T>
std::string Network<T>::sample_step_kind() const {
    if (!sample_step_eligible()) return "general";
    return sample_kernel_applies() ? "kernel" : "portable";
}

template <typename T>
bool Network<T>::sample_step(const T* x, const T* y, double lr, double& grad_limit, double& loss, double* grad_norm,
                             const T* w) {
    const std::size_t L = sample_layers_.size();
    std::size_t saturated[kSampleMaxLayers];  // per layer, counted in the forward pass

    bool finite = true, kernel = false;
    if constexpr (std::is_same_v<T, float>) {
        kernel = sample_kernel_ != nullptr;
        if (kernel) {  // the table's kernel, then the activity it reports
            // Plain SGD: the kernel makes the update too, while the bounds prove it finite.
            const ukr::TinyUpdate update{float(lr), grad_limit};
            ukr::TinyStepStats st;
            loss = sample_kernel_(sample_views_.data(), int(L), x, y, sample_plain_sgd_ ? &update : nullptr, &st);
            finite = std::isfinite(loss);
            double grad_max = 0;
            for (std::size_t l = 0; l < L; ++l) {
                finite &= std::isfinite(st.grad_norm[l]);
                grad_norm[l] = st.grad_norm[l];
                grad_max = std::max(grad_max, grad_norm[l]);
                saturated[l] = st.saturated[l];
                sample_layers_[l].alive |= st.alive[l];
            }
            if (st.updated) {
                sgd_bounds_.grow(lr, grad_max);
                ++kernel_updates;
                return sample_commit(saturated);
            }
        }
    }
    if (!kernel) {
        // Forward (Network::forward with B = 1, the activation as its own pass).
        const T* a_prev = x;
        for (std::size_t l = 0; l < L; ++l) {
            const SampleLayer& s = sample_layers_[l];
            const ukr::LayerView<T>& v = sample_views_[l];
            const std::size_t in = std::size_t(v.in), out = std::size_t(v.out);
            T* z = v.z;
            T* a = v.a;
            dense_forward(z, a_prev, v.W, v.b, 1, in, out);
            activation_forward(*s.act, a, z, 1, out);
            // Activity (Network::activity_accumulate): a relu unit that fired is alive
            // for good (idempotent, so marked now); saturations are counted on commit.
            saturated[l] = 0;
            if (s.relu_like) {
                for (std::size_t j = 0; j < out; ++j) sample_layers_[l].alive |= uint32_t(z[j] > T(0)) << j;
            } else if (s.saturating) {
                const T lo = saturation_low<T>(s.act->kind), hi = saturation_high<T>();
                for (std::size_t j = 0; j < out; ++j) saturated[l] += (a[j] < lo) | (a[j] > hi);
            }
            a_prev = a;
        }

        // Loss and backward (Network::backward with B = 1, f' as its own pass).
        T* delta = delta_a_.data();
        T* delta_prev = delta_b_.data();
        const ukr::LayerView<T>& top = sample_views_[L - 1];
        const Activation& top_act = *sample_layers_[L - 1].act;
        loss = loss_forward_backward(loss_, delta, top.z, top.a, y, 1, std::size_t(top.out), w);
        if (!loss_is_fused(loss_) && top_act.kind != Act::Identity)  // identity: dL/dz = dL/dŷ already
            activation_backward(top_act, delta, delta, top.z, top.a, 1, std::size_t(top.out));
        finite = std::isfinite(loss);
        for (std::size_t l = L; l-- > 0;) {
            const ukr::LayerView<T>& v = sample_views_[l];
            const std::size_t in = std::size_t(v.in), out = std::size_t(v.out);
            const T* input = l == 0 ? x : sample_views_[l - 1].a;
            // dense_backward accumulates: this layer's gradients are zeroed first
            // (Network::backward zeroes the whole arena before the pass).
            std::fill(v.dW, v.dW + in * out, T(0));
            if (v.db) std::fill(v.db, v.db + out, T(0));
            dense_backward(l > 0 ? delta_prev : nullptr, v.dW, v.db, delta, input, v.W, 1, in, out);
            grad_norm[l] = layer_grad_norm(l);
            finite &= std::isfinite(grad_norm[l]);
            if (l == 0) break;
            const ukr::LayerView<T>& below = sample_views_[l - 1];
            activation_backward(*sample_layers_[l - 1].act, delta_prev, delta_prev, below.z, below.a, 1, in);
            std::swap(delta, delta_prev);
        }
    }
    if (!finite) return false;

    // The update (Network::step with one segment, the whole arena): straight away
    // while fit_epoch's SgdBounds prove it finite, else after its dry run. Written
    // out with step()'s shared pieces (advance, update_stays_finite, the table's sgd
    // looked up once per epoch) rather than by calling step(): its generality
    // (segments, clipping, threads, the table looked up per call) cost this path about
    // 9% a step (float32, momentum 0.9, 3-4-4-1, pinned: 9.0 -> 8.2 M samples/s).
    grad_limit = -1;  // the run's limit assumed every step within it: not this one's
    const std::size_t n = params_.size();
    const double wd = step_weight_decay(opt_, 1);
    double grad_max = 0;
    for (std::size_t l = 0; l < L; ++l) grad_max = std::max(grad_max, grad_norm[l]);
    T* p = params_.data();
    T* buf = state1_.data();
    if (!sgd_bounds_.advance(opt_, lr, wd, grad_max, double(std::numeric_limits<T>::max()))) {
        if (!update_stays_finite(opt_, lr, wd, optimizer_step + 1, p, grads_.data(), buf, state2_.data(),
                                 state3_.data(), n))
            return false;
        sgd_bounds_.valid = false;  // as Network::step: re-measured at the next epoch
    }
    sample_sgd_(p, grads_.data(), buf, n, lr, opt_.momentum, opt_.nesterov, wd);
    return sample_commit(saturated);
}

template <typename T>
bool Network<T>::sample_commit(const std::size_t* saturated) {
    for (std::size_t l = 0; l < sample_layers_.size(); ++l) sample_layers_[l].saturated += saturated[l];
    ++sample_steps_;
    ++fused_steps;
    ++optimizer_step;
    ++step_counter;
    return true;
}

template <typename T>
std::size_t Network<T>::sample_steps(const T* X, const T* Y, const std::size_t* order, std::size_t s,
                                     std::size_t end, const double* lr_schedule, const double* momentum_schedule,
                                     EpochStats& stats, const T* sample_weight, T* predictions) {
    const std::size_t D = input_dim_, K = output_dim(), L = sample_layers_.size();
    last_batch_ = 1;
    last_training_ = true;
    double norms[kSampleMaxLayers];
    // Plain SGD in the kernel: the gradient bound under which SgdBounds proves the
    // updates of all these steps finite (-1: the kernel leaves every update to sample_step).
    double grad_limit = -1;
    if (sample_plain_sgd_ && sample_kernel_) {
        double lr_max = opt_.lr;
        if (lr_schedule) lr_max = *std::max_element(lr_schedule + s, lr_schedule + end);
        grad_limit = sgd_bounds_.gradient_limit(opt_, lr_max, double(std::numeric_limits<T>::max()), end - s);
    }
    for (; s < end; ++s) {
        const std::size_t row = order ? order[s] : s;  // shuffled: the row itself, no copy
        const double lr = lr_schedule ? lr_schedule[s] : opt_.lr;
        if (momentum_schedule) opt_.momentum = momentum_schedule[s];  // fit_epoch restores the configured one
        double loss;
        if (!sample_step(X + row * D, Y + row * K, lr, grad_limit, loss, norms,
                         sample_weight ? sample_weight + row : nullptr))
            break;
        if (predictions)  // the output of this step's forward pass (the portable loops wrote it)
            std::copy(sample_views_[L - 1].a, sample_views_[L - 1].a + K, predictions + row * K);
        stats.lr.push_back(lr);
        for (std::size_t l = 0; l < L; ++l) stats.grad_norm[l] += norms[l];
        stats.loss += loss;  // · B, B = 1
        ++stats.steps;
    }
    return s;
}

#define BP_SAMPLE_STEP(T)                                                                                  \
    template void Network<T>::sample_plan(bool);                                                           \
    template void Network<T>::sample_flush();                                                              \
    template bool Network<T>::sample_kernel_applies() const;                                               \
    template std::string Network<T>::sample_step_kind() const;                                             \
    template bool Network<T>::sample_step_eligible() const;                                                \
    template bool Network<T>::sample_step(const T*, const T*, double, double&, double&, double*, const T*); \
    template std::size_t Network<T>::sample_steps(const T*, const T*, const std::size_t*, std::size_t,     \
                                                  std::size_t, const double*, const double*, EpochStats&,     \
                                                  const T*, T*);
BP_SAMPLE_STEP(float)
BP_SAMPLE_STEP(double)

}  // namespace bp
