// GEMM per ISA and per product (nn, tn, nt), square sizes 16…2048, GFLOP/s
// as a rate counter. An ISA compiled in but not supported by this CPU is
// skipped with an error, not run. "reference" is the naive kernel (up to 512:
// slower than that is not informative); "auto" is what the layers call.
#include <benchmark/benchmark.h>

#include <string>

#include "bench_util.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/gemm.hpp"

namespace bp::bench {
namespace {

enum Op { kNN, kTN, kNT };
const char* kOpNames[] = {"nn", "tn", "nt"};

// isa: a kernel table name, "auto" or "reference". Square n: operand roles
// do not change the shapes, so the three ops move the same data.
template <typename T>
void BM_gemm(benchmark::State& state, const std::string& isa, Op op) {
    const KernelTable* table = nullptr;
    if (isa != "auto" && isa != "reference") {
        table = find_kernel_table(isa);
        if (!table) {
            state.SkipWithError((isa + " is not supported by this CPU").c_str());
            return;
        }
    }
    const std::ptrdiff_t n = state.range(0);
    auto A = random_buffer<T>(std::size_t(n * n), 1), B = random_buffer<T>(std::size_t(n * n), 2);
    AlignedBuffer<T> C(std::size_t(n * n));
    for (auto _ : state) {
        T* c = C.data();
        const T *a = A.data(), *b = B.data();
        if (isa == "reference") {
            if (op == kNN) matmul_nn_reference(c, a, b, n, n, n);
            else if (op == kTN) matmul_tn_reference(c, a, b, n, n, n);
            else matmul_nt_reference(c, a, b, n, n, n);
        } else if (isa == "auto") {
            if (op == kNN) matmul_nn(c, a, b, n, n, n);
            else if (op == kTN) matmul_tn(c, a, b, n, n, n);
            else matmul_nt(c, a, b, n, n, n);
        } else {
            if (op == kNN) gemm_blocked<T>(n, n, n, a, n, 1, b, n, 1, c, n, table);
            else if (op == kTN) gemm_blocked<T>(n, n, n, a, 1, n, b, n, 1, c, n, table);
            else gemm_blocked<T>(n, n, n, a, n, 1, b, 1, n, c, n, table);
        }
        benchmark::DoNotOptimize(c);
        benchmark::ClobberMemory();
    }
    set_gflops(state, 2.0 * double(n) * double(n) * double(n));
}

template <typename T>
void register_dtype(const char* dtype) {
    std::vector<std::string> isas{"reference", "auto"};
    for (const KernelTable* t : compiled_kernel_tables()) isas.push_back(t->name);
    for (const std::string& isa : isas)
        for (Op op : {kNN, kTN, kNT}) {
            const std::string name = std::string("gemm/") + dtype + "/" + isa + "/" + kOpNames[op];
            auto* b = benchmark::RegisterBenchmark(name.c_str(), BM_gemm<T>, isa, op);
            b->RangeMultiplier(2)->Range(16, isa == "reference" ? 512 : 2048)->Unit(benchmark::kMicrosecond);
        }
}

const bool registered = register_dtypes(register_dtype<float>, register_dtype<double>);

}  // namespace
}  // namespace bp::bench
