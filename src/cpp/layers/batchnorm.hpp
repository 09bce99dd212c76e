// Batch normalisation over the features (torch.nn.BatchNorm1d), forward and
// backward, outputs first. X is B rows of F features, row-major; every statistic
// is per feature j, over the N rows of the (global) batch:
//   training:  μ_j = Σ_r X_rj / N,  σ²_j = Σ_r (X_rj − μ_j)² / N  (biased),
//              x̂ = (X − μ) / √(σ² + ε),   Y = γ ⊙ x̂ + β  (γ, β null: Y = x̂)
//              running_mean ← (1 − m)·running_mean + m·μ
//              running_var  ← (1 − m)·running_var  + m·σ²·N/(N − 1)  (unbiased)
//   inference: x̂ = (X − running_mean) / √(running_var + ε)
//   backward (training), with dx̂ = dY ⊙ γ:
//              dγ += Σ_r dY ⊙ x̂,  dβ += Σ_r dY,
//              dX = (dx̂ − Σ_r dx̂ / N − x̂ ⊙ Σ_r (dx̂ ⊙ x̂) / N) / √(σ² + ε)
//   backward (inference): dX = dx̂ / √(running_var + ε)
//   distributed (P processes, process p with n_p of the N rows): each process's
//   moments (n_p, μ_p, M2_p = Σ_r (X_rj − μ_p)², two passes over its rows) are
//   gathered, and every process combines them in rank order with Chan, Golub and
//   LeVeque's pairwise update (a: the processes before p, combined so far):
//              n = n_a + n_p,  δ = μ_p − μ_a,  μ = μ_a + δ·n_p/n,
//              M2 = M2_a + M2_p + δ²·n_a·n_p/n;   σ² = M2 / N
//   so that every process has bitwise the same μ, σ².
// The sums run rows outer, features inner: contiguous, branch-free and in a fixed
// order. They are separate steps so that distributed training can exchange the
// statistics between the pieces (the global batch's); N is the global rows.
// The affine step (γ, β) is layers/affine.hpp's, shared with LayerNorm.
#pragma once
#include <cmath>
#include <cstddef>

#include "layers/affine.hpp"

namespace bp {

// sum[F] = Σ_r X[r, :]
template <typename T>
void column_sums(T* sum, const T* X, std::size_t B, std::size_t F) {
    for (std::size_t j = 0; j < F; ++j) sum[j] = T(0);
    for (std::size_t r = 0; r < B; ++r) {
        const T* x = X + r * F;
        for (std::size_t j = 0; j < F; ++j) sum[j] += x[j];
    }
}

// sq[F] = Σ_r (X[r, :] − mean)²
template <typename T>
void column_centered_squares(T* sq, const T* X, const T* mean, std::size_t B, std::size_t F) {
    for (std::size_t j = 0; j < F; ++j) sq[j] = T(0);
    for (std::size_t r = 0; r < B; ++r) {
        const T* x = X + r * F;
        for (std::size_t j = 0; j < F; ++j) {
            const T c = x[j] - mean[j];
            sq[j] += c * c;
        }
    }
}

// One process's moments, packed for the exchange: packed[1 + 2F] = [n, μ[F], M2[F]] with
// n = B (exact in float32 up to 2^24 rows), μ = Σ_r X[r, :] / B, M2 = Σ_r (X[r, :] − μ)²
// (all zero when B = 0).
template <typename T>
void batchnorm_local_moments(T* packed, const T* X, std::size_t B, std::size_t F) {
    T *mean = packed + 1, *m2 = packed + 1 + F;
    packed[0] = T(B);
    column_sums(mean, X, B, F);
    if (B > 0)
        for (std::size_t j = 0; j < F; ++j) mean[j] /= T(B);
    column_centered_squares(m2, X, mean, B, F);
}

// mean[F], var[F] (biased) of the rows of P processes from their packed moments, parts[P, 1 + 2F]
// in rank order (batchnorm_local_moments), combined pairwise in that order (Chan et al.; a part
// with n = 0 is skipped). Returns N = Σ n_p. With P = 1 the result is that process's bitwise.
template <typename T>
std::size_t batchnorm_combine_moments(T* mean, T* var, const T* parts, std::size_t P, std::size_t F) {
    for (std::size_t j = 0; j < F; ++j) mean[j] = var[j] = T(0);  // var holds M2 until the end
    std::size_t n = 0;
    for (std::size_t p = 0; p < P; ++p) {
        const T* part = parts + p * (1 + 2 * F);
        const std::size_t np = std::size_t(part[0]);
        if (np == 0) continue;
        const std::size_t na = n;
        n += np;
        const T w = T(double(np) / double(n)), cross = T(double(na) * double(np) / double(n));
        const T *mp = part + 1, *qp = part + 1 + F;
        for (std::size_t j = 0; j < F; ++j) {
            const T delta = mp[j] - mean[j];
            mean[j] += delta * w;
            var[j] = var[j] + qp[j] + delta * delta * cross;
        }
    }
    if (n > 0)
        for (std::size_t j = 0; j < F; ++j) var[j] /= T(n);
    return n;
}

// Xhat[B,F] = (X − mean) ⊙ inv_std;  Y[B,F] = γ ⊙ Xhat + β (Y = Xhat when gamma is null).
template <typename T>
void batchnorm_normalize(T* Y, T* Xhat, const T* X, const T* mean, const T* inv_std, const T* gamma, const T* beta,
                         std::size_t B, std::size_t F) {
    for (std::size_t r = 0; r < B; ++r) {
        const T* x = X + r * F;
        T* xh = Xhat + r * F;
        for (std::size_t j = 0; j < F; ++j) xh[j] = (x[j] - mean[j]) * inv_std[j];
    }
    affine_forward(Y, Xhat, gamma, beta, B, F);
}

// inv_std[F] = 1/√(var + ε)
template <typename T>
void inverse_std(T* inv_std, const T* var, std::size_t F, double eps) {
    for (std::size_t j = 0; j < F; ++j) inv_std[j] = T(1) / std::sqrt(var[j] + T(eps));
}

// The running estimates after a training batch of N rows with statistics mean, var (biased).
template <typename T>
void batchnorm_update_running(T* running_mean, T* running_var, const T* mean, const T* var, std::size_t F,
                              std::size_t N, double momentum) {
    const T m = T(momentum), keep = T(1) - T(momentum), unbias = T(double(N) / double(N - 1));
    for (std::size_t j = 0; j < F; ++j) {
        running_mean[j] = keep * running_mean[j] + m * mean[j];
        running_var[j] = keep * running_var[j] + m * (var[j] * unbias);
    }
}

// Given dY[B,F]: accumulates dγ, dβ (null without affine) and leaves dx̂ = dY ⊙ γ in dY
// (in place), with s1[F] = Σ_r dx̂ and s2[F] = Σ_r dx̂ ⊙ x̂ (the sums dX needs).
template <typename T>
void batchnorm_backward_sums(T* dY, T* dgamma, T* dbeta, T* s1, T* s2, const T* Xhat, const T* gamma,
                             std::size_t B, std::size_t F) {
    affine_backward(dY, dgamma, dbeta, Xhat, gamma, B, F);
    for (std::size_t j = 0; j < F; ++j) s1[j] = s2[j] = T(0);
    for (std::size_t r = 0; r < B; ++r) {
        const T* d = dY + r * F;
        const T* xh = Xhat + r * F;
        for (std::size_t j = 0; j < F; ++j) {
            s1[j] += d[j];
            s2[j] += d[j] * xh[j];
        }
    }
}

// dX[B,F] = (dx̂ − s1/N − x̂ ⊙ s2/N) ⊙ inv_std, in place of dx̂ (training).
template <typename T>
void batchnorm_backward_input(T* d, const T* Xhat, const T* s1, const T* s2, const T* inv_std, std::size_t B,
                              std::size_t F, std::size_t N) {
    const T invN = T(1) / T(N);
    for (std::size_t r = 0; r < B; ++r) {
        T* dr = d + r * F;
        const T* xh = Xhat + r * F;
        for (std::size_t j = 0; j < F; ++j) dr[j] = (dr[j] - s1[j] * invN - xh[j] * (s2[j] * invN)) * inv_std[j];
    }
}

// dX[B,F] = dx̂ ⊙ inv_std, in place (inference: the statistics are constants).
template <typename T>
void scale_columns(T* d, const T* inv_std, std::size_t B, std::size_t F) {
    for (std::size_t r = 0; r < B; ++r) {
        T* dr = d + r * F;
        for (std::size_t j = 0; j < F; ++j) dr[j] *= inv_std[j];
    }
}

}  // namespace bp
