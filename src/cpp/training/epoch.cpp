// fit_epoch, the epoch loop: the shuffle, per-step schedules, batches gathered
// into the workspace, forward/backward/step per batch (or the fused per-sample
// step for tiny networks at batch size 1), divergence and Ctrl-C between steps,
// and the epoch's summary (loss, gradient norms, health).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>

#include "common/errors.hpp"
#include "network/network.hpp"

namespace bp {

template <typename T>
EpochStats Network<T>::fit_epoch(const T* X, const T* Y, std::size_t n, std::size_t batch_size, bool shuffle,
                                 StepSchedule schedule, const T* sample_weight, T* predictions) {
    // The core's own precondition guards (the C++ API is a boundary too): the user-facing
    // checks of batch_size and the schedules' values are Python's, once (_engine.fit_arguments,
    // schedules.check_values); these keep the loop's invariants for any other caller.
    require(n >= 1 && n < (std::size_t(1) << 32), "X", "between 1 and 2^32 - 1 samples", std::to_string(n));
    require(batch_size >= 1, "batch_size", "a positive integer", std::to_string(batch_size));
    const std::size_t D = input_dim_, K = output_dim(), bs = std::min(batch_size, n);
    const std::size_t steps = (n + bs - 1) / bs, nd = dropout_layers_.size();
    // Check the schedules before touching anything, so a bad value leaves the model as it was
    // (guards, as above: Python has already checked what a user passes).
    require(!schedule.lr || schedule.lr_steps == steps, "lr schedule",
            std::to_string(steps) + " values (one per step)", std::to_string(schedule.lr_steps));
    require(!schedule.keep || (schedule.keep_steps == steps && schedule.keep_cols == nd), "keep_prob schedule",
            "shape (" + std::to_string(steps) + ", " + std::to_string(nd) + ")",
            "(" + std::to_string(schedule.keep_steps) + ", " + std::to_string(schedule.keep_cols) + ")");
    for (std::size_t s = 0; schedule.lr && s < steps; ++s)
        require(std::isfinite(schedule.lr[s]) && schedule.lr[s] >= 0, "lr schedule",
                "finite values >= 0", std::to_string(schedule.lr[s]));
    for (std::size_t i = 0; schedule.keep && i < steps * nd; ++i) check_keep_prob(schedule.keep[i], "the schedule");
    // BatchNorm refuses a training batch of one sample: the epoch's smallest (its last) is checked first.
    const std::size_t smallest = n % bs == 0 ? bs : n % bs;
    for (std::size_t l = 0; has_batchnorm_ && smallest < 2 && l < layers_.size(); ++l)
        require(norm(l).kind != NormKind::Batch, "BatchNorm layer " + std::to_string(norm(l).index),
                "training batches of more than one sample (as torch; use a batch_size that leaves no last "
                "batch of one sample)", std::to_string(n) + " samples in batches of " + std::to_string(bs) +
                " (a batch of one)");
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
    const bool track_penalty = opt_.decay_per_sample && opt_.weight_decay > 0;
    sgd_bounds_measure();
    std::vector<double> last_ratio(layers_.size(), 0.0);  // the update-to-weight ratio of the last step
    // Batch size 1 on a tiny network: the fused per-sample step (sample_step.cpp), all
    // but the last step, which also measures the update-to-weight ratio.
    // (With sample weights or recorded predictions, the portable loops, not the table's kernel.)
    // (Not with WeightSum weights: a row of weight zero makes no step, which the fused path does not know.)
    const bool per_sample = per_sample_path && bs == 1 && sample_step_eligible() &&
                            !(sample_weight && weight_norm == WeightNorm::WeightSum);
    if (sample_weight && shuffle) wbatch_.resize(bs);
    activity_reset();
    if (per_sample) sample_plan(sample_weight || predictions);
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
            const std::size_t next = sample_steps(X, Y, shuffle ? order_.data() : nullptr, s, end, schedule.lr, stats,
                                                  sample_weight, predictions);
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
        const T* wb = sample_weight ? sample_weight + start : nullptr;
        if (shuffle) {  // gather the batch's rows
            for (std::size_t r = 0; r < B; ++r) {
                const std::size_t src = order_[start + r];
                std::memcpy(xbatch_.data() + r * D, X + src * D, D * sizeof(T));
                std::memcpy(ybatch_.data() + r * K, Y + src * K, K * sizeof(T));
            }
            if (sample_weight) {  // the weights travel with their rows
                for (std::size_t r = 0; r < B; ++r) wbatch_[r] = sample_weight[order_[start + r]];
                wb = wbatch_.data();
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
        const double loss = forward_backward(xb, yb, B, true, nullptr, wb);
        if (predictions) {  // the outputs of this forward pass, before the update, at their rows
            const T* out = A(layers_.size() - 1);
            for (std::size_t r = 0; r < B; ++r)
                std::memcpy(predictions + (shuffle ? order_[start + r] : start + r) * K, out + r * K, K * sizeof(T));
        }
        if (loss_count_ == 0) {  // weights summing to zero (WeightSum): loss 0, no update
            // (BatchNorm's running estimates, which ignore the weights, moved as in any training pass)
            ++step_counter;  // the dropout streams move on as after a step
            ++stats.steps;
            if (stop_requested(s)) break;
            continue;
        }
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
        // scikit-learn's loss_curve_ adds each batch's L2 term, with the weights before its step
        const double penalty = track_penalty ? decay_penalty(loss_count_) : 0.0;
        if (!finite || !(last ? apply_gradients(lr, loss_count_, last_ratio.data())
                              : step(lr, loss_count_, nullptr, track_bounds ? grad_max : -1.0))) {
            discard_running_update();
            stats.diverged = true;
            stats.diverged_step = s;
            stats.diverged_loss = loss;
            stats.lr.pop_back();
            stats.keep.resize(stats.keep.size() - nd);
            break;
        }
        stats.loss += loss * double(B);
        stats.penalty += penalty * double(B);
        ++stats.steps;
        if (stop_requested(s)) break;
    }
    if (per_sample) sample_flush();
    if (stats.diverged || stats.interrupted) return stats;  // an unfinished epoch: no summary
    stats.loss /= double(n);
    stats.penalty /= double(n);
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

template EpochStats Network<float>::fit_epoch(const float*, const float*, std::size_t, std::size_t, bool,
                                              StepSchedule, const float*, float*);
template EpochStats Network<double>::fit_epoch(const double*, const double*, std::size_t, std::size_t, bool,
                                               StepSchedule, const double*, double*);

}  // namespace bp
