// The forward and backward passes of one batch, and the dropout masks they use.
//   forward:  N_l = norm(A_{l-1}) (a layer with input normalisation), D_l = dropout(N_l or A_{l-1})
//             (a layer with input dropout),  Z_l = D_l W_l + b_l,  A_l = f_l(Z_l)
//   backward: δ_L = dL/dZ_L;  dW_l = D_lᵀ δ_l,  db_l = Σ_rows δ_l,
//             δ_{l-1} = f'_{l-1}(Z) ⊙ norm'(dropout'(δ_l W_lᵀ))   (norm' also gives dγ, dβ)
// The activation is fused into the forward product's epilogue, and dropout'
// and f' into the backward one's, except below a softmax (a Jacobian) or a
// normalisation (its backward needs column or row sums first). The explainer's
// recording runs its own, unfused backward (recording.cpp).
#include <algorithm>
#include <cstring>
#include <string>

#include "layers/affine.hpp"
#include "layers/batchnorm.hpp"
#include "layers/dense.hpp"
#include "layers/layernorm.hpp"
#include "layers/epilogues.hpp"
#include "losses/losses.hpp"
#include "network/network.hpp"

namespace bp {

template <typename T>
void Network<T>::norm_forward_of(std::size_t l, const T* in, std::size_t B, bool training) {
    norm_forward_into(l, in, B, training, acts_.data() + n_off_[l], acts_.data() + xh_off_[l], acts_.data() + s_off_[l]);
}

template <typename T>
void Network<T>::norm_forward_into(std::size_t l, const T* in, std::size_t B, bool training, T* N, T* Xhat, T* S) {
    const NormSpec& nm = norm(l);
    const std::size_t F = fan_in(l);
    if (nm.kind == NormKind::Layer) {
        layernorm_forward(N, Xhat, S, S + B, S + 2 * B, in, gamma(l), beta(l), B, F, nm.eps);
        return;
    }
    T *mean = S, *var = S + F, *inv = S + 2 * F;
    if (training && stat_sync) {  // the global batch's: one gather of every process's moments
        gathered_moments(mean, var, in, B, F);
        batchnorm_update_running(running_mean(l), running_var(l), mean, var, F, stat_sync.rows, nm.momentum);
    } else if (training) {
        column_sums(mean, in, B, F);
        for (std::size_t j = 0; j < F; ++j) mean[j] /= T(B);
        column_centered_squares(var, in, mean, B, F);
        for (std::size_t j = 0; j < F; ++j) var[j] /= T(B);
        batchnorm_update_running(running_mean(l), running_var(l), mean, var, F, B, nm.momentum);
    } else {
        std::memcpy(mean, running_mean(l), F * sizeof(T));
        std::memcpy(var, running_var(l), F * sizeof(T));
    }
    inverse_std(inv, var, F, nm.eps);
    batchnorm_normalize(N, Xhat, in, mean, inv, gamma(l), beta(l), B, F);
}

// mean[F], var[F] of the global batch from this process's B rows `in` and the others' (stat_sync).
template <typename T>
void Network<T>::gathered_moments(T* mean, T* var, const T* in, std::size_t B, std::size_t F) {
    const std::size_t count = 1 + 2 * F, P = stat_sync.ranks;
    if (stat_parts_.size() < (P + 1) * count) stat_parts_.resize((P + 1) * count);
    T* local = stat_parts_.data();
    T* parts = local + count;
    batchnorm_local_moments(local, in, B, F);
    stat_sync.gather(local, count, parts);
    batchnorm_combine_moments(mean, var, parts, P, F);
}

template <typename T>
void Network<T>::norm_backward_of(std::size_t l, T* d, std::size_t B, bool input_grad) {
    const NormSpec& nm = norm(l);
    const std::size_t F = fan_in(l);
    const T* Xhat = norm_xhat(l);
    T* S = acts_.data() + s_off_[l];
    if (!input_grad) {  // the network's input: dγ, dβ only
        affine_param_grads(dgamma(l), dbeta(l), d, Xhat, B, F);
        return;
    }
    if (nm.kind == NormKind::Layer) {
        layernorm_backward(d, dgamma(l), dbeta(l), Xhat, S + 2 * B, gamma(l), B, F);
        return;
    }
    T *inv = S + 2 * F, *s1 = S + 3 * F, *s2 = S + 4 * F;
    batchnorm_backward_sums(d, dgamma(l), dbeta(l), s1, s2, Xhat, gamma(l), B, F);
    if (!last_training_) {  // the running statistics are constants
        scale_columns(d, inv, B, F);
        return;
    }
    if (stat_sync) stat_sync.sum(s1, 2 * F);  // s1, s2 adjacent: one collective
    batchnorm_backward_input(d, Xhat, s1, s2, inv, B, F, stat_sync ? stat_sync.rows : B);
}

template <typename T>
void Network<T>::stat_sync_idle() {
    require(bool(stat_sync), "stat_sync", "a sync function (set_stat_sync)", "none");
    ensure_capacity(1);
    std::copy(running_.data(), running_.data() + running_.size(), running_before_.data());
    const std::size_t L = layers_.size();
    for (std::size_t l = 0; l < L; ++l) {
        if (norm(l).kind != NormKind::Batch) continue;
        const std::size_t F = fan_in(l);
        T* mean = acts_.data() + s_off_[l];
        gathered_moments(mean, mean + F, nullptr, 0, F);
        batchnorm_update_running(running_mean(l), running_var(l), mean, mean + F, F, stat_sync.rows,
                                 norm(l).momentum);
    }
    for (std::size_t l = L; l-- > 0;) {
        if (norm(l).kind != NormKind::Batch || !norm_input_grad(l)) continue;
        T* s1 = acts_.data() + s_off_[l] + 3 * fan_in(l);
        std::fill(s1, s1 + 2 * fan_in(l), T(0));
        stat_sync.sum(s1, 2 * fan_in(l));
    }
    last_batch_ = 0;
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

// X (B, input_dim) → D, M, Z, A of every layer.
template <typename T>
void Network<T>::forward(const T* X, std::size_t B, bool training, bool fuse, const std::vector<const T*>* masks) {
    if (training && has_batchnorm_ && (stat_sync ? stat_sync.rows : B) < 2)
        for (std::size_t l = 0; l < layers_.size(); ++l)
            require(norm(l).kind != NormKind::Batch, "BatchNorm layer " + std::to_string(norm(l).index),
                    "a training batch of more than one sample (its variance over one sample is 0; as "
                    "torch, training refuses it: use a larger batch, or drop the last incomplete one)",
                    "a batch of " + std::to_string(stat_sync ? stat_sync.rows : B));
    if (training && has_batchnorm_)  // the step may yet be refused: keep the estimates it moves
        std::copy(running_.data(), running_.data() + running_.size(), running_before_.data());
    const T* a_prev = X;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        const std::size_t in = fan_in(l), out = fan_out(l);
        if (has_norm(l)) {
            norm_forward_of(l, a_prev, B, training);
            a_prev = acts_.data() + n_off_[l];
        }
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
        if (act.kind != Act::Softmax && !noisy && fuse) {  // A = f(Z) fused into the product
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
double Network<T>::output_gradient(T* delta, const T* Y, std::size_t B, const T* weights) {
    const std::size_t L = layers_.size(), K = output_dim();
    loss_count_ = double(B);
    if (weights && weight_norm == WeightNorm::WeightSum) {  // scikit-learn's Σ w_i·l_i / Σ w_i
        double sum = 0;
        for (std::size_t r = 0; r < B; ++r) sum += double(weights[r]);
        loss_count_ = sum;
        if (!(sum > 0)) {  // a batch of weight zero: nothing to learn from (zero gradients, loss 0)
            std::fill(delta, delta + B * K, T(0));
            return 0.0;
        }
        return loss_forward_backward(loss_, delta, Z(L - 1), A(L - 1), Y, B, K, weights, sum);
    }
    return loss_forward_backward(loss_, delta, Z(L - 1), A(L - 1), Y, B, K, weights);
}

template <typename T>
void Network<T>::dense_backward_of(std::size_t l, T* d_in, const T* delta, const T* X, std::size_t B) {
    dense_backward(d_in, dW(l), db(l), delta, layer_input(l, X), W(l), B, fan_in(l), fan_out(l));
}

template <typename T>
void Network<T>::dropout_backward_of(std::size_t l, T* d, std::size_t B) {
    if (!has_dropout(l)) return;
    const DropoutSpec& drop = layers_[l].dropout;
    dropout_backward(d, last_training_ ? mask(l) : nullptr, B * fan_in(l),
                     T(last_training_ ? drop.train_scale() : drop.inference_scale()));
}

template <typename T>
void Network<T>::activation_backward_of(std::size_t l, T* d, std::size_t B) {
    activation_backward(layers_[l].act, d, d, Z(l), A(l), B, fan_out(l));
}

// After forward(X): accumulates dW, db of every layer; returns the loss.
template <typename T>
double Network<T>::backward(const T* X, const T* Y, std::size_t B, const T* weights) {
    const std::size_t L = layers_.size();
    T* delta = delta_a_.data();       // dL/dZ of the layer being processed
    T* delta_prev = delta_b_.data();  // dL/dA, then dL/dZ, of the layer below
    const double loss = output_gradient(delta, Y, B, weights);  // the only use of the weights
    if (!loss_is_fused(loss_)) activation_backward_of(L - 1, delta, B);  // dL/dŶ → dL/dZ
    for (std::size_t l = L; l-- > 0;) {
        const Activation* below = l > 0 ? &layers_[l - 1].act : nullptr;
        if (below && below->kind != Act::Softmax && !has_norm(l)) {  // dL/dD → dL/dZ of the layer below, in the epilogue
            const DropoutSpec* drop = has_dropout(l) ? &layers_[l].dropout : nullptr;
            const bool masked = drop && last_training_;
            const double scale = !drop ? 1.0 : masked ? drop->train_scale() : drop->inference_scale();
            DeltaEpilogue<T> fused{below, delta_prev, masked ? mask(l) : nullptr, T(scale), Z(l - 1), A(l - 1),
                                   fan_in(l)};
            const GemmEpilogue epi = fused.epilogue();
            dense_backward(delta_prev, dW(l), db(l), delta, layer_input(l, X), W(l), B, fan_in(l), fan_out(l), &epi);
        } else {
            // Layer 0 needs dL/d(its input) only for the γ, β of a normalisation there.
            const bool d_in = below || has_affine(l);
            dense_backward_of(l, d_in ? delta_prev : nullptr, delta, X, B);
            if (!d_in) break;
            dropout_backward_of(l, delta_prev, B);
            if (has_norm(l)) norm_backward_of(l, delta_prev, B, norm_input_grad(l));
            if (!below) break;
            activation_backward_of(l - 1, delta_prev, B);
        }
        std::swap(delta, delta_prev);
    }
    return loss;
}

template <typename T>
double Network<T>::forward_backward(const T* X, const T* Y, std::size_t B, bool training,
                                    const std::vector<const T*>* masks, const T* weights) {
    forward(X, B, training, !recording_, masks);
    activity_accumulate(B);
    return recording_ ? backward_recorded(X, Y, B, weights) : backward(X, Y, B, weights);
}

template <typename T>
double Network<T>::loss_and_gradients(const T* X, const T* Y, std::size_t n, bool training,
                                      const std::vector<const T*>* masks, const T* weights) {
    ensure_capacity(n);
    zero_grads();
    activity_reset();
    return forward_backward(X, Y, n, training, masks, weights);
}

#define BP_PASSES(T)                                                                                        \
    template void Network<T>::norm_forward_of(std::size_t, const T*, std::size_t, bool);                     \
    template void Network<T>::norm_forward_into(std::size_t, const T*, std::size_t, bool, T*, T*, T*);     \
    template void Network<T>::norm_backward_of(std::size_t, T*, std::size_t, bool);                         \
    template void Network<T>::gathered_moments(T*, T*, const T*, std::size_t, std::size_t);                 \
    template void Network<T>::stat_sync_idle();                                                             \
    template Pcg32 Network<T>::dropout_rng(std::size_t) const;                                              \
    template void Network<T>::dropout_mask_rows(std::size_t, const int64_t*, std::size_t, T*) const;        \
    template void Network<T>::forward(const T*, std::size_t, bool, bool, const std::vector<const T*>*);     \
    template double Network<T>::output_gradient(T*, const T*, std::size_t, const T*);                       \
    template void Network<T>::dense_backward_of(std::size_t, T*, const T*, const T*, std::size_t);          \
    template void Network<T>::dropout_backward_of(std::size_t, T*, std::size_t);                            \
    template void Network<T>::activation_backward_of(std::size_t, T*, std::size_t);                         \
    template double Network<T>::backward(const T*, const T*, std::size_t, const T*);                        \
    template double Network<T>::forward_backward(const T*, const T*, std::size_t, bool,                     \
                                                 const std::vector<const T*>*, const T*);                   \
    template double Network<T>::loss_and_gradients(const T*, const T*, std::size_t, bool,                   \
                                                   const std::vector<const T*>*, const T*);
BP_PASSES(float)
BP_PASSES(double)

}  // namespace bp
