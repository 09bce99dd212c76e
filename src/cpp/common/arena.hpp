// Aligned memory. An Arena is one 64-byte-aligned allocation carved into named
// views by a size table (llm.c style): every W and b of a network lives in one
// parameter arena, every dW and db in a gradient arena with the same layout,
// the optimiser's state in a third. The optimiser then updates one flat vector
// and a distributed all-reduce is one call.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

#include "common/threads.hpp"

namespace bp {

inline constexpr std::size_t kAlign = 64;  // bytes: a cache line, an AVX-512 register

// a * b, or std::bad_alloc (MemoryError in Python) when the product overflows
// size_t: an absurd size (e.g. Dense(2**62)) must fail, not wrap to a tiny buffer.
inline std::size_t checked_mul(std::size_t a, std::size_t b) {
    if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a) throw std::bad_array_new_length();
    return a * b;
}

// Rounds a count of T up so that the next view starts on a 64-byte boundary.
template <typename T>
constexpr std::size_t padded(std::size_t n) {
    constexpr std::size_t per_line = kAlign / sizeof(T);
    return (n + per_line - 1) / per_line * per_line;
}

// A zero-initialised, 64-byte-aligned, owning buffer of T (move-only).
template <typename T>
class AlignedBuffer {
public:
    AlignedBuffer() = default;
    explicit AlignedBuffer(std::size_t n) { resize(n); }
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    AlignedBuffer(AlignedBuffer&& o) noexcept : raw_(o.raw_), data_(o.data_), size_(o.size_) {
        o.raw_ = nullptr;
        o.data_ = nullptr;
        o.size_ = 0;
    }
    AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
        if (this != &o) {
            release();
            raw_ = o.raw_;
            data_ = o.data_;
            size_ = o.size_;
            o.raw_ = nullptr;
            o.data_ = nullptr;
            o.size_ = 0;
        }
        return *this;
    }
    ~AlignedBuffer() { release(); }

    // Reallocates when n differs from the current size; the contents become zero.
    // Zeroing uses calloc, which for large sizes maps fresh zero pages without
    // touching them: memory that is never written costs no resident memory.
    void resize(std::size_t n) {
        if (n == size_) return;
        release();
        if (n == 0) return;
        // More bytes than the address space (or PTRDIFF_MAX) can never be allocated; also
        // keeps n * sizeof(T) below from wrapping around.
        if (n > (std::size_t(PTRDIFF_MAX) - kAlign) / sizeof(T)) throw std::bad_array_new_length();
        const std::size_t bytes = n * sizeof(T) + kAlign;  // room to align the start
        raw_ = std::calloc(bytes, 1);
        if (!raw_) throw std::bad_alloc();
        const auto addr = reinterpret_cast<std::uintptr_t>(raw_);
        data_ = reinterpret_cast<T*>((addr + kAlign - 1) / kAlign * kAlign);
        size_ = n;
    }
    // Zeroes the buffer; a large one (a wide network's gradients) in fixed chunks
    // over the core's threads, since one core alone does not saturate memory.
    void zero() {
        constexpr std::size_t kChunk = std::size_t(1) << 16;
        const int threads = threads_for(double(size_));
        if (threads <= 1 || size_ < 2 * kChunk) {
            if (size_) std::memset(data_, 0, size_ * sizeof(T));
            return;
        }
        for_each_chunk(size_, kChunk, threads,
                       [this](std::size_t, std::size_t off, std::size_t len) { std::memset(data_ + off, 0, len * sizeof(T)); });
    }
    T* data() { return data_; }
    const T* data() const { return data_; }
    std::size_t size() const { return size_; }

private:
    void release() {
        std::free(raw_);
        raw_ = nullptr;
        data_ = nullptr;
        size_ = 0;
    }
    void* raw_ = nullptr;  // what malloc/calloc returned; data_ is it rounded up to kAlign
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

// Size table for an arena: add() returns the offset of a new view; every view
// starts 64-byte aligned.
template <typename T>
class ArenaLayout {
public:
    std::size_t add(std::size_t n) {
        constexpr std::size_t per_line = kAlign / sizeof(T);
        if (n > std::numeric_limits<std::size_t>::max() - total_ - per_line) throw std::bad_array_new_length();
        std::size_t offset = total_;
        total_ += padded<T>(n);
        return offset;
    }
    // A rows × cols view, with an overflow check on the product.
    std::size_t add(std::size_t rows, std::size_t cols) { return add(checked_mul(rows, cols)); }
    std::size_t total() const { return total_; }

private:
    std::size_t total_ = 0;
};

}  // namespace bp
