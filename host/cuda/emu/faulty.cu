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

// Each thread writes its word of shared memory, then reads its neighbour's:
// without the barrier between (`sync` 0), the read races the neighbour's write.
extern "C" __global__ void faulty_missing_sync(float* __restrict__ out, int sync) {
    LFLOW_SHARED(float, words, 128);
    const unsigned t = threadIdx.x, n = blockDim.x;
    words[t] = (float)t;
    if (sync) __syncthreads();
    out[t] = words[(t + 1) % n];
}

// Each warp's lane 0 posts a value in shared memory and thread 0 reads
// warp 1's, ordered only by a shuffle (`sync` 0): a shuffle synchronises its
// own warp, not the block.
extern "C" __global__ void faulty_shuffle_as_barrier(float* __restrict__ out, int sync) {
    LFLOW_SHARED(float, posted, 32);
    const unsigned t = threadIdx.x, lane = t % 32, warp = t / 32;
    if (lane == 0) posted[warp] = (float)(warp + 1);
    const float mine = __shfl_sync(0xffffffffu, (float)t, 0);
    if (sync) __syncthreads();
    if (t == 0) out[0] = posted[1] + mine;
}

// Threads past the first warp return, the rest wait at a barrier (`sync` 1)
// or a shuffle (`sync` 2) that the returned ones never reach: a hang or
// undefined behaviour on a GPU.
extern "C" __global__ void faulty_divergent_barrier(float* __restrict__ out, int sync) {
    const unsigned t = threadIdx.x;
    if (t >= (sync == 2 ? 16u : 32u)) return;
    if (sync == 1) __syncthreads();
    if (sync == 2) out[t] = __shfl_sync(0xffffffffu, (float)t, 0);
    out[t] = 1.0f;
}
