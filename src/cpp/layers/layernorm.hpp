// Layer normalisation over the features of each row (torch.nn.LayerNorm(F)),
// forward and backward, outputs first. X is B rows of F features, row-major;
// the statistics are per row r (the same in training and inference):
//   μ_r = Σ_j X_rj / F,   σ²_r = Σ_j (X_rj − μ_r)² / F  (biased),
//   x̂ = (X − μ) / √(σ² + ε),   Y = γ ⊙ x̂ + β   (γ, β per feature; null: Y = x̂)
//   backward, with dx̂ = dY ⊙ γ:
//   dγ += Σ_r dY ⊙ x̂,  dβ += Σ_r dY,
//   dX_r = (dx̂_r − Σ_j dx̂_rj / F − x̂_r · Σ_j (dx̂_rj x̂_rj) / F) / √(σ²_r + ε)
// Each row is two contiguous passes for its statistics and one for x̂; no branch
// inside the loops. A row's sums run in eight interleaved lanes (row_sum), a
// fixed order that vectorises without reassociating.
// The affine step (γ, β) is layers/affine.hpp's, shared with BatchNorm.
#pragma once
#include <cmath>
#include <cstddef>

#include "layers/affine.hpp"

namespace bp {

// Σ_j term(j), j < n: lane k adds the terms j ≡ k (mod 8) in order, then the lanes
// are added 0..7 and the tail after them (the same order on every machine).
template <typename T, typename Term>
inline T row_sum(std::size_t n, Term&& term) {
    T lane[8] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
    std::size_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (std::size_t k = 0; k < 8; ++k) lane[k] += term(j + k);
    T s = T(0);
    for (std::size_t k = 0; k < 8; ++k) s += lane[k];
    for (; j < n; ++j) s += term(j);
    return s;
}

// mean[B], var[B], inv_std[B], Xhat[B,F], Y[B,F] (Y = Xhat when gamma is null).
template <typename T>
void layernorm_forward(T* Y, T* Xhat, T* mean, T* var, T* inv_std, const T* X, const T* gamma, const T* beta,
                       std::size_t B, std::size_t F, double eps) {
    const T invF = T(1) / T(F);
    for (std::size_t r = 0; r < B; ++r) {
        const T* x = X + r * F;
        const T mu = row_sum<T>(F, [x](std::size_t j) { return x[j]; }) * invF;
        const T q = row_sum<T>(F, [x, mu](std::size_t j) { return (x[j] - mu) * (x[j] - mu); });
        const T v = q * invF, inv = T(1) / std::sqrt(v + T(eps));
        mean[r] = mu;
        var[r] = v;
        inv_std[r] = inv;
        T* xh = Xhat + r * F;
        for (std::size_t j = 0; j < F; ++j) xh[j] = (x[j] - mu) * inv;
    }
    affine_forward(Y, Xhat, gamma, beta, B, F);
}

// Given dY[B,F], in place: dY becomes dX; accumulates dγ, dβ (null without affine).
template <typename T>
void layernorm_backward(T* dY, T* dgamma, T* dbeta, const T* Xhat, const T* inv_std, const T* gamma,
                        std::size_t B, std::size_t F) {
    affine_backward(dY, dgamma, dbeta, Xhat, gamma, B, F);
    const T invF = T(1) / T(F);
    for (std::size_t r = 0; r < B; ++r) {
        T* d = dY + r * F;
        const T* xh = Xhat + r * F;
        const T s1 = row_sum<T>(F, [d](std::size_t j) { return d[j]; });
        const T s2 = row_sum<T>(F, [d, xh](std::size_t j) { return d[j] * xh[j]; });
        const T m1 = s1 * invF, m2 = s2 * invF, inv = inv_std[r];
        for (std::size_t j = 0; j < F; ++j) d[j] = (d[j] - m1 - xh[j] * m2) * inv;
    }
}

}  // namespace bp
