// Activations a = f(z) and their backward dz = dL/da · f'(z): one entry per
// activation (ActivationEntry<Act::…> below), its f and df side by side with
// what the rest of the core asks of it (relu_like, saturating, the tiny-step
// kernel's code). Conventions (docs/internals.md) are PyTorch's: relu'(0) = 0,
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

// float32: fast_sigmoidf (kernels/scalar_ops.hpp); float64: stable_sigmoid.
template <typename T>
inline T sigmoid_of(T z) {
    if constexpr (std::is_same_v<T, float>)
        return fast_sigmoidf(z);
    else
        return stable_sigmoid(z);
}

constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kGeluCubic = 0.044715;

// The code of an activation the tiny-step kernel has none for (the portable loops run).
inline constexpr ukr::TinyAct kNoTinyAct = ukr::TinyAct(-1);

// What an entry says of itself unless it says otherwise:
//   relu_like       the gradient-flow diagnostics count a unit dead while z <= 0 for every sample;
//   saturating      they count an output saturated below saturation_low or above 0.99;
//   tiny            its code in the tiny-step kernel (ukernels.hpp: TinyAct).
// An elementwise entry gives f(z, alpha) and df(d, z, a, alpha) = d · f'(z) (a = f(z));
// forward and backward are then their loops (an entry may give its own instead).
template <class E>
struct Elementwise {
    static constexpr bool relu_like = false, saturating = false;
    static constexpr double saturation_low = 0.0;
    static constexpr ukr::TinyAct tiny = kNoTinyAct;

    // A[rows, cols] = f(Z)
    template <typename T>
    static void forward(T* A, const T* Z, std::size_t rows, std::size_t cols, T alpha) {
        const std::size_t n = rows * cols;
        for (std::size_t i = 0; i < n; ++i) A[i] = E::f(Z[i], alpha);
    }
    // dZ[rows, cols] = dA · f'(Z); dZ may alias dA. (dA is loaded unconditionally, so a select vectorises.)
    template <typename T>
    static void backward(T* dZ, const T* dA, const T* Z, const T* A, std::size_t rows, std::size_t cols, T alpha) {
        const std::size_t n = rows * cols;
        for (std::size_t i = 0; i < n; ++i) dZ[i] = E::df(dA[i], Z[i], A[i], alpha);
    }
};

// Elementwise, with float32's forward by the active kernel table's vectorised loop
// of the same f (kernels/dispatch.hpp: tanh_f32, sigmoid_f32).
template <class E, ukr::UnaryFn KernelTable::*kernel>
struct TableFloat32 : Elementwise<E> {
    template <typename T>
    static void forward(T* A, const T* Z, std::size_t rows, std::size_t cols, T alpha) {
        if constexpr (std::is_same_v<T, float>)
            (active_kernel_table().*kernel)(A, Z, rows * cols);
        else
            Elementwise<E>::forward(A, Z, rows, cols, alpha);
    }
};

// One specialisation per value of Act (BP_ACTIVATIONS in common/enums.hpp).
template <Act K>
struct ActivationEntry;

template <>
struct ActivationEntry<Act::Identity> : Elementwise<ActivationEntry<Act::Identity>> {
    static constexpr ukr::TinyAct tiny = ukr::TinyAct::Identity;
    template <typename T> static T f(T z, T) { return z; }
    template <typename T> static T df(T d, T, T, T) { return d; }
};

template <>
struct ActivationEntry<Act::Relu> : Elementwise<ActivationEntry<Act::Relu>> {
    static constexpr bool relu_like = true;
    static constexpr ukr::TinyAct tiny = ukr::TinyAct::Relu;
    template <typename T> static T f(T z, T) { return z > T(0) ? z : T(0); }
    template <typename T> static T df(T d, T z, T, T) { return z > T(0) ? d : T(0); }  // relu'(0) = 0
};

template <>
struct ActivationEntry<Act::LeakyRelu> : Elementwise<ActivationEntry<Act::LeakyRelu>> {
    static constexpr bool relu_like = true;
    static constexpr ukr::TinyAct tiny = ukr::TinyAct::LeakyRelu;
    template <typename T> static T f(T z, T alpha) { return z > T(0) ? z : alpha * z; }
    template <typename T> static T df(T d, T z, T, T alpha) { return z > T(0) ? d : alpha * d; }
};

// relu of z + noise: the network adds the noise (drawn in row-major order) to Z first,
// which is also why the tiny-step kernel does not take it.
template <>
struct ActivationEntry<Act::NoisyRelu> : ActivationEntry<Act::Relu> {
    static constexpr ukr::TinyAct tiny = kNoTinyAct;
};

// s' = s (1 − s); float32's f is fast_sigmoidf.
template <>
struct ActivationEntry<Act::Sigmoid> : TableFloat32<ActivationEntry<Act::Sigmoid>, &KernelTable::sigmoid_f32> {
    static constexpr bool saturating = true;
    static constexpr double saturation_low = 0.01;
    static constexpr ukr::TinyAct tiny = ukr::TinyAct::Sigmoid;
    template <typename T> static T f(T z, T) { return sigmoid_of(z); }
    template <typename T> static T df(T d, T, T a, T) { return d * a * (T(1) - a); }
};

// tanh' = 1 − t²; float32's f is fast_tanhf.
template <>
struct ActivationEntry<Act::Tanh> : TableFloat32<ActivationEntry<Act::Tanh>, &KernelTable::tanh_f32> {
    static constexpr bool saturating = true;
    static constexpr double saturation_low = -0.99;
    static constexpr ukr::TinyAct tiny = ukr::TinyAct::Tanh;
    template <typename T> static T f(T z, T) { return tanh_of(z); }
    template <typename T> static T df(T d, T, T a, T) { return d * (T(1) - a * a); }
};

// z <= 0: alpha (e^z − 1), whose derivative is alpha e^z.
template <>
struct ActivationEntry<Act::Elu> : Elementwise<ActivationEntry<Act::Elu>> {
    template <typename T> static T f(T z, T alpha) { return z > T(0) ? z : alpha * std::expm1(z); }
    template <typename T> static T df(T d, T z, T, T alpha) { return z > T(0) ? d : d * alpha * std::exp(z); }
};

// softplus' = sigmoid (and 1 where softplus is linear, above 20).
template <>
struct ActivationEntry<Act::Softplus> : Elementwise<ActivationEntry<Act::Softplus>> {
    template <typename T> static T f(T z, T) { return softplus(z); }
    template <typename T> static T df(T d, T z, T, T) { return z > T(20) ? d : d * stable_sigmoid(z); }
};

// The tanh approximation: ½ z (1 + tanh u), u = √(2/π) (z + 0.044715 z³).
template <>
struct ActivationEntry<Act::Gelu> : Elementwise<ActivationEntry<Act::Gelu>> {
    template <typename T> static T u_tanh(T z) { return std::tanh(T(kSqrt2OverPi) * (z + T(kGeluCubic) * z * z * z)); }
    template <typename T> static T f(T z, T) { return T(0.5) * z * (T(1) + u_tanh(z)); }
    template <typename T>
    static T df(T d, T z, T, T) {
        const T t = u_tanh(z);
        const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluCubic) * z * z);
        return d * (T(0.5) * (T(1) + t) + T(0.5) * z * (T(1) - t * t) * du);
    }
};

// Row-wise, not elementwise: forward and backward over whole rows of `cols` values.
template <>
struct ActivationEntry<Act::Softmax> {
    static constexpr bool relu_like = false, saturating = false;
    static constexpr double saturation_low = 0.0;
    static constexpr ukr::TinyAct tiny = kNoTinyAct;

    // A[rows, cols] = softmax of each row of Z, the row maximum subtracted first.
    template <typename T>
    static void forward(T* A, const T* Z, std::size_t rows, std::size_t cols, T) {
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
    // dZ[rows, cols] = S ⊙ (dA − rowsum(dA ⊙ S)), the row Jacobian product (S = A).
    template <typename T>
    static void backward(T* dZ, const T* dA, const T*, const T* A, std::size_t rows, std::size_t cols, T) {
        for (std::size_t r = 0; r < rows; ++r) {
            const T* s = A + r * cols;
            const T* g = dA + r * cols;
            T* d = dZ + r * cols;
            T dot = 0;
            for (std::size_t j = 0; j < cols; ++j) dot += g[j] * s[j];
            for (std::size_t j = 0; j < cols; ++j) d[j] = s[j] * (g[j] - dot);
        }
    }
};

// Returns f(ActivationEntry<kind>{}): the run-time kind to its entry.
template <typename F>
decltype(auto) visit_activation(Act kind, F&& f) {
    switch (kind) {
#define BP_ACTIVATION_CASE(value, name) \
    case Act::value: return f(ActivationEntry<Act::value>{});
        BP_ACTIVATIONS(BP_ACTIVATION_CASE)
#undef BP_ACTIVATION_CASE
    }
    return f(ActivationEntry<Act::Identity>{});  // not reached: every value has a case
}

// The gradient-flow diagnostics (Network's dead and saturated fractions): a
// relu-like unit is dead while z <= 0 for every sample; a saturating (sigmoid or
// tanh) output is saturated below saturation_low or above saturation_high.
inline bool relu_like(Act a) { return visit_activation(a, [](auto e) { return e.relu_like; }); }
inline bool saturating(Act a) { return visit_activation(a, [](auto e) { return e.saturating; }); }
template <typename T>
inline T saturation_low(Act a) { return visit_activation(a, [](auto e) { return T(e.saturation_low); }); }
template <typename T>
inline T saturation_high() { return T(0.99); }
// The tiny-step kernel's code for the activation, or kNoTinyAct where it has none.
inline ukr::TinyAct tiny_kernel_act(Act a) { return visit_activation(a, [](auto e) { return e.tiny; }); }

// The two passes switch on the kind themselves (not through visit_activation), so
// the compiler sees one function with the loops inside, as it inlines it.
// Forward: A[rows, cols] = f(Z). (noisy_relu adds its noise to Z beforehand.)
template <typename T>
void activation_forward(const Activation& act, T* A, const T* Z, std::size_t rows, std::size_t cols) {
    const T alpha = static_cast<T>(act.alpha);
    switch (act.kind) {
#define BP_ACTIVATION_FORWARD(value, name) \
    case Act::value: return ActivationEntry<Act::value>::forward(A, Z, rows, cols, alpha);
        BP_ACTIVATIONS(BP_ACTIVATION_FORWARD)
#undef BP_ACTIVATION_FORWARD
    }
}

// Backward: dZ[rows, cols] = dA · f'(Z), elementwise (softmax: by rows). dZ may alias dA.
template <typename T>
void activation_backward(const Activation& act, T* dZ, const T* dA, const T* Z, const T* A,
                         std::size_t rows, std::size_t cols) {
    const T alpha = static_cast<T>(act.alpha);
    switch (act.kind) {
#define BP_ACTIVATION_BACKWARD(value, name) \
    case Act::value: return ActivationEntry<Act::value>::backward(dZ, dA, Z, A, rows, cols, alpha);
        BP_ACTIVATIONS(BP_ACTIVATION_BACKWARD)
#undef BP_ACTIVATION_BACKWARD
    }
}

}  // namespace bp
