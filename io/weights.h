/*
 * io/weights.h — Hugging Face checkpoints in and out: config.json <-> BertConfig, the tensor
 * names of BertModel / BertForSequenceClassification <-> ParameterTensors, loading a model
 * directory (config.json + model.safetensors) and exporting one that transformers'
 * AutoModelForSequenceClassification / AutoTokenizer and sentence-transformers'
 * CrossEncoder load.
 *
 * Names: a BertForSequenceClassification checkpoint (every published cross-encoder) puts
 * the encoder under "bert." and has "classifier.{weight,bias}"; a BertModel checkpoint
 * (all-MiniLM-L6-v2, bge-small) has the encoder names bare and no classifier. Both load.
 * The three (C, C) matrices attention.self.{query,key,value} map to the three consecutive
 * row blocks of one layer's qkvw (3*C, C), since PyTorch's (out, in) layout is kept.
 */
#ifndef ZELO_WEIGHTS_H
#define ZELO_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

// one Hugging Face tensor and where it lives in the flat parameter buffer
typedef struct {
    char name[80];     // without the "bert." prefix, e.g. "encoder.layer.3.output.dense.bias"
    float* data;       // points into the model's parameters
    int ndim;
    size_t shape[2];   // (ndim,) PyTorch layout
    int is_head;       // pooler or classifier: absent from encoder-only checkpoints
} HfTensor;

// reads a Hugging Face config.json; dies naming the file and the field on a missing or
// mistyped size, or on any option this engine does not implement
void bert_config_from_hf(BertConfig* config, const char* path);

// number of Hugging Face tensors of a config: 5 embedding + 16 per layer + 4 head
int hf_tensor_count(const BertConfig* config);
// fills out (hf_tensor_count entries) with the names and places of every tensor of a
// built model, in the parameter buffer's order
void hf_tensor_list(HfTensor* out, const BertModel* model);

// builds the model from dir/config.json and reads dir/model.safetensors (F32, F16 or BF16).
// A missing pooler or classifier keeps BERT's random initialisation (seeded) and a note on
// stderr says so; a file tensor that nothing uses is named on stderr too (except the
// embeddings.position_ids buffer, which is arange(P) and carries no weights). Returns whether
// the file has the classifier (a cross-encoder's trained head; an encoder's file has none).
int bert_load_hf(BertModel* model, const char* dir, uint64_t seed);

// the same, for a bi-encoder, which pools the encoder's output and never uses the pooler
// or classifier: their absence from the file is not noted (a run that loads the same
// directory as its reranker too would say it twice)
void bert_load_hf_encoder(BertModel* model, const char* dir, uint64_t seed);

// writes dir/ (created if needed) as a Hugging Face BertForSequenceClassification:
// config.json, model.safetensors (F32), vocab.txt (a copy of vocab_path),
// tokenizer_config.json and special_tokens_map.json (BertTokenizer). max_length is the
// tokenizer's model_max_length: the length the model was trained and scored at, which is
// what transformers and sentence-transformers truncate to by default (the model's positions
// stay in config.json); pairs longer than that would otherwise score differently there
void bert_export_hf(const BertModel* model, const char* dir, const char* vocab_path, int do_lower_case, int max_length);

// the same files for an encoder (a bi-encoder's transformer): config.json says BertModel and
// model.safetensors holds the encoder and pooler under their bare names, no classifier, as
// all-MiniLM-L6-v2's own checkpoint does; transformers' AutoModel loads it with nothing missing
void bert_export_hf_encoder(const BertModel* model, const char* dir, const char* vocab_path, int do_lower_case, int max_length);

#endif // ZELO_WEIGHTS_H
