// The blocked GEMM driver (loop nest, edge tiles, threads: see gemm.hpp), and
// the driver of the unpacked path for small products (gemm_small).
#include <algorithm>
#include <cstddef>

#include "common/threads.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/gemm.hpp"
#include "kernels/pack.hpp"
#include "common/arena.hpp"


namespace bp {
namespace {

// Packing buffers, one pair per thread and type, grown (never shrunk) and
// reused: after the first call at a given blocking, no allocation.
template <typename T>
struct PackBuffers {
    AlignedBuffer<T> a, b;
    T* get_a(std::size_t n) { return grow(a, n); }
    T* get_b(std::size_t n) { return grow(b, n); }
    static T* grow(AlignedBuffer<T>& buf, std::size_t n) {
        if (buf.size() < n) buf.resize(n);
        return buf.data();
    }
};

template <typename T>
PackBuffers<T>& thread_buffers() {
    thread_local PackBuffers<T> bufs;
    return bufs;
}

// The largest register tile of any table, for the edge scratch tile.
constexpr int kMaxTile = 12 * 32;

// C[m,n] += A'[m,k] · B'[k,n] on one thread; C is the block of the whole
// product at (row0, col0), which is where epi (if any) is told each final block is.
template <typename T>
void gemm_serial(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const T* A,
                 std::ptrdiff_t rsa, std::ptrdiff_t csa, const T* B, std::ptrdiff_t rsb,
                 std::ptrdiff_t csb, T* C, std::ptrdiff_t ldc, const GemmKernel<T>& K,
                 const GemmEpilogue* epi, std::ptrdiff_t row0, std::ptrdiff_t col0) {
    const std::ptrdiff_t MR = K.mr, NR = K.nr, MC = K.mc, KC = K.kc, NC = K.nc;
    PackBuffers<T>& bufs = thread_buffers<T>();
    const std::ptrdiff_t nc_max = std::min(NC, (n + NR - 1) / NR * NR);
    const std::ptrdiff_t mc_max = std::min(MC, (m + MR - 1) / MR * MR);
    const std::ptrdiff_t kc_max = std::min(KC, k);
    T* bpack = bufs.get_b(std::size_t(kc_max * nc_max));
    T* apack = bufs.get_a(std::size_t(kc_max * mc_max));
    alignas(64) T tile[kMaxTile];

    for (std::ptrdiff_t jc = 0; jc < n; jc += NC) {
        const std::ptrdiff_t nc = std::min(NC, n - jc);
        for (std::ptrdiff_t pc = 0; pc < k; pc += KC) {
            const std::ptrdiff_t kc = std::min(KC, k - pc);
            pack_b(kc, nc, B + pc * rsb + jc * csb, rsb, csb, K.nr, bpack);
            for (std::ptrdiff_t ic = 0; ic < m; ic += MC) {
                const std::ptrdiff_t mc = std::min(MC, m - ic);
                pack_a(mc, kc, A + ic * rsa + pc * csa, rsa, csa, K.mr, apack);
                for (std::ptrdiff_t jr = 0; jr < nc; jr += NR) {
                    const std::ptrdiff_t nr = std::min(NR, nc - jr);
                    const T* bp = bpack + jr * kc;
                    for (std::ptrdiff_t ir = 0; ir < mc; ir += MR) {
                        const std::ptrdiff_t mr = std::min(MR, mc - ir);
                        const T* ap = apack + ir * kc;
                        T* c = C + (ic + ir) * ldc + jc + jr;
                        if (mr == MR && nr == NR) {
                            K.fn(kc, ap, bp, c, ldc);
                            continue;
                        }
                        // Edge tile: the same kernel on a copy (contract: gemm.hpp).
                        for (std::ptrdiff_t i = 0; i < mr; ++i)
                            for (std::ptrdiff_t j = 0; j < nr; ++j) tile[i * NR + j] = c[i * ldc + j];
                        K.fn(kc, ap, bp, tile, NR);
                        for (std::ptrdiff_t i = 0; i < mr; ++i)
                            for (std::ptrdiff_t j = 0; j < nr; ++j) c[i * ldc + j] = tile[i * NR + j];
                    }
                }
                if (epi && pc + kc == k) (*epi)(row0 + ic, mc, col0 + jc, nc);  // the block is final
            }
        }
    }
}

}  // namespace

template <typename T>
void gemm_blocked(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const T* A,
                  std::ptrdiff_t rsa, std::ptrdiff_t csa, const T* B, std::ptrdiff_t rsb,
                  std::ptrdiff_t csb, T* C, std::ptrdiff_t ldc, const KernelTable* table,
                  const GemmEpilogue* epi) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {  // nothing to add: C is final as it is
        if (epi) (*epi)(0, m, 0, n);
        return;
    }
    const GemmKernel<T>& K = (table ? *table : active_kernel_table()).template get<T>();
    int threads = threads_for(double(m) * double(n) * double(k));
    // Split the larger side of C into MR- or NR-aligned blocks, one per thread;
    // each block runs the whole loop nest alone (the other operand is packed
    // by every thread: a cost of 1/n or 1/m of the product).
    const bool split_n = (n + K.nr - 1) / K.nr >= (m + K.mr - 1) / K.mr;
    const std::ptrdiff_t unit = split_n ? K.nr : K.mr;
    const std::ptrdiff_t tiles = ((split_n ? n : m) + unit - 1) / unit;
    if (threads > tiles) threads = int(tiles);
    if (threads <= 1) {
        gemm_serial(m, n, k, A, rsa, csa, B, rsb, csb, C, ldc, K, epi, 0, 0);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        const auto [t, nt] = team_position();
        const std::ptrdiff_t lo = tiles * t / nt * unit, hi = tiles * (t + 1) / nt * unit;
        if (split_n) {
            const std::ptrdiff_t len = std::min(hi, n) - lo;
            if (len > 0)
                gemm_serial(m, len, k, A, rsa, csa, B + lo * csb, rsb, csb, C + lo, ldc, K, epi, 0, lo);
        } else {
            const std::ptrdiff_t len = std::min(hi, m) - lo;
            if (len > 0)
                gemm_serial(len, n, k, A + lo * rsa, rsa, csa, B, rsb, csb, C + lo * ldc, ldc, K, epi, lo, 0);
        }
    }
}

template <typename T>
void gemm_small(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const T* A, std::ptrdiff_t rsa,
                std::ptrdiff_t csa, const T* B, std::ptrdiff_t rsb, std::ptrdiff_t csb, T* C,
                std::ptrdiff_t ldc, const KernelTable* table, const GemmEpilogue* epi) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        if (epi) (*epi)(0, m, 0, n);
        return;
    }
    const GemmKernel<T>& K = (table ? *table : active_kernel_table()).template get<T>();
    const T* b = B;
    std::ptrdiff_t ldb = rsb;
    if (csb != 1) {  // B' is a transpose (matmul_nt): its rows are made contiguous once, k·n values
        T* bt = thread_buffers<T>().get_b(std::size_t(k * n));
        K.transpose(B, rsb, csb, bt, k, n);
        b = bt;
        ldb = n;
    }
    // Rows [lo, hi) in blocks of kRows (a multiple of every small kernel's strip
    // height), each block's epilogue right after it while it is in cache.
    constexpr std::ptrdiff_t kRows = 24;
    auto rows = [&](std::ptrdiff_t lo, std::ptrdiff_t hi) {
        const std::ptrdiff_t step = epi ? kRows : hi - lo;
        for (std::ptrdiff_t i = lo; i < hi; i += step) {
            const std::ptrdiff_t mb = std::min(step, hi - i);
            K.small(mb, n, k, A + i * rsa, rsa, csa, b, ldb, C + i * ldc, ldc);
            if (epi) (*epi)(i, mb, 0, n);
        }
    };
    // Threads split the rows: every element's arithmetic is the same in any
    // tile (ukernels.hpp: SmallFn), so the result does not depend on the split.
    int threads = threads_for(double(m) * double(n) * double(k));
    if (threads > (m + 5) / 6) threads = int((m + 5) / 6);
    if (threads <= 1) return rows(0, m);
#pragma omp parallel num_threads(threads)
    {
        const auto [t, nt] = team_position();
        rows(m * t / nt, m * (t + 1) / nt);
    }
}

template <typename T>
void gemm_auto(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const T* A, std::ptrdiff_t rsa,
               std::ptrdiff_t csa, const T* B, std::ptrdiff_t rsb, std::ptrdiff_t csb, T* C,
               std::ptrdiff_t ldc, const GemmEpilogue* epi) {
    const KernelTable& table = active_kernel_table();
    if (double(m) * double(n) * double(k) <= table.get<T>().small_max_flops)
        return gemm_small<T>(m, n, k, A, rsa, csa, B, rsb, csb, C, ldc, &table, epi);
    gemm_blocked<T>(m, n, k, A, rsa, csa, B, rsb, csb, C, ldc, &table, epi);
}

template void gemm_auto<float>(std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t, const float*, std::ptrdiff_t,
                               std::ptrdiff_t, const float*, std::ptrdiff_t, std::ptrdiff_t, float*,
                               std::ptrdiff_t, const GemmEpilogue*);
template void gemm_auto<double>(std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t, const double*, std::ptrdiff_t,
                                std::ptrdiff_t, const double*, std::ptrdiff_t, std::ptrdiff_t, double*,
                                std::ptrdiff_t, const GemmEpilogue*);

template void gemm_small<float>(std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t, const float*, std::ptrdiff_t,
                                std::ptrdiff_t, const float*, std::ptrdiff_t, std::ptrdiff_t, float*,
                                std::ptrdiff_t, const KernelTable*, const GemmEpilogue*);
template void gemm_small<double>(std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t, const double*, std::ptrdiff_t,
                                 std::ptrdiff_t, const double*, std::ptrdiff_t, std::ptrdiff_t, double*,
                                 std::ptrdiff_t, const KernelTable*, const GemmEpilogue*);

template void gemm_blocked<float>(std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t, const float*,
                                  std::ptrdiff_t, std::ptrdiff_t, const float*, std::ptrdiff_t,
                                  std::ptrdiff_t, float*, std::ptrdiff_t, const KernelTable*,
                                  const GemmEpilogue*);
template void gemm_blocked<double>(std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t, const double*,
                                   std::ptrdiff_t, std::ptrdiff_t, const double*, std::ptrdiff_t,
                                   std::ptrdiff_t, double*, std::ptrdiff_t, const KernelTable*,
                                   const GemmEpilogue*);

}  // namespace bp
