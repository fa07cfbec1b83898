// Adam with coupled weight decay (torch.optim.Adam), fused over the one flat
// parameter buffer: g += wd p; m, v moments; p -= step_size m / (sqrt(v) / bc2_sqrt + eps).
// `1 - beta` arrives formed in f64 (as PyTorch's Python floats), not as 1.0f - beta.
#include "common.cuh"

extern "C" __global__ void adam_step(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                                     float* __restrict__ v, long n, float beta1, float one_minus_beta1,
                                     float beta2, float one_minus_beta2, float eps, float step_size,
                                     float bc2_sqrt, float weight_decay) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        const float grad = g[i] + weight_decay * p[i];
        const float mi = beta1 * m[i] + one_minus_beta1 * grad;
        const float vi = beta2 * v[i] + one_minus_beta2 * grad * grad;
        m[i] = mi;
        v[i] = vi;
        p[i] -= step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
    }
}
