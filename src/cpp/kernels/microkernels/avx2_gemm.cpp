// AVX2 + FMA GEMM microkernels (ukernels.hpp: Fn, SmallFn, TransposeFn); the
// shared traits and helpers are in avx2.hpp. Contract: kernels/gemm.hpp.
#include <cstddef>

#include "kernels/microkernels/avx2.hpp"

namespace bp::ukr {
namespace {

// The packed microkernel for F32 (6×16) and F64 (6×8): MR rows × 2 vectors of C
// held in 12 ymm accumulators; per step p, the NR values of the B micro-panel are
// two aligned loads and each of the MR values of A is one broadcast feeding two
// FMAs: 12 FMAs to 8 loads, which keeps both FMA ports busy. The loops over rows
// and vectors unroll completely, so the accumulators stay in registers.
template <class S>
void packed_6x2(std::ptrdiff_t kc, const typename S::T* a, const typename S::T* b, typename S::T* c,
                std::ptrdiff_t ldc) {
    constexpr int MR = 6, L = S::L;
    typename S::V acc[MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = S::zero();
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
#pragma GCC unroll 8
    for (std::ptrdiff_t p = 0; p < kc; ++p) {
        _mm_prefetch(reinterpret_cast<const char*>(a + 6 * 8), _MM_HINT_T0);
        const typename S::V b0 = S::aload(b), b1 = S::aload(b + L);
#pragma GCC unroll 6
        for (int i = 0; i < MR; ++i) {
            const typename S::V ai = S::bcast(a + i);
            acc[i][0] = S::fma(ai, b0, acc[i][0]);
            acc[i][1] = S::fma(ai, b1, acc[i][1]);
        }
        a += MR;
        b += 2 * L;
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
        typename S::T* r = c + i * ldc;
        S::store(r, S::add(S::load(r), acc[i][0]));
        S::store(r + L, S::add(S::load(r + L), acc[i][1]));
    }
}

}  // namespace

void avx2_f32(std::ptrdiff_t kc, const float* a, const float* b, float* c, std::ptrdiff_t ldc) {
    static_assert(kAvx2MrF32 == 6 && kAvx2NrF32 == 2 * F32::L, "a 6x16 tile");
    packed_6x2<F32>(kc, a, b, c, ldc);
}
void avx2_f64(std::ptrdiff_t kc, const double* a, const double* b, double* c, std::ptrdiff_t ldc) {
    static_assert(kAvx2MrF64 == 6 && kAvx2NrF64 == 2 * F64::L, "a 6x8 tile");
    packed_6x2<F64>(kc, a, b, c, ldc);
}

// ------------------------------------------------------------ small products
// (ukernels.hpp: SmallFn). A tile is R rows × V vectors of C; with MASK the
// last vector is cut by the right edge of C and its loads and stores of B and
// C are masked (lanes past the edge are neither read nor written), so the
// lanes inside get exactly the arithmetic of a full tile.
namespace {

template <class S, int R, int V, bool MASK>
void small_tile(std::ptrdiff_t k, const typename S::T* a, std::ptrdiff_t rsa, std::ptrdiff_t csa,
                const typename S::T* b, std::ptrdiff_t ldb, typename S::T* c, std::ptrdiff_t ldc,
                __m256i mask) {
    typename S::V acc[R][V];
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
        for (int v = 0; v < V; ++v) acc[i][v] = S::zero();
#pragma GCC unroll 2
    for (std::ptrdiff_t p = 0; p < k; ++p) {
        typename S::V bv[V];
#pragma GCC unroll 8
        for (int v = 0; v < V; ++v) bv[v] = (MASK && v == V - 1) ? S::mload(b + v * S::L, mask) : S::load(b + v * S::L);
#pragma GCC unroll 6
        for (int i = 0; i < R; ++i) {
            const typename S::V ai = S::bcast(a + i * rsa);
#pragma GCC unroll 8
            for (int v = 0; v < V; ++v) acc[i][v] = S::fma(ai, bv[v], acc[i][v]);
        }
        a += csa;
        b += ldb;
    }
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
        for (int v = 0; v < V; ++v) {
            typename S::T* r = c + i * ldc + v * S::L;
            if (MASK && v == V - 1) S::mstore(r, mask, S::add(S::mload(r, mask), acc[i][v]));
            else S::store(r, S::add(S::load(r), acc[i][v]));
        }
}

// One strip of R rows across all n columns, in tiles of 2 vectors; a strip of one
// or two rows in tiles of 4, so that its tile still has 4 or 8 independent FMA
// chains to hide the FMA's latency (one row of a 2-vector tile runs at half speed:
// a sample's GEMV at inference). The tiling leaves each element's arithmetic as is.
template <class S, int R>
void small_strip(std::ptrdiff_t n, std::ptrdiff_t k, const typename S::T* a, std::ptrdiff_t rsa,
                 std::ptrdiff_t csa, const typename S::T* b, std::ptrdiff_t ldb, typename S::T* c,
                 std::ptrdiff_t ldc) {
    constexpr int L = S::L;
    const __m256i none = _mm256_setzero_si256();
    std::ptrdiff_t j = 0;
    if constexpr (R == 1)
        for (; j + 8 * L <= n; j += 8 * L) small_tile<S, R, 8, false>(k, a, rsa, csa, b + j, ldb, c + j, ldc, none);
    if constexpr (R <= 2)
        for (; j + 4 * L <= n; j += 4 * L) small_tile<S, R, 4, false>(k, a, rsa, csa, b + j, ldb, c + j, ldc, none);
    for (; j + 2 * L <= n; j += 2 * L) small_tile<S, R, 2, false>(k, a, rsa, csa, b + j, ldb, c + j, ldc, none);
    const std::ptrdiff_t rest = n - j;
    if (rest > L) small_tile<S, R, 2, true>(k, a, rsa, csa, b + j, ldb, c + j, ldc, S::mask(rest - L));
    else if (rest == L) small_tile<S, R, 1, false>(k, a, rsa, csa, b + j, ldb, c + j, ldc, none);
    else if (rest > 0) small_tile<S, R, 1, true>(k, a, rsa, csa, b + j, ldb, c + j, ldc, S::mask(rest));
}

// m cut into ceil(m/6) strips of nearly equal height (32 rows: 6,6,5,5,5,5),
// so no strip is so short that its few accumulators wait on the FMA latency.
template <class S>
void small_gemm(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const typename S::T* A,
                std::ptrdiff_t rsa, std::ptrdiff_t csa, const typename S::T* B, std::ptrdiff_t ldb,
                typename S::T* C, std::ptrdiff_t ldc) {
    constexpr std::ptrdiff_t MR = 6;
    const std::ptrdiff_t strips = (m + MR - 1) / MR;
    for (std::ptrdiff_t s = 0, i = 0; s < strips; ++s) {
        const std::ptrdiff_t rows = m * (s + 1) / strips - m * s / strips;
        const typename S::T* a = A + i * rsa;
        typename S::T* c = C + i * ldc;
        switch (rows) {
            case 6: small_strip<S, 6>(n, k, a, rsa, csa, B, ldb, c, ldc); break;
            case 5: small_strip<S, 5>(n, k, a, rsa, csa, B, ldb, c, ldc); break;
            case 4: small_strip<S, 4>(n, k, a, rsa, csa, B, ldb, c, ldc); break;
            case 3: small_strip<S, 3>(n, k, a, rsa, csa, B, ldb, c, ldc); break;
            case 2: small_strip<S, 2>(n, k, a, rsa, csa, B, ldb, c, ldc); break;
            default: small_strip<S, 1>(n, k, a, rsa, csa, B, ldb, c, ldc); break;
        }
        i += rows;
    }
}

}  // namespace

void avx2_small_f32(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const float* A, std::ptrdiff_t rsa,
                    std::ptrdiff_t csa, const float* B, std::ptrdiff_t ldb, float* C, std::ptrdiff_t ldc) {
    small_gemm<F32>(m, n, k, A, rsa, csa, B, ldb, C, ldc);
}
void avx2_small_f64(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, const double* A, std::ptrdiff_t rsa,
                    std::ptrdiff_t csa, const double* B, std::ptrdiff_t ldb, double* C, std::ptrdiff_t ldc) {
    small_gemm<F64>(m, n, k, A, rsa, csa, B, ldb, C, ldc);
}

// ------------------------------------------------------------ transposes

// (ukernels.hpp: TransposeFn) With rs = 1 each source column j is contiguous in p:
// 8 of them are loaded, transposed in registers and stored as 8 destination rows.
void avx2_transpose_f32(const float* src, std::ptrdiff_t rs, std::ptrdiff_t cs, float* dst, std::ptrdiff_t k,
                        std::ptrdiff_t n) {
    std::ptrdiff_t jf = 0, pf = 0;  // the full 8 × 8 blocks cover j < jf, p < pf
    if (rs == 1) {
        jf = n / 8 * 8;
        pf = k / 8 * 8;
        for (std::ptrdiff_t j0 = 0; j0 < jf; j0 += 8)
            for (std::ptrdiff_t p0 = 0; p0 < pf; p0 += 8) {
                __m256 col[8], row[8];
                for (int j = 0; j < 8; ++j) col[j] = _mm256_loadu_ps(src + (j0 + j) * cs + p0);
                transpose8(row, col);
                for (int p = 0; p < 8; ++p) _mm256_storeu_ps(dst + (p0 + p) * n + j0, row[p]);
            }
    }
    for (std::ptrdiff_t p = 0; p < k; ++p)  // the rest: columns past jf in every row, rows past pf
        for (std::ptrdiff_t j = p < pf ? jf : 0; j < n; ++j) dst[p * n + j] = src[p * rs + j * cs];
}

}  // namespace bp::ukr
