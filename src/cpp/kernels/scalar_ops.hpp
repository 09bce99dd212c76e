// The scalar forms of the kernel table's elementwise and arena operators
// (microkernels/ukernels.hpp: UnaryFn, SumSquaresFn, SgdFn). The generic table's
// loops are these functions; the ISA kernels compute the same (bitwise, or to the
// last bit where ukernels.hpp says so). They live in kernels/ because the kernels
// need them and kernels/ includes nothing of the math above it: activations/ and
// optimizers/ use them from here.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace bp {

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
// sigmoid (checked over ±100). float64 uses stable_sigmoid (activations.hpp).
inline float fast_sigmoidf(float z) {
    const float e = fast_exp_nonpositive(-std::fabs(z));
    return (z < 0.0f ? e : 1.0f) / (1.0f + e);
}

// Σ x² in double with eight partial sums (vectorisable, and the same order on
// every run). The generic kernel table's loop (the AVX2 table has its own with
// the same order: microkernels/avx2_arena.cpp); callers use sum_squares
// (kernels/reductions.hpp).
template <typename T>
double sum_squares_portable(const T* x, std::size_t n) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const std::size_t full = n / 8 * 8;
    for (std::size_t i = 0; i < full; i += 8)
        for (int l = 0; l < 8; ++l) acc[l] += double(x[i + l]) * double(x[i + l]);
    double s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (std::size_t i = full; i < n; ++i) s += double(x[i]) * double(x[i]);
    return s;
}

// Stochastic gradient descent over n elements (the rule: optimizers/sgd.hpp), the
// generic table's loop; the AVX2 one is bitwise the same (no FMA: p - lr·g as
// written). p, grad, buf: n elements each (buf unused when momentum == 0).
template <typename T>
void sgd_update(T* p, const T* grad, T* buf, std::size_t n, double lr_, double momentum, bool nesterov,
                double weight_decay) {
    const T lr = T(lr_), mu = T(momentum), wd = T(weight_decay);
    if (momentum == 0.0) {
        for (std::size_t i = 0; i < n; ++i) p[i] -= lr * (grad[i] + wd * p[i]);
    } else if (nesterov) {
        for (std::size_t i = 0; i < n; ++i) {
            const T g = grad[i] + wd * p[i];
            buf[i] = mu * buf[i] + g;
            p[i] -= lr * (g + mu * buf[i]);
        }
    } else {
        for (std::size_t i = 0; i < n; ++i) {
            buf[i] = mu * buf[i] + (grad[i] + wd * p[i]);
            p[i] -= lr * buf[i];
        }
    }
}

}  // namespace bp
