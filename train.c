/*
 * train.c — the train_zelo program: the whole zELO method in one run.
 *
 *   corpus + queries (BEIR) ─► BM25 top-K per query ─► pair graph per training query
 *   (k/2 random cycles) ─► judge ─► rating fit per query (Thurstone MLE) ─► calibration
 *   across queries ─► targets y = ½(1 + erf(e + b)) ─► train the cross-encoder ─►
 *   evaluate on held-out queries (NDCG@10, Recall@100, MRR@10) ─► checkpoint / export
 *
 * Every stage writes its result into the run directory and skips the work whose file is
 * already there (its header records the settings it was made with; a file made with other
 * settings is refused, never silently reused). With no --data, a synthetic collection is
 * generated in C and judged by the simulated judge, so `./train_zelo` alone shows the
 * whole method in about a minute.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/beir.h"
#include "retrieval/biencoder.h"
#include "retrieval/bm25.h"
#include "retrieval/dense.h"
#include "retrieval/fusion.h"
#include "judges/distill.h"
#include "io/json.h"
#include "io/sentence_transformers.h"
#include "judges/judge.h"
#include "io/metrics.h"
#include "model.h"
#include "common/dist.h"
#include "common/progress.h"
#include "retrieval/score.h"
#include "io/synth.h"
#include "tokenizer/wordpiece.h"
#include "common/utils.h"
#include "io/weights.h"
#include "zelo_loss.h"

// ----------------------------------------------------------------------------
// options

typedef enum { LOSS_MSE, LOSS_BCE, LOSS_PAIRWISE, LOSS_LISTWISE, LOSS_RATING_PAIRS } LossKind;
static const char* const loss_names[] = { "mse", "bce", "pairwise", "listwise", "rating-pairs" };

// how the documents of a training group are drawn from its query's candidates
enum { GROUP_DRAW_UNIFORM, GROUP_DRAW_RANK };
static const char* const group_draw_names[] = { "uniform", "rank" };
typedef enum { SCHEDULE_LINEAR, SCHEDULE_COSINE } ScheduleKind;

// where the first stage's candidates come from (--candidates-from); the values are stored in
// candidates.bin's header
enum { CANDIDATES_BM25 = 0, CANDIDATES_DENSE = 1, CANDIDATES_HYBRID = 2 };
static const char* const CANDIDATE_SOURCES[3] = {"bm25", "dense", "hybrid"};

static int candidate_source_parse(const char* name) {
    for (int i = 0; i < 3; i++) {
        if (strcmp(name, CANDIDATE_SOURCES[i]) == 0) { return i; }
    }
    return -1;
}

// the default budget is one epoch, but never fewer optimizer steps than this: a small
// collection's epoch (CISI's 93 training queries x 50 candidates: 133-149 steps of 32) is too
// few updates to fine-tune a pretrained encoder at 1e-4 under warm-up and decay; 300 steps in
// place of one epoch raised the model on CISI's three splits (README, issue 13's section).
// Counted in steps, not sequences: more processes make each step larger, not the updates more.
#define DEFAULT_MIN_STEPS 300
// the split packing's gates move at this rate: AdamW moves a weight by about its rate per
// step, so that 300 steps can take a gate from -6 to 0 when the targets keep asking for it
// (dev/student_arch.py's gated student used it; README, issue 13)
#define DEFAULT_GATE_LR 3e-2f

// --rounds: the most rounds of failure mining a run may ask for (each round a training budget)
#define MAX_ROUNDS 20

typedef struct {
    const char* data_dir;      // BEIR directory; NULL: the synthetic collection
    const char* run_dir;
    const char* init;          // HF directory or our .bin checkpoint; NULL: random init
    const char* vocab;         // tokenizer (file or directory); defaults from init / data
    const char* judge;         // judge spec (judges/judge.h)
    double judge_timeout;      // seconds a cmd judge may move no byte (0: JUDGE_CMD_DEFAULT_TIMEOUT_S)
    JudgeCombine judge_combine; // how an ensemble's answers combine: mean or vote (judges/judge.h)
    const char* dense_model;   // HF directory of a bi-encoder for the dense judge and baseline
    const char* export_dir;    // write the trained model as a Hugging Face directory
    const char* split;         // qrels split used for evaluation (default: test)
    double eval_frac;          // held-out fraction when the data has no train split
    double val_frac;           // training queries set aside to fit the interpolation with the first stage
    int candidates;            // K, candidates per query
    int candidates_from;       // CANDIDATES_BM25, _DENSE or _HYBRID; -1: hybrid with --dense-model, else bm25
    int rrf_k;                 // the fusion's k (retrieval/fusion.h)
    int cycles;                // k/2 random Hamiltonian cycles per query
    int cross_pairs;           // m, cross-query battles per query edge (0: no calibration)
    int distill;               // battles the judge answers for a distilled pairwise judge (0: off)
    int distill_steps;         // training steps of the pairwise student (0: one pass)
    float bm25_k1, bm25_b;
    ZeloLink link;
    double lambda;             // prior precision of the rating fit (< 0: the link's default)
    LossKind loss;
    int max_len;               // tokens of a (query, document) sequence
    int batch_size;            // sequences per micro-batch
    int group_size;            // documents of one query in a batch
    int group_draw;            // GROUP_DRAW_UNIFORM or GROUP_DRAW_RANK: how a group's documents are drawn
    int grad_accum;            // micro-batches per optimizer step
    int steps;                 // optimizer steps of a round (0: one epoch over the training items, at least DEFAULT_MIN_STEPS)
    int rounds;                // rounds of training; each after the first trains on failures mined by the one before
    int mine_depth;            // the first stage's documents per query that a round's model scores (0: 2 x candidates)
    int mine_docs;             // new documents a query takes in per round, at most
    int mine_pairs;            // unjudged pairs of current documents per query and round that the model orders
                               // against the ratings, judged, at most
    int head_fit;              // training sequences of the score head's linear probe (0: none)
    float lr, warmup_frac, weight_decay, grad_clip;
    float head_lr_scale;       // AdamW's rate on the score head (pooler, classifier) is lr x this
    int head;                  // ScoreHead of the reranker; -1 until score_head_setup picks the default
    float cosine_scale;        // the cosine head's scale: > 0 as given, 0 fitted (cosine_scale_fit), -1 the default
    int packing;               // Packing of the reranker's sequences; -1 until score_head_setup picks the default
    float gate_init;           // the split packing's gates before training
    float gate_lr;             // their learning rate (AdamW, under the schedule of --lr)
    ScheduleKind schedule;
    int eval_every, checkpoint_every;
    int resume;
    int stop_at;               // end the run after this step, checkpointed (0: never)
    uint64_t seed;
    int threads;
    int zero;                  // ZeRO stage 1: each process keeps the AdamW state of its slice
    const char* device;        // auto, cpu or cuda: where the reranker trains (model.h, device_select)
    const char* precision;     // fp32 or bf16: the trained model's storage type on the GPU (model.h, precision_select)
    // the randomly initialised model (when there is no --init)
    int layers, hidden, heads, intermediate;
    // --train bi-encoder: the embedding model instead of the reranker (retrieval/biencoder.h)
    int biencoder;
    double tau;                // temperature of the cosines
    double rating_t;           // temperature of the ratings (0: the link's, biencoder_rating_temperature)
    int in_batch;              // other queries' documents of the step are negatives too
} Options;

static void options_default(Options* o) {
    memset(o, 0, sizeof(*o));
    o->run_dir = "runs/default";
    o->judge = NULL;
    o->split = "test";
    o->eval_frac = 0.2;
    o->val_frac = 0.1;
    o->candidates = 100;
    o->candidates_from = -1;
    o->rrf_k = RRF_DEFAULT_K;
    o->cycles = 4;
    o->cross_pairs = 2;
    o->bm25_k1 = BM25_DEFAULT_K1;
    o->bm25_b = BM25_DEFAULT_B;
    o->link = ZELO_LINK_THURSTONE;
    o->lambda = -1.0;
    o->loss = LOSS_RATING_PAIRS;
    o->max_len = 0;
    o->batch_size = 32;
    o->group_size = 8;
    o->group_draw = GROUP_DRAW_UNIFORM;
    o->grad_accum = 1;
    o->steps = 0;
    o->rounds = 1;
    o->mine_depth = 0;  // 2 x --candidates, set after parsing
    o->mine_docs = 10;
    o->mine_pairs = 10;
    o->lr = 0.0f;  // set after parsing: it depends on --init
    o->cosine_scale = -1.0f;
    o->warmup_frac = 0.1f;
    o->head_lr_scale = 1.0f;
    o->head = -1;
    o->packing = -1;
    o->gate_init = SPLIT_GATE_INIT;
    o->gate_lr = DEFAULT_GATE_LR;
    o->weight_decay = 0.01f;
    o->grad_clip = 1.0f;
    o->schedule = SCHEDULE_LINEAR;
    o->eval_every = 0;
    o->checkpoint_every = 0;
    o->seed = 42;
    o->device = "auto";
    o->precision = "fp32";
    o->layers = 2;
    o->hidden = 128;
    o->heads = 4;
    o->intermediate = 512;
    o->tau = BIENCODER_DEFAULT_TAU;
}

static void usage(FILE* fp) {
    fprintf(fp,
"usage: train_zelo [options]\n"
"Trains a cross-encoder reranker with zELO. Without --data it runs the whole method on a\n"
"built-in synthetic collection with the simulated judge and a small random model.\n"
"Run as several processes with mpirun -np P ./train_zelo (a build with MPI): every stage\n"
"is shared out, rank 0 prints and writes the run directory, which all ranks must see.\n"
"\n"
"data and run\n"
"  --data DIR            BEIR collection (corpus.jsonl, queries.jsonl, qrels/*.tsv)\n"
"  --run-dir DIR         where every stage writes its files [runs/default]\n"
"  --split NAME          qrels split of the evaluation queries [test]\n"
"  --eval-frac F         held-out fraction of the judged queries when there is no train\n"
"                        split [0.2]\n"
"  --val-frac F          judged training queries set aside (not trained on) to fit the\n"
"                        weight of the model against the first stage by the judge's\n"
"                        ratings: the reranker's final order (0: the model alone) [0.1]\n"
"  --resume              continue from the last checkpoint in the run directory\n"
"  --stop-at N           stop after step N with a checkpoint, as if interrupted there\n"
"  --seed N              seed of every random choice [42]\n"
"  --threads N           OpenMP threads [all cores]\n"
"  --matmul PATH         matrix products: kernels (gemm.c), openblas, loops [kernels]\n"
"  --device D            where the run's models (reranker, dense model, model judges)\n"
"                        and the rating fit run: auto (the GPU when one is visible),\n"
"                        cpu, cuda [auto]\n"
"  --precision P         the trained model's weights and activations on the GPU: fp32\n"
"                        (the CPU's twin) or bf16 (fp32 master weights, AdamW state and\n"
"                        gradients); the dense model and model judges stay fp32 [fp32]\n"
"candidates and judgments\n"
"  --candidates K        first-stage candidates per query [100]\n"
"  --candidates-from S   bm25, dense (exact search with --dense-model's embeddings) or\n"
"                        hybrid (the two fused by reciprocal rank fusion)\n"
"                        [hybrid with --dense-model, else bm25]\n"
"  --rrf-k K             the fusion's k: a document scores sum 1/(k + rank) [60]\n"
"  --bm25-k1 X --bm25-b X  BM25 parameters [0.9, 0.4]\n"
"  --cycles N            random Hamiltonian cycles per query, k = 2N battles per doc [4]\n"
"  --judge SPEC          sim | bm25 | dense | file:PATH | cmd:COMMAND | model:CKPT,\n"
"                        or an ensemble joined by '+' [sim with no --data, else bm25+dense]\n"
"  --judge-combine R     how an ensemble's answers combine: mean (of the members' p) or\n"
"                        vote (each member's direction, +1/0/-1, averaged) [mean]\n"
"  --judge-timeout S     seconds a cmd judge may go without reading or writing a byte\n"
"                        before it is killed and the run stops [600]\n"
"  --dense-model DIR     Hugging Face bi-encoder for the dense judge and baseline\n"
"  --cross-pairs M       battles per edge of the cross-query cycles for the calibration;\n"
"                        0 turns calibration off (offsets b = 0) [2]\n"
"  --distill N           the judge answers N sampled battles, a pairwise model (started\n"
"                        like the reranker) learns them and judges every battle [0: off]\n"
"  --distill-steps N     training steps of that pairwise model [one pass over the N]\n"
"  --link thurstone|bt   link of the rating fit [thurstone]\n"
"  --lambda X            prior precision of the rating fit [0.01 thurstone, 0.002 bt]\n"
"model and training\n"
"  --train reranker|bi-encoder   what the targets train: the cross-encoder, or a\n"
"                        mean-pooled embedding model (from --init, by default the\n"
"                        --dense-model), evaluated by retrieval over the whole corpus [reranker]\n"
"  --tau X               bi-encoder: temperature of the cosines in the listwise loss [0.05]\n"
"  --rating-temperature X  bi-encoder: temperature of the ratings' softmax, the target\n"
"                        [the link's scale: 0.4155 thurstone, 1 bt]\n"
"  --in-batch-negatives  bi-encoder: the other queries' documents of a step are negatives\n"
"  --init PATH           Hugging Face directory (config.json, model.safetensors) or a\n"
"                        train_zelo checkpoint (.bin); without it a random model\n"
"  --vocab PATH          vocab.txt / tokenizer.json / directory [from --init or the data]\n"
"  --layers N --hidden N --heads N --intermediate N   the random model [2, 128, 4, 512]\n"
"  --loss mse|bce|pairwise|listwise|rating-pairs   training loss [rating-pairs: every\n"
"                        pair of a group against the link of its ratings' difference;\n"
"                        mse is the paper's pointwise loss]\n"
"  --max-len N           tokens per (query, document) sequence [256; 128 synthetic]\n"
"  --batch-size N        sequences per micro-batch of each process [32]; with mpirun -np P\n"
"                        a step trains on P x N x --grad-accum sequences\n"
"  --group-size N        documents of one query in a batch [8]\n"
"  --group-draw uniform|rank   how a group's documents are drawn from the query's\n"
"                        candidates: uniform, or weighted by 1/log2(2 + their rank by\n"
"                        rating), NDCG's discount [uniform]\n"
"  --grad-accum N        micro-batches per optimizer step [1]\n"
"  --head-fit N          fit the score head on the frozen encoder's features of N\n"
"                        training sequences before training (0: off) [0]\n"
"  --steps N             optimizer steps of a round [one epoch over the training items,\n"
"                        at least 300; 2000 for a random model on the synthetic collection]\n"
"  --rounds N            rounds of training; after each but the last, the model scores\n"
"                        the top --mine-depth first-stage documents of every training\n"
"                        query, and the next round adds battles where it fails: new\n"
"                        documents it ranks in its top --candidates, and unjudged pairs it\n"
"                        orders against the ratings; the judge answers them, the ratings\n"
"                        are refitted, and training goes on from the model [1]\n"
"  --mine-depth D        the pool a round's model scores per query (> --candidates)\n"
"                        [2 x --candidates]\n"
"  --mine-docs N         new documents per query and round, at most [10]\n"
"  --mine-pairs N        pairs per query and round judged where the model disagrees\n"
"                        with the ratings, at most [10]; with --mine-docs 0 too, each\n"
"                        round only restarts the schedule: the control for what mining adds\n"
"  --lr X                peak learning rate [1e-4 with --init; for a random model 1e-3\n"
"                        with --data, 3e-4 on the synthetic collection]\n"
"  --head-lr-scale S     the score head's (pooler, classifier) rate is S x --lr: a head\n"
"                        drawn at random on a pretrained encoder may want larger steps [1]\n"
"  --head cls|cosine|maxsim|cosine+maxsim   the score: cls, BERT's pooler and\n"
"                        classifier on [CLS]; cosine, a scale x the cosine of the query's\n"
"                        and the document's mean-pooled tokens; maxsim, a scale x the mean\n"
"                        over the query's tokens of each one's best cosine with a document\n"
"                        token; cosine+maxsim, a scale x their sum (none but cls has\n"
"                        --export) [cosine+maxsim for an encoder without a trained\n"
"                        classifier; cosine for a random model; cls with a classifier,\n"
"                        with --export or --head-fit; a checkpoint's own]\n"
"  --packing joint|split  the reranker's sequence: joint, [CLS] q [SEP] d [SEP]; split,\n"
"                        [CLS] q [SEP] [CLS] d [SEP] with positions restarting at the\n"
"                        document and a learnt bias per layer and head on the attention\n"
"                        across the two, which starts closed: a cross-encoder that starts\n"
"                        as the bi-encoder (cosine term); not for the cls head [split\n"
"                        for a head with the cosine term on a pretrained encoder without\n"
"                        a classifier, else joint; a checkpoint's own]\n"
"  --gate-init X         the split packing's gates before training [-6]\n"
"  --gate-lr X           the gates' learning rate, under --lr's schedule [0.03]\n"
"  --cosine-scale fit|X  the scale of every head but cls: fit, fitted to the ratings of 16\n"
"                        training queries before the first step, or X [fit; an --init\n"
"                        checkpoint's own]\n"
"  --warmup F            fraction of the steps spent warming up [0.1]\n"
"  --schedule linear|cosine   decay after the warm-up [linear]\n"
"  --weight-decay X      AdamW decoupled weight decay [0.01]\n"
"  --grad-clip X         global gradient-norm clip, 0 for none [1.0]\n"
"  --eval-every N        evaluate every N steps [steps/5, rounded up]\n"
"  --checkpoint-every N  checkpoint every N steps [steps/5]\n"
"  --export DIR          write the trained model as a Hugging Face directory (a bi-encoder:\n"
"                        a sentence-transformers folder)\n"
"  --zero                ZeRO stage 1 (several processes, CPU): each process keeps the\n"
"                        AdamW state of 1/P of the weights and updates those, then all\n"
"                        share the weights: the same weights as without it, less memory\n"
"  -h, --help            this text\n");
}

// the value of a numeric option, or an error naming the option
static double parse_number_option(const char* name, const char* value, double lo, double hi) {
    char* end = NULL;
    errno = 0;
    double v = strtod(value, &end);
    if (errno != 0 || end == value || *end != '\0' || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "train_zelo: --%s wants a number in [%g, %g], got '%s'\n", name, lo, hi, value);
        exit(2);
    }
    return v;
}

static int parse_int_option(const char* name, const char* value, int lo, int hi) {
    double v = parse_number_option(name, value, lo, hi);
    if (v != floor(v)) {
        fprintf(stderr, "train_zelo: --%s wants a whole number, got '%s'\n", name, value);
        exit(2);
    }
    return (int)v;
}

static void parse_options(Options* o, int argc, char** argv) {
    enum { O_DATA = 256, O_RUN_DIR, O_SPLIT, O_EVAL_FRAC, O_VAL_FRAC, O_RESUME, O_SEED, O_THREADS,
           O_CANDIDATES, O_K1, O_B, O_CYCLES, O_JUDGE, O_DENSE, O_CROSS, O_LINK, O_LAMBDA,
           O_INIT, O_VOCAB, O_LAYERS, O_HIDDEN, O_HEADS, O_INTER, O_LOSS, O_MAX_LEN,
           O_BATCH, O_GROUP, O_ACCUM, O_STEPS, O_LR, O_HEAD_LR_SCALE, O_HEAD, O_COSINE_SCALE, O_WARMUP, O_SCHEDULE, O_WD, O_CLIP,
           O_EVAL_EVERY, O_CKPT_EVERY, O_EXPORT, O_STOP_AT, O_DISTILL, O_DISTILL_STEPS, O_HEAD_FIT, O_MATMUL, O_JUDGE_TIMEOUT,
           O_DEVICE, O_ZERO, O_JUDGE_COMBINE, O_CANDIDATES_FROM, O_RRF_K, O_TRAIN, O_TAU, O_RATING_T, O_IN_BATCH,
           O_ROUNDS, O_MINE_DEPTH, O_MINE_DOCS, O_MINE_PAIRS, O_PACKING, O_GATE_INIT, O_GATE_LR, O_GROUP_DRAW,
           O_PRECISION };
    static const struct option longopts[] = {
        {"data", required_argument, 0, O_DATA}, {"run-dir", required_argument, 0, O_RUN_DIR},
        {"split", required_argument, 0, O_SPLIT}, {"eval-frac", required_argument, 0, O_EVAL_FRAC},
        {"val-frac", required_argument, 0, O_VAL_FRAC},
        {"resume", no_argument, 0, O_RESUME}, {"seed", required_argument, 0, O_SEED},
        {"threads", required_argument, 0, O_THREADS}, {"matmul", required_argument, 0, O_MATMUL},
        {"device", required_argument, 0, O_DEVICE}, {"zero", no_argument, 0, O_ZERO},
        {"precision", required_argument, 0, O_PRECISION},
        {"candidates", required_argument, 0, O_CANDIDATES},
        {"candidates-from", required_argument, 0, O_CANDIDATES_FROM}, {"rrf-k", required_argument, 0, O_RRF_K},
        {"bm25-k1", required_argument, 0, O_K1}, {"bm25-b", required_argument, 0, O_B},
        {"cycles", required_argument, 0, O_CYCLES}, {"judge", required_argument, 0, O_JUDGE},
        {"judge-timeout", required_argument, 0, O_JUDGE_TIMEOUT},
        {"judge-combine", required_argument, 0, O_JUDGE_COMBINE},
        {"dense-model", required_argument, 0, O_DENSE}, {"cross-pairs", required_argument, 0, O_CROSS},
        {"link", required_argument, 0, O_LINK}, {"lambda", required_argument, 0, O_LAMBDA},
        {"init", required_argument, 0, O_INIT}, {"vocab", required_argument, 0, O_VOCAB},
        {"layers", required_argument, 0, O_LAYERS}, {"hidden", required_argument, 0, O_HIDDEN},
        {"heads", required_argument, 0, O_HEADS}, {"intermediate", required_argument, 0, O_INTER},
        {"loss", required_argument, 0, O_LOSS}, {"max-len", required_argument, 0, O_MAX_LEN},
        {"batch-size", required_argument, 0, O_BATCH}, {"group-size", required_argument, 0, O_GROUP},
        {"group-draw", required_argument, 0, O_GROUP_DRAW},
        {"grad-accum", required_argument, 0, O_ACCUM}, {"steps", required_argument, 0, O_STEPS},
        {"lr", required_argument, 0, O_LR}, {"head-lr-scale", required_argument, 0, O_HEAD_LR_SCALE}, {"head", required_argument, 0, O_HEAD}, {"cosine-scale", required_argument, 0, O_COSINE_SCALE},
        {"packing", required_argument, 0, O_PACKING}, {"gate-init", required_argument, 0, O_GATE_INIT},
        {"gate-lr", required_argument, 0, O_GATE_LR}, {"warmup", required_argument, 0, O_WARMUP},
        {"schedule", required_argument, 0, O_SCHEDULE}, {"weight-decay", required_argument, 0, O_WD},
        {"grad-clip", required_argument, 0, O_CLIP}, {"eval-every", required_argument, 0, O_EVAL_EVERY},
        {"checkpoint-every", required_argument, 0, O_CKPT_EVERY}, {"export", required_argument, 0, O_EXPORT},
        {"stop-at", required_argument, 0, O_STOP_AT}, {"distill", required_argument, 0, O_DISTILL},
        {"distill-steps", required_argument, 0, O_DISTILL_STEPS}, {"head-fit", required_argument, 0, O_HEAD_FIT},
        {"train", required_argument, 0, O_TRAIN}, {"tau", required_argument, 0, O_TAU},
        {"rating-temperature", required_argument, 0, O_RATING_T}, {"in-batch-negatives", no_argument, 0, O_IN_BATCH},
        {"rounds", required_argument, 0, O_ROUNDS}, {"mine-depth", required_argument, 0, O_MINE_DEPTH},
        {"mine-docs", required_argument, 0, O_MINE_DOCS}, {"mine-pairs", required_argument, 0, O_MINE_PAIRS},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
            case O_DATA: o->data_dir = optarg; break;
            case O_RUN_DIR: o->run_dir = optarg; break;
            case O_SPLIT: o->split = optarg; break;
            case O_EVAL_FRAC: o->eval_frac = parse_number_option("eval-frac", optarg, 0.0, 1.0); break;
            case O_VAL_FRAC: o->val_frac = parse_number_option("val-frac", optarg, 0.0, 0.5); break;
            case O_RESUME: o->resume = 1; break;
            case O_SEED: o->seed = (uint64_t)parse_number_option("seed", optarg, 0, 9007199254740992.0); break;
            case O_THREADS: o->threads = parse_int_option("threads", optarg, 1, 4096); break;
            case O_MATMUL: {
                const char* err = matmul_select(optarg);
                if (err != NULL) { fprintf(stderr, "train_zelo: --matmul '%s': %s\n", optarg, err); exit(2); }
                break;
            }
            case O_DEVICE: o->device = optarg; break;
            case O_PRECISION: o->precision = optarg; break;
            case O_ZERO: o->zero = 1; break;
            case O_CANDIDATES: o->candidates = parse_int_option("candidates", optarg, 2, 100000); break;
            case O_CANDIDATES_FROM:
                o->candidates_from = candidate_source_parse(optarg);
                if (o->candidates_from < 0) {
                    fprintf(stderr, "train_zelo: --candidates-from '%s': write bm25, dense or hybrid\n", optarg);
                    exit(2);
                }
                break;
            case O_RRF_K: o->rrf_k = parse_int_option("rrf-k", optarg, 0, 1000000); break;
            case O_K1: o->bm25_k1 = (float)parse_number_option("bm25-k1", optarg, 0.0, 100.0); break;
            case O_B: o->bm25_b = (float)parse_number_option("bm25-b", optarg, 0.0, 1.0); break;
            case O_CYCLES: o->cycles = parse_int_option("cycles", optarg, 1, 1000); break;
            case O_JUDGE: o->judge = optarg; break;
            case O_JUDGE_TIMEOUT: o->judge_timeout = parse_number_option("judge-timeout", optarg, 1e-3, 1e7); break;
            case O_JUDGE_COMBINE:
                if (!judge_combine_parse(&o->judge_combine, optarg)) {
                    fprintf(stderr, "train_zelo: --judge-combine '%s': write mean or vote\n", optarg);
                    exit(2);
                }
                break;
            case O_DENSE: o->dense_model = optarg; break;
            case O_CROSS: o->cross_pairs = parse_int_option("cross-pairs", optarg, 0, 1000); break;
            case O_LINK:
                if (!zelo_link_parse(&o->link, optarg)) {
                    fprintf(stderr, "train_zelo: --link wants thurstone or bt, got '%s'\n", optarg);
                    exit(2);
                }
                break;
            case O_LAMBDA: o->lambda = parse_number_option("lambda", optarg, 0.0, 1e6); break;
            case O_INIT: o->init = optarg; break;
            case O_VOCAB: o->vocab = optarg; break;
            case O_LAYERS: o->layers = parse_int_option("layers", optarg, 1, 128); break;
            case O_HIDDEN: o->hidden = parse_int_option("hidden", optarg, 8, 16384); break;
            case O_HEADS: o->heads = parse_int_option("heads", optarg, 1, 256); break;
            case O_INTER: o->intermediate = parse_int_option("intermediate", optarg, 8, 65536); break;
            case O_LOSS:
                if (strcmp(optarg, "mse") == 0) { o->loss = LOSS_MSE; }
                else if (strcmp(optarg, "bce") == 0) { o->loss = LOSS_BCE; }
                else if (strcmp(optarg, "pairwise") == 0) { o->loss = LOSS_PAIRWISE; }
                else if (strcmp(optarg, "listwise") == 0) { o->loss = LOSS_LISTWISE; }
                else if (strcmp(optarg, "rating-pairs") == 0) { o->loss = LOSS_RATING_PAIRS; }
                else {
                    fprintf(stderr, "train_zelo: --loss wants mse, bce, pairwise, listwise or rating-pairs, got '%s'\n", optarg);
                    exit(2);
                }
                break;
            case O_MAX_LEN: o->max_len = parse_int_option("max-len", optarg, 8, 1 << 20); break;
            case O_BATCH: o->batch_size = parse_int_option("batch-size", optarg, 1, 1 << 20); break;
            case O_GROUP: o->group_size = parse_int_option("group-size", optarg, 2, 1 << 20); break;
            case O_GROUP_DRAW:
                if (strcmp(optarg, "uniform") == 0) { o->group_draw = GROUP_DRAW_UNIFORM; }
                else if (strcmp(optarg, "rank") == 0) { o->group_draw = GROUP_DRAW_RANK; }
                else { fprintf(stderr, "train_zelo: --group-draw must be uniform or rank, not '%s'\n", optarg); exit(2); }
                break;
            case O_ACCUM: o->grad_accum = parse_int_option("grad-accum", optarg, 1, 1 << 20); break;
            case O_STEPS: o->steps = parse_int_option("steps", optarg, 1, 1 << 30); break;
            case O_LR: o->lr = (float)parse_number_option("lr", optarg, 1e-12, 10.0); break;
            case O_HEAD:
                o->head = -1;  // a later --head replaces an earlier one
                for (int h = SCORE_HEAD_CLS; h <= SCORE_HEAD_COSINE_MAXSIM; h++) {
                    if (strcmp(optarg, score_head_name((ScoreHead)h)) == 0) { o->head = h; }
                }
                if (o->head < 0) { fprintf(stderr, "train_zelo: --head wants cls, cosine, maxsim or cosine+maxsim, got '%s'\n", optarg); exit(2); }
                break;
            case O_COSINE_SCALE:
                if (strcmp(optarg, "fit") == 0) { o->cosine_scale = 0.0f; break; }
                char* end = NULL;
                double v = strtod(optarg, &end);
                if (end == optarg || *end != '\0' || !(v >= ZELO_SCALE_FIT_MIN && v <= ZELO_SCALE_FIT_MAX)) {
                    fprintf(stderr, "train_zelo: --cosine-scale wants fit or a number in [%g, %g], got '%s'\n",
                            ZELO_SCALE_FIT_MIN, ZELO_SCALE_FIT_MAX, optarg);
                    exit(2);
                }
                o->cosine_scale = (float)v;
                break;
            case O_PACKING:
                if (strcmp(optarg, "joint") == 0) { o->packing = PACKING_JOINT; }
                else if (strcmp(optarg, "split") == 0) { o->packing = PACKING_SPLIT; }
                else { fprintf(stderr, "train_zelo: --packing wants joint or split, got '%s'\n", optarg); exit(2); }
                break;
            case O_GATE_INIT: o->gate_init = (float)parse_number_option("gate-init", optarg, -30.0, 30.0); break;
            case O_GATE_LR: o->gate_lr = (float)parse_number_option("gate-lr", optarg, 0.0, 10.0); break;
            case O_HEAD_LR_SCALE: o->head_lr_scale = (float)parse_number_option("head-lr-scale", optarg, 1e-6, 1e6); break;
            case O_WARMUP: o->warmup_frac = (float)parse_number_option("warmup", optarg, 0.0, 1.0); break;
            case O_SCHEDULE:
                if (strcmp(optarg, "linear") == 0) { o->schedule = SCHEDULE_LINEAR; }
                else if (strcmp(optarg, "cosine") == 0) { o->schedule = SCHEDULE_COSINE; }
                else { fprintf(stderr, "train_zelo: --schedule wants linear or cosine, got '%s'\n", optarg); exit(2); }
                break;
            case O_WD: o->weight_decay = (float)parse_number_option("weight-decay", optarg, 0.0, 10.0); break;
            case O_CLIP: o->grad_clip = (float)parse_number_option("grad-clip", optarg, 0.0, 1e9); break;
            case O_EVAL_EVERY: o->eval_every = parse_int_option("eval-every", optarg, 1, 1 << 30); break;
            case O_CKPT_EVERY: o->checkpoint_every = parse_int_option("checkpoint-every", optarg, 1, 1 << 30); break;
            case O_EXPORT: o->export_dir = optarg; break;
            case O_STOP_AT: o->stop_at = parse_int_option("stop-at", optarg, 1, 1 << 30); break;
            case O_DISTILL: o->distill = parse_int_option("distill", optarg, 0, 1 << 30); break;
            case O_DISTILL_STEPS: o->distill_steps = parse_int_option("distill-steps", optarg, 1, 1 << 30); break;
            case O_HEAD_FIT: o->head_fit = parse_int_option("head-fit", optarg, 0, 1 << 30); break;
            case O_TRAIN:
                if (strcmp(optarg, "reranker") == 0) { o->biencoder = 0; }
                else if (strcmp(optarg, "bi-encoder") == 0) { o->biencoder = 1; }
                else { fprintf(stderr, "train_zelo: --train wants reranker or bi-encoder, got '%s'\n", optarg); exit(2); }
                break;
            case O_TAU: o->tau = parse_number_option("tau", optarg, 1e-4, 100.0); break;
            case O_RATING_T: o->rating_t = parse_number_option("rating-temperature", optarg, 1e-4, 100.0); break;
            case O_IN_BATCH: o->in_batch = 1; break;
            case O_ROUNDS: o->rounds = parse_int_option("rounds", optarg, 1, MAX_ROUNDS); break;
            case O_MINE_DEPTH: o->mine_depth = parse_int_option("mine-depth", optarg, 2, 100000); break;
            case O_MINE_DOCS: o->mine_docs = parse_int_option("mine-docs", optarg, 0, 100000); break;
            case O_MINE_PAIRS: o->mine_pairs = parse_int_option("mine-pairs", optarg, 0, 1000000); break;
            case 'h': usage(stdout); dist_finalize(); exit(0);
            default: usage(stderr); exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "train_zelo: unexpected argument '%s' (see --help)\n", argv[optind]);
        exit(2);
    }
    if (o->batch_size % o->group_size != 0) {
        fprintf(stderr, "train_zelo: --batch-size (%d) must be a multiple of --group-size (%d)\n",
                o->batch_size, o->group_size);
        exit(2);
    }
    // twice the candidates: as many documents again that the first stage ranked just below them
    if (o->mine_depth == 0) { o->mine_depth = 2 * o->candidates; }
    if (o->rounds > 1 && o->mine_depth <= o->candidates) {
        fprintf(stderr, "train_zelo: --mine-depth (%d) must be larger than --candidates (%d): the documents a round "
                "takes in come from the first stage's list past the candidates\n", o->mine_depth, o->candidates);
        exit(2);
    }
    if (o->lambda < 0) {
        o->lambda = o->link == ZELO_LINK_BT ? ZELO_DEFAULT_LAMBDA_BT : ZELO_DEFAULT_LAMBDA_THURSTONE;
    }
    if (o->judge == NULL) { o->judge = o->data_dir == NULL ? "sim" : "bm25+dense"; }
    // not shared out across processes yet: the head fit
    if (dist.size > 1 && o->head_fit > 0) {
        fprintf(stderr, "train_zelo: --head-fit runs as one process for now: launch it without mpirun -np %d\n", dist.size);
        exit(2);
    }
    if (o->biencoder) {
        if (o->init == NULL) { o->init = o->dense_model; }
        if (o->rating_t == 0.0) { o->rating_t = biencoder_rating_temperature(o->link); }
        // its training keeps no checkpoints: a run is short, and rerun from the stage files
        if (o->resume || o->stop_at > 0) {
            fprintf(stderr, "train_zelo: --train bi-encoder keeps no checkpoints: --resume and --stop-at are for the reranker\n");
            exit(2);
        }
        // a round's failures are the reranker's: mined by its scores over the pool
        if (o->rounds > 1) {
            fprintf(stderr, "train_zelo: --rounds mines the reranker's failures: leave it out with --train bi-encoder\n");
            exit(2);
        }
        // its training step is not shared out across processes yet: one process trains it
        if (dist.size > 1) {
            fprintf(stderr, "train_zelo: --train bi-encoder runs as one process (its step is not shared out across "
                    "processes yet): launch it without mpirun -np %d\n", dist.size);
            exit(2);
        }
    }
    // fine-tuning a pretrained encoder wants a small step; a model trained from scratch
    // learns nothing in a short run at that rate. On the synthetic collection 1e-3 was
    // unstable for the random post-LN model (one run of 2,500 steps ended at its untrained
    // NDCG@10) and 3e-4 learned best (2,000 steps: 0.386 -> 0.681; 5e-4: 0.649, 1e-3: 0.38..0.58)
    // with --init: twice the usual 5e-5, which raised the model on five of six held-out splits of
    // Cranfield and CISI at the default budget (README, issue 13)
    if (o->lr == 0.0f) { o->lr = o->init != NULL ? 1e-4f : o->data_dir != NULL ? 1e-3f : 3e-4f; }
    // the synthetic collection's texts are short: query + document fit in 128 tokens
    if (o->max_len == 0) { o->max_len = o->data_dir == NULL ? 128 : 256; }
    // a model from random weights on the synthetic collection needs about 4.5 epochs to
    // learn term matching (measured: one epoch, 438 steps, left it near its untrained
    // NDCG@10; 2,000 steps take about 30 s on two cores)
    if (o->steps == 0 && o->data_dir == NULL && o->init == NULL) { o->steps = 2000; }
}

// ----------------------------------------------------------------------------
// run directory, progress and log

// the JSONL log of the run: one object per line, flushed at once so a plot can follow it
static FILE* log_open(const char* run_dir) {
    char path[4096];
    joinPathCheck(path, sizeof(path), run_dir, "log.jsonl");
    return fopenCheck(path, "a");
}

// ----------------------------------------------------------------------------
// stage files: 256 int32 header (magic, version, then the settings the file was made
// with), then the payload. A file made with other settings is refused by name.

#define STAGE_VERSION 1
#define CANDIDATES_MAGIC 0x7A43414E  // "NACz"
#define TARGETS_MAGIC 0x7A544754     // "TGTz"

static void header_check(const int* header, const int* want, int n, const char* path, const char* what) {
    for (int i = 0; i < n; i++) {
        if (header[i] != want[i]) {
            die("%s was made with other settings than this run's (%s: header field %d is %d, want %d); "
                "use another --run-dir or delete the file", path, what, i, header[i], want[i]);
        }
    }
}

// reads a stage file's 256-word header: its first n words must be want's, every word from
// reserved_from on must be 0 (the words between are the file's own, such as counts)
static void stage_header_read(int* header /* (256,) */, FILE* fp, const int* want, int n, int reserved_from,
                              const char* path, const char* what) {
    freadCheck(header, sizeof(int), 256, fp);
    header_check(header, want, n, path, what);
    for (int i = reserved_from; i < 256; i++) {
        if (header[i] != 0) { die("%s: %s, reserved header word %d is %d, not 0: a damaged file; delete it", path, what, i, header[i]); }
    }
}

static int float_bits(float f) {
    int i;
    memcpy(&i, &f, sizeof(i));
    return i;
}

// ----------------------------------------------------------------------------
// several processes (common/dist.h): rank 0 writes the run directory, which every rank reads
// (one filesystem, as for --resume); each stage's work is shared out by blocks of items

// whether path exists, as rank 0 sees it: every rank then takes the same branch of a stage (a
// rank that looked after rank 0 wrote the file would read it while the others compute it)
static int file_exists_on_rank0(const char* path) {
    int exists = dist.rank == 0 ? file_exists(path) : 0;
    dist_broadcast(&exists, sizeof(exists), 0);
    return exists;
}

// ----------------------------------------------------------------------------
// the collection and its split into training and evaluation queries

typedef struct {
    char dir[4096];
    Corpus corpus;
    Queries queries;
    Qrels eval_qrels;      // judgments of the evaluation queries (and, without a train split, of all)
    Qrels train_qrels;     // judgments of the training queries (the sim judge reads them)
    int has_train_split;
    int n_train, n_eval;
    int* train_queries;    // (n_train,) query indices
    int* eval_queries;     // (n_eval,) query indices, each with at least one judgment
} Collection;

static int qrels_count(const Qrels* q, int query) { return q->query_start[query + 1] - q->query_start[query]; }

static void collection_load(Collection* c, const Options* o) {
    char path[4096];
    if (o->data_dir != NULL) {
        snprintf(c->dir, sizeof(c->dir), "%s", o->data_dir);
    } else {
        joinPathCheck(c->dir, sizeof(c->dir), o->run_dir, "synthetic");
        joinPathCheck(path, sizeof(path), c->dir, "corpus.jsonl");
        if (!file_exists_on_rank0(path)) {  // rank 0 writes it, the others wait to read it
            if (dist.rank == 0) {
                SynthConfig sc;
                synth_default_config(&sc);
                sc.seed = o->seed;
                printf("no --data: generating the built-in synthetic collection in %s\n", c->dir);
                synth_write_collection(c->dir, &sc);
            }
            dist_barrier();
        }
    }
    joinPathCheck(path, sizeof(path), c->dir, "corpus.jsonl");
    beir_load_corpus(&c->corpus, path);
    joinPathCheck(path, sizeof(path), c->dir, "queries.jsonl");
    beir_load_queries(&c->queries, path);
    char name[256];
    snprintf(name, sizeof(name), "qrels/%s.tsv", o->split);
    joinPathCheck(path, sizeof(path), c->dir, name);
    if (!file_exists(path)) { die("no evaluation judgments: %s does not exist (see --split)", path); }
    beir_load_qrels(&c->eval_qrels, path, &c->corpus, &c->queries, 0);
    joinPathCheck(path, sizeof(path), c->dir, "qrels/train.tsv");
    c->has_train_split = strcmp(o->split, "train") != 0 && file_exists(path);
    if (c->has_train_split) {
        beir_load_qrels(&c->train_qrels, path, &c->corpus, &c->queries, 0);
    }
    // which queries train and which evaluate: the collection's own train split when it
    // has one, else a seeded hash of each judged query's id (stable under reordering of
    // the files) holds out --eval-frac of the judged queries; a query without judgments
    // cannot be evaluated, so it always trains
    int nq = c->queries.n;
    c->train_queries = (int*)mallocCheck((size_t)nq * sizeof(int));
    c->eval_queries = (int*)mallocCheck((size_t)nq * sizeof(int));
    c->n_train = c->n_eval = 0;
    const Qrels* judge_qrels = c->has_train_split ? &c->train_qrels : &c->eval_qrels;
    for (int q = 0; q < nq; q++) {
        int judged = qrels_count(&c->eval_qrels, q) > 0;
        int held_out = c->has_train_split ? judged : judged && beir_query_is_eval(beir_id(&c->queries, q), o->seed, o->eval_frac);
        if (held_out) {
            if (qrels_count(&c->eval_qrels, q) > 0) { c->eval_queries[c->n_eval++] = q; }
        } else if (qrels_count(judge_qrels, q) > 0 || c->has_train_split == 0) {
            c->train_queries[c->n_train++] = q;
        }
    }
    printf("collection %s: %d documents, %d queries; %d training queries, %d evaluation queries (%s)\n",
           c->dir, c->corpus.n, nq, c->n_train, c->n_eval,
           c->has_train_split ? "the collection's train split" : "held out by --eval-frac");
    if (c->n_train == 0) { die("no training queries in %s", c->dir); }
    if (c->n_eval == 0) { die("no evaluation queries with judgments in %s (split %s)", c->dir, o->split); }
}

static void collection_free(Collection* c) {
    beir_free_texts(&c->corpus);
    beir_free_texts(&c->queries);
    beir_free_qrels(&c->eval_qrels);
    if (c->has_train_split) { beir_free_qrels(&c->train_qrels); }
    free(c->train_queries);
    free(c->eval_queries);
}

// the judgments the simulated judge may see: those of the training queries only
static const Qrels* collection_judge_qrels(const Collection* c) {
    return c->has_train_split ? &c->train_qrels : &c->eval_qrels;
}

// the processes of the run, said once. A GPU run of several processes takes one GPU per
// process (by local rank), before anything is placed on a GPU, and needs NCCL to sum the
// gradients; all ranks must then manage it, or --device auto takes the CPU on every rank (a
// job whose ranks summed gradients in two ways would wait forever).
static void processes_setup(Device* device, const Options* o) {
    printf("processes: %d, MPI: %s%s\n", dist.size, dist_describe(),
           dist.size > 1 ? "; rank 0 prints and writes the run directory" : "");
    if (*device == DEVICE_CUDA && dist.size > 1) {
        double ready = dist_bind_gpu();
        dist_allreduce_sum_double(&ready, 1);
        if (ready < dist.size) {
            const char* why = dist_has_nccl() ? "a machine of the job has fewer GPUs than processes (one GPU each)"
                                              : "this build has no NCCL to sum gradients across GPUs (nccl.h and "
                                                "libnccl beside nvcc)";
            if (strcmp(o->device, "cuda") == 0) { die("--device cuda with %d processes: %s; or --device cpu", dist.size, why); }
            printf("device: auto takes the CPU on every process: %s\n", why);
            *device = DEVICE_CPU;
        }
    }
    if (o->zero && *device == DEVICE_CUDA) {
        die("--zero shards the AdamW state of the CPU backend; on a GPU each process keeps it whole (leave --zero out)");
    }
}

// ----------------------------------------------------------------------------
// stage 1: the top-K candidates of every query, from BM25, dense retrieval or their fusion

typedef struct {
    int n_queries;
    int K;
    int source;     // CANDIDATES_BM25, _DENSE or _HYBRID
    int* docs;      // (n_queries, K) corpus indices, best first; -1 past the corpus' end
    float* scores;  // (n_queries, K) the source's scores: BM25, cosine, or fused
} Candidates;

// the mean, over the queries that qrels judge relevant documents for, of the fraction of
// those documents (gain > 0) among the first `cut` of the query's list (lists (n_queries,
// depth), -1 ignored); *n_judged gets the number of such queries
static double mean_recall(int* n_judged, const int* lists, int depth, int cut, const Qrels* qr) {
    double sum = 0.0;
    int n = 0;
    for (int q = 0; q < qr->n_queries; q++) {
        int relevant = 0, found = 0;
        for (int j = qr->query_start[q]; j < qr->query_start[q + 1]; j++) {
            if (qr->gain[j] <= 0) { continue; }
            relevant++;
            const int* row = lists + (size_t)q * depth;
            for (int r = 0; r < cut && r < depth; r++) { found += row[r] == qr->doc[j]; }
        }
        if (relevant > 0) { sum += (double)found / relevant; n++; }
    }
    *n_judged = n;
    return n > 0 ? sum / n : 0.0;
}

// dense_store_fill with the embedding shared out: each rank embeds whole DENSE_CHUNKs of the
// missing items (so that every embedding has one process's bits, dense.h), and every rank
// stores them all
static void dense_fill_shared(DenseStore* store, BertModel* model, const Tokenizer* tok, const int* items,
                              const char* const* texts, int n) {
    int* todo = (int*)mallocCheck(sizeof(int) * (size_t)(n > 0 ? n : 1));
    const char** todo_texts = (const char**)mallocCheck(sizeof(char*) * (size_t)(n > 0 ? n : 1));
    int m = dense_store_missing(todo, todo_texts, store, items, texts, n), C = store->C;
    float* rows = (float*)mallocCheck(sizeof(float) * (size_t)(m > 0 ? m : 1) * C);
    int64_t chunks = (m + DENSE_CHUNK - 1) / DENSE_CHUNK;
    int64_t* displs = (int64_t*)mallocCheck(sizeof(int64_t) * (size_t)dist.size);
    int64_t* counts = (int64_t*)mallocCheck(sizeof(int64_t) * (size_t)dist.size);
    for (int r = 0; r < dist.size; r++) {
        int64_t c0, c1;
        dist_share(&c0, &c1, chunks, r);
        displs[r] = c0 * DENSE_CHUNK < m ? c0 * DENSE_CHUNK : m;
        counts[r] = (c1 * DENSE_CHUNK < m ? c1 * DENSE_CHUNK : m) - displs[r];
    }
    int64_t a = displs[dist.rank];
    dense_embed(rows + a * C, model, tok, todo_texts + a, (int)counts[dist.rank], store->max_len);
    dist_gatherv(rows, displs, counts, sizeof(float) * (size_t)C, -1);
    dense_store_put(store, todo, rows, m);
    free(todo); free(todo_texts); free(rows); free(displs); free(counts);
}

// every document and query embedded by the dense model (into the stores the dense judge and
// baseline read, dense_docs.bin and dense_queries.bin) and searched exactly: (nq, depth)
static void dense_candidates(int* docs, float* scores, int depth, const Collection* c, BertModel* dense,
                             const Tokenizer* tok, const char* run_dir) {
    const BeirTexts* sets[2] = {&c->corpus, &c->queries};
    const char* files[2] = {"dense_docs.bin", "dense_queries.bin"};
    DenseStore stores[2];
    for (int k = 0; k < 2; k++) {
        int n = sets[k]->n;
        const char** texts = (const char**)mallocCheck((size_t)n * sizeof(char*));
        int* items = (int*)mallocCheck((size_t)n * sizeof(int));
        for (int i = 0; i < n; i++) { texts[i] = beir_text(sets[k], i); items[i] = i; }
        char path[4096];
        joinPathCheck(path, sizeof(path), run_dir, files[k]);
        dense_store_init(&stores[k], dense, texts, n, DENSE_DEFAULT_MAX_LEN);
        dense_store_load(&stores[k], path);
        if (stores[k].n < n) {
            printf("dense: embedding %d %s of %d\n", n - stores[k].n, k == 0 ? "documents" : "queries", n);
            dense_fill_shared(&stores[k], dense, tok, items, texts, n);
            if (dist.rank == 0) { dense_store_save(&stores[k], path); }
        }
        free(texts);
        free(items);
    }
    int nq = c->queries.n, C = stores[1].C;
    float* q = (float*)mallocCheck(sizeof(float) * (size_t)nq * C);
    for (int i = 0; i < nq; i++) { memcpy(q + (size_t)i * C, dense_store_row(&stores[1], i), sizeof(float) * (size_t)C); }
    double t0 = wall_seconds();
    int64_t q0, q1;  // each rank searches its block of the queries
    dist_share(&q0, &q1, nq, dist.rank);
    dense_search(docs + q0 * depth, scores + q0 * depth, &stores[0], q + q0 * C, (int)(q1 - q0), depth);
    dist_allgather_blocks(docs, nq, (size_t)depth * sizeof(int));
    dist_allgather_blocks(scores, nq, (size_t)depth * sizeof(float));
    printf("dense: top-%d of %d queries over %d documents in %.2fs\n", depth, nq, c->corpus.n, wall_seconds() - t0);
    free(q);
    dense_store_free(&stores[0]);
    dense_store_free(&stores[1]);
}

static void candidates_header(int* want, const Collection* c, const Options* o, const BertModel* dense, int K) {
    int source = o->candidates_from;
    uint64_t model_hash = source != CANDIDATES_BM25 ? dense_model_hash(dense) : 0;
    // BM25 candidates leave words 7..10 zero, as files written before the other sources
    int w[11] = { CANDIDATES_MAGIC, STAGE_VERSION, c->corpus.n, c->queries.n, K, float_bits(o->bm25_k1),
                  float_bits(o->bm25_b), source, source == CANDIDATES_HYBRID ? o->rrf_k : 0,
                  (int)(model_hash & 0x7fffffff), (int)((model_hash >> 32) & 0x7fffffff) };
    memcpy(want, w, sizeof(w));
}

// candidates.bin: its header (candidates_header's words, the rest 0), docs, then scores
static int candidates_read(Candidates* cand, const Collection* c, const int* want, const char* path) {
    if (!file_exists_on_rank0(path)) { return 0; }
    int nq = cand->n_queries, K = cand->K;
    FILE* fp = fopenCheck(path, "rb");
    int64_t len = fileLengthCheck(fp, path);
    int header[256];
    stage_header_read(header, fp, want, 11, 11, path, "candidates");
    fileSizeMatchCheck(path, len, (int64_t)sizeof(header) + 2 * 4 * (int64_t)nq * K);
    freadCheck(cand->docs, sizeof(int), (size_t)nq * K, fp);
    freadCheck(cand->scores, sizeof(float), (size_t)nq * K, fp);
    fclose(fp);
    // a damaged file must not index outside the corpus; -1 only pads the end of a row
    for (int q = 0; q < nq; q++) {
        const int* row = cand->docs + (size_t)q * K;
        for (int j = 0; j < K; j++) {
            if (row[j] < -1 || row[j] >= c->corpus.n || (j > 0 && row[j] >= 0 && row[j - 1] < 0)) {
                die("%s: query %d, candidate %d is document %d, outside 0..%d or after the padding: a damaged "
                    "file; delete it", path, q, j, row[j], c->corpus.n - 1);
            }
        }
    }
    return 1;
}

static void candidates_write(const Candidates* cand, const int* want, const char* path) {
    int header[256] = {0};
    memcpy(header, want, 11 * sizeof(int));
    AtomicFile af;
    FILE* fp = atomicOpen(&af, path, "wb");
    fwriteCheck(header, sizeof(int), 256, fp);
    fwriteCheck(cand->docs, sizeof(int), (size_t)cand->n_queries * cand->K, fp);
    fwriteCheck(cand->scores, sizeof(float), (size_t)cand->n_queries * cand->K, fp);
    atomicCommit(&af);
}

static void bm25_index_stage(Bm25Index* index, const Collection* c, const Options* o) {
    char idx_path[4096];
    joinPathCheck(idx_path, sizeof(idx_path), o->run_dir, "bm25.idx");
    // rank 0 builds a missing index, the others wait for it and read it
    int exists = file_exists_on_rank0(idx_path);
    if (exists || dist.rank != 0) {
        if (!exists) { dist_barrier(); }
        bm25_load(index, idx_path);
        if (index->n_docs != c->corpus.n) { die("%s indexes %d documents, the corpus has %d; delete it", idx_path, index->n_docs, c->corpus.n); }
        bm25_set_params(index, o->bm25_k1, o->bm25_b);
        return;
    }
    double t0 = wall_seconds();
    const char** texts = (const char**)mallocCheck((size_t)c->corpus.n * sizeof(char*));
    for (int d = 0; d < c->corpus.n; d++) { texts[d] = beir_text(&c->corpus, d); }
    bm25_build(index, texts, c->corpus.n, NULL, 0, o->bm25_k1, o->bm25_b);
    free(texts);
    bm25_save(index, idx_path);
    printf("bm25: indexed %d documents (%d terms) in %.2fs\n", index->n_docs, index->n_terms, wall_seconds() - t0);
    dist_barrier();
}

// Each source retrieves to a depth of max(K, HYBRID_DEPTH), the fusion ranks the union of both
// lists, and each list's recall@100 (and @K) is printed beside the others'. Fusing only each
// source's top 100 left the fused top 50 of Cranfield below the dense model's (recall over its
// 225 judged queries, 50 candidates: 0.6857 against 0.6865): a document both sources rank
// between 100 and 300 then gets no credit for their agreement. Fused from the top 300, the
// fusion's recall@100 and @50 beat both sources' on Cranfield (0.7910, 0.7021) and CISI (0.5164,
// 0.3754; BM25 0.4303, 0.3013; dense 0.4707, 0.3221); from the top 1,000 it did the same
// (0.7911, 0.7000; 0.5132, 0.3749). RRF's k: 10, 30, 60 and 100 moved these by 0.01 at most,
// with no value better on both collections: the paper's 60 stays.
// what: "candidates" (the top K that train and are reranked, candidates.bin) or "mining pool"
// (--rounds: the deeper list whose documents a round may take in, pool.bin).
#define HYBRID_DEPTH 300
static void candidates_stage(Candidates* cand, const Collection* c, const Options* o, const Bm25Index* index,
                             BertModel* dense, const Tokenizer* dense_tok, int K, const char* file, const char* what) {
    char path[4096];
    joinPathCheck(path, sizeof(path), o->run_dir, file);
    int nq = c->queries.n, source = o->candidates_from;
    int want[11];
    candidates_header(want, c, o, dense, K);
    cand->n_queries = nq;
    cand->K = K;
    cand->source = source;
    cand->docs = (int*)mallocCheck((size_t)nq * K * sizeof(int));
    cand->scores = (float*)mallocCheck((size_t)nq * K * sizeof(float));
    if (candidates_read(cand, c, want, path)) {
        printf("%s: %s, read from %s\n", what, CANDIDATE_SOURCES[source], path);
        return;
    }
    int depth = K > HYBRID_DEPTH ? K : HYBRID_DEPTH;
    int* lists[3] = {NULL, NULL, NULL};  // bm25, dense, hybrid: (nq, depth) each
    float* list_scores[3] = {NULL, NULL, NULL};
    for (int k = 0; k < 3; k++) {
        if (k == CANDIDATES_HYBRID ? source != CANDIDATES_HYBRID : (source != k && source != CANDIDATES_HYBRID)) { continue; }
        lists[k] = (int*)mallocCheck(sizeof(int) * (size_t)nq * depth);
        list_scores[k] = (float*)mallocCheck(sizeof(float) * (size_t)nq * depth);
    }
    if (lists[CANDIDATES_BM25] != NULL) {
        // each rank searches its block of the queries; a query's list depends on it alone
        double t0 = wall_seconds();
        int64_t q0, q1;
        dist_share(&q0, &q1, nq, dist.rank);
        const char** texts = (const char**)mallocCheck((size_t)(q1 > q0 ? q1 - q0 : 1) * sizeof(char*));
        for (int64_t q = q0; q < q1; q++) { texts[q - q0] = beir_text(&c->queries, (int)q); }
        bm25_search(lists[CANDIDATES_BM25] + q0 * depth, list_scores[CANDIDATES_BM25] + q0 * depth, index, texts,
                    (int)(q1 - q0), depth);
        free(texts);
        dist_allgather_blocks(lists[CANDIDATES_BM25], nq, (size_t)depth * sizeof(int));
        dist_allgather_blocks(list_scores[CANDIDATES_BM25], nq, (size_t)depth * sizeof(float));
        printf("bm25: top-%d of %d queries in %.2fs\n", depth, nq, wall_seconds() - t0);
    }
    if (lists[CANDIDATES_DENSE] != NULL) {
        dense_candidates(lists[CANDIDATES_DENSE], list_scores[CANDIDATES_DENSE], depth, c, dense, dense_tok, o->run_dir);
    }
    if (lists[CANDIDATES_HYBRID] != NULL) {
        int lengths[2] = {depth, depth};
        #pragma omp parallel for schedule(dynamic)
        for (int q = 0; q < nq; q++) {
            const int* both[2] = {lists[CANDIDATES_BM25] + (size_t)q * depth, lists[CANDIDATES_DENSE] + (size_t)q * depth};
            rrf_fuse(lists[CANDIDATES_HYBRID] + (size_t)q * depth, list_scores[CANDIDATES_HYBRID] + (size_t)q * depth,
                     both, lengths, 2, o->rrf_k, depth);
        }
    }
    const Qrels* qrel_sets[2] = {&c->eval_qrels, c->has_train_split ? &c->train_qrels : NULL};
    const char* set_names[2] = {"evaluation", "training"};
    for (int set = 0; set < 2; set++) {
        if (qrel_sets[set] == NULL) { continue; }
        int n_judged = 0;
        mean_recall(&n_judged, lists[source], depth, 100, qrel_sets[set]);
        printf("%s: %s, top %d; recall over the %d judged queries of the %s qrels:", what, CANDIDATE_SOURCES[source], K,
               n_judged, set_names[set]);
        for (int k = 0, shown = 0; k < 3; k++) {
            if (lists[k] == NULL) { continue; }
            printf("%s %s %.4f@100", shown++ ? "," : "", k == CANDIDATES_HYBRID ? "hybrid (RRF)" : CANDIDATE_SOURCES[k],
                   mean_recall(&n_judged, lists[k], depth, 100, qrel_sets[set]));
            if (K != 100) { printf(" %.4f@%d", mean_recall(&n_judged, lists[k], depth, K, qrel_sets[set]), K); }
        }
        printf("\n");
    }
    for (int q = 0; q < nq; q++) {
        memcpy(cand->docs + (size_t)q * K, lists[source] + (size_t)q * depth, sizeof(int) * (size_t)K);
        memcpy(cand->scores + (size_t)q * K, list_scores[source] + (size_t)q * depth, sizeof(float) * (size_t)K);
    }
    for (int k = 0; k < 3; k++) {
        free(lists[k]);
        free(list_scores[k]);
    }
    if (dist.rank == 0) { candidates_write(cand, want, path); }
}

static void candidates_free(Candidates* cand) {
    free(cand->docs);
    free(cand->scores);
}

// how many of query q's candidates are real documents (a corpus smaller than K pads with -1)
static int candidates_count(const Candidates* cand, int q) {
    int n = 0;
    while (n < cand->K && cand->docs[(size_t)q * cand->K + n] >= 0) { n++; }
    return n;
}

// ----------------------------------------------------------------------------
// stage 2: pair graphs, judgments, rating fit, calibration -> targets

typedef struct {
    int n;                  // training queries
    int K;                  // candidates per query (rows of docs/targets)
    int* query;             // (n,) query index of training query i
    int* num_docs;          // (n,) real candidates of query i (<= K)
    int* docs;              // (n, K) corpus indices
    float* ratings;         // (n, K) fitted e
    float* offsets;         // (n,) calibration offsets b
    float* targets;         // (n, K) y = ½(1 + erf(e + b))
    int64_t* pair_start;    // (n+1,) judged pairs of query i
    int* pair_a;            // (P,) local candidate index shown first
    int* pair_b;            // (P,)
    float* pair_p;          // (P,) judged P(a beats b)
} TrainSet;

static uint32_t fnv1a(const char* s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) { h = (h ^ (uint8_t)*s) * 16777619u; }
    return h;
}

// a per-query seed, so that a query's pair graph does not depend on which other queries train
static uint64_t query_seed(uint64_t seed, const char* query_id) {
    return seed * 0x9E3779B97F4A7C15ull ^ fnv1a(query_id);
}

// targets.bin and a mined round's targets.round<R>.bin: words 0..11 the settings they were made
// with (for a round's file, word 2 counts the training queries left after --val-frac and
// word 3 the documents per query with the mined ones), 12..13 the judged pairs, 14..17 the
// round and its mining settings (0 in targets.bin)
#define TARGETS_HEADER_WORDS 18
static void targets_header(int* want /* (TARGETS_HEADER_WORDS,) */, const Collection* c, const Options* o) {
    memset(want, 0, TARGETS_HEADER_WORDS * sizeof(int));
    int w[12] = { TARGETS_MAGIC, STAGE_VERSION, c->n_train, o->candidates, o->cycles, (int)o->link,
                  float_bits((float)o->lambda), o->cross_pairs, (int)(o->seed & 0x7fffffff),
                  (int)((fnv1a(o->judge) ^ (uint32_t)o->distill ^ ((uint32_t)o->judge_combine << 24)) & 0x7fffffff),
                  c->corpus.n, c->queries.n };
    memcpy(want, w, sizeof(w));
}

static void trainset_alloc(TrainSet* t, int n, int K, int64_t num_pairs) {
    t->n = n;
    t->K = K;
    t->query = (int*)mallocCheck((size_t)n * sizeof(int));
    t->num_docs = (int*)mallocCheck((size_t)n * sizeof(int));
    t->docs = (int*)mallocCheck((size_t)n * K * sizeof(int));
    t->ratings = (float*)callocCheck((size_t)n * K, sizeof(float));
    t->offsets = (float*)callocCheck((size_t)n, sizeof(float));
    t->targets = (float*)callocCheck((size_t)n * K, sizeof(float));
    t->pair_start = (int64_t*)mallocCheck((size_t)(n + 1) * sizeof(int64_t));
    t->pair_a = (int*)mallocCheck((size_t)num_pairs * sizeof(int));
    t->pair_b = (int*)mallocCheck((size_t)num_pairs * sizeof(int));
    t->pair_p = (float*)mallocCheck((size_t)num_pairs * sizeof(float));
}

static void trainset_free(TrainSet* t) {
    free(t->query); free(t->num_docs); free(t->docs); free(t->ratings); free(t->offsets); free(t->targets);
    free(t->pair_start); free(t->pair_a); free(t->pair_b); free(t->pair_p);
}

static void trainset_write(const TrainSet* t, const int* header, const char* path) {
    AtomicFile af;
    FILE* fp = atomicOpen(&af, path, "wb");
    int h[256] = {0};
    memcpy(h, header, TARGETS_HEADER_WORDS * sizeof(int));
    int64_t P = t->pair_start[t->n];
    h[12] = (int)(P & 0x7fffffff);
    h[13] = (int)(P >> 31);
    fwriteCheck(h, sizeof(int), 256, fp);
    fwriteCheck(t->query, sizeof(int), (size_t)t->n, fp);
    fwriteCheck(t->num_docs, sizeof(int), (size_t)t->n, fp);
    fwriteCheck(t->docs, sizeof(int), (size_t)t->n * t->K, fp);
    fwriteCheck(t->ratings, sizeof(float), (size_t)t->n * t->K, fp);
    fwriteCheck(t->offsets, sizeof(float), (size_t)t->n, fp);
    fwriteCheck(t->targets, sizeof(float), (size_t)t->n * t->K, fp);
    fwriteCheck(t->pair_start, sizeof(int64_t), (size_t)t->n + 1, fp);
    fwriteCheck(t->pair_a, sizeof(int), (size_t)P, fp);
    fwriteCheck(t->pair_b, sizeof(int), (size_t)P, fp);
    fwriteCheck(t->pair_p, sizeof(float), (size_t)P, fp);
    atomicCommit(&af);
}

// checks every index a training step follows, so that a damaged file stops the run by name
// instead of reading outside the collection; n_docs_corpus = want[10] (the header's corpus size)
static void trainset_validate(const TrainSet* t, int n_docs_corpus, int n_queries, int64_t num_pairs, const char* path) {
    if (t->pair_start[0] != 0 || t->pair_start[t->n] != num_pairs) {
        die("%s: the judged pairs' ranges run from %lld to %lld where the header holds %lld pairs: a damaged file; "
            "delete it", path, (long long)t->pair_start[0], (long long)t->pair_start[t->n], (long long)num_pairs);
    }
    for (int i = 0; i < t->n; i++) {
        if (t->query[i] < 0 || t->query[i] >= n_queries || t->num_docs[i] < 0 || t->num_docs[i] > t->K ||
            t->pair_start[i + 1] < t->pair_start[i] || t->pair_start[i + 1] > t->pair_start[t->n]) {
            die("%s: training query %d: query, candidate count or pair range out of bounds: a damaged file; delete it", path, i);
        }
        for (int j = 0; j < t->num_docs[i]; j++) {
            size_t k = (size_t)i * t->K + j;
            if (t->docs[k] < 0 || t->docs[k] >= n_docs_corpus || !(t->targets[k] >= 0.0f && t->targets[k] <= 1.0f)) {
                die("%s: training query %d, candidate %d: document %d or target %g out of bounds: a damaged file; delete it",
                    path, i, j, t->docs[k], t->targets[k]);
            }
        }
        for (int64_t p = t->pair_start[i]; p < t->pair_start[i + 1]; p++) {
            if (t->pair_a[p] < 0 || t->pair_a[p] >= t->num_docs[i] || t->pair_b[p] < 0 || t->pair_b[p] >= t->num_docs[i] ||
                !(t->pair_p[p] >= 0.0f && t->pair_p[p] <= 1.0f)) {
                die("%s: judged pair %lld of training query %d out of bounds: a damaged file; delete it", path, (long long)p, i);
            }
        }
    }
}

static void trainset_read(TrainSet* t, const int* want, const char* path) {
    FILE* fp = fopenCheck(path, "rb");
    int64_t len = fileLengthCheck(fp, path);
    int h[256];
    stage_header_read(h, fp, want, 12, TARGETS_HEADER_WORDS, path, "targets");
    header_check(h + 14, want + 14, TARGETS_HEADER_WORDS - 14, path, "targets, the round and its mining settings: fields from 14");
    if (h[12] < 0 || h[13] < 0) { die("%s: negative pair count in the header: a damaged file; delete it", path); }
    int64_t P = (int64_t)h[12] | ((int64_t)h[13] << 31);
    // the layout trainset_write writes, checked against the file's length before allocating
    int64_t n = h[2], K = h[3], left = len - (int64_t)sizeof(h);
    fileSizeMatchCheck(path, len, (int64_t)sizeof(h) + payloadBytesCheck(path, "training queries", n, 5 * 4, left)
                       + 8 + payloadBytesCheck(path, "training queries x candidates", n * K, 3 * 4, left)
                       + payloadBytesCheck(path, "judged pairs", P, 3 * 4, left));
    trainset_alloc(t, h[2], h[3], P);
    freadCheck(t->query, sizeof(int), (size_t)t->n, fp);
    freadCheck(t->num_docs, sizeof(int), (size_t)t->n, fp);
    freadCheck(t->docs, sizeof(int), (size_t)t->n * t->K, fp);
    freadCheck(t->ratings, sizeof(float), (size_t)t->n * t->K, fp);
    freadCheck(t->offsets, sizeof(float), (size_t)t->n, fp);
    freadCheck(t->targets, sizeof(float), (size_t)t->n * t->K, fp);
    freadCheck(t->pair_start, sizeof(int64_t), (size_t)t->n + 1, fp);
    freadCheck(t->pair_a, sizeof(int), (size_t)P, fp);
    freadCheck(t->pair_b, sizeof(int), (size_t)P, fp);
    freadCheck(t->pair_p, sizeof(float), (size_t)P, fp);
    fclose(fp);
    trainset_validate(t, want[10], want[11], P, path);
}

// ratings.tsv, for people and other tools: the format zelo_fit writes
static void trainset_write_tsv(const TrainSet* t, const Collection* c, const char* path) {
    AtomicFile af;
    FILE* fp = atomicOpen(&af, path, "wb");
    fprintf(fp, "query_id\tdoc_id\trating\ttarget\n");
    for (int i = 0; i < t->n; i++) {
        for (int j = 0; j < t->num_docs[i]; j++) {
            size_t k = (size_t)i * t->K + j;
            fprintf(fp, "%s\t%s\t%.6f\t%.6f\n", beir_id(&c->queries, t->query[i]),
                    beir_id(&c->corpus, t->docs[k]), t->ratings[k] + t->offsets[i], t->targets[k]);
        }
    }
    atomicCommit(&af);
}

// copies training query i of `from` into row r of `to` (allocated for its share of pairs),
// its judged pairs from position *pair_at on
static void trainset_copy_query(TrainSet* to, int r, int64_t* pair_at, const TrainSet* from, int i) {
    int K = from->K;
    to->query[r] = from->query[i];
    to->num_docs[r] = from->num_docs[i];
    memcpy(to->docs + (size_t)r * K, from->docs + (size_t)i * K, (size_t)K * sizeof(int));
    memcpy(to->ratings + (size_t)r * K, from->ratings + (size_t)i * K, (size_t)K * sizeof(float));
    memcpy(to->targets + (size_t)r * K, from->targets + (size_t)i * K, (size_t)K * sizeof(float));
    to->offsets[r] = from->offsets[i];
    int64_t p0 = from->pair_start[i], np = from->pair_start[i + 1] - p0;
    to->pair_start[r] = *pair_at;
    memcpy(to->pair_a + *pair_at, from->pair_a + p0, (size_t)np * sizeof(int));
    memcpy(to->pair_b + *pair_at, from->pair_b + p0, (size_t)np * sizeof(int));
    memcpy(to->pair_p + *pair_at, from->pair_p + p0, (size_t)np * sizeof(float));
    *pair_at += np;
    to->pair_start[r + 1] = *pair_at;
}

// sets --val-frac of the training queries aside: `val` gets them and `t` keeps the rest. The
// choice hashes the query id as the held-out split does, with a seed of its own, so the same
// queries are set aside however the file is ordered. The judge rated them like every training
// query, and the model never trains on them: their ratings measure the model and the first
// stage fairly (fusion_fit). When the fraction would leave no query on one side, none is set aside.
static void trainset_split_validation(TrainSet* t, TrainSet* val, const Collection* c, const Options* o) {
    uint64_t val_seed = o->seed ^ 0x5DEECE66Dull;
    int* is_val = (int*)callocCheck((size_t)(t->n > 0 ? t->n : 1), sizeof(int));
    int n_val = 0;
    int64_t val_pairs = 0;
    for (int i = 0; i < t->n; i++) {
        is_val[i] = o->val_frac > 0.0 && beir_query_is_eval(beir_id(&c->queries, t->query[i]), val_seed, o->val_frac);
        n_val += is_val[i];
        if (is_val[i]) { val_pairs += t->pair_start[i + 1] - t->pair_start[i]; }
    }
    if (n_val == t->n) { memset(is_val, 0, (size_t)t->n * sizeof(int)); n_val = 0; val_pairs = 0; }
    TrainSet train;
    trainset_alloc(&train, t->n - n_val, t->K, t->pair_start[t->n] - val_pairs);
    trainset_alloc(val, n_val, t->K, val_pairs);
    int64_t at_train = 0, at_val = 0;
    int r_train = 0, r_val = 0;
    train.pair_start[0] = val->pair_start[0] = 0;
    for (int i = 0; i < t->n; i++) {
        if (is_val[i]) { trainset_copy_query(val, r_val++, &at_val, t, i); }
        else { trainset_copy_query(&train, r_train++, &at_train, t, i); }
    }
    free(is_val);
    trainset_free(t);
    *t = train;
}

// ----------------------------------------------------------------------------
// evaluation: rerank each evaluation query's candidates and score the ranking

typedef struct {
    const char* name;
    MetricScores mean;
} ResultRow;

// scores: (n_eval, K) one score per candidate of each evaluation query, in candidate order.
// Writes a TREC run file when run_file is not NULL.
static MetricScores evaluate_scores(const float* scores, const Collection* c, const Candidates* cand,
                                    const char* run_file, const char* tag) {
    int K = cand->K;
    MetricScores* per_query = (MetricScores*)mallocCheck((size_t)c->n_eval * sizeof(MetricScores));
    const char** ranked = (const char**)mallocCheck((size_t)K * sizeof(char*));
    int max_rel = 0;
    for (int i = 0; i < c->n_eval; i++) {
        int q = c->eval_queries[i];
        if (qrels_count(&c->eval_qrels, q) > max_rel) { max_rel = qrels_count(&c->eval_qrels, q); }
    }
    const char** rel_ids = (const char**)mallocCheck((size_t)(max_rel > 0 ? max_rel : 1) * sizeof(char*));
    FILE* run = NULL;
    AtomicFile af;
    if (run_file != NULL && dist.rank == 0) { run = atomicOpen(&af, run_file, "w"); }
    for (int i = 0; i < c->n_eval; i++) {
        int q = c->eval_queries[i];
        int n = candidates_count(cand, q);
        for (int j = 0; j < n; j++) { ranked[j] = beir_id(&c->corpus, cand->docs[(size_t)q * K + j]); }
        const Qrels* qr = &c->eval_qrels;
        int r0 = qr->query_start[q], nr = qr->query_start[q + 1] - r0;
        for (int j = 0; j < nr; j++) { rel_ids[j] = beir_id(&c->corpus, qr->doc[r0 + j]); }
        metrics_eval_query(&per_query[i], beir_id(&c->queries, q), ranked, scores + (size_t)i * K, n,
                           rel_ids, qr->gain + r0, nr);
        if (run != NULL) { metrics_write_trec_run(run, beir_id(&c->queries, q), ranked, scores + (size_t)i * K, n, tag); }
    }
    if (run != NULL) { atomicCommit(&af); }
    MetricScores mean;
    metrics_mean(&mean, per_query, c->n_eval);
    free(per_query);
    free(ranked);
    free(rel_ids);
    return mean;
}

// the model's scores of the candidates of queries[0..nq): (nq, K), on every rank
static float* model_query_scores(BertModel* model, Batch* b, const Tokenizer* tok, const Collection* c,
                                 const Candidates* cand, const int* queries, int nq) {
    int K = cand->K;
    float* scores = (float*)callocCheck((size_t)(nq > 0 ? nq : 1) * K, sizeof(float));
    int* qs = (int*)mallocCheck((size_t)(nq > 0 ? nq : 1) * K * sizeof(int));
    int* ds = (int*)mallocCheck((size_t)(nq > 0 ? nq : 1) * K * sizeof(int));
    int64_t n = 0;
    for (int i = 0; i < nq; i++) {
        int q = queries[i];
        for (int j = 0; j < candidates_count(cand, q); j++) { qs[n] = q; ds[n] = cand->docs[(size_t)q * K + j]; n++; }
    }
    // each rank scores its block of the pairs
    float* flat = (float*)mallocCheck((size_t)(n > 0 ? n : 1) * sizeof(float));
    int64_t a, z;
    dist_share(&a, &z, n, dist.rank);
    score_pairs(flat + a, model, b, tok, &c->queries, &c->corpus, qs + a, ds + a, (int)(z - a), "evaluating");
    dist_allgather_blocks(flat, n, sizeof(float));
    n = 0;
    for (int i = 0; i < nq; i++) {
        int q = queries[i];
        for (int j = 0; j < candidates_count(cand, q); j++) { scores[(size_t)i * K + j] = flat[n++]; }
    }
    free(flat); free(qs); free(ds);
    return scores;
}

// the model's scores of every evaluation query's candidates: (n_eval, K), on every rank
static float* model_eval_scores(BertModel* model, Batch* b, const Tokenizer* tok, const Collection* c, const Candidates* cand) {
    return model_query_scores(model, b, tok, c, cand, c->eval_queries, c->n_eval);
}

// ----------------------------------------------------------------------------
// the reranker's final order: the model's scores interpolated with the first stage's
// (retrieval/fusion.h), the weight fitted on the validation queries against the judge

// NDCG@10 of the order of scores[0..n) against the judge's ratings: a document's gain is its
// rating above the query's lowest (gain_j = e_j - min e), so a shift of the ratings, which the
// fit leaves free, changes nothing, and the judge's least preferred document counts for
// nothing; -1 when all ratings are equal. gains: (n,) scratch.
static double rating_ndcg(const float* scores, const float* ratings, int n, double* gains) {
    float lo = ratings[0];
    for (int j = 1; j < n; j++) { lo = ratings[j] < lo ? ratings[j] : lo; }
    for (int j = 0; j < n; j++) { gains[j] = (double)ratings[j] - lo; }
    return metrics_ndcg_gains(scores, gains, n, METRICS_NDCG_CUT);
}

#define FUSION_GRID 20  // alpha in steps of 1/20

typedef struct {
    double alpha;          // the weight of the model's z-scores
    double ndcg[FUSION_GRID + 1];  // validation NDCG@10 against the ratings at alpha = k / FUSION_GRID
    int n_queries;         // validation queries with a rating spread
    int best;              // the grid point of the highest mean
    double gain, gain_se;  // the best point's mean gain per query over alpha 0, and its standard error
} FusionFit;

// The weight on the model. The grid point with the highest mean rating_ndcg over the
// validation queries (equal means go to the larger alpha) is taken only when its gain over
// the first stage alone (alpha 0) is more than twice its standard error over the queries:
// a few validation queries can make noise look like a gain, and the first stage's order is
// the one the user has without a reranker, so it stays unless the judge's ratings of
// queries the model never saw say the model improves on it. model_scores: (val->n, K), the
// model's on val's candidates; the first stage's scores are the candidates' own.
static void fusion_fit(FusionFit* f, const TrainSet* val, const float* model_scores, const Candidates* cand) {
    int K = cand->K;
    float* mixed = (float*)mallocCheck((size_t)K * sizeof(float));
    double* gains = (double*)mallocCheck((size_t)K * sizeof(double));
    double* per_query = (double*)mallocCheck((size_t)(FUSION_GRID + 1) * (val->n > 0 ? val->n : 1) * sizeof(double));
    memset(f, 0, sizeof(*f));
    for (int k = 0; k <= FUSION_GRID; k++) {
        double alpha = (double)k / FUSION_GRID, sum = 0.0;
        int counted = 0;
        for (int i = 0; i < val->n; i++) {
            int n = val->num_docs[i];
            interpolate_standardized(mixed, model_scores + (size_t)i * K, cand->scores + (size_t)val->query[i] * K, n, alpha);
            double g = n > 0 ? rating_ndcg(mixed, val->ratings + (size_t)i * K, n, gains) : -1.0;
            if (g >= 0.0) { per_query[(size_t)k * val->n + counted] = g; sum += g; counted++; }
        }
        f->ndcg[k] = counted > 0 ? sum / counted : 0.0;
        f->n_queries = counted;
    }
    int m = f->n_queries;
    f->best = FUSION_GRID;
    for (int k = FUSION_GRID - 1; k >= 0; k--) { if (f->ndcg[k] > f->ndcg[f->best]) { f->best = k; } }
    // the paired gain of the best point over alpha 0, query by query
    double mean = 0.0, var = 0.0;
    for (int i = 0; i < m; i++) { mean += per_query[(size_t)f->best * val->n + i] - per_query[i]; }
    mean = m > 0 ? mean / m : 0.0;
    for (int i = 0; i < m; i++) {
        double d = per_query[(size_t)f->best * val->n + i] - per_query[i] - mean;
        var += d * d;
    }
    f->gain = mean;
    f->gain_se = m > 1 ? sqrt(var / (m - 1) / m) : INFINITY;
    if (m == 0) { f->alpha = 1.0; }  // no query to judge by: the model alone, as with --val-frac 0
    else { f->alpha = f->best > 0 && f->gain > 2.0 * f->gain_se ? (double)f->best / FUSION_GRID : 0.0; }
    free(mixed);
    free(gains);
    free(per_query);
}

// the interpolated scores of the evaluation queries: (n_eval, K)
static float* fused_eval_scores(const float* model_scores, const Collection* c, const Candidates* cand, double alpha) {
    int K = cand->K;
    float* scores = (float*)callocCheck((size_t)c->n_eval * K, sizeof(float));
    for (int i = 0; i < c->n_eval; i++) {
        int q = c->eval_queries[i];
        interpolate_standardized(scores + (size_t)i * K, model_scores + (size_t)i * K, cand->scores + (size_t)q * K,
                                 candidates_count(cand, q), alpha);
    }
    return scores;
}

// fusion.txt: the fitted weight, which rerank --interpolate takes with the first stage's run
static void fusion_write(const FusionFit* f, const Candidates* cand, const char* run_dir) {
    char path[4096];
    joinPathCheck(path, sizeof(path), run_dir, "fusion.txt");
    AtomicFile af;
    FILE* fp = atomicOpen(&af, path, "w");
    fprintf(fp, "alpha\t%.2f\nfirst_stage\t%s\nvalidation_queries\t%d\n", f->alpha, CANDIDATE_SOURCES[cand->source], f->n_queries);
    atomicCommit(&af);
}

// BM25's scores of the evaluation queries' candidates: the candidates' own when BM25 chose
// them, else scored here
static float* bm25_eval_scores(const Collection* c, const Candidates* cand, const Bm25Index* index) {
    int K = cand->K;
    float* scores = (float*)callocCheck((size_t)c->n_eval * K, sizeof(float));
    for (int i = 0; i < c->n_eval; i++) {
        int q = c->eval_queries[i];
        if (cand->source == CANDIDATES_BM25) {
            memcpy(scores + (size_t)i * K, cand->scores + (size_t)q * K, (size_t)K * sizeof(float));
        } else {
            bm25_score_docs(scores + (size_t)i * K, index, beir_text(&c->queries, q), cand->docs + (size_t)q * K,
                            candidates_count(cand, q));
        }
    }
    return scores;
}

// the first stage's own order of the evaluation queries' candidates (the fused scores)
static float* first_stage_eval_scores(const Collection* c, const Candidates* cand) {
    int K = cand->K;
    float* scores = (float*)callocCheck((size_t)c->n_eval * K, sizeof(float));
    for (int i = 0; i < c->n_eval; i++) {
        memcpy(scores + (size_t)i * K, cand->scores + (size_t)c->eval_queries[i] * K, (size_t)K * sizeof(float));
    }
    return scores;
}

// ----------------------------------------------------------------------------
// the judge's own ranking of the held-out candidates

// why the judge cannot rank the held-out candidates by itself, or NULL when it can: each
// of its members must answer a held-out battle from the texts alone, cheaply
static const char* judge_row_obstacle(const Judge* judge) {
    for (int k = 0; k < judge->n_members; k++) {
        const JudgeMember* m = &judge->members[k];
        switch (m->kind) {
            case JUDGE_SIM: return "sim reads the human labels of the training queries only";
            case JUDGE_FILE: return "a file judge holds only the battles it was given";
            case JUDGE_CMD: return "an external program would be asked K(K-1)/2 battles per held-out query";
            case JUDGE_MODEL:
                if (m->pairwise) { return "a pairwise model would need K(K-1) forward passes per held-out query"; }
                break;
            case JUDGE_BM25: case JUDGE_DENSE: break;
        }
    }
    return NULL;
}

// The judge's score of each evaluation candidate, (n_eval, K): its mean probability of
// beating the query's other candidates, p as judge_battles answers it (an ensemble: the
// mean of its members' p, judges/judge.c's combination), over every pair of the query's
// candidates. Every member here is antisymmetric (p(b, a) = 1 − p(a, b): a link of a
// score difference), so each pair is asked once. For one member whose p is F(c (u_a − u_b)),
// the score grows with u: the ranking is that member's own.
static float* judge_eval_scores(Judge* judge, const Collection* c, const Candidates* cand) {
    int K = cand->K;
    float* scores = (float*)callocCheck((size_t)c->n_eval * K, sizeof(float));
    Battle* battles = (Battle*)mallocCheck((size_t)K * K * sizeof(Battle));  // (K(K-1)/2,) pairs of one query
    int* pair_a = (int*)mallocCheck((size_t)K * K * sizeof(int));
    int* pair_b = (int*)mallocCheck((size_t)K * K * sizeof(int));
    float* p = (float*)mallocCheck((size_t)K * K * sizeof(float));
    Progress progress;
    progress_begin(&progress, "judge ranking", c->n_eval);
    for (int i = 0; i < c->n_eval; i++) {
        int q = c->eval_queries[i], n = candidates_count(cand, q), np = 0;
        const int* docs = cand->docs + (size_t)q * K;
        for (int a = 0; a < n; a++) {
            for (int b = a + 1; b < n; b++) {
                battles[np] = (Battle){ q, docs[a], q, docs[b] };
                pair_a[np] = a;
                pair_b[np] = b;
                np++;
            }
        }
        judge_prepare(judge, battles, np);
        if (judge_battles(p, judge, battles, np) < np) { die("judge ranking of query '%s': %s", beir_id(&c->queries, q), judge->error); }
        double* wins = (double*)callocCheck((size_t)(n > 0 ? n : 1), sizeof(double));
        for (int e = 0; e < np; e++) {
            wins[pair_a[e]] += p[e];
            wins[pair_b[e]] += 1.0 - (double)p[e];
        }
        for (int a = 0; a < n; a++) { scores[(size_t)i * K + a] = n > 1 ? (float)(wins[a] / (n - 1)) : 0.5f; }
        free(wins);
        progress_update(&progress, i + 1);
    }
    free(battles); free(pair_a); free(pair_b); free(p);
    return scores;
}

// ----------------------------------------------------------------------------
// training

// the items of one micro-batch: G training queries with D candidates each, chosen by
// following judged pairs so that the pairwise loss has pairs inside every group
typedef struct {
    int n;              // sequences (G * D)
    int* query;         // (n,) query index of each sequence
    int* doc;           // (n,) corpus index
    float* target;      // (n,)
    float* rating;      // (n,) fitted e, the query's offset left out (rating-pairs compares within a group)
    int* group_start;   // (G + 1,)
    int num_groups;
    int num_pairs;      // judged pairs with both documents in the same group
    // the same counts (and the rating pairs') over the whole step's groups, every rank's (several processes)
    int all_n, all_groups, all_pairs, all_rating_pairs;
    int* pair_a;        // (cap_pairs,) sequence indices in the batch
    int* pair_b;
    float* pair_p;
    int cap_pairs;
    // rating-pairs: every pair of a group, p = the link of the ratings' difference
    int num_rating_pairs;
    int* rpair_a;       // (cap_rating_pairs,)
    int* rpair_b;
    float* rpair_p;
    int cap_rating_pairs;
    int* local;         // (K,) scratch: batch position of each candidate of a query, -1 if absent
    double* weight;     // (K,) scratch: each candidate's weight in a rank-weighted draw
    int* drawn;         // (K,) scratch: the candidates it drew, in order
} MicroBatch;

static void microbatch_init(MicroBatch* mb, int n, int groups, int K) {
    mb->query = (int*)mallocCheck((size_t)n * sizeof(int));
    mb->doc = (int*)mallocCheck((size_t)n * sizeof(int));
    mb->target = (float*)mallocCheck((size_t)n * sizeof(float));
    mb->rating = (float*)mallocCheck((size_t)n * sizeof(float));
    mb->group_start = (int*)mallocCheck((size_t)(groups + 1) * sizeof(int));
    mb->cap_pairs = 16 * n;
    mb->pair_a = (int*)mallocCheck((size_t)mb->cap_pairs * sizeof(int));
    mb->pair_b = (int*)mallocCheck((size_t)mb->cap_pairs * sizeof(int));
    mb->pair_p = (float*)mallocCheck((size_t)mb->cap_pairs * sizeof(float));
    int64_t per_group = n / groups;
    mb->cap_rating_pairs = (int)(groups * per_group * (per_group - 1) / 2);
    if (mb->cap_rating_pairs < 1) { mb->cap_rating_pairs = 1; }
    mb->rpair_a = (int*)mallocCheck((size_t)mb->cap_rating_pairs * sizeof(int));
    mb->rpair_b = (int*)mallocCheck((size_t)mb->cap_rating_pairs * sizeof(int));
    mb->rpair_p = (float*)mallocCheck((size_t)mb->cap_rating_pairs * sizeof(float));
    mb->local = (int*)mallocCheck((size_t)K * sizeof(int));
    mb->weight = (double*)mallocCheck((size_t)K * sizeof(double));
    mb->drawn = (int*)mallocCheck((size_t)K * sizeof(int));
}

static void microbatch_free(MicroBatch* mb) {
    free(mb->query); free(mb->doc); free(mb->target); free(mb->rating); free(mb->group_start);
    free(mb->pair_a); free(mb->pair_b); free(mb->pair_p); free(mb->local); free(mb->weight); free(mb->drawn);
    free(mb->rpair_a); free(mb->rpair_b); free(mb->rpair_p);
}

// fills the micro-batch from its own seeded generator: the batch of step s is the same
// whether the run went straight through or was resumed, which --resume's promise needs.
// Several processes: the step draws groups x dist.size groups in order and rank r keeps the
// r-th run of `groups` of them, so the step's sequences are those of one process whose
// --batch-size is the sum of the ranks'. Each rank draws (and counts) them all, as the others'
// groups shape the generator's stream; room for one group more than it keeps (microbatch_init).
// --group-draw rank: `want` of query i's nd candidates, without replacement, each with weight
// 1/log2(2 + r), r its rank by rating (0 the best): NDCG's discount, so that the pairs near the
// top of the ratings, the ones NDCG@10 reads, are trained on more often than the tail's, and
// every candidate still comes up (the last of 50 at a sixth of the first's weight)
static void group_draw_by_rank(MicroBatch* mb, const TrainSet* t, int i, int want, ZeloRng* rng) {
    int nd = t->num_docs[i];
    const float* rating = t->ratings + (size_t)i * t->K;
    for (int j = 0; j < nd; j++) {
        int rank = 0;
        for (int k = 0; k < nd; k++) { rank += rating[k] > rating[j] || (rating[k] == rating[j] && k < j); }
        mb->weight[j] = 1.0 / log2(2.0 + rank);
    }
    zelo_rng_draw_weighted(mb->drawn, mb->weight, nd, want, rng);
    for (int d = 0; d < want; d++) { mb->local[mb->drawn[d]] = mb->n + d; }
}

static void microbatch_sample(MicroBatch* mb, const TrainSet* t, int groups, int group_size, int draw,
                              uint64_t seed, int step, int micro) {
    ZeloRng rng;
    zelo_rng_seed(&rng, seed ^ (0xA24BAED4963EE407ull * (uint64_t)(step + 1)) ^ (0x9FB21C651E98DF25ull * (uint64_t)(micro + 1)));
    mb->n = 0;
    mb->num_groups = 0;
    mb->num_pairs = 0;
    mb->num_rating_pairs = 0;  // batch_loss makes them (rating-pairs)
    mb->all_n = mb->all_groups = mb->all_pairs = mb->all_rating_pairs = 0;
    for (int g = 0; g < groups * dist.size; g++) {
        int n0 = mb->n, pairs0 = mb->num_pairs;
        int i = zelo_rng_below(&rng, t->n);
        int nd = t->num_docs[i];
        int want = group_size < nd ? group_size : nd;
        for (int j = 0; j < nd; j++) { mb->local[j] = -1; }
        mb->group_start[mb->num_groups++] = mb->n;
        int64_t p0 = t->pair_start[i], np = t->pair_start[i + 1] - p0;
        int taken = 0;
        if (draw == GROUP_DRAW_RANK) {
            group_draw_by_rank(mb, t, i, want, &rng);
            taken = want;
        }
        // documents joined by judged pairs first, drawn at random, then any to fill up
        for (int tries = 0; taken < want && tries < 4 * want && np > 0; tries++) {
            int64_t e = p0 + zelo_rng_below(&rng, (int)np);
            int ends[2] = { t->pair_a[e], t->pair_b[e] };
            for (int k = 0; k < 2 && taken < want; k++) {
                if (mb->local[ends[k]] < 0) { mb->local[ends[k]] = mb->n + taken; taken++; }
            }
        }
        while (taken < want) {
            int j = zelo_rng_below(&rng, nd);
            if (mb->local[j] < 0) { mb->local[j] = mb->n + taken; taken++; }
        }
        for (int j = 0; j < nd; j++) {
            int pos = mb->local[j];
            if (pos < 0) { continue; }
            mb->query[pos] = t->query[i];
            mb->doc[pos] = t->docs[(size_t)i * t->K + j];
            mb->target[pos] = t->targets[(size_t)i * t->K + j];
            mb->rating[pos] = t->ratings[(size_t)i * t->K + j];
        }
        for (int64_t e = p0; e < p0 + np && mb->num_pairs < mb->cap_pairs; e++) {
            int pa = mb->local[t->pair_a[e]], pb = mb->local[t->pair_b[e]];
            if (pa < 0 || pb < 0) { continue; }
            mb->pair_a[mb->num_pairs] = pa;
            mb->pair_b[mb->num_pairs] = pb;
            mb->pair_p[mb->num_pairs] = t->pair_p[e];
            mb->num_pairs++;
        }
        mb->n += taken;
        mb->all_n += taken;
        mb->all_groups++;
        mb->all_pairs += mb->num_pairs - pairs0;
        mb->all_rating_pairs += taken * (taken - 1) / 2;  // microbatch_rating_pairs' pairs of the group
        if (g / groups != dist.rank) {  // another rank's group: drawn, counted, not kept
            mb->n = n0;
            mb->num_pairs = pairs0;
            mb->num_groups--;
        }
    }
    mb->group_start[mb->num_groups] = mb->n;
}

// this rank's share of what the step's loss averages over (sequences, groups or pairs): its
// batch_loss, a mean over its own, times this share is its part of the step's mean. Exactly 1
// in one process.
static double loss_share(const MicroBatch* mb, LossKind loss) {
    switch (loss) {
        case LOSS_MSE: case LOSS_BCE: return mb->all_n > 0 ? (double)mb->n / mb->all_n : 0.0;
        case LOSS_LISTWISE: return mb->all_groups > 0 ? (double)mb->num_groups / mb->all_groups : 0.0;
        case LOSS_PAIRWISE: return mb->all_pairs > 0 ? (double)mb->num_pairs / mb->all_pairs : 0.0;
        case LOSS_RATING_PAIRS:  // num_rating_pairs: made by batch_loss, which runs first
            return mb->all_rating_pairs > 0 ? (double)mb->num_rating_pairs / mb->all_rating_pairs : 0.0;
    }
    return 0.0;
}

// the sum over the ranks of the gradients (each already its share of the step's mean), the
// step's loss and its tokens: every rank then holds the step's mean gradient and takes the same
// AdamW step. On GPUs through NCCL, on CPUs through MPI; nothing in one process.
static void gradients_sum(BertModel* model, double* loss, int64_t* tokens) {
    if (dist.size == 1) { return; }
    void* stream = NULL;
    float* grads = bert_grad_buffer(model, &stream);
    if (stream != NULL) { dist_allreduce_sum_device(grads, model->num_parameters, stream); }
    else { dist_allreduce_sum_float(grads, model->num_parameters); }
    double both[2] = { *loss, (double)*tokens };
    dist_allreduce_sum_double(both, 2);
    *loss = both[0];
    *tokens = (int64_t)both[1];
}

// ZeRO stage 1 (--zero): this rank's AdamW step over its slice of the weights (dist_share of the
// flat buffer), then every slice copied to every rank. Each weight gets bert_adamw_update's
// arithmetic from the same summed gradient, so the weights are those of a run without --zero.
static void adamw_step_sliced(BertModel* model, float lr, float weight_decay, int step) {
    int64_t a, b;
    dist_share(&a, &b, (int64_t)model->num_parameters, dist.rank);
    bert_adamw_update_range(model, lr, 0.9f, 0.999f, 1e-8f, weight_decay, step, (size_t)a, (size_t)b);
    dist_allgather_blocks(model->params_memory, (int64_t)model->num_parameters, sizeof(float));
}

// --zero on resume: checkpoint_load read the whole AdamW state; this rank keeps its slice
static void optimizer_keep_slice(BertModel* model) {
    int64_t a, b;
    dist_share(&a, &b, (int64_t)model->num_parameters, dist.rank);
    memmove(model->m_memory, model->m_memory + a, (size_t)(b - a) * sizeof(float));
    memmove(model->v_memory, model->v_memory + a, (size_t)(b - a) * sizeof(float));
    model->m_memory = (float*)reallocCheck(model->m_memory, (size_t)(b - a) * sizeof(float));
    model->v_memory = (float*)reallocCheck(model->v_memory, (size_t)(b - a) * sizeof(float));
}

// the pairs of rating-pairs: each pair of documents of one group once, with the probability
// that the ratings fitted from the judge's battles give it, link(e_a − e_b). These are every
// pair the group can compare (28 in a group of 8, where the judged pairs inside it are a few)
// and the ratings have pooled each document's battles, so the targets are the denoised ones
// that the paper's pointwise targets carry, without the offset b, which a ranking ignores
static void microbatch_rating_pairs(MicroBatch* mb, ZeloLink link) {
    mb->num_rating_pairs = 0;
    for (int g = 0; g < mb->num_groups; g++) {
        for (int a = mb->group_start[g]; a < mb->group_start[g + 1]; a++) {
            for (int b = a + 1; b < mb->group_start[g + 1]; b++) {
                if (mb->num_rating_pairs == mb->cap_rating_pairs) { die("microbatch_rating_pairs: more pairs than %d", mb->cap_rating_pairs); }
                mb->rpair_a[mb->num_rating_pairs] = a;
                mb->rpair_b[mb->num_rating_pairs] = b;
                mb->rpair_p[mb->num_rating_pairs] = (float)zelo_link_prob((double)mb->rating[a] - mb->rating[b], link);
                mb->num_rating_pairs++;
            }
        }
    }
}

// the loss of the batch and dloss/dlogit
static double batch_loss(float* dlogits, const float* logits, MicroBatch* mb, LossKind loss, ZeloLink link) {
    switch (loss) {
        case LOSS_MSE: return zelo_mse_loss(dlogits, logits, mb->target, mb->n);
        case LOSS_BCE: return zelo_bce_loss(dlogits, logits, mb->target, mb->n);
        case LOSS_LISTWISE: return zelo_listwise_loss(dlogits, logits, mb->target, mb->group_start, mb->num_groups);
        case LOSS_PAIRWISE:
            if (mb->num_pairs == 0) { memset(dlogits, 0, (size_t)mb->n * sizeof(float)); return 0.0; }
            return zelo_pairwise_nll_loss(dlogits, logits, mb->pair_a, mb->pair_b, mb->pair_p, mb->num_pairs, mb->n);
        case LOSS_RATING_PAIRS:
            microbatch_rating_pairs(mb, link);
            return zelo_pairwise_nll_loss(dlogits, logits, mb->rpair_a, mb->rpair_b, mb->rpair_p, mb->num_rating_pairs, mb->n);
    }
    return 0.0;
}

// learning rate of step s (1-based): linear warm-up, then linear or cosine decay to 0
static float learning_rate(const Options* o, int step, int total) {
    int warmup = (int)(o->warmup_frac * (float)total);
    if (step <= warmup) { return o->lr * (float)step / (float)(warmup > 0 ? warmup : 1); }
    float frac = (float)(step - warmup) / (float)(total - warmup > 0 ? total - warmup : 1);
    if (o->schedule == SCHEDULE_COSINE) { return o->lr * 0.5f * (1.0f + cosf((float)M_PI * frac)); }
    return o->lr * (1.0f - frac);
}

// LP-FT's linear probe: the score head, which a pretrained encoder brings without (BERT's
// random initialisation), is fitted to the targets before any step, on the frozen encoder's
// pooled features of n training sequences drawn at random from every training candidate, by
// ridge regression of their ratings e + b (the logits at which ½(1 + erf(z)) meets the
// targets y exactly). The ridge strength is the one of ZELO_RIDGE_ALPHAS that predicts a
// fifth of the sample, held out, best; the head is then refitted on the whole sample.
// Fine-tuning would then start from a head that points along what the features already say
// about the targets, not spend its first steps, at a rate chosen for the encoder, on moving a
// random head. Measured (README, issue 13): from all-MiniLM-L6-v2 the probe explains the
// query offsets b, not the order inside a query, and ranks no better than the random head.
static const double ZELO_RIDGE_ALPHAS[] = { 1e-3, 1e-2, 1e-1, 1.0, 10.0 };

static double ridge_mse(const double* w, double bias, const float* X, const double* y, int n, int d) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        double z = bias;
        for (int k = 0; k < d; k++) { z += w[k] * X[(size_t)i * d + k]; }
        sum += (z - y[i]) * (z - y[i]);
    }
    return sum / n;
}

static void head_fit(BertModel* model, Batch* b, const Tokenizer* tok, const Collection* c, const TrainSet* t,
                     int want, uint64_t seed) {
    double t0 = wall_seconds();
    int64_t items = 0;
    for (int i = 0; i < t->n; i++) { items += t->num_docs[i]; }
    int n = (int64_t)want < items ? want : (int)items;
    int C = model->config.hidden_size;
    if (n < 10) { printf("head fit: skipped (%d training sequences; it needs 10)\n", n); return; }
    // a seeded partial shuffle of every (query, candidate) item
    int64_t* pick = (int64_t*)mallocCheck((size_t)items * sizeof(int64_t));
    int64_t m = 0;
    for (int i = 0; i < t->n; i++) {
        for (int j = 0; j < t->num_docs[i]; j++) { pick[m++] = (int64_t)i * t->K + j; }
    }
    ZeloRng rng;
    zelo_rng_seed(&rng, seed ^ 0x4EADF17ull);
    for (int64_t i = 0; i < n; i++) {
        int64_t j = i + (int64_t)(zelo_rng_uniform(&rng) * (double)(items - i));
        int64_t tmp = pick[i]; pick[i] = pick[j]; pick[j] = tmp;
    }
    float* X = (float*)mallocCheck((size_t)n * C * sizeof(float));  // (n, C) pooled features
    double* y = (double*)mallocCheck((size_t)n * sizeof(double));
    int* qs = (int*)mallocCheck((size_t)n * sizeof(int));
    int* ds = (int*)mallocCheck((size_t)n * sizeof(int));
    for (int s = 0; s < n; s++) {
        int i = (int)(pick[s] / t->K);
        qs[s] = t->query[i];
        ds[s] = t->docs[pick[s]];
        y[s] = (double)t->ratings[pick[s]] + t->offsets[i];
    }
    Progress progress;
    progress_begin(&progress, "head fit features", n);
    for (int start = 0; start < n; start += b->cap) {
        int k = n - start < b->cap ? n - start : b->cap;
        batch_encode(b, tok, &c->queries, &c->corpus, qs + start, ds + start, k);
        bert_infer(model, b->ids, b->types, b->seq_starts, k);
        memcpy(X + (size_t)start * C, model->acts.pooled, (size_t)k * C * sizeof(float));
        progress_update(&progress, start + k);
    }
    int n_fit = n - n / 5;
    double* w = (double*)mallocCheck((size_t)C * sizeof(double));  // (C,)
    double bias = 0.0, best_mse = INFINITY, best_alpha = -1.0;
    for (size_t a = 0; a < sizeof(ZELO_RIDGE_ALPHAS) / sizeof(ZELO_RIDGE_ALPHAS[0]); a++) {
        if (!zelo_ridge_fit(w, &bias, X, y, n_fit, C, ZELO_RIDGE_ALPHAS[a])) { continue; }
        double mse = ridge_mse(w, bias, X + (size_t)n_fit * C, y + n_fit, n - n_fit, C);
        if (mse < best_mse) { best_mse = mse; best_alpha = ZELO_RIDGE_ALPHAS[a]; }
    }
    if (best_alpha < 0 || !zelo_ridge_fit(w, &bias, X, y, n, C, best_alpha)) {
        die("head fit: the ridge system of %d features of %d sequences is singular", C, n);
    }
    double ymean = 0.0, yvar = 0.0;
    for (int s = n_fit; s < n; s++) { ymean += y[s]; }
    ymean /= (n - n_fit);
    for (int s = n_fit; s < n; s++) { yvar += (y[s] - ymean) * (y[s] - ymean); }
    yvar /= (n - n_fit);
    for (int k = 0; k < C; k++) { model->params.clsw[k] = (float)w[k]; }
    model->params.clsb[0] = (float)bias;
    printf("head fit: %d sequences, ridge alpha %g, held-out R^2 %.3f (%d of them), %.1fs\n", n, best_alpha,
           yvar > 0 ? 1.0 - best_mse / yvar : 0.0, n - n_fit, wall_seconds() - t0);
    free(pick); free(X); free(y); free(qs); free(ds); free(w);
}

// checkpoint = model_<step>.bin + optimizer_<step>.bin, then checkpoint.txt names the step.
// The pointer is written last and atomically, so a run killed at any moment leaves either
// the previous complete checkpoint or the new one, never a mixed pair.
static void checkpoint_save(const BertModel* model, const char* run_dir, int step, int previous) {
    char path[4096], name[64];
    snprintf(name, sizeof(name), "model_%d.bin", step);
    joinPathCheck(path, sizeof(path), run_dir, name);
    bert_save(model, path);
    snprintf(name, sizeof(name), "optimizer_%d.bin", step);
    joinPathCheck(path, sizeof(path), run_dir, name);
    bert_save_optimizer(model, step, path);
    joinPathCheck(path, sizeof(path), run_dir, "checkpoint.txt");
    AtomicFile af;
    FILE* fp = atomicOpen(&af, path, "wb");
    fprintf(fp, "%d\n", step);
    atomicCommit(&af);
    if (previous > 0 && previous != step) {
        snprintf(name, sizeof(name), "model_%d.bin", previous);
        joinPathCheck(path, sizeof(path), run_dir, name);
        remove(path);
        snprintf(name, sizeof(name), "optimizer_%d.bin", previous);
        joinPathCheck(path, sizeof(path), run_dir, name);
        remove(path);
    }
}

// checkpoint_save by rank 0, the AdamW state gathered there first when --zero slices it
static void checkpoint_save_shared(BertModel* model, const Options* o, int step, int previous) {
    if (!o->zero) {
        if (dist.rank == 0) { checkpoint_save(model, o->run_dir, step, previous); }
        return;
    }
    size_t n = model->num_parameters;
    float* m = dist.rank == 0 ? (float*)mallocCheck(n * sizeof(float)) : NULL;
    float* v = dist.rank == 0 ? (float*)mallocCheck(n * sizeof(float)) : NULL;
    dist_gather_blocks(m, model->m_memory, (int64_t)n, sizeof(float));
    dist_gather_blocks(v, model->v_memory, (int64_t)n, sizeof(float));
    if (dist.rank == 0) {
        BertModel whole = *model;  // the same weights, the whole state beside them
        whole.m_memory = m;
        whole.v_memory = v;
        checkpoint_save(&whole, o->run_dir, step, previous);
    }
    free(m);
    free(v);
}

// the step of the last checkpoint, or 0 when there is none
static int checkpoint_step(const char* run_dir) {
    char path[4096];
    joinPathCheck(path, sizeof(path), run_dir, "checkpoint.txt");
    if (!file_exists(path)) { return 0; }
    FILE* fp = fopenCheck(path, "r");
    int step = 0;
    if (fscanf(fp, "%d", &step) != 1 || step <= 0) { die("%s does not hold a step number", path); }
    fclose(fp);
    return step;
}

static void checkpoint_load(BertModel* model, const char* run_dir, int step) {
    char path[4096], name[64];
    snprintf(name, sizeof(name), "model_%d.bin", step);
    joinPathCheck(path, sizeof(path), run_dir, name);
    BertModel loaded;
    bert_load(&loaded, path);
    if (loaded.num_parameters != model->num_parameters ||
        memcmp(&loaded.config, &model->config, sizeof(BertConfig)) != 0) {
        die("%s holds a model of another shape than this run's (--init / --layers ...)", path);
    }
    memcpy(model->params_memory, loaded.params_memory, model->num_parameters * sizeof(float));
    model->cosine_scale = loaded.cosine_scale;
    bert_free(&loaded);
    snprintf(name, sizeof(name), "optimizer_%d.bin", step);
    joinPathCheck(path, sizeof(path), run_dir, name);
    int saved = bert_load_optimizer(model, path);
    if (saved != step) { die("%s holds step %d, checkpoint.txt says %d", path, saved, step); }
}

// ----------------------------------------------------------------------------
// the training settings of a run, recorded beside its checkpoints (training.tsv)

// The options that shape the training trajectory. A resumed run must have the same ones,
// or its steps after the checkpoint would follow another schedule, loss or batch stream
// than those before it. Free to differ: --threads, --matmul, --device and --precision (the same
// products, up to rounding: a bf16 run's checkpoint holds its fp32 master weights and AdamW state), --eval-every, --checkpoint-every, --stop-at and --export (when things
// are measured or saved, and where), --zero (the same weights) and the number of processes
// (the step's batch, recorded as P x --batch-size, is what must match). The stage options (candidates, judge, fit, ...) are
// checked by the headers of candidates.bin and targets.bin, the model's shape by the
// checkpoint's.
#define MAX_SETTINGS 32
typedef struct {
    const char* option;
    char value[48];
    int recorded;  // 0 for a setting that training.tsv holds only when a run sets it (--rounds above 1, ...)
} Setting;

// the shortest decimal that reads back as the same float: exact, and 5e-05 rather than
// 4.99999987e-05 in a message
static void format_float(char* out, size_t cap, float x) {
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(out, cap, "%.*g", digits, (double)x);
        if (strtof(out, NULL) == x) { return; }
    }
}

static int training_settings(Setting* s, const Options* o, const Collection* c, int total) {
    for (int i = 0; i < MAX_SETTINGS; i++) { s[i].recorded = 1; }
    int n = 0;
    s[n].option = "--steps"; snprintf(s[n++].value, sizeof(s->value), "%d", total);
    s[n].option = "--lr"; format_float(s[n++].value, sizeof(s->value), o->lr);
    s[n].option = "--warmup"; format_float(s[n++].value, sizeof(s->value), o->warmup_frac);
    s[n].option = "--schedule"; snprintf(s[n++].value, sizeof(s->value), "%s", o->schedule == SCHEDULE_COSINE ? "cosine" : "linear");
    s[n].option = "--weight-decay"; format_float(s[n++].value, sizeof(s->value), o->weight_decay);
    s[n].option = "--grad-clip"; format_float(s[n++].value, sizeof(s->value), o->grad_clip);
    s[n].option = "--head-lr-scale"; format_float(s[n++].value, sizeof(s->value), o->head_lr_scale);
    s[n].option = "--head"; snprintf(s[n++].value, sizeof(s->value), "%s", score_head_name((ScoreHead)o->head));
    s[n].option = "--loss"; snprintf(s[n++].value, sizeof(s->value), "%s", loss_names[o->loss]);
    // a joint run records none of them (not recorded), as runs did before --packing
    int first = n;
    s[n].option = "--packing"; snprintf(s[n++].value, sizeof(s->value), "%s", packing_name((Packing)o->packing));
    s[n].option = "--gate-init"; format_float(s[n++].value, sizeof(s->value), o->gate_init);
    s[n].option = "--gate-lr"; format_float(s[n++].value, sizeof(s->value), o->gate_lr);
    for (int i = first; i < n; i++) { s[i].recorded = o->packing == PACKING_SPLIT; }
    // the step's sequences over all processes (--batch-size is per process): a run may resume on
    // another number of processes whose batches add up to the same step (microbatch_sample)
    s[n].option = "--batch-size"; snprintf(s[n++].value, sizeof(s->value), "%d", o->batch_size * dist.size);
    s[n].option = "--group-size"; snprintf(s[n++].value, sizeof(s->value), "%d", o->group_size);
    s[n].recorded = o->group_draw != GROUP_DRAW_UNIFORM;  // as runs did before --group-draw
    s[n].option = "--group-draw"; snprintf(s[n++].value, sizeof(s->value), "%s", group_draw_names[o->group_draw]);
    s[n].option = "--grad-accum"; snprintf(s[n++].value, sizeof(s->value), "%d", o->grad_accum);
    s[n].option = "--max-len"; snprintf(s[n++].value, sizeof(s->value), "%d", o->max_len);
    s[n].option = "--head-fit"; snprintf(s[n++].value, sizeof(s->value), "%d", o->head_fit);
    // the batches are drawn from the seed (microbatch_sample)
    s[n].option = "--seed"; snprintf(s[n++].value, sizeof(s->value), "%llu", (unsigned long long)o->seed);
    // which queries train, when the collection has no train split
    s[n].recorded = !c->has_train_split;
    s[n].option = "--eval-frac"; snprintf(s[n++].value, sizeof(s->value), "%.17g", o->eval_frac);
    s[n].option = "--val-frac"; snprintf(s[n++].value, sizeof(s->value), "%.17g", o->val_frac);
    // a run of one round records none of them (not recorded), as runs did before --rounds
    first = n;
    s[n].option = "--rounds"; snprintf(s[n++].value, sizeof(s->value), "%d", o->rounds);
    s[n].option = "--mine-depth"; snprintf(s[n++].value, sizeof(s->value), "%d", o->mine_depth);
    s[n].option = "--mine-docs"; snprintf(s[n++].value, sizeof(s->value), "%d", o->mine_docs);
    s[n].option = "--mine-pairs"; snprintf(s[n++].value, sizeof(s->value), "%d", o->mine_pairs);
    for (int i = first; i < n; i++) { s[i].recorded = o->rounds > 1; }
    return n;
}

// written by a fresh start, before its first checkpoint
static void training_settings_write(const Options* o, const Collection* c, int total) {
    Setting s[MAX_SETTINGS];
    int n = training_settings(s, o, c, total);
    char path[4096];
    joinPathCheck(path, sizeof(path), o->run_dir, "training.tsv");
    AtomicFile af;
    FILE* fp = atomicOpen(&af, path, "w");
    fprintf(fp, "option\tvalue\n");
    for (int i = 0; i < n; i++) {
        if (s[i].recorded) { fprintf(fp, "%s\t%s\n", s[i].option, s[i].value); }
    }
    atomicCommit(&af);
}

// --resume: every recorded setting must equal this run's; each that differs is named
static void training_settings_check(const Options* o, const Collection* c, int total) {
    Setting s[MAX_SETTINGS];
    int n = training_settings(s, o, c, total);
    char path[4096];
    joinPathCheck(path, sizeof(path), o->run_dir, "training.tsv");
    if (!file_exists(path)) {
        fprintf(stderr, "warning: %s is missing (a run directory from before train_zelo recorded it): "
                "--resume cannot check that the training settings are the checkpoint's\n", path);
        return;
    }
    char* text = readFileCheck(path, NULL);
    int differ = 0, line_no = 0;
    int* seen = (int*)callocCheck((size_t)n, sizeof(int));
    for (char* line = text; *line != '\0'; line_no++) {
        char* end = strchr(line, '\n');
        if (end == NULL) { die("%s:%d: a line without its newline; the file is cut", path, line_no + 1); }
        *end = '\0';
        char* tab = strchr(line, '\t');
        if (tab == NULL) { die("%s:%d: not an 'option<TAB>value' line", path, line_no + 1); }
        *tab = '\0';
        if (line_no > 0) {
            int k = 0;
            while (k < n && strcmp(s[k].option, line) != 0) { k++; }
            if (k == n) { die("%s:%d: '%s' is not a training setting of this train_zelo", path, line_no + 1, line); }
            seen[k] = 1;
            if (!s[k].recorded) {
                fprintf(stderr, "train_zelo: --resume: %s is %s in the run that wrote the checkpoint, not set in this run\n",
                        line, tab + 1);
                differ++;
            } else if (strcmp(s[k].value, tab + 1) != 0) {
                fprintf(stderr, "train_zelo: --resume: %s is %s in this run, %s in the run that wrote the checkpoint\n",
                        s[k].option, s[k].value, tab + 1);
                differ++;
            }
        }
        line = end + 1;
    }
    for (int k = 0; k < n; k++) {
        if (s[k].recorded && !seen[k]) {
            fprintf(stderr, "train_zelo: --resume: %s (%s in this run) is not recorded in %s\n", s[k].option, s[k].value, path);
            differ++;
        }
    }
    free(seen);
    free(text);
    if (differ > 0) {
        die("--resume: %d training setting%s differ%s from the checkpoint's (recorded in %s); resume with the same "
            "options, or start another --run-dir", differ, differ == 1 ? "" : "s", differ == 1 ? "s" : "", path);
    }
}

// the dense baseline: cosine of the bi-encoder's embeddings of each evaluation query and
// its candidates, (n_eval, K); embeddings are kept in the run directory for later runs
static float* dense_eval_scores(BertModel* m, const Tokenizer* tok, const Collection* c, const Candidates* cand,
                                const char* run_dir) {
    int K = cand->K;
    const char** doc_texts = (const char**)mallocCheck((size_t)c->corpus.n * sizeof(char*));
    for (int d = 0; d < c->corpus.n; d++) { doc_texts[d] = beir_text(&c->corpus, d); }
    const char** query_texts = (const char**)mallocCheck((size_t)c->queries.n * sizeof(char*));
    for (int q = 0; q < c->queries.n; q++) { query_texts[q] = beir_text(&c->queries, q); }
    // the items to embed, each with its text beside it (dense_store_fill's convention)
    int* items = (int*)mallocCheck((size_t)c->n_eval * K * sizeof(int));
    const char** item_texts = (const char**)mallocCheck((size_t)c->n_eval * K * sizeof(char*));
    const char** eval_query_texts = (const char**)mallocCheck((size_t)c->n_eval * sizeof(char*));
    int n = 0;
    for (int i = 0; i < c->n_eval; i++) {
        int q = c->eval_queries[i];
        eval_query_texts[i] = query_texts[q];
        for (int j = 0; j < candidates_count(cand, q); j++) {
            items[n] = cand->docs[(size_t)q * K + j];
            item_texts[n] = doc_texts[items[n]];
            n++;
        }
    }
    char path[4096];
    DenseStore docs, queries;
    dense_store_init(&docs, m, doc_texts, c->corpus.n, DENSE_DEFAULT_MAX_LEN);
    // the dense judge's file (judges/judge.c): judge and baseline share the embeddings
    joinPathCheck(path, sizeof(path), run_dir, "dense_docs.bin");
    dense_store_load(&docs, path);
    dense_store_fill(&docs, m, tok, items, item_texts, n);
    dense_store_save(&docs, path);
    dense_store_init(&queries, m, query_texts, c->queries.n, DENSE_DEFAULT_MAX_LEN);
    joinPathCheck(path, sizeof(path), run_dir, "dense_queries.bin");
    dense_store_load(&queries, path);
    dense_store_fill(&queries, m, tok, c->eval_queries, eval_query_texts, c->n_eval);
    dense_store_save(&queries, path);
    float* scores = (float*)callocCheck((size_t)c->n_eval * K, sizeof(float));
    for (int i = 0; i < c->n_eval; i++) {
        int q = c->eval_queries[i];
        const float* qe = dense_store_row(&queries, q);
        for (int j = 0; j < candidates_count(cand, q); j++) {
            scores[(size_t)i * K + j] = (float)dense_dot(qe, dense_store_row(&docs, cand->docs[(size_t)q * K + j]), docs.C);
        }
    }
    dense_store_free(&docs);
    dense_store_free(&queries);
    free(doc_texts); free(query_texts); free(items); free(item_texts); free(eval_query_texts);
    return scores;
}

// ----------------------------------------------------------------------------
// the model and its tokenizer

static int ends_with(const char* s, const char* suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

// the vocab.txt that goes with a tokenizer path (a vocab.txt, a tokenizer.json, a directory)
static void vocab_txt_path(char* out, size_t cap, const char* vocab_path) {
    if (ends_with(vocab_path, ".txt")) { snprintf(out, cap, "%s", vocab_path); return; }
    if (ends_with(vocab_path, ".json")) {
        const char* slash = strrchr(vocab_path, '/');
        int dir_len = slash != NULL ? (int)(slash - vocab_path) : 1;
        snprintf(out, cap, "%.*s/vocab.txt", dir_len, slash != NULL ? vocab_path : ".");
        return;
    }
    joinPathCheck(out, cap, vocab_path, "vocab.txt");
}

static void copy_file(const char* to, const char* from) {
    size_t len;
    char* bytes = readFileCheck(from, &len);
    AtomicFile af;
    FILE* fp = atomicOpen(&af, to, "wb");
    fwriteCheck(bytes, 1, len, fp);
    atomicCommit(&af);
    free(bytes);
}

// the vocabulary: --vocab, else the --init directory, else the synthetic collection's
static void tokenizer_setup(Tokenizer* tok, char* vocab_path, size_t vocab_cap, const Options* o, const Collection* c) {
    if (o->vocab != NULL) { snprintf(vocab_path, vocab_cap, "%s", o->vocab); }
    else if (o->init != NULL && !ends_with(o->init, ".bin")) { snprintf(vocab_path, vocab_cap, "%s", o->init); }
    else if (o->data_dir == NULL) { joinPathCheck(vocab_path, vocab_cap, c->dir, "vocab.txt"); }
    else { die("no tokenizer: give --vocab (vocab.txt, tokenizer.json or a directory) or --init a Hugging Face directory"); }
    tokenizer_load(tok, vocab_path);
}

// the starting model, from --init or random; the reranker and the distilled pairwise judge
// both start here
static int model_init(BertModel* model, const Options* o, const Tokenizer* tok, const char* vocab_path, const char* role) {
    int head_trained = 0;
    if (o->init != NULL && ends_with(o->init, ".bin")) {
        head_trained = 1;
        bert_load(model, o->init);
        printf("%s: %s (train_zelo checkpoint)\n", role, o->init);
    } else if (o->init != NULL && o->biencoder) {
        bert_load_hf_encoder(model, o->init, o->seed);  // pooled: the classifier's absence is no news
        printf("%s: %s (Hugging Face encoder)\n", role, o->init);
    } else if (o->init != NULL) {
        head_trained = bert_load_hf(model, o->init, o->seed);
        printf("%s: %s (Hugging Face)\n", role, o->init);
    } else {
        BertConfig cfg = {
            .vocab_size = tok->vocab_size, .hidden_size = o->hidden, .num_layers = o->layers,
            .num_heads = o->heads, .intermediate_size = o->intermediate, .max_position = o->max_len,
            .type_vocab_size = 2, .num_labels = 1, .layer_norm_eps = 1e-12f,
        };
        bert_build(model, &cfg);
        bert_init_random(model, o->seed);
        printf("%s: random BERT, %d layers, hidden %d, %d heads, intermediate %d\n",
               role, o->layers, o->hidden, o->heads, o->intermediate);
    }
    const BertConfig* cfg = &model->config;
    if (cfg->num_labels != 1) { die("the model has %d labels; a reranker scores with 1", cfg->num_labels); }
    if (cfg->vocab_size < tok->vocab_size) {
        die("the tokenizer %s has %d tokens, the model's embedding table only %d", vocab_path, tok->vocab_size, cfg->vocab_size);
    }
    if (o->max_len > cfg->max_position) {
        die("--max-len %d is longer than the model's %d positions", o->max_len, cfg->max_position);
    }
    printf("%s: %zu parameters, vocabulary %s (%d tokens)\n", role, model->num_parameters, vocab_path, tok->vocab_size);
    return head_trained;
}

// The reranker's packing (model.h, Packing): --packing when given, else an --init checkpoint's
// own, else split where a head with the cosine term reads a pretrained encoder that has no
// trained classifier (a bi-encoder such as all-MiniLM-L6-v2: the split packing starts from its
// ranking, which the joint sequence loses; README, issue 13), else joint (a random model has no
// ranking to keep, and a trained classifier was trained on the joint sequence). Split is not for
// the cls head, and turns a model that is not split yet into one with its gates at --gate-init.
static void packing_setup(BertModel* model, Options* o, int from_checkpoint, int head_trained) {
    const char* why = "--packing";
    if (o->packing < 0 && from_checkpoint) { o->packing = model->packing; why = "the --init checkpoint's"; }
    else if (o->packing < 0 && o->init != NULL && !head_trained && score_head_has_cosine(model->score_head)) {
        o->packing = PACKING_SPLIT;
        why = "the cosine term on a pretrained encoder";
    } else if (o->packing < 0) { o->packing = PACKING_JOINT; }
    if (from_checkpoint && o->packing != (int)model->packing) {
        die("--packing %s: %s was trained with the %s packing", packing_name((Packing)o->packing), o->init,
            packing_name(model->packing));
    }
    if (o->packing == PACKING_JOINT) { return; }
    if (model->score_head == SCORE_HEAD_CLS) {
        die("--packing split is not for the cls head: its classifier reads the joint sequence's [CLS]");
    }
    if (model->packing != PACKING_SPLIT) { bert_split_segments(model, o->gate_init); }
    model->gate_lr_scale = o->gate_lr / o->lr;
    if (from_checkpoint) {
        printf("packing: split, [CLS] q [SEP] [CLS] d [SEP] with the attention across gated (%s, with its gates; rate %g)\n",
               why, (double)o->gate_lr);
    } else {
        printf("packing: split, [CLS] q [SEP] [CLS] d [SEP] with the attention across gated (%s; gates start at %g, rate %g)\n",
               why, (double)o->gate_init, (double)o->gate_lr);
    }
}

// The reranker's score head. --head when given; otherwise a train_zelo checkpoint's own (it
// is not silently given another head than the one its weights were trained with), cls for
// Hugging Face weights with a trained classifier, cosine+maxsim for an encoder's weights without
// one (such as all-MiniLM-L6-v2's): it needs no new weights, starts from the ranking of the mean
// pooling the encoder learned, and its maxsim term sees the words a query and a document share
// from the first step (README, issue 13); and cosine for a random model, whose tokens have
// learnt no words to match yet (the head its figures in the README were measured with).
// --export and --head-fit work on the cls head, so they keep it by default.
static void score_head_setup(BertModel* model, Options* o, int head_trained) {
    if (o->biencoder) {
        if (o->head >= 0) { die("--head %s scores (query, document) pairs; --train bi-encoder has no score head", score_head_name((ScoreHead)o->head)); }
        if (o->cosine_scale >= 0) { die("--cosine-scale is the cosine score head's; --train bi-encoder has no score head"); }
        if (o->packing >= 0) { die("--packing lays out (query, document) pairs; --train bi-encoder embeds each text alone"); }
        return;
    }
    int from_checkpoint = o->init != NULL && ends_with(o->init, ".bin");
    const char* why = "--head";
    if (o->head < 0) {
        if (from_checkpoint) { o->head = model->score_head; why = "the --init checkpoint's"; }
        else if (head_trained) { o->head = SCORE_HEAD_CLS; why = "the --init model's trained classifier"; }
        else if (o->export_dir != NULL || o->head_fit > 0) { o->head = SCORE_HEAD_CLS; why = "--export and --head-fit want it"; }
        else if (o->init != NULL) { o->head = SCORE_HEAD_COSINE_MAXSIM; why = "an encoder without a trained classifier"; }
        else { o->head = SCORE_HEAD_COSINE; why = "a random model: no trained classifier to start from"; }
    }
    if (from_checkpoint && o->head != (int)model->score_head) {
        die("--head %s: %s was trained with the %s head", score_head_name((ScoreHead)o->head), o->init,
            score_head_name(model->score_head));
    }
    model->score_head = (ScoreHead)o->head;
    if (model->score_head != SCORE_HEAD_CLS && o->export_dir != NULL) {
        die("--export writes BertForSequenceClassification, whose score is the [CLS] pooler's; the %s head has no such "
            "form (rerank reads the run's model.bin)", score_head_name(model->score_head));
    }
    if (model->score_head != SCORE_HEAD_CLS && o->head_fit > 0) {
        die("--head-fit fits the cls head's classifier; --head is %s", score_head_name(model->score_head));
    }
    if (model->score_head == SCORE_HEAD_CLS && o->cosine_scale >= 0) {
        die("--cosine-scale is the scale of the cosine, maxsim and cosine+maxsim heads; the head is cls (%s)", why);
    }
    packing_setup(model, o, from_checkpoint, head_trained);
    if (model->score_head == SCORE_HEAD_COSINE) {
        printf("score head: cosine, a scale x the cosine of the query's and the document's mean tokens (%s)\n", why);
    } else if (model->score_head == SCORE_HEAD_MAXSIM) {
        printf("score head: maxsim, a scale x the mean over the query's tokens of each one's best cosine with a document token (%s)\n", why);
    } else if (model->score_head == SCORE_HEAD_COSINE_MAXSIM) {
        printf("score head: cosine+maxsim, a scale x (the cosine of the query's and the document's mean tokens + the mean "
               "over the query's tokens of each one's best cosine with a document token) (%s)\n", why);
    } else {
        printf("score head: cls, the pooler and classifier on [CLS] (%s)\n", why);
    }
}

// the cosine head's scale, fitted to the targets before the first step: LP-FT's probe for the
// head's one free number. The untrained model scores every candidate of up to
// COSINE_FIT_QUERIES training queries at scale 1; the scale is the k at which k x their
// cosines' differences best give the ratings' pair probabilities, link(e_a - e_b), under the
// rating-pairs loss (the Thurstone pair likelihood of zelo_pairwise_nll_loss, convex in k, so
// a golden-section search over log k finds its one minimum). Why: the ratings of one query
// lie a few tenths apart (a median standard deviation of 0.20 on CISI, 0.28 on Cranfield, with
// the bm25+dense judge), and the fit puts all-MiniLM-L6-v2's scale at 2.6-4.6 there, where the
// fixed scale of 20 before it started at a pair loss of 0.89-1.04 against the fit's 0.67-0.69: its
// first 20 steps went on shrinking the scores' spread (the loss fell from 0.95 to 0.70) before
// the order could improve (README, issue 13). Every rank scores its share of the sequences
// and fits the same scale from the gathered cosines.
#define COSINE_FIT_QUERIES 16

static void cosine_scale_fit(BertModel* model, Batch* b, const Tokenizer* tok, const Collection* c, const TrainSet* t,
                             ZeloLink link, uint64_t seed) {
    double t0 = wall_seconds();
    int nq = t->n < COSINE_FIT_QUERIES ? t->n : COSINE_FIT_QUERIES;
    int* pick = (int*)mallocCheck((size_t)(t->n > 0 ? t->n : 1) * sizeof(int));
    for (int i = 0; i < t->n; i++) { pick[i] = i; }
    ZeloRng rng;
    zelo_rng_seed(&rng, seed ^ 0xC05CA1Eull);
    for (int i = 0; i < nq; i++) {
        int j = i + zelo_rng_below(&rng, t->n - i);
        int tmp = pick[i]; pick[i] = pick[j]; pick[j] = tmp;
    }
    int n = 0, num_pairs = 0;
    for (int i = 0; i < nq; i++) {
        int nd = t->num_docs[pick[i]];
        n += nd;
        num_pairs += nd * (nd - 1) / 2;
    }
    if (num_pairs == 0) {
        printf("cosine scale: %g, not fitted (the training queries have no two candidates to compare)\n", (double)model->cosine_scale);
        free(pick);
        return;
    }
    int* qs = (int*)mallocCheck((size_t)n * sizeof(int));
    int* ds = (int*)mallocCheck((size_t)n * sizeof(int));
    int* pa = (int*)mallocCheck((size_t)num_pairs * sizeof(int));
    int* pb = (int*)mallocCheck((size_t)num_pairs * sizeof(int));
    float* pp = (float*)mallocCheck((size_t)num_pairs * sizeof(float));
    int m = 0, e = 0;
    for (int i = 0; i < nq; i++) {
        int q = pick[i], nd = t->num_docs[q];
        const float* rating = t->ratings + (size_t)q * t->K;
        for (int j = 0; j < nd; j++) {
            qs[m + j] = t->query[q];
            ds[m + j] = t->docs[(size_t)q * t->K + j];
            for (int k = j + 1; k < nd; k++) {
                pa[e] = m + j;
                pb[e] = m + k;
                pp[e] = (float)zelo_link_prob((double)rating[j] - rating[k], link);
                e++;
            }
        }
        m += nd;
    }
    float unfitted = model->cosine_scale;
    float* cosines = (float*)mallocCheck((size_t)n * sizeof(float));  // (n,) at scale 1
    bert_set_cosine_scale(model, 1.0f);
    int64_t a, z;
    dist_share(&a, &z, n, dist.rank);
    score_pairs(cosines + a, model, b, tok, &c->queries, &c->corpus, qs + a, ds + a, (int)(z - a), "cosine scale fit");
    dist_allgather_blocks(cosines, n, sizeof(float));
    double at_fit;
    float k = (float)zelo_pair_scale_fit(&at_fit, cosines, n, pa, pb, pp, num_pairs);
    double at_unfitted = zelo_pair_scale_loss(unfitted, cosines, pa, pb, pp, num_pairs);
    if (!(at_fit < at_unfitted) || k < 1.001 * ZELO_SCALE_FIT_MIN || k > 0.999 * ZELO_SCALE_FIT_MAX) {
        fprintf(stderr, "warning: cosine scale fit: no scale in [%g, %g] fits the ratings better than %g (the search "
                "ended at %g): the untrained model's cosines do not follow them; the scale stays %g (--cosine-scale X "
                "sets one)\n", ZELO_SCALE_FIT_MIN, ZELO_SCALE_FIT_MAX, (double)unfitted, (double)k, (double)unfitted);
        bert_set_cosine_scale(model, unfitted);
    } else {
        bert_set_cosine_scale(model, k);
        printf("cosine scale: %g, fitted to the ratings of %d training queries (%d candidates, %d pairs): pair loss %.4f "
               "there, %.4f at %g; %.1fs\n", (double)k, nq, n, num_pairs, at_fit, at_unfitted, (double)unfitted,
               wall_seconds() - t0);
    }
    free(pick); free(qs); free(ds); free(pa); free(pb); free(pp); free(cosines);
}

// the cosine head's scale of a fresh run: --cosine-scale X as given; fitted by default, but an
// --init checkpoint keeps the scale it was trained with unless --cosine-scale fit asks again.
// A resumed run has its checkpoint's scale and takes no other.
static void cosine_scale_setup(BertModel* model, Batch* b, const Tokenizer* tok, const Collection* c, const TrainSet* t,
                               const Options* o) {
    if (o->resume) {
        if (o->cosine_scale >= 0) {
            die("--resume continues with the checkpoint's cosine scale (%g); leave --cosine-scale out", (double)model->cosine_scale);
        }
        printf("cosine scale: %g (the checkpoint's)\n", (double)model->cosine_scale);
    } else if (o->cosine_scale > 0) {
        bert_set_cosine_scale(model, o->cosine_scale);
        printf("cosine scale: %g (--cosine-scale)\n", (double)o->cosine_scale);
    } else if (o->cosine_scale < 0 && o->init != NULL && ends_with(o->init, ".bin")) {
        printf("cosine scale: %g (the --init checkpoint's)\n", (double)model->cosine_scale);
    } else {
        cosine_scale_fit(model, b, tok, c, t, o->link, o->seed);
    }
}

// ----------------------------------------------------------------------------
// judging and the rating fit, shared out

// battles each rank asks per round of judge_battles_shared: what an interrupted run can lose
#define JUDGE_ROUND 64

// judge_battles_cached with the battles the cache lacks shared out: in rounds of JUDGE_ROUND
// battles per rank, each rank asks its own judge (a cmd judge: its own program) its block of
// the round; rank 0 gathers the answers, appends them to the cache (open on rank 0 only) and
// flushes it, so that an interrupted run asks again at most one round. A battle's answer
// depends on the battle alone (the sim judge seeds each battle from its own hash), so N ranks
// answer as one process does. Every rank ends with all n answers.
static void judge_battles_shared(float* p_out, Judge* judge, JudgeCache* cache, const Battle* battles, int n) {
    if (dist.size == 1) {
        judge_battles_cached(p_out, judge, cache, battles, n);
        return;
    }
    int* missing = (int*)mallocCheck((size_t)(n > 0 ? n : 1) * sizeof(int));
    int m = 0;
    if (dist.rank == 0) {
        for (int i = 0; i < n; i++) {
            if (!judge_cache_lookup(&p_out[i], cache, &battles[i])) { missing[m++] = i; }
        }
    }
    dist_broadcast(&m, sizeof(m), 0);
    dist_broadcast(missing, (size_t)m * sizeof(int), 0);
    // this rank's block of every round, prepared in bulk (dense embeddings, model scores)
    int64_t round = (int64_t)JUDGE_ROUND * dist.size;
    Battle* mine = (Battle*)mallocCheck((size_t)(m > 0 ? m : 1) * sizeof(Battle));
    int n_mine = 0;
    for (int64_t start = 0; start < m; start += round) {
        int64_t a, b;
        dist_share(&a, &b, m - start < round ? m - start : round, dist.rank);
        for (int64_t i = a; i < b; i++) { mine[n_mine++] = battles[missing[start + i]]; }
    }
    if (n_mine > 0) { judge_prepare(judge, mine, n_mine); }
    int M = judge->n_members;  // each member's answer travels, for the cache's lines
    float* answers = (float*)mallocCheck((size_t)round * M * sizeof(float));  // (round, M)
    int64_t* got = (int64_t*)mallocCheck((size_t)dist.size * sizeof(int64_t));
    int64_t* displs = (int64_t*)mallocCheck((size_t)dist.size * sizeof(int64_t));
    Progress progress;
    progress_begin(&progress, "judging", m);
    for (int64_t start = 0, at = 0; start < m; start += round) {
        int64_t len = m - start < round ? m - start : round, a, b;
        dist_share(&a, &b, len, dist.rank);
        int asked = (int)(b - a);
        int answered = judge_battles_members(answers + a * M, judge, mine + at, asked);
        at += asked;
        dist_allgather_int64(got, answered);
        int failed = 0;
        for (int r = 0; r < dist.size; r++) {
            dist_share(&displs[r], &b, len, r);
            if (got[r] < b - displs[r]) { failed = 1; }
        }
        dist_gatherv(answers, displs, got, sizeof(float) * (size_t)M, 0);
        if (dist.rank == 0) {
            for (int r = 0; r < dist.size; r++) {
                for (int64_t i = displs[r]; i < displs[r] + got[r]; i++) {
                    int e = missing[start + i];
                    p_out[e] = judge_cache_add(cache, &battles[e], answers + i * M);
                }
            }
            judge_cache_flush(cache);
        }
        if (failed) {
            dist_barrier();  // the answers that came are in the cache now
            if (answered < asked) {
                die("%s\n(the battles judged so far are saved in %s; run again to resume)", judge->error,
                    dist.rank == 0 ? cache->path : "the run directory's judgment cache");
            }
            // a rank whose judge failed has just ended the job (die aborts every rank): wait for it
            dist_barrier();
        }
        progress_update(&progress, start + len);
    }
    dist_broadcast(p_out, (size_t)n * sizeof(float), 0);
    free(missing); free(mine); free(answers); free(got); free(displs);
}

// zelo_fit_ratings with the queries shared out by blocks: each query's fit depends on its own
// battles alone, so the ratings are one process's bits. Returns the queries that did not
// converge, over all ranks; dies naming the query on invalid input.
static int fit_ratings_shared(double* e, ZeloFitStatus* status, const ZeloPairs* pairs, const ZeloFitConfig* fit,
                              Device device) {
    int64_t q0, q1;
    dist_share(&q0, &q1, pairs->num_queries, dist.rank);
    // this rank's queries as a ZeloPairs of their own, offsets counted from their first
    int nq = (int)(q1 - q0);
    int64_t* doc_start = (int64_t*)mallocCheck((size_t)(nq + 1) * sizeof(int64_t));
    int64_t* pair_start = (int64_t*)mallocCheck((size_t)(nq + 1) * sizeof(int64_t));
    for (int i = 0; i <= nq; i++) {
        doc_start[i] = pairs->doc_start[q0 + i] - pairs->doc_start[q0];
        pair_start[i] = pairs->pair_start[q0 + i] - pairs->pair_start[q0];
    }
    int64_t p0 = pairs->pair_start[q0], d0 = pairs->doc_start[q0];
    ZeloPairs block = { nq, doc_start, pair_start, pairs->a + p0, pairs->b + p0, pairs->p + p0, NULL };
    ZeloPairError err;
    int bad = device == DEVICE_CUDA ? zelo_fit_ratings_gpu(e + d0, status + q0, &err, &block, fit)
                                    : zelo_fit_ratings(e + d0, status + q0, &err, &block, fit);
    if (bad < 0) {
        die("rating fit: query %lld, pair %lld: %s", (long long)(q0 + err.query), (long long)(p0 + err.pair), err.message);
    }
    free(doc_start);
    free(pair_start);
    int64_t* displs = (int64_t*)mallocCheck((size_t)dist.size * sizeof(int64_t));
    int64_t* counts = (int64_t*)mallocCheck((size_t)dist.size * sizeof(int64_t));
    for (int r = 0; r < dist.size; r++) {
        int64_t a, b;
        dist_share(&a, &b, pairs->num_queries, r);
        displs[r] = pairs->doc_start[a];
        counts[r] = pairs->doc_start[b] - pairs->doc_start[a];
    }
    dist_gatherv(e, displs, counts, sizeof(double), -1);
    free(displs); free(counts);
    dist_allgather_blocks(status, pairs->num_queries, sizeof(ZeloFitStatus));
    int failed = 0;
    for (int q = 0; q < pairs->num_queries; q++) { failed += !status[q].converged; }
    return failed;
}

// ----------------------------------------------------------------------------
// the paper's second stage: the judge answers a sample of the battles, a pairwise model
// learns its answers, then judges every battle (cheaply, where the judge is an LLM ensemble)

typedef struct {
    const Options* o;
    const Collection* c;
    const Tokenizer* tok;       // the reranker's vocabulary, which the student shares
    const char* vocab_path;
    Device device;              // where the student trains
    Precision precision;        // and at what precision (--precision)
} DistillSetup;

// the pairwise student, trained on the teacher's answers sample_p to the battles sample[0..m),
// saved to student_path
static void distill_train_student(const char* student_path, const Battle* sample, const float* sample_p, int m,
                                  const DistillSetup* ds) {
    const Options* o = ds->o;
    BertModel student;
    model_init(&student, o, ds->tok, ds->vocab_path, "pairwise student");
    bert_to_device(&student, ds->device, ds->precision);
    DistillConfig cfg;
    distill_default_config(&cfg);
    cfg.steps = o->distill_steps;
    // the step of the reranker's training, all processes' sequences: the student of one process
    int step_batch = o->batch_size * dist.size;
    cfg.batch_size = step_batch % 2 == 0 ? step_batch : step_batch + 1;
    cfg.max_len = o->max_len;
    cfg.lr = o->lr;
    cfg.weight_decay = o->weight_decay;
    cfg.grad_clip = o->grad_clip;
    cfg.warmup_frac = o->warmup_frac;
    cfg.seed = o->seed;
    FILE* log = log_open(o->run_dir);
    DistillResult r = distill_pairwise(&student, ds->tok, &ds->c->corpus, &ds->c->queries, sample, sample_p, m, &cfg, log);
    fclose(log);
    printf("distill: held-out agreement with the judge %.3f -> %.3f, BCE %.4f -> %.4f (floor %.4f)\n",
           r.agreement_start, r.agreement_end, r.bce_start, r.bce_end, r.bce_floor);
    bert_save(&student, student_path);
    bert_free(&student);
}

// p_out[i] for the ordinary battles[0..n): the teacher judges a seeded sample of them, the
// student trained on that sample judges them all
static void judge_distilled(float* p_out, const Battle* battles, int n, Judge* teacher, JudgeCache* teacher_cache,
                            const DistillSetup* ds) {
    const Options* o = ds->o;
    char student_path[4096], cache_path[4096];
    joinPathCheck(student_path, sizeof(student_path), o->run_dir, "pairwise.bin");
    joinPathCheck(cache_path, sizeof(cache_path), o->run_dir, "judgments_pairwise.jsonl");
    // the ranks share the teacher's sample out, rank 0 trains the student on it alone; every
    // rank then judges its share of the battles with the student
    if (!file_exists_on_rank0(student_path)) {
        // the teacher's sample: a seeded partial shuffle of the battles
        int m = o->distill < n ? o->distill : n;
        int* order = (int*)mallocCheck((size_t)(n > 0 ? n : 1) * sizeof(int));
        for (int i = 0; i < n; i++) { order[i] = i; }
        ZeloRng rng;
        zelo_rng_seed(&rng, o->seed ^ 0xD157111ull);
        Battle* sample = (Battle*)mallocCheck((size_t)(m > 0 ? m : 1) * sizeof(Battle));
        for (int i = 0; i < m; i++) {
            int j = i + zelo_rng_below(&rng, n - i);
            int tmp = order[i]; order[i] = order[j]; order[j] = tmp;
            sample[i] = battles[order[i]];
        }
        float* sample_p = (float*)mallocCheck((size_t)(m > 0 ? m : 1) * sizeof(float));
        printf("distill: the judge answers %d of %d battles\n", m, n);
        judge_battles_shared(sample_p, teacher, teacher_cache, sample, m);
        if (dist.rank == 0) { distill_train_student(student_path, sample, sample_p, m, ds); }
        free(order); free(sample); free(sample_p);
        dist_barrier();  // the student is on disk for every rank
    }
    char spec[4200];
    snprintf(spec, sizeof(spec), "model:%s,pairwise", student_path);
    JudgeContext ctx = teacher->ctx;
    ctx.tokenizer = ds->tok;
    ctx.max_len = o->max_len;
    Judge student_judge;
    judge_create(&student_judge, spec, &ctx);
    JudgeCache cache;
    if (dist.rank == 0) { judge_cache_open(&cache, cache_path, &student_judge); }
    printf("distill: the pairwise student judges all %d battles\n", n);
    judge_battles_shared(p_out, &student_judge, &cache, battles, n);
    if (dist.rank == 0) { judge_cache_close(&cache); }
    judge_free(&student_judge);
}

// ----------------------------------------------------------------------------
// stage 2 itself

// the ratings of every training query fitted from its judged pairs (t->pair_p), the offsets
// calibrated across queries (their battles judged through the cache, open on rank 0), and the
// targets; prints what the fit did
static void targets_fit(TrainSet* t, const Collection* c, Judge* judge, JudgeCache* cache, const Options* o, Device device) {
    int K = t->K;
    int64_t P = t->pair_start[t->n];
    // the rating fit of every query
    double* p = (double*)mallocCheck((size_t)(P > 0 ? P : 1) * sizeof(double));
    for (int64_t e = 0; e < P; e++) { p[e] = t->pair_p[e]; }
    int64_t* doc_start = (int64_t*)mallocCheck((size_t)(t->n + 1) * sizeof(int64_t));
    doc_start[0] = 0;
    for (int i = 0; i < t->n; i++) { doc_start[i + 1] = doc_start[i] + t->num_docs[i]; }
    ZeloPairs pairs = { t->n, doc_start, t->pair_start, t->pair_a, t->pair_b, p, NULL };
    ZeloFitConfig fit;
    zelo_fit_config_default(&fit, o->link);
    fit.lambda = o->lambda;
    double* e = (double*)mallocCheck((size_t)(doc_start[t->n] > 0 ? doc_start[t->n] : 1) * sizeof(double));
    ZeloFitStatus* status = (ZeloFitStatus*)mallocCheck((size_t)t->n * sizeof(ZeloFitStatus));
    ZeloPairError err;
    double t0 = wall_seconds();
    int failed = fit_ratings_shared(e, status, &pairs, &fit, device);
    printf("fit: %d queries in %.3fs on the %s (%s link, lambda %g)", t->n, wall_seconds() - t0,
           device == DEVICE_CUDA ? "GPU" : "CPU", zelo_link_name(o->link), o->lambda);
    if (failed > 0) {
        printf("; %d queries did NOT converge to |grad| <= %g:", failed, fit.grad_tol);
        for (int i = 0, shown = 0; i < t->n && shown < 5; i++) {
            if (!status[i].converged) { printf(" %s (|grad| %.2e)", beir_id(&c->queries, t->query[i]), status[i].grad_inf); shown++; }
        }
    }
    printf("\n");
    // --lambda 0 where the maximum-likelihood ratings do not exist: the fit took the link's
    // default prior for those queries (zelo_loss.h), which the run must say
    int no_optimum = 0;
    double fallback_lambda = 0.0;
    for (int i = 0; i < t->n; i++) {
        if (status[i].no_optimum != ZELO_OPTIMUM_FINITE) { no_optimum++; fallback_lambda = status[i].lambda; }
    }
    if (no_optimum > 0) {
        printf("fit: warning: %d queries have no finite rating optimum with lambda 0 (judgments that do not connect "
               "their documents, or documents that beat all others with certainty); fitted with lambda %g instead:",
               no_optimum, fallback_lambda);
        for (int i = 0, shown = 0; i < t->n && shown < 5; i++) {
            if (status[i].no_optimum != ZELO_OPTIMUM_FINITE) { printf(" %s", beir_id(&c->queries, t->query[i])); shown++; }
        }
        printf("\n");
    }
    // calibration: offsets b from cross-query battles, or b = 0 (said)
    double* b = (double*)callocCheck((size_t)t->n, sizeof(double));
    if (o->cross_pairs > 0 && t->n >= 2) {
        int64_t ncap = zelo_cross_query_capacity(t->n, o->cycles, o->cross_pairs);
        ZeloCrossPair* cross = (ZeloCrossPair*)mallocCheck((size_t)ncap * sizeof(ZeloCrossPair));
        int64_t nc = zelo_cross_query_pairs(cross, t->n, t->num_docs, o->cycles, o->cross_pairs, o->seed ^ 0xC0FFEEull);
        Battle* xb = (Battle*)mallocCheck((size_t)(nc > 0 ? nc : 1) * sizeof(Battle));
        for (int64_t j = 0; j < nc; j++) {
            const ZeloCrossPair* x = &cross[j];
            xb[j] = (Battle){ t->query[x->query_a], t->docs[(size_t)x->query_a * K + x->doc_a],
                              t->query[x->query_b], t->docs[(size_t)x->query_b * K + x->doc_b] };
        }
        float* xp = (float*)mallocCheck((size_t)(nc > 0 ? nc : 1) * sizeof(float));
        judge_battles_shared(xp, judge, cache, xb, (int)nc);
        double* xpd = (double*)mallocCheck((size_t)(nc > 0 ? nc : 1) * sizeof(double));
        for (int64_t j = 0; j < nc; j++) { xpd[j] = xp[j]; }
        // one fit over all queries: rank 0's offsets are every rank's
        ZeloCalibrationStatus cs;
        memset(&cs, 0, sizeof(cs));
        if (dist.rank == 0 && !zelo_calibrate_offsets(b, &cs, &err, cross, xpd, nc, e, doc_start, t->n, &fit)) {
            die("calibration: %s", err.message);
        }
        dist_broadcast(b, (size_t)t->n * sizeof(double), 0);
        printf("calibration: %lld cross-query battles, offsets fitted (%s, |grad| %.1e)%s\n", (long long)nc,
               cs.fit.converged ? "converged" : "NOT converged", cs.fit.grad_inf,
               cs.uncovered > 0 ? "; some queries are in no cross-query battle: their offset is the prior's 0" : "");
        if (cs.fit.no_optimum != ZELO_OPTIMUM_FINITE) {
            printf("calibration: warning: the offsets have no finite optimum with lambda 0 (%s); fitted with lambda %g instead\n",
                   cs.fit.no_optimum == ZELO_OPTIMUM_DISCONNECTED ? "the cross-query battles do not connect all queries"
                                                                 : "some queries beat all others with certainty",
                   cs.fit.lambda);
        }
        free(cross); free(xb); free(xp); free(xpd);
    } else {
        printf("calibration: off (--cross-pairs 0 or one training query): offsets b = 0, ratings of different queries are not comparable\n");
    }
    for (int i = 0; i < t->n; i++) {
        t->offsets[i] = (float)b[i];
        for (int j = 0; j < t->num_docs[i]; j++) {
            double s = e[doc_start[i] + j] + b[i];
            t->ratings[(size_t)i * K + j] = (float)e[doc_start[i] + j];
            t->targets[(size_t)i * K + j] = (float)zelo_target(s);
        }
    }
    free(p); free(doc_start); free(e); free(status); free(b);
}


static void targets_stage(TrainSet* t, const Collection* c, const Candidates* cand, Judge* judge,
                          const Options* o, const DistillSetup* ds) {
    char path[4096], cache_path[4096], tsv_path[4096];
    joinPathCheck(path, sizeof(path), o->run_dir, "targets.bin");
    joinPathCheck(cache_path, sizeof(cache_path), o->run_dir, "judgments.jsonl");
    joinPathCheck(tsv_path, sizeof(tsv_path), o->run_dir, "ratings.tsv");
    int want[TARGETS_HEADER_WORDS];
    targets_header(want, c, o);
    if (file_exists_on_rank0(path)) {
        trainset_read(t, want, path);
        printf("targets: read from %s (%lld judged pairs)\n", path, (long long)t->pair_start[t->n]);
        return;
    }
    int K = cand->K, k = 2 * o->cycles;
    // the pair graph of every training query
    int64_t cap = 0;
    for (int i = 0; i < c->n_train; i++) { cap += zelo_pair_graph_capacity(candidates_count(cand, c->train_queries[i]), k); }
    trainset_alloc(t, c->n_train, K, cap);
    t->pair_start[0] = 0;
    for (int i = 0; i < c->n_train; i++) {
        int q = c->train_queries[i];
        t->query[i] = q;
        t->num_docs[i] = candidates_count(cand, q);
        memcpy(t->docs + (size_t)i * K, cand->docs + (size_t)q * K, (size_t)K * sizeof(int));
        int64_t p0 = t->pair_start[i];
        int np = t->num_docs[i] >= 2
                     ? zelo_pair_graph(t->pair_a + p0, t->pair_b + p0, t->num_docs[i], k, query_seed(o->seed, beir_id(&c->queries, q)))
                     : 0;
        t->pair_start[i + 1] = p0 + np;
    }
    int64_t P = t->pair_start[t->n];
    printf("pairs: %lld battles over %d training queries (%d random cycles each, k = %d)\n",
           (long long)P, t->n, o->cycles, k);
    // the judge, through the cache: an interrupted run resumes where it stopped
    Battle* battles = (Battle*)mallocCheck((size_t)(P > 0 ? P : 1) * sizeof(Battle));
    for (int i = 0; i < t->n; i++) {
        for (int64_t e = t->pair_start[i]; e < t->pair_start[i + 1]; e++) {
            const int* docs = t->docs + (size_t)i * K;
            battles[e] = (Battle){ t->query[i], docs[t->pair_a[e]], t->query[i], docs[t->pair_b[e]] };
        }
    }
    JudgeCache cache;  // rank 0's: the others' answers reach the file through it
    if (dist.rank == 0) { judge_cache_open(&cache, cache_path, judge); }
    if (o->distill > 0) { judge_distilled(t->pair_p, battles, (int)P, judge, &cache, ds); }
    else { judge_battles_shared(t->pair_p, judge, &cache, battles, (int)P); }
    free(battles);
    targets_fit(t, c, judge, &cache, o, ds->device);
    if (dist.rank == 0) { judge_cache_close(&cache); }
    if (dist.rank == 0) {
        trainset_write(t, want, path);
        trainset_write_tsv(t, c, tsv_path);
        printf("targets: written to %s and %s\n", path, tsv_path);
    }
}

// ----------------------------------------------------------------------------
// failure mining (--rounds): the training set of the next round, from the model at the end of
// this one. Validation queries are never mined: they stay as the judge rated them, to measure.

static void round_targets_path(char* out, size_t cap, const char* run_dir, int round) {
    char name[64];
    snprintf(name, sizeof(name), "targets.round%d.bin", round);
    joinPathCheck(out, cap, run_dir, name);
}

// a fresh start mines its rounds anew: an earlier start's round files came from its model
static void round_targets_clear(const char* run_dir) {
    for (int r = 2; r <= MAX_ROUNDS; r++) {
        char path[4096];
        round_targets_path(path, sizeof(path), run_dir, r);
        if (!file_exists(path)) { continue; }
        if (remove(path) != 0) { die("%s: cannot remove this round file of an earlier start: %s", path, strerror(errno)); }
        printf("round %d: %s, from an earlier start, removed (this start mines its rounds again)\n", r, path);
    }
}

static void round_targets_header(int* want /* (TARGETS_HEADER_WORDS,) */, const Collection* c, const Options* o,
                                 const TrainSet* first, int round) {
    targets_header(want, c, o);
    want[2] = first->n;
    want[3] = first->K + (round - 1) * o->mine_docs;
    want[14] = round;
    want[15] = o->mine_depth;
    want[16] = o->mine_docs;
    want[17] = o->mine_pairs;
}

// the lists a round's model scores: each training query's documents, then the rest of its
// pool; (list_start[i], list_start[i+1]) are query i's, list_docs their corpus indices, *scores
// the model's (all 0 when nothing is mined: the control of --mine-docs 0 --mine-pairs 0)
static int64_t mining_lists_scored(int64_t* list_start /* (n+1,) */, int** list_docs, float** scores, const TrainSet* t,
                                   const Candidates* pool, BertModel* model, Batch* b, const Tokenizer* tok,
                                   const Collection* c, const Options* o) {
    int D = pool->K, K = t->K;
    int* queries = (int*)mallocCheck((size_t)(t->n > 0 ? t->n : 1) * (K + D) * sizeof(int));
    int* docs_out = (int*)mallocCheck((size_t)(t->n > 0 ? t->n : 1) * (K + D) * sizeof(int));
    int64_t n = 0;
    for (int i = 0; i < t->n; i++) {
        list_start[i] = n;
        const int* docs = t->docs + (size_t)i * K;
        for (int j = 0; j < t->num_docs[i]; j++) { queries[n] = t->query[i]; docs_out[n++] = docs[j]; }
        const int* row = pool->docs + (size_t)t->query[i] * D;
        for (int j = 0; j < D && row[j] >= 0; j++) {
            int have = 0;
            for (int m = 0; m < t->num_docs[i] && !have; m++) { have = docs[m] == row[j]; }
            if (!have) { queries[n] = t->query[i]; docs_out[n++] = row[j]; }
        }
    }
    list_start[t->n] = n;
    float* s = (float*)callocCheck((size_t)(n > 0 ? n : 1), sizeof(float));
    if (o->mine_docs > 0 || o->mine_pairs > 0) {
        int64_t a0, a1;  // each rank scores its block of the pairs
        dist_share(&a0, &a1, n, dist.rank);
        score_pairs(s + a0, model, b, tok, &c->queries, &c->corpus, queries + a0, docs_out + a0, (int)(a1 - a0), "mining");
        dist_allgather_blocks(s, n, sizeof(float));
    }
    free(queries);
    *list_docs = docs_out;
    *scores = s;
    return n;
}

// the pairs of t marked unjudged (p < 0) sent to the judge the first round's went to, through
// the cache (a --distill run's student answers them), their p filled in
static void mined_battles_judge(TrainSet* t, Judge* judge, JudgeCache* cache, const Options* o, const DistillSetup* ds) {
    int64_t n = 0;
    for (int64_t e = 0; e < t->pair_start[t->n]; e++) { n += t->pair_p[e] < 0.0f; }
    Battle* battles = (Battle*)mallocCheck((size_t)(n > 0 ? n : 1) * sizeof(Battle));
    int64_t* where = (int64_t*)mallocCheck((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    int64_t m = 0;
    for (int i = 0; i < t->n; i++) {
        const int* docs = t->docs + (size_t)i * t->K;
        for (int64_t e = t->pair_start[i]; e < t->pair_start[i + 1]; e++) {
            if (t->pair_p[e] >= 0.0f) { continue; }
            battles[m] = (Battle){ t->query[i], docs[t->pair_a[e]], t->query[i], docs[t->pair_b[e]] };
            where[m++] = e;
        }
    }
    float* p = (float*)mallocCheck((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (o->distill > 0) { judge_distilled(p, battles, (int)n, judge, cache, ds); }
    else { judge_battles_shared(p, judge, cache, battles, (int)n); }
    for (int64_t j = 0; j < n; j++) { t->pair_p[where[j]] = p[j]; }
    free(battles); free(where); free(p);
}

// next = t with each query's failures added: the model (the end of round - 1) scores the query's
// documents and the rest of its pool; new documents it ranks in its top --candidates join
// (zelo_mine_documents), with battles against the others, and pairs it orders against the
// ratings are judged (zelo_mine_pairs); the new battles go to the judge, then every query is
// refitted (targets_fit).
static void trainset_mine(TrainSet* next, const TrainSet* t, const Candidates* pool, BertModel* model, Batch* b,
                          const Tokenizer* tok, const Collection* c, Judge* judge, const Options* o,
                          const DistillSetup* ds, int round) {
    int K = t->K, K_next = K + o->mine_docs, k = 2 * o->cycles;
    int64_t* list_start = (int64_t*)mallocCheck((size_t)(t->n + 1) * sizeof(int64_t));
    int* list_docs;
    float* scores;
    int64_t n = mining_lists_scored(list_start, &list_docs, &scores, t, pool, model, b, tok, c, o);
    if (o->mine_docs > 0 || o->mine_pairs > 0) {
        printf("mining (round %d): the model scored %lld documents of %d training queries (their %d and the rest of the "
               "top %d of %s)\n", round, (long long)n, t->n, K, pool->K, CANDIDATE_SOURCES[pool->source]);
    }
    int64_t cap = t->pair_start[t->n];
    for (int i = 0; i < t->n; i++) { cap += zelo_mine_pairs_capacity(t->num_docs[i], o->mine_docs, k, o->mine_pairs); }
    trainset_alloc(next, t->n, K_next, cap);
    int* picked = (int*)mallocCheck((size_t)(o->mine_docs > 0 ? o->mine_docs : 1) * sizeof(int));
    float* query_scores = (float*)mallocCheck((size_t)K_next * sizeof(float));  // of next's documents of the query
    int64_t at = 0, new_docs = 0, disagree = 0;
    int grown = 0;
    next->pair_start[0] = 0;
    for (int i = 0; i < t->n; i++) {
        int n_old = t->num_docs[i];
        int64_t l0 = list_start[i];
        int n_new = zelo_mine_documents(picked, scores + l0, (int)(list_start[i + 1] - l0), n_old, o->candidates, o->mine_docs);
        next->query[i] = t->query[i];
        next->num_docs[i] = n_old + n_new;
        next->offsets[i] = t->offsets[i];
        int* docs = next->docs + (size_t)i * K_next;
        for (int j = 0; j < K_next; j++) { docs[j] = -1; }
        memcpy(docs, t->docs + (size_t)i * K, (size_t)n_old * sizeof(int));
        memcpy(next->ratings + (size_t)i * K_next, t->ratings + (size_t)i * K, (size_t)n_old * sizeof(float));
        memcpy(query_scores, scores + l0, (size_t)n_old * sizeof(float));
        for (int j = 0; j < n_new; j++) {
            docs[n_old + j] = list_docs[l0 + picked[j]];
            query_scores[n_old + j] = scores[l0 + picked[j]];
        }
        // the query's judged pairs, then its new ones, unjudged (p = -1) until the judge answers
        int64_t p0 = t->pair_start[i], np = t->pair_start[i + 1] - p0;
        memcpy(next->pair_a + at, t->pair_a + p0, (size_t)np * sizeof(int));
        memcpy(next->pair_b + at, t->pair_b + p0, (size_t)np * sizeof(int));
        memcpy(next->pair_p + at, t->pair_p + p0, (size_t)np * sizeof(float));
        at += np;
        uint64_t seed = query_seed(o->seed ^ (0x6D696E65ull * (uint64_t)round), beir_id(&c->queries, t->query[i]));
        int m = zelo_mine_pairs(next->pair_a + at, next->pair_b + at, query_scores, t->ratings + (size_t)i * K, n_old,
                                n_new, t->pair_a + p0, t->pair_b + p0, np, k, o->mine_pairs, seed);
        for (int e = 0; e < m; e++) { next->pair_p[at + e] = -1.0f; }
        // the disagreements come first, each between two current documents
        for (int e = 0; e < m && next->pair_a[at + e] < n_old && next->pair_b[at + e] < n_old; e++) { disagree++; }
        at += m;
        next->pair_start[i + 1] = at;
        new_docs += n_new;
        grown += n_new > 0;
    }
    free(picked); free(query_scores); free(scores); free(list_docs); free(list_start);
    printf("mining (round %d): %lld new documents in %d queries (at most %d each, from the model's top %d), %lld pairs "
           "it ordered against the ratings (at most %d each): %lld new battles\n", round, (long long)new_docs, grown,
           o->mine_docs, o->candidates, (long long)disagree, o->mine_pairs, (long long)(at - t->pair_start[t->n]));
    char cache_path[4096];
    joinPathCheck(cache_path, sizeof(cache_path), o->run_dir, "judgments.jsonl");
    JudgeCache cache;  // rank 0's, as in the targets stage
    if (dist.rank == 0) { judge_cache_open(&cache, cache_path, judge); }
    mined_battles_judge(next, judge, &cache, o, ds);
    targets_fit(next, c, judge, &cache, o, ds->device);
    if (dist.rank == 0) { judge_cache_close(&cache); }
}

// the training set of round `round` (>= 2): read from its file, or mined from prev (the set of
// the round before) with the model as that round left it (may_mine), and written
static void trainset_round(TrainSet* next, const TrainSet* prev, const TrainSet* first, const Candidates* pool,
                           BertModel* model, Batch* b, const Tokenizer* tok, const Collection* c, Judge* judge,
                           const Options* o, const DistillSetup* ds, int round, int may_mine) {
    char path[4096];
    round_targets_path(path, sizeof(path), o->run_dir, round);
    int want[TARGETS_HEADER_WORDS];
    round_targets_header(want, c, o, first, round);
    if (file_exists_on_rank0(path)) {
        trainset_read(next, want, path);
        printf("round %d: targets read from %s (%lld judged pairs)\n", round, path, (long long)next->pair_start[next->n]);
        return;
    }
    if (!may_mine) {
        die("%s is missing: the checkpoint is from round %d, whose training set it holds; resume from the end of "
            "round %d (or start another --run-dir)", path, round, round - 1);
    }
    trainset_mine(next, prev, pool, model, b, tok, c, judge, o, ds, round);
    if (dist.rank == 0) {
        char tsv[4096], name[64];
        snprintf(name, sizeof(name), "ratings.round%d.tsv", round);
        joinPathCheck(tsv, sizeof(tsv), o->run_dir, name);
        trainset_write(next, want, path);
        trainset_write_tsv(next, c, tsv);
        printf("round %d: targets written to %s and %s\n", round, path, tsv);
    }
}

// ----------------------------------------------------------------------------

// the table on stdout and in run_dir/file (results.tsv; a bi-encoder's results_biencoder.tsv)
static void print_table(const ResultRow* rows, int n, int n_eval, const char* run_dir, const char* file) {
    char path[4096];
    joinPathCheck(path, sizeof(path), run_dir, file);
    AtomicFile af;
    FILE* fp = atomicOpen(&af, path, "w");
    fprintf(fp, "system\tndcg@10\trecall@100\tmrr@10\n");
    int width = 28;  // the names' column, as wide as the longest
    for (int i = 0; i < n; i++) { width = (int)strlen(rows[i].name) > width ? (int)strlen(rows[i].name) : width; }
    printf("\nheld-out queries: %d\n%-*s %9s %11s %8s\n", n_eval, width, "system", "NDCG@10", "Recall@100", "MRR@10");
    for (int i = 0; i < n; i++) {
        printf("%-*s %9.4f %11.4f %8.4f\n", width, rows[i].name, rows[i].mean.ndcg_at_10, rows[i].mean.recall_at_100, rows[i].mean.mrr_at_10);
        fprintf(fp, "%s\t%.6f\t%.6f\t%.6f\n", rows[i].name, rows[i].mean.ndcg_at_10, rows[i].mean.recall_at_100, rows[i].mean.mrr_at_10);
    }
    atomicCommit(&af);
    printf("(table in %s, TREC runs run.*.trec beside it)\n", path);
}

// Before training the log loses the steps that will run again, so that it reads as one
// run: a resumed run keeps what was written up to its checkpoint's step and drops what a
// killed run wrote after it (and a finished run's final evaluation, which resuming repeats);
// a fresh start (step -1) drops every step of an earlier, interrupted start. The lines of
// the distillation stage, which is never redone, stay. Returns whether the log holds the
// evaluation of the model before training, read into *before for the table, which a
// resumed run cannot compute (its starting weights are gone); the evaluations that ended
// rounds (--rounds) go to round_end[r - 1], round_seen[r - 1] = 1, for the same reason.
static int log_rewind(MetricScores* before, MetricScores* round_end /* (MAX_ROUNDS,) */, int* round_seen /* (MAX_ROUNDS,) */,
                      const char* run_dir, int step, int total) {
    char path[4096];
    joinPathCheck(path, sizeof(path), run_dir, "log.jsonl");
    if (!file_exists(path)) { return 0; }
    char* text = readFileCheck(path, NULL);
    AtomicFile af;
    FILE* fp = atomicOpen(&af, path, "w");
    int have_before = 0, dropped = 0, line_no = 0;
    for (char* line = text; *line != '\0';) {
        char* end = strchr(line, '\n');
        line_no++;
        // a line without its newline was cut by the kill: its step is trained again
        if (end == NULL) { dropped++; break; }
        *end = '\0';
        JsonValue v;
        char err[256];
        int parsed = json_parse(&v, line, (size_t)(end - line), err, sizeof(err));
        const JsonValue* js = parsed ? json_get(&v, "step") : NULL;
        // the distillation stage's lines (distill_step) stay: it is never redone
        int is_distill = parsed && js == NULL && json_get(&v, "distill_step") != NULL;
        // the range is checked before the cast: a double outside int's range has no int value
        if (!is_distill && (js == NULL || js->type != JSON_NUMBER || !(js->number >= 0 && js->number <= INT_MAX) ||
                            js->number != (int)js->number)) {
            die("%s:%d: not a line train_zelo writes (each is an object with \"step\" or \"distill_step\", "
                "a step a whole number >= 0); move the file away to go on", path, line_no);
        }
        int s = is_distill ? -1 : (int)js->number;
        const JsonValue* eval = json_get(&v, "eval");
        if (s > step || (eval != NULL && s == total)) {
            dropped++;
        } else {
            fprintf(fp, "%s\n", line);
            const JsonValue* jr = json_get(&v, "round");
            int round = jr != NULL && jr->type == JSON_NUMBER && jr->number >= 1 && jr->number <= MAX_ROUNDS ? (int)jr->number : 0;
            if (jr != NULL && (round == 0 || jr->number != round)) {
                die("%s:%d: \"round\" must be a whole number from 1 to %d", path, line_no, MAX_ROUNDS);
            }
            if ((s == 0 || round > 0) && eval != NULL) {
                const JsonValue* m[3] = { json_get(eval, "ndcg@10"), json_get(eval, "recall@100"), json_get(eval, "mrr@10") };
                for (int i = 0; i < 3; i++) {
                    if (m[i] == NULL || m[i]->type != JSON_NUMBER) {
                        die("%s:%d: an evaluation line without ndcg@10, recall@100 and mrr@10", path, line_no);
                    }
                }
                MetricScores got = { .ndcg_at_10 = m[0]->number, .recall_at_100 = m[1]->number, .mrr_at_10 = m[2]->number };
                if (s == 0) { *before = got; have_before = 1; }
                else { round_end[round - 1] = got; round_seen[round - 1] = 1; }
            }
        }
        json_free(&v);
        line = end + 1;
    }
    atomicCommit(&af);
    free(text);
    if (dropped > 0 && step >= 0) {
        printf("log: %d lines after step %d dropped from %s (those steps run again)\n", dropped, step, path);
    } else if (dropped > 0) {
        printf("log: %d lines of an earlier, interrupted start dropped from %s\n", dropped, path);
    }
    return have_before;
}

// round: the round that ends at this step (--rounds), 0 for an evaluation inside a round or at the end
static void log_eval(FILE* log, int step, int round, const MetricScores* m) {
    if (log == NULL) { return; }  // ranks other than 0 keep no log
    char at_round[32] = "";
    if (round > 0) { snprintf(at_round, sizeof(at_round), ", \"round\": %d", round); }
    fprintf(log, "{\"step\": %d%s, \"eval\": {\"ndcg@10\": %.6f, \"recall@100\": %.6f, \"mrr@10\": %.6f}}\n",
            step, at_round, m->ndcg_at_10, m->recall_at_100, m->mrr_at_10);
    fflush(log);
}

// ----------------------------------------------------------------------------
// --train bi-encoder: the embedding model trained on the same ratings (retrieval/biencoder.h),
// evaluated by exact retrieval over the whole corpus

// top 100 of the whole corpus: all that NDCG@10, Recall@100 and MRR@10 read
#define RETRIEVAL_K 100

// scores a whole-corpus ranking of the evaluation queries, docs and scores (n_eval, RETRIEVAL_K),
// as the reranking rows are scored
static MetricScores retrieval_scores(const int* docs, const float* scores, const Collection* c, const char* run_file, const char* tag) {
    Candidates r = { .n_queries = c->queries.n, .K = RETRIEVAL_K, .source = CANDIDATES_BM25 };
    r.docs = (int*)mallocCheck((size_t)c->queries.n * RETRIEVAL_K * sizeof(int));
    for (size_t k = 0; k < (size_t)c->queries.n * RETRIEVAL_K; k++) { r.docs[k] = -1; }
    for (int i = 0; i < c->n_eval; i++) {
        memcpy(r.docs + (size_t)c->eval_queries[i] * RETRIEVAL_K, docs + (size_t)i * RETRIEVAL_K, RETRIEVAL_K * sizeof(int));
    }
    MetricScores m = evaluate_scores(scores, c, &r, run_file, tag);
    free(r.docs);
    return m;
}

// ranking 0: BM25 over the whole corpus; 1: the bi-encoder's exact dense retrieval
static MetricScores retrieval_eval(int ranker, BertModel* model, const Tokenizer* tok, const Bm25Index* index,
                                   const Collection* c, int max_len, const char* run_dir, const char* tag) {
    const char** texts = (const char**)mallocCheck((size_t)c->n_eval * sizeof(char*));
    for (int i = 0; i < c->n_eval; i++) { texts[i] = beir_text(&c->queries, c->eval_queries[i]); }
    int* docs = (int*)mallocCheck((size_t)c->n_eval * RETRIEVAL_K * sizeof(int));
    float* scores = (float*)mallocCheck((size_t)c->n_eval * RETRIEVAL_K * sizeof(float));
    if (ranker == 0) { bm25_search(docs, scores, index, texts, c->n_eval, RETRIEVAL_K); }
    else { biencoder_retrieve(docs, scores, model, tok, &c->corpus, texts, c->n_eval, RETRIEVAL_K, max_len); }
    char name[128], run_file[4096];
    if (run_dir != NULL) {
        snprintf(name, sizeof(name), "run.%s.trec", tag);
        joinPathCheck(run_file, sizeof(run_file), run_dir, name);
    }
    MetricScores m = retrieval_scores(docs, scores, c, run_dir != NULL ? run_file : NULL, tag);
    free(texts); free(docs); free(scores);
    return m;
}

// the device memory of the model's buffers, said once after the first step this process trains
// (later steps add to it only for a batch of more tokens); nothing for a model on the CPU
static void device_memory_report(const BertModel* model) {
    DeviceMemory memory;
    if (!bert_device_memory(model, &memory)) { return; }
    char line[256];
    device_memory_describe(line, sizeof(line), &memory);
    printf("device memory: %s\n", line);
}

static void train_biencoder(BertModel* model, const Tokenizer* tok, const char* vocab_path, const Collection* c,
                            const TrainSet* t, const Bm25Index* index, const Options* o, int total, int eval_every) {
    BiencoderData data = { t->n, t->K, t->query, t->num_docs, t->docs, t->ratings };
    BiencoderLoss loss_cfg = { o->tau, o->rating_t, o->in_batch };
    int groups = o->batch_size / o->group_size;
    BiencoderBatch b;
    biencoder_batch_init(&b, groups, o->group_size, o->max_len, model->config.hidden_size, t->n, t->K);
    // its own log and table, so that a reranker trained in the same run directory (on the
    // same stage files) keeps its own; no resume, so each run writes them anew
    char path[4096];
    joinPathCheck(path, sizeof(path), o->run_dir, "biencoder_log.jsonl");
    FILE* log = fopenCheck(path, "w");
    ResultRow rows[3];
    printf("bi-encoder: retrieval over the whole corpus (%d documents), top %d\n", c->corpus.n, RETRIEVAL_K);
    rows[0] = (ResultRow){ "BM25 (whole corpus)", retrieval_eval(0, NULL, NULL, index, c, o->max_len, o->run_dir, "bm25_corpus") };
    double t_eval = wall_seconds();
    rows[1] = (ResultRow){ "bi-encoder before training", retrieval_eval(1, model, tok, index, c, o->max_len, o->run_dir, "biencoder_start") };
    log_eval(log, 0, 0, &rows[1].mean);
    printf("step 0: NDCG@10 %.4f (the bi-encoder before training); an evaluation took %.1fs\n",
           rows[1].mean.ndcg_at_10, wall_seconds() - t_eval);
    printf("training the bi-encoder: %d steps of %d queries x %d documents x %d micro-batch%s, listwise loss, tau %g, "
           "rating temperature %g%s\n", total, groups, o->group_size, o->grad_accum, o->grad_accum == 1 ? "" : "es",
           o->tau, o->rating_t, o->in_batch ? ", in-batch negatives" : "");
    Progress progress;
    progress_begin(&progress, "training", total);
    for (int step = 1; step <= total; step++) {
        double t0 = wall_seconds();
        bert_zero_grad(model);
        double loss = 0.0;
        for (int micro = 0; micro < o->grad_accum; micro++) {
            loss += biencoder_step(model, &b, tok, &c->corpus, &c->queries, &data, &loss_cfg, o->seed, step, micro,
                                   1.0f / (float)o->grad_accum) / o->grad_accum;
        }
        if (!isfinite(loss)) { die("step %d: the loss is %g; lower --lr", step, loss); }
        float norm = bert_clip_grad_norm(model, o->grad_clip);
        float lr = learning_rate(o, step, total);
        bert_adamw_update(model, lr, 0.9f, 0.999f, 1e-8f, o->weight_decay, step);
        if (step == 1) { device_memory_report(model); }
        fprintf(log, "{\"step\": %d, \"loss\": %.6g, \"lr\": %.6g, \"grad_norm\": %.6g, \"step_s\": %.3f}\n",
                step, loss, lr, norm, wall_seconds() - t0);
        fflush(log);
        progress_update(&progress, step);
        if (step % eval_every == 0 && step < total) {
            MetricScores m = retrieval_eval(1, model, tok, index, c, o->max_len, NULL, NULL);
            log_eval(log, step, 0, &m);
            printf("step %d: loss %.5f, NDCG@10 %.4f\n", step, loss, m.ndcg_at_10);
        }
    }
    rows[2] = (ResultRow){ "zELO-trained bi-encoder", retrieval_eval(1, model, tok, index, c, o->max_len, o->run_dir, "biencoder") };
    log_eval(log, total, 0, &rows[2].mean);
    fclose(log);
    joinPathCheck(path, sizeof(path), o->run_dir, "biencoder.bin");
    bert_save(model, path);
    printf("bi-encoder: %s\n", path);
    if (o->export_dir != NULL) {
        char vocab_file[4200];
        vocab_txt_path(vocab_file, sizeof(vocab_file), vocab_path);
        bert_export_sentence_transformers(model, o->export_dir, vocab_file, tok->lowercase, o->max_len);
        printf("export: %s (sentence-transformers: mean pooling, normalised)\n", o->export_dir);
    }
    print_table(rows, 3, c->n_eval, o->run_dir, "results_biencoder.tsv");
    biencoder_batch_free(&b);
}

int main(int argc, char** argv) {
    // progress lines go to stderr at once; keep stdout in step with them when it is a pipe
    setvbuf(stdout, NULL, _IOLBF, 0);
    dist_init(&argc, &argv);
    dist_mute_others();
    Options o;
    options_default(&o);
    parse_options(&o, argc, argv);
    if (o.threads > 0) { omp_set_num_threads(o.threads); }
    makeDirsCheck(o.run_dir);
    double t_start = wall_seconds();
    Device device;
    const char* device_err = device_select(&device, o.device);
    if (device_err != NULL) { fprintf(stderr, "train_zelo: --device '%s': %s\n", o.device, device_err); exit(2); }
    processes_setup(&device, &o);
    Precision precision;
    const char* precision_err = precision_select(&precision, o.precision, device);
    if (precision_err != NULL) { fprintf(stderr, "train_zelo: --precision '%s': %s\n", o.precision, precision_err); exit(2); }
    printf("train_zelo: run directory %s, %d threads, matrix products: %s\n", o.run_dir, omp_get_max_threads(),
           device == DEVICE_CUDA ? DEVICE_MATMUL_NAME : matmul_path_name(matmul_path));
    printf("device: %s (every model of the run: the reranker, the dense model, model judges, a distilled "
           "student; and the rating fit)\n", device_describe(device));
    if (precision == PRECISION_BF16) {
        printf("precision: bf16 (the reranker's weights and activations; fp32 master weights, AdamW state and "
               "gradients)\n");
    }

    Collection c;
    collection_load(&c, &o);
    Bm25Index index;
    Candidates cand;
    // the dense bi-encoder, for dense and hybrid candidates, the dense judge and the dense baseline
    BertModel dense_model;
    Tokenizer dense_tok;
    int have_dense = o.dense_model != NULL;
    if (have_dense) {
        bert_load_hf_encoder(&dense_model, o.dense_model, o.seed);
        bert_to_device(&dense_model, device, PRECISION_FP32);
        tokenizer_load(&dense_tok, o.dense_model);
    }
    if (o.candidates_from < 0) { o.candidates_from = have_dense ? CANDIDATES_HYBRID : CANDIDATES_BM25; }
    if (o.candidates_from != CANDIDATES_BM25 && !have_dense) {
        die("--candidates-from %s needs --dense-model DIR (a Hugging Face bi-encoder such as all-MiniLM-L6-v2: "
            "dev/find_minilm.sh prints where pip put it)", CANDIDATE_SOURCES[o.candidates_from]);
    }
    // the index is kept for the bm25 judge and the BM25 row even when the candidates are there
    bm25_index_stage(&index, &c, &o);
    candidates_stage(&cand, &c, &o, &index, have_dense ? &dense_model : NULL, have_dense ? &dense_tok : NULL,
                     o.candidates, "candidates.bin", "candidates");
    Candidates pool = { 0 };  // --rounds: the deeper list a round's new documents come from
    if (o.rounds > 1) {
        candidates_stage(&pool, &c, &o, &index, have_dense ? &dense_model : NULL, have_dense ? &dense_tok : NULL,
                         o.mine_depth, "pool.bin", "mining pool");
    }

    BertModel model;
    Tokenizer tok;
    char vocab_path[4096];
    tokenizer_setup(&tok, vocab_path, sizeof(vocab_path), &o, &c);
    int head_trained = model_init(&model, &o, &tok, vocab_path, "model");
    score_head_setup(&model, &o, head_trained);

    Judge judge;
    JudgeContext ctx = { 0 };
    ctx.corpus = &c.corpus;
    ctx.queries = &c.queries;
    ctx.qrels = collection_judge_qrels(&c);
    ctx.bm25 = &index;
    ctx.dense_model = have_dense ? &dense_model : NULL;
    // one tokenizer serves the judges: the bi-encoder's when there is one (a model judge
    // must then share its vocabulary), else the reranker's
    ctx.tokenizer = have_dense ? &dense_tok : &tok;
    ctx.max_len = o.max_len;
    ctx.device = device;
    ctx.combine = o.judge_combine;
    ctx.cmd_timeout_s = o.judge_timeout;
    ctx.run_dir = dist.rank == 0 ? o.run_dir : NULL;  // the dense judge's embeddings: rank 0 saves its own
    ctx.seed = o.seed;
    if (!have_dense && strstr(o.judge, "dense") != NULL) {
        die("the judge '%s' has a dense member, which needs --dense-model DIR (a Hugging Face bi-encoder such as "
            "all-MiniLM-L6-v2: dev/find_minilm.sh prints where pip put it); or choose another --judge", o.judge);
    }
    judge_create(&judge, o.judge, &ctx);
    char combined[64] = "";
    if (judge.n_members > 1) { snprintf(combined, sizeof(combined), ", members combined by their %s", judge_combine_name(o.judge_combine)); }
    printf("judge: %s%s%s\n", judge_describe(&judge), combined,
           judge_is_simulated(&judge) ? "  (SIMULATED from the human judgments of the training queries: for experiments only)" : "");

    TrainSet t;
    DistillSetup ds = { &o, &c, &tok, vocab_path, device, precision };
    targets_stage(&t, &c, &cand, &judge, &o, &ds);
    TrainSet val = { 0 };
    TrainSet mined = { 0 };  // --rounds: the training set of the current round after the first
    // the bi-encoder has no first stage to be mixed with: it trains on every training query
    if (!o.biencoder) { trainset_split_validation(&t, &val, &c, &o); }
    if (val.n > 0) {
        printf("validation: %d of the %d training queries set aside (--val-frac %g), not trained on: they fit "
               "the weight of the model against the first stage\n", val.n, val.n + t.n, o.val_frac);
    }

    // ---- training
    int groups = o.batch_size / o.group_size;
    int64_t items = 0;
    for (int i = 0; i < t.n; i++) { items += t.num_docs[i]; }
    int64_t step_items = (int64_t)o.batch_size * o.grad_accum * dist.size;  // sequences of one step, all ranks'
    int epoch_steps = (int)((items + step_items - 1) / step_items);
    int round_steps = o.steps > 0 ? o.steps : epoch_steps;
    if (o.steps == 0 && round_steps < DEFAULT_MIN_STEPS) {
        printf("training: one epoch is %d steps; the default budget is at least %d (%.1f epochs; --steps sets it)\n",
               epoch_steps, DEFAULT_MIN_STEPS, (double)DEFAULT_MIN_STEPS / epoch_steps);
        round_steps = DEFAULT_MIN_STEPS;
    }
    // every round trains the first round's budget: steps are counted across rounds
    int total = round_steps * o.rounds;
    // by default 4 evaluations during a round, at steps that are multiples of ceil(round_steps/5)
    // (round_steps/5 gave a fifth at the very end when 5 does not divide it, just before the round's own)
    int eval_every = o.eval_every > 0 ? o.eval_every : (round_steps + 4) / 5;
    int ckpt_every = o.checkpoint_every > 0 ? o.checkpoint_every : (round_steps >= 5 ? round_steps / 5 : 1);
    Batch batch;
    batch_init(&batch, o.batch_size > 64 ? o.batch_size : 64, o.max_len, model.packing);
    MicroBatch mb;
    // room for the documents that mined rounds add to a query
    microbatch_init(&mb, o.batch_size + o.group_size, groups + 1, t.K + (o.rounds - 1) * o.mine_docs);
    float* dlogits = (float*)mallocCheck((size_t)o.batch_size * sizeof(float));
    if (o.biencoder) {
        bert_to_device(&model, device, precision);
        train_biencoder(&model, &tok, vocab_path, &c, &t, &index, &o, total, eval_every);
        if (judge_is_simulated(&judge)) { printf("note: the training targets came from the SIMULATED judge (human labels of the training queries)\n"); }
        printf("train_zelo: done in %.1fs\n", wall_seconds() - t_start);
        goto free_all;
    }
    int step = 0;
    if (o.resume) {
        step = checkpoint_step(o.run_dir);
        if (step == 0) { die("--resume: no checkpoint in %s", o.run_dir); }
        training_settings_check(&o, &c, round_steps);
        checkpoint_load(&model, o.run_dir, step);
        if (o.zero) { optimizer_keep_slice(&model); }
        printf("resume: from the checkpoint of step %d\n", step);
    } else if (checkpoint_step(o.run_dir) > 0) {
        die("%s already holds a checkpoint (step %d): add --resume to continue it, or use another --run-dir",
            o.run_dir, checkpoint_step(o.run_dir));
    }
    // every rank has read the directory's checkpoint and settings before rank 0 writes there
    dist_barrier();
    if (!o.resume) {
        if (dist.rank == 0) { training_settings_write(&o, &c, round_steps); round_targets_clear(o.run_dir); }
        if (o.head_fit > 0) { head_fit(&model, &batch, &tok, &c, &t, o.head_fit, o.seed); }
    }
    model.head_lr_scale = o.head_lr_scale;
    bert_to_device(&model, device, precision);  // the weights (and a resumed run's AdamW state) as set up above
    if (model.score_head != SCORE_HEAD_CLS) { cosine_scale_setup(&model, &batch, &tok, &c, &t, &o); }
    // the steps draw from the training set of their round: the first's, or one mined after it
    const TrainSet* train = &t;
    int train_round = step > 0 ? (step - 1) / round_steps + 1 : 1;
    if (train_round > 1) {
        trainset_round(&mined, NULL, &t, &pool, &model, &batch, &tok, &c, &judge, &o, &ds, train_round, 0);
        train = &mined;
    }
    MetricScores before, round_end[MAX_ROUNDS];
    int round_seen[MAX_ROUNDS] = { 0 };
    int have_before = dist.rank == 0 && log_rewind(&before, round_end, round_seen, o.run_dir, o.resume ? step : -1, total);
    FILE* log = dist.rank == 0 ? log_open(o.run_dir) : NULL;

    ResultRow rows[8 + MAX_ROUNDS];
    int n_rows = 0;
    char run_file[4096];
    float* scores = bm25_eval_scores(&c, &cand, &index);
    joinPathCheck(run_file, sizeof(run_file), o.run_dir, "run.bm25.trec");
    rows[n_rows++] = (ResultRow){ "BM25", evaluate_scores(scores, &c, &cand, run_file, "bm25") };
    free(scores);
    if (cand.source == CANDIDATES_HYBRID) {
        scores = first_stage_eval_scores(&c, &cand);
        joinPathCheck(run_file, sizeof(run_file), o.run_dir, "run.hybrid.trec");
        rows[n_rows++] = (ResultRow){ "hybrid (RRF, BM25 + dense)", evaluate_scores(scores, &c, &cand, run_file, "hybrid") };
        free(scores);
    }
    // the judge ranks before the dense baseline reads dense_docs.bin: a dense judge member
    // has embedded the candidates there, and the baseline then embeds nothing twice
    const char* judge_obstacle = judge_row_obstacle(&judge);
    const JudgeKind sole = judge.members[0].kind;
    // rank 0 alone ranks by the judge and the dense baseline: rows only it prints
    int judge_row = dist.rank == 0 && judge_obstacle == NULL && !(judge.n_members == 1 && (sole == JUDGE_BM25 || sole == JUDGE_DENSE));
    char judge_name[300];
    MetricScores judge_mean;
    if (judge_row) {
        scores = judge_eval_scores(&judge, &c, &cand);
        joinPathCheck(run_file, sizeof(run_file), o.run_dir, "run.judge.trec");
        judge_mean = evaluate_scores(scores, &c, &cand, run_file, "judge");
        free(scores);
        snprintf(judge_name, sizeof(judge_name), "judge (%s)", judge_describe(&judge));
    }
    if (have_dense && dist.rank == 0) {
        scores = dense_eval_scores(&dense_model, &dense_tok, &c, &cand, o.run_dir);
        joinPathCheck(run_file, sizeof(run_file), o.run_dir, "run.dense.trec");
        rows[n_rows++] = (ResultRow){ "dense (bi-encoder cosine)", evaluate_scores(scores, &c, &cand, run_file, "dense") };
        free(scores);
    }
    if (judge_row) { rows[n_rows++] = (ResultRow){ judge_name, judge_mean }; }
    if (step == 0) {
        double t_eval = wall_seconds();
        scores = model_eval_scores(&model, &batch, &tok, &c, &cand);
        rows[n_rows++] = (ResultRow){ "model before training", evaluate_scores(scores, &c, &cand, NULL, NULL) };
        free(scores);
        log_eval(log, 0, 0, &rows[n_rows - 1].mean);
        // what the evaluations cost, said once: on a large collection they add minutes
        int more = 1;  // the final one, then those inside the run (the training loop's rule)
        for (int s = 1; s < total; s++) { more += s % eval_every == 0 || s % round_steps == 0; }
        printf("step 0: NDCG@10 %.4f (the model before training); an evaluation took %.1fs, %d more follow "
               "(every %d steps%s and at the end; --eval-every)\n", rows[n_rows - 1].mean.ndcg_at_10,
               wall_seconds() - t_eval, more, eval_every, o.rounds > 1 ? ", at the end of each round" : "");
    } else if (have_before) {
        rows[n_rows++] = (ResultRow){ "model before training", before };
    }

    if (o.rounds > 1) {
        printf("training: %d rounds of %d steps; after each but the last the model mines failures for the next "
               "(the top %d of %s per training query; at most %d new documents and %d pairs against the ratings each)\n",
               o.rounds, round_steps, o.mine_depth, CANDIDATE_SOURCES[pool.source], o.mine_docs, o.mine_pairs);
    }
    printf("training: %d steps of %d sequences (%d %s x %d documents) x %d micro-batch%s, %s loss\n",
           total, o.batch_size * dist.size, groups * dist.size, groups * dist.size == 1 ? "query" : "queries", o.group_size, o.grad_accum,
           o.grad_accum == 1 ? "" : "es",
           loss_names[o.loss]);
    Progress progress;
    progress_begin(&progress, "training", total);
    int last_ckpt = step;
    // the estimate of the whole stage, from the first steps this process trains
    const int first_step = step, estimate_after = 5;
    double t_train = wall_seconds(), t_evals = 0.0;
    while (step < total) {
        int round = step / round_steps + 1;  // the round of the step about to train
        if (round != train_round) {
            // step = (round - 1) x round_steps: the model is as the round before left it
            double t_mine = wall_seconds();
            TrainSet next;
            trainset_round(&next, train, &t, &pool, &model, &batch, &tok, &c, &judge, &o, &ds, round, 1);
            trainset_free(&mined);
            mined = next;
            train = &mined;
            train_round = round;
            int64_t n_docs = 0;
            for (int i = 0; i < train->n; i++) { n_docs += train->num_docs[i]; }
            printf("round %d of %d: %lld documents and %lld judged pairs over %d training queries (%.1fs to get them)\n",
                   round, o.rounds, (long long)n_docs, (long long)train->pair_start[train->n], train->n, wall_seconds() - t_mine);
            t_evals += wall_seconds() - t_mine;  // kept out of the per-step estimate, as evaluations are
        }
        step++;
        double t0 = wall_seconds();
        bert_zero_grad(&model);
        double loss = 0.0;
        int64_t tokens = 0;
        for (int micro = 0; micro < o.grad_accum; micro++) {
            microbatch_sample(&mb, train, groups, o.group_size, o.group_draw, o.seed, step, micro);
            batch_encode(&batch, &tok, &c.queries, &c.corpus, mb.query, mb.doc, mb.n);
            bert_forward(&model, batch.ids, batch.types, batch.seq_starts, batch.n_seqs);
            double mb_loss = batch_loss(dlogits, model.logits, &mb, o.loss, o.link);
            double share = loss_share(&mb, o.loss);
            loss += share * mb_loss / o.grad_accum;
            for (int i = 0; i < mb.n; i++) { dlogits[i] = dlogits[i] * (float)share / (float)o.grad_accum; }
            bert_backward(&model, dlogits, NULL);
            tokens += batch.n_tokens;
        }
        gradients_sum(&model, &loss, &tokens);
        float norm = bert_clip_grad_norm(&model, o.grad_clip);
        // each round warms up and decays anew (the AdamW moments carry over)
        float lr = learning_rate(&o, step - (round - 1) * round_steps, round_steps);
        if (o.zero) { adamw_step_sliced(&model, lr, o.weight_decay, step); }
        else { bert_adamw_update(&model, lr, 0.9f, 0.999f, 1e-8f, o.weight_decay, step); }
        double dt = wall_seconds() - t0;
        if (!isfinite(loss)) { die("step %d: the loss is %g; lower --lr or check the targets", step, loss); }
        if (step == first_step + 1) { device_memory_report(&model); }
        if (log != NULL) {
            fprintf(log, "{\"step\": %d, \"loss\": %.6g, \"lr\": %.6g, \"grad_norm\": %.6g, \"tokens_per_s\": %.1f}\n",
                    step, loss, lr, norm, (double)tokens / dt);
            fflush(log);
        }
        progress_update(&progress, step);
        if (step - first_step == estimate_after && step < total) {
            struct rusage ru;
            getrusage(RUSAGE_SELF, &ru);
            double per_step = (wall_seconds() - t_train - t_evals) / estimate_after;
            double left_min = per_step * (total - step) / 60.0;
            printf("training: %.2fs per step over the first %d: about %.*f %s for the %d left, evaluations aside; "
                   "peak memory %.2f GB so far\n", per_step, estimate_after, left_min >= 90.0 ? 1 : 0,
                   left_min >= 90.0 ? left_min / 60.0 : left_min, left_min >= 90.0 ? "h" : "min", total - step,
                   (double)ru.ru_maxrss / (1024.0 * 1024.0));
        }
        // the end of a round but the last, which the final evaluation measures
        int ends_round = step % round_steps == 0 && step < total;
        if ((step % eval_every == 0 || ends_round) && step < total) {
            double t_eval = wall_seconds();
            scores = model_eval_scores(&model, &batch, &tok, &c, &cand);
            MetricScores m = evaluate_scores(scores, &c, &cand, NULL, NULL);
            free(scores);
            log_eval(log, step, ends_round ? round : 0, &m);
            t_evals += wall_seconds() - t_eval;
            if (ends_round) {
                round_end[round - 1] = m;
                round_seen[round - 1] = 1;
                printf("round %d of %d ends at step %d: loss %.5f, NDCG@10 %.4f\n", round, o.rounds, step, loss, m.ndcg_at_10);
            } else {
                printf("step %d: loss %.5f, NDCG@10 %.4f\n", step, loss, m.ndcg_at_10);
            }
        }
        // a round's end is always checkpointed: a resumed run mines the next round from it
        if (step % ckpt_every == 0 || step == total || step == o.stop_at || ends_round) {
            checkpoint_save_shared(&model, &o, step, last_ckpt);
            last_ckpt = step;
        }
        if (step == o.stop_at && step < total) {
            printf("stopped after step %d of %d (--stop-at); continue with --resume\n", step, total);
            if (log != NULL) { fclose(log); }
            goto free_all; // a stopped run frees what it holds too, so a leak report means something
        }
    }

    char round_names[MAX_ROUNDS][32];
    for (int r = 1; r < o.rounds; r++) {
        if (!round_seen[r - 1]) { continue; }  // a resumed run whose log lost the line
        snprintf(round_names[r - 1], sizeof(round_names[r - 1]), "model after round %d", r);
        rows[n_rows++] = (ResultRow){ round_names[r - 1], round_end[r - 1] };
    }
    scores = model_eval_scores(&model, &batch, &tok, &c, &cand);
    joinPathCheck(run_file, sizeof(run_file), o.run_dir, "run.model.trec");
    rows[n_rows++] = (ResultRow){ "zELO-trained model", evaluate_scores(scores, &c, &cand, run_file, "zelo") };
    log_eval(log, total, 0, &rows[n_rows - 1].mean);
    FusionFit fusion;
    char fused_name[128];
    if (val.n > 0) {
        float* val_scores = model_query_scores(&model, &batch, &tok, &c, &cand, val.query, val.n);
        fusion_fit(&fusion, &val, val_scores, &cand);
        free(val_scores);
        printf("interpolation with the first stage (%s): alpha %.2f on the model. NDCG@10 against the judge's ratings "
               "of the %d validation queries: %.4f the first stage alone, %.4f the model alone, %.4f the best mix (alpha %.2f), "
               "a gain of %+.4f over the first stage with a standard error of %.4f: %s\n",
               CANDIDATE_SOURCES[cand.source], fusion.alpha, fusion.n_queries, fusion.ndcg[0], fusion.ndcg[FUSION_GRID],
               fusion.ndcg[fusion.best], (double)fusion.best / FUSION_GRID, fusion.gain, fusion.gain_se,
               fusion.n_queries == 0 ? "no validation query has a rating spread, the model alone"
               : fusion.alpha > 0.0 ? "more than twice the error, the mix" : "not more than twice the error, the first stage's order");
        float* fused = fused_eval_scores(scores, &c, &cand, fusion.alpha);
        joinPathCheck(run_file, sizeof(run_file), o.run_dir, "run.reranker.trec");
        snprintf(fused_name, sizeof(fused_name), "reranker (model + %s, alpha %.2f)", CANDIDATE_SOURCES[cand.source], fusion.alpha);
        rows[n_rows++] = (ResultRow){ fused_name, evaluate_scores(fused, &c, &cand, run_file, "reranker") };
        free(fused);
    }
    free(scores);
    if (dist.rank != 0) { goto free_all; }  // what follows writes files and prints
    fclose(log);
    char model_path[4096];
    joinPathCheck(model_path, sizeof(model_path), o.run_dir, "model.bin");
    bert_save(&model, model_path);
    printf("model: %s\n", model_path);
    // the vocabulary beside the model, so that rerank and later runs find it
    char vocab_file[4200], run_vocab[4200];
    vocab_txt_path(vocab_file, sizeof(vocab_file), vocab_path);
    joinPathCheck(run_vocab, sizeof(run_vocab), o.run_dir, "vocab.txt");
    if (file_exists(vocab_file) && strcmp(vocab_file, run_vocab) != 0) { copy_file(run_vocab, vocab_file); }
    if (o.export_dir != NULL) {
        bert_export_hf(&model, o.export_dir, vocab_file, tok.lowercase, o.max_len);
        printf("export: %s (Hugging Face BertForSequenceClassification)\n", o.export_dir);
    }
    print_table(rows, n_rows, c.n_eval, o.run_dir, "results.tsv");
    if (val.n > 0) { fusion_write(&fusion, &cand, o.run_dir); }
    if (judge_obstacle != NULL) {
        printf("no judge row: %s\n", judge_obstacle);
    } else if (!judge_row) {
        // its p is the link of a score difference: its ranking is that score's, already a row
        printf("no judge row: the judge %s ranks as the %s row does\n", judge_describe(&judge), sole == JUDGE_BM25 ? "BM25" : "dense");
    }
    if (judge_is_simulated(&judge)) { printf("note: the training targets came from the SIMULATED judge (human labels of the training queries)\n"); }
    printf("train_zelo: done in %.1fs\n", wall_seconds() - t_start);

free_all:
    microbatch_free(&mb);
    batch_free(&batch);
    free(dlogits);
    judge_free(&judge);
    bert_free(&model);
    tokenizer_free(&tok);
    if (have_dense) { bert_free(&dense_model); tokenizer_free(&dense_tok); }
    bm25_free(&index);
    trainset_free(&t);
    trainset_free(&val);
    trainset_free(&mined);
    candidates_free(&cand);
    if (o.rounds > 1) { candidates_free(&pool); }
    collection_free(&c);
    dist_finalize();
    return 0;
}
