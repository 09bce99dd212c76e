// Losses: the mean loss of a batch and its gradient. For mse, mae and huber the
// gradient is dL/dŶ (then the output activation's backward runs); the two
// cross-entropies are fused with their output activation and give dL/dZ
// directly, which is both cheaper and stable:
//   sigmoid + BCE:  L = max(z,0) − z·y + log1p(e^−|z|),  dL/dz = σ(z) − y
//   softmax + CE:   L = −Σ_k y_k log softmax(z)_k,      dL/dz = softmax(z) − y
// (divide by the number of averaged terms). See docs/internals.md, "Losses".
// With per-sample weights w (docs/internals.md "Sample weights"): L = Σ_r w_r·l_r / count,
// l_r the row's loss (its mean over the outputs for mse, mae, huber and BCE), each
// gradient row multiplied by w_r; count is the batch's rows (Keras's convention) or
// the weights' sum Σ_r w_r (scikit-learn's), as the caller chooses.
#pragma once
#include <cmath>
#include <cstddef>
#include <string>

#include "activations/activations.hpp"
#include "common/enums.hpp"
#include "common/errors.hpp"

namespace bp {

// True when the loss's gradient is with respect to the logits Z (fused).
inline bool loss_is_fused(Loss loss) {
    return loss == Loss::BinaryCrossentropy || loss == Loss::CategoricalCrossentropy;
}

// The output activation a fused loss needs (Identity when any will do).
inline Act loss_required_activation(Loss loss) {
    switch (loss) {
        case Loss::BinaryCrossentropy: return Act::Sigmoid;
        case Loss::CategoricalCrossentropy: return Act::Softmax;
        default: return Act::Identity;
    }
}

// The loss/output-activation pairing rule, stated once: a fused loss needs its
// activation on the output layer (Network::set_loss and, bound as
// _core.check_loss_activation, pybackprop.losses both call this).
inline void check_loss_activation(Loss loss, Act out) {
    const Act needed = loss_required_activation(loss);
    if (loss_is_fused(loss) && out != needed)
        throw ValueError(std::string("loss: ") + kLossNames[std::size_t(loss)] +
                         " expected an output layer with activation '" + kActNames[std::size_t(needed)] +
                         "', got '" + kActNames[std::size_t(out)] + "'");
}

// Mean loss over the batch, and its gradient into G (rows, cols):
// G = dL/dŶ for unfused losses, dL/dZ for fused ones. Z are the output
// logits, A = f(Z) the predictions, Y the targets (one-hot rows for CE).
// Sums are taken in double, so float32 losses are reported accurately.
// count (> 0) replaces rows as the weighted loss's divisor (< 0: rows).
template <typename T>
double loss_forward_backward_weighted(Loss loss, T* G, const T* Z, const T* A, const T* Y, const T* w,
                                      std::size_t rows, std::size_t cols, double count);

template <typename T>
double loss_forward_backward(Loss loss, T* G, const T* Z, const T* A, const T* Y,
                             std::size_t rows, std::size_t cols, const T* w = nullptr, double count = -1.0) {
    if (w) return loss_forward_backward_weighted(loss, G, Z, A, Y, w, rows, cols, count);  // once per batch
    const std::size_t n = rows * cols;
    const T inv_n = T(1) / static_cast<T>(n);
    double sum = 0;
    switch (loss) {
        case Loss::Mse:
            for (std::size_t i = 0; i < n; ++i) {
                const T d = A[i] - Y[i];
                sum += double(d) * double(d);
                if (G) G[i] = T(2) * d * inv_n;
            }
            return sum / double(n);
        case Loss::Mae:
            for (std::size_t i = 0; i < n; ++i) {
                const T d = A[i] - Y[i];
                sum += std::fabs(double(d));
                if (G) G[i] = (d > T(0) ? T(1) : d < T(0) ? T(-1) : T(0)) * inv_n;
            }
            return sum / double(n);
        case Loss::Huber:  // delta = 1
            for (std::size_t i = 0; i < n; ++i) {
                const T d = A[i] - Y[i];
                const double ad = std::fabs(double(d));
                sum += ad < 1.0 ? 0.5 * double(d) * double(d) : ad - 0.5;
                if (G) G[i] = (d > T(1) ? T(1) : d < T(-1) ? T(-1) : d) * inv_n;
            }
            return sum / double(n);
        case Loss::BinaryCrossentropy:
            for (std::size_t i = 0; i < n; ++i) {
                const T z = Z[i];
                const T l = (z > T(0) ? z : T(0)) - z * Y[i] + std::log1p(std::exp(-std::fabs(z)));
                sum += double(l);
                if (G) G[i] = (A[i] - Y[i]) * inv_n;
            }
            return sum / double(n);
        case Loss::CategoricalCrossentropy: {
            const T inv_rows = T(1) / static_cast<T>(rows);
            for (std::size_t r = 0; r < rows; ++r) {
                const T* z = Z + r * cols;
                T m = z[0];
                for (std::size_t j = 1; j < cols; ++j) m = z[j] > m ? z[j] : m;
                T s = 0;
                for (std::size_t j = 0; j < cols; ++j) s += std::exp(z[j] - m);
                const T log_s = std::log(s);
                T l = 0;  // −Σ y log softmax(z), log softmax = z − m − log Σ e^(z−m)
                for (std::size_t j = 0; j < cols; ++j) l -= Y[r * cols + j] * (z[j] - m - log_s);
                sum += double(l);
                if (G)
                    for (std::size_t j = 0; j < cols; ++j)
                        G[r * cols + j] = (A[r * cols + j] - Y[r * cols + j]) * inv_rows;
            }
            return sum / double(rows);
        }
    }
    return sum;
}

// The weighted twin of loss_forward_backward: the same terms in the same order,
// each multiplied by its row's weight (the loss term in double, the gradient in
// T), so weights of exactly one give bitwise the unweighted results. Keras's
// sum_over_batch_size: Σ_r w_r·l_r / rows, l_r the mean over the row's outputs
// (a sum over classes for CE, which has one term per row); with count > 0,
// Σ_r w_r·l_r / count (scikit-learn's weighted mean when count = Σ_r w_r).
// (rows as a double times cols is exactly rows·cols: the same divisors as before.)
template <typename T>
double loss_forward_backward_weighted(Loss loss, T* G, const T* Z, const T* A, const T* Y, const T* w,
                                      std::size_t rows, std::size_t cols, double count) {
    const double per_output = count > 0 ? count : double(rows);
    const double n = per_output * double(cols);
    const T inv_n = T(1) / static_cast<T>(n);
    double sum = 0;
    switch (loss) {
        case Loss::Mse:
            for (std::size_t r = 0, i = 0; r < rows; ++r)
                for (std::size_t j = 0; j < cols; ++j, ++i) {
                    const T d = A[i] - Y[i];
                    sum += double(w[r]) * (double(d) * double(d));
                    if (G) G[i] = T(2) * d * inv_n * w[r];
                }
            return sum / n;
        case Loss::Mae:
            for (std::size_t r = 0, i = 0; r < rows; ++r)
                for (std::size_t j = 0; j < cols; ++j, ++i) {
                    const T d = A[i] - Y[i];
                    sum += double(w[r]) * std::fabs(double(d));
                    if (G) G[i] = (d > T(0) ? T(1) : d < T(0) ? T(-1) : T(0)) * inv_n * w[r];
                }
            return sum / n;
        case Loss::Huber:
            for (std::size_t r = 0, i = 0; r < rows; ++r)
                for (std::size_t j = 0; j < cols; ++j, ++i) {
                    const T d = A[i] - Y[i];
                    const double ad = std::fabs(double(d));
                    sum += double(w[r]) * (ad < 1.0 ? 0.5 * double(d) * double(d) : ad - 0.5);
                    if (G) G[i] = (d > T(1) ? T(1) : d < T(-1) ? T(-1) : d) * inv_n * w[r];
                }
            return sum / n;
        case Loss::BinaryCrossentropy:
            for (std::size_t r = 0, i = 0; r < rows; ++r)
                for (std::size_t j = 0; j < cols; ++j, ++i) {
                    const T z = Z[i];
                    const T l = (z > T(0) ? z : T(0)) - z * Y[i] + std::log1p(std::exp(-std::fabs(z)));
                    sum += double(w[r]) * double(l);
                    if (G) G[i] = (A[i] - Y[i]) * inv_n * w[r];
                }
            return sum / n;
        case Loss::CategoricalCrossentropy: {
            const T inv_rows = T(1) / static_cast<T>(per_output);
            for (std::size_t r = 0; r < rows; ++r) {
                const T* z = Z + r * cols;
                T m = z[0];
                for (std::size_t j = 1; j < cols; ++j) m = z[j] > m ? z[j] : m;
                T s = 0;
                for (std::size_t j = 0; j < cols; ++j) s += std::exp(z[j] - m);
                const T log_s = std::log(s);
                T l = 0;
                for (std::size_t j = 0; j < cols; ++j) l -= Y[r * cols + j] * (z[j] - m - log_s);
                sum += double(w[r]) * double(l);
                if (G)
                    for (std::size_t j = 0; j < cols; ++j)
                        G[r * cols + j] = (A[r * cols + j] - Y[r * cols + j]) * inv_rows * w[r];
            }
            return sum / per_output;
        }
    }
    return sum;
}

}  // namespace bp
