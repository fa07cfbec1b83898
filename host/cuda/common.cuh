// Helpers shared by LangevinFlow's CUDA kernels: block reductions and the
// per-trial xoshiro128++ streams of lflow_core::Seeded (dropout masks).
//
// Every kernel is `extern "C"` so NVRTC and the CPU emulation find it by name.
// Reductions are called by every thread of a block (no divergent callers),
// which the emulation (host/cuda/emu/shim.h) relies on.
#pragma once

#ifndef LFLOW_EMU
#define LFLOW_DYN_SMEM(name) extern __shared__ __align__(16) unsigned char name[]
// A block's array of `n` T in static shared memory (the emulator gives each block its own).
#define LFLOW_SHARED(T, name, n) __shared__ T name[n]
// A pointer into shared memory, and a cast of one (the emulator checks every access for races).
#define LFLOW_SMEM(T) T*
#define LFLOW_SMEM_CAST(T, p) ((T*)(p))
typedef unsigned long long u64;
typedef unsigned int u32;
#endif

#define LFLOW_WARP 32

// The numbers that change from one training step to the next, read from
// device memory (written by the host before each step) so that a step
// captured once as a CUDA graph replays with this step's values. The layout
// is `StepScalars` in host/src/train/cuda/scalars.rs: twelve 4-byte fields.
struct StepScalars {
    float nll_scale, kl_scale;
    float beta1, one_minus_beta1, beta2, one_minus_beta2, eps, step_size, bc2_sqrt, weight_decay;
    int batch_start, reserved;
};
static_assert(sizeof(StepScalars) == 48, "StepScalars: the host's layout");

// Sum of `v` over the block; every thread gets the total. `scratch` holds one
// value per warp (32 values at most: blocks of up to 1024 threads).
template <typename T>
__device__ __forceinline__ T block_sum(T v, LFLOW_SMEM(T) scratch) {
    for (int o = LFLOW_WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int warp = threadIdx.x / LFLOW_WARP, lane = threadIdx.x % LFLOW_WARP;
    const int warps = (blockDim.x + LFLOW_WARP - 1) / LFLOW_WARP;
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    T total = 0;
    for (int w = 0; w < warps; ++w) total += scratch[w];
    __syncthreads();
    return total;
}

// splitmix64 then xoshiro128++, exactly as lflow_core::Seeded.
struct Xoshiro {
    u32 s[4];
};

__device__ __forceinline__ u64 splitmix64(u64* x) {
    *x += 0x9E3779B97F4A7C15ull;
    u64 z = *x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

__device__ __forceinline__ Xoshiro xoshiro_new(u64 seed) {
    u64 sm = seed;
    const u64 a = splitmix64(&sm), b = splitmix64(&sm);
    Xoshiro r;
    r.s[0] = (u32)a;
    r.s[1] = (u32)(a >> 32);
    r.s[2] = (u32)b;
    r.s[3] = (u32)(b >> 32);
    if ((r.s[0] | r.s[1] | r.s[2] | r.s[3]) == 0) r.s[0] = 1;
    return r;
}

__device__ __forceinline__ u32 rotl32(u32 x, int k) { return (x << k) | (x >> (32 - k)); }

__device__ __forceinline__ u32 xoshiro_next(Xoshiro* r) {
    u32* s = r->s;
    const u32 result = rotl32(s[0] + s[3], 7) + s[0];
    const u32 t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl32(s[3], 11);
    return result;
}
