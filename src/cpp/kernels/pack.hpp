// Packing of GEMM operands into micro-panels (layout: see gemm.hpp).
// Transposes are absorbed here: A' and B' are strided views, and a swapped
// pair of strides is just another source order for the same copy.
#pragma once
#include <cstddef>

namespace bp {

// A'[mc,kc] (element (i,p) at A[i*rsa + p*csa]) into ceil(mc/mr) panels of
// mr×kc: dst[r*mr*kc + p*mr + i] = A'(r*mr + i, p), zero past row mc.
template <typename T>
void pack_a(std::ptrdiff_t mc, std::ptrdiff_t kc, const T* A, std::ptrdiff_t rsa,
            std::ptrdiff_t csa, int mr, T* dst);

// B'[kc,nc] (element (p,j) at B[p*rsb + j*csb]) into ceil(nc/nr) panels of
// kc×nr: dst[s*nr*kc + p*nr + j] = B'(p, s*nr + j), zero past column nc.
template <typename T>
void pack_b(std::ptrdiff_t kc, std::ptrdiff_t nc, const T* B, std::ptrdiff_t rsb,
            std::ptrdiff_t csb, int nr, T* dst);

}  // namespace bp
