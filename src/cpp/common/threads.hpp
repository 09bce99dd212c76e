// The core's thread count. Work is split over fixed output rows, each of which
// one thread computes alone in a fixed order, so results are bitwise the same
// for any thread count.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstddef>

#if defined(__linux__)
#include <sched.h>
#endif
#include <thread>
#include <utility>
#if defined(_OPENMP)
#include <omp.h>
#endif

namespace bp {

// The CPUs this process may run on (its affinity mask), at least 1.
inline int available_cpus() {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    unsigned n = std::thread::hardware_concurrency();
    return n ? static_cast<int>(n) : 1;
}

inline std::atomic<int>& thread_count_storage() {
    static std::atomic<int> n{available_cpus()};
    return n;
}
// The thread count set (set_num_threads; default: the CPUs this process may run on).
inline int requested_threads() { return thread_count_storage().load(std::memory_order_relaxed); }
// The threads a parallel region takes: the count set, but at most the CPUs this process
// could run on when first asked. More would only oversubscribe them: each step's static
// split would wait on threads that share a core (mnist-like, 4 threads on 2 CPUs: 48 k
// samples/s against 75-88 k with 2).
inline int num_threads() {
    static const int cpus = available_cpus();
    const int n = requested_threads();
    return n < cpus ? n : cpus;
}
inline void set_num_threads(int n) { thread_count_storage().store(n < 1 ? 1 : n); }

// Threads worth using for `flops` multiply-adds: small layers stay on one.
inline int threads_for(double flops) {
    // A thread must get enough work to pay for waking it (tens of microseconds on a
    // busy machine): about a million multiply-adds.
    constexpr double kMinFlopsPerThread = 1024.0 * 1024.0;
    int n = num_threads();
    if (flops < 2 * kMinFlopsPerThread) return 1;
    int useful = static_cast<int>(flops / kMinFlopsPerThread);
    return useful < n ? useful : n;
}

// Calls f(k, offset, length) for the k-th of the fixed chunks of `chunk` values
// that cover [0, n), split statically over `threads` (no parallel region for one):
// the chunks do not depend on the thread count, so neither does a result built
// from them in chunk order.
template <typename F>
inline void for_each_chunk(std::size_t n, std::size_t chunk, int threads, F&& f) {
    const std::ptrdiff_t chunks = std::ptrdiff_t((n + chunk - 1) / chunk);
    if (threads <= 1 || chunks <= 1) {  // no region at all: even an inactive one would keep the
        // products f runs from using the threads (a region nested in it stays on one thread)
        for (std::ptrdiff_t k = 0; k < chunks; ++k) {
            const std::size_t off = std::size_t(k) * chunk;
            f(std::size_t(k), off, std::min(chunk, n - off));
        }
        return;
    }
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::ptrdiff_t k = 0; k < chunks; ++k) {
        const std::size_t off = std::size_t(k) * chunk;
        f(std::size_t(k), off, std::min(chunk, n - off));
    }
}

// Inside an OpenMP parallel region: {this thread's number, the team's size}
// ({0, 1} in a build without OpenMP).
inline std::pair<int, int> team_position() {
#if defined(_OPENMP)
    return {omp_get_thread_num(), omp_get_num_threads()};
#else
    return {0, 1};
#endif
}

}  // namespace bp
