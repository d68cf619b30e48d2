/*
 * io/sentence_transformers.h — a bi-encoder written as a sentence-transformers model folder:
 *   config.json, model.safetensors, vocab.txt, tokenizer_config.json, special_tokens_map.json
 *       the transformer (io/weights.h's bert_export_hf_encoder), module 0 at the root;
 *   sentence_bert_config.json  {"max_seq_length": max_length, "do_lower_case": false} (the
 *       tokenizer lower-cases by itself when its vocabulary is uncased);
 *   1_Pooling/config.json      mean pooling over every token, [CLS] and [SEP] included;
 *   2_Normalize/               L2 normalisation (the module has no settings);
 *   modules.json               the three modules in that order;
 *   config_sentence_transformers.json  the similarity: cosine.
 * SentenceTransformer(dir).encode(texts) then gives the embeddings retrieval/dense.h computes.
 */
#ifndef ZELO_SENTENCE_TRANSFORMERS_H
#define ZELO_SENTENCE_TRANSFORMERS_H

#include "model.h"

// writes dir/ (created if needed); dies naming the file on any failure, and on a vocabulary
// the exported tokenizer could not use (before anything is written)
void bert_export_sentence_transformers(const BertModel* model, const char* dir, const char* vocab_path,
                                       int do_lower_case, int max_length);

#endif // ZELO_SENTENCE_TRANSFORMERS_H
