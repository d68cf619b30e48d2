/*
 * test_beir.c — the BEIR readers on the real collections (counts from their README.md,
 * texts against Python's json module via dev/gen_beir_fixture.py), on a small hand-made
 * collection (titles, blank lines, CRLF, bad UTF-8, unknown qrels ids), on malformed
 * files that must be refused with the right line, and the eval split helper.
 * Run from the repository root (reads ../shared/data).
 */
#include <math.h>
#include "io/beir.h"
#include "test.h"

#define FIX "test/fixtures/beir"

static uint32_t fnv1a(const char* s, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) { h ^= (unsigned char)s[i]; h *= 16777619u; }
    return h;
}

// the texts of a loaded collection against the Python reference, line by line
static void check_texts(const char* fixture, const Corpus* c, const Queries* q) {
    FILE* fp = fopenCheck(fixture, "rb");
    char kind[4], id[64];
    size_t len;
    unsigned int hash;
    int nd = 0, nq = 0, bad = 0;
    while (fscanf(fp, "%3s %63s %zu %x", kind, id, &len, &hash) == 4) {
        const BeirTexts* t = kind[0] == 'd' ? c : q;
        int i = kind[0] == 'd' ? nd++ : nq++;
        const char* text = i < t->n ? beir_text(t, i) : "";
        int ok = i < t->n && strcmp(beir_id(t, i), id) == 0 && strlen(text) == len && fnv1a(text, len) == hash;
        if (!ok && bad++ < 3) { printf("%s: %s %d (id %s) differs from Python's reading\n", fixture, kind, i, id); }
    }
    fclose(fp);
    CHECK(bad == 0 && nd == c->n && nq == q->n, "%s: %d texts differ; %d/%d docs, %d/%d queries", fixture, bad, nd, c->n, nq, q->n);
}

static void test_real(const char* name, int want_docs, int want_queries, int want_judged, int want_queries_judged,
                      const int want_gain_hist[5]) {
    char path[256];
    Corpus c;
    Queries q;
    Qrels r;
    snprintf(path, sizeof(path), "../shared/data/%s/corpus.jsonl", name);
    beir_load_corpus(&c, path);
    snprintf(path, sizeof(path), "../shared/data/%s/queries.jsonl", name);
    beir_load_queries(&q, path);
    snprintf(path, sizeof(path), "../shared/data/%s/qrels/test.tsv", name);
    beir_load_qrels(&r, path, &c, &q, 1);
    CHECK(c.n == want_docs && q.n == want_queries && r.n == want_judged, "%s: %d docs, %d queries, %d judgments; README: %d, %d, %d",
          name, c.n, q.n, r.n, want_docs, want_queries, want_judged);
    CHECK(c.n_replaced == 0 && q.n_replaced == 0, "%s: bytes replaced in clean UTF-8", name);
    int hist[5] = {0}, judged = 0, sorted = 1;
    for (int i = 0; i < r.n; i++) {
        if (r.gain[i] >= 0 && r.gain[i] < 5) { hist[r.gain[i]]++; }
        if (i > 0 && (r.query[i] < r.query[i - 1] || (r.query[i] == r.query[i - 1] && r.doc[i] <= r.doc[i - 1]))) { sorted = 0; }
    }
    for (int k = 0; k < q.n; k++) {
        if (r.query_start[k + 1] > r.query_start[k]) { judged++; }
        for (int i = r.query_start[k]; i < r.query_start[k + 1]; i++) { if (r.query[i] != k) { sorted = 0; } }
    }
    CHECK(sorted && r.query_start[q.n] == r.n, "%s: judgments not grouped by query / sorted by document", name);
    CHECK(judged == want_queries_judged, "%s: %d queries with a judgment, README %d", name, judged, want_queries_judged);
    CHECK(memcmp(hist, want_gain_hist, sizeof(hist)) == 0, "%s: gain histogram %d %d %d %d %d differs from README",
          name, hist[0], hist[1], hist[2], hist[3], hist[4]);
    snprintf(path, sizeof(path), FIX "/%s_texts.tsv", name);
    check_texts(path, &c, &q);
    const char* splits[3];
    snprintf(path, sizeof(path), "../shared/data/%s", name);
    int ns = beir_qrels_splits(splits, path);
    CHECK(ns == 1 && strcmp(splits[0], "test") == 0, "%s: splits found %d, expected test only", name, ns);
    beir_free_texts(&c);
    beir_free_texts(&q);
    beir_free_qrels(&r);
}

static void test_small(void) {
    Corpus c;
    Queries q;
    Qrels r;
    beir_load_corpus(&c, FIX "/corpus.jsonl");
    beir_load_queries(&q, FIX "/queries.jsonl");
    CHECK(c.n == 5 && q.n == 3, "small collection: %d docs, %d queries, expected 5 and 3", c.n, q.n);
    const char* want_text[5] = {
        "Title One Body one.", "No title here.", "Null title.", "Empty title.",
        // title: 0xFF -> U+FFFD; text: \u0000 dropped (as HF's BERT normaliser drops it), C3
        // before '(' -> U+FFFD, the encoded surrogate ED A0 80 -> three U+FFFD (one per byte),
        // the euro sign kept
        "Bad \xEF\xBF\xBD byte nul  and \xEF\xBF\xBD( and \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD end \xE2\x82\xAC",
    };
    const char* want_body[5] = {"Body one.", "No title here.", "Null title.", "Empty title.", NULL};
    int want_title_len[5] = {9, 0, 0, 0, 12}; // bytes after repair: "Bad " U+FFFD " byte"
    for (int i = 0; i < c.n && i < 5; i++) {
        char id[8];
        snprintf(id, sizeof(id), "d%d", i + 1);
        CHECK(strcmp(beir_id(&c, i), id) == 0 && beir_index_of(&c, id) == i, "doc %d: id %s", i, beir_id(&c, i));
        CHECK(strcmp(beir_text(&c, i), want_text[i]) == 0, "doc %d: text '%s'", i, beir_text(&c, i));
        CHECK(c.title_len[i] == want_title_len[i], "doc %d: title length %d, expected %d", i, c.title_len[i], want_title_len[i]);
        if (want_body[i] != NULL) { CHECK(strcmp(beir_body(&c, i), want_body[i]) == 0, "doc %d: body '%s'", i, beir_body(&c, i)); }
    }
    CHECK(c.n_replaced == 6, "%lld bytes replaced, expected 6 (1 in the title, 5 in the text)", (long long)c.n_replaced);
    for (int i = 0; i < c.n; i++) {
        size_t len = strlen(beir_text(&c, i));
        CHECK(beir_text_len(&c, i) == len, "doc %d: beir_text_len %zu, the text has %zu bytes", i, beir_text_len(&c, i), len);
    }
    CHECK(beir_index_of(&c, "d6") == -1 && beir_index_of(&q, "q2") == 1, "lookups of absent / present ids");
    CHECK(strcmp(beir_text(&q, 1), "second query") == 0 && strcmp(beir_text(&q, 2), "third query") == 0,
          "query texts (the last line has no newline)");

    beir_load_qrels(&r, FIX "/qrels/test.tsv", &c, &q, 0);
    // kept: (q1,d1,2) (q1,d2,+3) (q1,d3,0) (q2,d2,1) (q2,d5,-1); qX and dX are unknown
    int wq[5] = {0, 0, 0, 1, 1}, wd[5] = {0, 1, 2, 1, 4}, wg[5] = {2, 3, 0, 1, -1}, ws[4] = {0, 3, 5, 5};
    CHECK(r.n == 5 && r.n_unknown_query == 1 && r.n_unknown_doc == 1, "qrels: %d kept, %d unknown query, %d unknown doc",
          r.n, r.n_unknown_query, r.n_unknown_doc);
    if (r.n == 5) {
        CHECK(memcmp(r.query, wq, sizeof(wq)) == 0 && memcmp(r.doc, wd, sizeof(wd)) == 0 && memcmp(r.gain, wg, sizeof(wg)) == 0 &&
              memcmp(r.query_start, ws, sizeof(ws)) == 0, "qrels content or order differs");
    }
    beir_free_qrels(&r);

    const char* splits[3];
    int ns = beir_qrels_splits(splits, FIX);
    CHECK(ns == 2 && strcmp(splits[0], "train") == 0 && strcmp(splits[1], "test") == 0, "fixture splits: %d found", ns);
    beir_free_texts(&c);
    beir_free_texts(&q);
}

// entry points for the child processes
static void load_corpus_file(const void* path) { Corpus c; beir_load_corpus(&c, path); }
static void load_qrels_file(const void* path) {
    Corpus c;
    Queries q;
    Qrels r;
    beir_load_corpus(&c, FIX "/corpus.jsonl");
    beir_load_queries(&q, FIX "/queries.jsonl");
    // strict only for the file with unknown ids, so the others fail for their own reason
    beir_load_qrels(&r, path, &c, &q, strstr(path, "qrels/test.tsv") != NULL);
}

static void test_refusals(void) {
    struct { void (*fn)(const void*); const char* file; const char* expect[2]; } cases[] = {
        {load_corpus_file, "bad/bad_json.jsonl", {"line 3: not valid JSON", NULL}},
        {load_corpus_file, "bad/not_object.jsonl", {"line 2: a JSON array", NULL}},
        {load_corpus_file, "bad/missing_id.jsonl", {"line 2: the object has no \"_id\"", NULL}},
        {load_corpus_file, "bad/missing_text.jsonl", {"line 3: the object has no \"text\"", NULL}},
        {load_corpus_file, "bad/id_not_string.jsonl", {"line 1: \"_id\" is a number", NULL}},
        {load_corpus_file, "bad/text_not_string.jsonl", {"line 2: \"text\" is a null", NULL}},
        {load_corpus_file, "bad/title_not_string.jsonl", {"line 2: \"title\" is a number", NULL}},
        {load_corpus_file, "bad/empty_id.jsonl", {"line 2: empty \"_id\"", NULL}},
        {load_corpus_file, "bad/dup_id.jsonl", {"line 4: duplicate \"_id\" \"b\"", "line 2"}},
        {load_qrels_file, "bad/qrels_fields.tsv", {"line 3: expected 3 tab-separated fields", NULL}},
        {load_qrels_file, "bad/qrels_score.tsv", {"line 1: score \"1.5\" is not an integer", NULL}},
        {load_qrels_file, "bad/qrels_dup.tsv", {"line 4: query \"q1\" and document \"d1\" already judged", "line 2"}},
        {load_qrels_file, "qrels/test.tsv", {"1 lines name an unknown query id (first: line 4, \"qX\")", "1 an unknown corpus id (first: line 6, \"dX\")"}},
        {load_corpus_file, "no_such_file.jsonl", {"could not open", NULL}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[256], err[2048];
        snprintf(path, sizeof(path), FIX "/%s", cases[i].file);
        int status = run_in_child(cases[i].fn, path, err, sizeof(err));
        int ok = status == 1 && strstr(err, path) != NULL && strstr(err, cases[i].expect[0]) != NULL &&
                 (cases[i].expect[1] == NULL || strstr(err, cases[i].expect[1]) != NULL);
        CHECK(ok, "%s: exit %d, stderr '%s'", cases[i].file, status, err);
    }
}

static void test_eval_split(void) {
    // statistical properties only: the exact split is the hash's business
    const int n = 20000;
    const double frac = 0.3;
    int in_a = 0, in_b = 0, in_both = 0, nested = 1, ends = 1;
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "query-%d", i);
        int a = beir_query_is_eval(id, 1, frac);
        int b = beir_query_is_eval(id, 2, frac);
        in_a += a;
        in_b += b;
        in_both += a && b;
        if (a && !beir_query_is_eval(id, 1, 0.5)) { nested = 0; } // a larger fraction only adds queries
        if (beir_query_is_eval(id, 1, 0.0) || !beir_query_is_eval(id, 1, 1.0)) { ends = 0; }
        if (beir_query_is_eval(id, 1, frac) != a) { nested = 0; }  // the same answer every time
    }
    // 5 standard deviations of a binomial: a correct hash fails this once in ~2 million runs
    double sd = sqrt(n * frac * (1 - frac));
    CHECK(fabs(in_a - n * frac) < 5 * sd && fabs(in_b - n * frac) < 5 * sd, "eval fractions %d, %d of %d, expected %.0f +- %.0f",
          in_a, in_b, n, n * frac, 5 * sd);
    // two seeds should split independently: overlap ~ n * frac^2
    double sd2 = sqrt(n * frac * frac * (1 - frac * frac));
    CHECK(fabs(in_both - n * frac * frac) < 5 * sd2, "seeds 1 and 2 share %d eval queries, expected %.0f +- %.0f",
          in_both, n * frac * frac, 5 * sd2);
    CHECK(nested && ends, "eval split not nested in the fraction, or wrong at 0 / 1");
}

static void write_text(const char* path, const char* text) {
    FILE* fp = fopenCheck(path, "wb");
    fputs(text, fp);
    fcloseCheck(fp);
}

// empty inputs: a first document with an empty text (before the arena exists) and a qrels
// file with no judgment line; the sanitizer pass (make test-san) once stopped on NULL + 0
// and on NULL given to qsort
static void test_empty(void) {
    char dir[] = "/tmp/test_beir_XXXXXX";
    if (mkdtemp(dir) == NULL) { die("mkdtemp failed"); }
    char corpus[64], queries[64], qrels[64];
    snprintf(corpus, sizeof(corpus), "%s/corpus.jsonl", dir);
    snprintf(queries, sizeof(queries), "%s/queries.jsonl", dir);
    snprintf(qrels, sizeof(qrels), "%s/test.tsv", dir);
    write_text(corpus, "{\"_id\": \"d1\", \"text\": \"\"}\n{\"_id\": \"d2\", \"text\": \"two\"}\n");
    write_text(queries, "{\"_id\": \"q1\", \"text\": \"one\"}\n");
    write_text(qrels, "query-id\tcorpus-id\tscore\n");
    Corpus c;
    Queries q;
    Qrels r;
    beir_load_corpus(&c, corpus);
    beir_load_queries(&q, queries);
    beir_load_qrels(&r, qrels, &c, &q, 1);
    CHECK(c.n == 2 && strcmp(beir_text(&c, 0), "") == 0 && strcmp(beir_text(&c, 1), "two") == 0,
          "empty first text: %d docs, '%s', '%s'", c.n, c.n > 0 ? beir_text(&c, 0) : "", c.n > 1 ? beir_text(&c, 1) : "");
    CHECK(r.n == 0 && r.query_start[0] == 0 && r.query_start[1] == 0, "qrels without judgments: %d kept", r.n);
    beir_free_qrels(&r);
    beir_free_texts(&c);
    beir_free_texts(&q);
    unlink(corpus);
    unlink(queries);
    unlink(qrels);
    rmdir(dir);
}

int main(void) {
    const int cranfield_gains[5] = {0, 363, 734, 387, 128};
    const int cisi_gains[5] = {0, 3114, 0, 0, 0};
    test_real("cranfield", 1400, 225, 1612, 225, cranfield_gains);
    test_real("cisi", 1460, 112, 3114, 76, cisi_gains);
    test_small();
    test_empty();
    test_refusals();
    test_eval_split();
    return test_summary("test_beir");
}
