// AVX2 + FMA elementwise float32 activations (ukernels.hpp: UnaryFn): tanh8 and
// sigmoid8 of avx2.hpp over whole arrays.
#include <cstddef>

#include "kernels/microkernels/avx2.hpp"

namespace bp::ukr {
namespace {

// a[i] = f8(z[i]) over n values; the last 1..7 by a masked load and store (the
// other lanes read as 0 and are not written), so every value gets the same
// arithmetic and a short array costs one vector pass.
template <__m256 (*f8)(__m256)>
void elementwise8(float* a, const float* z, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(a + i, f8(_mm256_loadu_ps(z + i)));
    if (i < n) {
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n - i)), lane);
        _mm256_maskstore_ps(a + i, mask, f8(_mm256_maskload_ps(z + i, mask)));
    }
}

}  // namespace

void avx2_tanh_f32(float* a, const float* z, std::size_t n) { elementwise8<tanh8>(a, z, n); }
void avx2_sigmoid_f32(float* a, const float* z, std::size_t n) { elementwise8<sigmoid8>(a, z, n); }

}  // namespace bp::ukr
