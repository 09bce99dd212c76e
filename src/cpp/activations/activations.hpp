// Activations a = f(z) and their backward dz = dL/da · f'(z), one table entry
// per activation. Conventions (docs/internals.md) are PyTorch's: relu'(0) = 0,
// leaky_relu'(0) = alpha, softplus is linear above 20. Every formula is written
// so that no exp() overflows for |z| up to 1e4.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "common/enums.hpp"
#include "kernels/dispatch.hpp"

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

// tanh for float32 as a rational function, Eigen's minimax fit (odd degree-13
// numerator over even degree-6 denominator, input clamped to ±7.9053, where it
// is exactly ±1 in float32): at most 3.4e-7 relative error (about 3 ulp, checked
// against float64 tanh over [-12, 12] and 1e-8..10), and only +, *, / and a
// clamp, so the loop vectorises where libm's tanhf does not. float64 uses std::tanh.
inline float fast_tanhf(float x) {
    constexpr float clamp = 7.90531110763549805f;
    x = x < -clamp ? -clamp : (x > clamp ? clamp : x);
    const float x2 = x * x;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return x * p / q;
}

// exp(x) for float32 x <= 0, Cephes' expf: x = n ln2 + r with n the nearest
// integer to x / ln2 (rounded by adding 1.5·2^23, whose bits then hold n) and
// ln2 in two parts, exp(r) by a degree-7 polynomial, times 2^n built in the
// exponent bits. About 1 ulp; 0 below -87.3365 (where exp is subnormal); a NaN
// stays NaN. Only +, *, compares and bit moves, so the loops vectorise.
inline float fast_exp_nonpositive(float x) {
    constexpr float lowest = -87.3365447505531f;  // exp(lowest) ≈ 2^-126, the smallest normal
    constexpr float round = 12582912.0f;          // 1.5·2^23: its bits are 0x4B400000
    const bool below = x < lowest;
    x = below ? lowest : x;  // a NaN compares false and stays
    const float t = x * 1.44269504088896341f + round;
    const float n = t - round;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    uint32_t bits;
    std::memcpy(&bits, &t, sizeof bits);
    const uint32_t scale_bits = (bits - 0x4B400000u + 127u) << 23;  // 2^n (unsigned: no overflow for a NaN)
    float scale;
    std::memcpy(&scale, &scale_bits, sizeof scale);
    return below ? 0.0f : p * scale;
}

// sigmoid for float32 from e = exp(-|z|): 1/(1+e) for z >= 0, e/(1+e) below,
// so neither side overflows or cancels; within 4e-7 relative of float64
// sigmoid (checked over ±100). float64 uses stable_sigmoid.
inline float fast_sigmoidf(float z) {
    const float e = fast_exp_nonpositive(-std::fabs(z));
    return (z < 0.0f ? e : 1.0f) / (1.0f + e);
}

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
