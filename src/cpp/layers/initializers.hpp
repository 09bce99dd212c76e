// Weight initialisers, Keras formulas, drawn from the model's seeded PCG32 in
// double precision and cast at the end (so float32 and float64 models of the
// same seed start from the same numbers, rounded).
#pragma once
#include <cmath>
#include <cstddef>

#include "common/enums.hpp"
#include "common/rng.hpp"

namespace bp {

// Keras' truncated normal: a standard normal redrawn until |x| <= 2, times
// `scale` = stddev / 0.87962566 (the truncation shrinks the std by that factor).
inline double truncated_normal(Pcg32& rng, double scale) {
    double x;
    do x = rng.normal(); while (std::fabs(x) > 2.0);
    return x * scale;
}

// Fills W (fan_in, fan_out), row-major.
template <typename T>
void init_weights(T* W, std::size_t fan_in, std::size_t fan_out, Init init, Pcg32& rng) {
    const std::size_t n = fan_in * fan_out;
    const double fi = double(fan_in), fo = double(fan_out);
    auto uniform = [&](double limit) {
        for (std::size_t i = 0; i < n; ++i) W[i] = static_cast<T>(-limit + 2.0 * limit * rng.uniform01());
    };
    auto truncated = [&](double stddev) {
        const double scale = stddev / 0.87962566103423978;
        for (std::size_t i = 0; i < n; ++i) W[i] = static_cast<T>(truncated_normal(rng, scale));
    };
    switch (init) {
        case Init::RandomNormal:
            for (std::size_t i = 0; i < n; ++i) W[i] = static_cast<T>(0.05 * rng.normal());
            break;
        case Init::RandomUniform: uniform(0.05); break;
        case Init::GlorotUniform: uniform(std::sqrt(6.0 / (fi + fo))); break;
        case Init::GlorotNormal: truncated(std::sqrt(2.0 / (fi + fo))); break;
        case Init::HeNormal: truncated(std::sqrt(2.0 / fi)); break;
        case Init::HeUniform: uniform(std::sqrt(6.0 / fi)); break;
        case Init::Zeros:
            for (std::size_t i = 0; i < n; ++i) W[i] = T(0);
            break;
    }
}

}  // namespace bp
