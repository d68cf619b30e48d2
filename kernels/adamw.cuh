/*
 * kernels/adamw.cuh — one AdamW step over the flat parameter buffer (model.c
 * bert_adamw_update): per tensor, so that weight decay applies only where
 * parameter_tensor_decays says; the same expressions in the same order as the reference.
 *
 * Under bf16 (kernels/bf16.cuh) the step is the fp32 one on the fp32 master weights, with
 * fp32 m and v, and writes the bf16 copy that the forward and backward passes read, rounded
 * to nearest even from the updated master. The gradient it reads is fp32 in both backends:
 * each entry is a sum over every token of the batch (and, across processes, a sum of sums),
 * which the backward accumulates, the all-reduce adds and the gradient norm and clip read as
 * the fp32 backend's (kernels/global_norm.cuh, unchanged); a bf16 gradient would round every
 * update's direction by up to 2^-8, for 2 bytes a parameter (220 MB at BERT-base's 110M,
 * under 1% of its training step's memory).
 */
#ifndef ZELO_KERNELS_ADAMW_CUH
#define ZELO_KERNELS_ADAMW_CUH

#include "kernels/bf16.cuh"

// param (n): the weights, or under bf16 their fp32 master; param_bf16 (n): NULL, or the bf16
// copy, written from the updated master. Round to nearest even rather than stochastically:
// an update smaller than half a bf16 ulp is not lost, it stays in the master until the
// master's rounding moves, so the copy tracks the master within 2^-8 without any random state
// (deterministic, the same on every process, and a checkpoint of the master restores it exactly)
__global__ void adamw_kernel1(float* param, bf16* param_bf16, float* m, float* v, const float* grad, size_t n,
                              float lr, float beta1, float beta2, float bias_correction1, float bias_correction2,
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
    float p = param[i];
    p -= lr * (m_hat / (sqrtf(v_hat) + eps) + decay * p);
    param[i] = p;
    if (param_bf16 != NULL) { param_bf16[i] = __float2bfloat16_rn(p); }
}

// params (fp32 master), params_bf16 (its bf16 copy, or NULL), grads, m, v: the flat buffers
// (device); sizes (host): floats of each tensor in buffer order; decays (host): whether tensor
// i decays (parameter_tensor_decays); step counts from 1
void adamw_update_cuda(float* params, bf16* params_bf16, float* m, float* v, const float* grads,
                       const size_t* sizes, const int* decays, int num_tensors, float lr, float beta1,
                       float beta2, float eps, float weight_decay, int step, cudaStream_t stream) {
    // on the host in fp32 with powf, exactly as the reference
    float bias_correction1 = 1.0f - powf(beta1, (float)step);
    float bias_correction2 = 1.0f - powf(beta2, (float)step);
    const int block_size = 256;
    size_t offset = 0;
    for (int i = 0; i < num_tensors; i++) {
        size_t n = sizes[i];
        if (n > 0) {
            float decay = decays[i] ? weight_decay : 0.0f;
            adamw_kernel1<<<(int)CEIL_DIV(n, (size_t)block_size), block_size, 0, stream>>>(params + offset, params_bf16 != NULL ? params_bf16 + offset : NULL, m + offset, v + offset, grads + offset, n, lr, beta1, beta2, bias_correction1, bias_correction2, eps, decay);
            cudaCheck(cudaGetLastError());
        }
        offset += n;
    }
}

// the fp32 backend's step: params (the weights), grads, m, v as above, no bf16 copy
void adamw_update_cuda(float* params, float* m, float* v, const float* grads, const size_t* sizes,
                       const int* decays, int num_tensors, float lr, float beta1, float beta2, float eps,
                       float weight_decay, int step, cudaStream_t stream) {
    adamw_update_cuda(params, (bf16*)NULL, m, v, grads, sizes, decays, num_tensors, lr, beta1, beta2, eps,
                      weight_decay, step, stream);
}

#endif // ZELO_KERNELS_ADAMW_CUH
