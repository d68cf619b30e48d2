/*
 * judges/distill.h — the paper's second stage: a pairwise cross-encoder learns a judge's answers.
 *
 * The judge that zELO trusts (in the paper, an ensemble of LLMs) is slow and costly, so it
 * judges a sample of battles once, and a student model learns to give the same P(a beats b)
 * from the pairwise input [CLS] q [SEP] a [SEP] b [SEP] (judge_encode_pairwise: the same
 * encoding the judge `model:PATH,pairwise` reads, so a student saved with bert_save judges
 * exactly as it was trained). The student then judges all the pairs the method needs.
 *
 * Training: every battle in BOTH orders, (a, b, p) and (b, a, 1 − p), side by side in the
 * same batch, so the student learns that swapping the documents flips the answer and has no
 * reason to favour a position; loss the mean binary cross-entropy of σ(logit) against the
 * teacher's p (zelo_pairwise_bce_loss); AdamW with linear warm-up then linear decay to 0,
 * gradients clipped by their global norm; packed batches (no padding). Which battles form
 * the batch of step s is a pure function of (seed, s): a seeded permutation of the training
 * battles per epoch, batches taken in order, so two runs with the same seed give
 * bit-identical weights.
 *
 * Hold-out: a seeded hash of the battle (query id and the two document ids, in either order)
 * keeps a fraction of the battles out of training; on them the student's agreement with the
 * teacher is measured before and after training, in both orders: mean BCE, and the share
 * of answers on the teacher's side of 0.5 where the teacher has a preference.
 */
#ifndef ZELO_DISTILL_H
#define ZELO_DISTILL_H

#include <stdint.h>
#include <stdio.h>
#include "io/beir.h"
#include "judges/judge.h"
#include "model.h"
#include "tokenizer/wordpiece.h"

typedef struct {
    int steps;           // optimizer steps; 0: one pass over the training battles (both orders)
    int batch_size;      // sequences per step, even: batch_size / 2 battles in both orders
    int max_len;         // tokens of a pairwise sequence; 0: the student's max_position (as the
                         // judge's default, so that training and judging read the same tokens)
    float lr, warmup_frac, weight_decay, grad_clip;
    uint64_t seed;       // batch order and the hold-out split
    double holdout_frac; // share of the battles kept out of training to measure agreement, [0, 1)
} DistillConfig;

// a teacher answer within this distance of 0.5 states no preference: such battles count in
// the BCE but not in the agreement, where a coin flip would decide them
#define DISTILL_TIE_MARGIN 0.05

void distill_default_config(DistillConfig* cfg);

typedef struct {
    int n_train;           // battles trained on
    int n_holdout;         // battles held out (each measured in both orders)
    int n_decided;         // held-out battles whose teacher answer is outside 0.5 ± DISTILL_TIE_MARGIN
    int steps;             // optimizer steps taken
    double bce_floor;      // the teacher's own mean entropy on the held-out battles: the least BCE possible
    double bce_start, bce_end;              // held-out mean BCE, before and after training
    double agreement_start, agreement_end;  // held-out share of decided answers on the teacher's side
    double antisymmetry_start, antisymmetry_end; // held-out mean |p(a, b) + p(b, a) − 1| of the student
} DistillResult;

// 1 if the battle is held out: a hash of (seed, query id, the two document ids in either
// order) mapped to [0, 1) below holdout_frac. (a, b) and (b, a) are held out together, so
// a battle the teacher judged in both orders never trains and tests at once.
int distill_battle_is_holdout(const Corpus* corpus, const Queries* queries, const Battle* battle,
                              uint64_t seed, double holdout_frac);

// trains the student (built and initialised by the caller, num_labels 1) on the teacher's
// answers: p[i] = P(doc_a beats doc_b) of battles[i], n battles, all with
// query_a == query_b. Prints the held-out figures before and after, a progress line with
// its ETA on stderr, and (when log is not NULL) one JSONL line per step
// {"distill_step", "distill_loss", "lr", "grad_norm", "tokens_per_s"} and one per
// measurement {"distill_step", "distill_eval": {...}}, keys that a train_zelo log's plot
// tells from its own. Dies with a clear message on n <= 0, a cross-query battle, an index
// out of range, a document against itself, p outside [0, 1] or NaN, a bad config, or a
// student that cannot read the tokenizer's ids.
DistillResult distill_pairwise(BertModel* student, const Tokenizer* tok, const Corpus* corpus,
                               const Queries* queries, const Battle* battles, const float* p, int n,
                               const DistillConfig* cfg, FILE* log);

#endif // ZELO_DISTILL_H
