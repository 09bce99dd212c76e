// Shared helpers of the microbenchmarks.
#pragma once
#include <benchmark/benchmark.h>

#include <cstddef>
#include <random>

#include "common/arena.hpp"

namespace bp::bench {

// A 64-byte-aligned buffer of n values uniform in [-1, 1), fixed seed.
template <typename T>
AlignedBuffer<T> random_buffer(std::size_t n, unsigned seed = 0) {
    AlignedBuffer<T> buf(n);
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    for (std::size_t i = 0; i < n; ++i) buf.data()[i] = T(u(gen));
    return buf;
}

// Rate counter: `flops` per iteration, reported as GFLOP/s.
inline void set_gflops(benchmark::State& state, double flops) {
    state.counters["GFLOP/s"] = benchmark::Counter(flops * double(state.iterations()) / 1e9,
                                                   benchmark::Counter::kIsRate);
}

// Registers a file's benchmarks for both dtypes, at static initialisation:
//   const bool registered = register_dtypes(register_dtype<float>, register_dtype<double>);
inline bool register_dtypes(void (*f32)(const char*), void (*f64)(const char*)) {
    f32("f32");
    f64("f64");
    return true;
}

}  // namespace bp::bench
