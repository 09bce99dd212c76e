// The optimiser step over the parameter arena, refused whole when it would leave
// a NaN or inf (the dry run of update_stays_finite, or SgdBounds' proof that
// spares it), the update-to-weight ratio it can measure, and train_step.
#include <cmath>
#include <limits>

#include "kernels/reductions.hpp"
#include "network/network.hpp"

namespace bp {

template <typename T>
bool Network<T>::step(double lr, double rows, double* layer_delta_sq, double grad_max) {
    const std::size_t n = params_.size();
    T *p = params_.data(), *g = grads_.data(), *s1 = state1_.data(), *s2 = state2_.data(),
      *s3 = state3_.data();
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
            // γ, β of the input normalisation decay as biases do (torch: as every parameter)
            if (ok && has_affine(l)) ok = f(g_off_[l], fan_in(l), opt_.decay_bias ? wd : 0.0, l);
            if (ok && has_affine(l)) ok = f(be_off_[l], fan_in(l), opt_.decay_bias ? wd : 0.0, l);
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
            return update_stays_finite(opt_, lr, decay, t, p + off, g + off, s1 + off, s2 + off, s3 + off, len,
                                       layer_delta_sq ? layer_delta_sq + l : nullptr);
        });
        if (!finite) {
            discard_running_update();
            return false;
        }
        sgd_bounds_.valid = false;  // re-measured at the next epoch
    }
    for_each_segment([&](std::size_t off, std::size_t len, double decay, std::size_t) {
        apply_update_threaded(opt_, lr, decay, t, p + off, g + off, s1 + off, s2 + off, s3 + off, len);
        return true;
    });
    ++optimizer_step;
    ++step_counter;
    return true;
}

template <typename T>
double Network<T>::decay_penalty(double count) {
    const double wd = step_weight_decay(opt_, count);
    if (wd == 0) return 0.0;
    if (opt_.decay_bias) return 0.5 * wd * sum_squares_chunked(params_.data(), params_.size());
    double sq = 0;  // the weights only (biases, γ and β do not decay)
    for (std::size_t l = 0; l < layers_.size(); ++l) sq += sum_squares_chunked(W(l), fan_in(l) * fan_out(l));
    return 0.5 * wd * sq;
}

template <typename T>
void Network<T>::sgd_bounds_measure() {
    sgd_bounds_.valid = opt_.kind == OptKind::Sgd;
    if (!sgd_bounds_.valid) return;
    // ‖x‖₂ >= max |x|; a NaN or inf norm fails the bounds' check
    sgd_bounds_.p = std::sqrt(sum_squares_chunked(params_.data(), params_.size()));
    sgd_bounds_.v = opt_.momentum != 0.0 ? std::sqrt(sum_squares_chunked(state1_.data(), state1_.size())) : 0.0;
}

template <typename T>
bool Network<T>::apply_gradients(double lr, double rows, double* update_ratio) {
    if (!update_ratio) return step(lr, rows);
    const std::size_t L = layers_.size();
    std::vector<double> norm(L), delta_sq(L, 0.0);
    for (std::size_t l = 0; l < L; ++l) norm[l] = layer_weight_norm(l, params_.data());
    if (!step(lr, rows, delta_sq.data())) return false;
    for (std::size_t l = 0; l < L; ++l) update_ratio[l] = norm[l] > 0 ? std::sqrt(delta_sq[l]) / norm[l] : 0.0;
    return true;
}

template <typename T>
double Network<T>::train_step(const T* X, const T* Y, std::size_t n, double lr, bool* applied, const T* weights) {
    const double loss = loss_and_gradients(X, Y, n, true, nullptr, weights);
    if (loss_count_ == 0) {  // weights summing to zero (WeightSum): no update, nothing diverged
        ++step_counter;  // as fit_epoch: the dropout streams move on
        if (applied) *applied = true;
        return loss;
    }
    const bool ok = std::isfinite(loss) && grads_finite() && step(lr, loss_count_);
    if (!ok) discard_running_update();
    if (applied) *applied = ok;
    return loss;
}

#define BP_STEP(T)                                                                        \
    template bool Network<T>::step(double, double, double*, double);                      \
    template double Network<T>::decay_penalty(double);                                    \
    template void Network<T>::sgd_bounds_measure();                                       \
    template bool Network<T>::apply_gradients(double, double, double*);                   \
    template double Network<T>::train_step(const T*, const T*, std::size_t, double, bool*, const T*);
BP_STEP(float)
BP_STEP(double)

}  // namespace bp
