// The one random number generator of pybackprop: PCG32 (XSH-RR), with our own
// uniform, normal and bounded draws, so that a seed gives the same numbers on
// every platform and compiler. docs/internals.md ("RNG") is the specification;
// pybackprop/reference/rng.py is its pure-Python twin.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace bp {

// What a generator is used for; it selects an independent PCG stream.
enum class RngPurpose : uint64_t { Init = 1, Shuffle = 2, Dropout = 3, Noise = 4 };

// stream(purpose, counter, index) = purpose << 56 | counter << 16 | index
inline uint64_t rng_stream(RngPurpose purpose, uint64_t counter, uint64_t index) {
    return (static_cast<uint64_t>(purpose) << 56) | (counter << 16) | (index & 0xFFFFu);
}

class Pcg32 {
public:
    Pcg32(uint64_t seed, uint64_t stream) : state_(0), inc_((stream << 1u) | 1u) {
        next();
        state_ += seed;
        next();
    }

    uint32_t next() {
        uint64_t old = state_;
        state_ = old * kMult + inc_;
        return output(old);
    }

    // The next n outputs of next(), the same numbers in the same order, computed on
    // four interleaved states that each jump four steps at a time
    // (s_{i+4} = M⁴ s_i + (1 + M + M² + M³) inc, mod 2^64), so that four 64-bit
    // multiplications overlap instead of forming one dependency chain.
    void fill(uint32_t* out, std::size_t n) {
        std::size_t i = 0;
        if (n >= 8) {
            constexpr uint64_t m2 = kMult * kMult, m4 = m2 * m2;
            const uint64_t c4 = inc_ * (1 + kMult + m2 + m2 * kMult);
            uint64_t s[4] = {state_, 0, 0, 0};
            for (int j = 1; j < 4; ++j) s[j] = s[j - 1] * kMult + inc_;
            for (; i + 4 <= n; i += 4)
                for (int j = 0; j < 4; ++j) {
                    out[i + j] = output(s[j]);
                    s[j] = s[j] * m4 + c4;
                }
            state_ = s[0];  // the state of draw i
        }
        for (; i < n; ++i) out[i] = next();
    }

    // Jumps k outputs ahead in O(log k): afterwards next() returns what the k+1-th
    // next() would have (Brown's LCG jump-ahead, as O'Neill's pcg32_advance_r:
    // s_k = M^k s + (1 + M + ... + M^(k-1)) inc, mod 2^64, by repeated squaring).
    void advance(uint64_t k) {
        uint64_t acc_mult = 1, acc_plus = 0, cur_mult = kMult, cur_plus = inc_;
        for (; k > 0; k >>= 1) {
            if (k & 1u) {
                acc_mult *= cur_mult;
                acc_plus = acc_plus * cur_mult + cur_plus;
            }
            cur_plus = (cur_mult + 1) * cur_plus;
            cur_mult *= cur_mult;
        }
        state_ = acc_mult * state_ + acc_plus;
    }

    // Uniform double in [0, 1) with 53 random bits.
    double uniform01() {
        uint64_t a = next() >> 5, b = next() >> 6;
        return (static_cast<double>(a) * 67108864.0 + static_cast<double>(b)) *
               (1.0 / 9007199254740992.0);
    }

    // Standard normal by Box-Muller, one value per call.
    double normal() {
        double u1 = 1.0 - uniform01();  // (0, 1]: log(u1) is finite
        double u2 = uniform01();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }

    // Uniform integer in [0, n), 0 < n < 2^32, without modulo bias.
    uint32_t below(uint32_t n) {
        uint32_t threshold = (0u - n) % n;
        for (;;) {
            uint32_t r = next();
            if (r >= threshold) return r % n;
        }
    }

private:
    static constexpr uint64_t kMult = 6364136223846793005ULL;
    // PCG's XSH RR output of a state.
    static uint32_t output(uint64_t old) {
        uint32_t xorshifted = static_cast<uint32_t>(((old >> 18u) ^ old) >> 27u);
        uint32_t rot = static_cast<uint32_t>(old >> 59u);
        return (xorshifted >> rot) | (xorshifted << ((-rot) & 31u));
    }

    uint64_t state_, inc_;
};

// The sample order of epoch `epoch` (order holds 0..n-1 on entry): Fisher-Yates
// from the epoch's own stream, n < 2^32. Used by fit and by distributed training.
inline void shuffle_order(std::size_t* order, std::size_t n, uint64_t seed, uint64_t epoch) {
    Pcg32 rng(seed, rng_stream(RngPurpose::Shuffle, epoch, 0));
    for (std::size_t i = n - 1; i > 0; --i) {
        const std::size_t j = rng.below(uint32_t(i + 1));
        const std::size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

}  // namespace bp
