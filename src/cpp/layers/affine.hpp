// The per-feature affine step of the normalisations (layers/batchnorm.hpp and
// layers/layernorm.hpp), forward and backward, outputs first. x̂ is B rows of F
// features, row-major; γ, β have F values (null: no affine step):
//   forward:   Y = γ ⊙ x̂ + β          (γ null: Y = x̂)
//   backward:  dγ += Σ_r dY ⊙ x̂,  dβ += Σ_r dY,  dx̂ = dY ⊙ γ   (γ null: dx̂ = dY)
// Rows outer, features inner: contiguous and in a fixed order.
#pragma once
#include <cstddef>

namespace bp {

// Y[B,F] = γ ⊙ Xhat + β (Y = Xhat when gamma is null).
template <typename T>
void affine_forward(T* Y, const T* Xhat, const T* gamma, const T* beta, std::size_t B, std::size_t F) {
    if (!gamma) {
        for (std::size_t i = 0; i < B * F; ++i) Y[i] = Xhat[i];
        return;
    }
    for (std::size_t r = 0; r < B; ++r) {
        const T* xh = Xhat + r * F;
        T* y = Y + r * F;
        for (std::size_t j = 0; j < F; ++j) y[j] = gamma[j] * xh[j] + beta[j];
    }
}

// Given dY[B,F]: dγ[F] += Σ_r dY ⊙ Xhat, dβ[F] += Σ_r dY (nothing when dgamma is null).
template <typename T>
void affine_param_grads(T* dgamma, T* dbeta, const T* dY, const T* Xhat, std::size_t B, std::size_t F) {
    if (!dgamma) return;
    for (std::size_t r = 0; r < B; ++r) {
        const T* d = dY + r * F;
        const T* xh = Xhat + r * F;
        for (std::size_t j = 0; j < F; ++j) {
            dgamma[j] += d[j] * xh[j];
            dbeta[j] += d[j];
        }
    }
}

// Given dY[B,F], in place: accumulates dγ, dβ (null without affine) and leaves dx̂ = dY ⊙ γ in dY.
template <typename T>
void affine_backward(T* dY, T* dgamma, T* dbeta, const T* Xhat, const T* gamma, std::size_t B, std::size_t F) {
    affine_param_grads(dgamma, dbeta, dY, Xhat, B, F);
    if (!gamma) return;
    for (std::size_t r = 0; r < B; ++r) {
        T* d = dY + r * F;
        for (std::size_t j = 0; j < F; ++j) d[j] *= gamma[j];
    }
}

}  // namespace bp
