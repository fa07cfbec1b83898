// GRU encoder (MODEL.md section 1; gate order r, z (`u`), n): input gather,
// dropout masks, and the fused gate step forward and backward. The matrix
// products (all input projections at once, one recurrent product per step)
// go through cuBLAS. Layouts are time-major: `[TT, Bc, X]`.
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

// One GRU step over the chunk: gates from the input projection `gi [Bc, 3H]`
// (without bias), the recurrent projection `gh [Bc, 3H]` (without bias; not
// read at the first step, where h_{-1} = 0) and both biases. Keeps r, u, n and
// the recurrent n-gate term for the backward pass; h = ((1-u) n + u h_prev) * mask.
extern "C" __global__ void gru_gates_forward(const float* __restrict__ gi, const float* __restrict__ gh,
                                             const float* __restrict__ b_ih, const float* __restrict__ b_hh,
                                             const float* __restrict__ h_prev, const float* __restrict__ mask,
                                             float* __restrict__ r_out, float* __restrict__ u_out,
                                             float* __restrict__ n_out, float* __restrict__ ghn_out,
                                             float* __restrict__ h_out, int bc, int h, int first) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= bc * h) return;
    const int b = i / h, k = i % h;
    const float* gir = gi + (long)b * 3 * h;
    const float* ghr = gh + (long)b * 3 * h;
    const float hr = first ? b_hh[k] : ghr[k] + b_hh[k];
    const float hu = first ? b_hh[h + k] : ghr[h + k] + b_hh[h + k];
    const float hn = first ? b_hh[2 * h + k] : ghr[2 * h + k] + b_hh[2 * h + k];
    const float r = sigmoidf_((gir[k] + b_ih[k]) + hr);
    const float u = sigmoidf_((gir[h + k] + b_ih[h + k]) + hu);
    const float n = tanhf((gir[2 * h + k] + b_ih[2 * h + k]) + r * hn);
    const float prev = first ? 0.0f : h_prev[i];
    r_out[i] = r;
    u_out[i] = u;
    n_out[i] = n;
    ghn_out[i] = hn;
    h_out[i] = ((1.0f - u) * n + u * prev) * mask[i];
}

// Backward of one GRU step: from d h_t (`dh`, upstream and recurrent parts
// summed) to the pre-activation gradients of both projections `dgi`, `dgh`
// [Bc, 3H], and the direct part d h_{t-1} += dh * u (not at the first step).
extern "C" __global__ void gru_gates_backward(float* __restrict__ dh, const float* __restrict__ mask,
                                              const float* __restrict__ r_in, const float* __restrict__ u_in,
                                              const float* __restrict__ n_in, const float* __restrict__ ghn_in,
                                              const float* __restrict__ h_prev, float* __restrict__ dh_prev,
                                              float* __restrict__ dgi, float* __restrict__ dgh, int bc, int h,
                                              int first) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= bc * h) return;
    const int b = i / h, k = i % h;
    const float g = dh[i] * mask[i];
    const float r = r_in[i], u = u_in[i], n = n_in[i], ghn = ghn_in[i];
    const float prev = first ? 0.0f : h_prev[i];
    const float dn = g * (1.0f - u);
    const float du = g * (prev - n);
    const float dan = dn * (1.0f - n * n);
    const float dar = dan * ghn * r * (1.0f - r);
    const float dau = du * u * (1.0f - u);
    float* gi = dgi + (long)b * 3 * h;
    float* gh = dgh + (long)b * 3 * h;
    gi[k] = dar;
    gi[h + k] = dau;
    gi[2 * h + k] = dan;
    gh[k] = dar;
    gh[h + k] = dau;
    gh[2 * h + k] = dan * r;
    if (!first) dh_prev[i] += g * u;
}
