// The dense (fully connected) layer, forward and backward, outputs first.
#pragma once
#include <cstddef>

#include "kernels/gemm.hpp"

namespace bp {

// Z[B,OUT] = A[B,IN] · W[IN,OUT] + b[OUT]      (b may be null: no bias)
template <typename T>
void dense_forward(T* Z, const T* A, const T* W, const T* b, std::size_t B, std::size_t IN,
                   std::size_t OUT) {
    for (std::size_t r = 0; r < B; ++r)
        for (std::size_t j = 0; j < OUT; ++j) Z[r * OUT + j] = b ? b[j] : T(0);
    matmul_nn(Z, A, W, B, IN, OUT);
}

// Given dZ[B,OUT] = dL/dZ, accumulates
//   dW[IN,OUT] += Aᵀ · dZ,   db[OUT] += Σ_rows dZ   (db may be null)
// and, unless dA is null (the first layer needs no input gradient), writes
//   dA[B,IN] = dZ · Wᵀ.
// Gradients accumulate: zeroing them is the caller's separate, visible step.
template <typename T>
void dense_backward(T* dA, T* dW, T* db, const T* dZ, const T* A, const T* W, std::size_t B,
                    std::size_t IN, std::size_t OUT) {
    matmul_tn(dW, A, dZ, B, IN, OUT);
    if (db)
        for (std::size_t r = 0; r < B; ++r)
            for (std::size_t j = 0; j < OUT; ++j) db[j] += dZ[r * OUT + j];
    if (dA) {
        for (std::size_t i = 0; i < B * IN; ++i) dA[i] = T(0);
        matmul_nt(dA, dZ, W, B, OUT, IN);
    }
}

}  // namespace bp
