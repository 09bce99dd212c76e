// The value types of a network's interface: a layer's description (DenseSpec),
// fit_epoch's per-step schedules (StepSchedule) and what it reports (EpochStats,
// LayerHealth). The bindings expose them as Python types (bindings/value_types.cpp).
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "activations/activations.hpp"
#include "common/errors.hpp"
#include "layers/dropout.hpp"

namespace bp {

// A normalisation of a dense layer's input (before its dropout, if any):
// layers/batchnorm.hpp (over the batch, per feature) or layers/layernorm.hpp
// (over the features, per row). affine: learnable γ (init 1) and β (init 0) in
// the parameter arena, in front of the layer's W.
enum class NormKind { None = 0, Batch = 1, Layer = 2 };

struct NormSpec {
    NormKind kind = NormKind::None;
    double momentum = 0.1;  // BatchNorm's running estimates
    double eps = 1e-5;
    bool affine = true;
    std::size_t index = 0;  // position in the model's layer list (its name in errors)
};

struct DenseSpec {
    std::size_t units = 1;
    Activation act;
    bool use_bias = true;
    std::size_t index = 0;  // position in the model's layer list (its RNG streams)
    DropoutSpec dropout;    // dropout applied to this layer's input
    NormSpec norm;          // normalisation of this layer's input (before the dropout)
};

// Optional per-step schedules for fit_epoch: lr[lr_steps] and keep[keep_steps ×
// keep_cols] (null: the configured constant values; fit_epoch checks the shapes
// against its steps × dropouts, and the values), and a stop request polled between
// steps every ~20 ms (e.g. Ctrl-C; the poll may take the GIL, the steps never do).
struct StepSchedule {
    const double* lr = nullptr;
    std::size_t lr_steps = 0;
    const double* keep = nullptr;
    std::size_t keep_steps = 0, keep_cols = 0;
    std::function<bool()> should_stop;
};

// Gradient-flow diagnostics of one layer, for an epoch or a single batch.
struct LayerHealth {
    double grad_norm = 0;           // ‖(dW, db)‖₂, before clipping (epoch: mean over steps)
    double weight_norm = 0;         // ‖(W, b)‖₂ (epoch: at its end)
    double update_ratio = 0;        // ‖Δ(W, b)‖₂ / ‖(W, b)‖₂ of the epoch's last update (0 for a batch)
    double dead_fraction = 0;       // relu-like layers: units with z <= 0 for every sample seen
    double saturated_fraction = 0;  // sigmoid: a < 0.01 or a > 0.99; tanh: |a| > 0.99 (share of values)
    bool nonfinite = false;         // a NaN or inf in the gradients or the loss
};

struct EpochStats {
    double loss = 0;                 // sample-weighted mean of the batch losses
    std::vector<double> grad_norm;   // per layer: mean over steps of ‖(dW, db)‖₂ (before clipping)
    std::vector<LayerHealth> health; // per layer, see LayerHealth
    std::size_t steps = 0;           // steps made (a WeightSum batch of weight zero counts, without an update)
    bool diverged = false;           // a step met a NaN/inf loss or gradient and was not applied
    std::size_t diverged_step = 0;   // that step's index in the epoch (== steps)
    double diverged_loss = 0;        // that step's loss
    bool interrupted = false;        // should_stop() asked to stop (after a completed step)
    std::vector<double> lr;          // the learning rate of every step
    std::vector<double> keep;        // the keep probability of every step and dropout (steps × n_dropout)
    std::size_t n_dropout = 0;       // the columns of keep
    // With decay_per_sample and weight_decay > 0: the decay's L2 term ½·wd_s·‖θ‖² of every step
    // s (θ before its update, wd_s the step's decay), averaged over the epoch as the loss is
    // (weighted by the batches' rows); scikit-learn adds it to its loss_curve_. 0 otherwise.
    double penalty = 0;
};

// Throws ValueError unless p is a keep probability in (0, 1]; `where` names it.
inline void check_keep_prob(double p, const std::string& where) {
    require(p > 0.0 && p <= 1.0, "keep_prob of " + where,
            "a probability of keeping a unit in (0, 1] (drop probability rate = 1 - keep_prob)",
            std::to_string(p));
}

}  // namespace bp
