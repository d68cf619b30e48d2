/*
 * model.h — the BERT encoder with the cross-encoder score head, as plain structs: the
 * config, one flat parameter buffer with a pointer per tensor, the activations, the
 * checkpoint format, and the API of the CPU reference backend (model.c).
 *
 * Batches are PACKED: the tokens of all sequences lie back to back, ids (N,) and token
 * types (N,), and seq_starts (S+1,) gives where each sequence starts (seq_starts[0] = 0,
 * seq_starts[S] = N). Positions restart at 0 in every sequence and attention never
 * crosses a sequence boundary, so no compute is spent on padding and no mask exists.
 *
 * The layout matches Hugging Face BertForSequenceClassification: post-LayerNorm blocks,
 * GELU (erf form), learned absolute positions, token types, pooler dense + tanh on the
 * first ([CLS]) token, then a linear classifier. Linear weights keep PyTorch's (out, in)
 * layout so that safetensors import/export is a plain copy.
 */
#ifndef ZELO_MODEL_H
#define ZELO_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "zelo_loss.h"

#ifdef __cplusplus
extern "C" {  // the CUDA backend and its test are C++
#endif

typedef struct {
    int vocab_size;        // V
    int hidden_size;       // C
    int num_layers;        // L
    int num_heads;         // NH
    int intermediate_size; // I
    int max_position;      // P  (max_position_embeddings)
    int type_vocab_size;   // TT
    int num_labels;        // 1 for the cross-encoder score head
    float layer_norm_eps;
} BertConfig;

#define NUM_PARAMETER_TENSORS 22
typedef struct {                 // in this order in the flat buffer; Linear weights in PyTorch (out, in) layout
    float* wte;      // (V, C)   embeddings.word_embeddings
    float* wpe;      // (P, C)   embeddings.position_embeddings
    float* wtt;      // (TT, C)  embeddings.token_type_embeddings
    float* emb_lnw;  // (C)      embeddings.LayerNorm
    float* emb_lnb;  // (C)
    float* qkvw;     // (L, 3*C, C) attention.self.{query,key,value}.weight stacked in that order
    float* qkvb;     // (L, 3*C)
    float* attprojw; // (L, C, C) attention.output.dense
    float* attprojb; // (L, C)
    float* ln1w;     // (L, C)   attention.output.LayerNorm
    float* ln1b;     // (L, C)
    float* fcw;      // (L, I, C) intermediate.dense
    float* fcb;      // (L, I)
    float* fcprojw;  // (L, C, I) output.dense
    float* fcprojb;  // (L, C)
    float* ln2w;     // (L, C)   output.LayerNorm
    float* ln2b;     // (L, C)
    float* poolw;    // (C, C)   pooler.dense
    float* poolb;    // (C)
    float* clsw;     // (num_labels, C) classifier
    float* clsb;     // (num_labels)
    float* xgate;    // (L, NH)  the split packing's attention bias across the two segments; empty in a
                     //          joint model (the BERT of a config has none: bert_split_segments adds it)
} ParameterTensors;

// the names of the tensors above, in buffer order (for messages and tests)
extern const char* const PARAMETER_TENSOR_NAMES[NUM_PARAMETER_TENSORS];

// param_sizes[i] = number of floats of tensor i; dies on a config that is not a valid BERT
void fill_in_parameter_sizes(size_t* param_sizes, const BertConfig* config);
// one allocation holding every tensor, pointers assigned by walking it in order; zeroed
float* malloc_and_point_parameters(ParameterTensors* params, const size_t* param_sizes);
// whether AdamW decays tensor i: the Hugging Face convention, every weight matrix
// (embeddings included) decays, biases and LayerNorm weights do not
int parameter_tensor_decays(int i);
// the score head's tensors are poolw, poolb, clsw, clsb: index 17 to 20
#define HEAD_FIRST_TENSOR 17
// the split packing's gates, xgate, are the last tensor
#define XGATE_TENSOR 21

// how the score (the logit) is made from the last hidden states of a (query, document) sequence:
// SCORE_HEAD_CLS is BertForSequenceClassification's, pooler dense + tanh on the [CLS] token and a
// linear classifier; SCORE_HEAD_COSINE is model->cosine_scale x the cosine between the mean
// of the query's tokens and the mean of the document's (each without [CLS] and [SEP]), the
// mean pooling a sentence-transformers bi-encoder was trained with, so that a cross-encoder
// started from one starts close to its ranking instead of from a random head; the pooler and
// classifier tensors stay in the buffer, unused; SCORE_HEAD_MAXSIM is model->cosine_scale x the
// mean over the query's tokens of each one's largest cosine with a document token (ColBERT's
// MaxSim over the joint encoding; maxsim_score_forward); SCORE_HEAD_COSINE_MAXSIM is
// model->cosine_scale x (the cosine head's cosine + the maxsim head's mean), the first seeing
// what each text is about, the second the words the two share (README, issue 13)
typedef enum { SCORE_HEAD_CLS = 0, SCORE_HEAD_COSINE = 1, SCORE_HEAD_MAXSIM = 2, SCORE_HEAD_COSINE_MAXSIM = 3 } ScoreHead;
// the cosine head's scale before train_zelo fits it to the targets (cosine_scale_fit): 1 / 0.05,
// the temperature of the bi-encoder's contrastive loss, so that cosines a few hundredths apart
// give logits a unit apart. Checkpoints of the cosine head written before the scale was stored
// were trained with it.
#define SCORE_HEAD_COSINE_SCALE 20.0f
// "cls", "cosine", "maxsim", "cosine+maxsim"
const char* score_head_name(ScoreHead head);
// whether the head's logit has the cosine of the segment means in it, and the maxsim term
int score_head_has_cosine(ScoreHead head);
int score_head_has_maxsim(ScoreHead head);

// How a (query, document) sequence is laid out for the encoder. JOINT, BERT's and the default:
// [CLS] query [SEP] document [SEP], token types 0 then 1, positions 0..T-1, every token attending
// to every other. SPLIT, a cross-encoder that starts as the bi-encoder it is initialised from:
// [CLS] query [SEP] [CLS] document [SEP], the token types still marking the two segments (0, 1)
// but every token embedded with type 0 and positions restarting at the document's first token,
// as the bi-encoder embeds each text alone; attention from a token to one of the other segment
// gets the bias params.xgate[l, h] of its layer and head, which starts far below 0 (the two
// segments then hardly see each other, and the cosine head over each whole segment is the
// bi-encoder's score) and is learnt with the rest, so that training opens the attention across
// as far as the targets ask. Every head but cls reads it (the cosine over each whole segment;
// maxsim over the query's tokens without [CLS] and [SEP] and the document's from its [CLS] to
// before its [SEP], segment_span's spans); a trained classifier was trained on the joint
// sequence. README, issue 13.
typedef enum { PACKING_JOINT = 0, PACKING_SPLIT = 1 } Packing;
// "joint", "split"
const char* packing_name(Packing packing);
// the split packing's gates before training: exp(-6) = 0.0025 of a cross-segment key's weight
#define SPLIT_GATE_INIT -6.0f

#define NUM_ACTIVATION_TENSORS 22
typedef struct {
    // N = tokens of the batch, S = sequences, A = NH * sum over sequences of T_s^2
    float* emb;      // (N, C)   word + position + type embeddings, before the LayerNorm
    float* emb_ln;   // (N, C)   input of layer 0
    float* emb_mean; // (N)
    float* emb_rstd; // (N)
    float* qkv;      // (L, N, 3*C)
    float* att;      // (L, A)   softmax probabilities, per sequence (NH, T, T)
    float* atty;     // (L, N, C) attention output before its dense layer
    float* res1;     // (L, N, C) layer input + attention dense output
    float* ln1;      // (L, N, C)
    float* ln1_mean; // (L, N)
    float* ln1_rstd; // (L, N)
    float* fch;      // (L, N, I) intermediate dense output, before GELU
    float* fch_gelu; // (L, N, I)
    float* res2;     // (L, N, C) ln1 + output dense
    float* ln2;      // (L, N, C) output of the layer
    float* ln2_mean; // (L, N)
    float* ln2_rstd; // (L, N)
    float* cls;      // (S, C)   last hidden state of each sequence's first token
    float* pooled;   // (S, C)   tanh(pooler(cls))
    float* logits;   // (S, num_labels)
    float* embeddings; // (S, C) mean of the last hidden states over each sequence
    float* segmeans; // (S, 2, C) the cosine head's means of the query's and the document's tokens
} ActivationTensors;

// the sizes of the activation tensors above for N tokens, S sequences, A attention floats per
// layer, with Ls layers stored (L for training, 1 when all layers share one slot); shared by
// both backends so that their activations have one layout
void fill_in_activation_sizes(size_t* sizes, const BertConfig* cfg, size_t N, size_t S, size_t A, size_t Ls);
// checks a packed batch against the config; dies naming the sequence and token at fault
void validate_batch(const BertConfig* cfg, const int* ids, const int* types, const int* seq_starts, int S);
// a packed batch's layout under a packing, the same for both backends: split_at (S), where each
// sequence's document (its first type-1 token) starts, relative to the sequence (T when it has
// none, and everywhere under the joint packing); piece_starts (2S+1), the pieces the embedding
// restarts its positions at (the sequences when joint; each sequence's two segments when split, an
// empty document an empty piece); embed_types (N), the token types the embedding reads (types when
// joint, all 0 when split). types may be NULL: all type 0. Returns the number of pieces, S or 2S.
int packing_layout(int* split_at, int* piece_starts, int* embed_types, const int* types, const int* seq_starts, int S,
                   Packing packing);

typedef struct {
    BertConfig config;
    // the weights
    ParameterTensors params;
    size_t param_sizes[NUM_PARAMETER_TENSORS];
    float* params_memory;
    size_t num_parameters;
    // gradients of the weights and AdamW state, allocated lazily (inference never pays them)
    ParameterTensors grads;
    float* grads_memory;
    float* m_memory;
    float* v_memory;
    // AdamW's learning rate on the score head (pooler and classifier, the tensors from
    // HEAD_FIRST_TENSOR on) is lr x this: a head drawn at random on a pretrained encoder may
    // want a larger step than the encoder. 1 from bert_build.
    float head_lr_scale;
    // how the logit is made (SCORE_HEAD_CLS from bert_build; bert_load reads it from the file)
    ScoreHead score_head;
    // the sequence layout (PACKING_JOINT from bert_build; bert_split_segments sets SPLIT, bert_load
    // reads it from the file)
    Packing packing;
    // AdamW's learning rate on the split packing's gates (xgate) is lr x this: they start at
    // SPLIT_GATE_INIT and have units of a logit, far from where the encoder's weights move at lr
    float gate_lr_scale;
    // every head but cls makes its logit as this x its cosines (SCORE_HEAD_COSINE_SCALE from bert_build;
    // bert_load reads it from the file; set it with bert_set_cosine_scale, which tells the device)
    float cosine_scale;
    // activations, (re)allocated on demand by the forward pass when a batch needs more room
    // than the last one: the capacity only grows, so a training loop settles after one step
    ActivationTensors acts;
    float* acts_memory;
    size_t acts_capacity;   // floats in acts_memory
    float* scratch_memory;  // backward pass buffers, one layer's worth, reused across layers
    size_t scratch_capacity;
    // the batch of the last forward pass
    int num_tokens;         // N
    int num_seqs;           // S
    int* seq_starts;        // (S+1) a copy of the caller's offsets
    int* inputs;            // (N) token ids
    int* types;             // (N) token types
    int* att_offsets;       // (S+1) where sequence s's (NH, T, T) block starts in one layer of att
    int* split_at;          // (S) under the split packing, where sequence s's document starts (relative
                            // to the sequence; T when it has none); T everywhere under the joint one
    int* piece_starts;      // (2S+1) the split packing's segments as sequences of their own: the
                            // embedding restarts its positions at each
    int num_pieces;         // S, or 2S when split
    int* embed_types;       // (N) the token types the embedding reads: types, or all 0 when split
    double* gate_partial;   // (S, NH) the backward's per-(sequence, head) sums of the gates' gradient
    int att_size;           // A, floats of att per layer
    int backward_ready;     // 1 after bert_forward (activations of every layer kept)
    // outputs of the last forward pass (point into acts_memory)
    float* logits;          // (S, num_labels) the cross-encoder scores
    float* embeddings;      // (S, C) mean-pooled sentence embeddings
    // the GPU backend (kernels/model_cuda.h) once bert_to_device moved the model there: every
    // bert_* call below then runs on the device, and the host buffers above are stale until
    // bert_save copies the parameters back. NULL: the CPU runs the model.
    struct BertModelCuda* cuda;
} BertModel;

// AdamW's learning-rate factor of tensor i: model->head_lr_scale on the head, else 1
float parameter_tensor_lr_scale(const BertModel* model, int i);

// the path every matrix product takes: cpu/gemm.c's kernels (the default), OpenBLAS's sgemm
// (only in a build with USE_BLAS, which the Makefile sets when OpenBLAS links), or the
// plain loops, the readable reference that tests hold the other two against. Either way
// the threads are OpenMP's: with OpenBLAS, bert_build sets it to ONE thread for the whole
// process, as model.c splits each large product over its OpenMP threads itself (two
// thread pools on the same cores would each spin while the other works); set
// OMP_NUM_THREADS, not OPENBLAS_NUM_THREADS.
// Set it through matmul_select, which refuses openblas in a build without it (matmul
// itself does not check again on every product).
typedef enum { MATMUL_KERNELS, MATMUL_OPENBLAS, MATMUL_LOOPS } MatmulPath;
extern MatmulPath matmul_path;
// "cpu/gemm.c, AVX-512 kernel", "OpenBLAS", "plain loops", ...
const char* matmul_path_name(MatmulPath path);
// sets matmul_path from a user's word, kernels, openblas or loops, and returns NULL; returns
// what is wrong instead (an unknown word, openblas in a build without it)
const char* matmul_select(const char* name);

// where a model runs, chosen once at set-up: the CPU (this file's functions, model.c) or the
// GPU (kernels/model_cuda.cu), which exists only in a build with USE_CUDA (the Makefile sets it
// when nvcc and the CUDA libraries compile and link a program here)
typedef enum { DEVICE_CPU, DEVICE_CUDA } Device;
// the storage type of the GPU backend's weights and activations (kernels/model_cuda.h): fp32,
// the CPU's exact twin, or bf16, mixed precision over fp32 master weights, AdamW state and
// gradients. The CPU computes in fp32 only
typedef enum { PRECISION_FP32, PRECISION_BF16 } Precision;
// sets *precision from a user's word, fp32 or bf16, and returns NULL; returns what is wrong
// instead (an unknown word, bf16 on a device other than the GPU)
const char* precision_select(Precision* precision, const char* name, Device device);
// "fp32", "bf16"
const char* precision_name(Precision precision);
// sets *device from a user's word, auto (the GPU when one is visible, else the CPU), cpu or
// cuda, and returns NULL; returns what is wrong instead (an unknown word, cuda in a build
// without the CUDA backend, cuda with no GPU visible)
const char* device_select(Device* device, const char* name);
// "cpu", "cuda (NVIDIA H200)", ...
const char* device_describe(Device device);
// the device memory of a model's buffers on the GPU, in bytes, from the sizes the backend
// allocated (not asked of the driver, so the same under the CUDA emulator). The buffers only
// grow, so this is their peak so far; the CUDA context and cuBLAS's workspace come on top
typedef struct {
    size_t parameters;   // the flat parameter buffer
    size_t gradients;    // its gradients, from the first backward pass
    size_t optimizer;    // AdamW's m and v, from the first update
    size_t activations;  // what the forward pass keeps for the backward pass
    size_t scratch;      // the backward pass's buffers, reused by every layer, and the gradient norm's sums
    size_t batch;        // the batch's ids and layout
} DeviceMemory;
// a model on the GPU: its buffers' memory into *memory, returns 1; a model on the CPU: returns 0
int bert_device_memory(const BertModel* model, DeviceMemory* memory);
// the sum of the parts
size_t device_memory_total(const DeviceMemory* m);
// "1234.5 MiB (parameters 417.6, gradients 417.6, AdamW 835.2, activations ..., scratch ..., batch ...)"
void device_memory_describe(char* out, size_t n, const DeviceMemory* m);
// what multiplies matrices on the device (kernels/matmul.cuh); --matmul picks the CPU's only
#define DEVICE_MATMUL_NAME "the device's (cuBLAS; cpu/gemm.c under the CUDA emulator)"
// zelo_fit_ratings (zelo_loss.h: same arguments, same results) on the GPU, for a caller whose
// device_select chose DEVICE_CUDA: the batched fit of kernels/zelo_fit.cuh, one block per
// query, every rating within 1e-9 of the CPU's (test_zelo_cuda). Dies in a build without the
// CUDA backend. Declared here, beside device_select, because model.c is where a build with
// USE_CUDA reaches the GPU backend; callers on the CPU call zelo_fit_ratings itself.
int zelo_fit_ratings_gpu(double* ratings, ZeloFitStatus* status, ZeloPairError* err, const ZeloPairs* pairs,
                         const ZeloFitConfig* cfg);
// moves a built model to the device for the rest of its life (call once, before training):
// the parameters and any AdamW state are uploaded, the layers computing at the given precision
// (PRECISION_BF16 on DEVICE_CUDA only); DEVICE_CPU leaves it where it is
void bert_to_device(BertModel* model, Device device, Precision precision);
// sets the cosine head's scale (model->cosine_scale), on the device too when the model is there
void bert_set_cosine_scale(BertModel* model, float scale);
// the number of the split packing's gates, L x NH: the size of xgate once a model is split
size_t split_gate_count(const BertConfig* config);
// turns a built model (before training, on the CPU) into the split packing (Packing): the
// parameters grow by the (L, NH) gates, each set to gate_init
void bert_split_segments(BertModel* model, float gate_init);

// allocates the parameters (zeroed) for a config; dies on an invalid config
void bert_build(BertModel* model, const BertConfig* config);
// BERT's initialisation: every weight matrix ~ N(0, 0.02^2), LayerNorm weights 1, biases 0
void bert_init_random(BertModel* model, uint64_t seed);
// forward pass over a packed batch; keeps every layer's activations for bert_backward.
// Results in model->logits (S, num_labels) and model->embeddings (S, C). Dies naming the
// offending sequence/token on a sequence longer than max_position, an empty sequence, a
// token id outside [0, V) or a token type outside [0, TT). types may be NULL: all type 0.
void bert_forward(BertModel* model, const int* ids, const int* types, const int* seq_starts, int num_seqs);
// the same results as bert_forward with one layer's activations reused by all layers
// (less memory, faster scoring); bert_backward refuses to follow it
void bert_infer(BertModel* model, const int* ids, const int* types, const int* seq_starts, int num_seqs);
// accumulates into model->grads the gradient of a loss whose derivatives with respect to the
// last forward pass's outputs are dlogits (S, num_labels) and dembeddings (S, C); either may
// be NULL when the loss does not use that output
void bert_backward(BertModel* model, const float* dlogits, const float* dembeddings);
void bert_zero_grad(BertModel* model);
// the flat gradient buffer (num_parameters floats, the parameters' order) wherever the model
// runs, so that several processes can sum it between bert_backward and bert_clip_grad_norm;
// *device_stream gets the device's stream (a cudaStream_t) for a model on the GPU, NULL for
// one on the CPU. Dies before the first bert_backward (no gradients yet).
float* bert_grad_buffer(BertModel* model, void** device_stream);
// scales all gradients so that their global L2 norm is at most max_norm (when max_norm > 0);
// returns the norm before clipping
float bert_clip_grad_norm(BertModel* model, float max_norm);
// one AdamW step (step counts from 1, for the bias correction), weight decay decoupled and
// applied only where parameter_tensor_decays says so
void bert_adamw_update(BertModel* model, float lr, float beta1, float beta2, float eps,
                       float weight_decay, int step);
// ZeRO stage 1 (several processes, each keeping the AdamW state of one slice): the step of
// bert_adamw_update for the parameters [start, end) of the flat buffer alone, m_memory and
// v_memory holding that slice only (end - start floats each; allocated here when NULL). The
// same arithmetic per parameter as bert_adamw_update, whose slice is the whole buffer. CPU only.
void bert_adamw_update_range(BertModel* model, float lr, float beta1, float beta2, float eps,
                             float weight_decay, int step, size_t start, size_t end);
void bert_free(BertModel* model);

// ---- checkpoints ----
// model file: header of 256 little-endian int32: [0] BERT_CHECKPOINT_MAGIC, [1] version,
// [2..9] vocab_size, hidden_size, num_layers, num_heads, intermediate_size, max_position,
// type_vocab_size, num_labels, [10] the bits of layer_norm_eps (fp32), [11], [12] the
// number of floats (low, high 32 bits), [13] the ScoreHead (0 in files written before the
// cosine head existed, which is the [CLS] head they have), [14] the cosine or maxsim head's
// scale (float bits), [15] the Packing (0 in files written before the split packing existed),
// the rest 0; then the flat fp32 parameter buffer (the gates last under the split packing).
// optimizer file: header [0] BERT_OPTIMIZER_MAGIC, [1] version, [2] step, [3], [4] the
// number of floats (low, high), the rest 0; then m, then v (each num_parameters floats).
// Both are written atomically (path.tmp, fsync, rename) and read back with every header
// field and the exact file length checked (in int64, before allocating; a config of more
// than 2^40 parameters is refused before its sizes are multiplied).
#define BERT_CHECKPOINT_MAGIC 0x7A4C4231  // "1BLz" on disk
#define BERT_OPTIMIZER_MAGIC 0x7A4C4F31   // "1OLz" on disk
#define BERT_CHECKPOINT_VERSION 1
void bert_save(const BertModel* model, const char* path);
// builds the model from the file's config and reads its weights; dies naming the file on
// anything wrong
void bert_load(BertModel* model, const char* path);
void bert_save_optimizer(const BertModel* model, int step, const char* path);
// reads m and v into a built model of the same size; returns the saved step
int bert_load_optimizer(BertModel* model, const char* path);

// ---- the reference's layers, one call each, for test/test_cuda.cu to hold every CUDA
// kernel against (shapes and meaning in model.c, beside each definition). Gradients are
// accumulated (+=) except where "inplace" or attention_head_backward says otherwise.
void embeddings_forward(float* out, const int* ids, const int* types, const int* seq_starts,
                        int S, const float* wte, const float* wpe, const float* wtt, int C);
void embeddings_backward(float* dwte, float* dwpe, float* dwtt, const float* demb,
                         const int* ids, const int* types, const int* seq_starts, int S, int C);
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                       const float* weight, const float* bias, int N, int C, float eps);
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean,
                        const float* rstd, int N, int C);
void linear_forward(float* out, const float* inp, const float* weight, const float* bias,
                    int N, int C, int OC);
void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                     const float* inp, const float* weight, int N, int C, int OC);
void gelu_forward(float* out, const float* inp, size_t n);
void gelu_backward_inplace(float* dinout, const float* inp, size_t n);
void residual_forward(float* out, const float* a, const float* b, size_t n);
void attention_head_forward(float* out, float* p, const float* qkv, int T, int h, int C, int NH, int split_at, float gate);
double attention_head_backward(float* dqkv, float* dp, const float* dout, const float* qkv,
                               const float* p, int T, int h, int C, int NH, int split_at);
void cls_gather_forward(float* out, const float* inp, const int* seq_starts, int S, int C);
void cls_gather_backward(float* dinp, const float* dout, const int* seq_starts, int S, int C);
void tanh_forward(float* out, const float* inp, size_t n);
void tanh_backward_inplace(float* dinout, const float* out, size_t n);
void meanpool_forward(float* out, const float* inp, const int* seq_starts, int S, int C);
void meanpool_backward(float* dinp, const float* dout, const int* seq_starts, int S, int C);
void segment_means_forward(float* out, const float* inp, const int* types, const int* seq_starts, int S, int C, int whole);
void segment_means_backward(float* dinp, const float* dout, const int* types, const int* seq_starts, int S, int C, int whole);
void cosine_score_forward(float* logits, const float* segmeans, int S, int C, float scale);
void cosine_score_backward(float* dsegmeans, const float* dlogits, const float* segmeans, int S, int C, float scale);
void maxsim_score_forward(float* logits, const float* inp, const int* types, const int* seq_starts, int S, int C, float scale);
void maxsim_score_backward(float* dinp, const float* dlogits, const float* inp, const int* types, const int* seq_starts,
                           int S, int C, float scale);

#ifdef __cplusplus
}
#endif

#endif // ZELO_MODEL_H
