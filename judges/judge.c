/*
 * judges/judge.c — the judges behind one interface, their ensembles, and the judgment cache
 * (see judges/judge.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <stb/stb_ds.h>
#include "judges/judge.h"
#include "io/json.h"
#include "common/utils.h"
#include "zelo_loss.h"

// battles per call of an external judge and per cache flush: a kill loses at most this many
#define JUDGE_BATCH 64
// above this many battles to ask, judge_battles_cached shows its progress
#define JUDGE_PROGRESS_MIN 256
// tokens per forward pass of the model judge (as retrieval/dense.c: full-speed products, small attention)
#define JUDGE_BATCH_TOKENS 8192
// sequences the model judge encodes at a time before sorting them into batches
#define JUDGE_MODEL_CHUNK 1024

// The dense judge's temperature. all-MiniLM-L6-v2 was trained with a contrastive loss
// whose logits are 20 × cosine (sentence-transformers' MultipleNegativesRankingLoss, scale
// 20): between two candidates, the model's own preference is σ(20 (cos_a − cos_b)). On the
// Thurstone scale, with the same slope at a tie (σ'(0) = 1/4, F'(0) = 1/√π), that is
// F((cos_a − cos_b) / τ) with τ = 4 / (20 √π) ≈ 0.113. It comes from how the model was
// trained, not from any collection.
#define JUDGE_DENSE_TAU (4.0 / (20.0 * 1.7724538509055160273))
// The bm25 judge's scale: a document's score divided by its query's best score over the
// whole corpus, r = s / s_top in [0, 1], and P = F(2 (r_a − r_b)). Raw BM25 scores grow
// with the query's length and its terms' idf, so they are not comparable across queries;
// relative to the best match they are, for any corpus (each query's best document is taken
// as equally relevant: the only generic assumption available). The factor 2 lets the
// whole range, from the best document down to one without a query term, span two
// Thurstone units (P = 0.998): the range where targets ½(1 + erf(s)) vary, so that the
// strongest BM25 preference is confident but a weak one stays close to a coin flip.
#define JUDGE_BM25_RANGE 2.0

// ----------------------------------------------------------------------------
// battle maps

static uint64_t mix64(uint64_t z) {
    // the finalizer of MurmurHash3: every input bit flips about half the output bits
    z ^= z >> 33;
    z *= 0xFF51AFD7ED558CCDull;
    z ^= z >> 33;
    z *= 0xC4CEB9FE1A85EC53ull;
    z ^= z >> 33;
    return z;
}

static uint64_t battle_hash(uint64_t seed, const Battle* b) {
    int v[4] = {b->query_a, b->doc_a, b->query_b, b->doc_b};
    uint64_t h = seed;
    for (int k = 0; k < 4; k++) { h = mix64(h ^ ((uint64_t)(uint32_t)v[k] + 0x9E3779B97F4A7C15ull * (uint64_t)(k + 1))); }
    return h;
}

static void battle_map_init(BattleMap* m) {
    m->slots = NULL;
}

static void battle_map_free(BattleMap* m) {
    hmfree(m->slots);
}

static int battle_map_count(const BattleMap* m) {
    return (int)hmlen(m->slots);
}

// the entry of key, or NULL. hmgeti would write its answer into the map's header; the _ts
// form writes it to i and leaves a map that is not NULL as it is (so lookups may run in
// parallel), and the copy of the pointer it assigns is that same pointer.
static const BattleSlot* battle_map_find(const BattleMap* m, const Battle* key) {
    BattleSlot* slots = m->slots;
    if (slots == NULL) { return NULL; }
    ptrdiff_t i;
    hmgeti_ts(slots, *key, i);
    return i >= 0 ? &slots[i] : NULL;
}

// adds one observation of value to key
static void battle_map_add(BattleMap* m, const Battle* key, double value) {
    BattleSlot* s = hmgetp_null(m->slots, *key);
    if (s == NULL) {
        hmputs(m->slots, ((BattleSlot){*key, 0.0, 0}));
        s = &m->slots[hmlen(m->slots) - 1];
    }
    s->sum += value;
    s->count++;
}

// ----------------------------------------------------------------------------
// links

float judge_link_antisymmetric(double x) {
    // F is evaluated for |x| only, where it is in [0.5, 1]; 1 − F there is exact in float
    // (Sterbenz), so the value for −x is exactly 1 minus the value for x
    float upper = (float)zelo_link_prob(fabs(x), ZELO_LINK_THURSTONE);
    return x >= 0.0 ? upper : 1.0f - upper;
}

static double sigmoid(double x) {
    return x >= 0.0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

// ----------------------------------------------------------------------------
// battles and judgment lines

static void check_battles(const JudgeContext* ctx, const Battle* battles, int n) {
    for (int i = 0; i < n; i++) {
        const Battle* b = &battles[i];
        if (b->query_a < 0 || b->query_a >= ctx->queries->n || b->query_b < 0 || b->query_b >= ctx->queries->n) {
            die("judge: battle %d names query %d or %d, outside 0..%d", i, b->query_a, b->query_b, ctx->queries->n - 1);
        }
        if (b->doc_a < 0 || b->doc_a >= ctx->corpus->n || b->doc_b < 0 || b->doc_b >= ctx->corpus->n) {
            die("judge: battle %d names document %d or %d, outside 0..%d", i, b->doc_a, b->doc_b, ctx->corpus->n - 1);
        }
        if (b->query_a == b->query_b && b->doc_a == b->doc_b) {
            die("judge: battle %d pits document '%s' against itself", i, beir_id(ctx->corpus, b->doc_a));
        }
    }
}

// "query q1: d7 vs d3" or "q1/d7 vs q2/d3", for messages
static void battle_name(char* out, size_t cap, const JudgeContext* ctx, const Battle* b) {
    if (b->query_a == b->query_b) {
        snprintf(out, cap, "query '%s', doc_a '%s', doc_b '%s'", beir_id(ctx->queries, b->query_a),
                 beir_id(ctx->corpus, b->doc_a), beir_id(ctx->corpus, b->doc_b));
    } else {
        snprintf(out, cap, "query '%s' doc_a '%s' vs query_b '%s' doc_b '%s'", beir_id(ctx->queries, b->query_a),
                 beir_id(ctx->corpus, b->doc_a), beir_id(ctx->queries, b->query_b), beir_id(ctx->corpus, b->doc_b));
    }
}

static const char* string_member(const JsonValue* obj, const char* key, int required, char* err, size_t errlen) {
    const JsonValue* v = json_get(obj, key);
    if (v == NULL) {
        if (required) { snprintf(err, errlen, "\"%s\" is missing", key); }
        return NULL;
    }
    if (v->type != JSON_STRING) {
        snprintf(err, errlen, "\"%s\" is a %s, not a string", key, json_type_name(v->type));
        return NULL;
    }
    return v->str;
}

// one judgment line into a battle and its p. expect_judge, when not NULL, is the name the
// line's "judge" must carry. Returns 1, or 0 with the reason in err.
// members (n_members,), when not NULL, receives the line's "members" if it has them (an array
// of n_members numbers in [0, 1]), and *has_members says whether it had.
static int parse_judgment(Battle* battle, double* p, double* members, int n_members, int* has_members,
                          const char* line, size_t len, const JudgeContext* ctx, const char* expect_judge,
                          char* err, size_t errlen) {
    JsonValue v;
    char jerr[200];
    if (!json_parse(&v, line, len, jerr, sizeof(jerr))) {
        snprintf(err, errlen, "not JSON (%s)", jerr);
        return 0;
    }
    int ok = 0;
    err[0] = '\0';
    const char *qa, *qb, *da, *db, *who;
    const JsonValue* pv;
    if (v.type != JSON_OBJECT) { snprintf(err, errlen, "a %s, not a JSON object", json_type_name(v.type)); goto done; }
    if ((qa = string_member(&v, "query_id", 1, err, errlen)) == NULL) { goto done; }
    if ((da = string_member(&v, "doc_a", 1, err, errlen)) == NULL) { goto done; }
    if ((db = string_member(&v, "doc_b", 1, err, errlen)) == NULL) { goto done; }
    qb = string_member(&v, "query_id_b", 0, err, errlen);
    if (err[0] != '\0') { goto done; }
    if (qb == NULL) { qb = qa; }
    who = string_member(&v, "judge", expect_judge != NULL, err, errlen);
    if (err[0] != '\0') { goto done; }
    if (expect_judge != NULL && strcmp(who, expect_judge) != 0) {
        snprintf(err, errlen, "judged by '%s', but this run's judge is '%s' (use a new run directory, "
                 "or remove the file to judge again)", who, expect_judge);
        goto done;
    }
    pv = json_get(&v, "p");
    if (pv == NULL) { snprintf(err, errlen, "\"p\" is missing"); goto done; }
    if (pv->type != JSON_NUMBER) { snprintf(err, errlen, "\"p\" is a %s, not a number", json_type_name(pv->type)); goto done; }
    if (!(pv->number >= 0.0 && pv->number <= 1.0)) { snprintf(err, errlen, "\"p\" is %g, outside [0, 1]", pv->number); goto done; }
    if (members != NULL) {
        const JsonValue* mv = json_get(&v, "members");
        *has_members = mv != NULL;
        if (mv != NULL && (mv->type != JSON_ARRAY || mv->count != n_members)) {
            snprintf(err, errlen, "\"members\" must be an array of %d numbers (one per member of the judge)", n_members);
            goto done;
        }
        for (int k = 0; mv != NULL && k < n_members; k++) {
            const JsonValue* x = &mv->items[k];
            if (x->type != JSON_NUMBER || !(x->number >= 0.0 && x->number <= 1.0)) {
                snprintf(err, errlen, "\"members\"[%d] is not a number in [0, 1]", k);
                goto done;
            }
            members[k] = x->number;
        }
    }
    battle->query_a = beir_index_of(ctx->queries, qa);
    battle->query_b = beir_index_of(ctx->queries, qb);
    battle->doc_a = beir_index_of(ctx->corpus, da);
    battle->doc_b = beir_index_of(ctx->corpus, db);
    if (battle->query_a < 0) { snprintf(err, errlen, "unknown query id '%s'", qa); goto done; }
    if (battle->query_b < 0) { snprintf(err, errlen, "unknown query id '%s' (query_id_b)", qb); goto done; }
    if (battle->doc_a < 0) { snprintf(err, errlen, "unknown document id '%s' (doc_a)", da); goto done; }
    if (battle->doc_b < 0) { snprintf(err, errlen, "unknown document id '%s' (doc_b)", db); goto done; }
    if (battle->query_a == battle->query_b && battle->doc_a == battle->doc_b) {
        snprintf(err, errlen, "document '%s' against itself", da);
        goto done;
    }
    *p = pv->number;
    ok = 1;
done:
    json_free(&v);
    return ok;
}

// members (n_members,) is written when there is more than one
static void write_judgment(FILE* fp, const JudgeContext* ctx, const Battle* b, float p, const float* members,
                           int n_members, const char* judge) {
    fprintf(fp, "{\"query_id\": ");
    json_write_string(fp, beir_id(ctx->queries, b->query_a));
    if (b->query_b != b->query_a) {
        fprintf(fp, ", \"query_id_b\": ");
        json_write_string(fp, beir_id(ctx->queries, b->query_b));
    }
    fprintf(fp, ", \"doc_a\": ");
    json_write_string(fp, beir_id(ctx->corpus, b->doc_a));
    fprintf(fp, ", \"doc_b\": ");
    json_write_string(fp, beir_id(ctx->corpus, b->doc_b));
    // 9 significant digits give the float back exactly
    fprintf(fp, ", \"p\": %.9g", (double)p);
    if (n_members > 1) {
        for (int k = 0; k < n_members; k++) { fprintf(fp, "%s%.9g", k == 0 ? ", \"members\": [" : ", ", (double)members[k]); }
        fprintf(fp, "]");
    }
    fprintf(fp, ", \"judge\": ");
    json_write_string(fp, judge);
    fprintf(fp, "}\n");
}

// a battle and its reverse share one key, (query, doc) pairs in increasing order; *flipped
// says whether b was reversed to get it
static Battle canonical_battle(const Battle* b, int* flipped) {
    int a_first = b->query_a < b->query_b || (b->query_a == b->query_b && b->doc_a < b->doc_b);
    *flipped = !a_first;
    if (a_first) { return *b; }
    Battle r = {b->query_b, b->doc_b, b->query_a, b->doc_a};
    return r;
}

// ----------------------------------------------------------------------------
// sim: hidden score = the graded gain of the qrels (unjudged: 0), the same absolute scale
// for every query, so cross-query battles mean what they say. Documents of equal gain get
// equal scores: the labels say nothing about their order, so the judge answers a noisy
// coin flip instead of a made-up preference.

static double sim_score(const Qrels* qrels, int query, int doc) {
    int lo = qrels->query_start[query], hi = qrels->query_start[query + 1];
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (qrels->doc[mid] < doc) { lo = mid + 1; } else { hi = mid; }
    }
    return (lo < qrels->query_start[query + 1] && qrels->doc[lo] == doc) ? (double)qrels->gain[lo] : 0.0;
}

static void sim_battles(float* p_out, const JudgeContext* ctx, const Battle* battles, int n) {
    for (int i = 0; i < n; i++) {
        const Battle* b = &battles[i];
        // each battle's own stream: the answer depends on the battle alone, never on the
        // order, the batch or the thread that asks
        ZeloRng rng;
        zelo_rng_seed(&rng, battle_hash(ctx->seed, b));
        double sa = sim_score(ctx->qrels, b->query_a, b->doc_a);
        double sb = sim_score(ctx->qrels, b->query_b, b->doc_b);
        p_out[i] = (float)zelo_sim_judge_prob(sa, sb, ZELO_LINK_THURSTONE, &rng);
    }
}

// ----------------------------------------------------------------------------
// bm25

static double bm25_top(JudgeMember* m, const JudgeContext* ctx, int query) {
    if (isnan(m->bm25_top[query])) {
        const char* text = beir_text(ctx->queries, query);
        int doc;
        float score;
        bm25_search(&doc, &score, ctx->bm25, &text, 1, 1);
        m->bm25_top[query] = score;
    }
    return m->bm25_top[query];
}

static double bm25_relative(JudgeMember* m, const JudgeContext* ctx, int query, int doc) {
    float s;
    bm25_score_docs(&s, ctx->bm25, beir_text(ctx->queries, query), &doc, 1);
    double top = bm25_top(m, ctx, query);
    // a query none of whose terms occur in the corpus scores 0 everywhere: all ties
    return top > 0.0 ? (double)s / top : 0.0;
}

static void bm25_battles(float* p_out, JudgeMember* m, const JudgeContext* ctx, const Battle* battles, int n) {
    for (int i = 0; i < n; i++) {
        const Battle* b = &battles[i];
        double ra = bm25_relative(m, ctx, b->query_a, b->doc_a);
        double rb = bm25_relative(m, ctx, b->query_b, b->doc_b);
        p_out[i] = judge_link_antisymmetric(JUDGE_BM25_RANGE * (ra - rb));
    }
}

// ----------------------------------------------------------------------------
// dense

static void dense_file(char* out, size_t cap, const JudgeContext* ctx, const char* what) {
    snprintf(out, cap, "%s/dense_%s.bin", ctx->run_dir, what);
}

static void dense_prepare(JudgeMember* m, const JudgeContext* ctx, const Battle* battles, int n) {
    int* items = (int*)mallocCheck(sizeof(int) * (size_t)(2 * n + 1));
    const char** texts = (const char**)mallocCheck(sizeof(char*) * (size_t)(2 * n + 1));
    DenseStore* stores[2] = {&m->dense_queries, &m->dense_docs};
    const char* names[2] = {"queries", "docs"};
    for (int k = 0; k < 2; k++) {
        const BeirTexts* collection = k == 0 ? ctx->queries : ctx->corpus;
        for (int i = 0; i < 2 * n; i++) {
            const Battle* b = &battles[i / 2];
            if (k == 0) { items[i] = i % 2 ? b->query_b : b->query_a; }
            else { items[i] = i % 2 ? b->doc_b : b->doc_a; }
            texts[i] = beir_text(collection, items[i]);
        }
        int before = stores[k]->n;
        dense_store_fill(stores[k], ctx->dense_model, ctx->tokenizer, items, texts, 2 * n);
        if (stores[k]->n > before && ctx->run_dir != NULL) {
            char path[4096];
            dense_file(path, sizeof(path), ctx, names[k]);
            dense_store_save(stores[k], path);
        }
    }
    free(items);
    free(texts);
}

static void dense_battles(float* p_out, JudgeMember* m, const JudgeContext* ctx, const Battle* battles, int n) {
    dense_prepare(m, ctx, battles, n);
    int C = m->dense_docs.C;
    for (int i = 0; i < n; i++) {
        const Battle* b = &battles[i];
        double ca = dense_dot(dense_store_row(&m->dense_queries, b->query_a), dense_store_row(&m->dense_docs, b->doc_a), C);
        double cb = dense_dot(dense_store_row(&m->dense_queries, b->query_b), dense_store_row(&m->dense_docs, b->doc_b), C);
        p_out[i] = judge_link_antisymmetric((ca - cb) / JUDGE_DENSE_TAU);
    }
}

// ----------------------------------------------------------------------------
// file

static void file_load(JudgeMember* m, const JudgeContext* ctx) {
    size_t len;
    char* text = readFileCheck(m->path, &len);
    battle_map_init(&m->judgments);
    int line = 0;
    for (size_t pos = 0; pos < len;) {
        const char* start = text + pos;
        const char* nl = memchr(start, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - start) : len - pos;
        pos += n + 1;
        line++;
        if (n > 0 && start[n - 1] == '\r') { n--; }
        int blank = 1;
        for (size_t i = 0; i < n && blank; i++) { blank = (start[i] == ' ' || start[i] == '\t'); }
        if (blank) { continue; }
        Battle b;
        double p;
        char err[600];
        if (!parse_judgment(&b, &p, NULL, 0, NULL, start, n, ctx, NULL, err, sizeof(err))) { die("%s:%d: %s", m->path, line, err); }
        int flipped;
        Battle key = canonical_battle(&b, &flipped);
        battle_map_add(&m->judgments, &key, flipped ? 1.0 - p : p);
    }
    free(text);
    if (battle_map_count(&m->judgments) == 0) { die("judge %s: '%s' holds no judgments", m->spec, m->path); }
}

static int file_battles(float* p_out, char* error, size_t errlen, JudgeMember* m, const JudgeContext* ctx,
                        const Battle* battles, int n) {
    for (int i = 0; i < n; i++) {
        int flipped;
        Battle key = canonical_battle(&battles[i], &flipped);
        const BattleSlot* s = battle_map_find(&m->judgments, &key);
        if (s == NULL) {
            char name[300];
            battle_name(name, sizeof(name), ctx, &battles[i]);
            snprintf(error, errlen, "'%s' has no judgment for %s (nor for its reverse)", m->path, name);
            return i;
        }
        double mean = s->sum / s->count;
        p_out[i] = (float)(flipped ? 1.0 - mean : mean);
    }
    return n;
}

// ----------------------------------------------------------------------------
// cmd

static int cmd_battles(float* p_out, char* error, size_t errlen, JudgeMember* m, const JudgeContext* ctx,
                       const Battle* battles, int n) {
    const char* qa[JUDGE_BATCH];
    const char* qb[JUDGE_BATCH];
    const char* da[JUDGE_BATCH];
    const char* db[JUDGE_BATCH];
    for (int start = 0; start < n; start += JUDGE_BATCH) {
        int k = n - start < JUDGE_BATCH ? n - start : JUDGE_BATCH;
        for (int i = 0; i < k; i++) {
            const Battle* b = &battles[start + i];
            qa[i] = beir_text(ctx->queries, b->query_a);
            qb[i] = b->query_b != b->query_a ? beir_text(ctx->queries, b->query_b) : NULL;
            da[i] = beir_text(ctx->corpus, b->doc_a);
            db[i] = beir_text(ctx->corpus, b->doc_b);
        }
        int got = cmd_judge_ask(p_out + start, error, errlen, &m->cmd, qa, da, qb, db, k);
        if (got < k) { return start + got; }
    }
    return n;
}

// ----------------------------------------------------------------------------
// model

int judge_encode_pairwise(int* ids, int* types, int max_len, const Tokenizer* tok,
                          const char* query, const char* doc_a, const char* doc_b) {
    if (max_len < 7) { die("judge_encode_pairwise: max_len %d leaves no room for three texts and four special tokens", max_len); }
    int room = max_len - 4;
    // each text is encoded into its own part of ids' room, then moved into place
    int* parts = (int*)mallocCheck(sizeof(int) * 3 * (size_t)room);
    const char* texts[3] = {query, doc_a, doc_b};
    int len[3];
    for (int k = 0; k < 3; k++) {
        len[k] = tokenizer_encode(tok, parts + (size_t)k * room, room, texts[k], strlen(texts[k]));
        if (len[k] > room) { len[k] = room; }
    }
    while (len[0] + len[1] + len[2] > room) {
        // longest first; on equal lengths doc_b, then doc_a, then the query lose a token
        int k = 2;
        if (len[1] > len[k]) { k = 1; }
        if (len[0] > len[k]) { k = 0; }
        len[k]--;
    }
    int t = 0;
    ids[t] = tok->cls_id; types[t++] = 0;
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < len[k]; i++) { ids[t] = parts[(size_t)k * room + i]; types[t++] = k > 0; }
        ids[t] = tok->sep_id; types[t++] = k > 0;
    }
    free(parts);
    return t;
}

// order of sequences by length, for batches of even length
static const int* sort_lengths;
static int by_length(const void* x, const void* y) {
    int a = *(const int*)x, b = *(const int*)y;
    if (sort_lengths[a] != sort_lengths[b]) { return sort_lengths[a] - sort_lengths[b]; }
    return a - b;
}

// the logit of each of m sequences, rows of ids and types (m, max_len) of given lengths
static void model_logits(float* logits_out /* (m,) */, BertModel* model, const int* ids, const int* types,
                         const int* lengths, int m, int max_len) {
    int* order = (int*)mallocCheck(sizeof(int) * (size_t)(m > 0 ? m : 1));
    for (int i = 0; i < m; i++) { order[i] = i; }
    sort_lengths = lengths;
    qsort(order, (size_t)m, sizeof(int), by_length);
    int max_seqs = JUDGE_BATCH_TOKENS / 3 + 1;
    int* batch_ids = (int*)mallocCheck(sizeof(int) * (size_t)(JUDGE_BATCH_TOKENS + max_len));
    int* batch_types = (int*)mallocCheck(sizeof(int) * (size_t)(JUDGE_BATCH_TOKENS + max_len));
    int* seq_starts = (int*)mallocCheck(sizeof(int) * (size_t)(max_seqs + 2));
    int* items = (int*)mallocCheck(sizeof(int) * (size_t)(max_seqs + 1));
    int next = 0;
    while (next < m) {
        int S = 0, N = 0;
        seq_starts[0] = 0;
        while (next < m && (S == 0 || N + lengths[order[next]] <= JUDGE_BATCH_TOKENS) && S < max_seqs) {
            int i = order[next++];
            memcpy(batch_ids + N, ids + (size_t)i * max_len, sizeof(int) * (size_t)lengths[i]);
            memcpy(batch_types + N, types + (size_t)i * max_len, sizeof(int) * (size_t)lengths[i]);
            N += lengths[i];
            items[S++] = i;
            seq_starts[S] = N;
        }
        bert_infer(model, batch_ids, batch_types, seq_starts, S);
        for (int s = 0; s < S; s++) { logits_out[items[s]] = model->logits[(size_t)s * model->config.num_labels]; }
    }
    free(order);
    free(batch_ids);
    free(batch_types);
    free(seq_starts);
    free(items);
}

static int model_max_len(const JudgeMember* m, const JudgeContext* ctx) {
    return ctx->max_len > 0 ? ctx->max_len : m->model.config.max_position;
}

// scores every (query, doc) of the battles the pointwise model has not scored yet
static void model_prepare(JudgeMember* m, const JudgeContext* ctx, const Battle* battles, int n) {
    BattleMap queued;
    battle_map_init(&queued);
    Battle* todo = (Battle*)mallocCheck(sizeof(Battle) * (size_t)(2 * n + 1));
    int count = 0;
    for (int i = 0; i < 2 * n; i++) {
        const Battle* b = &battles[i / 2];
        Battle key = {i % 2 ? b->query_b : b->query_a, i % 2 ? b->doc_b : b->doc_a, -1, -1};
        if (battle_map_find(&m->scores, &key) != NULL || battle_map_find(&queued, &key) != NULL) { continue; }
        battle_map_add(&queued, &key, 0.0);
        todo[count++] = key;
    }
    int max_len = model_max_len(m, ctx);
    int* ids = (int*)mallocCheck(sizeof(int) * (size_t)JUDGE_MODEL_CHUNK * max_len);   // (chunk, max_len)
    int* types = (int*)mallocCheck(sizeof(int) * (size_t)JUDGE_MODEL_CHUNK * max_len); // (chunk, max_len)
    int* lengths = (int*)mallocCheck(sizeof(int) * JUDGE_MODEL_CHUNK);
    float* logits = (float*)mallocCheck(sizeof(float) * JUDGE_MODEL_CHUNK);
    double t0 = wall_seconds();
    for (int start = 0; start < count; start += JUDGE_MODEL_CHUNK) {
        int k = count - start < JUDGE_MODEL_CHUNK ? count - start : JUDGE_MODEL_CHUNK;
        for (int i = 0; i < k; i++) {
            const Battle* key = &todo[start + i];
            lengths[i] = tokenizer_encode_pair(ctx->tokenizer, ids + (size_t)i * max_len, types + (size_t)i * max_len, max_len,
                                               beir_text(ctx->queries, key->query_a), beir_text_len(ctx->queries, key->query_a),
                                               beir_text(ctx->corpus, key->doc_a), beir_text_len(ctx->corpus, key->doc_a));
        }
        model_logits(logits, &m->model, ids, types, lengths, k, max_len);
        for (int i = 0; i < k; i++) { battle_map_add(&m->scores, &todo[start + i], logits[i]); }
        if (count > JUDGE_MODEL_CHUNK) {
            double rate = (start + k) / (wall_seconds() - t0 + 1e-9);
            fprintf(stderr, "\rjudge %s: scored %d/%d (query, document) pairs, %.0f/s, %.0f s left   %s", m->spec,
                    start + k, count, rate, (count - start - k) / rate, start + k == count ? "\n" : "");
        }
    }
    free(ids);
    free(types);
    free(lengths);
    free(logits);
    free(todo);
    battle_map_free(&queued);
}

static int model_battles(float* p_out, char* error, size_t errlen, JudgeMember* m, const JudgeContext* ctx,
                         const Battle* battles, int n) {
    if (!m->pairwise) {
        model_prepare(m, ctx, battles, n);
        for (int i = 0; i < n; i++) {
            Battle ka = {battles[i].query_a, battles[i].doc_a, -1, -1};
            Battle kb = {battles[i].query_b, battles[i].doc_b, -1, -1};
            double za = battle_map_find(&m->scores, &ka)->sum;
            double zb = battle_map_find(&m->scores, &kb)->sum;
            p_out[i] = judge_link_antisymmetric(za - zb);
        }
        return n;
    }
    for (int i = 0; i < n; i++) {
        if (battles[i].query_a != battles[i].query_b) {
            char name[300];
            battle_name(name, sizeof(name), ctx, &battles[i]);
            snprintf(error, errlen, "a pairwise model reads one query and cannot judge the cross-query battle %s "
                     "(use a pointwise model, or another judge, for the calibration)", name);
            n = i;
            break;
        }
    }
    int max_len = model_max_len(m, ctx);
    int* ids = (int*)mallocCheck(sizeof(int) * (size_t)JUDGE_MODEL_CHUNK * max_len);   // (chunk, max_len)
    int* types = (int*)mallocCheck(sizeof(int) * (size_t)JUDGE_MODEL_CHUNK * max_len); // (chunk, max_len)
    int* lengths = (int*)mallocCheck(sizeof(int) * JUDGE_MODEL_CHUNK);
    float* logits = (float*)mallocCheck(sizeof(float) * JUDGE_MODEL_CHUNK);
    for (int start = 0; start < n; start += JUDGE_MODEL_CHUNK) {
        int k = n - start < JUDGE_MODEL_CHUNK ? n - start : JUDGE_MODEL_CHUNK;
        for (int i = 0; i < k; i++) {
            const Battle* b = &battles[start + i];
            lengths[i] = judge_encode_pairwise(ids + (size_t)i * max_len, types + (size_t)i * max_len, max_len, ctx->tokenizer,
                                               beir_text(ctx->queries, b->query_a), beir_text(ctx->corpus, b->doc_a),
                                               beir_text(ctx->corpus, b->doc_b));
        }
        model_logits(logits, &m->model, ids, types, lengths, k, max_len);
        for (int i = 0; i < k; i++) { p_out[start + i] = (float)sigmoid(logits[i]); }
    }
    free(ids);
    free(types);
    free(lengths);
    free(logits);
    return n;
}

// ----------------------------------------------------------------------------
// the interface

// where the member starting at spec ends: at a '+' followed by a judge name, or at the end
// (a cmd member always runs to the end: its command is the user's, '+' and all)
static size_t member_length(const char* spec) {
    size_t len = strlen(spec);
    if (strncmp(spec, "cmd:", 4) == 0) { return len; }
    static const char* const names[] = {"sim", "bm25", "dense", "file:", "cmd:", "model:"};
    for (size_t i = 0; i < len; i++) {
        if (spec[i] != '+') { continue; }
        const char* rest = spec + i + 1;
        if (*rest == '\0') { return i; }  // judge_create then says that nothing follows
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
            size_t nl = strlen(names[k]);
            int colon = names[k][nl - 1] == ':';
            // a bare name must end there (at '+' or the end) to count: "bm25x" is no judge
            if (strncmp(rest, names[k], nl) == 0 && (colon || rest[nl] == '\0' || rest[nl] == '+')) { return i; }
        }
    }
    return len;
}

static void member_create(JudgeMember* m, const char* spec, const JudgeContext* ctx) {
    memset(m, 0, sizeof(*m));
    m->spec = strdupCheck(spec);
    if (strcmp(spec, "sim") == 0) {
        m->kind = JUDGE_SIM;
        if (ctx->qrels == NULL) { die("judge sim: needs the qrels (human labels) of the queries"); }
        if (ctx->qrels->n_queries != ctx->queries->n) {
            die("judge sim: the qrels refer to %d queries, the run has %d", ctx->qrels->n_queries, ctx->queries->n);
        }
    } else if (strcmp(spec, "bm25") == 0) {
        m->kind = JUDGE_BM25;
        if (ctx->bm25 == NULL) { die("judge bm25: needs a BM25 index of the corpus"); }
        if (ctx->bm25->n_docs != ctx->corpus->n) {
            die("judge bm25: the index has %d documents, the corpus %d", ctx->bm25->n_docs, ctx->corpus->n);
        }
        m->bm25_top = (float*)mallocCheck(sizeof(float) * (size_t)(ctx->queries->n > 0 ? ctx->queries->n : 1));
        for (int q = 0; q < ctx->queries->n; q++) { m->bm25_top[q] = NAN; }
    } else if (strcmp(spec, "dense") == 0) {
        m->kind = JUDGE_DENSE;
        if (ctx->dense_model == NULL || ctx->tokenizer == NULL) {
            die("judge dense: needs the bi-encoder (all-MiniLM-L6-v2) and its tokenizer");
        }
        int max_len = ctx->dense_max_len > 0 ? ctx->dense_max_len : DENSE_DEFAULT_MAX_LEN;
        DenseStore* stores[2] = {&m->dense_queries, &m->dense_docs};
        const BeirTexts* texts[2] = {ctx->queries, ctx->corpus};
        const char* names[2] = {"queries", "docs"};
        for (int k = 0; k < 2; k++) {
            const char** t = (const char**)mallocCheck(sizeof(char*) * (size_t)(texts[k]->n > 0 ? texts[k]->n : 1));
            for (int i = 0; i < texts[k]->n; i++) { t[i] = beir_text(texts[k], i); }
            dense_store_init(stores[k], ctx->dense_model, t, texts[k]->n, max_len);
            free(t);
            if (ctx->run_dir != NULL) {
                char path[4096];
                dense_file(path, sizeof(path), ctx, names[k]);
                dense_store_load(stores[k], path);
            }
        }
    } else if (strncmp(spec, "file:", 5) == 0) {
        m->kind = JUDGE_FILE;
        if (spec[5] == '\0') { die("judge '%s': file: needs a path", spec); }
        m->path = strdupCheck(spec + 5);
        file_load(m, ctx);
    } else if (strncmp(spec, "cmd:", 4) == 0) {
        m->kind = JUDGE_CMD;
        if (spec[4] == '\0') { die("judge '%s': cmd: needs a command", spec); }
        cmd_judge_start(&m->cmd, spec + 4, ctx->cmd_timeout_s > 0 ? ctx->cmd_timeout_s : JUDGE_CMD_DEFAULT_TIMEOUT_S);
    } else if (strncmp(spec, "model:", 6) == 0) {
        m->kind = JUDGE_MODEL;
        // the mode is required: a checkpoint does not say which input it was trained on, and
        // a wrong guess would give answers that look fine and mean nothing
        const char* comma = strrchr(spec, ',');
        if (comma == NULL || (strcmp(comma, ",pairwise") != 0 && strcmp(comma, ",pointwise") != 0)) {
            die("judge '%s': write model:CHECKPOINT,pairwise or model:CHECKPOINT,pointwise", spec);
        }
        m->pairwise = strcmp(comma, ",pairwise") == 0;
        size_t plen = (size_t)(comma - (spec + 6));
        if (plen == 0) { die("judge '%s': model: needs a checkpoint path", spec); }
        m->path = (char*)mallocCheck(plen + 1);
        memcpy(m->path, spec + 6, plen);
        m->path[plen] = '\0';
        if (ctx->tokenizer == NULL) { die("judge '%s': needs the model's tokenizer", spec); }
        bert_load(&m->model, m->path);
        if (m->model.config.num_labels != 1) {
            die("judge '%s': the checkpoint has %d labels; a judge needs one logit", spec, m->model.config.num_labels);
        }
        if (model_max_len(m, ctx) > m->model.config.max_position) {
            die("judge '%s': max_len %d exceeds the model's %d positions", spec, ctx->max_len, m->model.config.max_position);
        }
        if (m->model.config.vocab_size < ctx->tokenizer->vocab_size) {
            die("judge '%s': the model has %d token embeddings, the tokenizer %d tokens", spec,
                m->model.config.vocab_size, ctx->tokenizer->vocab_size);
        }
        bert_to_device(&m->model, ctx->device, PRECISION_FP32);
        battle_map_init(&m->scores);
    } else {
        die("unknown judge '%s' (judges: sim, bm25, dense, file:PATH, cmd:COMMAND, model:PATH,pairwise|pointwise, "
            "joined by '+')", spec);
    }
}

static void member_free(JudgeMember* m) {
    switch (m->kind) {
        case JUDGE_BM25: free(m->bm25_top); break;
        case JUDGE_DENSE: dense_store_free(&m->dense_docs); dense_store_free(&m->dense_queries); break;
        case JUDGE_FILE: battle_map_free(&m->judgments); break;
        case JUDGE_CMD: cmd_judge_stop(&m->cmd); break;
        case JUDGE_MODEL: bert_free(&m->model); battle_map_free(&m->scores); break;
        case JUDGE_SIM: break;
    }
    free(m->path);
    free(m->spec);
}

void judge_create(Judge* judge, const char* spec, const JudgeContext* ctx) {
    memset(judge, 0, sizeof(*judge));
    if (ctx->corpus == NULL || ctx->queries == NULL) { die("judge_create: the context needs the corpus and the queries"); }
    judge->ctx = *ctx;
    if (spec[0] == '\0') { die("empty judge spec"); }
    for (const char* s = spec;;) {
        size_t len = member_length(s);
        if (len == 0) { die("judge '%s': an empty member before '+'", spec); }
        char* part = (char*)mallocCheck(len + 1);
        memcpy(part, s, len);
        part[len] = '\0';
        member_create(arraddnptr(judge->members, 1), part, &judge->ctx);
        judge->n_members = (int)arrlen(judge->members);
        free(part);
        if (s[len] == '\0') { break; }
        s += len + 1;
        if (*s == '\0') { die("judge '%s': a '+' with no judge after it", spec); }
    }
    // the simulated judge's answers depend on the seed: it is part of the name, so that a
    // cache written under another seed is refused instead of reused
    if (judge_is_simulated(judge)) {
        size_t cap = strlen(spec) + 40;
        judge->description = (char*)mallocCheck(cap);
        snprintf(judge->description, cap, "%s@seed%llu", spec, (unsigned long long)ctx->seed);
    } else {
        judge->description = strdupCheck(spec);
    }
}

static int member_battles(float* p_out, char* error, size_t errlen, JudgeMember* m, const JudgeContext* ctx,
                          const Battle* battles, int n) {
    switch (m->kind) {
        case JUDGE_SIM: sim_battles(p_out, ctx, battles, n); return n;
        case JUDGE_BM25: bm25_battles(p_out, m, ctx, battles, n); return n;
        case JUDGE_DENSE: dense_battles(p_out, m, ctx, battles, n); return n;
        case JUDGE_FILE: return file_battles(p_out, error, errlen, m, ctx, battles, n);
        case JUDGE_CMD: return cmd_battles(p_out, error, errlen, m, ctx, battles, n);
        case JUDGE_MODEL: return model_battles(p_out, error, errlen, m, ctx, battles, n);
    }
    return 0;
}

const char* judge_combine_name(JudgeCombine rule) {
    return rule == JUDGE_COMBINE_VOTE ? "vote" : "mean";
}

int judge_combine_parse(JudgeCombine* rule, const char* name) {
    if (strcmp(name, "mean") == 0) { *rule = JUDGE_COMBINE_MEAN; return 1; }
    if (strcmp(name, "vote") == 0) { *rule = JUDGE_COMBINE_VOTE; return 1; }
    return 0;
}

// The mean (the default) gives the members equal weights. The rating fit minimises
// Σ −[p log F(d) + (1 − p) log F(−d)], which is linear in p: fitting the mean p is fitting
// every member's judgments at once, as if each had been asked. Averaging logits instead would
// let one confident member (p = 0 or 1, an infinite logit) decide. The vote (the paper's rule
// for its LLM ensemble) keeps only each member's direction: a member's confidence no longer
// counts, which suits judges whose probabilities are not calibrated against each other, and
// its answers come in steps of 1/(2M).
void judge_combine(float* p_out, const float* member_p, int n_members, int n, JudgeCombine rule) {
    for (int i = 0; i < n; i++) {
        const float* x = member_p + (size_t)i * n_members;
        if (rule == JUDGE_COMBINE_VOTE && n_members > 1) {
            int votes = 0;  // Σ of +1, 0, −1
            for (int k = 0; k < n_members; k++) { votes += (x[k] > 0.5f) - (x[k] < 0.5f); }
            p_out[i] = (float)((double)(n_members + votes) / (2.0 * n_members));
        } else {
            float sum = 0.0f;
            for (int k = 0; k < n_members; k++) { sum += x[k]; }
            p_out[i] = sum / (float)n_members;
        }
    }
}

int judge_battles_members(float* member_p, Judge* judge, const Battle* battles, int n) {
    check_battles(&judge->ctx, battles, n);
    judge->error[0] = '\0';
    int M = judge->n_members, answered = n;
    float* column = (float*)mallocCheck(sizeof(float) * (size_t)(n > 0 ? n : 1));  // one member's answers
    for (int k = 0; k < M; k++) {
        char err[900] = "";
        int got = member_battles(column, err, sizeof(err), &judge->members[k], &judge->ctx, battles, answered);
        if (got < answered) {
            snprintf(judge->error, sizeof(judge->error), "judge %s: %s", judge->members[k].spec, err);
            answered = got;
        }
        for (int i = 0; i < answered; i++) { member_p[(size_t)i * M + k] = column[i]; }
    }
    free(column);
    return answered;
}

int judge_battles(float* p_out, Judge* judge, const Battle* battles, int n) {
    float* member_p = (float*)mallocCheck(sizeof(float) * (size_t)judge->n_members * (size_t)(n > 0 ? n : 1));
    int answered = judge_battles_members(member_p, judge, battles, n);
    judge_combine(p_out, member_p, judge->n_members, answered, judge->ctx.combine);
    free(member_p);
    return answered;
}

void judge_prepare(Judge* judge, const Battle* battles, int n) {
    check_battles(&judge->ctx, battles, n);
    for (int k = 0; k < judge->n_members; k++) {
        JudgeMember* m = &judge->members[k];
        if (m->kind == JUDGE_DENSE) { dense_prepare(m, &judge->ctx, battles, n); }
        if (m->kind == JUDGE_MODEL && !m->pairwise) { model_prepare(m, &judge->ctx, battles, n); }
    }
}

int judge_is_simulated(const Judge* judge) {
    for (int k = 0; k < judge->n_members; k++) {
        if (judge->members[k].kind == JUDGE_SIM) { return 1; }
    }
    return 0;
}

const char* judge_describe(const Judge* judge) {
    return judge->description;
}

void judge_free(Judge* judge) {
    for (int k = 0; k < judge->n_members; k++) { member_free(&judge->members[k]); }
    arrfree(judge->members);
    free(judge->description);
    memset(judge, 0, sizeof(*judge));
}

// ----------------------------------------------------------------------------
// the cache

// the row of a battle's answers, a new one (zeroed) if it has none
static int cache_row(JudgeCache* cache, const Battle* b) {
    CacheSlot* slot = hmgetp_null(cache->slots, *b);
    if (slot != NULL) { return slot->row; }
    int row = (int)arrlen(cache->counts);
    hmputs(cache->slots, ((CacheSlot){*b, row}));
    memset(arraddnptr(cache->sums, cache->n_members), 0, sizeof(double) * (size_t)cache->n_members);
    arrput(cache->counts, 0);
    arrput(cache->combined_only, 0);
    return row;
}

// one line's answers, members (n_members,), or p alone for a line without "members"
static void cache_add(JudgeCache* cache, const Battle* b, const double* members, double p) {
    int row = cache_row(cache, b);
    for (int k = 0; k < cache->n_members; k++) { cache->sums[(size_t)row * cache->n_members + k] += members ? members[k] : p; }
    cache->counts[row]++;
    if (members == NULL && cache->n_members > 1) { cache->combined_only[row] = 1; }
}

void judge_cache_open(JudgeCache* cache, const char* path, const Judge* judge) {
    memset(cache, 0, sizeof(*cache));
    cache->path = strdupCheck(path);
    cache->judge = judge;
    cache->n_members = judge->n_members;
    int needs_newline = 0;
    double* members = (double*)mallocCheck(sizeof(double) * (size_t)judge->n_members);
    if (access(path, F_OK) == 0) {
        size_t len;
        char* text = readFileCheck(path, &len);
        int line = 0;
        for (size_t pos = 0; pos < len;) {
            const char* start = text + pos;
            const char* nl = memchr(start, '\n', len - pos);
            size_t n = nl != NULL ? (size_t)(nl - start) : len - pos;
            line++;
            Battle b;
            double p;
            int has_members;
            char err[600];
            if (n == 0) { pos += 1; continue; }
            if (!parse_judgment(&b, &p, members, judge->n_members, &has_members, start, n, &judge->ctx,
                                judge->description, err, sizeof(err))) {
                if (nl == NULL) {
                    // the last line, without its newline: a write cut short by a kill. It is
                    // cut off the file, so that the next judgment starts a line of its own.
                    fprintf(stderr, "warning: %s:%d: dropping an incomplete last line (%s); the run was "
                            "interrupted while writing it\n", path, line, err);
                    if (truncate(path, (off_t)pos) != 0) { die("could not truncate '%s': %s", path, strerror(errno)); }
                    break;
                }
                die("%s:%d: %s", path, line, err);
            }
            if (nl == NULL) { needs_newline = 1; }
            cache_add(cache, &b, has_members ? members : NULL, p);
            cache->n_loaded++;
            pos += n + 1;
        }
        free(text);
    }
    free(members);
    cache->fp = fopenCheck(path, "a");
    if (needs_newline) { fputc('\n', cache->fp); }
}

int judge_cache_lookup(float* p, const JudgeCache* cache, const Battle* battle) {
    CacheSlot* slots = cache->slots;
    if (slots == NULL) { return 0; }
    ptrdiff_t i;
    hmgeti_ts(slots, *battle, i);  // leaves the map as it is (see battle_map_find)
    if (i < 0) { return 0; }
    int row = slots[i].row, M = cache->n_members;
    JudgeCombine rule = cache->judge->ctx.combine;
    if (rule == JUDGE_COMBINE_VOTE && cache->combined_only[row]) {
        char name[300];
        battle_name(name, sizeof(name), &cache->judge->ctx, battle);
        die("%s: the judgment of %s has no \"members\" (written before each member's answer was kept), and "
            "--judge-combine vote needs them: use --judge-combine mean, or remove the file to judge again",
            cache->path, name);
    }
    float* member_p = (float*)mallocCheck(sizeof(float) * (size_t)M);
    for (int k = 0; k < M; k++) { member_p[k] = (float)(cache->sums[(size_t)row * M + k] / cache->counts[row]); }
    judge_combine(p, member_p, M, 1, rule);
    free(member_p);
    return 1;
}

void judge_cache_close(JudgeCache* cache) {
    if (cache->fp != NULL) { fcloseCheck(cache->fp); }
    hmfree(cache->slots);
    arrfree(cache->sums);
    arrfree(cache->counts);
    arrfree(cache->combined_only);
    free(cache->path);
    memset(cache, 0, sizeof(*cache));
}

float judge_cache_add(JudgeCache* cache, const Battle* battle, const float* members) {
    const Judge* judge = cache->judge;
    float p;
    judge_combine(&p, members, cache->n_members, 1, judge->ctx.combine);
    double* sums = (double*)mallocCheck(sizeof(double) * (size_t)cache->n_members);
    for (int k = 0; k < cache->n_members; k++) { sums[k] = members[k]; }
    cache_add(cache, battle, sums, p);
    free(sums);
    write_judgment(cache->fp, &judge->ctx, battle, p, members, cache->n_members, judge->description);
    return p;
}

void judge_cache_flush(JudgeCache* cache) {
    if (fflush(cache->fp) != 0) { die("could not write '%s': %s", cache->path, strerror(errno)); }
}

void judge_battles_cached(float* p_out, Judge* judge, JudgeCache* cache, const Battle* battles, int n) {
    if (cache->judge != judge) { die("judge_battles_cached: the cache was opened for another judge"); }
    check_battles(&judge->ctx, battles, n);
    int* missing = (int*)mallocCheck(sizeof(int) * (size_t)(n > 0 ? n : 1));
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!judge_cache_lookup(&p_out[i], cache, &battles[i])) { missing[m++] = i; }
    }
    Battle* ask = (Battle*)mallocCheck(sizeof(Battle) * (size_t)(m > 0 ? m : 1));
    for (int i = 0; i < m; i++) { ask[i] = battles[missing[i]]; }
    if (m > 0) { judge_prepare(judge, ask, m); }
    int show = m >= JUDGE_PROGRESS_MIN;
    double t0 = wall_seconds(), last_shown = t0;
    int M = judge->n_members;
    float* member_p = (float*)mallocCheck(sizeof(float) * (size_t)M * JUDGE_BATCH);  // (k, M) per batch
    for (int start = 0; start < m; start += JUDGE_BATCH) {
        int k = m - start < JUDGE_BATCH ? m - start : JUDGE_BATCH;
        int got = judge_battles_members(member_p, judge, ask + start, k);
        for (int i = 0; i < got; i++) {
            p_out[missing[start + i]] = judge_cache_add(cache, &ask[start + i], member_p + (size_t)i * M);
        }
        judge_cache_flush(cache);
        if (got < k) {
            if (show) { fprintf(stderr, "\n"); }
            die("%s\n(the %d battles judged so far are saved in %s; run again to resume)", judge->error,
                (int)hmlen(cache->slots), cache->path);
        }
        double now = wall_seconds();
        if (show && (now - last_shown > 2.0 || start + k == m)) {
            double rate = (start + k) / (now - t0 + 1e-9);
            fprintf(stderr, "\rjudge %s: %d/%d battles (%d cached), %.1f/s, %.0f s left   ", judge->description,
                    start + k + (n - m), n, n - m, rate, (m - start - k) / rate);
            if (start + k == m) { fprintf(stderr, "\n"); }
            last_shown = now;
        }
    }
    free(member_p);
    free(missing);
    free(ask);
}
