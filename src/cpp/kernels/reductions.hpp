// Reductions over a flat array, shared by the network's diagnostics and the optimisers:
// by the active kernel table (sum_squares), or plain loops whose order is fixed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "common/threads.hpp"
#include "kernels/dispatch.hpp"

namespace bp {

// Σ x² in double by the active kernel table.
template <typename T>
double sum_squares(const T* x, std::size_t n) {
    return active_kernel_table().arena<T>().sum_squares(x, n);
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

// sum_squares of a large array in fixed chunks of 2^18 values over the core's
// threads, the chunks' sums added in order: the same result for any thread
// count (and a different rounding from one pass, so it is used for every n at
// or above the chunk size, threads or not).
template <typename T>
double sum_squares_chunked(const T* x, std::size_t n) {
    constexpr std::size_t kChunk = std::size_t(1) << 18;
    if (n < kChunk) return sum_squares(x, n);
    std::vector<double> part((n + kChunk - 1) / kChunk, 0.0);
    for_each_chunk(n, kChunk, threads_for(double(n)),
                   [&](std::size_t k, std::size_t off, std::size_t len) { part[k] = sum_squares(x + off, len); });
    double s = 0;
    for (const double v : part) s += v;
    return s;
}

}  // namespace bp
