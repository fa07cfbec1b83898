// Two-head self-attention of the decoder (MODEL.md section 5), fused per
// (trial, head): scores, window mask, softmax and the weighted sum of values
// in one kernel, and its backward in another. One block per (trial, head);
// each thread owns query rows (forward, dQ) or key rows (dK, dV); key, value
// and gradient rows are staged through shared memory in tiles of `kt` rows.
//
// qkv: trial-major rows [Bc * TT, 3D] (q | k | v, head h at columns h * hd);
// probs, ds: [Bc, 2, TT, TT]; ctx, dctx: [Bc * TT, D]; window < 0: whole trial.
#include "common.cuh"

__device__ __forceinline__ bool attends(int t, int j, int window) {
    return window < 0 || (j <= t && j + window > t);
}

// Copy rows [j0, j0 + n) of a [TT, width]-strided operand (columns col .. col + hd) into `tile`.
__device__ __forceinline__ void stage_tile(LFLOW_SMEM(float) tile, const float* base, long ld, int col, int j0, int n, int hd) {
    for (int i = threadIdx.x; i < n * hd; i += blockDim.x) {
        const int r = i / hd, c = i % hd;
        tile[i] = base[(long)(j0 + r) * ld + col + c];
    }
}

extern "C" __global__ void attention_forward(const float* __restrict__ qkv, float* __restrict__ probs,
                                             float* __restrict__ ctx, int tt, int d, int window, float scale,
                                             int kt) {
    LFLOW_DYN_SMEM(smem);
    LFLOW_SMEM(float) tile = LFLOW_SMEM_CAST(float, smem);
    const int b = blockIdx.x, head = blockIdx.y, hd = d / 2;
    const long ld = 3L * d;
    const float* rows = qkv + (long)b * tt * ld;
    float* p = probs + ((long)b * 2 + head) * tt * tt;
    float* out = ctx + (long)b * tt * d + head * hd;
    for (int t0 = 0; t0 < tt; t0 += blockDim.x) {
        const int t = t0 + threadIdx.x;
        const bool active = t < tt;
        const float* q = rows + (long)t * ld + head * hd;
        // Scores against key tiles.
        for (int j0 = 0; j0 < tt; j0 += kt) {
            const int n = min(kt, tt - j0);
            stage_tile(tile, rows, ld, d + head * hd, j0, n, hd);
            __syncthreads();
            if (active) {
                for (int r = 0; r < n; ++r) {
                    float s = 0.0f;
                    for (int c = 0; c < hd; ++c) s += q[c] * tile[r * hd + c];
                    p[(long)t * tt + j0 + r] = s * scale;
                }
            }
            __syncthreads();
        }
        // Masked softmax of the row.
        if (active) {
            float* row = p + (long)t * tt;
            float max = -__int_as_float(0x7f800000);
            for (int j = 0; j < tt; ++j)
                if (attends(t, j, window)) max = fmaxf(max, row[j]);
            float total = 0.0f;
            for (int j = 0; j < tt; ++j) {
                row[j] = attends(t, j, window) ? expf(row[j] - max) : 0.0f;
                total += row[j];
            }
            for (int j = 0; j < tt; ++j) row[j] /= total;
            for (int c = 0; c < hd; ++c) out[(long)t * d + c] = 0.0f;
        }
        // Weighted sum of value tiles.
        for (int j0 = 0; j0 < tt; j0 += kt) {
            const int n = min(kt, tt - j0);
            stage_tile(tile, rows, ld, 2 * d + head * hd, j0, n, hd);
            __syncthreads();
            if (active) {
                const float* row = p + (long)t * tt + j0;
                for (int c = 0; c < hd; ++c) {
                    float acc = out[(long)t * d + c];
                    for (int r = 0; r < n; ++r) acc += row[r] * tile[r * hd + c];
                    out[(long)t * d + c] = acc;
                }
            }
            __syncthreads();
        }
    }
}

// dP = dctx V^T, dS = P (dP - rowsum(P dP)) (kept in `ds`), dQ = scale dS K,
// dK = scale dS^T Q, dV = P^T dctx, written (not added) into d_qkv.
extern "C" __global__ void attention_backward(const float* __restrict__ qkv, const float* __restrict__ probs,
                                              const float* __restrict__ dctx, float* __restrict__ ds,
                                              float* __restrict__ d_qkv, int tt, int d, float scale, int kt) {
    LFLOW_DYN_SMEM(smem);
    LFLOW_SMEM(float) tile = LFLOW_SMEM_CAST(float, smem);
    const int b = blockIdx.x, head = blockIdx.y, hd = d / 2;
    const long ld = 3L * d;
    const float* rows = qkv + (long)b * tt * ld;
    float* drows = d_qkv + (long)b * tt * ld;
    const float* p = probs + ((long)b * 2 + head) * tt * tt;
    float* g = ds + ((long)b * 2 + head) * tt * tt;
    const float* dc = dctx + (long)b * tt * d + head * hd;
    // Query rows: dP against value tiles, then dS, then dQ against key tiles.
    for (int t0 = 0; t0 < tt; t0 += blockDim.x) {
        const int t = t0 + threadIdx.x;
        const bool active = t < tt;
        for (int j0 = 0; j0 < tt; j0 += kt) {
            const int n = min(kt, tt - j0);
            stage_tile(tile, rows, ld, 2 * d + head * hd, j0, n, hd);
            __syncthreads();
            if (active) {
                for (int r = 0; r < n; ++r) {
                    float s = 0.0f;
                    for (int c = 0; c < hd; ++c) s += dc[(long)t * d + c] * tile[r * hd + c];
                    g[(long)t * tt + j0 + r] = s;
                }
            }
            __syncthreads();
        }
        if (active) {
            float dot = 0.0f;
            for (int j = 0; j < tt; ++j) dot += p[(long)t * tt + j] * g[(long)t * tt + j];
            for (int j = 0; j < tt; ++j) g[(long)t * tt + j] = p[(long)t * tt + j] * (g[(long)t * tt + j] - dot);
            for (int c = 0; c < hd; ++c) drows[(long)t * ld + head * hd + c] = 0.0f;
        }
        for (int j0 = 0; j0 < tt; j0 += kt) {
            const int n = min(kt, tt - j0);
            stage_tile(tile, rows, ld, d + head * hd, j0, n, hd);
            __syncthreads();
            if (active) {
                for (int c = 0; c < hd; ++c) {
                    float acc = drows[(long)t * ld + head * hd + c];
                    for (int r = 0; r < n; ++r) acc += g[(long)t * tt + j0 + r] * scale * tile[r * hd + c];
                    drows[(long)t * ld + head * hd + c] = acc;
                }
            }
            __syncthreads();
        }
    }
    // Key rows: dV against dctx tiles, dK against query tiles (both over t).
    for (int j0 = 0; j0 < tt; j0 += blockDim.x) {
        const int j = j0 + threadIdx.x;
        const bool active = j < tt;
        if (active) {
            for (int c = 0; c < hd; ++c) {
                drows[(long)j * ld + d + head * hd + c] = 0.0f;
                drows[(long)j * ld + 2 * d + head * hd + c] = 0.0f;
            }
        }
        for (int s0 = 0; s0 < tt; s0 += kt) {
            const int n = min(kt, tt - s0);
            stage_tile(tile, dctx + (long)b * tt * d, d, head * hd, s0, n, hd);
            __syncthreads();
            if (active) {
                for (int c = 0; c < hd; ++c) {
                    float acc = drows[(long)j * ld + 2 * d + head * hd + c];
                    for (int r = 0; r < n; ++r) acc += p[(long)(s0 + r) * tt + j] * tile[r * hd + c];
                    drows[(long)j * ld + 2 * d + head * hd + c] = acc;
                }
            }
            __syncthreads();
            stage_tile(tile, rows, ld, head * hd, s0, n, hd);
            __syncthreads();
            if (active) {
                for (int c = 0; c < hd; ++c) {
                    float acc = drows[(long)j * ld + d + head * hd + c];
                    for (int r = 0; r < n; ++r) acc += g[(long)(s0 + r) * tt + j] * scale * tile[r * hd + c];
                    drows[(long)j * ld + d + head * hd + c] = acc;
                }
            }
            __syncthreads();
        }
    }
}
