/*
 * kernels/adamw.cuh — one AdamW step over the flat parameter buffer (model.c
 * bert_adamw_update): per tensor, so that weight decay applies only where
 * parameter_tensor_decays says; the same expressions in the same order as the reference.
 */
#ifndef ZELO_KERNELS_ADAMW_CUH
#define ZELO_KERNELS_ADAMW_CUH

#include "kernels/common.cuh"

__global__ void adamw_kernel1(float* param, float* m, float* v, const float* grad, size_t n, float lr,
                              float beta1, float beta2, float bias_correction1, float bias_correction2,
                              float eps, float decay) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) { return; }
    float g = grad[i];
    float mi = beta1 * m[i] + (1.0f - beta1) * g;
    float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    float m_hat = mi / bias_correction1;
    float v_hat = vi / bias_correction2;
    // decoupled decay (Loshchilov & Hutter): shrinks the weight itself, outside Adam's scaling
    param[i] -= lr * (m_hat / (sqrtf(v_hat) + eps) + decay * param[i]);
}

// params, grads, m, v: the flat buffers (device); sizes (host): floats of each tensor in
// buffer order; decays (host): whether tensor i decays (parameter_tensor_decays); step counts from 1
void adamw_update_cuda(float* params, float* m, float* v, const float* grads, const size_t* sizes,
                       const int* decays, int num_tensors, float lr, float beta1, float beta2, float eps,
                       float weight_decay, int step, cudaStream_t stream) {
    // on the host in fp32 with powf, exactly as the reference
    float bias_correction1 = 1.0f - powf(beta1, (float)step);
    float bias_correction2 = 1.0f - powf(beta2, (float)step);
    const int block_size = 256;
    size_t offset = 0;
    for (int i = 0; i < num_tensors; i++) {
        size_t n = sizes[i];
        if (n > 0) {
            float decay = decays[i] ? weight_decay : 0.0f;
            adamw_kernel1<<<(int)CEIL_DIV(n, (size_t)block_size), block_size, 0, stream>>>(params + offset, m + offset, v + offset, grads + offset, n, lr, beta1, beta2, bias_correction1, bias_correction2, eps, decay);
            cudaCheck(cudaGetLastError());
        }
        offset += n;
    }
}

#endif // ZELO_KERNELS_ADAMW_CUH
