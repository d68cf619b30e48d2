/*
 * kernels/model_cuda.cu — the forward and backward passes of the BERT cross-encoder on the
 * device, layer by layer in model.c's order (forward_pass, bert_backward there), each layer
 * one launcher of a kernels/ header; the gradient norm, clip and AdamW over the flat buffers.
 * See kernels/model_cuda.h.
 */
#include <stddef.h>
#include <string.h>
#include <type_traits>
#include "kernels/model_cuda.h"
#include "kernels/common.cuh"
#include "kernels/embeddings.cuh"
#include "kernels/layernorm.cuh"
#include "kernels/gelu.cuh"
#include "kernels/matmul.cuh"
#include "kernels/attention.cuh"
#include "kernels/flash_attention.cuh"
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

// the bytes of n consecutive slices, slice i holding sizes[i] entries of widths[i] bytes and
// starting at a multiple of align bytes; with memory not NULL, ptrs[i] points at slice i. Under
// fp32 (every width and align 4) this is point_tensors_in's layout; under bf16 the slices mix
// bf16 and float entries, and each starts 16-byte aligned, as cuBLASLt's fastest kernels want
static size_t point_slices(void** ptrs, char* memory, const size_t* sizes, const size_t* widths, int n, size_t align) {
    size_t offset = 0;
    for (int i = 0; i < n; i++) {
        offset = CEIL_DIV(offset, align) * align;
        if (memory != NULL) { ptrs[i] = memory + offset; }
        offset += sizes[i] * widths[i];
    }
    return offset;
}

// the bytes of one entry of a tensor stored in the layers' type (float or bf16)
static size_t storage_width(Precision precision) {
    return precision == PRECISION_BF16 ? sizeof(bf16) : sizeof(float);
}

static size_t slice_align(Precision precision) {
    return precision == PRECISION_BF16 ? 16 : sizeof(float);
}

// whether the layers' attention is the fused kernel (kernels/flash_attention.cuh): under bf16,
// at the head sizes it is built for (32: MiniLM; 64: BERT-base and -large). It keeps each
// row's logsumexp, (N, NH) floats a layer, where attention.cuh's kernels keep the probabilities,
// (NH, T, T) a sequence; those stay the fp32 backend's (the CPU's twin) and bf16's at other
// head sizes
static int uses_flash_attention(const BertConfig* cfg, Precision precision) {
    int head_size = cfg->hidden_size / cfg->num_heads;
    return precision == PRECISION_BF16 && (head_size == 32 || head_size == 64);
}

// points ptrs (n) into the device buffer *memory, first growing it to the slices' bytes when
// its *capacity (bytes) is below; the capacity only grows, so a training loop settles
static void grow_and_point(void** memory, size_t* capacity, void** ptrs, const size_t* sizes, const size_t* widths,
                           int n, size_t align) {
    size_t total = point_slices(ptrs, NULL, sizes, widths, n, align);
    if (total > *capacity) {
        cudaCheck(cudaFree(*memory));
        cudaCheck(cudaMalloc(memory, total));
        *capacity = total;
    }
    point_slices(ptrs, (char*)*memory, sizes, widths, n, align);
}

// the parameter tensors' sizes (NUM_PARAMETER_TENSORS) for a config and packing, the split
// packing's gates, (L, NH), last as bert_split_segments lays them out; returns their sum. Dies
// on an invalid config
static size_t device_parameter_sizes(size_t* sizes, const BertConfig* config, Packing packing) {
    fill_in_parameter_sizes(sizes, config);
    if (packing == PACKING_SPLIT) { sizes[XGATE_TENSOR] = split_gate_count(config); }
    return sum_of(sizes, NUM_PARAMETER_TENSORS);
}

// the activations the device keeps for N tokens, S sequences and A attention entries per layer:
// model.h's layout with every layer's, except ln1, fch_gelu and ln2, of which it keeps one
// layer's, the forward's current one; under the fused attention (uses_flash_attention) att
// holds each layer's (N, NH) float logsumexps in place of its A probabilities. The backward
// pass recomputes ln1, fch_gelu and ln2 layer by layer from
// what is kept (res1, fch, res2 and the LayerNorms' mean and rstd), the forward's bytes: per
// layer, N x (I + 2C) entries fewer, at I = 4C 6C of the 16C per token a layer kept beside its
// attention probabilities. widths: each tensor's bytes per entry, the layers' storage type but
// for what stays float under bf16 (the LayerNorms' statistics, and the heads' outputs that the
// host reads: logits, embeddings, and the cosine head's segment means). Returns the bytes in all
#define ACTIVATION_INDEX(field) (offsetof(ActivationTensors, field) / sizeof(float*))
static size_t device_activation_layout(size_t* sizes, size_t* widths, const BertConfig* cfg, Precision precision,
                                       size_t N, size_t S, size_t A) {
    fill_in_activation_sizes(sizes, cfg, N, S, A, cfg->num_layers);
    size_t one_layer[NUM_ACTIVATION_TENSORS];
    fill_in_activation_sizes(one_layer, cfg, N, S, A, 1);
    const size_t recomputed[3] = {ACTIVATION_INDEX(ln1), ACTIVATION_INDEX(fch_gelu), ACTIVATION_INDEX(ln2)};
    for (size_t i : recomputed) { sizes[i] = one_layer[i]; }
    for (int i = 0; i < NUM_ACTIVATION_TENSORS; i++) { widths[i] = storage_width(precision); }
    const size_t in_float[9] = {ACTIVATION_INDEX(emb_mean), ACTIVATION_INDEX(emb_rstd), ACTIVATION_INDEX(ln1_mean),
                                ACTIVATION_INDEX(ln1_rstd), ACTIVATION_INDEX(ln2_mean), ACTIVATION_INDEX(ln2_rstd),
                                ACTIVATION_INDEX(logits), ACTIVATION_INDEX(embeddings), ACTIVATION_INDEX(segmeans)};
    for (size_t i : in_float) { widths[i] = sizeof(float); }
    if (uses_flash_attention(cfg, precision)) {
        sizes[ACTIVATION_INDEX(att)] = (size_t)cfg->num_layers * N * cfg->num_heads;
        widths[ACTIVATION_INDEX(att)] = sizeof(float);
    }
    return point_slices(NULL, NULL, sizes, widths, NUM_ACTIVATION_TENSORS, slice_align(precision));
}

// the backward pass's scratch, as model.c's bert_backward: gradients of one layer's
// activations, reused by every layer, in the layers' storage type; in float: the attention's
// dS (datt, kernels/attention.cuh; under the fused attention its (N, NH) row sums D instead,
// kernels/flash_attention.cuh's delta), the heads' buffers (the cosine head's dsegmeans are
// float; the classifier's dcls and dpooled fit in the same bytes) and the caller's dlogits and
// dembeddings; under bf16, dlogits rounded to bf16 for the classifier's backward (DLOGITS_X,
// empty under fp32, where DOUTPUTS's are read as they are). Returns the bytes in all
enum { DH, DX, DRES2, DLN1, DRES1, DATTY, DFFN, DQKV, DATT, DHEADS, DOUTPUTS, DLOGITS_X, NUM_SCRATCH };
static size_t backward_scratch_layout(size_t* sizes, size_t* widths, const BertConfig* cfg, Precision precision,
                                      size_t N, size_t S, size_t A) {
    size_t C = cfg->hidden_size, NC = N * C, NL = (size_t)cfg->num_labels;
    size_t datt = uses_flash_attention(cfg, precision) ? N * cfg->num_heads : A;
    size_t scratch_sizes[NUM_SCRATCH] = {
        NC, NC, NC, NC, NC, NC, N * cfg->intermediate_size, N * 3 * C, datt,
        S * C * 2,                                  // dcls and dpooled, or the cosine head's dsegmeans
        S * NL + S * C,                             // the caller's dlogits and dembeddings
        precision == PRECISION_BF16 ? S * NL : 0,   // dlogits in bf16
    };
    memcpy(sizes, scratch_sizes, sizeof(scratch_sizes));
    for (int i = 0; i < NUM_SCRATCH; i++) { widths[i] = storage_width(precision); }
    widths[DATT] = widths[DHEADS] = widths[DOUTPUTS] = sizeof(float);
    return point_slices(NULL, NULL, sizes, widths, NUM_SCRATCH, slice_align(precision));
}

void bert_cuda_build(BertModelCuda* model, const BertConfig* config, Packing packing, Precision precision) {
    memset(model, 0, sizeof(*model));
    model->config = *config;
    model->packing = packing;
    model->precision = precision;
    model->flash = uses_flash_attention(config, precision);
    model->num_parameters = device_parameter_sizes(model->param_sizes, config, packing);
    cudaCheck(cudaMalloc((void**)&model->params_memory, model->num_parameters * sizeof(float)));
    point_tensors_in((float**)&model->params, model->params_memory, model->param_sizes, NUM_PARAMETER_TENSORS);
    model->params_x = model->params;
    if (precision == PRECISION_BF16) {
        // the bf16 copy at the master's offsets, entry for entry, as adamw_update_cuda writes it
        cudaCheck(cudaMalloc(&model->params_bf16, model->num_parameters * sizeof(bf16)));
        size_t widths[NUM_PARAMETER_TENSORS];
        for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) { widths[i] = sizeof(bf16); }
        point_slices((void**)&model->params_x, (char*)model->params_bf16, model->param_sizes, widths,
                     NUM_PARAMETER_TENSORS, sizeof(bf16));
    }
    cudaCheck(cudaStreamCreate(&model->stream));
    matmul_setup();
}

void bert_cuda_upload_parameters(BertModelCuda* model, const float* params) {
    cudaCheck(cudaMemcpy(model->params_memory, params, model->num_parameters * sizeof(float), cudaMemcpyHostToDevice));
    if (model->precision == PRECISION_BF16) {
        float_to_bf16_cuda((bf16*)model->params_bf16, model->params_memory, model->num_parameters, model->stream);
    }
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
    size_t A = 0;  // the probabilities attention.cuh keeps; none under the fused attention
    int max_T = 0;
    for (int s = 0; s < S; s++) {
        size_t T = (size_t)(seq_starts[s + 1] - seq_starts[s]);
        att_offsets[s] = (int)A;
        if (!model->flash) { A += (size_t)cfg->num_heads * T * T; }
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

    size_t sizes[NUM_ACTIVATION_TENSORS], widths[NUM_ACTIVATION_TENSORS];
    device_activation_layout(sizes, widths, cfg, model->precision, N, S, A);
    grow_and_point(&model->acts_memory, &model->acts_capacity, (void**)&model->acts, sizes, widths,
                   NUM_ACTIVATION_TENSORS, slice_align(model->precision));
    model->logits = (float*)reallocCheck(model->logits, (size_t)S * cfg->num_labels * sizeof(float));
    model->embeddings = (float*)reallocCheck(model->embeddings, (size_t)S * cfg->hidden_size * sizeof(float));
}

// a tensor of model.h's structs (float* fields) that holds entries of the layers' storage type
// floatX: under bf16 the bf16 parameter copy, the activations and the scratch (set_batch and
// backward_scratch_layout lay them out), so offsets are taken after the cast
#define X(ptr) ((floatX*)(void*)(ptr))

// one layer's attention, out (N, C) from qkv (N, 3*C); saved: what the backward reads, the
// probabilities (A, floatX) under attention.cuh's kernels, each row's logsumexp (N, NH, float)
// under the fused one (model->flash, bf16 only); gates (NH) the layer's, or NULL (joint)
template <typename floatX>
static void attention_layer_forward(BertModelCuda* model, floatX* out, void* saved, const floatX* qkv,
                                    const float* gates) {
    const BertConfig* cfg = &model->config;
    int N = model->num_tokens, S = model->num_seqs, C = cfg->hidden_size, NH = cfg->num_heads;
    if constexpr (std::is_same<floatX, bf16>::value) {
        if (model->flash) {
            flash_attention_forward_cuda(out, (float*)saved, qkv, model->seq_starts, model->split_at, gates, S, N, C,
                                         NH, model->stream);
            return;
        }
    }
    attention_forward_cuda(out, (floatX*)saved, qkv, model->seq_starts, model->att_offsets, model->split_at, gates, S,
                           N, model->max_T, C, NH, model->stream);
}

// its backward: dqkv (N, 3*C) written from dout (N, C), the forward's qkv, out and saved;
// scratch: attention.cuh's dS (A floats) or the fused kernel's D (N, NH floats); dgates (NH)
// accumulated, NULL for the joint packing, where gates is NULL too
template <typename floatX>
static void attention_layer_backward(BertModelCuda* model, floatX* dqkv, float* scratch, float* dgates,
                                     const floatX* dout, const floatX* qkv, const floatX* out, const void* saved,
                                     const float* gates) {
    const BertConfig* cfg = &model->config;
    int N = model->num_tokens, S = model->num_seqs, C = cfg->hidden_size, NH = cfg->num_heads;
    if constexpr (std::is_same<floatX, bf16>::value) {
        if (model->flash) {
            flash_attention_backward_cuda(dqkv, scratch, dgates, model->dgate_rows, dout, qkv, out,
                                          (const float*)saved, model->seq_starts, model->split_at, gates, S, N, C, NH,
                                          model->stream);
            return;
        }
    }
    attention_backward_cuda(dqkv, scratch, dgates, model->dgate_rows, dout, qkv, (const floatX*)saved,
                            model->seq_starts, model->att_offsets, model->split_at, S, N, model->max_T, C, NH,
                            model->stream);
}

// where layer l's saved attention starts in the activations: A probabilities (floatX) a layer,
// or under the fused attention N x NH logsumexps (float)
template <typename floatX>
static void* attention_saved(const BertModelCuda* model, int l) {
    if (model->flash) { return model->acts.att + (size_t)l * model->num_tokens * model->config.num_heads; }
    return X(model->acts.att) + (size_t)l * model->att_size;
}

// a device buffer of n entries (float or bf16) set to zero, in stream order (zero bits are 0 in both)
template <typename T>
static void zero_entries(T* x, size_t n, cudaStream_t stream) {
    cudaCheck(cudaMemsetAsync(x, 0, n * sizeof(T), stream));
}

// the forward pass of set_batch's batch, every layer's tensors of type floatX (float: the fp32
// backend, the CPU's twin; bf16: the mixed-precision one); the outputs left on the device
template <typename floatX>
static void forward_layers(BertModelCuda* model) {
    const BertConfig* cfg = &model->config;
    int N = model->num_tokens, S = model->num_seqs;
    int C = cfg->hidden_size, NH = cfg->num_heads, I = cfg->intermediate_size, L = cfg->num_layers;
    size_t NC = (size_t)N * C;
    float eps = cfg->layer_norm_eps;
    int split = model->packing == PACKING_SPLIT;
    cudaStream_t stream = model->stream;
    ParameterTensors p = model->params_x;  // the weights the layers read
    ParameterTensors master = model->params;  // fp32: the gates, and the classifier's bias
    ActivationTensors a = model->acts;

    embeddings_forward_cuda(X(a.emb), model->inputs, model->embed_types, model->piece_starts, model->num_pieces,
                            X(p.wte), X(p.wpe), X(p.wtt), N, C, stream);
    layernorm_forward_cuda(X(a.emb_ln), a.emb_mean, a.emb_rstd, X(a.emb), X(p.emb_lnw), X(p.emb_lnb), N, C, eps, stream);
    for (int l = 0; l < L; l++) {
        // ln1, fch_gelu and ln2 hold this layer's alone (device_activation_layout): ln2 holds
        // the layer's input until the first LayerNorm's residual has read it, then its output
        const floatX* x = l == 0 ? X(a.emb_ln) : X(a.ln2);  // (N, C)
        floatX* qkv = X(a.qkv) + (size_t)l * N * 3 * C;
        floatX* atty = X(a.atty) + (size_t)l * NC;
        floatX* res1 = X(a.res1) + (size_t)l * NC;
        floatX* ln1 = X(a.ln1);
        floatX* fch = X(a.fch) + (size_t)l * N * I;
        floatX* fch_gelu = X(a.fch_gelu);
        floatX* res2 = X(a.res2) + (size_t)l * NC;
        floatX* ln2 = X(a.ln2);
        linear_forward_cuda(qkv, x, X(p.qkvw) + (size_t)l * 3 * C * C, X(p.qkvb) + (size_t)l * 3 * C, N, C, 3 * C, stream);
        attention_layer_forward(model, atty, attention_saved<floatX>(model, l), (const floatX*)qkv,
                                split ? master.xgate + (size_t)l * NH : NULL);
        // res1 first gets the dense output, then the residual is added in place, as the reference
        linear_forward_cuda(res1, atty, X(p.attprojw) + (size_t)l * C * C, X(p.attprojb) + (size_t)l * C,
                            N, C, C, stream);
        residual_layernorm_forward_cuda(res1, ln1, a.ln1_mean + (size_t)l * N, a.ln1_rstd + (size_t)l * N,
                                        res1, x, X(p.ln1w) + (size_t)l * C, X(p.ln1b) + (size_t)l * C,
                                        N, C, eps, stream);
        linear_forward_cuda(fch, ln1, X(p.fcw) + (size_t)l * I * C, X(p.fcb) + (size_t)l * I, N, C, I,
                            stream);
        gelu_forward_cuda(fch_gelu, fch, (size_t)N * I, stream);
        linear_forward_cuda(res2, fch_gelu, X(p.fcprojw) + (size_t)l * C * I,
                            X(p.fcprojb) + (size_t)l * C, N, I, C, stream);
        residual_layernorm_forward_cuda(res2, ln2, a.ln2_mean + (size_t)l * N, a.ln2_rstd + (size_t)l * N,
                                        res2, ln1, X(p.ln2w) + (size_t)l * C,
                                        X(p.ln2b) + (size_t)l * C, N, C, eps, stream);
    }
    const floatX* x = L == 0 ? X(a.emb_ln) : X(a.ln2);

    // the two heads: the cross-encoder score and the mean-pooled sentence embedding, both float;
    // the score the sum of its head's terms, as model.c's forward_pass
    if (model->score_head != SCORE_HEAD_CLS) {
        if (cfg->num_labels != 1) {
            die("the %s score head makes one logit; the model has %d labels", score_head_name(model->score_head),
                cfg->num_labels);
        }
        // the cosine term writes the logits, the maxsim term adds to them
        if (score_head_has_cosine(model->score_head)) {
            segment_means_forward_cuda(a.segmeans, x, model->types, model->seq_starts, S, C, split, stream);
            cosine_score_forward_cuda(a.logits, a.segmeans, S, C, model->cosine_scale, stream);
        } else {
            zero_entries(a.logits, (size_t)S, stream);
        }
        if (score_head_has_maxsim(model->score_head)) {
            maxsim_score_forward_cuda(a.logits, x, model->types, model->seq_starts, S, model->max_T, C, model->cosine_scale,
                                      stream);
        }
    } else {
        cls_gather_forward_cuda(X(a.cls), x, model->seq_starts, S, C, stream);
        linear_forward_cuda(X(a.pooled), X(a.cls), X(p.poolw), X(p.poolb), S, C, C, stream);
        tanh_forward_cuda(X(a.pooled), X(a.pooled), (size_t)S * C, stream);
        // the classifier writes float logits (the loss reads them), its bias the master's:
        // under fp32 linear_forward_cuda's two steps
        bias_broadcast_cuda(a.logits, (const float*)master.clsb, S, cfg->num_labels, stream);
        matmul_cuda(a.logits, cfg->num_labels, X(a.pooled), C, 0, X(p.clsw), C, 1, S,
                    cfg->num_labels, C, 1.0f, 1.0f, stream);
    }
    meanpool_forward_cuda(a.embeddings, x, model->seq_starts, S, C, stream);
}

void bert_cuda_forward(BertModelCuda* model, const int* ids, const int* types, const int* seq_starts, int num_seqs) {
    set_batch(model, ids, types, seq_starts, num_seqs);
    if (model->precision == PRECISION_BF16) {
        forward_layers<bf16>(model);
    } else {
        forward_layers<float>(model);
    }
    const BertConfig* cfg = &model->config;
    int S = model->num_seqs, C = cfg->hidden_size;
    cudaCheck(cudaStreamSynchronize(model->stream));
    cudaCheck(cudaMemcpy(model->logits, model->acts.logits, (size_t)S * cfg->num_labels * sizeof(float),
                         cudaMemcpyDeviceToHost));
    cudaCheck(cudaMemcpy(model->embeddings, model->acts.embeddings, (size_t)S * C * sizeof(float),
                         cudaMemcpyDeviceToHost));
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

// the backward pass of the last forward pass, floatX as forward_layers; dlogits and dembeddings
// already on the device (float), either NULL; the parameters' gradients are float in both
template <typename floatX>
static void backward_layers(BertModelCuda* model, void** buffers, const float* d_dlogits, const float* d_dembeddings) {
    const BertConfig* cfg = &model->config;
    int N = model->num_tokens, S = model->num_seqs, max_T = model->max_T;
    int C = cfg->hidden_size, NH = cfg->num_heads, I = cfg->intermediate_size, L = cfg->num_layers;
    int NL = cfg->num_labels;
    size_t NC = (size_t)N * C;
    cudaStream_t stream = model->stream;
    int split = model->packing == PACKING_SPLIT;
    floatX *dres2 = X(buffers[DRES2]), *dln1 = X(buffers[DLN1]), *dres1 = X(buffers[DRES1]);
    floatX *datty = X(buffers[DATTY]), *dffn = X(buffers[DFFN]), *dqkv = X(buffers[DQKV]);
    float* datt = (float*)buffers[DATT];
    floatX *dcls = X(buffers[DHEADS]), *dpooled = X(buffers[DHEADS]) + (size_t)S * C;
    float* dsegmeans = (float*)buffers[DHEADS];
    ParameterTensors p = model->params_x, g = model->grads, master = model->params;
    ActivationTensors a = model->acts;

    floatX* dh = X(buffers[DH]);
    zero_entries(dh, NC, stream);
    if (d_dlogits != NULL && model->score_head != SCORE_HEAD_CLS) {
        if (score_head_has_cosine(model->score_head)) {
            cosine_score_backward_cuda(dsegmeans, d_dlogits, a.segmeans, S, C, model->cosine_scale, stream);
            segment_means_backward_cuda(dh, (const float*)dsegmeans, model->types, model->seq_starts, S, C, split, stream);
        }
        if (score_head_has_maxsim(model->score_head)) {
            // the last layer's output, which ln2 still holds: the layers below recompute theirs
            // into it only after
            const floatX* x = L == 0 ? X(a.emb_ln) : X(a.ln2);
            maxsim_score_backward_cuda(dh, d_dlogits, x, model->types, model->seq_starts, S, max_T, C, model->cosine_scale,
                                       stream);
        }
    } else if (d_dlogits != NULL) {
        // the classifier's backward reads dlogits in the layers' type: under bf16 rounded once
        const floatX* dlogits_x = X(d_dlogits);
        if (model->precision == PRECISION_BF16) {
            float_to_bf16_cuda((bf16*)buffers[DLOGITS_X], d_dlogits, (size_t)S * NL, stream);
            dlogits_x = X(buffers[DLOGITS_X]);
        }
        zero_entries(dpooled, (size_t)S * C, stream);
        linear_backward_cuda(dpooled, g.clsw, g.clsb, dlogits_x, X(a.pooled), X(p.clsw),
                             S, C, NL, stream);
        tanh_backward_inplace_cuda(dpooled, X(a.pooled), (size_t)S * C, stream);
        zero_entries(dcls, (size_t)S * C, stream);
        linear_backward_cuda(dcls, g.poolw, g.poolb, dpooled, X(a.cls),
                             X(p.poolw), S, C, C, stream);
        cls_gather_backward_cuda(dh, dcls, model->seq_starts, S, C, stream);
    }
    if (d_dembeddings != NULL) { meanpool_backward_cuda(dh, d_dembeddings, model->seq_starts, S, N, C, stream); }

    for (int l = L - 1; l >= 0; l--) {
        // the gradient wrt a layer's input is the next (lower) layer's dh: the two buffers
        // trade places every layer
        dh = X(buffers[(L - 1 - l) % 2 == 0 ? DH : DX]);
        floatX* dx = X(buffers[(L - 1 - l) % 2 == 0 ? DX : DH]);
        const floatX* qkv = X(a.qkv) + (size_t)l * N * 3 * C;
        const floatX* atty = X(a.atty) + (size_t)l * NC;
        const floatX* res1 = X(a.res1) + (size_t)l * NC;
        const floatX* fch = X(a.fch) + (size_t)l * N * I;
        const floatX* res2 = X(a.res2) + (size_t)l * NC;
        // dh = d ln2  ->  dres2. res2 = ln1 + fcproj(gelu(fc(ln1))): d ln1 gets the residual
        // (the same gradient, written by the same kernel), then the FFN path
        residual_layernorm_backward_cuda(dres2, dln1, g.ln2w + (size_t)l * C, g.ln2b + (size_t)l * C, dh,
                                         res2, X(p.ln2w) + (size_t)l * C, a.ln2_mean + (size_t)l * N,
                                         a.ln2_rstd + (size_t)l * N, N, C, stream);
        // GELU's output and ln1, which the forward kept for its last layer only, recomputed
        // by the forward's own arithmetic: the bytes it had
        gelu_forward_cuda(X(a.fch_gelu), fch, (size_t)N * I, stream);
        zero_entries(dffn, (size_t)N * I, stream);
        linear_backward_cuda(dffn, g.fcprojw + (size_t)l * C * I, g.fcprojb + (size_t)l * C, dres2,
                             X(a.fch_gelu), X(p.fcprojw) + (size_t)l * C * I, N, I, C,
                             stream);
        // fc's bias gradient is summed by GELU's backward, as it writes dffn
        gelu_backward_bias_cuda(dffn, g.fcb + (size_t)l * I, fch, N, I, stream);
        layernorm_recompute_cuda(X(a.ln1), res1, a.ln1_mean + (size_t)l * N, a.ln1_rstd + (size_t)l * N,
                                 X(p.ln1w) + (size_t)l * C, X(p.ln1b) + (size_t)l * C, N,
                                 C, stream);
        linear_backward_cuda(dln1, g.fcw + (size_t)l * I * C, (float*)NULL, dffn,
                             X(a.ln1), X(p.fcw) + (size_t)l * I * C, N, C, I, stream);
        // d ln1  ->  dres1. res1 = x + attproj(attention(qkv(x))): dx gets the residual, then
        // the attention path
        residual_layernorm_backward_cuda(dres1, dx, g.ln1w + (size_t)l * C, g.ln1b + (size_t)l * C, dln1,
                                         res1, X(p.ln1w) + (size_t)l * C, a.ln1_mean + (size_t)l * N,
                                         a.ln1_rstd + (size_t)l * N, N, C, stream);
        zero_entries(datty, NC, stream);
        linear_backward_cuda(datty, g.attprojw + (size_t)l * C * C, g.attprojb + (size_t)l * C, dres1,
                             atty, X(p.attprojw) + (size_t)l * C * C, N, C, C, stream);
        attention_layer_backward(model, dqkv, datt, split ? g.xgate + (size_t)l * NH : NULL, (const floatX*)datty,
                                 qkv, atty, attention_saved<floatX>(model, l),
                                 split ? master.xgate + (size_t)l * NH : NULL);
        // the layer's input: emb_ln, or the layer below's output recomputed as ln1 was
        const floatX* x = X(a.emb_ln);
        if (l > 0) {
            layernorm_recompute_cuda(X(a.ln2), X(a.res2) + (size_t)(l - 1) * NC,
                                     a.ln2_mean + (size_t)(l - 1) * N, a.ln2_rstd + (size_t)(l - 1) * N,
                                     X(p.ln2w) + (size_t)(l - 1) * C,
                                     X(p.ln2b) + (size_t)(l - 1) * C, N, C, stream);
            x = X(a.ln2);
        }
        linear_backward_cuda(dx, g.qkvw + (size_t)l * 3 * C * C, g.qkvb + (size_t)l * 3 * C, dqkv, x,
                             X(p.qkvw) + (size_t)l * 3 * C * C, N, C, 3 * C, stream);
    }
    // the gradient wrt the input of layer 0: where the last layer's dx was
    dh = X(buffers[L % 2 == 1 ? DX : DH]);
    floatX* da = dres2;
    zero_entries(da, NC, stream);
    layernorm_backward_cuda(da, g.emb_lnw, g.emb_lnb, dh, X(a.emb),
                            X(p.emb_lnw), a.emb_mean, a.emb_rstd, N, C, stream);
    embeddings_backward_cuda(g.wte, g.wpe, g.wtt, da, model->bucket_tokens, model->bucket_starts,
                             model->bucket_ids, model->num_buckets, model->embed_types, model->piece_starts,
                             model->num_pieces, max_T, N, cfg->type_vocab_size, C, stream);
}

void bert_cuda_backward(BertModelCuda* model, const float* dlogits, const float* dembeddings) {
    if (model->num_tokens == 0) { die("bert_cuda_backward: needs the activations of a bert_cuda_forward call"); }
    ensure_grads(model);
    const BertConfig* cfg = &model->config;
    int N = model->num_tokens, S = model->num_seqs, C = cfg->hidden_size, NL = cfg->num_labels;
    cudaStream_t stream = model->stream;
    size_t sizes[NUM_SCRATCH], widths[NUM_SCRATCH];
    backward_scratch_layout(sizes, widths, cfg, model->precision, N, S, (size_t)model->att_size);
    void* buffers[NUM_SCRATCH];
    grow_and_point(&model->scratch_memory, &model->scratch_capacity, buffers, sizes, widths, NUM_SCRATCH,
                   slice_align(model->precision));
    // the caller's gradients wrt the outputs, uploaded into DOUTPUTS
    float* d_dlogits = NULL;
    float* d_dembeddings = NULL;
    if (dlogits != NULL) {
        d_dlogits = (float*)buffers[DOUTPUTS];
        cudaCheck(cudaMemcpyAsync(d_dlogits, dlogits, (size_t)S * NL * sizeof(float), cudaMemcpyHostToDevice, stream));
    }
    if (dembeddings != NULL) {
        d_dembeddings = (float*)buffers[DOUTPUTS] + (size_t)S * NL;
        cudaCheck(cudaMemcpyAsync(d_dembeddings, dembeddings, (size_t)S * C * sizeof(float), cudaMemcpyHostToDevice,
                                  stream));
    }
    if (model->precision == PRECISION_BF16) {
        backward_layers<bf16>(model, buffers, d_dlogits, d_dembeddings);
    } else {
        backward_layers<float>(model, buffers, d_dlogits, d_dembeddings);
    }
    cudaCheck(cudaStreamSynchronize(stream));  // the caller's dlogits and dembeddings may go now
}
#undef X

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
        // under bf16 the step also writes the layers' copy of the weights, rounded from the master
        bf16* copy = model->precision == PRECISION_BF16 ? (bf16*)model->params_bf16 + offset : NULL;
        adamw_update_cuda(model->params_memory + offset, copy, model->m_memory + offset, model->v_memory + offset,
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

// the flat parameter buffer's bytes: the fp32 master, and under bf16 its bf16 copy
static size_t parameter_bytes(size_t P, Precision precision) {
    return P * sizeof(float) + (precision == PRECISION_BF16 ? P * sizeof(bf16) : 0);
}

DeviceMemory bert_cuda_memory(const BertModelCuda* model) {
    size_t P = model->num_parameters * sizeof(float);
    DeviceMemory m;
    m.parameters = parameter_bytes(model->num_parameters, model->precision);
    m.gradients = model->grads_memory != NULL ? P : 0;
    m.optimizer = model->m_memory != NULL ? 2 * P : 0;
    m.activations = model->acts_capacity;
    m.scratch = model->scratch_capacity + (model->norm_scratch != NULL ? norm_scratch_bytes(model->num_parameters) : 0);
    m.batch = model->seq_capacity > 0
                  ? batch_bytes(model->seq_capacity - 1, model->token_capacity, &model->config, model->packing)
                  : 0;
    return m;
}

DeviceMemory bert_cuda_training_memory(const BertConfig* config, Packing packing, Precision precision, size_t N,
                                       size_t S, size_t A) {
    size_t param_sizes[NUM_PARAMETER_TENSORS], sizes[NUM_ACTIVATION_TENSORS + NUM_SCRATCH];
    size_t widths[NUM_ACTIVATION_TENSORS + NUM_SCRATCH];
    size_t P = device_parameter_sizes(param_sizes, config, packing);
    DeviceMemory m;
    m.parameters = parameter_bytes(P, precision);
    m.gradients = P * sizeof(float);
    m.optimizer = 2 * P * sizeof(float);
    m.activations = device_activation_layout(sizes, widths, config, precision, N, S, A);
    m.scratch = backward_scratch_layout(sizes, widths, config, precision, N, S, A) + norm_scratch_bytes(P);
    m.batch = batch_bytes(S, N, config, packing);
    return m;
}

void bert_cuda_free(BertModelCuda* model) {
    void* buffers[] = {model->params_memory, model->params_bf16, model->grads_memory, model->m_memory,
                       model->v_memory, model->acts_memory, model->scratch_memory};
    for (void* b : buffers) { cudaCheck(cudaFree(b)); }
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
