// The per-sample fast path of fit_epoch: one whole SGD step on one row of a
// tiny network (the textbook 3 → 4 → 4 → 1 and its kin), in one function.
//
// A step of such a network is a chain of products of a few values each, so
// what costs is not arithmetic but the general path's machinery around it:
// zeroing the gradient arena, epilogue objects, the GEMM dispatch, the layer
// loops of the diagnostics and the optimiser's dry run over copies. Here the
// same step is written out for B = 1, in the same memory (acts_, grads_) and
// with the same operations in the same order as the general path (forward,
// loss, backward, gradient norms, dead/saturated counts, update), so its
// results are bitwise those of Network::forward/backward/step; the tests check
// fit with and without this path bit for bit. The products are written out for
// one row rather than calling the matmul_*_reference functions (which would also
// need the gradients zeroed first): that costs 2,830 instructions a step of the
// textbook network against 1,990 (callgrind), 25% of the speed.
//
// It commits nothing until the step is known good. When the loss or a
// gradient is NaN/inf, or the update would overflow, it returns false with the
// parameters, optimiser state, counters and diagnostics untouched, and
// fit_epoch redoes the step on the general path, which refuses it there in
// the usual way (the divergence report).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "common/reductions.hpp"
#include "kernels/gemm_reference.hpp"
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
        if (d.units > kSampleMaxWidth || d.dropout.enabled || d.act.kind == Act::Softmax ||
            d.act.kind == Act::NoisyRelu)
            return false;
    return true;
}

namespace {

// Calls f(width) with the width n as a compile-time constant up to 8 (the loops
// over it unroll: a runtime count costs a tiny layer more than its arithmetic),
// else as a runtime value.
template <typename F>
inline void with_width(std::size_t n, F&& f) {
    if (n == 1) return f(std::integral_constant<std::ptrdiff_t, 1>{});
    if (!with_narrow_width(std::ptrdiff_t(n), f)) f(std::ptrdiff_t(n));
}

// c[0, n) = 0 + a · b[0, n) (a gradient accumulated onto zeroed memory: 0 + x,
// which turns a -0 into +0 exactly as the general path's `+=` does).
template <typename T, typename N>
inline void scaled_row(T* __restrict c, T a, const T* __restrict b, N n) {
    for (std::ptrdiff_t j = 0; j < n; ++j) c[j] = T(0) + a * b[j];
}

// Σ x² as the active table's sum_squares computes it. For float32 every table
// gives bitwise the portable loop's sum (reductions.hpp), which inlines here.
template <typename T>
inline double squares(const T* x, std::size_t n) {
    if constexpr (std::is_same_v<T, float>) {
        if (n >= 8) return sum_squares_portable(x, n);
        double s = 0;  // its eight partial sums are all zero: only the tail, in order
        for (std::size_t i = 0; i < n; ++i) s += double(x[i]) * double(x[i]);
        return s;
    }
    else
        return sum_squares(x, n);
}

}  // namespace

template <typename T>
bool Network<T>::sample_step(const T* x, const T* y, double lr, double& loss, double* grad_norm) {
    const std::size_t L = layers_.size();
    std::size_t saturated[kSampleMaxLayers];  // per layer, set in the forward pass

    // Forward (Network::forward; matmul_nn_reference with M = 1).
    const T* a_prev = x;
    for (std::size_t l = 0; l < L; ++l) {
        const std::size_t in = fan_in(l), out = fan_out(l);
        T* z = acts_.data() + z_off_[l];
        T* a = acts_.data() + a_off_[l];
        const T* w = W(l);
        const T* bias = b(l);
        if (out == 1) {
            z[0] = (bias ? bias[0] : T(0)) + dot(a_prev, w, std::ptrdiff_t(in));
        } else {
            for (std::size_t j = 0; j < out; ++j) z[j] = bias ? bias[j] : T(0);
            if (!with_narrow_width(std::ptrdiff_t(out), [&](auto width) {
                    nn_narrow_row<T, width>(z, a_prev, w, std::ptrdiff_t(in));
                }))
                for (std::size_t k = 0; k < in; ++k)
                    for (std::size_t j = 0; j < out; ++j) z[j] += a_prev[k] * w[k * out + j];
        }
        const Activation& act = layers_[l].act;
        activation_forward(act, a, z, 1, out);
        saturated[l] = 0;
        // Activity (Network::activity_accumulate): a relu unit that fired is alive
        // for good (idempotent, so marked now); saturations are counted on commit.
        if (act.kind == Act::Relu || act.kind == Act::LeakyRelu) {
            uint8_t* alive = alive_[l].data();
            for (std::size_t j = 0; j < out; ++j) alive[j] |= z[j] > T(0);
        } else if (act.kind == Act::Sigmoid || act.kind == Act::Tanh) {
            const T lo = act.kind == Act::Sigmoid ? T(0.01) : T(-0.99), hi = T(0.99);
            for (std::size_t j = 0; j < out; ++j) saturated[l] += (a[j] < lo) | (a[j] > hi);
        }
        a_prev = a;
    }
    last_batch_ = 1;
    last_training_ = true;

    // Loss and backward (Network::backward; matmul_tn/nt_reference with M = 1).
    T* delta = delta_a_.data();
    T* delta_prev = delta_b_.data();
    const std::size_t K = output_dim();
    loss = loss_forward_backward(loss_, delta, Z(L - 1), A(L - 1), y, 1, K);
    if (!loss_is_fused(loss_)) activation_backward(layers_[L - 1].act, delta, delta, Z(L - 1), A(L - 1), 1, K);
    bool finite = std::isfinite(loss);
    for (std::size_t l = L; l-- > 0;) {
        const std::size_t in = fan_in(l), out = fan_out(l);
        const T* input = l == 0 ? x : A(l - 1);
        T* gw = dW(l);
        with_width(out, [&](auto width) {
            for (std::size_t k = 0; k < in; ++k) scaled_row(gw + k * width, input[k], delta, width);
        });
        T* gb = db(l);
        if (gb)
            for (std::size_t j = 0; j < out; ++j) gb[j] = T(0) + delta[j];
        double s = squares(gw, in * out);
        if (gb) s += squares(gb, out);
        finite &= std::isfinite(s);
        grad_norm[l] = std::sqrt(s);
        if (l == 0) break;
        const T* w = W(l);
        if (out == 1) {
            with_width(in, [&](auto width) { scaled_row(delta_prev, delta[0], w, width); });
        } else {
            auto dots = [&](auto width) {
                for (std::size_t k = 0; k < in; ++k)
                    delta_prev[k] = T(0) + dot(delta, w + k * out, std::ptrdiff_t(width));
            };
            if (!with_narrow_width(std::ptrdiff_t(out), dots)) dots(std::ptrdiff_t(out));
        }
        activation_backward(layers_[l - 1].act, delta_prev, delta_prev, Z(l - 1), A(l - 1), 1, in);
        std::swap(delta, delta_prev);
    }
    if (!finite) return false;

    // The update (Network::step with one segment, the whole arena): straight away
    // while fit_epoch's SgdBounds prove it finite, else in place after a copy, which
    // is put back if any value came out NaN/inf.
    const std::size_t n = params_.size();
    const double wd = step_weight_decay(opt_, 1);
    double grad_max = 0;
    for (std::size_t l = 0; l < L; ++l) grad_max = std::max(grad_max, grad_norm[l]);
    T* p = params_.data();
    T* buf = state1_.data();
    const auto& sgd = active_kernel_table().arena<T>().sgd;
    if (sgd_bounds_.advance(opt_, lr, wd, grad_max, double(std::numeric_limits<T>::max()))) {
        sgd(p, grads_.data(), buf, n, lr, opt_.momentum, opt_.nesterov, wd);
    } else {
        const bool momentum = opt_.momentum != 0.0;
        T* backup = sample_backup_.data();
        std::memcpy(backup, p, n * sizeof(T));
        if (momentum) std::memcpy(backup + n, buf, n * sizeof(T));
        sgd(p, grads_.data(), buf, n, lr, opt_.momentum, opt_.nesterov, wd);
        if (!all_finite(p, n) || (momentum && !all_finite(buf, n))) {
            std::memcpy(p, backup, n * sizeof(T));
            if (momentum) std::memcpy(buf, backup + n, n * sizeof(T));
            return false;
        }
        sgd_bounds_.valid = false;  // as Network::step: re-measured at the next epoch
    }
    for (std::size_t l = 0; l < L; ++l) {
        const Act kind = layers_[l].act.kind;
        if (kind == Act::Sigmoid || kind == Act::Tanh) {
            saturated_[l] += double(saturated[l]);
            seen_[l] += double(fan_out(l));
        }
    }
    ++optimizer_step;
    ++step_counter;
    return true;
}

template bool Network<float>::sample_step_eligible() const;
template bool Network<double>::sample_step_eligible() const;
template bool Network<float>::sample_step(const float*, const float*, double, double&, double*);
template bool Network<double>::sample_step(const double*, const double*, double, double&, double*);

}  // namespace bp
