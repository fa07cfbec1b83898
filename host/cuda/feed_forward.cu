// Element-wise parts of the decoder layer (MODEL.md section 5) and the bias
// and column-sum helpers every layer's gemm needs: bias rows, ReLU with
// dropout, residual with dropout, masks, and the split of d l into z, v, h.
#include "common.cuh"

#define GRID_STRIDE(i, total) \
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < (total); i += (long)gridDim.x * blockDim.x)

// x[r, c] += bias[c] over [rows, cols].
extern "C" __global__ void add_bias(float* __restrict__ x, const float* __restrict__ bias, int rows, int cols) {
    GRID_STRIDE(i, (long)rows * cols) x[i] += bias[i % cols];
}

// out[c] (=, or += when accumulate) sum_r x[r, c] over [rows, cols]: bias gradients.
extern "C" __global__ void column_sums(const float* __restrict__ x, float* __restrict__ out, int rows, int cols,
                                       int accumulate) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    float s = 0.0f;
    for (int r = 0; r < rows; ++r) s += x[(long)r * cols + c];
    out[c] = accumulate ? out[c] + s : s;
}

// y = a + b * m (residual plus dropped branch).
extern "C" __global__ void residual_dropout(float* __restrict__ y, const float* __restrict__ a,
                                           const float* __restrict__ b, const float* __restrict__ m, long n) {
    GRID_STRIDE(i, n) y[i] = a[i] + b[i] * m[i];
}

// ReLU and dropout in place: the mask becomes the full derivative (0 where f <= 0).
extern "C" __global__ void relu_dropout(float* __restrict__ f, float* __restrict__ m, long n) {
    GRID_STRIDE(i, n) {
        if (f[i] <= 0.0f) m[i] = 0.0f;
        f[i] *= m[i];
    }
}

// out = x * m; out may alias x.
extern "C" __global__ void mul_mask(float* out, const float* x, const float* __restrict__ m, long n) {
    GRID_STRIDE(i, n) out[i] = x[i] * m[i];
}

// d l rows [Bc * TT, 3H] (trial-major) into dz, dv, dh [TT, Bc, H] (time-major).
extern "C" __global__ void split_latent_grads(const float* __restrict__ dl, float* __restrict__ dz,
                                              float* __restrict__ dv, float* __restrict__ dh, int bc, int tt, int h) {
    GRID_STRIDE(i, (long)bc * tt * 3 * h) {
        const int col = i % (3 * h);
        const long row = i / (3 * h);
        const int t = row % tt, b = row / tt;
        const long dst = ((long)t * bc + b) * h + col % h;
        if (col < h)
            dz[dst] = dl[i];
        else if (col < 2 * h)
            dv[dst] = dl[i];
        else
            dh[dst] = dl[i];
    }
}
