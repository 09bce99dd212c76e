// Reductions over a flat array, shared by the network's diagnostics and the optimisers.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "common/threads.hpp"
#include "kernels/dispatch.hpp"

namespace bp {

// max |x| (0 for n = 0; a NaN gives NaN). On the bits: with the sign bit cleared
// a float's bits order like its magnitude (NaN above inf), and an integer max
// vectorises where a float one with C++'s NaN rules does not.
template <typename T>
double max_abs(const T* x, std::size_t n) {
    using Bits = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
    constexpr Bits magnitude = std::numeric_limits<Bits>::max();  // every bit but the sign
    Bits top[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) {
            Bits b;
            std::memcpy(&b, x + i + l, sizeof(T));
            b &= magnitude;
            top[l] = b > top[l] ? b : top[l];
        }
    Bits m = 0;
    for (int l = 0; l < 8; ++l) m = top[l] > m ? top[l] : m;
    for (; i < n; ++i) {
        Bits b;
        std::memcpy(&b, x + i, sizeof(T));
        b &= magnitude;
        m = b > m ? b : m;
    }
    T out;
    std::memcpy(&out, &m, sizeof(T));
    return double(out);
}

// max(a, b) where a NaN in either gives NaN (std::max(a, NaN) gives a).
inline double max_keep_nan(double a, double b) { return std::isnan(b) || b > a ? b : a; }

// Σ x² in double with eight partial sums (vectorisable, and the same order on
// every run). With kMax, also max |x| into *max_out, taken block by block while
// the block is in L1 (one loop doing both would not vectorise), the sums' order
// unchanged. The generic kernel table's loop (the AVX2 table has its own with
// the same order: kernels/microkernels/avx2.cpp); callers use sum_squares.
template <bool kMax = false, typename T>
double sum_squares_portable(const T* x, std::size_t n, double* max_out = nullptr) {
    constexpr std::size_t kBlock = 2048;  // a multiple of 8
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    double top = 0;
    const std::size_t full = n / 8 * 8;
    for (std::size_t start = 0; start < full; start += kBlock) {
        const std::size_t end = std::min(full, start + kBlock);
        for (std::size_t i = start; i < end; i += 8)
            for (int l = 0; l < 8; ++l) acc[l] += double(x[i + l]) * double(x[i + l]);
        if constexpr (kMax) top = max_keep_nan(top, max_abs(x + start, end - start));
    }
    double s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (std::size_t i = full; i < n; ++i) s += double(x[i]) * double(x[i]);
    if constexpr (kMax) *max_out = max_keep_nan(top, max_abs(x + full, n - full));
    return s;
}

// Σ x² in double (and with kMax, max |x| into *max_out) by the active kernel table.
template <bool kMax = false, typename T>
double sum_squares(const T* x, std::size_t n, double* max_out = nullptr) {
    return active_kernel_table().arena<T>().sum_squares(x, n, kMax ? max_out : nullptr);
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

// sum_squares (with kMax, and max |x|) of a large array in fixed chunks of 2^18
// values over the core's threads, the chunks' sums added in order: the same
// result for any thread count (and a different rounding from one pass, so it
// is used for every n at or above the chunk size, threads or not).
template <bool kMax = false, typename T>
double sum_squares_chunked(const T* x, std::size_t n, double* max_out = nullptr) {
    constexpr std::size_t kChunk = std::size_t(1) << 18;
    if (n < kChunk) return sum_squares<kMax>(x, n, max_out);
    const std::ptrdiff_t chunks = std::ptrdiff_t((n + kChunk - 1) / kChunk);
    std::vector<double> part(std::size_t(chunks), 0.0), top(std::size_t(chunks), 0.0);
    const int threads = threads_for(double(n));
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (std::ptrdiff_t k = 0; k < chunks; ++k) {
        const std::size_t off = std::size_t(k) * kChunk;
        part[std::size_t(k)] = sum_squares<kMax>(x + off, std::min(kChunk, n - off), &top[std::size_t(k)]);
    }
    double s = 0, m = 0;
    for (std::ptrdiff_t k = 0; k < chunks; ++k) {
        s += part[std::size_t(k)];
        m = max_keep_nan(m, top[std::size_t(k)]);
    }
    if constexpr (kMax) *max_out = m;
    return s;
}

}  // namespace bp
