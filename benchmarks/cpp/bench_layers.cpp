// A dense layer's forward and backward at the layer shapes of the workloads
// (../shared/bench/WORKLOADS.md), an activation, and the SGD update.
#include <benchmark/benchmark.h>

#include <string>

#include "activations/activations.hpp"
#include "bench_util.hpp"
#include "layers/dense.hpp"
#include "optimizers/sgd.hpp"

namespace bp::bench {
namespace {

struct LayerShape {
    const char* workload;
    long batch, in, out;
};

// Every dense layer of every workload: (batch, fan_in, fan_out).
const LayerShape kLayers[] = {
    {"seed-sgd", 1, 3, 4},          {"seed-sgd", 1, 4, 4},          {"seed-sgd", 1, 4, 1},
    {"seed-minibatch", 100, 3, 4},  {"seed-minibatch", 100, 4, 4},  {"seed-minibatch", 100, 4, 1},
    {"small", 32, 16, 64},          {"small", 32, 64, 64},          {"small", 32, 64, 1},
    {"mnist-like", 64, 784, 256},   {"mnist-like", 64, 256, 256},   {"mnist-like", 64, 256, 10},
    {"wide", 256, 1024, 2048},      {"wide", 256, 2048, 2048},      {"wide", 256, 2048, 1024},
};

// Z[B,OUT] = A[B,IN] · W[IN,OUT] + b
template <typename T>
void BM_dense_forward(benchmark::State& state, LayerShape s) {
    auto A = random_buffer<T>(std::size_t(s.batch * s.in), 1);
    auto W = random_buffer<T>(std::size_t(s.in * s.out), 2);
    auto b = random_buffer<T>(std::size_t(s.out), 3);
    AlignedBuffer<T> Z(std::size_t(s.batch * s.out));
    for (auto _ : state) {
        dense_forward(Z.data(), A.data(), W.data(), b.data(), s.batch, s.in, s.out);
        benchmark::DoNotOptimize(Z.data());
        benchmark::ClobberMemory();
    }
    set_gflops(state, 2.0 * double(s.batch) * double(s.in) * double(s.out));
}

// dW += Aᵀ·dZ, db += Σ dZ, dA = dZ·Wᵀ (the first layer's dA included, as
// WORKLOADS.md counts it).
template <typename T>
void BM_dense_backward(benchmark::State& state, LayerShape s) {
    auto A = random_buffer<T>(std::size_t(s.batch * s.in), 1);
    auto W = random_buffer<T>(std::size_t(s.in * s.out), 2);
    auto dZ = random_buffer<T>(std::size_t(s.batch * s.out), 4);
    AlignedBuffer<T> dA(std::size_t(s.batch * s.in)), dW(std::size_t(s.in * s.out)), db(std::size_t(s.out));
    for (auto _ : state) {
        dense_backward(dA.data(), dW.data(), db.data(), dZ.data(), A.data(), W.data(), s.batch, s.in, s.out);
        benchmark::DoNotOptimize(dA.data());
        benchmark::DoNotOptimize(dW.data());
        benchmark::ClobberMemory();
    }
    set_gflops(state, 4.0 * double(s.batch) * double(s.in) * double(s.out));
}

// Forward and backward of one activation over the `wide` hidden layer (256×2048).
template <typename T>
void BM_activation(benchmark::State& state, Act kind) {
    const std::size_t rows = 256, cols = 2048, n = rows * cols;
    auto Z = random_buffer<T>(n, 1), dA = random_buffer<T>(n, 2);
    AlignedBuffer<T> A(n), dZ(n);
    Activation act;
    act.kind = kind;
    for (auto _ : state) {
        activation_forward(act, A.data(), Z.data(), rows, cols);
        activation_backward(act, dZ.data(), dA.data(), Z.data(), A.data(), rows, cols);
        benchmark::DoNotOptimize(dZ.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(n));
}

// The SGD update over the `wide` network's parameter count (7.3 M), with and
// without momentum.
template <typename T>
void BM_sgd(benchmark::State& state, double momentum) {
    const std::size_t n = 1024 * 2048 + 2048 * 2048 + 2048 * 1024 + 2048 + 2048 + 1024;
    auto p = random_buffer<T>(n, 1), g = random_buffer<T>(n, 2);
    AlignedBuffer<T> buf(n);
    for (auto _ : state) {
        sgd_update(p.data(), g.data(), buf.data(), n, 1e-9, momentum, false, 0.0);
        benchmark::DoNotOptimize(p.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(n));
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(n * sizeof(T)) * (momentum ? 5 : 3));
}

template <typename T>
void register_dtype(const char* dtype) {
    for (const LayerShape& s : kLayers) {
        const std::string shape = std::string(s.workload) + "/" + std::to_string(s.batch) + "x" +
                                  std::to_string(s.in) + "x" + std::to_string(s.out);
        benchmark::RegisterBenchmark((std::string("dense_forward/") + dtype + "/" + shape).c_str(),
                                     BM_dense_forward<T>, s)->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark((std::string("dense_backward/") + dtype + "/" + shape).c_str(),
                                     BM_dense_backward<T>, s)->Unit(benchmark::kMicrosecond);
    }
    for (auto [name, kind] : {std::pair{"relu", Act::Relu}, {"tanh", Act::Tanh}, {"sigmoid", Act::Sigmoid}})
        benchmark::RegisterBenchmark((std::string("activation/") + dtype + "/" + name).c_str(),
                                     BM_activation<T>, kind)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((std::string("sgd/") + dtype + "/plain").c_str(), BM_sgd<T>, 0.0)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((std::string("sgd/") + dtype + "/momentum").c_str(), BM_sgd<T>, 0.9)
        ->Unit(benchmark::kMicrosecond);
}

const bool registered = register_dtypes(register_dtype<float>, register_dtype<double>);

}  // namespace
}  // namespace bp::bench
