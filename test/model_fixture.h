/*
 * test/model_fixture.h — the tiny random BERT cross-encoder of test/fixtures/model (written by
 * dev/gen_model_fixture.py from Hugging Face transformers in float64): its config, weights,
 * packed batch (5 sequences of lengths 7, 23, 64, 1, 40), the test loss, and the reference's
 * outputs, gradients and AdamW steps. Read by test_model.c (model.c against transformers)
 * and test_cuda_step.cu (the GPU backend against model.c on the same model and batch).
 */
#ifndef ZELO_MODEL_FIXTURE_H
#define ZELO_MODEL_FIXTURE_H

#include <stddef.h>
#include "model.h"

#define FIXTURE_DIR "test/fixtures/model"

typedef struct {
    BertConfig config;
    size_t num_parameters;
    int N, S, steps;
    float lr, beta1, beta2, eps, weight_decay, max_norm;
    int* seq_starts;  // (S+1)
    int* ids;         // (N)
    int* types;       // (N)
    float* params;    // (num_parameters)
    float* y;         // (S) regression targets of the logits
    float* R;         // (S, C) the loss's weights on the embeddings
    // float64 reference, rounded to fp32
    float loss;
    float* logits;     // (S)
    float* embeddings; // (S, C)
    float* grads;      // (num_parameters)
    float* norms;      // (steps) gradient norms before clipping, training steps
    float loss_after;  // the loss after the training steps
    float grad_scales[8]; // (steps) AdamW alone: gradient of step k = grad_scales[k] * grads
    float* delta;      // (num_parameters) AdamW alone: weights after the steps minus before
    // the same loss with the cosine score head (dev/gen_cosine_head_fixture.py)
    float cosine_loss;
    float* cosine_logits; // (S)
    float* cosine_grads;  // (num_parameters)
    // and with the maxsim score head (dev/gen_maxsim_head_fixture.py)
    float maxsim_loss;
    float* maxsim_logits; // (S)
    float* maxsim_grads;  // (num_parameters)
    // and with the split packing and the cosine head (dev/gen_split_packing_fixture.py)
    float* split_gates;   // (L, NH) the gates it ran with
    float split_loss;
    float* split_logits;  // (S)
    float* split_grads;   // (num_parameters + L * NH) the gates' last
    // and with the split packing and the cosine+maxsim head, the same gates (the same script)
    float split_cosmax_loss;
    float* split_cosmax_logits; // (S)
    float* split_cosmax_grads;  // (num_parameters + L * NH)
    char* buffers[7];
} Fixture;

// reads the seven fixture files, every header field and exact size checked; dies naming the file
void fixture_read(Fixture* fx);
void fixture_free(Fixture* fx);
// a model built from the fixture's config holding its weights; dies if model.h's layout
// gives another parameter count
BertModel fixture_model(const Fixture* fx);
// the fixture's loss of a forward pass's outputs, 0.5 * sum (logit - y)^2 + sum embedding * R;
// fills its derivatives (S) and (S, C) unless NULL
double fixture_loss(const BertModel* m, const Fixture* fx, float* dlogits, float* dembeddings);
// max|got - want| / max|want| over n values (absolute when want is all zero; NaN gives NaN)
double normwise_error(const float* got, const float* want, size_t n);

#endif // ZELO_MODEL_FIXTURE_H
