// Inference: predict and evaluate in chunks, so memory stays bounded for any n:
// of the rows the workspace already holds (a training batch), or of 256, enough
// for the GEMMs' blocking while the activations of a wide network stay a few MiB.
#include <algorithm>
#include <cstring>

#include "losses/losses.hpp"
#include "network/network.hpp"

namespace bp {

constexpr std::size_t kInferenceChunk = 256;

template <typename T>
void Network<T>::predict(T* out, const T* X, std::size_t n) {
    const std::size_t K = output_dim(), chunk = std::max(kInferenceChunk, capacity_);
    for (std::size_t start = 0; start < n; start += chunk) {
        const std::size_t B = std::min(chunk, n - start);
        ensure_capacity(B);
        forward(X + start * input_dim_, B, false, !recording_);
        std::memcpy(out + start * K, A(layers_.size() - 1), B * K * sizeof(T));
    }
}

template <typename T>
double Network<T>::evaluate(const T* X, const T* Y, std::size_t n, const T* weights) {
    const std::size_t K = output_dim(), L = layers_.size(), chunk = std::max(kInferenceChunk, capacity_);
    double total = 0;
    for (std::size_t start = 0; start < n; start += chunk) {
        const std::size_t B = std::min(chunk, n - start);
        ensure_capacity(B);
        forward(X + start * input_dim_, B, false, !recording_);
        total += loss_forward_backward<T>(loss_, nullptr, Z(L - 1), A(L - 1), Y + start * K, B, K,
                                          weights ? weights + start : nullptr) * double(B);
    }
    return total / double(n);
}

#define BP_INFERENCE(T)                                                       \
    template void Network<T>::predict(T*, const T*, std::size_t);             \
    template double Network<T>::evaluate(const T*, const T*, std::size_t, const T*);
BP_INFERENCE(float)
BP_INFERENCE(double)

}  // namespace bp
