// Packing (see pack.hpp and the contract in gemm.hpp). The panel width is a
// template parameter for the widths the kernel tables use, so the inner copy
// is fully unrolled; the two common source orders (unit column stride, unit
// row stride) get their own loops so the compiler sees contiguous accesses.
#include "kernels/pack.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace bp {
namespace {

// One panel: W lines (rows of A' or columns of B') of length kc; line l,
// element p is src[l*ls + p*ps]; lines >= lines_valid are zero.
template <typename T, int W>
inline void pack_panel(std::ptrdiff_t kc, const T* src, std::ptrdiff_t ls, std::ptrdiff_t ps,
                       std::ptrdiff_t lines_valid, T* __restrict dst) {
    if (lines_valid == W) {
        if (ls == 1) {  // the W values of a step are contiguous in the source
            for (std::ptrdiff_t p = 0; p < kc; ++p) {
                const T* s = src + p * ps;
#pragma GCC unroll 32
                for (int l = 0; l < W; ++l) dst[p * W + l] = s[l];
            }
        } else if (ps == 1) {
            // Each line is contiguous: a transpose. Lines four at a time, each
            // read front to back: few concurrent read streams (W of them, a
            // power-of-two stride apart, would alias in L1), and the writes of
            // a step land in one cache line of the panel.
            int l = 0;
            for (; l + 4 <= W; l += 4) {
                const T* s0 = src + l * ls;
                const T* s1 = s0 + ls;
                const T* s2 = s1 + ls;
                const T* s3 = s2 + ls;
                for (std::ptrdiff_t p = 0; p < kc; ++p) {
                    T* d = dst + p * W + l;
                    d[0] = s0[p];
                    d[1] = s1[p];
                    d[2] = s2[p];
                    d[3] = s3[p];
                }
            }
            for (; l < W; ++l)
                for (std::ptrdiff_t p = 0; p < kc; ++p) dst[p * W + l] = src[l * ls + p];
        } else {
            for (std::ptrdiff_t p = 0; p < kc; ++p)
                for (int l = 0; l < W; ++l) dst[p * W + l] = src[l * ls + p * ps];
        }
        return;
    }
    for (std::ptrdiff_t p = 0; p < kc; ++p)
        for (int l = 0; l < W; ++l) dst[p * W + l] = l < lines_valid ? src[l * ls + p * ps] : T(0);
}

template <typename T, int W>
void pack_panels(std::ptrdiff_t lines, std::ptrdiff_t kc, const T* src, std::ptrdiff_t ls,
                 std::ptrdiff_t ps, T* dst) {
    for (std::ptrdiff_t l0 = 0; l0 < lines; l0 += W) {
        pack_panel<T, W>(kc, src + l0 * ls, ls, ps, std::min<std::ptrdiff_t>(W, lines - l0), dst);
        dst += W * kc;
    }
}

template <typename T>
void pack_any(std::ptrdiff_t lines, std::ptrdiff_t kc, const T* src, std::ptrdiff_t ls,
              std::ptrdiff_t ps, int w, T* dst) {
    switch (w) {
        case 4: return pack_panels<T, 4>(lines, kc, src, ls, ps, dst);
        case 6: return pack_panels<T, 6>(lines, kc, src, ls, ps, dst);
        case 8: return pack_panels<T, 8>(lines, kc, src, ls, ps, dst);
        case 12: return pack_panels<T, 12>(lines, kc, src, ls, ps, dst);
        case 16: return pack_panels<T, 16>(lines, kc, src, ls, ps, dst);
        case 32: return pack_panels<T, 32>(lines, kc, src, ls, ps, dst);
        default: throw std::logic_error("pack: no panel width " + std::to_string(w));
    }
}

}  // namespace

template <typename T>
void pack_a(std::ptrdiff_t mc, std::ptrdiff_t kc, const T* A, std::ptrdiff_t rsa,
            std::ptrdiff_t csa, int mr, T* dst) {
    pack_any(mc, kc, A, rsa, csa, mr, dst);
}

template <typename T>
void pack_b(std::ptrdiff_t kc, std::ptrdiff_t nc, const T* B, std::ptrdiff_t rsb,
            std::ptrdiff_t csb, int nr, T* dst) {
    pack_any(nc, kc, B, csb, rsb, nr, dst);
}

template void pack_a<float>(std::ptrdiff_t, std::ptrdiff_t, const float*, std::ptrdiff_t,
                            std::ptrdiff_t, int, float*);
template void pack_a<double>(std::ptrdiff_t, std::ptrdiff_t, const double*, std::ptrdiff_t,
                             std::ptrdiff_t, int, double*);
template void pack_b<float>(std::ptrdiff_t, std::ptrdiff_t, const float*, std::ptrdiff_t,
                            std::ptrdiff_t, int, float*);
template void pack_b<double>(std::ptrdiff_t, std::ptrdiff_t, const double*, std::ptrdiff_t,
                             std::ptrdiff_t, int, double*);

}  // namespace bp
