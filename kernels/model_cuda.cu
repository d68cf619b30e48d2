/*
 * kernels/model_cuda.cu — the forward pass of the BERT cross-encoder on the device, layer by
 * layer in model.c's order (forward_pass there), each layer one launcher of a kernels/ header.
 * See kernels/model_cuda.h.
 */
#include <string.h>
#include "kernels/model_cuda.h"
#include "kernels/common.cuh"
#include "kernels/embeddings.cuh"
#include "kernels/layernorm.cuh"
#include "kernels/gelu.cuh"
#include "kernels/matmul.cuh"
#include "kernels/attention.cuh"
#include "kernels/pooler.cuh"
#include "common/utils.h"

void bert_cuda_build(BertModelCuda* model, const BertConfig* config) {
    memset(model, 0, sizeof(*model));
    model->config = *config;
    fill_in_parameter_sizes(model->param_sizes, config);  // dies on an invalid config
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) { model->num_parameters += model->param_sizes[i]; }
    cudaCheck(cudaMalloc((void**)&model->params_memory, model->num_parameters * sizeof(float)));
    // the tensors one after another in model.h's order, as malloc_and_point_parameters does
    float** tensors = (float**)&model->params;
    float* next = model->params_memory;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        tensors[i] = next;
        next += model->param_sizes[i];
    }
    cudaCheck(cudaStreamCreate(&model->stream));
    matmul_setup();
}

void bert_cuda_upload_parameters(BertModelCuda* model, const float* params) {
    cudaCheck(cudaMemcpy(model->params_memory, params, model->num_parameters * sizeof(float), cudaMemcpyHostToDevice));
}

// (re)allocates two device buffers of n ints each when *capacity is below n
static void reserve_ints(int** a, int** b, int* capacity, int n) {
    if (*capacity >= n) { return; }
    cudaCheck(cudaFree(*a));
    cudaCheck(cudaFree(*b));
    cudaCheck(cudaMalloc((void**)a, (size_t)n * sizeof(int)));
    cudaCheck(cudaMalloc((void**)b, (size_t)n * sizeof(int)));
    *capacity = n;
}

// takes the batch: validates it, copies it to the device, computes the attention offsets and
// makes room for the activations
static void set_batch(BertModelCuda* model, const int* ids, const int* types, const int* seq_starts, int S) {
    const BertConfig* cfg = &model->config;
    validate_batch(cfg, ids, types, seq_starts, S);
    int N = seq_starts[S];
    int* att_offsets = (int*)mallocCheck((size_t)(S + 1) * sizeof(int));
    size_t A = 0;
    int max_T = 0;
    for (int s = 0; s < S; s++) {
        size_t T = (size_t)(seq_starts[s + 1] - seq_starts[s]);
        att_offsets[s] = (int)A;
        A += (size_t)cfg->num_heads * T * T;
        if (A > INT32_MAX) { die("bert_cuda_forward: batch too large (attention needs %zu floats per layer)", A); }
        if ((int)T > max_T) { max_T = (int)T; }
    }
    att_offsets[S] = (int)A;
    reserve_ints(&model->seq_starts, &model->att_offsets, &model->seq_capacity, S + 1);
    reserve_ints(&model->inputs, &model->types, &model->token_capacity, N);
    cudaCheck(cudaMemcpy(model->seq_starts, seq_starts, (size_t)(S + 1) * sizeof(int), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(model->att_offsets, att_offsets, (size_t)(S + 1) * sizeof(int), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(model->inputs, ids, (size_t)N * sizeof(int), cudaMemcpyHostToDevice));
    if (types != NULL) {
        cudaCheck(cudaMemcpy(model->types, types, (size_t)N * sizeof(int), cudaMemcpyHostToDevice));
    } else {
        cudaCheck(cudaMemset(model->types, 0, (size_t)N * sizeof(int)));
    }
    free(att_offsets);
    model->num_tokens = N;
    model->num_seqs = S;
    model->att_size = (int)A;
    model->max_T = max_T;

    size_t sizes[NUM_ACTIVATION_TENSORS];
    fill_in_activation_sizes(sizes, cfg, N, S, A, cfg->num_layers);
    size_t total = 0;
    for (int i = 0; i < NUM_ACTIVATION_TENSORS; i++) { total += sizes[i]; }
    if (total > model->acts_capacity) {
        cudaCheck(cudaFree(model->acts_memory));
        cudaCheck(cudaMalloc((void**)&model->acts_memory, total * sizeof(float)));
        model->acts_capacity = total;
    }
    float** tensors = (float**)&model->acts;
    float* next = model->acts_memory;
    for (int i = 0; i < NUM_ACTIVATION_TENSORS; i++) {
        tensors[i] = next;
        next += sizes[i];
    }
    model->logits = (float*)reallocCheck(model->logits, (size_t)S * cfg->num_labels * sizeof(float));
    model->embeddings = (float*)reallocCheck(model->embeddings, (size_t)S * cfg->hidden_size * sizeof(float));
}

void bert_cuda_forward(BertModelCuda* model, const int* ids, const int* types, const int* seq_starts, int num_seqs) {
    set_batch(model, ids, types, seq_starts, num_seqs);
    const BertConfig* cfg = &model->config;
    int N = model->num_tokens, S = model->num_seqs, max_T = model->max_T;
    int C = cfg->hidden_size, NH = cfg->num_heads, I = cfg->intermediate_size, L = cfg->num_layers;
    size_t A = (size_t)model->att_size, NC = (size_t)N * C;
    float eps = cfg->layer_norm_eps;
    cudaStream_t stream = model->stream;
    ParameterTensors p = model->params;
    ActivationTensors a = model->acts;

    embeddings_forward_cuda(a.emb, model->inputs, model->types, model->seq_starts, S, p.wte, p.wpe, p.wtt, N, C, stream);
    layernorm_forward_cuda(a.emb_ln, a.emb_mean, a.emb_rstd, a.emb, p.emb_lnw, p.emb_lnb, N, C, eps, stream);
    for (int l = 0; l < L; l++) {
        const float* x = l == 0 ? a.emb_ln : a.ln2 + (size_t)(l - 1) * NC;  // (N, C) the layer's input
        float* qkv = a.qkv + (size_t)l * N * 3 * C;
        float* att = a.att + (size_t)l * A;
        float* atty = a.atty + (size_t)l * NC;
        float* res1 = a.res1 + (size_t)l * NC;
        float* ln1 = a.ln1 + (size_t)l * NC;
        float* fch = a.fch + (size_t)l * N * I;
        float* fch_gelu = a.fch_gelu + (size_t)l * N * I;
        float* res2 = a.res2 + (size_t)l * NC;
        float* ln2 = a.ln2 + (size_t)l * NC;
        linear_forward_cuda(qkv, x, p.qkvw + (size_t)l * 3 * C * C, p.qkvb + (size_t)l * 3 * C, N, C, 3 * C, stream);
        attention_forward_cuda(atty, att, qkv, model->seq_starts, model->att_offsets, S, N, max_T, C, NH, stream);
        // res1 first gets the dense output, then the residual is added in place, as the reference
        linear_forward_cuda(res1, atty, p.attprojw + (size_t)l * C * C, p.attprojb + (size_t)l * C, N, C, C, stream);
        residual_forward_cuda(res1, res1, x, NC, stream);
        layernorm_forward_cuda(ln1, a.ln1_mean + (size_t)l * N, a.ln1_rstd + (size_t)l * N, res1,
                               p.ln1w + (size_t)l * C, p.ln1b + (size_t)l * C, N, C, eps, stream);
        linear_forward_cuda(fch, ln1, p.fcw + (size_t)l * I * C, p.fcb + (size_t)l * I, N, C, I, stream);
        gelu_forward_cuda(fch_gelu, fch, (size_t)N * I, stream);
        linear_forward_cuda(res2, fch_gelu, p.fcprojw + (size_t)l * C * I, p.fcprojb + (size_t)l * C, N, I, C, stream);
        residual_forward_cuda(res2, res2, ln1, NC, stream);
        layernorm_forward_cuda(ln2, a.ln2_mean + (size_t)l * N, a.ln2_rstd + (size_t)l * N, res2,
                               p.ln2w + (size_t)l * C, p.ln2b + (size_t)l * C, N, C, eps, stream);
    }
    const float* x = L == 0 ? a.emb_ln : a.ln2 + (size_t)(L - 1) * NC;

    // the two heads: the cross-encoder score and the mean-pooled sentence embedding
    cls_gather_forward_cuda(a.cls, x, model->seq_starts, S, C, stream);
    linear_forward_cuda(a.pooled, a.cls, p.poolw, p.poolb, S, C, C, stream);
    tanh_forward_cuda(a.pooled, a.pooled, (size_t)S * C, stream);
    linear_forward_cuda(a.logits, a.pooled, p.clsw, p.clsb, S, C, cfg->num_labels, stream);
    meanpool_forward_cuda(a.embeddings, x, model->seq_starts, S, C, stream);
    cudaCheck(cudaStreamSynchronize(stream));
    cudaCheck(cudaMemcpy(model->logits, a.logits, (size_t)S * cfg->num_labels * sizeof(float), cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(model->embeddings, a.embeddings, (size_t)S * C * sizeof(float), cudaMemcpyDeviceToHost));
}

void bert_cuda_free(BertModelCuda* model) {
    cudaCheck(cudaFree(model->params_memory));
    cudaCheck(cudaFree(model->acts_memory));
    cudaCheck(cudaFree(model->seq_starts));
    cudaCheck(cudaFree(model->att_offsets));
    cudaCheck(cudaFree(model->inputs));
    cudaCheck(cudaFree(model->types));
    cudaCheck(cudaStreamDestroy(model->stream));
    free(model->logits);
    free(model->embeddings);
    memset(model, 0, sizeof(*model));
}
