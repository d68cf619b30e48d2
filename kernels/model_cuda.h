/*
 * kernels/model_cuda.h — the start of the GPU backend: the BERT cross-encoder's forward pass
 * on the device over model.h's flat parameter layout (the same buffer a checkpoint holds,
 * uploaded with one copy) and model.h's activation layout, every layer through kernels/,
 * and the backward pass, the gradient norm and clip, and AdamW over the same flat buffers.
 * model.c's bert_* calls these when the model was moved here (bert_to_device, in a build
 * with USE_CUDA); checkpoints go through the host copies (download/upload below). The forward
 * keeps every layer's activations but ln1, GELU's output and ln2, which the backward pass
 * recomputes layer by layer. Not yet here: bert_infer's one-layer activations (the device
 * keeps every layer for inference too).
 *
 * Two precisions (model.h, Precision): fp32, every tensor float, the CPU's twin; and bf16, the
 * layers reading a bf16 copy of the fp32 master weights and keeping their activations in bf16,
 * with the gradients, AdamW's state, the LayerNorms' statistics and the heads' outputs in float
 * (kernels/bf16.cuh says which sums stay float inside the kernels). Under bf16 at head sizes 32
 * and 64 the attention is the fused kernel of kernels/flash_attention.cuh, which keeps no
 * T x T probabilities.
 */
#ifndef ZELO_MODEL_CUDA_H
#define ZELO_MODEL_CUDA_H

#include "model.h"
#include "zelo_loss.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct BertModelCuda {  // named: model.h's BertModel points to one
    BertConfig config;
    Packing packing;          // the host model's, given to bert_cuda_build (it sizes the gates)
    ScoreHead score_head;     // the host model's, set by bert_to_device
    float cosine_scale;       // the host model's, set by bert_to_device and bert_set_cosine_scale
    Precision precision;      // the layers' storage type: fp32 (the CPU's twin) or bf16 (model.h)
    int flash;                // the layers' attention is kernels/flash_attention.cuh's fused kernel (bf16 at
                              // head size 32 or 64), else attention.cuh's, which keeps the probabilities
    size_t param_sizes[NUM_PARAMETER_TENSORS];
    size_t num_parameters;
    ParameterTensors params;  // on the device, pointing into params_memory
    float* params_memory;     // on the device (num_parameters): the weights, fp32 (under bf16 the master)
    void* params_bf16;        // under bf16: the master's bf16 copy (num_parameters), which the layers read;
                              // rewritten by every AdamW step. NULL under fp32
    ParameterTensors params_x;  // the tensors the layers read: params itself under fp32, pointers into
                                // params_bf16 under bf16 (bf16 entries behind model.h's float*)
    // gradients and AdamW state on the device, allocated by the first backward / update
    ParameterTensors grads;
    float* grads_memory;
    float* m_memory;
    float* v_memory;
    double* norm_scratch;     // (1 + chunks) the squared gradient norm, then its chunks' sums
    void* scratch_memory;     // backward pass buffers, one layer's worth, reused across layers
    size_t scratch_capacity;  // bytes
    ActivationTensors acts;   // on the device, model.h's layout with every layer kept but ln1,
                              // fch_gelu and ln2, one layer each (the backward recomputes them);
                              // under bf16 bf16 entries but for the LayerNorms' statistics and the
                              // heads' outputs (model_cuda.cu, device_activation_layout); att holds the
                              // probabilities, or under flash each row's logsumexp (L, N, NH) in float
    void* acts_memory;
    size_t acts_capacity;     // bytes in acts_memory; only grows
    // the batch of the last forward pass, on the device
    int* seq_starts;          // (S+1)
    int* att_offsets;         // (S+1) where sequence s's (NH, T, T) block starts in one layer of att (all 0
                              // under flash)
    int* inputs;              // (N)
    int* types;               // (N)
    int* split_at;            // (S) where each sequence's document starts (packing_layout; T when joint)
    int* piece_starts;        // (2S+1) the pieces the embedding restarts its positions at (packing_layout)
    int* embed_types;         // (N) the token types the embedding reads (packing_layout)
    double* dgate_rows;       // (N, NH) the split packing's backward: each row's share of its gate's gradient
    int seq_capacity, token_capacity;
    int num_tokens, num_seqs, num_pieces, att_size, max_T;
    // the outputs of the last forward pass, copied to the host
    float* logits;            // (S, num_labels)
    float* embeddings;        // (S, C)
    int* bucket_tokens;       // (N) the batch's tokens grouped by word id (embedding_buckets)
    int* bucket_starts;       // (N+1)
    int* bucket_ids;          // (N)
    int num_buckets;
    struct CUstream_st* stream;  // cudaStream_t: every kernel of the model runs on it, in order
} BertModelCuda;

// allocates the device parameters for a config and packing (the split packing's gates, (L, NH),
// last, as bert_split_segments lays them out; their contents undefined until uploaded), and the
// bf16 copy under PRECISION_BF16; dies on an invalid config
void bert_cuda_build(BertModelCuda* model, const BertConfig* config, Packing packing, Precision precision);
// copies the flat parameter buffer (num_parameters floats on the host, model.h's order) to the
// device, and under bf16 rounds it into the layers' copy
void bert_cuda_upload_parameters(BertModelCuda* model, const float* params);
// bert_forward's contract (model.h) on the device: a packed batch on the host in, model->logits
// and model->embeddings (host) out; the activations the backward pass needs kept on the device
void bert_cuda_forward(BertModelCuda* model, const int* ids, const int* types, const int* seq_starts, int num_seqs);
// bert_backward's contract: accumulates into the device gradients the gradient of a loss whose
// derivatives wrt the last forward pass's logits (S, num_labels) and embeddings (S, C), on the
// host, are given; either may be NULL
void bert_cuda_backward(BertModelCuda* model, const float* dlogits, const float* dembeddings);
void bert_cuda_zero_grad(BertModelCuda* model);
// bert_clip_grad_norm's contract: returns the norm before clipping; dies on a non-finite norm
float bert_cuda_clip_grad_norm(BertModelCuda* model, float max_norm);
// bert_adamw_update's step; the head's tensors (HEAD_FIRST_TENSOR to XGATE_TENSOR) at lr x
// head_lr_scale, the split packing's gates at lr x gate_lr_scale (parameter_tensor_lr_scale)
void bert_cuda_adamw_update(BertModelCuda* model, float lr, float head_lr_scale, float gate_lr_scale, float beta1,
                            float beta2, float eps, float weight_decay, int step);
void bert_cuda_free(BertModelCuda* model);
// bert_device_memory's contract (model.h): the model's device buffers now, from their sizes
DeviceMemory bert_cuda_memory(const BertModelCuda* model);
// the device memory of a training step (forward, backward, clip, AdamW) on a batch of N tokens in
// S sequences with A attention entries per layer (NH x the sum of the sequences' squared lengths):
// what bert_cuda_memory reports after that step on a model just built. Allocates nothing, so it
// sizes a step for a card not at hand (dev/cuda/bert_step.cu)
DeviceMemory bert_cuda_training_memory(const BertConfig* config, Packing packing, Precision precision, size_t N,
                                       size_t S, size_t A);
// copies the device parameters (num_parameters floats) into params on the host
void bert_cuda_download_parameters(const BertModelCuda* model, float* params);
// the AdamW state between host (m, v: num_parameters floats each) and device; download returns 0
// (and copies nothing) when no AdamW step has run on the device yet
void bert_cuda_upload_optimizer(BertModelCuda* model, const float* m, const float* v);
int bert_cuda_download_optimizer(const BertModelCuda* model, float* m, float* v);
// zelo_fit_ratings's contract (zelo_loss.h) on the GPU: every query fitted by
// kernels/zelo_fit.cuh's kernel, one block per query, the same ratings within 1e-9
// (test_zelo_cuda); with λ = 0 the host checks which queries have no finite optimum
int zelo_fit_ratings_cuda(double* ratings, ZeloFitStatus* status, ZeloPairError* err, const ZeloPairs* pairs,
                          const ZeloFitConfig* cfg);
// the number of visible GPUs, 0 when the runtime reports none or fails (no driver); never dies
int bert_cuda_device_count(void);
// the name of the current GPU ("NVIDIA H200", ...) into name (n bytes)
void bert_cuda_device_name(char* name, size_t n);

#ifdef __cplusplus
}
#endif

#endif // ZELO_MODEL_CUDA_H
