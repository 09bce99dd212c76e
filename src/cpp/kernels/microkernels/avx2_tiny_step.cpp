// AVX2 + FMA fused per-sample step of tiny float32 networks (ukernels.hpp:
// TinyStepFn, TinyLayerF32); the 8-lane helpers are in avx2.hpp.
#include <cstddef>
#include <cstdint>

#include "kernels/microkernels/avx2.hpp"

namespace bp::ukr {

// ------------------------------------------------------------ tiny networks
// (ukernels.hpp: TinyStepFn) The forward and backward pass of one row through a
// network of layers at most 8 wide, each layer's row in one ymm register from
// input to gradient. The lanes past a layer's width never reach a real lane: a
// lane is picked by a permute (not through memory, so no store waits to be
// forwarded), and whole-vector stores only go to padding (z and a: their views
// hold at least 16 values; the gradients: +0, see outer_product). Every value
// gets the general path's operations in its order, mul then add (the one FMA,
// in the sums of squares, is exact): kernels/gemm_reference.hpp, activations.hpp,
// losses.hpp (mse).
namespace {

// Permute indices as constants (a permute then reads its index from memory, one
// instruction): kSplat[k] picks lane k for every lane; kOuter the factors of the
// outer product's chunk c of an in × out block, k = f / out and j = f % out of the
// flat index f = 8c + i of lane i (past the block, lanes the mask clears).
struct OuterIndex {
    alignas(32) int32_t k[kTinyMaxWidth][kTinyMaxWidth][8];  // [out - 1][c][i]
    alignas(32) int32_t j[kTinyMaxWidth][kTinyMaxWidth][8];
};
constexpr OuterIndex outer_index() {
    OuterIndex t{};
    for (int out = 1; out <= kTinyMaxWidth; ++out)
        for (int c = 0; c < kTinyMaxWidth; ++c)
            for (int i = 0; i < 8; ++i) {
                t.k[out - 1][c][i] = (8 * c + i) / out;
                t.j[out - 1][c][i] = (8 * c + i) % out;
            }
    return t;
}
constexpr OuterIndex kOuter = outer_index();
alignas(32) constexpr int32_t kSplat[8][8] = {{0, 0, 0, 0, 0, 0, 0, 0}, {1, 1, 1, 1, 1, 1, 1, 1}, {2, 2, 2, 2, 2, 2, 2, 2},
                                              {3, 3, 3, 3, 3, 3, 3, 3}, {4, 4, 4, 4, 4, 4, 4, 4}, {5, 5, 5, 5, 5, 5, 5, 5},
                                              {6, 6, 6, 6, 6, 6, 6, 6}, {7, 7, 7, 7, 7, 7, 7, 7}};
__m256i index8(const int32_t* i) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(i)); }

__m256i first_lanes(int n) { return F32::mask(n); }
__m256 lane(__m256 v, int k) { return _mm256_permutevar8x32_ps(v, index8(kSplat[k])); }  // v[k] in all lanes
float lane0(__m256 v) { return _mm256_cvtss_f32(v); }

// The n <= 8 floats at p in the first lanes, 0 in the rest. A width of 1, 2, 4 or 8
// is read by a plain load of exactly those bytes: a row of such a width lies inside
// one of the 32-byte chunks the previous step's update stored, so the store forwards
// to it (a masked load waits for the store to reach the cache, on the chain from one
// step to the next).
__m256 load_row(const float* p, int n) {
    switch (n) {
        case 1: return _mm256_zextps128_ps256(_mm_load_ss(p));
        case 2: return _mm256_zextps128_ps256(_mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
        case 4: return _mm256_zextps128_ps256(_mm_loadu_ps(p));
        case 8: return _mm256_loadu_ps(p);
        default: return _mm256_maskload_ps(p, first_lanes(n));
    }
}

// gemm_reference.hpp's dot(x, y, n) for n <= 8 from the products p_j = x_j y_j in
// lanes: eight partial sums of one product each combined pairwise, + an empty
// tail (n = 8), or the tail alone, in order, after the zero partial sums.
float dot_of_products(__m256 p, int n) {
    if (n == 8) {
        const __m256 acc = _mm256_add_ps(_mm256_setzero_ps(), p);
        const __m128 pairs = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));  // a_l + a_{l+4}
        const float left = _mm_cvtss_f32(pairs) + _mm_cvtss_f32(_mm_shuffle_ps(pairs, pairs, 1));
        const float right = _mm_cvtss_f32(_mm_shuffle_ps(pairs, pairs, 2)) + _mm_cvtss_f32(_mm_shuffle_ps(pairs, pairs, 3));
        return (left + right) + 0.0f;
    }
    float tail = 0.0f;
    for (int j = 0; j < n; ++j) tail += lane0(lane(p, j));
    return tail;  // + the zero partial sums: a sum from +0 is never -0, so 0 + tail = tail
}

// f(z): identity, relu (z > 0 ? z : 0), leaky_relu (z > 0 ? z : alpha z), sigmoid, tanh.
__m256 tiny_activation(TinyAct act, float alpha, __m256 z) {
    const __m256 positive = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_GT_OQ);
    switch (act) {
        case TinyAct::Relu: return _mm256_and_ps(z, positive);
        case TinyAct::LeakyRelu: return _mm256_blendv_ps(_mm256_mul_ps(_mm256_set1_ps(alpha), z), z, positive);
        case TinyAct::Sigmoid: return sigmoid8(z);
        case TinyAct::Tanh: return tanh8(z);
        case TinyAct::Identity: break;
    }
    return z;
}

// d · f'(z): relu z > 0 ? d : 0, leaky_relu z > 0 ? d : alpha d, sigmoid d · a · (1 − a),
// tanh d · (1 − a²), identity d.
__m256 tiny_derivative(TinyAct act, float alpha, __m256 d, __m256 z, __m256 a) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 positive = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_GT_OQ);
    switch (act) {
        case TinyAct::Relu: return _mm256_and_ps(d, positive);
        case TinyAct::LeakyRelu: return _mm256_blendv_ps(_mm256_mul_ps(_mm256_set1_ps(alpha), d), d, positive);
        case TinyAct::Sigmoid: return _mm256_mul_ps(_mm256_mul_ps(d, a), _mm256_sub_ps(one, a));
        case TinyAct::Tanh: return _mm256_mul_ps(d, _mm256_sub_ps(one, _mm256_mul_ps(a, a)));
        case TinyAct::Identity: break;
    }
    return d;
}

// G = 0 + x_k · δ_j, the dense in × out block (narrow_row of matmul_tn onto zeroed
// gradients; with x = 1, db = 0 + δ), written 8 values at a time with whole
// stores: lane i of chunk c picks its factors x_k, δ_j by permutes (kOuter; the
// lanes past the block store +0: the arena pads each block to 16 values). Returns
// Σ G² in double as sum_squares does: whole chunks into eight partial sums (lane i
// into sum i), combined pairwise, then the rest in order (from the chunk in
// register, not back from memory).
double outer_product(float* G, __m256 x, __m256 delta, int in, int out) {
    const int n = in * out, full = n / 8;
    const int32_t(*k)[8] = kOuter.k[out - 1];
    const int32_t(*j)[8] = kOuter.j[out - 1];
    auto chunk = [&](int c) {
        return _mm256_add_ps(_mm256_setzero_ps(), _mm256_mul_ps(_mm256_permutevar8x32_ps(x, index8(k[c])),
                                                                _mm256_permutevar8x32_ps(delta, index8(j[c]))));
    };
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    for (int c = 0; c < full; ++c) {
        const __m256 v = chunk(c);
        _mm256_storeu_ps(G + 8 * c, v);
        add_squares8(v, lo, hi);
    }
    double s = combine8(lo, hi);
    if (const int rest = n - 8 * full) {
        const __m256 v = _mm256_and_ps(chunk(full), _mm256_castsi256_ps(first_lanes(rest)));
        _mm256_storeu_ps(G + 8 * full, v);
        alignas(32) double sq[8];  // the squares in double, exact
        const __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), b = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        _mm256_store_pd(sq, _mm256_mul_pd(a, a));
        _mm256_store_pd(sq + 4, _mm256_mul_pd(b, b));
        for (int i = 0; i < rest; ++i) s += sq[i];
    }
    return s;
}

// col[j] = column j of the in × out matrix W (row-major, in, out <= 8): lane k holds
// W[k·out + j] for k < in and 0 past it; col[out..7] are 0. The rows are loaded and
// transposed in registers: 4 × 4 in the low halves (8 shuffles) when both are at most
// 4, else 8 × 8 (transpose8).
void columns(__m256 col[8], const float* W, int in, int out) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 row[8];
    for (int k = 0; k < 8; ++k) row[k] = k < in ? load_row(W + k * out, out) : zero;
    if (in <= 4 && out <= 4) {
        __m128 r0 = _mm256_castps256_ps128(row[0]), r1 = _mm256_castps256_ps128(row[1]);
        __m128 r2 = _mm256_castps256_ps128(row[2]), r3 = _mm256_castps256_ps128(row[3]);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        col[0] = _mm256_zextps128_ps256(r0);
        col[1] = _mm256_zextps128_ps256(r1);
        col[2] = _mm256_zextps128_ps256(r2);
        col[3] = _mm256_zextps128_ps256(r3);
        for (int j = 4; j < 8; ++j) col[j] = zero;
        return;
    }
    transpose8(col, row);
}

}  // namespace

double avx2_tiny_step_f32(const TinyLayerF32* layers, int L, const float* x, const float* y, const TinyUpdate* update,
                          TinyStepStats* stats) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 z[kTinyMaxLayers], a[kTinyMaxLayers];
    // Forward: z = b + x·W (narrow_row of matmul_nn: from b or +0, + x_k W_k for k in order;
    // one output: b + dot(x, W)), a = f(z).
    __m256 in = load_row(x, layers[0].in);
    for (int l = 0; l < L; ++l) {
        const TinyLayerF32& t = layers[l];
        __m256 acc;
        if (t.out == 1) {
            const __m256 p = _mm256_mul_ps(in, load_row(t.W, t.in));
            const float dot = dot_of_products(p, t.in);  // never -0, so 0 + dot = dot without a bias
            acc = _mm256_set_ps(0, 0, 0, 0, 0, 0, 0, t.b ? t.b[0] + dot : dot);
        } else {
            acc = t.b ? load_row(t.b, t.out) : zero;
            for (int k = 0; k < t.in; ++k)
                acc = _mm256_add_ps(acc, _mm256_mul_ps(lane(in, k), load_row(t.W + k * t.out, t.out)));
        }
        z[l] = acc;
        a[l] = tiny_activation(t.act, t.alpha, acc);
        _mm256_storeu_ps(t.z, z[l]);  // row 0 of views of at least 16 values: the rest is not this step's
        _mm256_storeu_ps(t.a, a[l]);
        const int lanes = (1 << t.out) - 1;
        stats->alive[l] = _mm256_movemask_ps(_mm256_cmp_ps(acc, zero, _CMP_GT_OQ)) & lanes;
        const float lo = t.act == TinyAct::Sigmoid ? 0.01f : -0.99f;
        const __m256 sat = _mm256_or_ps(_mm256_cmp_ps(a[l], _mm256_set1_ps(lo), _CMP_LT_OQ),
                                        _mm256_cmp_ps(a[l], _mm256_set1_ps(0.99f), _CMP_GT_OQ));
        stats->saturated[l] = unsigned(__builtin_popcount(unsigned(_mm256_movemask_ps(sat) & lanes)));
        in = a[l];
    }
    // Mean squared error over the K outputs (losses.hpp): the sum in double in order,
    // the gradient (2 d) / K; then through the output activation.
    const TinyLayerF32& top = layers[L - 1];
    const int K = top.out;
    const __m256 d = _mm256_sub_ps(a[L - 1], load_row(y, K));
    double sum = 0;
    for (int i = 0; i < K; ++i) {
        const double di = lane0(lane(d, i));
        sum += di * di;
    }
    const float inv_n = 1.0f / float(K);
    __m256 delta = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(2.0f), d), _mm256_set1_ps(inv_n));
    delta = tiny_derivative(top.act, top.alpha, delta, z[L - 1], a[L - 1]);
    // Backward, from the top: dW = 0 + inputᵀ·δ, db = 0 + δ (onto zeroed gradients),
    // then δ of the layer below = (0 + δ·Wᵀ) ⊙ f'(z below).
    for (int l = L - 1; l >= 0; --l) {
        const TinyLayerF32& t = layers[l];
        const __m256 input = l > 0 ? a[l - 1] : load_row(x, t.in);
        double sq = outer_product(t.dW, input, delta, t.in, t.out);
        if (t.db) sq += outer_product(t.db, _mm256_set1_ps(1.0f), delta, 1, t.out);
        stats->grad_norm[l] = _mm_cvtsd_f64(_mm_sqrt_pd(_mm_set1_pd(sq)));  // correctly rounded, as std::sqrt
        if (l == 0) break;
        // dx_k = 0 + dot(δ, W_k) for the in lanes k at once, from W's columns (its rows
        // transposed in registers: they depend on nothing of this step, so the transpose
        // runs beside the chain of δ; a gather would cost more). One output: the outer
        // product 0 + δ_0 W, W's one column.
        const __m256i mi = first_lanes(t.in);
        __m256 r;
        if (t.out == 1) {
            r = _mm256_add_ps(zero, _mm256_mul_ps(lane(delta, 0), load_row(t.W, t.in)));
        } else {
            __m256 col[8];
            columns(col, t.W, t.in, t.out);
            auto column = [&](int j) { return _mm256_mul_ps(lane(delta, j), col[j]); };
            if (t.out == 8) {  // eight partial sums of one product each, combined pairwise, + the empty tail
                __m256 p[8];
                for (int j = 0; j < 8; ++j) p[j] = _mm256_add_ps(zero, column(j));
                r = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(p[0], p[4]), _mm256_add_ps(p[1], p[5])),
                                  _mm256_add_ps(_mm256_add_ps(p[2], p[6]), _mm256_add_ps(p[3], p[7])));
            } else {  // the tail in order from +0 (the partial sums stay zero)
                r = zero;
                for (int j = 0; j < t.out; ++j) r = _mm256_add_ps(r, column(j));
            }
            // The reference then adds the empty tail or the zero partial sums, and the
            // result onto the zeroed dx: each + 0 of a sum from +0 (never -0) changes nothing.
        }
        const TinyLayerF32& below = layers[l - 1];
        delta = _mm256_and_ps(tiny_derivative(below.act, below.alpha, r, z[l - 1], a[l - 1]), _mm256_castsi256_ps(mi));
    }
    const double loss = sum / double(K);
    // The update, once every norm is known: p - lr·g chunk by chunk over the blocks
    // just written (their lanes past the block are 0 - lr·0 = 0). With no momentum
    // and no decay this is the table's sgd to the bit (g + 0·p and p - lr·g agree on
    // every sign of zero).
    stats->updated = false;
    if (!update) return loss;
    bool ok = __builtin_isfinite(loss);
    for (int l = 0; l < L; ++l) ok &= stats->grad_norm[l] <= update->grad_limit;  // false for NaN and inf
    if (!ok) return loss;
    const __m256 lr = _mm256_set1_ps(update->lr);
    auto sgd = [&](float* p, const float* g, int n) {
        for (int c = 0; c < n; c += 8)
            _mm256_storeu_ps(p + c, _mm256_sub_ps(_mm256_loadu_ps(p + c), _mm256_mul_ps(lr, _mm256_loadu_ps(g + c))));
    };
    for (int l = 0; l < L; ++l) {
        const TinyLayerF32& t = layers[l];
        sgd(t.W, t.dW, t.in * t.out);
        if (t.b) sgd(t.b, t.db, t.out);
    }
    stats->updated = true;
    return loss;
}

}  // namespace bp::ukr
