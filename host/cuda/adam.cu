// Adam with coupled weight decay (torch.optim.Adam), fused over the one flat
// parameter buffer: g += wd p; m, v moments; p -= step_size m / (sqrt(v) / bc2_sqrt + eps).
// `1 - beta` arrives formed in f64 (as PyTorch's Python floats), not as 1.0f - beta.
// The step's constants come from `s` (device memory: they change every step).
#include "common.cuh"

extern "C" __global__ void adam_step(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                                     float* __restrict__ v, long n, const StepScalars* __restrict__ s) {
    const float beta1 = s->beta1, one_minus_beta1 = s->one_minus_beta1, beta2 = s->beta2;
    const float one_minus_beta2 = s->one_minus_beta2, eps = s->eps, step_size = s->step_size;
    const float bc2_sqrt = s->bc2_sqrt, weight_decay = s->weight_decay;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        const float grad = g[i] + weight_decay * p[i];
        const float mi = beta1 * m[i] + one_minus_beta1 * grad;
        const float vi = beta2 * v[i] + one_minus_beta2 * grad * grad;
        m[i] = mi;
        v[i] = vi;
        p[i] -= step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
    }
}
