/*
 * kernels/model_cuda.cu — the forward and backward passes of the BERT cross-encoder on the
 * device, layer by layer in model.c's order (forward_pass, bert_backward there), each layer
 * one launcher of a kernels/ header; the gradient norm, clip and AdamW over the flat buffers.
 * See kernels/model_cuda.h.
 */
#include <stddef.h>
#include <string.h>
#include "kernels/model_cuda.h"
#include "kernels/common.cuh"
#include "kernels/embeddings.cuh"
#include "kernels/layernorm.cuh"
#include "kernels/gelu.cuh"
#include "kernels/matmul.cuh"
#include "kernels/attention.cuh"
#include "kernels/pooler.cuh"
#include "kernels/adamw.cuh"
#include "kernels/global_norm.cuh"
#include "kernels/zelo_fit.cuh"
#include "common/utils.h"

// points each of the n pointers at consecutive slices of memory (device or host alike), as
// model.c lays out its parameters, activations and scratch
static void point_tensors_in(float** ptrs, float* memory, const size_t* sizes, int n) {
    for (int i = 0; i < n; i++) {
        ptrs[i] = memory;
        memory += sizes[i];
    }
}

static size_t sum_of(const size_t* sizes, int n) {
    size_t total = 0;
    for (int i = 0; i < n; i++) { total += sizes[i]; }
    return total;
}

// points ptrs (n) into the device buffer *memory, first growing it to the sum of sizes when
// its *capacity (floats) is below; the capacity only grows, so a training loop settles
static void grow_and_point(float** memory, size_t* capacity, float** ptrs, const size_t* sizes, int n) {
    size_t total = sum_of(sizes, n);
    if (total > *capacity) {
        cudaCheck(cudaFree(*memory));
        cudaCheck(cudaMalloc((void**)memory, total * sizeof(float)));
        *capacity = total;
    }
    point_tensors_in(ptrs, *memory, sizes, n);
}

// the parameter tensors' sizes (NUM_PARAMETER_TENSORS) for a config and packing, the split
// packing's gates, (L, NH), last as bert_split_segments lays them out; returns their sum. Dies
// on an invalid config
static size_t device_parameter_sizes(size_t* sizes, const BertConfig* config, Packing packing) {
    fill_in_parameter_sizes(sizes, config);
    if (packing == PACKING_SPLIT) { sizes[XGATE_TENSOR] = split_gate_count(config); }
    return sum_of(sizes, NUM_PARAMETER_TENSORS);
}

// the activations the device keeps for N tokens, S sequences and A attention floats per layer:
// model.h's layout with every layer's, except ln1, fch_gelu and ln2, of which it keeps one
// layer's, the forward's current one. The backward pass recomputes them layer by layer from
// what is kept (res1, fch, res2 and the LayerNorms' mean and rstd), the forward's bytes: per
// layer, N x (I + 2C) floats fewer, at I = 4C 6C of the 16C per token a layer kept beside its
// attention probabilities. Returns the floats in all
#define ACTIVATION_INDEX(field) (offsetof(ActivationTensors, field) / sizeof(float*))
static size_t device_activation_sizes(size_t* sizes, const BertConfig* cfg, size_t N, size_t S, size_t A) {
    fill_in_activation_sizes(sizes, cfg, N, S, A, cfg->num_layers);
    size_t one_layer[NUM_ACTIVATION_TENSORS];
    fill_in_activation_sizes(one_layer, cfg, N, S, A, 1);
    const size_t recomputed[3] = {ACTIVATION_INDEX(ln1), ACTIVATION_INDEX(fch_gelu), ACTIVATION_INDEX(ln2)};
    for (size_t i : recomputed) { sizes[i] = one_layer[i]; }
    return sum_of(sizes, NUM_ACTIVATION_TENSORS);
}

// the backward pass's scratch, as model.c's bert_backward: gradients of one layer's
// activations, reused by every layer. Returns the floats in all
enum { DH, DX, DRES2, DLN1, DRES1, DATTY, DFFN, DQKV, DATT, DHEADS, DOUTPUTS, NUM_SCRATCH };
static size_t backward_scratch_sizes(size_t* sizes, const BertConfig* cfg, size_t N, size_t S, size_t A) {
    size_t C = cfg->hidden_size, NC = N * C;
    size_t scratch_sizes[NUM_SCRATCH] = {
        NC, NC, NC, NC, NC, NC, N * cfg->intermediate_size, N * 3 * C, A,
        S * C * 2,                                  // dcls and dpooled, or the cosine head's dsegmeans
        S * (size_t)cfg->num_labels + S * C,        // the caller's dlogits and dembeddings
    };
    memcpy(sizes, scratch_sizes, sizeof(scratch_sizes));
    return sum_of(sizes, NUM_SCRATCH);
}

void bert_cuda_build(BertModelCuda* model, const BertConfig* config, Packing packing) {
    memset(model, 0, sizeof(*model));
    model->config = *config;
    model->packing = packing;
    model->num_parameters = device_parameter_sizes(model->param_sizes, config, packing);
    cudaCheck(cudaMalloc((void**)&model->params_memory, model->num_parameters * sizeof(float)));
    point_tensors_in((float**)&model->params, model->params_memory, model->param_sizes, NUM_PARAMETER_TENSORS);
    cudaCheck(cudaStreamCreate(&model->stream));
    matmul_setup();
}

void bert_cuda_upload_parameters(BertModelCuda* model, const float* params) {
    cudaCheck(cudaMemcpy(model->params_memory, params, model->num_parameters * sizeof(float), cudaMemcpyHostToDevice));
}

void bert_cuda_download_parameters(const BertModelCuda* model, float* params) {
    cudaCheck(cudaStreamSynchronize(model->stream));
    cudaCheck(cudaMemcpy(params, model->params_memory, model->num_parameters * sizeof(float), cudaMemcpyDeviceToHost));
}

// allocates the AdamW state (zeroed) on first use
static void ensure_optimizer(BertModelCuda* model) {
    if (model->m_memory != NULL) { return; }
    size_t n = model->num_parameters;
    cudaCheck(cudaMalloc((void**)&model->m_memory, n * sizeof(float)));
    cudaCheck(cudaMalloc((void**)&model->v_memory, n * sizeof(float)));
    cudaCheck(cudaMemset(model->m_memory, 0, n * sizeof(float)));
    cudaCheck(cudaMemset(model->v_memory, 0, n * sizeof(float)));
}

void bert_cuda_upload_optimizer(BertModelCuda* model, const float* m, const float* v) {
    ensure_optimizer(model);
    cudaCheck(cudaMemcpy(model->m_memory, m, model->num_parameters * sizeof(float), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(model->v_memory, v, model->num_parameters * sizeof(float), cudaMemcpyHostToDevice));
}

int bert_cuda_download_optimizer(const BertModelCuda* model, float* m, float* v) {
    if (model->m_memory == NULL) { return 0; }
    cudaCheck(cudaStreamSynchronize(model->stream));
    cudaCheck(cudaMemcpy(m, model->m_memory, model->num_parameters * sizeof(float), cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(v, model->v_memory, model->num_parameters * sizeof(float), cudaMemcpyDeviceToHost));
    return 1;
}

int bert_cuda_device_count(void) {
    int n = 0;
    // no driver or no GPU is an error here, and means the CPU: clear it so no later check sees it
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}

void bert_cuda_device_name(char* name, size_t n) {
    int device;
    cudaDeviceProp prop;
    cudaCheck(cudaGetDevice(&device));
    cudaCheck(cudaGetDeviceProperties(&prop, device));
    snprintf(name, n, "%s", prop.name);
}

// replaces *buffer by a device buffer of n ints (contents undefined)
static void reallocate_device_ints(int** buffer, size_t n) {
    cudaCheck(cudaFree(*buffer));
    cudaCheck(cudaMalloc((void**)buffer, n * sizeof(int)));
}

// takes the batch: validates it, copies it to the device with its layout under the packing
// (packing_layout), computes the attention offsets and makes room for the activations
static void set_batch(BertModelCuda* model, const int* ids, const int* types, const int* seq_starts, int S) {
    const BertConfig* cfg = &model->config;
    validate_batch(cfg, ids, types, seq_starts, S);
    int N = seq_starts[S];
    int* att_offsets = (int*)mallocCheck((size_t)(S + 1) * sizeof(int));
    int* split_at = (int*)mallocCheck((size_t)S * sizeof(int));
    int* piece_starts = (int*)mallocCheck((size_t)(2 * S + 1) * sizeof(int));
    int* embed_types = (int*)mallocCheck((size_t)N * sizeof(int));
    int num_pieces = packing_layout(split_at, piece_starts, embed_types, types, seq_starts, S, model->packing);
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
    if (model->seq_capacity < S + 1) {
        reallocate_device_ints(&model->seq_starts, (size_t)S + 1);
        reallocate_device_ints(&model->att_offsets, (size_t)S + 1);
        reallocate_device_ints(&model->split_at, S);
        reallocate_device_ints(&model->piece_starts, (size_t)2 * S + 1);
        model->seq_capacity = S + 1;
    }
    if (model->token_capacity < N) {
        reallocate_device_ints(&model->inputs, N);
        reallocate_device_ints(&model->types, N);
        reallocate_device_ints(&model->bucket_tokens, N);
        reallocate_device_ints(&model->bucket_starts, (size_t)N + 1);
        reallocate_device_ints(&model->bucket_ids, N);
        reallocate_device_ints(&model->embed_types, N);
        if (model->packing == PACKING_SPLIT) {
            cudaCheck(cudaFree(model->dgate_rows));
            cudaCheck(cudaMalloc((void**)&model->dgate_rows, (size_t)N * cfg->num_heads * sizeof(double)));
        }
        model->token_capacity = N;
    }
    cudaCheck(cudaMemcpy(model->seq_starts, seq_starts, (size_t)(S + 1) * sizeof(int), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(model->att_offsets, att_offsets, (size_t)(S + 1) * sizeof(int), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(model->split_at, split_at, (size_t)S * sizeof(int), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(model->piece_starts, piece_starts, (size_t)(num_pieces + 1) * sizeof(int), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(model->embed_types, embed_types, (size_t)N * sizeof(int), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(model->inputs, ids, (size_t)N * sizeof(int), cudaMemcpyHostToDevice));
    if (types != NULL) {
        cudaCheck(cudaMemcpy(model->types, types, (size_t)N * sizeof(int), cudaMemcpyHostToDevice));
    } else {
        cudaCheck(cudaMemset(model->types, 0, (size_t)N * sizeof(int)));
    }
    // the word embedding gradient's grouping of tokens by id (see kernels/embeddings.cuh)
    int* tokens = (int*)mallocCheck((size_t)N * sizeof(int));
    int* starts = (int*)mallocCheck((size_t)(N + 1) * sizeof(int));
    int* bucket_ids = (int*)mallocCheck((size_t)N * sizeof(int));
    int* counts = (int*)mallocCheck((size_t)cfg->vocab_size * sizeof(int));
    int U = embedding_buckets(tokens, starts, bucket_ids, counts, ids, N, cfg->vocab_size);
    cudaCheck(cudaMemcpy(model->bucket_tokens, tokens, (size_t)N * sizeof(int), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(model->bucket_starts, starts, (size_t)(U + 1) * sizeof(int), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(model->bucket_ids, bucket_ids, (size_t)U * sizeof(int), cudaMemcpyHostToDevice));
    model->num_buckets = U;
    free(tokens);
    free(starts);
    free(bucket_ids);
    free(counts);
    free(att_offsets);
    free(split_at);
    free(piece_starts);
    free(embed_types);
    model->num_tokens = N;
    model->num_seqs = S;
    model->num_pieces = num_pieces;
    model->att_size = (int)A;
    model->max_T = max_T;

    size_t sizes[NUM_ACTIVATION_TENSORS];
    device_activation_sizes(sizes, cfg, N, S, A);
    grow_and_point(&model->acts_memory, &model->acts_capacity, (float**)&model->acts, sizes, NUM_ACTIVATION_TENSORS);
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
    int split = model->packing == PACKING_SPLIT;
    cudaStream_t stream = model->stream;
    ParameterTensors p = model->params;
    ActivationTensors a = model->acts;

    embeddings_forward_cuda(a.emb, model->inputs, model->embed_types, model->piece_starts, model->num_pieces, p.wte, p.wpe,
                            p.wtt, N, C, stream);
    layernorm_forward_cuda(a.emb_ln, a.emb_mean, a.emb_rstd, a.emb, p.emb_lnw, p.emb_lnb, N, C, eps, stream);
    for (int l = 0; l < L; l++) {
        // ln1, fch_gelu and ln2 hold this layer's alone (device_activation_sizes): ln2 holds
        // the layer's input until the first LayerNorm's residual has read it, then its output
        const float* x = l == 0 ? a.emb_ln : a.ln2;  // (N, C)
        float* qkv = a.qkv + (size_t)l * N * 3 * C;
        float* att = a.att + (size_t)l * A;
        float* atty = a.atty + (size_t)l * NC;
        float* res1 = a.res1 + (size_t)l * NC;
        float* ln1 = a.ln1;
        float* fch = a.fch + (size_t)l * N * I;
        float* fch_gelu = a.fch_gelu;
        float* res2 = a.res2 + (size_t)l * NC;
        float* ln2 = a.ln2;
        linear_forward_cuda(qkv, x, p.qkvw + (size_t)l * 3 * C * C, p.qkvb + (size_t)l * 3 * C, N, C, 3 * C, stream);
        attention_forward_cuda(atty, att, qkv, model->seq_starts, model->att_offsets, model->split_at,
                               split ? p.xgate + (size_t)l * NH : NULL, S, N, max_T, C, NH, stream);
        // res1 first gets the dense output, then the residual is added in place, as the reference
        linear_forward_cuda(res1, atty, p.attprojw + (size_t)l * C * C, p.attprojb + (size_t)l * C, N, C, C, stream);
        residual_layernorm_forward_cuda(res1, ln1, a.ln1_mean + (size_t)l * N, a.ln1_rstd + (size_t)l * N, res1, x,
                                        p.ln1w + (size_t)l * C, p.ln1b + (size_t)l * C, N, C, eps, stream);
        linear_forward_cuda(fch, ln1, p.fcw + (size_t)l * I * C, p.fcb + (size_t)l * I, N, C, I, stream);
        gelu_forward_cuda(fch_gelu, fch, (size_t)N * I, stream);
        linear_forward_cuda(res2, fch_gelu, p.fcprojw + (size_t)l * C * I, p.fcprojb + (size_t)l * C, N, I, C, stream);
        residual_layernorm_forward_cuda(res2, ln2, a.ln2_mean + (size_t)l * N, a.ln2_rstd + (size_t)l * N, res2, ln1,
                                        p.ln2w + (size_t)l * C, p.ln2b + (size_t)l * C, N, C, eps, stream);
    }
    const float* x = L == 0 ? a.emb_ln : a.ln2;

    // the two heads: the cross-encoder score and the mean-pooled sentence embedding
    if (model->score_head == SCORE_HEAD_COSINE) {
        if (cfg->num_labels != 1) { die("the cosine score head makes one logit; the model has %d labels", cfg->num_labels); }
        segment_means_forward_cuda(a.segmeans, x, model->types, model->seq_starts, S, C, split, stream);
        cosine_score_forward_cuda(a.logits, a.segmeans, S, C, model->cosine_scale, stream);
    } else {
        cls_gather_forward_cuda(a.cls, x, model->seq_starts, S, C, stream);
        linear_forward_cuda(a.pooled, a.cls, p.poolw, p.poolb, S, C, C, stream);
        tanh_forward_cuda(a.pooled, a.pooled, (size_t)S * C, stream);
        linear_forward_cuda(a.logits, a.pooled, p.clsw, p.clsb, S, C, cfg->num_labels, stream);
    }
    meanpool_forward_cuda(a.embeddings, x, model->seq_starts, S, C, stream);
    cudaCheck(cudaStreamSynchronize(stream));
    cudaCheck(cudaMemcpy(model->logits, a.logits, (size_t)S * cfg->num_labels * sizeof(float), cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(model->embeddings, a.embeddings, (size_t)S * C * sizeof(float), cudaMemcpyDeviceToHost));
}

// allocates the gradients (zeroed) on first use, pointed as the parameters are
static void ensure_grads(BertModelCuda* model) {
    if (model->grads_memory != NULL) { return; }
    cudaCheck(cudaMalloc((void**)&model->grads_memory, model->num_parameters * sizeof(float)));
    cudaCheck(cudaMemset(model->grads_memory, 0, model->num_parameters * sizeof(float)));
    point_tensors_in((float**)&model->grads, model->grads_memory, model->param_sizes, NUM_PARAMETER_TENSORS);
}

void bert_cuda_zero_grad(BertModelCuda* model) {
    if (model->grads_memory != NULL) {
        cudaCheck(cudaMemsetAsync(model->grads_memory, 0, model->num_parameters * sizeof(float), model->stream));
    }
}

// a device buffer of n floats set to zero, in stream order
static void zero_floats(float* x, size_t n, cudaStream_t stream) {
    cudaCheck(cudaMemsetAsync(x, 0, n * sizeof(float), stream));
}

void bert_cuda_backward(BertModelCuda* model, const float* dlogits, const float* dembeddings) {
    if (model->num_tokens == 0) { die("bert_cuda_backward: needs the activations of a bert_cuda_forward call"); }
    ensure_grads(model);
    const BertConfig* cfg = &model->config;
    int N = model->num_tokens, S = model->num_seqs, max_T = model->max_T;
    int C = cfg->hidden_size, NH = cfg->num_heads, I = cfg->intermediate_size, L = cfg->num_layers;
    int NL = cfg->num_labels;
    size_t A = (size_t)model->att_size, NC = (size_t)N * C;
    cudaStream_t stream = model->stream;
    int split = model->packing == PACKING_SPLIT;

    size_t scratch_sizes[NUM_SCRATCH];
    backward_scratch_sizes(scratch_sizes, cfg, N, S, A);
    float* buffers[NUM_SCRATCH];
    grow_and_point(&model->scratch_memory, &model->scratch_capacity, buffers, scratch_sizes, NUM_SCRATCH);
    float *dres2 = buffers[DRES2], *dln1 = buffers[DLN1], *dres1 = buffers[DRES1], *datty = buffers[DATTY];
    float *dffn = buffers[DFFN], *dqkv = buffers[DQKV], *datt = buffers[DATT];
    float *dcls = buffers[DHEADS], *dpooled = buffers[DHEADS] + (size_t)S * C;
    float *d_dlogits = buffers[DOUTPUTS], *d_dembeddings = buffers[DOUTPUTS] + (size_t)S * NL;

    ParameterTensors p = model->params, g = model->grads;
    ActivationTensors a = model->acts;

    float* dh = buffers[DH];
    zero_floats(dh, NC, stream);
    if (dlogits != NULL && model->score_head == SCORE_HEAD_COSINE) {
        cudaCheck(cudaMemcpyAsync(d_dlogits, dlogits, (size_t)S * NL * sizeof(float), cudaMemcpyHostToDevice, stream));
        cosine_score_backward_cuda(dcls, d_dlogits, a.segmeans, S, C, model->cosine_scale, stream);
        segment_means_backward_cuda(dh, dcls, model->types, model->seq_starts, S, C, split, stream);
    } else if (dlogits != NULL) {
        cudaCheck(cudaMemcpyAsync(d_dlogits, dlogits, (size_t)S * NL * sizeof(float), cudaMemcpyHostToDevice, stream));
        zero_floats(dpooled, (size_t)S * C, stream);
        linear_backward_cuda(dpooled, g.clsw, g.clsb, d_dlogits, a.pooled, p.clsw, S, C, NL, stream);
        tanh_backward_inplace_cuda(dpooled, a.pooled, (size_t)S * C, stream);
        zero_floats(dcls, (size_t)S * C, stream);
        linear_backward_cuda(dcls, g.poolw, g.poolb, dpooled, a.cls, p.poolw, S, C, C, stream);
        cls_gather_backward_cuda(dh, dcls, model->seq_starts, S, C, stream);
    }
    if (dembeddings != NULL) {
        cudaCheck(cudaMemcpyAsync(d_dembeddings, dembeddings, (size_t)S * C * sizeof(float), cudaMemcpyHostToDevice, stream));
        meanpool_backward_cuda(dh, d_dembeddings, model->seq_starts, S, N, C, stream);
    }

    for (int l = L - 1; l >= 0; l--) {
        // the gradient wrt a layer's input is the next (lower) layer's dh: the two buffers
        // trade places every layer
        dh = buffers[(L - 1 - l) % 2 == 0 ? DH : DX];
        float* dx = buffers[(L - 1 - l) % 2 == 0 ? DX : DH];
        const float* qkv = a.qkv + (size_t)l * N * 3 * C;
        const float* att = a.att + (size_t)l * A;
        const float* atty = a.atty + (size_t)l * NC;
        const float* res1 = a.res1 + (size_t)l * NC;
        const float* fch = a.fch + (size_t)l * N * I;
        const float* res2 = a.res2 + (size_t)l * NC;
        // dh = d ln2  ->  dres2. res2 = ln1 + fcproj(gelu(fc(ln1))): d ln1 gets the residual
        // (the same gradient, written by the same kernel), then the FFN path
        residual_layernorm_backward_cuda(dres2, dln1, g.ln2w + (size_t)l * C, g.ln2b + (size_t)l * C, dh, res2,
                                         p.ln2w + (size_t)l * C, a.ln2_mean + (size_t)l * N, a.ln2_rstd + (size_t)l * N,
                                         N, C, stream);
        // GELU's output and ln1, which the forward kept for its last layer only, recomputed
        // by the forward's own arithmetic: the bytes it had
        gelu_forward_cuda(a.fch_gelu, fch, (size_t)N * I, stream);
        zero_floats(dffn, (size_t)N * I, stream);
        linear_backward_cuda(dffn, g.fcprojw + (size_t)l * C * I, g.fcprojb + (size_t)l * C, dres2, a.fch_gelu,
                             p.fcprojw + (size_t)l * C * I, N, I, C, stream);
        // fc's bias gradient is summed by GELU's backward, as it writes dffn
        gelu_backward_bias_cuda(dffn, g.fcb + (size_t)l * I, fch, N, I, stream);
        layernorm_recompute_cuda(a.ln1, res1, a.ln1_mean + (size_t)l * N, a.ln1_rstd + (size_t)l * N,
                                 p.ln1w + (size_t)l * C, p.ln1b + (size_t)l * C, N, C, stream);
        linear_backward_cuda(dln1, g.fcw + (size_t)l * I * C, NULL, dffn, a.ln1, p.fcw + (size_t)l * I * C, N, C, I, stream);
        // d ln1  ->  dres1. res1 = x + attproj(attention(qkv(x))): dx gets the residual, then
        // the attention path
        residual_layernorm_backward_cuda(dres1, dx, g.ln1w + (size_t)l * C, g.ln1b + (size_t)l * C, dln1, res1,
                                         p.ln1w + (size_t)l * C, a.ln1_mean + (size_t)l * N, a.ln1_rstd + (size_t)l * N,
                                         N, C, stream);
        zero_floats(datty, NC, stream);
        linear_backward_cuda(datty, g.attprojw + (size_t)l * C * C, g.attprojb + (size_t)l * C, dres1, atty,
                             p.attprojw + (size_t)l * C * C, N, C, C, stream);
        attention_backward_cuda(dqkv, datt, split ? g.xgate + (size_t)l * NH : NULL, model->dgate_rows, datty, qkv, att,
                                model->seq_starts, model->att_offsets, model->split_at, S, N, max_T, C, NH, stream);
        // the layer's input: emb_ln, or the layer below's output recomputed as ln1 was
        const float* x = a.emb_ln;
        if (l > 0) {
            layernorm_recompute_cuda(a.ln2, a.res2 + (size_t)(l - 1) * NC, a.ln2_mean + (size_t)(l - 1) * N,
                                     a.ln2_rstd + (size_t)(l - 1) * N, p.ln2w + (size_t)(l - 1) * C,
                                     p.ln2b + (size_t)(l - 1) * C, N, C, stream);
            x = a.ln2;
        }
        linear_backward_cuda(dx, g.qkvw + (size_t)l * 3 * C * C, g.qkvb + (size_t)l * 3 * C, dqkv, x,
                             p.qkvw + (size_t)l * 3 * C * C, N, C, 3 * C, stream);
    }
    // the gradient wrt the input of layer 0: where the last layer's dx was
    dh = buffers[L % 2 == 1 ? DX : DH];
    float* da = dres2;
    zero_floats(da, NC, stream);
    layernorm_backward_cuda(da, g.emb_lnw, g.emb_lnb, dh, a.emb, p.emb_lnw, a.emb_mean, a.emb_rstd, N, C, stream);
    embeddings_backward_cuda(g.wte, g.wpe, g.wtt, da, model->bucket_tokens, model->bucket_starts, model->bucket_ids,
                             model->num_buckets, model->embed_types, model->piece_starts, model->num_pieces, max_T, N,
                             cfg->type_vocab_size, C, stream);
    cudaCheck(cudaStreamSynchronize(stream));  // the caller's dlogits and dembeddings may go now
}

// the gradient norm's sums over n parameters: the whole, then one per chunk
static size_t norm_scratch_bytes(size_t n) {
    return (1 + global_norm_num_chunks(n)) * sizeof(double);
}

float bert_cuda_clip_grad_norm(BertModelCuda* model, float max_norm) {
    if (model->grads_memory == NULL) { die("bert_cuda_clip_grad_norm: no gradients (call bert_cuda_backward first)"); }
    size_t n = model->num_parameters;
    if (model->norm_scratch == NULL) { cudaCheck(cudaMalloc((void**)&model->norm_scratch, norm_scratch_bytes(n))); }
    global_norm_squared_cuda(model->norm_scratch, model->norm_scratch + 1, model->grads_memory, n, model->stream);
    double norm_squared;
    cudaCheck(cudaStreamSynchronize(model->stream));
    cudaCheck(cudaMemcpy(&norm_squared, model->norm_scratch, sizeof(double), cudaMemcpyDeviceToHost));
    double norm = sqrt(norm_squared);
    if (!isfinite(norm)) { die("bert_cuda_clip_grad_norm: the gradient norm is %f (NaN or overflow in the backward pass)", norm); }
    clip_cuda(model->grads_memory, n, model->norm_scratch, max_norm, model->stream);
    return (float)norm;
}

void bert_cuda_adamw_update(BertModelCuda* model, float lr, float head_lr_scale, float gate_lr_scale, float beta1,
                            float beta2, float eps, float weight_decay, int step) {
    if (model->grads_memory == NULL) { die("bert_cuda_adamw_update: no gradients (call bert_cuda_backward first)"); }
    if (step < 1) { die("bert_cuda_adamw_update: step counts from 1 (got %d)", step); }
    ensure_optimizer(model);
    int decays[NUM_PARAMETER_TENSORS];
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) { decays[i] = parameter_tensor_decays(i); }
    // three ranges of tensors at their rates: the encoder's at lr, the head's at lr x head_lr_scale,
    // the gates (the buffer's tail, empty under the joint packing) at lr x gate_lr_scale
    const int first[4] = {0, HEAD_FIRST_TENSOR, XGATE_TENSOR, NUM_PARAMETER_TENSORS};
    const float rates[3] = {lr, lr * head_lr_scale, lr * gate_lr_scale};
    size_t offset = 0;
    for (int r = 0; r < 3; r++) {
        adamw_update_cuda(model->params_memory + offset, model->m_memory + offset, model->v_memory + offset,
                          model->grads_memory + offset, model->param_sizes + first[r], decays + first[r],
                          first[r + 1] - first[r], rates[r], beta1, beta2, eps, weight_decay, step, model->stream);
        for (int i = first[r]; i < first[r + 1]; i++) { offset += model->param_sizes[i]; }
    }
}

// the bytes of set_batch's buffers at capacities of S sequences and N tokens: (S+1) sequence
// starts and attention offsets, (S) document starts, (2S+1) piece starts; (N) ids, types,
// embedding types, and the word gradient's grouping, (N) tokens and ids and (N+1) starts;
// under the split packing the (N, NH) doubles of the gates' gradient
static size_t batch_bytes(size_t S, size_t N, const BertConfig* cfg, Packing packing) {
    size_t ints = 2 * (S + 1) + S + (2 * S + 1) + 3 * N + 2 * N + (N + 1);
    size_t doubles = packing == PACKING_SPLIT ? N * cfg->num_heads : 0;
    return ints * sizeof(int) + doubles * sizeof(double);
}

DeviceMemory bert_cuda_memory(const BertModelCuda* model) {
    size_t P = model->num_parameters * sizeof(float);
    DeviceMemory m;
    m.parameters = P;
    m.gradients = model->grads_memory != NULL ? P : 0;
    m.optimizer = model->m_memory != NULL ? 2 * P : 0;
    m.activations = model->acts_capacity * sizeof(float);
    m.scratch = model->scratch_capacity * sizeof(float) +
                (model->norm_scratch != NULL ? norm_scratch_bytes(model->num_parameters) : 0);
    m.batch = model->seq_capacity > 0
                  ? batch_bytes(model->seq_capacity - 1, model->token_capacity, &model->config, model->packing)
                  : 0;
    return m;
}

DeviceMemory bert_cuda_training_memory(const BertConfig* config, Packing packing, size_t N, size_t S, size_t A) {
    size_t param_sizes[NUM_PARAMETER_TENSORS], act_sizes[NUM_ACTIVATION_TENSORS], scratch_sizes[NUM_SCRATCH];
    size_t P = device_parameter_sizes(param_sizes, config, packing);
    DeviceMemory m;
    m.parameters = m.gradients = P * sizeof(float);
    m.optimizer = 2 * P * sizeof(float);
    m.activations = device_activation_sizes(act_sizes, config, N, S, A) * sizeof(float);
    m.scratch = backward_scratch_sizes(scratch_sizes, config, N, S, A) * sizeof(float) + norm_scratch_bytes(P);
    m.batch = batch_bytes(S, N, config, packing);
    return m;
}

void bert_cuda_free(BertModelCuda* model) {
    float* floats[] = {model->params_memory, model->grads_memory, model->m_memory, model->v_memory,
                       model->acts_memory, model->scratch_memory};
    for (float* f : floats) { cudaCheck(cudaFree(f)); }
    int* ints[] = {model->seq_starts, model->att_offsets, model->inputs, model->types, model->split_at,
                   model->piece_starts, model->embed_types, model->bucket_tokens, model->bucket_starts, model->bucket_ids};
    for (int* i : ints) { cudaCheck(cudaFree(i)); }
    cudaCheck(cudaFree(model->dgate_rows));
    cudaCheck(cudaFree(model->norm_scratch));
    cudaCheck(cudaStreamDestroy(model->stream));
    free(model->logits);
    free(model->embeddings);
    memset(model, 0, sizeof(*model));
}
