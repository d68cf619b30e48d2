/*
 * io/synth.c — the built-in synthetic collection (what it models and the files it writes
 * are described in io/synth.h).
 */
#include <errno.h>
#include <sys/stat.h>
#include <stb/stb_ds.h>
#include "io/json.h"
#include "common/strtab.h"
#include "io/synth.h"
#include "common/utils.h"

// Shape of the documents. Two to four facets make documents differ in how much of a
// query they cover (grades 1..3), and a secondary topic in 40% of them puts facet words
// where they do not answer the query, which BM25 cannot tell apart.
#define MIN_DOC_FACETS 2
#define MAX_DOC_FACETS 4
#define SECOND_TOPIC_PERCENT 40
#define MAX_SECOND_FACETS 2
// a facet sentence names its topic half of the time, so topic words are not everywhere
#define TOPIC_IN_FACET_SENTENCE_PERCENT 50
// filler words of a sentence: from its topic's vocabulary, else common words
#define TOPIC_WORD_PERCENT 40
// a main facet is discussed in one or two sentences
#define MAX_SENTENCES_PER_FACET 2
#define MAX_SENTENCES (1 + MAX_DOC_FACETS * MAX_SENTENCES_PER_FACET + MAX_SECOND_FACETS)
// queries add up to two of the most frequent common words, like "what is" in real queries
#define MAX_QUERY_FILLERS 2
#define QUERY_FILLER_RANKS 10
// Zipf weight of rank r is ZIPF_SCALE / (r + 1), in integers so that every machine draws
// the same words
#define ZIPF_SCALE (1u << 24)
// rejection sampling of distinct words stays fast while the words needed are a small
// part of the 2- and 3-syllable words there are (about 209,000)
#define MAX_WORDS 100000

// ----------------------------------------------------------------------------
// random numbers: splitmix64, a 64-bit state stepped by a constant and mixed

typedef struct {
    uint64_t state;
} Rng;

static uint64_t rng_next(Rng* r) {
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// uniform in [0, n); the modulo bias is below n / 2^64, far below anything measurable
static int rng_below(Rng* r, int n) { return (int)(rng_next(r) % (uint64_t)n); }

static int rng_percent(Rng* r, int percent) { return rng_below(r, 100) < percent; }

static void shuffle_ints(Rng* r, int* a, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = rng_below(r, i + 1);
        int t = a[i]; a[i] = a[j]; a[j] = t;
    }
}

// ----------------------------------------------------------------------------
// pseudo-words

static const char CONSONANTS[] = "bdfgklmnprstvz";  // no 'y': Porter reads it as a vowel
static const char VOWELS[] = "aeiou";
static const char FINAL_VOWELS[] = "aou";           // no Porter suffix ends in these

// a new word of 2 or 3 consonant-vowel syllables, distinct from every word in words;
// returns its number in words
static int new_word(StrTab* words, Rng* r) {
    char w[8];
    for (;;) {
        int syllables = 2 + rng_below(r, 2);
        int len = 0;
        for (int s = 0; s < syllables; s++) {
            w[len++] = CONSONANTS[rng_below(r, (int)sizeof(CONSONANTS) - 1)];
            w[len++] = s + 1 < syllables ? VOWELS[rng_below(r, (int)sizeof(VOWELS) - 1)]
                                         : FINAL_VOWELS[rng_below(r, (int)sizeof(FINAL_VOWELS) - 1)];
        }
        w[len] = '\0';
        int added;
        int id = strtab_intern(words, w, &added);
        if (added) { return id; }
    }
}

// ----------------------------------------------------------------------------
// the world: words of every concept, topic and rank

typedef struct {
    int n_topics, n_facets, n_forms;
    StrTab words;              // every synthetic word, numbered in order of creation
    int* concept_form;         // (n_topics + n_facets, n_forms) word of each form; topics first
    int* topic_word;           // (n_topics, n_topic_words)
    int n_topic_words;
    int* common_word;          // (n_common_words,) by Zipf rank
    uint64_t* common_cum;      // (n_common_words,) cumulative Zipf weights
    int n_common_words;
} World;

static void world_build(World* w, const SynthConfig* cfg, Rng* r) {
    w->n_topics = cfg->n_topics;
    w->n_facets = cfg->n_facets;
    w->n_forms = cfg->n_forms;
    w->n_topic_words = cfg->n_topic_words;
    w->n_common_words = cfg->n_common_words;
    strtab_init(&w->words);
    int n_concepts = cfg->n_topics + cfg->n_facets;
    w->concept_form = (int*)mallocCheck(sizeof(int) * (size_t)n_concepts * (size_t)cfg->n_forms);
    for (int i = 0; i < n_concepts * cfg->n_forms; i++) { w->concept_form[i] = new_word(&w->words, r); }
    w->topic_word = (int*)mallocCheck(sizeof(int) * (size_t)cfg->n_topics * (size_t)cfg->n_topic_words);
    for (int i = 0; i < cfg->n_topics * cfg->n_topic_words; i++) { w->topic_word[i] = new_word(&w->words, r); }
    w->common_word = (int*)mallocCheck(sizeof(int) * (size_t)cfg->n_common_words);
    w->common_cum = (uint64_t*)mallocCheck(sizeof(uint64_t) * (size_t)cfg->n_common_words);
    uint64_t total = 0;
    for (int i = 0; i < cfg->n_common_words; i++) {
        w->common_word[i] = new_word(&w->words, r);
        total += ZIPF_SCALE / (uint64_t)(i + 1);
        w->common_cum[i] = total;
    }
}

static void world_free(World* w) {
    strtab_free(&w->words);
    free(w->concept_form);
    free(w->topic_word);
    free(w->common_word);
    free(w->common_cum);
}

static int topic_form(const World* w, int topic, int form) { return w->concept_form[topic * w->n_forms + form]; }
static int facet_form(const World* w, int facet, int form) {
    return w->concept_form[(w->n_topics + facet) * w->n_forms + form];
}

static int common_word_draw(const World* w, Rng* r) {
    uint64_t x = rng_next(r) % w->common_cum[w->n_common_words - 1];
    int lo = 0, hi = w->n_common_words - 1;  // the first rank whose cumulative weight exceeds x
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (w->common_cum[mid] > x) { hi = mid; } else { lo = mid + 1; }
    }
    return w->common_word[lo];
}

static int filler_draw(const World* w, int topic, Rng* r) {
    if (rng_percent(r, TOPIC_WORD_PERCENT)) {
        return w->topic_word[topic * w->n_topic_words + rng_below(r, w->n_topic_words)];
    }
    return common_word_draw(w, r);
}

// ----------------------------------------------------------------------------
// text

typedef struct {
    char* s;   // stb_ds array: the text and its NUL (text_clear makes it "")
} Text;

static void text_clear(Text* t) {
    arrsetlen(t->s, 0);
    arrput(t->s, '\0');
}

static void text_append(Text* t, const char* s) {
    size_t n = strlen(s);
    (void)arrpop(t->s);   // the NUL, written again after s
    memcpy(arraddnptr(t->s, n + 1), s, n + 1);
}

// words[0..n) as a sentence: first letter upper-case, single spaces, then the end mark
static void text_sentence(Text* t, const World* w, const int* words, int n, const char* end) {
    size_t first = arrlenu(t->s) - 1;   // where the NUL is
    for (int i = 0; i < n; i++) {
        if (i > 0) { text_append(t, " "); }
        text_append(t, strtab_get(&w->words, words[i]));
    }
    t->s[first] = (char)(t->s[first] - 'a' + 'A');
    text_append(t, end);
}

// ----------------------------------------------------------------------------
// documents

typedef struct {
    int topic[2];        // main topic, secondary topic (-1: none)
    uint64_t facets[2];  // facets discussed under each (bit f: facet f)
} SynthDoc;

// k distinct facets out of n, as a bit mask
static uint64_t facet_draw(Rng* r, int n, int k) {
    uint64_t mask = 0;
    for (int got = 0; got < k;) {
        int f = rng_below(r, n);
        if (!(mask >> f & 1)) { mask |= 1ull << f; got++; }
    }
    return mask;
}

static void doc_draw(SynthDoc* d, const World* w, Rng* r) {
    d->topic[0] = rng_below(r, w->n_topics);
    d->facets[0] = facet_draw(r, w->n_facets, MIN_DOC_FACETS + rng_below(r, MAX_DOC_FACETS - MIN_DOC_FACETS + 1));
    d->topic[1] = -1;
    d->facets[1] = 0;
    if (rng_percent(r, SECOND_TOPIC_PERCENT)) {
        d->topic[1] = (d->topic[0] + 1 + rng_below(r, w->n_topics - 1)) % w->n_topics;
        d->facets[1] = facet_draw(r, w->n_facets, 1 + rng_below(r, MAX_SECOND_FACETS));
    }
}

// title and body of a document, whose body has about n_words words
static void doc_render(Text* title, Text* body, const SynthDoc* d, const World* w, int n_words, Rng* r) {
    // the author's one form of each concept (a facet of both topics keeps its form)
    int tform[2], fform[64];
    for (int k = 0; k < 2; k++) { tform[k] = d->topic[k] >= 0 ? rng_below(r, w->n_forms) : -1; }
    for (int f = 0; f < w->n_facets; f++) {
        fform[f] = ((d->facets[0] | d->facets[1]) >> f & 1) ? rng_below(r, w->n_forms) : -1;
    }
    int sent_topic[MAX_SENTENCES], sent_n_mentions[MAX_SENTENCES], sent_mention[MAX_SENTENCES][2];
    int n_sent = 0, n_mentions = 0;
    // the first sentence introduces the main topic
    sent_topic[0] = d->topic[0];
    sent_mention[0][0] = topic_form(w, d->topic[0], tform[0]);
    sent_n_mentions[0] = 1;
    n_sent = 1;
    for (int k = 0; k < 2; k++) {
        if (d->topic[k] < 0) { continue; }
        for (int f = 0; f < w->n_facets; f++) {
            if (!(d->facets[k] >> f & 1)) { continue; }
            int n_times = k == 0 ? 1 + rng_below(r, MAX_SENTENCES_PER_FACET) : 1;
            for (int i = 0; i < n_times; i++) {
                int s = n_sent++;
                sent_topic[s] = d->topic[k];
                sent_mention[s][0] = facet_form(w, f, fform[f]);
                sent_n_mentions[s] = 1;
                // a passing mention always names its topic: only that ties the facet to it
                if (k == 1 || rng_percent(r, TOPIC_IN_FACET_SENTENCE_PERCENT)) {
                    sent_mention[s][sent_n_mentions[s]++] = topic_form(w, d->topic[k], tform[k]);
                }
            }
        }
    }
    for (int s = 0; s < n_sent; s++) { n_mentions += sent_n_mentions[s]; }
    // every sentence gets at least one filler word, the rest go to random sentences
    if (n_words < n_mentions + n_sent) { n_words = n_mentions + n_sent; }
    int sent_fill[MAX_SENTENCES];
    for (int s = 0; s < n_sent; s++) { sent_fill[s] = 1; }
    for (int i = n_mentions + n_sent; i < n_words; i++) { sent_fill[rng_below(r, n_sent)]++; }
    // the introduction stays first, the other sentences come in random order
    int order[MAX_SENTENCES];
    for (int s = 0; s < n_sent; s++) { order[s] = s; }
    shuffle_ints(r, order + 1, n_sent - 1);
    int n_title = 2 + rng_below(r, 2);  // the title's words, drawn below
    int* words = (int*)mallocCheck(sizeof(int) * (size_t)(n_words > n_title ? n_words : n_title));
    text_clear(body);
    for (int i = 0; i < n_sent; i++) {
        int s = order[i];
        int n = 0;
        for (int m = 0; m < sent_n_mentions[s]; m++) { words[n++] = sent_mention[s][m]; }
        for (int m = 0; m < sent_fill[s]; m++) { words[n++] = filler_draw(w, sent_topic[s], r); }
        shuffle_ints(r, words, n);
        if (i > 0) { text_append(body, " "); }
        text_sentence(body, w, words, n, ".");
    }
    // title: the main topic's form among one or two words of its vocabulary
    words[0] = topic_form(w, d->topic[0], tform[0]);
    for (int i = 1; i < n_title; i++) {
        words[i] = w->topic_word[d->topic[0] * w->n_topic_words + rng_below(r, w->n_topic_words)];
    }
    shuffle_ints(r, words, n_title);
    text_clear(title);
    text_sentence(title, w, words, n_title, "");
    free(words);
}

// ----------------------------------------------------------------------------
// queries and relevance

typedef struct {
    int topic;
    uint64_t facets;     // two bits
} SynthQuery;

static int popcount64(uint64_t x) {
    int n = 0;
    for (; x != 0; x &= x - 1) { n++; }
    return n;
}

static int grade_of(const SynthQuery* q, const SynthDoc* d) {
    uint64_t covered = 0;
    for (int k = 0; k < 2; k++) {
        if (d->topic[k] == q->topic) { covered |= d->facets[k]; }
    }
    int c = popcount64(covered & q->facets);
    return c == 0 ? 0 : c + (d->topic[0] == q->topic);
}

// queries asking for distinct (topic, facet pair)s, each taken from a document so that
// every query has at least one document of grade 3
static void queries_draw(SynthQuery* qs, int n_queries, const SynthDoc* docs, int n_docs, const World* w, Rng* r) {
    int nf = w->n_facets;
    uint8_t* asked = (uint8_t*)callocCheck((size_t)w->n_topics * (size_t)nf * (size_t)nf, 1);
    long attempts = 0, max_attempts = 1000L * n_queries + 100000L;
    for (int i = 0; i < n_queries;) {
        if (attempts++ > max_attempts) {
            die("synthetic collection: found only %d distinct (topic, facet pair) queries of the %d asked "
                "after %ld draws; ask for fewer queries or more topics/facets", i, n_queries, max_attempts);
        }
        const SynthDoc* d = &docs[rng_below(r, n_docs)];
        int fs[MAX_DOC_FACETS], n = 0;
        for (int f = 0; f < nf; f++) { if (d->facets[0] >> f & 1) { fs[n++] = f; } }
        int a = rng_below(r, n);
        int b = (a + 1 + rng_below(r, n - 1)) % n;
        int lo = fs[a] < fs[b] ? fs[a] : fs[b], hi = fs[a] < fs[b] ? fs[b] : fs[a];
        size_t key = ((size_t)d->topic[0] * (size_t)nf + (size_t)lo) * (size_t)nf + (size_t)hi;
        if (asked[key]) { continue; }
        asked[key] = 1;
        qs[i].topic = d->topic[0];
        qs[i].facets = (1ull << lo) | (1ull << hi);
        i++;
    }
    free(asked);
}

static void query_render(Text* t, const SynthQuery* q, const World* w, Rng* r) {
    int words[3 + MAX_QUERY_FILLERS];
    int n = 0;
    words[n++] = topic_form(w, q->topic, rng_below(r, w->n_forms));
    for (int f = 0; f < w->n_facets; f++) {
        if (q->facets >> f & 1) { words[n++] = facet_form(w, f, rng_below(r, w->n_forms)); }
    }
    int n_fill = rng_below(r, MAX_QUERY_FILLERS + 1);
    for (int i = 0; i < n_fill; i++) { words[n++] = w->common_word[rng_below(r, QUERY_FILLER_RANKS)]; }
    shuffle_ints(r, words, n);
    text_clear(t);
    text_sentence(t, w, words, n, "?");
}

// ----------------------------------------------------------------------------
// files

// Every file is written as <name>.tmp and renamed when complete, corpus.jsonl last: a run
// that stops half-way never leaves a file that looks whole, and a corpus.jsonl present
// means the whole collection is (what a caller checks before generating it again).
static void tmp_path(char* out, size_t cap, const char* dir, const char* name, const char* suffix) {
    int n = snprintf(out, cap, "%s/%s%s", dir, name, suffix);
    if (n < 0 || (size_t)n >= cap) { die("synthetic collection: path too long: %s/%s", dir, name); }
}

static FILE* open_in(const char* dir, const char* name) {
    char path[4096];
    tmp_path(path, sizeof(path), dir, name, ".tmp");
    return fopenCheck(path, "wb");
}

static void close_in(FILE* fp, const char* dir, const char* name) {
    fcloseCheck(fp);
    char from[4096], to[4096];
    tmp_path(from, sizeof(from), dir, name, ".tmp");
    tmp_path(to, sizeof(to), dir, name, "");
    if (rename(from, to) != 0) { die("could not rename '%s' to '%s': %s", from, to, strerror(errno)); }
}

static void write_vocab(const char* dir, const World* w) {
    FILE* fp = open_in(dir, "vocab.txt");
    fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", fp);
    // every printable ASCII character but upper-case letters (the tokenizer lower-cases),
    // then letters and digits as continuations: any lower-case ASCII word can be spelled
    for (int c = '!'; c <= '~'; c++) {
        if (c < 'A' || c > 'Z') { fprintf(fp, "%c\n", c); }
    }
    for (int c = '0'; c <= 'z'; c++) {
        if ((c <= '9') || (c >= 'a')) { fprintf(fp, "##%c\n", c); }
    }
    for (int i = 0; i < strtab_count(&w->words); i++) { fprintf(fp, "%s\n", strtab_get(&w->words, i)); }
    close_in(fp, dir, "vocab.txt");
}

static void check_config(const SynthConfig* c) {
    if (c->n_docs < 1 || c->n_docs > 100000000) { die("synthetic collection: n_docs %d not in [1, 1e8]", c->n_docs); }
    if (c->n_queries < 2 || c->n_queries > 10000000) {
        die("synthetic collection: n_queries %d not in [2, 1e7] (train and test need one each)", c->n_queries);
    }
    if (c->test_percent < 1 || c->test_percent > 99) { die("synthetic collection: test_percent %d not in [1, 99]", c->test_percent); }
    if (c->n_topics < 2) { die("synthetic collection: n_topics %d, need 2 or more (documents have a secondary topic)", c->n_topics); }
    if (c->n_facets < MAX_DOC_FACETS || c->n_facets > 64) {
        die("synthetic collection: n_facets %d not in [%d, 64]", c->n_facets, MAX_DOC_FACETS);
    }
    if (c->n_forms < 1 || c->n_topic_words < 1 || c->n_common_words < QUERY_FILLER_RANKS) {
        die("synthetic collection: need n_forms >= 1, n_topic_words >= 1, n_common_words >= %d (got %d, %d, %d)",
            QUERY_FILLER_RANKS, c->n_forms, c->n_topic_words, c->n_common_words);
    }
    if (c->doc_min_words < 1 || c->doc_max_words < c->doc_min_words) {
        die("synthetic collection: document length range [%d, %d] is empty or not positive", c->doc_min_words, c->doc_max_words);
    }
    double n_words = (double)(c->n_topics + c->n_facets) * c->n_forms + (double)c->n_topics * c->n_topic_words + c->n_common_words;
    if (n_words > MAX_WORDS) { die("synthetic collection: %.0f words asked, at most %d", n_words, MAX_WORDS); }
    int n_test = (c->n_queries * c->test_percent + 50) / 100;
    if (n_test < 1 || n_test >= c->n_queries) {
        die("synthetic collection: %d%% of %d queries leaves a split empty", c->test_percent, c->n_queries);
    }
}

void synth_default_config(SynthConfig* cfg) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->seed = 42;
    cfg->n_docs = 2000;
    cfg->n_queries = 200;
    cfg->test_percent = 30;
    // Small enough for a BERT trained from random weights to learn in a minute on two
    // cores: it must learn even exact term matching from the relevance signal, and it does
    // so far faster with few concepts to match (4 topics) and short documents, in which a
    // query's concept is not lost among filler words. With 20 topics, 3 forms and 30..80
    // words (the first default), a 2-layer model did not rise above its untrained NDCG@10
    // in 4,000 steps; with 1 form (plain term matching) it did not either. Two forms keep
    // the vocabulary mismatch that BM25 cannot see through.
    cfg->n_topics = 4;
    cfg->n_facets = 12;
    cfg->n_forms = 2;
    cfg->n_topic_words = 10;
    cfg->n_common_words = 200;
    cfg->doc_min_words = 6;
    cfg->doc_max_words = 12;
}

void synth_write_collection(const char* dir, const SynthConfig* cfg) {
    check_config(cfg);
    Rng r = {cfg->seed};
    World w;
    world_build(&w, cfg, &r);
    // what documents and queries are about is drawn before any file is written, so a
    // config whose queries cannot be drawn leaves nothing behind
    SynthDoc* docs = (SynthDoc*)mallocCheck(sizeof(SynthDoc) * (size_t)cfg->n_docs);
    for (int i = 0; i < cfg->n_docs; i++) { doc_draw(&docs[i], &w, &r); }
    SynthQuery* qs = (SynthQuery*)mallocCheck(sizeof(SynthQuery) * (size_t)cfg->n_queries);
    queries_draw(qs, cfg->n_queries, docs, cfg->n_docs, &w, &r);

    makeDirsCheck(dir);
    char qrels_dir[4096];
    int len = snprintf(qrels_dir, sizeof(qrels_dir), "%s/qrels", dir);
    if (len < 0 || (size_t)len >= sizeof(qrels_dir)) { die("synthetic collection: path too long: %s", dir); }
    makeDirsCheck(qrels_dir);
    write_vocab(dir, &w);

    Text title = {0}, body = {0};
    FILE* fp = open_in(dir, "queries.jsonl");
    for (int i = 0; i < cfg->n_queries; i++) {
        query_render(&body, &qs[i], &w, &r);
        fprintf(fp, "{\"_id\": \"q%d\", \"text\": ", i);
        json_write_string(fp, body.s);
        fputs("}\n", fp);
    }
    close_in(fp, dir, "queries.jsonl");

    // the test split: a random n_test of the queries
    int n_test = (cfg->n_queries * cfg->test_percent + 50) / 100;
    int* order = (int*)mallocCheck(sizeof(int) * (size_t)cfg->n_queries);
    uint8_t* is_test = (uint8_t*)callocCheck((size_t)cfg->n_queries, 1);
    for (int i = 0; i < cfg->n_queries; i++) { order[i] = i; }
    shuffle_ints(&r, order, cfg->n_queries);
    for (int i = 0; i < n_test; i++) { is_test[order[i]] = 1; }
    FILE* split_fp[2] = {open_in(dir, "qrels/train.tsv"), open_in(dir, "qrels/test.tsv")};
    for (int k = 0; k < 2; k++) { fputs("query-id\tcorpus-id\tscore\n", split_fp[k]); }
    for (int q = 0; q < cfg->n_queries; q++) {
        for (int d = 0; d < cfg->n_docs; d++) {
            int g = grade_of(&qs[q], &docs[d]);
            if (g > 0) { fprintf(split_fp[is_test[q]], "q%d\td%d\t%d\n", q, d, g); }
        }
    }
    close_in(split_fp[0], dir, "qrels/train.tsv");
    close_in(split_fp[1], dir, "qrels/test.tsv");

    fp = open_in(dir, "corpus.jsonl");
    for (int i = 0; i < cfg->n_docs; i++) {
        int n_words = cfg->doc_min_words + rng_below(&r, cfg->doc_max_words - cfg->doc_min_words + 1);
        doc_render(&title, &body, &docs[i], &w, n_words, &r);
        fprintf(fp, "{\"_id\": \"d%d\", \"title\": ", i);
        json_write_string(fp, title.s);
        fputs(", \"text\": ", fp);
        json_write_string(fp, body.s);
        fputs("}\n", fp);
    }
    close_in(fp, dir, "corpus.jsonl");

    free(order);
    free(is_test);
    free(qs);
    free(docs);
    arrfree(title.s);
    arrfree(body.s);
    world_free(&w);
}
