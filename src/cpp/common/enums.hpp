// Names shared with Python. The Python tables (pybackprop.activations,
// pybackprop.losses, pybackprop.initializers) use the same strings; a test
// checks that both sides agree. Each list below is one line per entry, the enum
// value beside its name, and makes both the enum and its name table.
#pragma once
#include <array>
#include <string>

#include "common/errors.hpp"

// X(EnumValue, "python_name"), in the order of the enum. An activation's f and
// df are its entry in activations/activations.hpp.
#define BP_ACTIVATIONS(X)                                                                                 \
    X(Identity, "identity") X(Relu, "relu") X(LeakyRelu, "leaky_relu") X(NoisyRelu, "noisy_relu")         \
    X(Sigmoid, "sigmoid") X(Tanh, "tanh") X(Elu, "elu") X(Softplus, "softplus") X(Gelu, "gelu")            \
    X(Softmax, "softmax")
#define BP_LOSSES(X)                                                                                      \
    X(Mse, "mse") X(Mae, "mae") X(Huber, "huber") X(BinaryCrossentropy, "binary_crossentropy")            \
    X(CategoricalCrossentropy, "categorical_crossentropy")
#define BP_INITS(X)                                                                                       \
    X(RandomNormal, "random_normal") X(RandomUniform, "random_uniform") X(GlorotUniform, "glorot_uniform") \
    X(GlorotNormal, "glorot_normal") X(HeNormal, "he_normal") X(HeUniform, "he_uniform") X(Zeros, "zeros")
// What a weighted batch's loss is divided by (docs/internals.md, "Sample weights"):
// its rows (Keras: Σ w_i·l_i / rows) or its weights' sum (scikit-learn: Σ w_i·l_i / Σ w_i).
#define BP_WEIGHT_NORMS(X) X(Rows, "rows") X(WeightSum, "weight_sum")

namespace bp {

#define BP_ENUM_VALUE(value, name) value,
#define BP_ENUM_NAME(value, name) name,
enum class Act { BP_ACTIVATIONS(BP_ENUM_VALUE) };
enum class Loss { BP_LOSSES(BP_ENUM_VALUE) };
enum class Init { BP_INITS(BP_ENUM_VALUE) };
enum class WeightNorm { BP_WEIGHT_NORMS(BP_ENUM_VALUE) };

inline constexpr std::array kActNames{BP_ACTIVATIONS(BP_ENUM_NAME)};
inline constexpr std::array kLossNames{BP_LOSSES(BP_ENUM_NAME)};
inline constexpr std::array kInitNames{BP_INITS(BP_ENUM_NAME)};
inline constexpr std::array kWeightNormNames{BP_WEIGHT_NORMS(BP_ENUM_NAME)};
#undef BP_ENUM_VALUE
#undef BP_ENUM_NAME

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
inline WeightNorm weight_norm_from_name(const std::string& s) {
    return enum_from_name<WeightNorm>(kWeightNormNames, s, "weight_norm");
}

}  // namespace bp
