// Activations a = f(z) and their backward dz = dL/da · f'(z), one table entry
// per activation. Conventions (docs/internals.md) are PyTorch's: relu'(0) = 0,
// leaky_relu'(0) = alpha, softplus is linear above 20. Every formula is written
// so that no exp() overflows for |z| up to 1e4.
#pragma once
#include <cmath>
#include <cstddef>
#include <type_traits>

#include "common/enums.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/scalar_ops.hpp"

namespace bp {

struct Activation {
    Act kind = Act::Identity;
    double alpha = 0.01;  // leaky_relu slope (0.01) or elu scale (1.0)
    double sigma = 0.1;   // noisy_relu noise standard deviation
};

template <typename T>
inline T stable_sigmoid(T z) {
    if (z >= T(0)) return T(1) / (T(1) + std::exp(-z));
    const T e = std::exp(z);
    return e / (T(1) + e);
}

template <typename T>
inline T softplus(T z) {
    return z > T(20) ? z : std::log1p(std::exp(z));
}

// float32: fast_tanhf (kernels/scalar_ops.hpp); float64: std::tanh.
template <typename T>
inline T tanh_of(T z) {
    if constexpr (std::is_same_v<T, float>)
        return fast_tanhf(z);
    else
        return std::tanh(z);
}

// The gradient-flow diagnostics (Network's dead and saturated fractions): a
// relu-like unit is dead while z <= 0 for every sample; a sigmoid or tanh output
// is saturated below saturation_low (0.01 sigmoid, -0.99 tanh) or above 0.99.
inline bool relu_like(Act a) { return a == Act::Relu || a == Act::LeakyRelu || a == Act::NoisyRelu; }
inline bool saturating(Act a) { return a == Act::Sigmoid || a == Act::Tanh; }
template <typename T>
inline T saturation_low(Act a) { return a == Act::Sigmoid ? T(0.01) : T(-0.99); }
template <typename T>
inline T saturation_high() { return T(0.99); }

constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kGeluCubic = 0.044715;

// Row-wise softmax of Z (rows, cols) into A, the row maximum subtracted first.
template <typename T>
void softmax_rows(T* A, const T* Z, std::size_t rows, std::size_t cols) {
    for (std::size_t r = 0; r < rows; ++r) {
        const T* z = Z + r * cols;
        T* a = A + r * cols;
        T m = z[0];
        for (std::size_t j = 1; j < cols; ++j) m = z[j] > m ? z[j] : m;
        T s = 0;
        for (std::size_t j = 0; j < cols; ++j) s += (a[j] = std::exp(z[j] - m));
        const T inv = T(1) / s;
        for (std::size_t j = 0; j < cols; ++j) a[j] *= inv;
    }
}

// Forward: A[rows, cols] = f(Z). (noisy_relu adds its noise to Z beforehand.)
template <typename T>
void activation_forward(const Activation& act, T* A, const T* Z, std::size_t rows, std::size_t cols) {
    const std::size_t n = rows * cols;
    const T alpha = static_cast<T>(act.alpha);
    switch (act.kind) {
        case Act::Identity:
            for (std::size_t i = 0; i < n; ++i) A[i] = Z[i];
            break;
        case Act::Relu:
        case Act::NoisyRelu:
            for (std::size_t i = 0; i < n; ++i) A[i] = Z[i] > T(0) ? Z[i] : T(0);
            break;
        case Act::LeakyRelu:
            for (std::size_t i = 0; i < n; ++i) A[i] = Z[i] > T(0) ? Z[i] : alpha * Z[i];
            break;
        case Act::Sigmoid:
            if constexpr (std::is_same_v<T, float>)
                active_kernel_table().sigmoid_f32(A, Z, n);  // vectorised fast_sigmoidf (kernels/dispatch.hpp)
            else
                for (std::size_t i = 0; i < n; ++i) A[i] = stable_sigmoid(Z[i]);
            break;
        case Act::Tanh:
            if constexpr (std::is_same_v<T, float>)
                active_kernel_table().tanh_f32(A, Z, n);  // vectorised fast_tanhf (kernels/dispatch.hpp)
            else
                for (std::size_t i = 0; i < n; ++i) A[i] = tanh_of(Z[i]);
            break;
        case Act::Elu:
            for (std::size_t i = 0; i < n; ++i) A[i] = Z[i] > T(0) ? Z[i] : alpha * std::expm1(Z[i]);
            break;
        case Act::Softplus:
            for (std::size_t i = 0; i < n; ++i) A[i] = softplus(Z[i]);
            break;
        case Act::Gelu:
            for (std::size_t i = 0; i < n; ++i) {
                const T z = Z[i];
                const T t = std::tanh(T(kSqrt2OverPi) * (z + T(kGeluCubic) * z * z * z));
                A[i] = T(0.5) * z * (T(1) + t);
            }
            break;
        case Act::Softmax:
            softmax_rows(A, Z, rows, cols);
            break;
    }
}

// Backward: dZ = dA · f'(Z), elementwise (softmax: the row Jacobian product
// dZ = S ⊙ (dA − rowsum(dA ⊙ S))). dZ may alias dA.
template <typename T>
void activation_backward(const Activation& act, T* dZ, const T* dA, const T* Z, const T* A,
                         std::size_t rows, std::size_t cols) {
    const std::size_t n = rows * cols;
    const T alpha = static_cast<T>(act.alpha);
    switch (act.kind) {
        case Act::Identity:
            for (std::size_t i = 0; i < n; ++i) dZ[i] = dA[i];
            break;
        case Act::Relu:
        case Act::NoisyRelu:
            for (std::size_t i = 0; i < n; ++i) {
                const T d = dA[i];  // loaded unconditionally, so the select vectorises
                dZ[i] = Z[i] > T(0) ? d : T(0);
            }
            break;
        case Act::LeakyRelu:
            for (std::size_t i = 0; i < n; ++i) dZ[i] = Z[i] > T(0) ? dA[i] : alpha * dA[i];
            break;
        case Act::Sigmoid:  // s' = s (1 - s)
            for (std::size_t i = 0; i < n; ++i) dZ[i] = dA[i] * A[i] * (T(1) - A[i]);
            break;
        case Act::Tanh:  // tanh' = 1 - t²
            for (std::size_t i = 0; i < n; ++i) dZ[i] = dA[i] * (T(1) - A[i] * A[i]);
            break;
        case Act::Elu:  // z <= 0: alpha e^z
            for (std::size_t i = 0; i < n; ++i) dZ[i] = Z[i] > T(0) ? dA[i] : dA[i] * alpha * std::exp(Z[i]);
            break;
        case Act::Softplus:  // softplus' = sigmoid
            for (std::size_t i = 0; i < n; ++i) dZ[i] = Z[i] > T(20) ? dA[i] : dA[i] * stable_sigmoid(Z[i]);
            break;
        case Act::Gelu:
            for (std::size_t i = 0; i < n; ++i) {
                const T z = Z[i];
                const T t = std::tanh(T(kSqrt2OverPi) * (z + T(kGeluCubic) * z * z * z));
                const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluCubic) * z * z);
                dZ[i] = dA[i] * (T(0.5) * (T(1) + t) + T(0.5) * z * (T(1) - t * t) * du);
            }
            break;
        case Act::Softmax:
            for (std::size_t r = 0; r < rows; ++r) {
                const T* s = A + r * cols;
                const T* g = dA + r * cols;
                T* d = dZ + r * cols;
                T dot = 0;
                for (std::size_t j = 0; j < cols; ++j) dot += g[j] * s[j];
                for (std::size_t j = 0; j < cols; ++j) d[j] = s[j] * (g[j] - dot);
            }
            break;
    }
}

}  // namespace bp
