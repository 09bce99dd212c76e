// The naive GEMM kernels: the oracle of every optimised kernel in the tests and
// the portable path for small products (see gemm.hpp for when it is taken).
// Row-major, no transposes materialised, all accumulate into C. Each output
// row is computed by one thread in a fixed order, so the result does not
// depend on the number of threads. The inner loops are contiguous so the
// compiler vectorises them with the baseline ISA (no per-ISA flags here).
#pragma once
#include <cstddef>
#include <type_traits>

#include "common/threads.hpp"

namespace bp {

// Calls row(i) for i in [0, rows): directly when one thread is enough (no
// OpenMP region, which costs more than a tiny layer's whole product), else
// split statically over `threads`.
template <typename F>
inline void for_each_row(std::ptrdiff_t rows, int threads, F&& row) {
    if (threads <= 1) {
        for (std::ptrdiff_t i = 0; i < rows; ++i) row(i);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::ptrdiff_t i = 0; i < rows; ++i) row(i);
}

// Dot product with eight independent partial sums (vectorisable without
// reassociating a single sum, and the same order on every run).
template <typename T>
inline T dot(const T* x, const T* y, std::ptrdiff_t n) {
    T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::ptrdiff_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; ++l) acc[l] += x[j + l] * y[j + l];
    T tail = 0;
    for (; j < n; ++j) tail += x[j] * y[j];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

// Calls f(std::integral_constant<std::ptrdiff_t, n>{}) and returns true when
// 2 <= n <= 8: with the width a compile-time constant, the loops over it unroll
// and a narrow row of C lives in registers. Returns false for any other n.
template <typename F>
inline bool with_narrow_width(std::ptrdiff_t n, F&& f) {
    switch (n) {
        case 2: return f(std::integral_constant<std::ptrdiff_t, 2>{}), true;
        case 3: return f(std::integral_constant<std::ptrdiff_t, 3>{}), true;
        case 4: return f(std::integral_constant<std::ptrdiff_t, 4>{}), true;
        case 5: return f(std::integral_constant<std::ptrdiff_t, 5>{}), true;
        case 6: return f(std::integral_constant<std::ptrdiff_t, 6>{}), true;
        case 7: return f(std::integral_constant<std::ptrdiff_t, 7>{}), true;
        case 8: return f(std::integral_constant<std::ptrdiff_t, 8>{}), true;
        default: return false;
    }
}

// c[N] += Σ_t a[t·sa] · B[t, :] for t < terms in increasing order (B row-major
// with N columns): a row of matmul_nn (a = a row of A, sa = 1) or of matmul_tn
// (a = a column of A, sa = K). With N a compile-time constant the row is held in
// registers over the terms (not loaded and stored for each), the additions in
// the same order.
template <typename T, std::ptrdiff_t N>
inline void narrow_row(T* c, const T* a, std::ptrdiff_t sa, const T* B, std::ptrdiff_t terms) {
    T acc[N];
    for (std::ptrdiff_t j = 0; j < N; ++j) acc[j] = c[j];
    for (std::ptrdiff_t t = 0; t < terms; ++t) {
        const T at = a[t * sa];
        const T* b = B + t * N;
        for (std::ptrdiff_t j = 0; j < N; ++j) acc[j] += at * b[j];
    }
    for (std::ptrdiff_t j = 0; j < N; ++j) c[j] = acc[j];
}

// narrow_row for any N, c updated in memory.
template <typename T>
inline void wide_row(T* c, const T* a, std::ptrdiff_t sa, const T* B, std::ptrdiff_t terms, std::ptrdiff_t N) {
    for (std::ptrdiff_t t = 0; t < terms; ++t) {
        const T at = a[t * sa];
        const T* b = B + t * N;
        for (std::ptrdiff_t j = 0; j < N; ++j) c[j] += at * b[j];
    }
}

// C[M,N] += A[M,K] · B[K,N]
template <typename T>
void matmul_nn_reference(T* C, const T* A, const T* B, std::ptrdiff_t M, std::ptrdiff_t K,
                         std::ptrdiff_t N) {
    if (N == 1) {  // GEMV: one dot per row, accumulated in registers
        for_each_row(M, threads_for(double(M) * K), [=](std::ptrdiff_t i) { C[i] += dot(A + i * K, B, K); });
        return;
    }
    const int threads = threads_for(double(M) * K * N);
    if (with_narrow_width(N, [&](auto width) {
            for_each_row(M, threads, [=](std::ptrdiff_t i) { narrow_row<T, width>(C + i * width, A + i * K, 1, B, K); });
        }))
        return;
    for_each_row(M, threads, [=](std::ptrdiff_t i) { wide_row(C + i * N, A + i * K, 1, B, K, N); });
}

// C[K,N] += A[M,K]ᵀ · B[M,N]   (sum over the batch index i in increasing order)
template <typename T>
void matmul_tn_reference(T* C, const T* A, const T* B, std::ptrdiff_t M, std::ptrdiff_t K,
                         std::ptrdiff_t N) {
    if (N == 1 && threads_for(double(M) * K * N) <= 1) {  // c[k] += Σ_i A[i,k] B[i]: over k, same order in i
        for (std::ptrdiff_t i = 0; i < M; ++i) {
            const T bi = B[i];
            const T* a = A + i * K;
            for (std::ptrdiff_t k = 0; k < K; ++k) C[k] += a[k] * bi;
        }
        return;
    }
    const int threads = threads_for(double(M) * K * N);
    if (with_narrow_width(N, [&](auto width) {
            for_each_row(K, threads, [=](std::ptrdiff_t k) { narrow_row<T, width>(C + k * width, A + k, K, B, M); });
        }))
        return;
    for_each_row(K, threads, [=](std::ptrdiff_t k) { wide_row(C + k * N, A + k, K, B, M, N); });
}

// C[M,K] += A[M,N] · B[K,N]ᵀ
template <typename T>
void matmul_nt_reference(T* C, const T* A, const T* B, std::ptrdiff_t M, std::ptrdiff_t N,
                         std::ptrdiff_t K) {
    if (N == 1) {  // outer product: c[i,k] += a[i] b[k]
        for_each_row(M, threads_for(double(M) * K), [=](std::ptrdiff_t i) {
            const T ai = A[i];
            T* c = C + i * K;
            for (std::ptrdiff_t k = 0; k < K; ++k) c[k] += ai * B[k];
        });
        return;
    }
    const int threads = threads_for(double(M) * K * N);
    auto rows = [&](auto width) {  // width: N, a compile-time constant when narrow (the dots unroll)
        for_each_row(M, threads, [=](std::ptrdiff_t i) {
            const T* a = A + i * width;
            T* c = C + i * K;
            for (std::ptrdiff_t k = 0; k < K; ++k) c[k] += dot(a, B + k * width, std::ptrdiff_t(width));
        });
    };
    if (!with_narrow_width(N, rows)) rows(N);
}

}  // namespace bp
