// A sequential network of dense layers (each optionally preceded by a
// normalisation, BatchNorm or LayerNorm, and then dropout)
// and its training loop. One class; its members are defined by responsibility,
// one file each (the file is named at each group below):
//   layout.cpp       construction (layer checks), the size tables, buffer growth
//   config.cpp       loss, optimiser and keep probabilities (validated)
//   passes.cpp       forward and backward, the dropout masks, loss_and_gradients
//   recording.cpp    the explainer's backward, which records per-layer values
//   step.cpp         the optimiser step, its finiteness proof, train_step
//   diagnostics.cpp  gradient and weight norms, unit activity, batch_health
//   inference.cpp    predict and evaluate: their own forward, workspaces and threads
// and, in the training loop's room above network/ (src/cpp/training/):
//   epoch.cpp        fit_epoch, the epoch loop
//   sample_step.cpp  fit_epoch's fused per-sample step for tiny networks
//
// Memory, one allocation per family (llm.c style), each carved into per-layer
// views by a size table:
//   params_  [γ0 β0] W0 b0 [γ1 β1] W1 b1 ...   (the parameter arena; W is (fan_in, fan_out);
//            γ, β: the affine parameters of a layer's input normalisation)
//   grads_   dW0 db0 dW1 db1 ...      (same layout as params_)
//   state1_, state2_, state3_         (optimiser state, same layout; see optimizer.hpp)
//   acts_    [N0 X̂0 S0] [D0 M0] Z0 A0 [N1 X̂1 S1] [D1 M1] Z1 A1 ...   (batch-major, `capacity_` rows;
//            N, X̂, S: a layer's normalised input, x̂ and statistics (see norm_stats);
//            D, M: the dropped input and mask of a layer with input dropout)
//   running_ [μ0 σ²0] [μ1 σ²1] ...    (BatchNorm's running estimates: state, not parameters)
//
// Data flows: forward() fills D, M, Z and A of every layer; backward() turns the
// loss gradient into dW, db layer by layer from the last; step() moves the whole
// parameter arena at once. train_step() and fit_epoch() are those three in a
// loop, with no allocation per step once the buffers have grown.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "activations/activations.hpp"
#include "common/arena.hpp"
#include "common/enums.hpp"
#include "common/rng.hpp"
#include "kernels/layer_view.hpp"
#include "layers/dropout.hpp"
#include "network/types.hpp"
#include "optimizers/optimizer.hpp"

namespace bp {

template <typename T>
class Network {
public:
    // --- structure and parameters (layout.cpp) ---------------------------------
    Network(std::size_t input_dim, std::vector<DenseSpec> layers, uint64_t seed);

    std::size_t input_dim() const { return input_dim_; }
    std::size_t output_dim() const { return layers_.back().units; }
    std::size_t num_layers() const { return layers_.size(); }
    std::size_t num_dropout() const { return dropout_layers_.size(); }
    std::size_t fan_in(std::size_t l) const { return l == 0 ? input_dim_ : layers_[l - 1].units; }
    std::size_t fan_out(std::size_t l) const { return layers_[l].units; }
    bool has_bias(std::size_t l) const { return layers_[l].use_bias; }
    bool has_dropout(std::size_t l) const { return layers_[l].dropout.enabled; }
    bool has_norm(std::size_t l) const { return layers_[l].norm.kind != NormKind::None; }
    const NormSpec& norm(std::size_t l) const { return layers_[l].norm; }
    bool has_affine(std::size_t l) const { return has_norm(l) && layers_[l].norm.affine; }
    bool has_batchnorm() const { return has_batchnorm_; }
    uint64_t seed() const { return seed_; }

    T* W(std::size_t l) { return params_.data() + w_off_[l]; }
    T* b(std::size_t l) { return has_bias(l) ? params_.data() + b_off_[l] : nullptr; }
    T* dW(std::size_t l) { return grads_.data() + w_off_[l]; }
    T* db(std::size_t l) { return has_bias(l) ? grads_.data() + b_off_[l] : nullptr; }
    // The affine parameters of layer l's input normalisation (null without): fan_in(l) each.
    T* gamma(std::size_t l) { return has_affine(l) ? params_.data() + g_off_[l] : nullptr; }
    T* beta(std::size_t l) { return has_affine(l) ? params_.data() + be_off_[l] : nullptr; }
    T* dgamma(std::size_t l) { return has_affine(l) ? grads_.data() + g_off_[l] : nullptr; }
    T* dbeta(std::size_t l) { return has_affine(l) ? grads_.data() + be_off_[l] : nullptr; }
    // BatchNorm's running mean and (unbiased) variance of layer l's input (fan_in(l) each).
    T* running_mean(std::size_t l) { return running_.data() + rm_off_[l]; }
    T* running_var(std::size_t l) { return running_.data() + rv_off_[l]; }
    T* running() { return running_.data(); }
    std::size_t running_size() const { return running_.size(); }
    // Puts the running estimates back to what they were before the last training forward: a
    // step refused as non-finite leaves them, like the parameters, as after the last finite step.
    void discard_running_update() {
        if (has_batchnorm_) std::copy(running_before_.data(), running_before_.data() + running_.size(), running_.data());
    }
    T* params() { return params_.data(); }
    T* grads() { return grads_.data(); }
    T* state1() { return state1_.data(); }
    T* state2() { return state2_.data(); }
    T* state3() { return state3_.data(); }
    std::size_t arena_size() const { return params_.size(); }

    // Draws layer l's W from the model's RNG, stream (Init, 0, index); zeroes b; γ = 1, β = 0
    // and BatchNorm's running mean 0, running variance 1.
    void init_layer(std::size_t l, Init init);

    // --- training configuration (config.cpp) -----------------------------------
    void set_loss(Loss loss);  // checks fused losses against the output activation
    Loss loss() const { return loss_; }
    void set_optimizer(const OptimizerConfig& c);  // validates; keeps the state
    const OptimizerConfig& optimizer() const { return opt_; }
    void reset_optimizer_state();
    // The keep probability of the dropout in front of dense layer l.
    void set_keep_prob(std::size_t l, double keep_prob);
    double keep_prob(std::size_t l) const { return layers_[l].dropout.keep_prob; }

    // What a weighted batch's loss and gradient are divided by (docs/internals.md, "Sample
    // weights"): Rows (Keras's Σ w_i·l_i / rows, the default) or WeightSum (scikit-learn's
    // Σ w_i·l_i / Σ w_i: a batch whose weights sum to zero has loss 0, zero gradients and no
    // update). It applies wherever weights are given (fit_epoch, train_step,
    // loss_and_gradients, evaluate), and decay_per_sample divides the weight decay by the same
    // count. Without weights both are the rows.
    WeightNorm weight_norm = WeightNorm::Rows;

    uint64_t epoch_counter = 0;  // drives the shuffle stream
    uint64_t step_counter = 0;   // drives the dropout and noise streams
    uint64_t optimizer_step = 0; // the optimiser's own step count (Adam, Adagrad)

    // --- computation (X: n × input_dim, Y: n × output_dim, row-major) ----------
    // inference.cpp. predict and evaluate read the parameters and running estimates and
    // write nothing of the network's: each call computes in workspaces of its own, taken
    // from a pool, so calls from several threads may run at once under a shared lock
    // of mutex() (everything else takes it exclusively). Chunks of kInferenceChunk rows
    // are split over the core's threads; the results depend on neither the thread
    // count nor the training batch size.
    static constexpr std::size_t kInferenceChunk = 128;
    void predict(T* out, const T* X, std::size_t n);
    // The mean loss; with per-sample weights (n of them) Σ w_i·l_i / n (Keras's convention), or
    // Σ w_i·l_i / Σ w_i with weight_norm WeightSum (0 when the weights sum to zero).
    double evaluate(const T* X, const T* Y, std::size_t n, const T* weights = nullptr);
    // The inference forward pass of X (n rows) through the training buffers, whose views
    // (Z, A, the normalisations' below) then show it: what a probe of the activations
    // reads (the playground's unit values). Exclusive, like training.
    void forward_views(const T* X, std::size_t n);
    // The inference workspaces in the pool, idle (the tests check they are reused).
    std::size_t inference_workspaces() {
        std::lock_guard<std::mutex> guard(pool_mutex_);
        return pool_.size();
    }
    // passes.cpp: the loss of the whole (X, Y) as one batch; gradients left in grads().
    // With training, dropout masks are drawn for step_counter, or taken from `masks`
    // (one B × fan_in array per dense layer, null where none) when given. `weights`
    // (n per-sample weights, or null): Σ w_i·l_i / n and its gradient (losses.hpp), or divided
    // by Σ w_i (weight_norm).
    double loss_and_gradients(const T* X, const T* Y, std::size_t n, bool training,
                              const std::vector<const T*>* masks = nullptr, const T* weights = nullptr);
    // passes.cpp: rows `rows[0..R)` (positions in the coming step's batch, step_counter)
    // of the dropout mask forward() would draw in front of dense layer l (has_dropout(l)),
    // into M[R, fan_in(l)]: bitwise the same values.
    void dropout_mask_rows(std::size_t l, const int64_t* rows, std::size_t R, T* M) const;
    // step.cpp: one update at learning rate lr on (X, Y) as one batch; returns the loss
    // before it. A NaN/inf loss or gradient leaves the parameters untouched (*applied = false).
    // weights: n per-sample weights of the loss, or null (see loss_and_gradients).
    // momentum: this step's momentum (SGD, RMSprop) or β1 (Adam, AdamW) in place of the
    // configured one (see MomentumScope).
    double train_step(const T* X, const T* Y, std::size_t n, double lr, bool* applied = nullptr,
                      const T* weights = nullptr, std::optional<double> momentum = std::nullopt);
    // step.cpp: applies the optimiser to the gradients now in grads() (for data-parallel
    // training: loss_and_gradients, all-reduce grads(), then this). Counts a step.
    // Returns false, with the parameters and optimiser state unchanged, when the update
    // would leave a NaN or inf. If update_ratio is given (num_layers() values), each
    // layer's ‖θ_new − θ_old‖ / ‖θ_old‖ of this step goes there (0 where ‖θ_old‖ = 0),
    // as fit records its last step's. momentum: as train_step's.
    // rows: the batch's count for decay_per_sample (its samples, or its weights' sum with WeightSum).
    bool apply_gradients(double lr, double rows, double* update_ratio = nullptr,
                         std::optional<double> momentum = std::nullopt);
    // training/epoch.cpp: one epoch of mini-batch gradient descent over (X, Y).
    // sample_weight (n values, or null): each batch's loss is Σ w_i·l_i / (rows in the
    // batch), or / Σ w_i of the batch (weight_norm), the weights shuffled with their rows.
    // predictions (n × output_dim, or null): each row's output as the training forward pass
    // saw it, before its step's update (what the metrics of an epoch are computed from). With
    // either, the fused per-sample path runs its portable loops, never the table's kernel
    // (sample_plan); with WeightSum weights it is not taken.
    EpochStats fit_epoch(const T* X, const T* Y, std::size_t n, std::size_t batch_size, bool shuffle,
                         StepSchedule schedule = {}, const T* sample_weight = nullptr, T* predictions = nullptr);

    // Activations of the last forward pass (rows = its batch size); the
    // dropout mask and dropped input of layer l exist when has_dropout(l).
    const T* Z(std::size_t l) const { return acts_.data() + z_off_[l]; }
    const T* A(std::size_t l) const { return acts_.data() + a_off_[l]; }
    const T* mask(std::size_t l) const { return acts_.data() + m_off_[l]; }
    const T* dropped_input(std::size_t l) const { return acts_.data() + d_off_[l]; }
    // Layer l's input normalisation in the last forward pass (has_norm(l)): its output N
    // and x̂ (rows × fan_in), and its statistics: μ, σ² (biased) and 1/√(σ² + ε), fan_in(l)
    // each for BatchNorm (the batch's while training, the running ones at inference),
    // one per row for LayerNorm.
    const T* norm_output(std::size_t l) const { return acts_.data() + n_off_[l]; }
    const T* norm_xhat(std::size_t l) const { return acts_.data() + xh_off_[l]; }
    enum class NormStat { mean = 0, var = 1, inv_std = 2 };
    const T* norm_stat(std::size_t l, NormStat what) const {
        return acts_.data() + s_off_[l] + std::size_t(what) * norm_stat_len(l, last_batch_);
    }
    std::size_t norm_stat_len(std::size_t l, std::size_t rows) const {
        return norm(l).kind == NormKind::Batch ? fan_in(l) : rows;
    }
    // Distributed training with BatchNorm: when set, the training statistics are the
    // global batch's (layers/batchnorm.hpp), with two collectives at most per BatchNorm
    // layer and step:
    //   gather(local, count, all): all[p·count + i] = local[i] of process p, p < ranks
    //     (an all-gather in rank order; the forward's packed moments [n, μ, M2] of a layer);
    //   sum(v, count): v[0..count) summed over the processes in place (the backward's
    //     Σdx̂ and Σdx̂·x̂ of a layer, of this process's own loss, which the caller weighs;
    //     not for a normalisation of the network's input, whose dL/dX nothing needs).
    // rows: the global batch's (N of layers/batchnorm.hpp); ranks: the processes.
    struct StatSync {
        std::function<void(const T*, std::size_t, T*)> gather;
        std::function<void(T*, std::size_t)> sum;
        std::size_t rows = 0, ranks = 0;
        explicit operator bool() const { return bool(gather); }
    };
    StatSync stat_sync;
    // passes.cpp: a process without rows in the step's batch: every stat_sync call of a
    // training step's forward and backward with zero moments and sums, in the same order,
    // and the running estimates updated from the combined statistics as the others do.
    void stat_sync_idle();
    // Whether the backward computes dL/d(input) of layer l's normalisation: not for
    // layer 0 (nothing below needs dL/dX; its γ, β gradients only), unless recording.
    bool norm_input_grad(std::size_t l) const { return l > 0 || recording_; }
    std::size_t last_batch() const { return last_batch_; }

    // --- recording, for the chain-rule explainer (recording.cpp) ----------------
    // When on, every pass (loss_and_gradients, train_step, fit_epoch's general steps) runs
    // unfused and its backward is backward_recorded(), which also keeps, per layer and with
    // the batch's rows,
    //   dA = dL/dA_l (NaN for the output of a fused loss, which skips it),
    //   fprime = f'(Z_l) (elementwise; NaN for softmax, whose derivative is a Jacobian),
    //   dZ = δ_l = dL/dZ_l, and dIn = dL/d(input of layer l) = δ_l W_lᵀ (layer 0 too).
    void set_recording(bool on) { recording_ = on; }
    //   dNorm = dL/dN, the gradient at the output of layer l's input normalisation
    //   (has_norm(l); after the dropout's backward), and dNormIn = dL/d(its input), what
    //   its backward makes of it (dA of the layer below; for layer 0, dL/dX).
    enum class Recorded { dA = 0, fprime = 1, dZ = 2, dIn = 3, dNorm = 4, dNormIn = 5 };
    static constexpr std::size_t kRecorded = 6;
    const T* recorded(std::size_t l, Recorded what) const {
        return record_.data() + rec_off_[kRecorded * l + std::size_t(what)];
    }
    std::size_t recorded_batch() const { return rec_off_.empty() ? 0 : rec_batch_; }

    // --- diagnostics (diagnostics.cpp) ------------------------------------------
    // Of the last loss_and_gradients call (one batch), per layer.
    std::vector<LayerHealth> batch_health();
    // ‖(dW, db)‖₂ of each layer's gradients as they are now in grads() (as fit records them).
    std::vector<double> grad_norms();

    // --- the fused per-sample step (training/sample_step.cpp) ----------------------------
    bool per_sample_path = true; // fit_epoch may take it (off: the tests compare with it)
    uint64_t fused_steps = 0;    // steps it has made (the tests check it ran)
    uint64_t kernel_updates = 0; // of those, the ones whose update the tiny-network kernel made (TinyUpdate)
    // Whether fit_epoch with batch size 1 takes it.
    bool sample_step_eligible() const;
    // Which step fit_epoch takes with batch size 1: "kernel" (the active kernel table's
    // tiny-network step), "portable" (sample_step's own loops) or "general".
    std::string sample_step_kind() const;

    // Serialises the public methods of one network between threads: shared by predict
    // and evaluate, exclusive for everything else.
    std::shared_mutex& mutex() { return mutex_; }

private:
    // layout.cpp
    void ensure_capacity(std::size_t rows);
    const T* layer_input(std::size_t l, const T* X) const;  // what dense l multiplies by W
    const T* norm_input(std::size_t l, const T* X) const { return l == 0 ? X : A(l - 1); }
    const T* dropout_input(std::size_t l, const T* X) const {  // the normalised input, if any
        return has_norm(l) ? acts_.data() + n_off_[l] : norm_input(l, X);
    }

    // passes.cpp
    void zero_grads() { grads_.zero(); }
    Pcg32 dropout_rng(std::size_t l) const;  // the stream of layer l's mask at step_counter
    // fuse: A = f(Z) in the product's epilogue (off for the explainer, which keeps f'(Z)).
    void forward(const T* X, std::size_t B, bool training, bool fuse,
                 const std::vector<const T*>* masks = nullptr);
    double backward(const T* X, const T* Y, std::size_t B, const T* weights = nullptr);  // returns the loss
    // One batch's forward, activity and backward (recorded when recording_); the loss.
    // weights: B per-sample weights of the loss (null: unweighted), see losses.hpp.
    double forward_backward(const T* X, const T* Y, std::size_t B, bool training,
                            const std::vector<const T*>* masks = nullptr, const T* weights = nullptr);
    // The pieces both backward passes are made of.
    // dL/dŶ (fused loss: dL/dZ), rows weighted when weights is given; the loss. Sets
    // loss_count_: what the loss was divided by (the rows, or Σ w with WeightSum).
    double output_gradient(T* delta, const T* Y, std::size_t B, const T* weights = nullptr);
    double loss_count_ = 0;  // of the last output_gradient; 0: a weighted batch of weight zero
    // The decay term ½·wd·‖θ‖² (θ: what decays; wd the step's decay over `count`), in double.
    double decay_penalty(double count);
    void dense_backward_of(std::size_t l, T* d_in, const T* delta, const T* X, std::size_t B);  // dW, db, δWᵀ
    void dropout_backward_of(std::size_t l, T* d_in, std::size_t B);  // dL/dD → dL/dA below layer l
    void activation_backward_of(std::size_t l, T* d, std::size_t B);  // dL/dA_l → dL/dZ_l in place
    // Layer l's input normalisation: forward of its input (B rows) into N, X̂, S (and the
    // running estimates while training); backward dL/dN → dL/d(its input) in place, with dγ, dβ.
    void norm_forward_of(std::size_t l, const T* in, std::size_t B, bool training);
    // The same into N, X̂ (B × fan_in(l)) and S (the statistics, see norm_stat) given.
    void norm_forward_into(std::size_t l, const T* in, std::size_t B, bool training, T* N, T* Xhat, T* S);
    // input_grad false (norm_input_grad): only dγ, dβ, and d is left as it came.
    void norm_backward_of(std::size_t l, T* d, std::size_t B, bool input_grad);
    void gathered_moments(T* mean, T* var, const T* in, std::size_t B, std::size_t F);  // passes.cpp

    // recording.cpp
    double backward_recorded(const T* X, const T* Y, std::size_t B, const T* weights = nullptr);  // backward(), recording
    void record(std::size_t l, Recorded what, const T* src, std::size_t n);  // src null: NaN

    // step.cpp. One optimiser step; returns false, with the parameters and state unchanged,
    // when it would leave a NaN or inf in them (an overflowing update; clip_norm has then
    // already scaled grads()). rows: the batch's count (for decay_per_sample: its samples, or
    // their weights' sum with WeightSum; see loss_count_). If
    // layer_delta_sq is given (one per layer), Σ (new − old)² of each layer's W and b
    // is added to it. grad_max: a bound on max |grad| over the arena, when known
    // (fit_epoch): with SGD it lets sgd_bounds_ prove the step finite without the dry run.
    bool step(double lr, double rows, double* layer_delta_sq = nullptr, double grad_max = -1.0);
    SgdBounds sgd_bounds_;  // fit_epoch's proof that SGD steps stay finite
    void sgd_bounds_measure();  // at an epoch's start: exact bounds for its steps (SGD), else invalid

    // step.cpp. The optimiser's momentum a per-step schedule sets: &opt_.momentum (SGD,
    // RMSprop) or &opt_.beta1 (Adam, AdamW). ValueError for Adagrad, which has none, and for
    // SGD or RMSprop configured without momentum (their buffer is then not reset with the
    // state: torch's OneCycleLR configures max_momentum first, and so does pybackprop).
    double* momentum_slot();
    // Sets the momentum (or β1) for the steps of a scope, the configured value back after
    // (std::nullopt: nothing). torch's scheduler writes it before each step; the value a
    // step uses is its own, in the update and in Adam's bias correction 1 − β1^t.
    class MomentumScope {
      public:
        MomentumScope(Network& net, std::optional<double> momentum) {
            if (!momentum) return;
            check_momentum(*momentum);
            slot_ = net.momentum_slot();
            saved_ = *slot_;
            *slot_ = *momentum;
        }
        MomentumScope(const MomentumScope&) = delete;
        MomentumScope& operator=(const MomentumScope&) = delete;
        ~MomentumScope() {
            if (slot_) *slot_ = saved_;
        }
        // The slot of a per-step schedule (null when there is none): the value of each step goes there.
        double* slot() const { return slot_; }

      private:
        double* slot_ = nullptr;
        double saved_ = 0;
    };
    static void check_momentum(double m) {
        require(m >= 0 && m < 1, "momentum schedule", "values in [0, 1) (momentum, or Adam's beta1)",
                std::to_string(m));
    }

    // diagnostics.cpp
    double layer_grad_norm(std::size_t l);
    bool grads_finite();
    double layer_weight_norm(std::size_t l, const T* params);
    // Unit activity over the batches since activity_reset(): feeds dead and saturated fractions.
    void activity_reset();
    void activity_accumulate(std::size_t B);
    void activity_fill(std::vector<LayerHealth>& health) const;
    std::vector<std::vector<uint8_t>> alive_;  // per layer and unit: ever z > 0
    std::vector<double> saturated_, seen_;     // per layer: saturated values, values seen

    // training/sample_step.cpp: with batch size 1, a network of at most kSampleMaxLayers dense
    // layers, none wider than kSampleMaxWidth, without dropout, softmax or noise, trained
    // by SGD without clip_norm. sample_step makes one whole step on row x, bitwise the
    // general path's, and returns true; or returns false with the parameters, optimiser
    // state and counters untouched (a NaN/inf loss or gradient, an overflowing update),
    // for the general path to redo the step.
    static constexpr std::size_t kSampleMaxLayers = 8, kSampleMaxWidth = 16;
    // grad_limit: the kernel's TinyUpdate limit for plain SGD (see sample_steps); set to
    // -1 when the step's update is made outside the kernel.
    // w: the row's sample weight, or null (the portable loops only: sample_plan leaves the kernel out then).
    bool sample_step(const T* x, const T* y, double lr, double& grad_limit, double& loss, double* grad_norm,
                     const T* w = nullptr);
    // fit_epoch's steps s .. end - 1 by sample_step, each recorded in stats as the general
    // path records it (rows by order when shuffled, lr from lr_schedule when given). Returns
    // the first step not made: end, or a step sample_step refused (the general path's then).
    // sample_weight, predictions: as fit_epoch's (each row's weight; its output copied out).
    // momentum_schedule: SGD's momentum per step, or null (the configured one).
    std::size_t sample_steps(const T* X, const T* Y, const std::size_t* order, std::size_t s, std::size_t end,
                             const double* lr_schedule, const double* momentum_schedule, EpochStats& stats,
                             const T* sample_weight = nullptr, T* predictions = nullptr);
    // Layer l beside its view sample_views_[l]: what the portable loops need besides.
    struct SampleLayer {
        const Activation* act;
        bool relu_like;             // alive units counted (activity_accumulate)
        bool saturating;            // sigmoid or tanh: saturations counted
        uint32_t alive = 0;         // bit j: unit j fired in a step so far (sample_flush adds it to alive_)
        std::size_t saturated = 0;  // saturated values so far (to saturated_)
    };
    // After ensure_capacity(1) and activity_reset(); portable_only: never the table's kernel
    // (sample weights or recorded predictions, which only the portable loops take).
    void sample_plan(bool portable_only = false);
    void sample_flush();  // the activity counted by sample_step into alive_, saturated_ and seen_
    std::size_t sample_steps_ = 0;  // steps sample_step made since sample_plan or sample_flush
    bool sample_kernel_applies() const;  // float32, mse, layers of <= 8 units with the kernel's activations
    std::vector<ukr::LayerView<T>> sample_views_;  // per layer; for float32 the kernel's TinyLayerF32 array
    std::vector<SampleLayer> sample_layers_;
    // float32, layers of at most 8 units, mse: the active table's whole-network kernel
    // (ukr::TinyStepFn) when it has one; null otherwise.
    ukr::TinyStepFn sample_kernel_ = nullptr;
    ukr::SgdFn<T> sample_sgd_ = nullptr;       // the table's SGD update
    bool sample_plain_sgd_ = false;            // no momentum, no decay: the kernel may update (TinyUpdate)
    bool sample_commit(const std::size_t* saturated);  // a step made: its saturations and counters

    std::size_t input_dim_;
    std::vector<DenseSpec> layers_;
    std::vector<std::size_t> dropout_layers_;  // dense layers with input dropout, in order
    uint64_t seed_;
    Loss loss_ = Loss::Mse;
    OptimizerConfig opt_;

    std::vector<std::size_t> w_off_, b_off_;  // views into params_ / grads_ / state
    std::vector<std::size_t> g_off_, be_off_, rm_off_, rv_off_;  // γ, β views; running_ views
    bool has_batchnorm_ = false;
    AlignedBuffer<T> params_, grads_, state1_, state2_, state3_, running_;
    AlignedBuffer<T> running_before_;  // running_ before the last training forward (see discard_running_update)

    std::size_t capacity_ = 0, last_batch_ = 0;
    bool last_training_ = false;
    std::vector<std::size_t> d_off_, m_off_, z_off_, a_off_;  // views into acts_
    std::vector<std::size_t> n_off_, xh_off_, s_off_;         // the normalisations' views into acts_
    std::vector<T> stat_parts_;  // distributed BatchNorm: this process's moments, then every process's
    AlignedBuffer<T> acts_, delta_a_, delta_b_, xbatch_, ybatch_;
    std::vector<T> wbatch_;  // a shuffled batch's sample weights (fit_epoch with weights)
    std::vector<std::size_t> order_;
    bool recording_ = false;
    AlignedBuffer<T> record_;
    std::vector<std::size_t> rec_off_;  // kRecorded views per layer into record_ (see Recorded)
    std::size_t rec_batch_ = 0;
    std::shared_mutex mutex_;

    // inference.cpp: one call's buffers for up to `rows` rows of every layer: the
    // activations (two, alternating layer by layer), Z, and where the network has them
    // a normalisation's N, X̂ and statistics and a dropout's scaled input.
    struct InferenceWorkspace {
        AlignedBuffer<T> buf;
        std::size_t rows = 0;
        T *act[2] = {nullptr, nullptr}, *z = nullptr, *n = nullptr, *xhat = nullptr, *s = nullptr, *d = nullptr;
    };
    // `count` workspaces for `rows` rows each, from the pool (made or grown when short),
    // back to the pool when the lease ends.
    class WorkspaceLease {
    public:
        WorkspaceLease(Network& net, std::size_t count, std::size_t rows);
        ~WorkspaceLease();
        WorkspaceLease(const WorkspaceLease&) = delete;
        WorkspaceLease& operator=(const WorkspaceLease&) = delete;
        InferenceWorkspace& operator[](std::size_t i) { return *held_[i]; }
    private:
        Network& net_;
        std::vector<std::unique_ptr<InferenceWorkspace>> held_;
    };
    void fit_workspace(InferenceWorkspace& ws, std::size_t rows) const;
    // X (B rows) → the output layer's A (into out, B × output_dim, when given) and Z, by
    // the inference kernels (kernels/gemm.hpp: ForwardPath). Returns {Z, A} of the output.
    std::pair<const T*, const T*> forward_inference(const T* X, std::size_t B, InferenceWorkspace& ws, T* out);
    std::mutex pool_mutex_;
    std::vector<std::unique_ptr<InferenceWorkspace>> pool_;
};

}  // namespace bp
