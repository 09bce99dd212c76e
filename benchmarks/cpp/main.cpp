// pybackprop_bench: Google Benchmark's main, plus --threads=N (the core's
// thread count, default 1) taken off the command line before it.
//   pybackprop_bench --threads=2 --benchmark_filter=gemm/f32/avx2
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/threads.hpp"
#include "kernels/dispatch.hpp"

int main(int argc, char** argv) {
    int threads = 1;
    std::vector<char*> rest;
    for (int i = 0; i < argc; ++i) {
        if (std::strncmp(argv[i], "--threads=", 10) == 0) threads = std::atoi(argv[i] + 10);
        else rest.push_back(argv[i]);
    }
    bp::set_num_threads(threads);
    int n = int(rest.size());
    benchmark::AddCustomContext("pybackprop_threads", std::to_string(bp::num_threads()));
    benchmark::AddCustomContext("pybackprop_active_isa", bp::active_kernel_table().name);
    benchmark::Initialize(&n, rest.data());
    if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
