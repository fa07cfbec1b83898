// A training batch assembled on the device from the resident data set
// (MODEL.md sections 6-7): each trial's targets and encoder input, its noise
// draws and its coordinated-dropout masks, from the same per-trial streams as
// the host's Trainer (trial_stream(seed, 1) for noise, (seed, 2) for the
// masks: lflow_core::Seeded, Box-Muller included). One thread per trial: the
// streams are sequential.
#include "common.cuh"

__device__ __forceinline__ Xoshiro trial_stream(u64 seed, u64 which) {
    return xoshiro_new(seed ^ (which * 0xD1B54A32D192ED03ull));
}

__device__ __forceinline__ float uniform24(Xoshiro* r) { return (float)(xoshiro_next(r) >> 8) * (1.0f / 16777216.0f); }

// spikes [trials_all, TT, N_out]; order/seeds: the epoch's trial indices and seeds, of which
// this batch takes `bc` from `step->batch_start` on (device memory: it changes every step).
extern "C" __global__ void assemble_batch(const float* __restrict__ spikes, const int* __restrict__ order_all,
                                          const u64* __restrict__ seeds_all, const StepScalars* __restrict__ step,
                                          u64* __restrict__ seeds_out,
                                          float* __restrict__ input, float* __restrict__ targets,
                                          float* __restrict__ grad_mask, float* __restrict__ noise, int bc, int tt,
                                          int t_obs, int n_in, int n_out, int h, float cd, int use_cd, int paper,
                                          int draw_noise) {
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= bc) return;
    const int* order = order_all + step->batch_start;
    const u64* seeds = seeds_all + step->batch_start;
    const float* s = spikes + (long)order[k] * tt * n_out;
    for (long i = 0; i < (long)tt * n_out; ++i) targets[(long)k * tt * n_out + i] = s[i];
    float* x = input + (long)k * t_obs * n_in;
    for (int t = 0; t < t_obs; ++t)
        for (int j = 0; j < n_in; ++j) x[t * n_in + j] = s[(long)t * n_out + j];
    const u64 seed = seeds[k];
    seeds_out[k] = seed;
    float* e = noise + (long)k * (tt + 1) * h;
    const long draws = (long)(tt + 1) * h;
    if (draw_noise) {
        Xoshiro rng = trial_stream(seed, 1);
        for (long i = 0; i < draws; i += 2) {
            const float u1 = (float)((xoshiro_next(&rng) >> 8) + 1) * (1.0f / 16777216.0f);
            const float u2 = uniform24(&rng);
            const float r = sqrtf(-2.0f * logf(u1));
            const float theta = (2.0f * 3.14159265358979323846f) * u2;
            e[i] = r * cosf(theta);
            if (i + 1 < draws) e[i + 1] = r * sinf(theta);
        }
    } else {
        for (long i = 0; i < draws; ++i) e[i] = 0.0f;
    }
    if (use_cd) {
        Xoshiro rng = trial_stream(seed, 2);
        float* m = grad_mask + (long)k * t_obs * n_in;
        for (long i = 0; i < (long)t_obs * n_in; ++i) {
            const bool kept = uniform24(&rng) < cd;
            const bool pass = uniform24(&rng) < 1.0f - cd;
            x[i] = kept ? x[i] / cd : 0.0f;
            m[i] = (paper ? (!kept || pass) : !kept) ? 1.0f : 0.0f;
        }
    }
}
