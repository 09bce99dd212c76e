// Dropout with keep probability p (the probability of KEEPING a unit).
//
//   training:  D = A ⊙ M · s,  M_ij ~ Bernoulli(p),  s = 1/p (inverted) or 1 (classic)
//   inference: D = A · s',     s' = 1 (inverted)   or p (classic: "multiply by p at test time")
//   backward:  dL/dA = dL/dD ⊙ M · s
// Both scalings give the same expected output. A mask element is kept when
// the next PCG32 output is below floor(p · 2^32) (so p = 1 keeps everything);
// per_batch draws one row and repeats it for every sample of the batch.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/rng.hpp"
#include "common/threads.hpp"

namespace bp {

struct DropoutSpec {
    bool enabled = false;
    double keep_prob = 1.0;
    bool inverted = true;    // false: classic scaling
    bool per_batch = false;  // false: a new mask for every sample
    std::size_t index = 0;   // position in the model's layer list (its RNG stream)

    double train_scale() const { return inverted ? 1.0 / keep_prob : 1.0; }
    double inference_scale() const { return inverted ? 1.0 : keep_prob; }
};

// Fills M[B, F] with 0/1 from rng (p = 1 keeps everything and draws nothing): value i
// is output i of rng's stream, and rng ends advanced past the values drawn. A large
// mask is drawn in fixed spans of kMaskSpan values over the core's threads, each span
// from a copy of rng jumped ahead to its start: the same values for any thread count.
inline constexpr std::size_t kMaskSpan = 8192;
template <typename T>
void dropout_mask(T* M, std::size_t B, std::size_t F, double keep_prob, bool per_batch, Pcg32& rng) {
    const uint64_t threshold = static_cast<uint64_t>(std::floor(keep_prob * 4294967296.0));
    const std::size_t drawn = per_batch ? F : B * F;
    if (threshold > UINT32_MAX) {  // p = 1
        std::fill(M, M + drawn, T(1));
    } else {
        const uint32_t t32 = uint32_t(threshold);
        auto span = [&](std::size_t, std::size_t off, std::size_t len) {
            Pcg32 at = rng;
            at.advance(off);
            constexpr std::size_t kChunk = 512;
            uint32_t u[kChunk];
            for (std::size_t start = off; start < off + len; start += kChunk) {
                const std::size_t n = std::min(kChunk, off + len - start);
                at.fill(u, n);  // the stream of rng.next(), drawn four at a time
                // a branch-free 32-bit compare, so the loop vectorises (a branch would miss at random)
                for (std::size_t i = 0; i < n; ++i) M[start + i] = T(u[i] < t32);
            }
        };
        const int threads = std::min<int>(num_threads(), int(drawn / kMaskSpan));
        for_each_chunk(drawn, kMaskSpan, threads < 1 ? 1 : threads, span);
        rng.advance(drawn);
    }
    if (per_batch)
        for (std::size_t r = 1; r < B; ++r) std::memcpy(M + r * F, M, F * sizeof(T));
}

// Rows `rows[0..R)` of the B × F mask dropout_mask(M, B, F, keep_prob, per_batch, rng)
// would draw, for any B above them, into M[R, F], bitwise: row r is outputs r·F ..
// r·F + F - 1 of rng's stream (per_batch: row 0 for every row), reached by jumping
// ahead. Lets a rank of distributed training draw only the rows it holds. rng is
// not advanced.
template <typename T>
void dropout_mask_rows(T* M, const int64_t* rows, std::size_t R, std::size_t F, double keep_prob, bool per_batch,
                       const Pcg32& rng) {
    for (std::size_t r = 0; r < R; ++r) {
        if (per_batch && r > 0) {
            std::memcpy(M + r * F, M, F * sizeof(T));
            continue;
        }
        Pcg32 at = rng;
        at.advance(per_batch ? 0 : uint64_t(rows[r]) * F);
        dropout_mask(M + r * F, 1, F, keep_prob, false, at);
    }
}

// D[n] = A ⊙ M · scale (M null: D = A · scale). D may alias A.
template <typename T>
void dropout_forward(T* D, const T* A, const T* M, std::size_t n, T scale) {
    if (M)
        for (std::size_t i = 0; i < n; ++i) D[i] = A[i] * M[i] * scale;
    else
        for (std::size_t i = 0; i < n; ++i) D[i] = A[i] * scale;
}

// dA[n] = dD ⊙ M · scale, in place; without a mask (inference) dD · scale (nothing
// to do for scale 1: no dropout, or inverted dropout at inference).
template <typename T>
void dropout_backward(T* dA, const T* M, std::size_t n, T scale) {
    if (M)
        for (std::size_t i = 0; i < n; ++i) dA[i] *= M[i] * scale;
    else if (scale != T(1))
        for (std::size_t i = 0; i < n; ++i) dA[i] *= scale;
}

}  // namespace bp
