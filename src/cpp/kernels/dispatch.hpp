// CPU detection and the GEMM kernel table. One table per ISA compiled in; the
// active one is chosen once, at first use: the best the CPU supports (AVX-512
// only where it is faster than AVX2, see dispatch.cpp), unless
// PYBACKPROP_ISA=generic|avx2|avx512 names another. A value that is unknown,
// not compiled in or not supported by this CPU falls back to the best
// available, with a one-line note on stderr and in isa_note().
#pragma once
#include <string>
#include <vector>

#include "kernels/microkernels/ukernels.hpp"

namespace bp {

// A microkernel and the blocking of the driver around it (gemm.hpp).
template <typename T>
struct GemmKernel {
    ukr::Fn<T> fn;
    int mr, nr;      // register tile
    int mc, kc, nc;  // cache blocks: A' block mc×kc (L2), B' panel kc×nc (L3)
    ukr::SmallFn<T> small;   // the unpacked path for small products (gemm.hpp: gemm_small)
    double small_max_flops;  // gemm_auto takes it up to this m·n·k (measured: dispatch.cpp)
    ukr::TransposeFn<T> transpose;  // gemm_small's row-major copy of a strided B
};

// The passes over whole arenas outside the products (reductions.hpp; their scalar
// forms: scalar_ops.hpp).
template <typename T>
struct ArenaKernels {
    ukr::SumSquaresFn<T> sum_squares;  // Σ x²: gradient and weight norms
    ukr::SgdFn<T> sgd;                 // the SGD update
};

struct KernelTable {
    const char* name;  // "generic", "avx2", "avx512"
    GemmKernel<float> f32;
    GemmKernel<double> f64;
    ukr::UnaryFn tanh_f32;     // elementwise float32 tanh
    ukr::UnaryFn sigmoid_f32;  // elementwise float32 sigmoid
    ArenaKernels<float> arena_f32;
    ArenaKernels<double> arena_f64;
    ukr::TinyStepFn tiny_step_f32;  // the fused per-sample step of tiny networks (null: its portable loops)

    template <typename T>
    const GemmKernel<T>& get() const {
        if constexpr (sizeof(T) == sizeof(float)) return f32;
        else return f64;
    }
    template <typename T>
    const ArenaKernels<T>& arena() const {
        if constexpr (sizeof(T) == sizeof(float)) return arena_f32;
        else return arena_f64;
    }
};

// Every table compiled into this build, worst to best.
const std::vector<const KernelTable*>& compiled_kernel_tables();
// Whether this CPU (and OS) can run the table's instructions.
bool cpu_supports(const KernelTable& t);
// The compiled table of that name if this CPU supports it, else null.
const KernelTable* find_kernel_table(const std::string& name);
// The table in use (chosen once, thread-safe).
const KernelTable& active_kernel_table();
// Empty, or why PYBACKPROP_ISA was not honoured.
const std::string& isa_note();

}  // namespace bp
