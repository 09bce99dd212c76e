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
const KernelTable kGeneric{
    "generic",
    {ukr::generic_f32, ukr::kGenericMrF32, ukr::kGenericNrF32, 128, 256, 4096},
    {ukr::generic_f64, ukr::kGenericMrF64, ukr::kGenericNrF64, 64, 256, 4096},
    ukr::generic_tanh_f32,
};

#if defined(PYBACKPROP_HAVE_X86_KERNELS)
const KernelTable kAvx2{
    "avx2",
    {ukr::avx2_f32, ukr::kAvx2MrF32, ukr::kAvx2NrF32, 168, 256, 4080},
    {ukr::avx2_f64, ukr::kAvx2MrF64, ukr::kAvx2NrF64, 72, 256, 4080},
    ukr::avx2_tanh_f32,
};
const KernelTable kAvx512{
    "avx512",
    {ukr::avx512_f32, ukr::kAvx512MrF32, ukr::kAvx512NrF32, 144, 128, 4064},
    {ukr::avx512_f64, ukr::kAvx512MrF64, ukr::kAvx512NrF64, 72, 128, 4080},
    ukr::avx2_tanh_f32,  // AVX-512 CPUs have AVX2; 8 lanes already outrun the memory here
};
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
