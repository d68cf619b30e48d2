/*
 * kernels/model_cuda.h — the start of the GPU backend: the BERT cross-encoder's forward pass
 * on the device over model.h's flat parameter layout (the same buffer a checkpoint holds,
 * uploaded with one copy) and model.h's activation layout, every layer through kernels/.
 * Not yet here: the backward pass, AdamW over the model, and model.h's API itself (bert_*
 * choosing the device), which train_zelo's --device will call.
 */
#ifndef ZELO_MODEL_CUDA_H
#define ZELO_MODEL_CUDA_H

#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    BertConfig config;
    size_t param_sizes[NUM_PARAMETER_TENSORS];
    size_t num_parameters;
    ParameterTensors params;  // on the device, pointing into params_memory
    float* params_memory;     // on the device (num_parameters)
    ActivationTensors acts;   // on the device, model.h's layout with every layer kept
    float* acts_memory;
    size_t acts_capacity;     // floats in acts_memory; only grows
    // the batch of the last forward pass, on the device
    int* seq_starts;          // (S+1)
    int* att_offsets;         // (S+1) where sequence s's (NH, T, T) block starts in one layer of att
    int* inputs;              // (N)
    int* types;               // (N)
    int seq_capacity, token_capacity;
    int num_tokens, num_seqs, att_size, max_T;
    // the outputs of the last forward pass, copied to the host
    float* logits;            // (S, num_labels)
    float* embeddings;        // (S, C)
    struct CUstream_st* stream;  // cudaStream_t: every kernel of the model runs on it, in order
} BertModelCuda;

// allocates the device parameters for a config (their contents undefined until uploaded);
// dies on an invalid config
void bert_cuda_build(BertModelCuda* model, const BertConfig* config);
// copies the flat parameter buffer (num_parameters floats on the host, model.h's order) to the device
void bert_cuda_upload_parameters(BertModelCuda* model, const float* params);
// bert_forward's contract (model.h) on the device: a packed batch on the host in, model->logits
// and model->embeddings (host) out; every layer's activations kept on the device
void bert_cuda_forward(BertModelCuda* model, const int* ids, const int* types, const int* seq_starts, int num_seqs);
void bert_cuda_free(BertModelCuda* model);

#ifdef __cplusplus
}
#endif

#endif // ZELO_MODEL_CUDA_H
