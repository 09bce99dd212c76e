// GEMM: the three matrix products of a dense layer, and the contract of the
// kernels behind them.
//
//   Z  = A · W     forward             matmul_nn: C[M,N] += A[M,K] · B[K,N]
//   dW = Aᵀ · δ    weight gradient     matmul_tn: C[K,N] += A[M,K]ᵀ · B[M,N]
//   dA = δ · Wᵀ    gradient to inputs  matmul_nt: C[M,K] += A[M,N] · B[K,N]ᵀ
//
// All operands are row-major and all three accumulate into C.
//
// ---------------------------------------------------------------- the contract
// Every product is first named as one logical GEMM  C[m,n] += A'[m,k] · B'[k,n]
// where A' and B' are strided views (element (i,p) of A' is A[i*rsa + p*csa]).
// A transpose is a swap of the two strides, never a copy: matmul_tn reads
// A' = Aᵀ with (rsa, csa) = (1, K); matmul_nt reads B' = Bᵀ with
// (rsb, csb) = (1, N). The transposes are absorbed by packing.
//
// Packing (pack.hpp). For a kc-deep slice of the reduction:
//   * A' is copied into micro-panels of MR rows: panel r holds rows
//     [r*MR, r*MR+MR) as kc columns of MR contiguous values,
//     a_panel[p*MR + i] = A'(r*MR + i, p).
//   * B' is copied into micro-panels of NR columns: panel s holds
//     b_panel[p*NR + j] = B'(p, s*NR + j).
//   * Rows/columns past the edge of A'/B' are packed as zeros, so every panel
//     is full and the microkernel never branches on the shape.
//   * Packed buffers start on 64-byte boundaries; every B row step (NR values)
//     is a multiple of 32 bytes, so kernels may use aligned vector loads of B.
//     Buffers are owned per thread, grown once and reused: no allocation per
//     call after the first at a given size.
//
// Microkernel (microkernels/ukernels.hpp). ukr(kc, a_panel, b_panel, c, ldc):
//   c[i*ldc + j] += Σ_{p<kc} a_panel[p*MR + i] · b_panel[p*NR + j]
//   for a full MR×NR tile of row-major C (unaligned). The sum over p is formed
//   in registers from zero in increasing p, then added to C once.
//
// Edge tiles. A tile cut by the right or bottom edge of C is copied into an
// MR×NR scratch tile, updated by the same microkernel and copied back, so an
// element gets exactly the same arithmetic whether its tile is full or not.
//
// Blocked driver (gemm_blocked.cpp), GotoBLAS/BLIS loop order:
//   jc over n by NC (B' panel kc×nc in L3)
//     pc over k by KC (the reduction; each KC slice adds once into C)
//       ic over m by MC (A' block mc×kc in L2)
//         jr over nc by NR, ir over mc by MR: microkernel (B micro-panel in L1)
//
// Determinism. Each element of C is C + s_0 + s_1 + ... with s_q the sum over
// the q-th KC slice in increasing p; KC does not depend on the thread count.
// Threads split C into disjoint MR/NR-aligned blocks that each run the whole
// loop nest on their own, so the result is bitwise the same for any number
// of threads. Different ISAs (tile shapes, FMA or not) agree to rounding only.
//
// Dispatch (dispatch.hpp). One kernel table per ISA (generic C++, AVX2+FMA,
// AVX-512F), the best the CPU supports chosen once at first use;
// PYBACKPROP_ISA=generic|avx2|avx512 overrides it (an unknown or unsupported
// value falls back to the best available and says so on stderr and in
// build_info()).
//
// Small products take the direct path: the naive kernels of
// gemm_reference.hpp, no packing, no allocation, no dispatch (see
// use_direct_gemm). The textbook network (3→4→4→1, batch 1) stays there.
// Products past it but up to the active table's small_max_flops (m·n·k; the
// measured crossover is in dispatch.cpp) take the unpacked path, gemm_small:
// the table's `small` kernel reads A' through its strides and B' by rows (a
// transposed B' is copied into rows once), where packing costs more than it
// saves. gemm_auto makes that choice, from the shape and table only.
//
// Epilogue (GemmEpilogue). An optional function run on each block of C as soon
// as it is final (after its last KC slice), by the thread that computed it,
// while the block is still in cache: the layers fuse the activation (forward)
// and dropout + activation derivative (backward) into the product this way.
// Blocks are disjoint and each element is final when its block's epilogue runs,
// so an elementwise epilogue gives bitwise what a separate pass after the
// product gives, for any blocking and thread count. The direct path runs it
// once on the whole of C.
#pragma once
#include <cstddef>

#include "kernels/gemm_reference.hpp"

namespace bp {

struct KernelTable;

// fn(ctx, row0, rows, col0, cols): the block C[row0 : row0+rows, col0 : col0+cols] is final.
struct GemmEpilogue {
    void (*fn)(void* ctx, std::ptrdiff_t row0, std::ptrdiff_t rows, std::ptrdiff_t col0, std::ptrdiff_t cols);
    void* ctx;
    void operator()(std::ptrdiff_t row0, std::ptrdiff_t rows, std::ptrdiff_t col0, std::ptrdiff_t cols) const {
        fn(ctx, row0, rows, col0, cols);
    }
};

// C[m,n] += A'[m,k] · B'[k,n] with the strided views of the contract, by the
// blocked driver and the microkernels of `table` (the active one if null),
// then `epi` (if any) on each final block. Threads as threads_for(m*n*k).
// Defined for float and double.
template <typename T>
void gemm_blocked(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const T* A,
                  std::ptrdiff_t rsa, std::ptrdiff_t csa, const T* B, std::ptrdiff_t rsb,
                  std::ptrdiff_t csb, T* C, std::ptrdiff_t ldc, const KernelTable* table = nullptr,
                  const GemmEpilogue* epi = nullptr);

// C[m,n] += A'[m,k] · B'[k,n] like gemm_blocked, but without packing: the
// `small` kernel of the table reads A' through its strides and B' by rows (a
// transposed B', as in matmul_nt, is first copied once into rows by the table's
// `transpose`), in register
// tiles of a few rows across all of n; `epi` on blocks of whole rows. Each
// element is C + (its sum from zero over p in increasing order), whatever the
// tiling and the number of threads (which split the rows).
template <typename T>
void gemm_small(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const T* A,
                std::ptrdiff_t rsa, std::ptrdiff_t csa, const T* B, std::ptrdiff_t rsb,
                std::ptrdiff_t csb, T* C, std::ptrdiff_t ldc, const KernelTable* table = nullptr,
                const GemmEpilogue* epi = nullptr);

// C[m,n] += A'[m,k] · B'[k,n] by the active table: gemm_small when m·n·k is
// at most that table's small_max_flops (its measured crossover, dispatch.cpp),
// else gemm_blocked. What the matmuls below call past the direct path.
template <typename T>
void gemm_auto(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const T* A, std::ptrdiff_t rsa,
               std::ptrdiff_t csa, const T* B, std::ptrdiff_t rsb, std::ptrdiff_t csb, T* C,
               std::ptrdiff_t ldc, const GemmEpilogue* epi = nullptr);

// Products below these sizes cost less done directly than packed: any
// dimension under 8 (a GEMV-like product reads each operand once directly,
// while packing would copy the big one first), or under 16³ multiply-adds.
// Measured on AVX2/AVX-512 (Zen 4), 1 thread: at 16³ both paths run at
// ~12 GFLOP/s, at 24³ the blocked path is 2-3× faster; at m = 4..7 the
// transposed packing of matmul_nt still loses to the direct loops.
inline constexpr std::ptrdiff_t kDirectMinDim = 8;
inline constexpr double kDirectMaxFlops = 16.0 * 16.0 * 16.0;

inline bool use_direct_gemm(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k) {
    return m < kDirectMinDim || n < kDirectMinDim || k < kDirectMinDim ||
           double(m) * double(n) * double(k) < kDirectMaxFlops;
}

// Which kernels matmul_nn picks for a forward product.
//   Training: use_direct_gemm's rule, then gemm_auto's crossover; the training steps
//     have always taken these, and the fused per-sample step is bitwise the direct loops.
//   Inference (predict, evaluate): a product with N and K of at least kDirectMinDim but
//     few rows (M < kDirectMinDim, one sample's GEMV) or few columns (N < kNarrowMaxCols,
//     an output layer) takes gemm_small, whose vector kernel reads B once by rows. Measured
//     on Zen 4, float32, 1 thread, in one run: one row of 256×256 in 3.9 µs against the
//     direct loops' 10.1 µs (vectorised only with the baseline ISA); 256 rows × 256 → 10 in
//     22 µs against gemm_blocked's 54 µs, whose 32-column register tile is a third used.
//     Otherwise as Training.
enum class ForwardPath { Training, Inference };
inline constexpr std::ptrdiff_t kNarrowMaxCols = 32;

inline bool use_small_for_inference(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k) {
    return n >= kDirectMinDim && k >= kDirectMinDim && (m < kDirectMinDim || n < kNarrowMaxCols);
}

// C[M,N] += A[M,K] · B[K,N], then epi (if any) on C
template <typename T>
void matmul_nn(T* C, const T* A, const T* B, std::ptrdiff_t M, std::ptrdiff_t K, std::ptrdiff_t N,
               const GemmEpilogue* epi = nullptr, ForwardPath path = ForwardPath::Training) {
    if (path == ForwardPath::Inference && use_small_for_inference(M, N, K))
        return gemm_small<T>(M, N, K, A, K, 1, B, N, 1, C, N, nullptr, epi);
    if (!use_direct_gemm(M, N, K)) return gemm_auto<T>(M, N, K, A, K, 1, B, N, 1, C, N, epi);
    matmul_nn_reference(C, A, B, M, K, N);
    if (epi) (*epi)(0, M, 0, N);
}

// C[K,N] += A[M,K]ᵀ · B[M,N]
template <typename T>
void matmul_tn(T* C, const T* A, const T* B, std::ptrdiff_t M, std::ptrdiff_t K, std::ptrdiff_t N) {
    if (use_direct_gemm(K, N, M)) return matmul_tn_reference(C, A, B, M, K, N);
    gemm_auto<T>(K, N, M, A, 1, K, B, N, 1, C, N);
}

// C[M,K] += A[M,N] · B[K,N]ᵀ, then epi (if any) on C
template <typename T>
void matmul_nt(T* C, const T* A, const T* B, std::ptrdiff_t M, std::ptrdiff_t N, std::ptrdiff_t K,
               const GemmEpilogue* epi = nullptr) {
    if (!use_direct_gemm(M, K, N)) return gemm_auto<T>(M, K, N, A, N, 1, B, 1, N, C, K, epi);
    matmul_nt_reference(C, A, B, M, N, K);
    if (epi) (*epi)(0, M, 0, K);
}

}  // namespace bp
