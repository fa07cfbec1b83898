// The CUDA execution model on the CPU, for tests only: the kernel sources of
// host/cuda/ compile with the host C++ compiler against this header. The
// threads of a block run as OS threads, `__syncthreads` is a barrier, warp
// shuffles exchange through a per-block buffer between two barriers (so every
// thread of the block must call them, as the kernels do), `__shared__`
// variables are statics (blocks run one after another), and dynamic shared
// memory is one buffer per launch.
#pragma once
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>

#define LFLOW_EMU 1
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__ __restrict
typedef unsigned long long u64;
typedef unsigned int u32;

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

namespace lflow_emu {
// The running thread's coordinates and its block's shared state.
struct Block {
    std::barrier<>* barrier;
    uint64_t* exchange;  // one 8-byte slot per thread, for shuffles
    unsigned char* dynamic_smem;
};
extern thread_local dim3 thread_idx, block_idx;
extern thread_local Block* block;
extern dim3 block_dim, grid_dim;
}  // namespace lflow_emu

#define threadIdx (lflow_emu::thread_idx)
#define blockIdx (lflow_emu::block_idx)
#define blockDim (lflow_emu::block_dim)
#define gridDim (lflow_emu::grid_dim)
#define LFLOW_DYN_SMEM(name) unsigned char* name = lflow_emu::block->dynamic_smem

inline void __syncthreads() { lflow_emu::block->barrier->arrive_and_wait(); }

template <typename T>
inline T __shfl_xor_sync(unsigned, T v, int lane_mask) {
    static_assert(sizeof(T) <= 8, "shuffle of a scalar");
    const unsigned me = threadIdx.x;
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    lflow_emu::block->exchange[me] = bits;
    __syncthreads();
    const unsigned warp_base = me & ~31u, partner = warp_base | ((me & 31u) ^ (unsigned)lane_mask);
    // Lanes past the end of a partial last warp read their own value.
    const uint64_t other = lflow_emu::block->exchange[partner < blockDim.x ? partner : me];
    __syncthreads();
    T out;
    std::memcpy(&out, &other, sizeof(T));
    return out;
}

inline float __int_as_float(int bits) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

using std::min;
using std::max;
