// Names shared with Python. The Python tables (pybackprop.activations,
// pybackprop.losses, pybackprop.initializers) use the same strings; a test
// checks that both sides agree.
#pragma once
#include <array>
#include <string>

#include "common/errors.hpp"

namespace bp {

enum class Act { Identity, Relu, LeakyRelu, NoisyRelu, Sigmoid, Tanh, Elu, Softplus, Gelu, Softmax };
enum class Loss { Mse, Mae, Huber, BinaryCrossentropy, CategoricalCrossentropy };
enum class Init { RandomNormal, RandomUniform, GlorotUniform, GlorotNormal, HeNormal, HeUniform, Zeros };

inline constexpr std::array<const char*, 10> kActNames = {
    "identity", "relu", "leaky_relu", "noisy_relu", "sigmoid",
    "tanh", "elu", "softplus", "gelu", "softmax"};
inline constexpr std::array<const char*, 5> kLossNames = {
    "mse", "mae", "huber", "binary_crossentropy", "categorical_crossentropy"};
inline constexpr std::array<const char*, 7> kInitNames = {
    "random_normal", "random_uniform", "glorot_uniform", "glorot_normal",
    "he_normal", "he_uniform", "zeros"};

template <typename E, std::size_t N>
E enum_from_name(const std::array<const char*, N>& names, const std::string& name,
                 const char* what) {
    std::string allowed;
    for (std::size_t i = 0; i < N; ++i) {
        if (name == names[i]) return static_cast<E>(i);
        allowed += (i ? ", " : "") + std::string(names[i]);
    }
    throw ValueError(std::string(what) + ": expected one of " + allowed + ", got '" + name + "'");
}

inline Act act_from_name(const std::string& s) { return enum_from_name<Act>(kActNames, s, "activation"); }
inline Loss loss_from_name(const std::string& s) { return enum_from_name<Loss>(kLossNames, s, "loss"); }
inline Init init_from_name(const std::string& s) { return enum_from_name<Init>(kInitNames, s, "init"); }

}  // namespace bp
