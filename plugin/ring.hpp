// A preallocated single-producer single-consumer ring of 32-bit words, lock-free.
//
// The audio thread is the only producer: write() copies or refuses, it never waits, locks or
// allocates. The sender thread is the only consumer. Positions are 64-bit counters that never
// wrap in practice (2^64 words); the index into the buffer is the counter modulo the capacity,
// a power of two.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <vector>

namespace idmring {

class Ring {
public:
    // capacityWords is rounded up to a power of two; the memory is allocated and touched here,
    // so the audio thread never takes a page fault on first use.
    explicit Ring(size_t capacityWords) {
        size_t cap = 1;
        while (cap < capacityWords) cap <<= 1;
        buf_.assign(cap, 0u);
        mask_ = cap - 1;
    }

    size_t capacity() const { return mask_ + 1; }

    // Producer: free words right now.
    size_t writable() const {
        return capacity() - size_t(head_.load(std::memory_order_relaxed) - tail_.load(std::memory_order_acquire));
    }

    // Producer: append n1 words from a, then n2 words from b, all or nothing.
    bool write2(const uint32_t* a, size_t n1, const uint32_t* b, size_t n2) {
        const uint64_t head = head_.load(std::memory_order_relaxed);
        const uint64_t tail = tail_.load(std::memory_order_acquire);
        if (capacity() - size_t(head - tail) < n1 + n2) return false;
        copyIn(head, a, n1);
        copyIn(head + n1, b, n2);
        head_.store(head + n1 + n2, std::memory_order_release);
        return true;
    }

    // Producer, in pieces: reserve() checks room, put() writes at an offset past the head, and
    // commit() publishes. Used to interleave channels straight into the ring.
    uint32_t* slot(uint64_t pos) { return &buf_[size_t(pos) & mask_]; }
    uint64_t head() const { return head_.load(std::memory_order_relaxed); }
    bool room(size_t n) const { return writable() >= n; }
    void commit(size_t n) { head_.store(head_.load(std::memory_order_relaxed) + n, std::memory_order_release); }

    // Consumer: words ready to read.
    size_t readable() const {
        return size_t(head_.load(std::memory_order_acquire) - tail_.load(std::memory_order_relaxed));
    }

    // Consumer: copy n words at offset `skip` from the read position (does not consume).
    void peek(uint32_t* out, size_t n, size_t skip = 0) const {
        const uint64_t tail = tail_.load(std::memory_order_relaxed) + skip;
        const size_t at = size_t(tail) & mask_;
        const size_t first = n < capacity() - at ? n : capacity() - at;
        std::memcpy(out, &buf_[at], first * 4);
        if (n > first) std::memcpy(out + first, &buf_[0], (n - first) * 4);
    }

    // Consumer: release n words.
    void consume(size_t n) { tail_.store(tail_.load(std::memory_order_relaxed) + n, std::memory_order_release); }

private:
    void copyIn(uint64_t pos, const uint32_t* src, size_t n) {
        if (n == 0) return;
        const size_t at = size_t(pos) & mask_;
        const size_t first = n < capacity() - at ? n : capacity() - at;
        std::memcpy(&buf_[at], src, first * 4);
        if (n > first) std::memcpy(&buf_[0], src + first, (n - first) * 4);
    }

    std::vector<uint32_t> buf_;
    size_t mask_ = 0;
    // producer and consumer counters on separate cache lines (padding, not alignas, so the
    // owning object needs no over-aligned new)
    char pad0_[64] = {};
    std::atomic<uint64_t> head_{0};
    char pad1_[64] = {};
    std::atomic<uint64_t> tail_{0};
    char pad2_[64] = {};
};

}  // namespace idmring
