// LayerNorm over rows of width D (eps 1e-5), forward and backward; one block
// per row, sums by block reduction. The affine parameters' gradients are
// column sums over rows (one thread per column, deterministic order).
#include "common.cuh"

// x <- LN(x) * w + b in place; keeps x_hat [rows, D] and 1 / std [rows].
extern "C" __global__ void layer_norm_forward(float* __restrict__ x, const float* __restrict__ w,
                                              const float* __restrict__ bias, float* __restrict__ xhat,
                                              float* __restrict__ rstd, int rows, int d, float eps) {
    LFLOW_SHARED(float, red, 32);
    const int row = blockIdx.x;
    if (row >= rows) return;
    float* xr = x + (long)row * d;
    float s = 0.0f;
    for (int c = threadIdx.x; c < d; c += blockDim.x) s += xr[c];
    const float mean = block_sum(s, red) / d;
    float q = 0.0f;
    for (int c = threadIdx.x; c < d; c += blockDim.x) q += (xr[c] - mean) * (xr[c] - mean);
    const float inv = 1.0f / sqrtf(block_sum(q, red) / d + eps);
    if (threadIdx.x == 0) rstd[row] = inv;
    for (int c = threadIdx.x; c < d; c += blockDim.x) {
        const float h = (xr[c] - mean) * inv;
        xhat[(long)row * d + c] = h;
        xr[c] = h * w[c] + bias[c];
    }
}

// dx = rstd (dy w - mean(dy w) - x_hat mean(dy w x_hat)) for each row.
extern "C" __global__ void layer_norm_backward(const float* __restrict__ dy, const float* __restrict__ xhat,
                                               const float* __restrict__ rstd, const float* __restrict__ w,
                                               float* __restrict__ dx, int rows, int d) {
    LFLOW_SHARED(float, red, 32);
    const int row = blockIdx.x;
    if (row >= rows) return;
    const float* g = dy + (long)row * d;
    const float* h = xhat + (long)row * d;
    float m1 = 0.0f, m2 = 0.0f;
    for (int c = threadIdx.x; c < d; c += blockDim.x) {
        m1 += g[c] * w[c];
        m2 += g[c] * w[c] * h[c];
    }
    m1 = block_sum(m1, red) / d;
    m2 = block_sum(m2, red) / d;
    const float rs = rstd[row];
    for (int c = threadIdx.x; c < d; c += blockDim.x) dx[(long)row * d + c] = rs * (g[c] * w[c] - m1 - h[c] * m2);
}

// dw[c] = sum_r dy[r, c] x_hat[r, c], db[c] = sum_r dy[r, c] (overwritten).
extern "C" __global__ void layer_norm_param_grads(const float* __restrict__ dy, const float* __restrict__ xhat,
                                                  float* __restrict__ dw, float* __restrict__ db, int rows, int d) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= d) return;
    float gw = 0.0f, gb = 0.0f;
    for (int r = 0; r < rows; ++r) {
        const float g = dy[(long)r * d + c];
        gw += g * xhat[(long)r * d + c];
        gb += g;
    }
    dw[c] = gw;
    db[c] = gb;
}
