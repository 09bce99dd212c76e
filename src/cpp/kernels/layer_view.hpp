// A dense layer as a per-sample step sees it: views into the network's arenas
// (parameters, gradients, the row's pre-activation and activation) and its shape
// and activation. The tiny-network kernel takes an array of them (TinyLayerF32);
// training/sample_step.cpp's portable loops read the same views.
#pragma once

namespace bp::ukr {

// The activations the tiny-network kernel has (TinyAct(-1): one it has not).
enum class TinyAct : int { Identity, Relu, LeakyRelu, Sigmoid, Tanh };

template <typename T>
struct LayerView {
    T* W;  // (in, out) row-major; TinyUpdate rewrites it 8 values at a time: room for in·out rounded up to 8
    T* b;  // null: no bias; else room for 8, as W
    T* dW;      // written: the row's gradient (not accumulated), with room for in·out rounded up to 8
    T* db;      // null when b is; room for 8
    T* z;       // written: the row's pre-activation and activation, each with room for 8
    T* a;
    int in, out;  // the kernel's: 1..8
    TinyAct act;
    float alpha;  // leaky_relu's slope
};

using TinyLayerF32 = LayerView<float>;

}  // namespace bp::ukr
