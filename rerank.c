/*
 * rerank.c — the rerank program: scores the candidates of a TREC run with a cross-encoder
 * (a train_zelo checkpoint or a Hugging Face directory) and writes them, reordered by the
 * model's logits, as a new TREC run.
 *
 *   run file ─► each query's top K candidates (trec_eval's order of the input scores)
 *   ─► [CLS] query [SEP] document [SEP], packed batches ─► logit per pair ─► run file
 *
 * The texts are those train_zelo reads: the query's "text", and the document's title, a
 * space, then its body (io/beir.h). Only the top K candidates of each query are scored and
 * written; the rest of the input is dropped. With --qrels, the input's top K and the
 * reranked run are scored on the same queries, so the table compares two orders of the
 * very same documents.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/beir.h"
#include "io/metrics.h"
#include "model.h"
#include "retrieval/fusion.h"
#include "retrieval/score.h"
#include "io/safetensors.h"
#include "tokenizer/wordpiece.h"
#include "common/utils.h"
#include "io/weights.h"

// the seed of the head that --random-head draws, fixed so that two runs agree
#define RANDOM_HEAD_SEED 42

// ----------------------------------------------------------------------------
// options

typedef struct {
    const char* model;     // train_zelo .bin checkpoint or Hugging Face directory
    const char* vocab;     // tokenizer; NULL: the model's directory
    const char* data_dir;  // BEIR corpus.jsonl + queries.jsonl
    const char* run;       // the candidates
    const char* qrels;     // BEIR qrels tsv, or NULL
    const char* out;
    const char* tag;
    int top;               // K, candidates per query to rerank
    int max_len;           // 0: the smaller of 256 and the model's positions
    int batch_size;
    int threads;           // 0: OpenMP's default
    int random_head;       // accept a checkpoint without a score head
    const char* device;    // auto, cpu or cuda (model.h, device_select)
    const char* precision; // fp32 or bf16 on the GPU (model.h, precision_select)
    double alpha;          // --interpolate: weight of the model against the input's scores (1: the model alone)
} Options;

static void usage(FILE* fp) {
    fprintf(fp,
"usage: rerank --model PATH --data DIR --run IN.trec --out OUT.trec [options]\n"
"Scores each query's top candidates of a TREC run with a cross-encoder and writes them\n"
"reordered by the model's score.\n"
"\n"
"  --model PATH       train_zelo checkpoint (.bin) or Hugging Face cross-encoder\n"
"                     directory (config.json, model.safetensors)\n"
"  --vocab PATH       vocab.txt, tokenizer.json or a directory holding one [the model's\n"
"                     directory]\n"
"  --data DIR         BEIR collection: corpus.jsonl and queries.jsonl\n"
"  --run FILE         candidates, a TREC run 'qid Q0 docid rank score tag' (the rank\n"
"                     column is ignored: the order is the score's, as in trec_eval)\n"
"  --top K            rerank each query's top K candidates; the rest is dropped [100]\n"
"  --qrels FILE       BEIR qrels tsv: print NDCG@10, Recall@100 and MRR@10 of the input's\n"
"                     top K and of the reranked run, over the run's judged queries\n"
"  --max-len N        tokens per (query, document) sequence [256, or the model's\n"
"                     positions if fewer]\n"
"  --batch-size N     sequences per forward pass [32]\n"
"  --threads N        OpenMP threads [all cores]\n"
"  --matmul PATH      matrix products: kernels (gemm.c), openblas, loops [kernels]\n"
"  --device D         where the model scores: auto (the GPU when one is visible), cpu, cuda [auto]\n"
"  --precision P      the model's weights and activations on the GPU: fp32 or bf16 [fp32]\n"
"  --out FILE         the reranked run (written to FILE.tmp, then renamed)\n"
"  --tag NAME         run tag of the output [rerank]\n"
"  --interpolate A    order by A x the model's scores + (1 - A) x the input's, each\n"
"                     standardised over the query's candidates: the reranker train_zelo\n"
"                     evaluates, A from its run directory's fusion.txt [1: the model alone]\n"
"  --random-head      accept a Hugging Face encoder without pooler or classifier (such as\n"
"                     all-MiniLM-L6-v2): the missing head is drawn at random (seed %d),\n"
"                     so the scores mean nothing; for testing the mechanics only\n"
"  -h, --help         this text\n", RANDOM_HEAD_SEED);
}

// the value of an integer option, or an error naming the option
static int parse_int_option(const char* name, const char* value, int lo, int hi) {
    char* end = NULL;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "rerank: --%s wants a whole number in [%d, %d], got '%s'\n", name, lo, hi, value);
        exit(2);
    }
    return (int)v;
}

static void parse_options(Options* o, int argc, char** argv) {
    memset(o, 0, sizeof(*o));
    o->tag = "rerank";
    o->top = 100;
    o->batch_size = 32;
    o->device = "auto";
    o->precision = "fp32";
    o->alpha = 1.0;
    enum { O_MODEL = 256, O_VOCAB, O_DATA, O_RUN, O_QRELS, O_OUT, O_TAG, O_TOP, O_MAX_LEN,
           O_BATCH, O_THREADS, O_RANDOM_HEAD, O_MATMUL, O_DEVICE, O_INTERPOLATE, O_PRECISION };
    static const struct option longopts[] = {
        {"model", required_argument, 0, O_MODEL}, {"vocab", required_argument, 0, O_VOCAB},
        {"data", required_argument, 0, O_DATA}, {"run", required_argument, 0, O_RUN},
        {"qrels", required_argument, 0, O_QRELS}, {"out", required_argument, 0, O_OUT},
        {"tag", required_argument, 0, O_TAG}, {"top", required_argument, 0, O_TOP},
        {"max-len", required_argument, 0, O_MAX_LEN}, {"batch-size", required_argument, 0, O_BATCH},
        {"threads", required_argument, 0, O_THREADS}, {"random-head", no_argument, 0, O_RANDOM_HEAD},
        {"matmul", required_argument, 0, O_MATMUL}, {"device", required_argument, 0, O_DEVICE},
        {"precision", required_argument, 0, O_PRECISION},
        {"interpolate", required_argument, 0, O_INTERPOLATE},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
            case O_MODEL: o->model = optarg; break;
            case O_VOCAB: o->vocab = optarg; break;
            case O_DATA: o->data_dir = optarg; break;
            case O_RUN: o->run = optarg; break;
            case O_QRELS: o->qrels = optarg; break;
            case O_OUT: o->out = optarg; break;
            case O_TAG: o->tag = optarg; break;
            case O_TOP: o->top = parse_int_option("top", optarg, 1, 1 << 24); break;
            // 3 = [CLS] + two [SEP]: the least a pair can be
            case O_MAX_LEN: o->max_len = parse_int_option("max-len", optarg, 3, 1 << 20); break;
            case O_BATCH: o->batch_size = parse_int_option("batch-size", optarg, 1, 1 << 16); break;
            case O_THREADS: o->threads = parse_int_option("threads", optarg, 1, 4096); break;
            case O_RANDOM_HEAD: o->random_head = 1; break;
            case O_DEVICE: o->device = optarg; break;
            case O_PRECISION: o->precision = optarg; break;
            case O_INTERPOLATE: {
                char* end = NULL;
                errno = 0;
                o->alpha = strtod(optarg, &end);
                if (errno != 0 || end == optarg || *end != '\0' || !(o->alpha >= 0.0 && o->alpha <= 1.0)) {
                    fprintf(stderr, "rerank: --interpolate wants a number in [0, 1], got '%s'\n", optarg);
                    exit(2);
                }
                break;
            }
            case O_MATMUL: {
                const char* err = matmul_select(optarg);
                if (err != NULL) { fprintf(stderr, "rerank: --matmul '%s': %s\n", optarg, err); exit(2); }
                break;
            }
            case 'h': usage(stdout); exit(0);
            default: usage(stderr); exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rerank: unexpected argument '%s' (see --help)\n", argv[optind]);
        exit(2);
    }
    const char* missing = o->model == NULL ? "--model" : o->data_dir == NULL ? "--data"
                        : o->run == NULL ? "--run" : o->out == NULL ? "--out" : NULL;
    if (missing != NULL) {
        fprintf(stderr, "rerank: %s is required (see --help)\n", missing);
        exit(2);
    }
}

// ----------------------------------------------------------------------------
// the candidates: each run query's top K documents, resolved to collection indices

typedef struct {
    int num_queries;
    int* query;          // (num_queries,) index in Queries, in the order the run file first names them
    int* offsets;        // (num_queries + 1,) the pairs of query i are [offsets[i], offsets[i+1])
    int* doc;            // (num_pairs,) corpus index, in the input's order (best first)
    float* input_score;  // (num_pairs,) the score the input run gave
    int num_cut;         // queries that had more than K candidates
} Candidates;

typedef struct {
    int run_entry;       // index into the TrecRun's per-query arrays
    const char* doc_id;
    float score;
} Entry;

// trec_eval's order: score descending, ties by document id descending (io/metrics.h)
static int compare_entries(const void* a, const void* b) {
    const Entry* x = (const Entry*)a;
    const Entry* y = (const Entry*)b;
    if (x->score > y->score) { return -1; }
    if (x->score < y->score) { return 1; }
    return strcmp(y->doc_id, x->doc_id);
}

static int compare_strings(const void* key, const void* elem) {
    return strcmp((const char*)key, *(char* const*)elem);
}

static int is_field_separator(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

// Walks the run file a second time, now that metrics_read_trec_run has checked its form,
// to name the line of an id the collection does not know (the parsed run keeps no line
// numbers) and to note the line on which each run query first appears, so that the output
// keeps the input's query order. first_line: (run->num_queries,)
static void check_run_ids(long* first_line, const TrecRun* run, const char* path,
                          const Corpus* corpus, const Queries* queries, const char* data_dir) {
    char* text = readFileCheck(path, NULL);
    for (int q = 0; q < run->num_queries; q++) { first_line[q] = 0; }
    char* p = text;
    for (long line = 1; *p != '\0'; line++) {
        char* fields[3];
        int nf = 0;
        while (*p != '\0' && *p != '\n') {
            if (is_field_separator(*p)) { *p++ = '\0'; continue; }
            if (nf < 3) { fields[nf] = p; }
            nf++;
            while (*p != '\0' && *p != '\n' && !is_field_separator(*p)) { p++; }
        }
        if (*p == '\n') { *p++ = '\0'; }
        if (nf == 0) { continue; }
        if (beir_index_of(queries, fields[0]) < 0) {
            die("%s:%ld: query '%s' is not in %s/queries.jsonl", path, line, fields[0], data_dir);
        }
        if (beir_index_of(corpus, fields[2]) < 0) {
            die("%s:%ld: document '%s' is not in %s/corpus.jsonl", path, line, fields[2], data_dir);
        }
        char** found = (char**)bsearch(fields[0], run->qids, (size_t)run->num_queries, sizeof(char*), compare_strings);
        if (found == NULL) { die("%s:%ld: query '%s' vanished between two reads of the file", path, line, fields[0]); }
        long* first = &first_line[found - run->qids];
        if (*first == 0) { *first = line; }
    }
    free(text);
}

typedef struct {
    long first_line;
    int run_query;       // index into the TrecRun's queries
} QueryOrder;

static int compare_first_line(const void* a, const void* b) {
    long x = ((const QueryOrder*)a)->first_line, y = ((const QueryOrder*)b)->first_line;
    return (x > y) - (x < y);
}

static void candidates_load(Candidates* cand, const char* path, int top, const Corpus* corpus,
                            const Queries* queries, const char* data_dir) {
    TrecRun run;
    metrics_read_trec_run(&run, path);
    int nq = run.num_queries;
    long* first_line = (long*)mallocCheck((size_t)nq * sizeof(long));  // (nq,)
    check_run_ids(first_line, &run, path, corpus, queries, data_dir);
    QueryOrder* order = (QueryOrder*)mallocCheck((size_t)nq * sizeof(QueryOrder));  // (nq,) run queries in file order
    for (int q = 0; q < nq; q++) { order[q] = (QueryOrder){ first_line[q], q }; }
    qsort(order, (size_t)nq, sizeof(QueryOrder), compare_first_line);

    int64_t num_pairs = 0;
    int longest = 0;
    for (int q = 0; q < nq; q++) {
        int n = run.offsets[q + 1] - run.offsets[q];
        num_pairs += n < top ? n : top;
        if (n > longest) { longest = n; }
    }
    if (num_pairs > INT32_MAX) { die("%s: %lld candidate pairs; at most %d can be reranked at once", path, (long long)num_pairs, INT32_MAX); }
    cand->num_queries = nq;
    cand->query = (int*)mallocCheck((size_t)nq * sizeof(int));
    cand->offsets = (int*)mallocCheck((size_t)(nq + 1) * sizeof(int));
    cand->doc = (int*)mallocCheck((size_t)num_pairs * sizeof(int));
    cand->input_score = (float*)mallocCheck((size_t)num_pairs * sizeof(float));
    cand->num_cut = 0;
    Entry* entries = (Entry*)mallocCheck((size_t)longest * sizeof(Entry));  // (longest,)
    int pos = 0;
    for (int i = 0; i < nq; i++) {
        int q = order[i].run_query;
        int start = run.offsets[q], n = run.offsets[q + 1] - start;
        for (int j = 0; j < n; j++) { entries[j] = (Entry){ start + j, run.doc_ids[start + j], run.scores[start + j] }; }
        qsort(entries, (size_t)n, sizeof(Entry), compare_entries);
        if (n > top) { cand->num_cut++; n = top; }
        cand->query[i] = beir_index_of(queries, run.qids[q]);
        cand->offsets[i] = pos;
        for (int j = 0; j < n; j++) {
            cand->doc[pos] = beir_index_of(corpus, entries[j].doc_id);
            cand->input_score[pos] = entries[j].score;
            pos++;
        }
    }
    cand->offsets[nq] = pos;
    free(entries);
    free(order);
    free(first_line);
    trec_run_free(&run);
}

static void candidates_free(Candidates* cand) {
    free(cand->query); free(cand->offsets); free(cand->doc); free(cand->input_score);
}

// ----------------------------------------------------------------------------
// the model and its tokenizer

// whether a Hugging Face checkpoint carries the whole score head: the pooler (under
// "bert." in BertForSequenceClassification, bare in BertModel) and the classifier
static int hf_has_score_head(const char* dir) {
    char path[4096];
    joinPathCheck(path, sizeof(path), dir, "model.safetensors");
    if (!file_exists(path)) { die("'%s' does not exist: a Hugging Face model directory holds config.json and model.safetensors", path); }
    SafeTensors st;
    safetensors_open(&st, path);
    int has_pooler = safetensors_find(&st, "bert.pooler.dense.weight") != NULL || safetensors_find(&st, "pooler.dense.weight") != NULL;
    int has_classifier = safetensors_find(&st, "classifier.weight") != NULL;
    safetensors_close(&st);
    return has_pooler && has_classifier;
}

// a directory holding tokenizer.json or vocab.txt, as tokenizer_load reads it
static int dir_has_tokenizer(const char* dir) {
    char path[4096];
    joinPathCheck(path, sizeof(path), dir, "tokenizer.json");
    if (file_exists(path)) { return 1; }
    joinPathCheck(path, sizeof(path), dir, "vocab.txt");
    return file_exists(path);
}

static void model_setup(BertModel* model, Tokenizer* tok, int* max_len, const Options* o) {
    struct stat st;
    if (stat(o->model, &st) != 0) { die("--model '%s': %s", o->model, strerror(errno)); }
    int is_hf = S_ISDIR(st.st_mode);
    char vocab[4096];
    const char* given = o->vocab != NULL ? o->vocab : o->model;
    if (strlen(given) >= sizeof(vocab)) { die("path too long: %s", given); }
    strcpy(vocab, given);
    if (o->vocab == NULL && !is_hf) {
        // the directory of the checkpoint file
        char* slash = strrchr(vocab, '/');
        if (slash == NULL) { snprintf(vocab, sizeof(vocab), "."); } else if (slash == vocab) { slash[1] = '\0'; } else { *slash = '\0'; }
        if (!dir_has_tokenizer(vocab)) {
            die("no tokenizer.json or vocab.txt beside the checkpoint %s: give --vocab (vocab.txt, tokenizer.json "
                "or a Hugging Face directory)", o->model);
        }
    }
    if (is_hf) {
        if (!hf_has_score_head(o->model)) {
            if (!o->random_head) {
                die("%s/model.safetensors has no score head (pooler.dense and classifier): it is an encoder, "
                    "not a cross-encoder, and its scores would be random; --random-head accepts it for testing", o->model);
            }
            fprintf(stderr, "rerank: --random-head: the missing head of %s is random, the scores mean nothing\n", o->model);
        }
        bert_load_hf(model, o->model, RANDOM_HEAD_SEED);
        printf("model: %s (Hugging Face)\n", o->model);
    } else {
        bert_load(model, o->model);
        printf("model: %s (train_zelo checkpoint)\n", o->model);
    }
    const BertConfig* cfg = &model->config;
    if (cfg->num_labels != 1) {
        die("%s has a head of %d labels; a reranker scores with a single logit (num_labels 1)", o->model, cfg->num_labels);
    }
    tokenizer_load(tok, vocab);
    if (tok->vocab_size > cfg->vocab_size) {
        die("the tokenizer %s has %d tokens, the model's embedding table only %d: not this model's vocabulary",
            vocab, tok->vocab_size, cfg->vocab_size);
    }
    if (o->max_len > cfg->max_position) {
        die("--max-len %d is longer than the model's %d positions", o->max_len, cfg->max_position);
    }
    *max_len = o->max_len > 0 ? o->max_len : (cfg->max_position < 256 ? cfg->max_position : 256);
    printf("model: %d layers, hidden %d, %zu parameters; tokenizer %s (%d tokens); max length %d\n",
           cfg->num_layers, cfg->hidden_size, model->num_parameters, vocab, tok->vocab_size, *max_len);
}

// ----------------------------------------------------------------------------
// scoring

// scores (num_pairs,): the logit of every candidate pair, in the candidates' order
static void score_candidates(float* scores, BertModel* model, const Tokenizer* tok, const Candidates* cand,
                             const Corpus* corpus, const Queries* queries, int max_len, int batch_size) {
    int n = cand->offsets[cand->num_queries];
    int* pair_query = (int*)mallocCheck((size_t)n * sizeof(int));  // (n,) query index of each pair
    for (int i = 0; i < cand->num_queries; i++) {
        for (int j = cand->offsets[i]; j < cand->offsets[i + 1]; j++) { pair_query[j] = cand->query[i]; }
    }
    Batch b;
    batch_init(&b, batch_size, max_len, model->packing);
    score_pairs(scores, model, &b, tok, queries, corpus, pair_query, cand->doc, n, "scoring pairs");
    batch_free(&b);
    free(pair_query);
}

// ----------------------------------------------------------------------------
// output and evaluation

static void write_run(const char* path, const Candidates* cand, const float* scores,
                      const Corpus* corpus, const Queries* queries, const char* tag) {
    AtomicFile af;  // a crash or a full disk never leaves a half-written run under the final name
    FILE* fp = atomicOpen(&af, path, "w");
    const char** doc_ids = (const char**)mallocCheck((size_t)cand->offsets[cand->num_queries] * sizeof(char*));
    for (int j = 0; j < cand->offsets[cand->num_queries]; j++) { doc_ids[j] = beir_id(corpus, cand->doc[j]); }
    for (int i = 0; i < cand->num_queries; i++) {
        int start = cand->offsets[i];
        metrics_write_trec_run(fp, beir_id(queries, cand->query[i]), doc_ids + start, scores + start,
                               cand->offsets[i + 1] - start, tag);
    }
    free(doc_ids);
    atomicCommit(&af);
}

// NDCG@10, Recall@100 and MRR@10 of the input's top K and of the reranked candidates,
// averaged over the run's queries that have a relevant document in the qrels
static void print_metrics(const Candidates* cand, const float* scores, const char* qrels_path,
                          const Corpus* corpus, const Queries* queries, int top) {
    Qrels qrels;
    beir_load_qrels(&qrels, qrels_path, corpus, queries, 0);
    int n_pairs = cand->offsets[cand->num_queries];
    const char** doc_ids = (const char**)mallocCheck((size_t)n_pairs * sizeof(char*));  // (n_pairs,)
    for (int j = 0; j < n_pairs; j++) { doc_ids[j] = beir_id(corpus, cand->doc[j]); }
    const char** rel_ids = (const char**)mallocCheck((size_t)(qrels.n > 0 ? qrels.n : 1) * sizeof(char*));  // (qrels.n,)
    for (int j = 0; j < qrels.n; j++) { rel_ids[j] = beir_id(corpus, qrels.doc[j]); }
    MetricScores* input = (MetricScores*)mallocCheck((size_t)cand->num_queries * sizeof(MetricScores));
    MetricScores* reranked = (MetricScores*)mallocCheck((size_t)cand->num_queries * sizeof(MetricScores));
    int judged = 0;
    for (int i = 0; i < cand->num_queries; i++) {
        int q = cand->query[i];
        int r0 = qrels.query_start[q], nr = qrels.query_start[q + 1] - r0;
        int start = cand->offsets[i], n = cand->offsets[i + 1] - start;
        const char* qid = beir_id(queries, q);
        metrics_eval_query(&input[i], qid, doc_ids + start, cand->input_score + start, n, rel_ids + r0, qrels.gain + r0, nr);
        metrics_eval_query(&reranked[i], qid, doc_ids + start, scores + start, n, rel_ids + r0, qrels.gain + r0, nr);
        if (input[i].num_rel > 0) { judged++; }
    }
    MetricScores mean_input, mean_reranked;
    metrics_mean(&mean_input, input, cand->num_queries);
    metrics_mean(&mean_reranked, reranked, cand->num_queries);
    printf("\n%s: %d of the run's %d queries have relevant documents and are averaged\n",
           qrels_path, judged, cand->num_queries);
    if (judged == 0) {
        printf("(no measures: none of the run's queries has a relevant document in the qrels)\n");
    } else {
        char input_name[64];
        snprintf(input_name, sizeof(input_name), "input (top %d)", top);
        printf("%-20s %9s %11s %8s\n", "run", "NDCG@10", "Recall@100", "MRR@10");
        printf("%-20s %9.4f %11.4f %8.4f\n", input_name, mean_input.ndcg_at_10, mean_input.recall_at_100, mean_input.mrr_at_10);
        printf("%-20s %9.4f %11.4f %8.4f\n", "reranked", mean_reranked.ndcg_at_10, mean_reranked.recall_at_100, mean_reranked.mrr_at_10);
    }
    free(input); free(reranked); free(doc_ids); free(rel_ids);
    beir_free_qrels(&qrels);
}

// ----------------------------------------------------------------------------

int main(int argc, char** argv) {
    // progress goes to stderr at once; keep stdout in step with it when it is a pipe
    setvbuf(stdout, NULL, _IOLBF, 0);
    Options o;
    parse_options(&o, argc, argv);
    if (o.threads > 0) { omp_set_num_threads(o.threads); }
    double t_start = wall_seconds();
    Device device;
    const char* device_err = device_select(&device, o.device);
    if (device_err != NULL) { fprintf(stderr, "rerank: --device '%s': %s\n", o.device, device_err); exit(2); }

    // the model first: a wrong checkpoint should fail before the corpus is read
    BertModel model;
    Tokenizer tok;
    int max_len;
    model_setup(&model, &tok, &max_len, &o);
    Precision precision;
    const char* precision_err = precision_select(&precision, o.precision, device);
    if (precision_err != NULL) { fprintf(stderr, "rerank: --precision '%s': %s\n", o.precision, precision_err); exit(2); }
    bert_to_device(&model, device, precision);
    printf("device: %s\n", device_describe(device));
    if (precision == PRECISION_BF16) { printf("precision: bf16 (the model's weights and activations)\n"); }

    char path[4096];
    Corpus corpus;
    Queries queries;
    joinPathCheck(path, sizeof(path), o.data_dir, "corpus.jsonl");
    beir_load_corpus(&corpus, path);
    joinPathCheck(path, sizeof(path), o.data_dir, "queries.jsonl");
    beir_load_queries(&queries, path);

    Candidates cand;
    candidates_load(&cand, o.run, o.top, &corpus, &queries, o.data_dir);
    int n = cand.offsets[cand.num_queries];
    printf("candidates: %s, %d queries, %d pairs (top %d per query; %d queries had more and were cut)\n",
           o.run, cand.num_queries, n, o.top, cand.num_cut);

    float* scores = (float*)mallocCheck((size_t)n * sizeof(float));  // (n,)
    double t_score = wall_seconds();
    score_candidates(scores, &model, &tok, &cand, &corpus, &queries, max_len, o.batch_size);
    double dt = wall_seconds() - t_score;
    if (o.alpha < 1.0) {
        for (int i = 0; i < cand.num_queries; i++) {
            int start = cand.offsets[i], m = cand.offsets[i + 1] - start;
            interpolate_standardized(scores + start, scores + start, cand.input_score + start, m, o.alpha);
        }
        printf("interpolated: %.4g x the model's scores + %.4g x the input run's, each standardised per query\n",
               o.alpha, 1.0 - o.alpha);
    }
    DeviceMemory memory;
    if (bert_device_memory(&model, &memory)) {  // the peak: the buffers only grow
        char line[256];
        device_memory_describe(line, sizeof(line), &memory);
        printf("device memory: %s\n", line);
    }
    write_run(o.out, &cand, scores, &corpus, &queries, o.tag);
    printf("reranked: %s (%d pairs in %.1fs, %.1f pairs/s, %d threads, matrix products: %s)\n", o.out, n, dt,
           dt > 0 ? n / dt : 0.0, omp_get_max_threads(), device == DEVICE_CUDA ? DEVICE_MATMUL_NAME : matmul_path_name(matmul_path));
    if (o.qrels != NULL) { print_metrics(&cand, scores, o.qrels, &corpus, &queries, o.top); }
    printf("rerank: done in %.1fs\n", wall_seconds() - t_start);

    free(scores);
    candidates_free(&cand);
    beir_free_texts(&corpus);
    beir_free_texts(&queries);
    tokenizer_free(&tok);
    bert_free(&model);
    return 0;
}
