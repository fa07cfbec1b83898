// The CUDA execution model on the CPU, for tests only: the kernel sources of
// host/cuda/ compile with the host C++ compiler against this header. It is
// meant to be as strict as the hardware, so that what passes here passes on
// a GPU:
//
// - the threads of a block run as OS threads; `__syncthreads` is a barrier of
//   the block;
// - several blocks of a grid run at once, taken in a seeded random order
//   (emulator.cpp), so a kernel that depends on block order fails;
// - warp operations (`__shfl_*_sync`, `__syncwarp`) synchronise the 32 lanes
//   of one warp only, and a shuffle reads lanes of its own warp only;
// - shared memory is per block: `LFLOW_SHARED` arrays and the dynamic
//   buffer, filled with NaN bytes at each block's start (a read before a
//   write shows), and every access to it is checked for races, as
//   `compute-sanitizer --tool racecheck` does: two threads touching the same
//   4-byte word between two barriers, at least one writing, fail the launch
//   (a warp's own `__syncwarp` orders its lanes' accesses; a shuffle does
//   not). Kernels reach shared memory through `LFLOW_SMEM(T)` pointers, plain
//   `T*` on a GPU;
// - a thread that returns leaves its block's barriers: a `__syncthreads`,
//   `__syncwarp` or shuffle that other threads then reach fails the launch
//   (on a GPU it hangs or is undefined) instead of hanging the emulator.
#pragma once
#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#define LFLOW_EMU 1
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict
typedef unsigned long long u64;
typedef unsigned int u32;

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

namespace lflow_emu {
// Static shared memory of one block (`LFLOW_SHARED` arrays), bytes.
constexpr std::size_t STATIC_SMEM = 48 * 1024;

// Records that the running launch broke a rule (reported as the launch's error).
void fail(const char* what);

// What one barrier counts: the phases it has completed (the epochs that
// separate accesses for the race check), the threads waiting in the current
// phase, and the threads of the block that have returned (and dropped out).
struct Phases {
    std::atomic<uint32_t> completed{0};
    std::atomic<int> waiting{0};
    std::atomic<int> exited{0};
    const char* divergent = "";  // the failure of a phase some threads wait in after others returned
};

// A barrier's completion: counts the phase, and fails the launch when threads
// waited in it while others of the block (or warp) had returned, which on a
// GPU hangs or is undefined (what compute-sanitizer's synccheck reports).
struct Tick {
    Phases* p;
    void operator()() noexcept {
        p->completed.fetch_add(1, std::memory_order_relaxed);
        if (p->waiting.load() > 0 && p->exited.load() > 0) fail(p->divergent);
        p->waiting.store(0);
    }
};
using Barrier = std::barrier<Tick>;

struct Shadow;

// One block's shared state: its barrier, its warps' barriers, the shuffles'
// exchange slots, its shared memory and that memory's access record.
struct Block {
    Barrier* barrier;
    Barrier** warp_barriers;     // `__syncwarp`: one per warp of 32 lanes (the last may be partial)
    Barrier** shuffle_barriers;  // a shuffle's exchange: synchronises the warp, orders no shared memory
    Phases* phases;              // of `barrier`
    Phases* warp_phases;         // of each warp's barrier
    Phases* shuffle_phases;      // of each warp's shuffle barrier
    uint64_t* exchange;       // one 8-byte slot per thread, for shuffles
    unsigned char* dynamic_smem;
    std::size_t dynamic_bytes;
    unsigned char* static_smem;
    Shadow* shadow;
};
extern thread_local dim3 thread_idx, block_idx;
extern thread_local Block* block;
// Where the running thread's next `LFLOW_SHARED` array starts in its block's
// static shared memory; every thread declares the same arrays in the same
// order, so all get the same addresses. Reset at each block's start.
extern thread_local std::size_t static_cursor;
extern dim3 block_dim, grid_dim;

// The race check of an access of `bytes` bytes at `p` in shared memory;
// false (the access is then not made) when `p` lies outside it.
bool check_shared(const void* p, std::size_t bytes, bool write);

// An element of shared memory: reads and writes go through the race check.
template <typename T>
struct Ref {
    T* p;
    operator T() const { return check_shared(p, sizeof(T), false) ? *p : T(); }
    Ref& operator=(T v) {
        if (check_shared(p, sizeof(T), true)) *p = v;
        return *this;
    }
    Ref& operator=(const Ref& o) { return *this = static_cast<T>(o); }
    Ref& operator+=(T v) { return *this = static_cast<T>(*this) + v; }
    Ref& operator-=(T v) { return *this = static_cast<T>(*this) - v; }
    Ref& operator*=(T v) { return *this = static_cast<T>(*this) * v; }
    Ref& operator/=(T v) { return *this = static_cast<T>(*this) / v; }
};

// A pointer into shared memory (`LFLOW_SMEM(T)`).
template <typename T>
struct SPtr {
    T* p = nullptr;
    SPtr() = default;
    explicit SPtr(T* q) : p(q) {}
    template <typename U>
    explicit SPtr(SPtr<U> o) : p(reinterpret_cast<T*>(o.p)) {}
    Ref<T> operator[](long i) const { return Ref<T>{p + i}; }
    SPtr operator+(long k) const { return SPtr(p + k); }
};

template <typename T>
T* shared_array(std::size_t n) {
    const std::size_t at = (static_cursor + alignof(T) - 1) / alignof(T) * alignof(T);
    if (at + n * sizeof(T) > STATIC_SMEM) {
        fail("static shared memory over 48 KiB");
        static T overflow[1];
        return overflow;
    }
    static_cursor = at + n * sizeof(T);
    return reinterpret_cast<T*>(block->static_smem + at);
}
}  // namespace lflow_emu

#define threadIdx (lflow_emu::thread_idx)
#define blockIdx (lflow_emu::block_idx)
#define blockDim (lflow_emu::block_dim)
#define gridDim (lflow_emu::grid_dim)
#define LFLOW_DYN_SMEM(name) lflow_emu::SPtr<unsigned char> name(lflow_emu::block->dynamic_smem)
#define LFLOW_SHARED(T, name, n) lflow_emu::SPtr<T> name(lflow_emu::shared_array<T>(n))
#define LFLOW_SMEM(T) lflow_emu::SPtr<T>
#define LFLOW_SMEM_CAST(T, p) lflow_emu::SPtr<T>(p)

inline void __syncthreads() {
    lflow_emu::block->phases->waiting.fetch_add(1);
    lflow_emu::block->barrier->arrive_and_wait();
}

inline void __syncwarp(unsigned = 0xffffffffu) {
    const unsigned w = threadIdx.x / 32;
    lflow_emu::block->warp_phases[w].waiting.fetch_add(1);
    lflow_emu::block->warp_barriers[w]->arrive_and_wait();
}

namespace lflow_emu {
// Every lane of the warp posts `v`, then reads lane `src` of its own warp
// (its own value where `src` lies past the end of a partial last warp).
template <typename T>
T warp_exchange(T v, unsigned src) {
    static_assert(sizeof(T) <= 8, "shuffle of a scalar");
    const unsigned me = threadIdx.x;
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    block->exchange[me] = bits;
    block->shuffle_phases[me / 32].waiting.fetch_add(1);
    block->shuffle_barriers[me / 32]->arrive_and_wait();
    const unsigned partner = (me & ~31u) | (src & 31u);
    const uint64_t other = block->exchange[partner < blockDim.x ? partner : me];
    block->shuffle_phases[me / 32].waiting.fetch_add(1);
    block->shuffle_barriers[me / 32]->arrive_and_wait();
    T out;
    std::memcpy(&out, &other, sizeof(T));
    return out;
}
}  // namespace lflow_emu

template <typename T>
inline T __shfl_xor_sync(unsigned, T v, int lane_mask) {
    return lflow_emu::warp_exchange(v, (threadIdx.x & 31u) ^ (unsigned)lane_mask);
}

template <typename T>
inline T __shfl_sync(unsigned, T v, int src_lane) {
    return lflow_emu::warp_exchange(v, (unsigned)src_lane);
}

template <typename T>
inline T __shfl_down_sync(unsigned, T v, unsigned delta) {
    const unsigned lane = threadIdx.x & 31u;
    return lflow_emu::warp_exchange(v, lane + delta < 32 ? lane + delta : lane);
}

inline float __int_as_float(int bits) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

using std::min;
using std::max;
