// Deliberately broken kernels, compiled into the emulator only (never for a
// GPU): each makes a mistake the hardware punishes, and a test checks that
// the emulator punishes it too (host/tests/cuda_emulator.rs).

// Block b reads what block b - 1 wrote: right only if blocks run in order,
// one after another, which no GPU promises.
extern "C" __global__ void faulty_block_chain(int* __restrict__ out) {
    if (threadIdx.x != 0) return;
    const int b = blockIdx.x;
    out[b] = b == 0 ? 1 : out[b - 1] + 1;
}

// A "block-wide broadcast" of thread 0's value through a shuffle: a shuffle
// reads lanes of its own warp only, so warps past the first get their own
// lane 0's value, not thread 0's.
extern "C" __global__ void faulty_block_broadcast(int* __restrict__ out) {
    const int v = __shfl_sync(0xffffffffu, (int)threadIdx.x * 10 + 7, 0);
    out[threadIdx.x] = v;
}

// Writes one element past the end of `out [n]` (an off-by-one bound).
extern "C" __global__ void faulty_out_of_bounds(float* __restrict__ out, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) out[i] = 1.0f;
}
