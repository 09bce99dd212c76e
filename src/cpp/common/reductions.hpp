// Reductions over a flat array, shared by the network's diagnostics and the optimisers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace bp {

// Σ x² in double with eight partial sums (vectorisable, and the same order on
// every run); with kMax, max |x| in the same pass into *max_out (NaN is ignored
// there: a NaN makes the sum NaN, which is what callers check).
template <bool kMax = false, typename T>
double sum_squares(const T* x, std::size_t n, double* max_out = nullptr) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    T top[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) {
            acc[l] += double(x[i + l]) * double(x[i + l]);
            if constexpr (kMax) {
                const T a = x[i + l] < T(0) ? -x[i + l] : x[i + l];
                top[l] = a > top[l] ? a : top[l];
            }
        }
    double s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    T m = 0;
    for (int l = 0; l < 8; ++l) m = top[l] > m ? top[l] : m;
    for (; i < n; ++i) {
        s += double(x[i]) * double(x[i]);
        const T a = x[i] < T(0) ? -x[i] : x[i];
        m = a > m ? a : m;
    }
    if constexpr (kMax) *max_out = double(m);
    return s;
}

// max |x| (0 for n = 0; NaN is ignored).
template <typename T>
double max_abs(const T* x, std::size_t n) {
    T top[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) {
            const T a = x[i + l] < T(0) ? -x[i + l] : x[i + l];
            top[l] = a > top[l] ? a : top[l];
        }
    T m = 0;
    for (int l = 0; l < 8; ++l) m = top[l] > m ? top[l] : m;
    for (; i < n; ++i) {
        const T a = x[i] < T(0) ? -x[i] : x[i];
        m = a > m ? a : m;
    }
    return double(m);
}

// True when every x is finite: no element has an all-ones exponent (inf, NaN).
// An integer OR over the bits, so it vectorises (a float sum would not).
template <typename T>
bool all_finite(const T* x, std::size_t n) {
    using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
    constexpr Bits exponent = sizeof(T) == 4 ? Bits(0x7f800000u) : Bits(0x7ff0000000000000ull);
    Bits bad = 0;
    for (std::size_t i = 0; i < n; ++i) {
        Bits b;
        std::memcpy(&b, x + i, sizeof(T));
        bad |= Bits((b & exponent) == exponent);
    }
    return bad == 0;
}

}  // namespace bp
