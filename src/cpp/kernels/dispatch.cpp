// CPU detection and the choice of the kernel table (see dispatch.hpp).
#include "kernels/dispatch.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace bp {
namespace {

// Blocking: KC·NR·sizeof(T) (a B micro-panel) fits L1 (32 KiB on the AVX2 and
// AVX-512 parts we target), MC·KC·sizeof(T) (an A' block) half of L2, and
// KC·NC·sizeof(T) (a B' panel) a share of L3. MC is a multiple of MR, NC of NR.
// small_max_flops: gemm_auto takes the unpacked path (gemm_small) up to this
// m·n·k, else the blocked driver. Measured on Zen 4 (AVX2 table), 1 thread,
// every op × M in {32,64,128} × K,N in {16,64,128,256}, float32, unpacked
// time / blocked time: up to 2^18 multiply-adds 0.28-0.94 (the `small`
// products: nn 32x16x64 1.02 -> 0.66 us, nn 32x64x64 3.6 -> 2.4, tn 16x64
// 0.97 -> 0.63, tn 64x64 3.0 -> 2.4, nt 32x64 from 64 4.4 -> 3.6; mnist-like's
// 10-wide layer: nn 64x256x10 10.2 -> 5.3, tn 8.2 -> 6.2, nt 5.2 -> 4.3); at
// 2^19 0.43-1.10, at 2^20 0.75-1.17 (tn with m >= 128 and nt, whose B' is
// transposed first, lose); at 2^22 nn still 0.89-0.94 but tn 1.14-1.20. The
// AVX-512 table (the same unpacked code) against its blocked driver: 0.24-1.06
// up to 2^18. float64: the transposed copy of matmul_nt's B' costs twice as
// much, and nt measured 0.88-1.43 already at 2^15-2^16 (nn and tn 0.63-0.90),
// so float64 keeps the blocked path. The generic table's unpacked kernel (GCC
// 12 does not vectorise its strided tile) ran 2.7-3.5x slower than its blocked
// one: never chosen automatically, kept as the portable reference of the path.
constexpr double kSmallMaxFlops = 256.0 * 1024.0;
constexpr double kSmallNever = 0.0;

constexpr KernelTable kGeneric{
    "generic",
    {ukr::generic_f32, ukr::kGenericMrF32, ukr::kGenericNrF32, 128, 256, 4096, ukr::generic_small_f32, kSmallNever,
     ukr::generic_transpose_f32},
    {ukr::generic_f64, ukr::kGenericMrF64, ukr::kGenericNrF64, 64, 256, 4096, ukr::generic_small_f64, kSmallNever,
     ukr::generic_transpose_f64},
    ukr::generic_tanh_f32,
    ukr::generic_sigmoid_f32,
    {ukr::generic_sum_squares_f32, ukr::generic_sgd_f32},
    {ukr::generic_sum_squares_f64, ukr::generic_sgd_f64},
    nullptr,
};

#if defined(PYBACKPROP_HAVE_X86_KERNELS)
constexpr KernelTable kAvx2{
    "avx2",
    {ukr::avx2_f32, ukr::kAvx2MrF32, ukr::kAvx2NrF32, 168, 256, 4080, ukr::avx2_small_f32, kSmallMaxFlops,
     ukr::avx2_transpose_f32},
    {ukr::avx2_f64, ukr::kAvx2MrF64, ukr::kAvx2NrF64, 72, 256, 4080, ukr::avx2_small_f64, kSmallNever,
     ukr::generic_transpose_f64},
    ukr::avx2_tanh_f32,
    ukr::avx2_sigmoid_f32,
    {ukr::avx2_sum_squares_f32, ukr::avx2_sgd_f32},
    {ukr::avx2_sum_squares_f64, ukr::avx2_sgd_f64},
    ukr::avx2_tiny_step_f32,
};
// The AVX-512 table is the AVX2 one with the zmm GEMM microkernels and their
// blocking. The rest stays AVX2 code (AVX-512 CPUs have AVX2): the small-product
// path (gemm_small), whose zmm version has not been written or measured; the
// elementwise activations, where 8 lanes already outrun the memory; the
// memory-bound arena passes; the tiny step.
constexpr KernelTable avx512_table(const KernelTable& avx2) {
    KernelTable t = avx2;
    t.name = "avx512";
    t.f32 = {ukr::avx512_f32, ukr::kAvx512MrF32, ukr::kAvx512NrF32, 144, 128, 4064, avx2.f32.small,
             avx2.f32.small_max_flops, avx2.f32.transpose};
    t.f64 = {ukr::avx512_f64, ukr::kAvx512MrF64, ukr::kAvx512NrF64, 72, 128, 4080, avx2.f64.small,
             avx2.f64.small_max_flops, avx2.f64.transpose};
    return t;
}
constexpr KernelTable kAvx512 = avx512_table(kAvx2);  // constant: no static-initialisation order
#endif

struct Choice {
    const KernelTable* table;
    std::string note;
};

// Whether the AVX-512 kernels are worth preferring to AVX2 on this CPU. AMD's
// Zen 4 runs a 512-bit FMA as two 256-bit halves: no more FLOPs per cycle,
// and our 12×32 kernel measured 0-15% slower than the 6×16 AVX2 one there
// (benchmarks/cpp). So AVX-512 is the default on Intel only; elsewhere it is
// available with PYBACKPROP_ISA=avx512.
bool prefer_avx512() {
#if defined(PYBACKPROP_HAVE_X86_KERNELS)
    return __builtin_cpu_is("intel");
#else
    return false;
#endif
}

const KernelTable& best_supported() {
    const auto& all = compiled_kernel_tables();
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
        if (!cpu_supports(**it)) continue;
        if (std::string((*it)->name) == "avx512" && !prefer_avx512()) continue;
        return **it;
    }
    return kGeneric;
}

Choice choose() {
    const char* env = std::getenv("PYBACKPROP_ISA");
    if (env == nullptr || *env == '\0') return {&best_supported(), ""};
    const std::string want(env);
    if (const KernelTable* t = find_kernel_table(want)) return {t, ""};
    bool known = false;
    for (const KernelTable* t : compiled_kernel_tables()) known = known || want == t->name;
    const KernelTable& best = best_supported();
    std::string note = "PYBACKPROP_ISA=" + want + " " +
                       (known ? "is not supported by this CPU" : "is not a compiled ISA") +
                       "; using " + best.name;
    std::fprintf(stderr, "pybackprop: %s\n", note.c_str());
    return {&best, note};
}

const Choice& choice() {
    static const Choice c = choose();
    return c;
}

}  // namespace

const std::vector<const KernelTable*>& compiled_kernel_tables() {
#if defined(PYBACKPROP_HAVE_X86_KERNELS)
    static const std::vector<const KernelTable*> all{&kGeneric, &kAvx2, &kAvx512};
#else
    static const std::vector<const KernelTable*> all{&kGeneric};
#endif
    return all;
}

bool cpu_supports(const KernelTable& t) {
#if defined(PYBACKPROP_HAVE_X86_KERNELS)
    const std::string name = t.name;
    if (name == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (name == "avx512") return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
#endif
    return std::string(t.name) == "generic";
}

const KernelTable* find_kernel_table(const std::string& name) {
    for (const KernelTable* t : compiled_kernel_tables())
        if (name == t->name) return cpu_supports(*t) ? t : nullptr;
    return nullptr;
}

const KernelTable& active_kernel_table() { return *choice().table; }
const std::string& isa_note() { return choice().note; }

}  // namespace bp
