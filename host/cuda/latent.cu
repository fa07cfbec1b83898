// Posterior sample at bin 0, the potential force and the Langevin steps
// (MODEL.md sections 2-4), forward and backward over time, fused: one block
// per trial walks the bins, the trial's latent vectors in shared memory.
#include "common.cuh"

// Effective taps a[4][3] of the potential from its kernel K[4][4][3]:
// a[i][j] = sum_o K[o][i][j] / max(|K[o][i]|, 1e-12). One thread.
extern "C" __global__ void potential_taps(const float* __restrict__ kernel, float* __restrict__ taps) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    for (int q = 0; q < 12; ++q) taps[q] = 0.0f;
    for (int o = 0; o < 4; ++o) {
        for (int i = 0; i < 4; ++i) {
            const float* k = kernel + (o * 4 + i) * 3;
            float norm = sqrtf(k[0] * k[0] + k[1] * k[1] + k[2] * k[2]);
            if (!(norm > 1e-12f)) norm = 1e-12f;
            for (int j = 0; j < 3; ++j) taps[i * 3 + j] += k[j] / norm;
        }
    }
}

// The potential's gradient (its force) at element k of a latent of size 4*len
// held in `z`: sum_ij a_ij z_i[m+j-1] + sum_j a_cj s[m-j+1], s = sum_c z_c.
template <typename Taps, typename Z>
__device__ __forceinline__ float potential_force(Taps taps, Z z, int len, int k) {
    const int c = k / len, m = k % len;
    float g = 0.0f;
    for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 3; ++j) {
            const int p = m + j - 1;
            g += taps[i * 3 + j] * ((p >= 0 && p < len) ? z[i * len + p] : 0.0f);
        }
    }
    float coupling = 0.0f;
    for (int j = 0; j < 3; ++j) {
        const int p = m - j + 1;
        float s = 0.0f;
        if (p >= 0 && p < len) s = ((z[p] + z[len + p]) + z[2 * len + p]) + z[3 * len + p];
        coupling += taps[c * 3 + j] * s;
    }
    return g + coupling;
}

// z_0 = mu_z + exp(lv_z / 2) e_z, v_0 = mu_v + exp(lv_v / 2) e_v; noise is
// [Bc, TT + 1, H] (e_z, e_v, then e_t), z and v time-major [TT, Bc, H].
extern "C" __global__ void posterior_sample(const float* __restrict__ mu_z, const float* __restrict__ lv_z,
                                            const float* __restrict__ mu_v, const float* __restrict__ lv_v,
                                            const float* __restrict__ noise, float* __restrict__ z,
                                            float* __restrict__ v, int bc, int h, int tt) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= bc * h) return;
    const int b = i / h, k = i % h;
    const float* e = noise + (long)b * (tt + 1) * h;
    z[i] = mu_z[i] + expf(0.5f * lv_z[i]) * e[k];
    v[i] = mu_v[i] + expf(0.5f * lv_v[i]) * e[h + k];
}

// Bins 1 .. TT-1 of every trial: f = force(z_{t-1}), z_t = z_{t-1} + eps v_{t-1},
// v_t = (1 - gamma)(v_{t-1} - eps f) + sqrt(2 gamma) e_t. Block per trial,
// blockDim >= H; shared memory: H floats (z_{t-1}) and the 12 taps.
extern "C" __global__ void langevin_forward(const float* __restrict__ taps_in, float* __restrict__ z,
                                            float* __restrict__ v, const float* __restrict__ noise, int bc, int tt,
                                            int h, float gamma, float eps) {
    LFLOW_DYN_SMEM(smem);
    LFLOW_SMEM(float) zs = LFLOW_SMEM_CAST(float, smem);
    LFLOW_SMEM(float) taps = zs + h;
    const int b = blockIdx.x, k = threadIdx.x, len = h / 4;
    const long step = (long)bc * h;
    if (k < 12) taps[k] = taps_in[k];
    const float noise_scale = sqrtf(2.0f * gamma);
    for (int t = 1; t < tt; ++t) {
        const long prev = (t - 1) * step + (long)b * h, now = prev + step;
        if (k < h) zs[k] = z[prev + k];
        __syncthreads();
        if (k < h) {
            const float f = potential_force(taps, zs, len, k);
            const float vk = v[prev + k];
            const float e = noise[((long)b * (tt + 1) + 1 + t) * h + k];
            z[now + k] = zs[k] + eps * vk;
            v[now + k] = (1.0f - gamma) * (vk - eps * f) + noise_scale * e;
        }
        __syncthreads();
    }
}

// l[b, t, :] = [z_t, v_t, h_t] (trial-major rows of width 3H) from the time-major latents.
extern "C" __global__ void assemble_latents(const float* __restrict__ z, const float* __restrict__ v,
                                            const float* __restrict__ hid, float* __restrict__ l, int bc, int tt,
                                            int h) {
    const long total = (long)bc * tt * 3 * h;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < total; i += (long)gridDim.x * blockDim.x) {
        const int col = i % (3 * h);
        const long row = i / (3 * h);
        const int t = row % tt, b = row / tt;
        const long src = ((long)t * bc + b) * h + col % h;
        l[i] = col < h ? z[src] : (col < 2 * h ? v[src] : hid[src]);
    }
}

// Langevin steps backwards for every trial (block per trial, blockDim >= H):
// adds the velocity KL's gradient kl_scale * v_t / var_v (kl_scale from `s`) at t >= 1, carries
// dz, dv back to bin 0, and writes this trial's d loss / d taps [12] (f64).
// Shared memory: H floats of dv_t, H of z_{t-1}, the 12 taps, blockDim doubles.
extern "C" __global__ void langevin_backward(const float* __restrict__ taps_in, const float* __restrict__ z,
                                             const float* __restrict__ v, float* __restrict__ dz,
                                             float* __restrict__ dv, double* __restrict__ dtaps, int bc, int tt,
                                             int h, float gamma, float eps, const StepScalars* __restrict__ s,
                                             float var_v) {
    const float kl_scale = s->kl_scale;
    LFLOW_DYN_SMEM(smem);
    LFLOW_SMEM(double) red = LFLOW_SMEM_CAST(double, smem);
    LFLOW_SMEM(float) ws = LFLOW_SMEM_CAST(float, red + blockDim.x);
    LFLOW_SMEM(float) zs = ws + h;
    LFLOW_SMEM(float) taps = zs + h;
    const int b = blockIdx.x, k = threadIdx.x, len = h / 4;
    const long step = (long)bc * h;
    if (k < 12) taps[k] = taps_in[k];
    double acc[12];
    for (int q = 0; q < 12; ++q) acc[q] = 0.0;
    const double coef = -(double)((1.0f - gamma) * eps);
    for (int t = tt - 1; t >= 1; --t) {
        const long now = (long)t * step + (long)b * h, prev = now - step;
        if (k < h) {
            dv[now + k] += kl_scale * v[now + k] / var_v;
            ws[k] = dv[now + k];
            zs[k] = z[prev + k];
        }
        __syncthreads();
        if (k < len) {
            // d (f(z) . w) / d a[i][j] at position m = k, summed over m by the block later.
            double wsum = 0.0, zsum[3];
            for (int c = 0; c < 4; ++c) wsum += ws[c * len + k];
            for (int j = 0; j < 3; ++j) {
                const int p = k - j + 1;
                zsum[j] = 0.0;
                if (p >= 0 && p < len)
                    for (int c = 0; c < 4; ++c) zsum[j] += zs[c * len + p];
            }
            for (int i = 0; i < 4; ++i) {
                for (int j = 0; j < 3; ++j) {
                    const int p = k + j - 1;
                    const double zi = (p >= 0 && p < len) ? (double)zs[i * len + p] : 0.0;
                    acc[i * 3 + j] += coef * (wsum * zi + (double)ws[i * len + k] * zsum[j]);
                }
            }
        }
        if (k < h) {
            // The force is linear with a symmetric Jacobian: its VJP is the force at dv.
            const float sg = potential_force(taps, ws, len, k);
            const float gz = dz[now + k], gv = ws[k];
            dv[prev + k] += eps * gz + (1.0f - gamma) * gv;
            dz[prev + k] += gz - (1.0f - gamma) * eps * sg;
        }
        __syncthreads();
    }
    for (int q = 0; q < 12; ++q) {
        const double total = block_sum(acc[q], red);
        if (k == 0) dtaps[b * 12 + q] = total;
    }
}

// d loss / d kernel [4, 4, 3] from the per-trial tap gradients, through
// a = sum_o Kn[o] and Kn = K / max(|K|, 1e-12). One thread; overwrites `grad`.
extern "C" __global__ void potential_kernel_grad(const float* __restrict__ kernel, const double* __restrict__ dtaps,
                                                 int bc, float* __restrict__ grad) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    double da[12];
    for (int q = 0; q < 12; ++q) {
        da[q] = 0.0;
        for (int b = 0; b < bc; ++b) da[q] += dtaps[b * 12 + q];
    }
    for (int o = 0; o < 4; ++o) {
        for (int i = 0; i < 4; ++i) {
            const int base = (o * 4 + i) * 3;
            const double k0 = kernel[base], k1 = kernel[base + 1], k2 = kernel[base + 2];
            const double norm = sqrt(k0 * k0 + k1 * k1 + k2 * k2);
            if (norm > 1e-12) {
                const double kn[3] = {k0 / norm, k1 / norm, k2 / norm};
                const double dot = kn[0] * da[i * 3] + kn[1] * da[i * 3 + 1] + kn[2] * da[i * 3 + 2];
                for (int j = 0; j < 3; ++j) grad[base + j] = (float)((da[i * 3 + j] - kn[j] * dot) / norm);
            } else {
                for (int j = 0; j < 3; ++j) grad[base + j] = (float)(da[i * 3 + j] / 1e-12);
            }
        }
    }
}

// Bin 0 backwards: reparameterisation and KL0 into d mu, d logvar of both heads
// [Bc, H]: d mu = d x + kl_scale mu, d lv = d x e sigma / 2 + kl_scale (sigma^2 - 1) / 2.
extern "C" __global__ void posterior_backward(const float* __restrict__ dz, const float* __restrict__ dv,
                                              const float* __restrict__ mu_z, const float* __restrict__ lv_z,
                                              const float* __restrict__ mu_v, const float* __restrict__ lv_v,
                                              const float* __restrict__ noise, float* __restrict__ dmu_z,
                                              float* __restrict__ dlv_z, float* __restrict__ dmu_v,
                                              float* __restrict__ dlv_v, int bc, int h, int tt,
                                              const StepScalars* __restrict__ s) {
    const float kl_scale = s->kl_scale;
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= bc * h) return;
    const int b = i / h, k = i % h;
    const float* e = noise + (long)b * (tt + 1) * h;
    const float sz = expf(0.5f * lv_z[i]), sv = expf(0.5f * lv_v[i]);
    dmu_z[i] = dz[i] + kl_scale * mu_z[i];
    dlv_z[i] = dz[i] * e[k] * 0.5f * sz + kl_scale * 0.5f * (sz * sz - 1.0f);
    dmu_v[i] = dv[i] + kl_scale * mu_v[i];
    dlv_v[i] = dv[i] * e[h + k] * 0.5f * sv + kl_scale * 0.5f * (sv * sv - 1.0f);
}
