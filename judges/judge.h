/*
 * judges/judge.h — the judges of zELO: who says how likely one document beats another.
 *
 * A battle asks "is doc_a more relevant to query_a than doc_b is to query_b?"; ordinary
 * battles have query_a == query_b, the calibration asks cross-query ones. A judge answers
 * P(doc_a wins) in [0, 1], the documents shown to it in the order given (doc_a first):
 * train_zelo picks that order at random, because real judges (LLMs) favour a position.
 *
 * A judge is made from a spec, the user's option string:
 *   sim                 simulated from the qrels (human labels): for experiments and tests,
 *                       and always reported as simulated (judge_is_simulated)
 *   bm25                the BM25 index's scores
 *   dense               cosine of bi-encoder embeddings (all-MiniLM-L6-v2)
 *   file:PATH           judgments from a JSONL file (LLM ensembles run elsewhere)
 *   cmd:COMMAND         an external program speaking JSONL (judges/judge_cmd.h)
 *   model:PATH,pairwise   our checkpoint of a pairwise model: [CLS] q [SEP] a [SEP] b [SEP]
 *                         -> σ(logit) = P(a beats b)
 *   model:PATH,pointwise  our checkpoint of a cross-encoder: P = F(z_a − z_b), F the
 *                         Thurstone link (the scale its targets ½(1 + erf(s)) were fitted on)
 * and ensembles joined by '+', e.g. "bm25+dense", whose members' answers combine by a rule
 * (JudgeCombine below: the mean of their probabilities, or the paper's vote). A '+' splits the
 * spec only where a judge name follows it, so that a path or a command may hold a '+'; a cmd
 * member takes the rest of the spec, so put it last.
 *
 * Judgment files (file:PATH, and the cache below) hold one JSON object per line:
 *   {"query_id": "q1", "doc_a": "d7", "doc_b": "d3", "p": 0.7}
 * with "query_id_b" added for a cross-query battle, an optional "judge" (its name) and, for an
 * ensemble, an optional "members": [p_1, ..., p_M], each member's own answer in the order of the
 * spec (p is then their combination by the rule of the run that wrote the line). Several lines
 * for one battle are averaged; in a file:PATH judge a line for (b, a) answers (a, b) as 1 − p.
 *
 * The cache: <run_dir>/judgments.jsonl collects every battle judged, in the same format
 * with "judge" set to judge_describe() (the spec, plus "@seed<N>" when a member is sim,
 * whose answers depend on the seed) and, for an ensemble, "members", flushed after each batch,
 * so that an interrupted run resumes without asking again. The answers are combined when they
 * are read, by the run's rule: one cached judging serves both rules (the rule is not part of
 * the judge's name). A cache line of an ensemble without "members" (written before they were
 * kept) serves the mean only; the vote refuses it. A line cut short at the end of the file (a kill in
 * the middle of a write) is dropped with a warning; any other malformed line is an error.
 */
#ifndef ZELO_JUDGE_H
#define ZELO_JUDGE_H

#include <stdint.h>
#include <stdio.h>
#include "io/beir.h"
#include "retrieval/bm25.h"
#include "retrieval/dense.h"
#include "judges/judge_cmd.h"
#include "model.h"
#include "tokenizer/wordpiece.h"

typedef struct {
    int query_a, doc_a;   // query index (Queries), document index (Corpus)
    int query_b, doc_b;   // query_b == query_a for an ordinary battle
} Battle;

// a hash map from battles to a running sum and count: judgments read from files (averaged),
// the cache, and the model judge's scores (key (query, doc, -1, -1))
typedef struct {
    Battle key;
    double sum;
    int count;
} BattleSlot;
typedef struct {
    BattleSlot* slots;    // stb_ds hash map on the key's bytes (Battle has no padding); NULL: empty
} BattleMap;

// how an ensemble turns its members' answers into one probability (--judge-combine)
typedef enum {
    JUDGE_COMBINE_MEAN = 0,  // the mean of the members' p (why: judge.c, judge_combine)
    JUDGE_COMBINE_VOTE = 1,  // the paper's vote: each member's preference clamped to +1 (p > ½),
                             // 0 (p = ½) or −1 (p < ½), averaged to v in [−1, 1], and mapped to
                             // p = (1 + v) / 2: unanimous members give 0 or 1. A judge of
                             // one member answers as itself under either rule.
} JudgeCombine;
// "mean" or "vote"
const char* judge_combine_name(JudgeCombine rule);
// sets *rule from its name; returns 0 on an unknown name
int judge_combine_parse(JudgeCombine* rule, const char* name);

// what judges may need; a judge that needs a missing part says so at judge_create
typedef struct {
    const Corpus* corpus;        // always
    const Queries* queries;      // always
    const Qrels* qrels;          // sim: the human labels
    const Bm25Index* bm25;       // bm25: an index of this corpus
    const Tokenizer* tokenizer;  // dense and model: the vocabulary of both models
    BertModel* dense_model;      // dense: a bi-encoder (all-MiniLM-L6-v2)
    int dense_max_len;           // dense: tokens per text, 0 for DENSE_DEFAULT_MAX_LEN
    int max_len;                 // model: tokens per sequence, 0 for the model's positions
    Device device;               // model: where its checkpoint runs (model.h; 0 is the CPU)
    uint64_t seed;               // sim: its noise
    const char* run_dir;         // dense: its embeddings are saved there; NULL: memory only
    double cmd_timeout_s;        // cmd: 0 for JUDGE_CMD_DEFAULT_TIMEOUT_S
    JudgeCombine combine;        // ensembles: how the members' answers combine (0: the mean)
} JudgeContext;

// an LLM client may take minutes on a batch; a program silent for this long is hung
#define JUDGE_CMD_DEFAULT_TIMEOUT_S 600.0

typedef enum { JUDGE_SIM, JUDGE_BM25, JUDGE_DENSE, JUDGE_FILE, JUDGE_CMD, JUDGE_MODEL } JudgeKind;

typedef struct {
    JudgeKind kind;
    char* spec;                  // this member's part of the spec
    float* bm25_top;             // bm25: (n_queries,) each query's best score, NaN until needed
    DenseStore dense_docs;       // dense: embeddings of the documents judged so far
    DenseStore dense_queries;    // dense: and of the queries
    BattleMap judgments;         // file: the file's lines, each battle in one orientation
    char* path;                  // file: the judgments file; model: the checkpoint
    CmdJudge cmd;                // cmd
    BertModel model;             // model
    int pairwise;                // model: 1 pairwise, 0 pointwise
    BattleMap scores;            // model (pointwise): logit of each (query, doc) scored
} JudgeMember;

typedef struct {
    JudgeContext ctx;
    int n_members;
    JudgeMember* members;        // stb_ds array (n_members,)
    char* description;           // the members' specs joined by '+'
    char error[1024];            // why the last judge_battles answered fewer than asked
} Judge;

// parses spec and sets the judge up (loads files and models, starts a cmd program);
// dies with a message naming the spec, the file and line, or the missing context part
void judge_create(Judge* judge, const char* spec, const JudgeContext* ctx);
// P(doc_a beats doc_b) of each battle into p_out (n,). Returns how many were answered:
// n, or fewer when a judge failed (a cmd program died, a file lacks a battle); then
// p_out[0..returned) holds good answers and judge->error says why it stopped.
int judge_battles(float* p_out, Judge* judge, const Battle* battles, int n);
// each member's answers to battles[0..n) into member_p (n, n_members), battle i's answers at
// member_p + i * n_members, in the spec's order. Returns how many battles every member
// answered, as judge_battles does
int judge_battles_members(float* member_p, Judge* judge, const Battle* battles, int n);
// the combined p of n battles into p_out (n,) from their members' answers member_p (n, n_members)
void judge_combine(float* p_out, const float* member_p, int n_members, int n, JudgeCombine rule);
// lets judges do ahead, in bulk, the work these battles will need (dense embeddings,
// cross-encoder scores), with a progress line; judge_battles does it anyway when needed
void judge_prepare(Judge* judge, const Battle* battles, int n);
// 1 if any member is `sim`: the run must then say "simulated judge (uses human labels)"
int judge_is_simulated(const Judge* judge);
const char* judge_describe(const Judge* judge);
void judge_free(Judge* judge);

// [CLS] query [SEP] doc_a [SEP] doc_b [SEP] into ids and types (both (max_len,)), types 0
// up to the first [SEP] included and 1 after; when it does not fit, the longest of the
// three texts loses its last token until it does (doc_b first, then doc_a, on equal
// lengths). Returns the length. The pairwise model's input, in training and as a judge.
int judge_encode_pairwise(int* ids, int* types, int max_len, const Tokenizer* tok,
                          const char* query, const char* doc_a, const char* doc_b);

// the Thurstone link, F(x) = ½(1 + erf(x)), evaluated so that F(−x) = 1 − F(x) holds
// exactly in float: a judge that depends on a score difference is then exactly
// antisymmetric, p(a, b) = 1 − p(b, a)
float judge_link_antisymmetric(double x);

// ----------------------------------------------------------------------------
// the judgment cache

// a battle of the cache and the row of its answers
typedef struct {
    Battle key;                  // as asked (a battle is cached in its own order)
    int row;
} CacheSlot;
typedef struct {
    char* path;
    FILE* fp;                    // open for appending
    CacheSlot* slots;            // stb_ds hash map: battle -> row
    double* sums;                // stb_ds array (rows, n_members): each member's answers, summed over lines
    int* counts;                 // stb_ds array (rows,): the lines read for the battle
    unsigned char* combined_only;// stb_ds array (rows,): 1 when a line had p but no "members"
    int n_members;
    int n_loaded;                // judgments read from the file at open
    const Judge* judge;
} JudgeCache;

// reads path if it exists (each line must name this judge: judgments of another judge are
// an error, never reused) and opens it for appending
void judge_cache_open(JudgeCache* cache, const char* path, const Judge* judge);
// 1 and *p (the members' answers combined by the judge's rule) if the battle was judged
// before, else 0. Dies if the vote meets a line without "members".
int judge_cache_lookup(float* p, const JudgeCache* cache, const Battle* battle);
void judge_cache_close(JudgeCache* cache);
// records one answer of the cache's judge (in memory and as a line of the file); the line
// reaches the disk at the next judge_cache_flush. For answers judged elsewhere (another rank).
// members (n_members,) are the judge's members' answers; returns their combination by the
// judge's rule (what the battle's p is)
float judge_cache_add(JudgeCache* cache, const Battle* battle, const float* members);
// flushes the appended lines; dies naming the file when the write fails
void judge_cache_flush(JudgeCache* cache);

// like judge_battles, but answers from the cache where it can, asks the judge only the
// other battles (in batches, each appended to the cache and flushed), and shows progress
// (done/total, rate, time left) on stderr when many are asked. If the judge fails, the
// battles judged so far stay in the cache and the run dies with the judge's error.
void judge_battles_cached(float* p_out, Judge* judge, JudgeCache* cache, const Battle* battles, int n);

#endif // ZELO_JUDGE_H
