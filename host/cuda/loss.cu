// The loss (MODEL.md section 6), fused: Poisson NLL sum, its gradient with
// coordinated dropout's blocking of held-in observed elements, and the KL
// sums of bin 0 and of the velocities. Each block writes its partial sums
// (f64) to `partials [grid, 2]` = (NLL, KL); the host adds the few blocks up.
// The NLL's scale comes from `s` (device memory).
#include "common.cuh"

extern "C" __global__ void poisson_kl_loss(const float* __restrict__ log_rates, const float* __restrict__ targets,
                                           const float* __restrict__ grad_mask, float* __restrict__ d_log_rates,
                                           const float* __restrict__ mu_z, const float* __restrict__ lv_z,
                                           const float* __restrict__ mu_v, const float* __restrict__ lv_v,
                                           const float* __restrict__ v, double* __restrict__ partials, int bc,
                                           int tt, int t_obs, int n_out, int n_in, int h,
                                           const StepScalars* __restrict__ s, float gamma, float var_v,
                                           int want_grad) {
    const float nll_scale = s->nll_scale;
    LFLOW_SHARED(double, red, 32);
    const long stride = (long)gridDim.x * blockDim.x;
    const long first = blockIdx.x * (long)blockDim.x + threadIdx.x;
    double nll = 0.0, kl = 0.0;
    const long n = (long)bc * tt * n_out;
    for (long i = first; i < n; i += stride) {
        const float x = log_rates[i], y = targets[i];
        const float e = expf(x);
        nll += (double)e - (double)y * (double)x;
        if (want_grad) {
            float g = (e - y) * nll_scale;
            const int o = i % n_out;
            const long row = i / n_out;
            const int t = row % tt, b = row / tt;
            if (grad_mask && t < t_obs && o < n_in) g *= grad_mask[((long)b * t_obs + t) * n_in + o];
            d_log_rates[i] = g;
        }
    }
    for (long j = first; j < (long)bc * h; j += stride) {
        const double mz = mu_z[j], lz = lv_z[j], mv = mu_v[j], lvv = lv_v[j];
        kl += 0.5 * (-lz - 1.0 + mz * mz + exp(lz)) + 0.5 * (-lvv - 1.0 + mv * mv + exp(lvv));
    }
    const double var2 = var_v, lv = 2.0 * (double)gamma;
    const double constant = log(var2) - lv - 1.0 + exp(lv) / var2;
    for (long j = first; j < (long)(tt - 1) * bc * h; j += stride) {
        const double x = v[(long)bc * h + j];
        kl += 0.5 * (constant + x * x / var2);
    }
    nll = block_sum(nll, red);
    kl = block_sum(kl, red);
    if (threadIdx.x == 0) {
        partials[2 * blockIdx.x] = nll;
        partials[2 * blockIdx.x + 1] = kl;
    }
}
