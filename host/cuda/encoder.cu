// GRU encoder (MODEL.md section 1; gate order r, z (`u`), n): input gather,
// dropout masks, and the recurrence forward and backward, each one persistent
// kernel over all bins. The input projections (all bins at once) and the
// weight gradients go through cuBLAS. Layouts are time-major: `[TT, Bc, X]`.
#include "common.cuh"

// xg[t, b, :] = input[b, s(t), :], where s(t) is the bin the encoder reads at
// bin t: t - previous_bin, clamped to [0, t_obs - 1].
extern "C" __global__ void gather_input(const float* __restrict__ input, float* __restrict__ xg, int bc, int t_obs,
                                        int tt, int n_in, int previous_bin) {
    const long total = (long)tt * bc * n_in;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total; i += (long)gridDim.x * blockDim.x) {
        const int k = i % n_in;
        const int b = (i / n_in) % bc;
        const int t = i / ((long)n_in * bc);
        int s = previous_bin ? t - 1 : t;
        if (s < 0) s = 0;
        if (s > t_obs - 1) s = t_obs - 1;
        xg[i] = input[((long)b * t_obs + s) * n_in + k];
    }
}

// Inverted-dropout factors from trial b's stream `seed[b] ^ which * golden`:
// draw i of the stream is element (i / width, i % width) of the trial's
// [bins, width] block, stored time-major ((t * bc + b) * width + k) or
// trial-major (b * bins * width + i). One thread per trial: the stream is sequential.
extern "C" __global__ void dropout_masks(const u64* __restrict__ seeds, u64 which, float rate, float* __restrict__ mask,
                                         int bc, int bins, int width, int time_major) {
    const int b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= bc) return;
    const long per = (long)bins * width;
    if (!(rate > 0.0f)) {
        for (long i = 0; i < per; ++i) {
            const long t = i / width, k = i % width;
            mask[time_major ? (t * bc + b) * width + k : b * per + i] = 1.0f;
        }
        return;
    }
    Xoshiro rng = xoshiro_new(seeds[b] ^ (which * 0x9E3779B97F4A7C15ull));
    const float keep = 1.0f / (1.0f - rate);
    for (long i = 0; i < per; ++i) {
        const float u = (float)(xoshiro_next(&rng) >> 8) * (1.0f / 16777216.0f);
        const long t = i / width, k = i % width;
        mask[time_major ? (t * bc + b) * width + k : b * per + i] = u < rate ? 0.0f : keep;
    }
}

__device__ __forceinline__ float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

// Trials per block of the persistent GRU kernels: a row (forward) or column
// (backward) of W_hh that a thread reads once per bin serves them all.
// `GRU_TRIALS` in host/src/train/cuda/step.rs sizes the grid to match.
#define LFLOW_GRU_TRIALS 4

// The encoder's whole recurrence in one launch (a persistent kernel, as
// cuDNN's persistent RNN, but a block owns trials rather than a slice of
// W_hh: at H = 280, W_hh's 940 KB exceed one SM's registers and shared memory
// together, and slicing it across SMs would need a grid-wide barrier per bin).
// Block per LFLOW_GRU_TRIALS trials, bins 0 .. TT-1 in a loop:
//   1. gh = h_{t-1} W_hh^T (not at t = 0, where h_{-1} = 0), a row of W_hh
//      per thread, read through L1/L2 once per bin for all the block's
//      trials, into shared memory `[LFLOW_GRU_TRIALS, 3H]`;
//   2. the gates (gate order r, z (`u`), n) and h_t = ((1-u) n + u h_{t-1}) * mask.
// `gi [TT, Bc, 3H]` input projections (no bias); keeps r, u, n and the
// recurrent n-gate term (bias included) for the backward pass; all `[TT, Bc, H]`.
// h_{t-1} is read back from `h_out`: the barrier that ends a bin orders those
// global writes for the whole block.
extern "C" __global__ void gru_forward(const float* __restrict__ gi, const float* __restrict__ w_hh,
                                       const float* __restrict__ b_ih, const float* __restrict__ b_hh,
                                       const float* __restrict__ mask, float* __restrict__ r_out,
                                       float* __restrict__ u_out, float* __restrict__ n_out,
                                       float* __restrict__ ghn_out, float* h_out, int bc, int h, int tt) {
    LFLOW_DYN_SMEM(smem);
    LFLOW_SMEM(float) ghs = LFLOW_SMEM_CAST(float, smem);
    const int b0 = blockIdx.x * LFLOW_GRU_TRIALS;
    const int trials = min(LFLOW_GRU_TRIALS, bc - b0);
    const long step = (long)bc * h;
    for (int t = 0; t < tt; ++t) {
        if (t > 0) {
            const float* hp = h_out + (t - 1) * step + (long)b0 * h;
            for (int j = threadIdx.x; j < 3 * h; j += blockDim.x) {
                const float* w = w_hh + (long)j * h;
                float acc[LFLOW_GRU_TRIALS];
                for (int q = 0; q < LFLOW_GRU_TRIALS; ++q) acc[q] = 0.0f;
                for (int k = 0; k < h; ++k) {
                    const float wk = w[k];
                    for (int q = 0; q < LFLOW_GRU_TRIALS; ++q)
                        if (q < trials) acc[q] += wk * hp[(long)q * h + k];
                }
                for (int q = 0; q < trials; ++q) ghs[q * 3 * h + j] = acc[q];
            }
        }
        __syncthreads();
        for (int i = threadIdx.x; i < trials * h; i += blockDim.x) {
            const int q = i / h, k = i % h;
            const long at = t * step + (long)(b0 + q) * h + k;
            const float* gir = gi + (t * (long)bc + b0 + q) * 3 * h;
            const float hr = t == 0 ? b_hh[k] : ghs[q * 3 * h + k] + b_hh[k];
            const float hu = t == 0 ? b_hh[h + k] : ghs[q * 3 * h + h + k] + b_hh[h + k];
            const float hn = t == 0 ? b_hh[2 * h + k] : ghs[q * 3 * h + 2 * h + k] + b_hh[2 * h + k];
            const float r = sigmoidf_((gir[k] + b_ih[k]) + hr);
            const float u = sigmoidf_((gir[h + k] + b_ih[h + k]) + hu);
            const float n = tanhf((gir[2 * h + k] + b_ih[2 * h + k]) + r * hn);
            const float prev = t == 0 ? 0.0f : h_out[at - step];
            r_out[at] = r;
            u_out[at] = u;
            n_out[at] = n;
            ghn_out[at] = hn;
            h_out[at] = ((1.0f - u) * n + u * prev) * mask[at];
        }
        __syncthreads();
    }
}

// Backpropagation through the recurrence in one launch, bins TT-1 .. 0, block
// per LFLOW_GRU_TRIALS trials. `dh [TT, Bc, H]` arrives holding d loss / d h_t
// from everything above the encoder; the recurrent parts are added in place
// as the kernel walks back: dh_{t-1} += g_t u_t + dgh_t W_hh, g_t = dh_t * mask.
// Writes the pre-activation gradients of both projections `dgi`, `dgh`
// `[TT, Bc, 3H]` (for the weight gradients' GEMMs after it).
//   1. per element: g_t, the gates' gradients, dh_{t-1} += g_t u_t;
//   2. dh_{t-1} += dgh_t W_hh, a column of W_hh per thread (coalesced), read
//      once per bin for all the block's trials; dgh_t is read back from
//      global memory, ordered by the barrier between the two.
extern "C" __global__ void gru_backward(float* dh, const float* __restrict__ w_hh, const float* __restrict__ mask,
                                        const float* __restrict__ r_in, const float* __restrict__ u_in,
                                        const float* __restrict__ n_in, const float* __restrict__ ghn_in,
                                        const float* __restrict__ h_in, float* __restrict__ dgi, float* dgh, int bc,
                                        int h, int tt) {
    const int b0 = blockIdx.x * LFLOW_GRU_TRIALS;
    const int trials = min(LFLOW_GRU_TRIALS, bc - b0);
    const long step = (long)bc * h;
    for (int t = tt - 1; t >= 0; --t) {
        for (int i = threadIdx.x; i < trials * h; i += blockDim.x) {
            const int q = i / h, k = i % h;
            const long at = t * step + (long)(b0 + q) * h + k;
            const float g = dh[at] * mask[at];
            const float r = r_in[at], u = u_in[at], n = n_in[at], ghn = ghn_in[at];
            const float prev = t == 0 ? 0.0f : h_in[at - step];
            const float dn = g * (1.0f - u);
            const float du = g * (prev - n);
            const float dan = dn * (1.0f - n * n);
            const float dar = dan * ghn * r * (1.0f - r);
            const float dau = du * u * (1.0f - u);
            float* gi = dgi + (t * (long)bc + b0 + q) * 3 * h;
            float* gh = dgh + (t * (long)bc + b0 + q) * 3 * h;
            gi[k] = dar;
            gi[h + k] = dau;
            gi[2 * h + k] = dan;
            gh[k] = dar;
            gh[h + k] = dau;
            gh[2 * h + k] = dan * r;
            if (t > 0) dh[at - step] += g * u;
        }
        __syncthreads();
        if (t > 0) {
            const float* gh = dgh + (t * (long)bc + b0) * 3 * h;
            float* dp = dh + (t - 1) * step + (long)b0 * h;
            for (int k = threadIdx.x; k < h; k += blockDim.x) {
                float acc[LFLOW_GRU_TRIALS];
                for (int q = 0; q < LFLOW_GRU_TRIALS; ++q) acc[q] = 0.0f;
                for (int j = 0; j < 3 * h; ++j) {
                    const float w = w_hh[(long)j * h + k];
                    for (int q = 0; q < LFLOW_GRU_TRIALS; ++q)
                        if (q < trials) acc[q] += gh[(long)q * 3 * h + j] * w;
                }
                for (int q = 0; q < trials; ++q) dp[(long)q * h + k] += acc[q];
            }
        }
        __syncthreads();
    }
}
