/*
 * io/beir.c — streaming readers for BEIR corpus.jsonl, queries.jsonl and qrels/<split>.tsv
 * (what they accept, refuse and repair is listed in io/beir.h).
 */
#include <limits.h>
#include <unistd.h>
#include <stb/stb_ds.h>
#include "io/beir.h"
#include "io/json.h"

// removes the line end ("\n", "\r\n") in place; returns the new length
static size_t chomp(char* line, size_t len) {
    if (len > 0 && line[len - 1] == '\n') { len--; }
    if (len > 0 && line[len - 1] == '\r') { len--; }
    line[len] = '\0';
    return len;
}

static int is_blank(const char* s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t') { return 0; }
    }
    return 1;
}

// length (1..4) of the well-formed UTF-8 sequence at s[0..len), or 0 if there is none
// there (stray continuation byte, overlong form, surrogate, past U+10FFFF, cut short)
static int utf8_length(const unsigned char* s, size_t len) {
    unsigned char c = s[0];
    if (c < 0x80) { return 1; }
    int n;
    unsigned char lo = 0x80, hi = 0xBF; // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) { n = 2; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; if (c == 0xE0) { lo = 0xA0; } if (c == 0xED) { hi = 0x9F; } }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; if (c == 0xF0) { lo = 0x90; } if (c == 0xF4) { hi = 0x8F; } }
    else { return 0; }
    if ((size_t)n > len || s[1] < lo || s[1] > hi) { return 0; }
    for (int i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF) { return 0; }
    }
    return n;
}

static void arena_reserve(BeirTexts* t, size_t extra) {
    if (t->arena_len + extra <= t->arena_cap) { return; }
    size_t cap = t->arena_cap > 0 ? t->arena_cap : 1 << 16;
    while (cap < t->arena_len + extra) { cap *= 2; }
    t->arena = (char*)reallocCheck(t->arena, cap);
    t->arena_cap = cap;
}

// appends s[0..len) to the arena with every invalid UTF-8 byte turned into U+FFFD and
// every NUL dropped; returns how many bytes it replaced or dropped
static int64_t append_clean(BeirTexts* t, const char* s, size_t len) {
    if (len == 0) { return 0; } // the arena may not exist yet: NULL + 0 is undefined
    arena_reserve(t, 3 * len); // the worst case: every byte becomes a 3-byte U+FFFD
    const unsigned char* u = (const unsigned char*)s;
    char* out = t->arena + t->arena_len;
    int64_t replaced = 0;
    size_t i = 0;
    while (i < len) {
        if (u[i] == 0) { replaced++; i++; continue; }
        int n = utf8_length(u + i, len - i);
        if (n == 0) {
            memcpy(out, "\xEF\xBF\xBD", 3);
            out += 3;
            replaced++;
            i++;
        } else {
            memcpy(out, u + i, (size_t)n);
            out += n;
            i += (size_t)n;
        }
    }
    t->arena_len = (size_t)(out - t->arena);
    return replaced;
}

// a member that must be a string; NULL if absent (or JSON null and null_ok)
static const JsonValue* string_member(const JsonValue* obj, const char* key, int required, int null_ok,
                                      const char* path, int line_no) {
    const JsonValue* v = json_get(obj, key);
    if (v == NULL || (null_ok && v->type == JSON_NULL)) {
        if (required) { die("%s line %d: the object has no \"%s\" member", path, line_no, key); }
        return NULL;
    }
    if (v->type != JSON_STRING) {
        die("%s line %d: \"%s\" is a %s, expected a string", path, line_no, key, json_type_name(v->type));
    }
    return v;
}

static void load_texts(BeirTexts* t, const char* path, int with_title) {
    memset(t, 0, sizeof(*t));
    strtab_init(&t->ids);
    int* first_line = NULL;  // stb_ds array (n,): line of each item, to name both lines of a duplicate
    int first_replaced_line = 0;
    FILE* fp = fopenCheck(path, "rb");
    char* line = NULL;
    size_t line_cap = 0;
    ssize_t got;
    int line_no = 0;
    char err[256];
    while ((got = getline(&line, &line_cap, fp)) != -1) {
        if (line_no == INT_MAX) { die("%s: more than %d lines", path, INT_MAX); }
        line_no++;
        size_t len = chomp(line, (size_t)got);
        if (is_blank(line, len)) { continue; }
        JsonValue v;
        if (!json_parse(&v, line, len, err, sizeof(err))) {
            die("%s line %d: not valid JSON: %s", path, line_no, err);
        }
        if (v.type != JSON_OBJECT) {
            die("%s line %d: a JSON %s, expected an object", path, line_no, json_type_name(v.type));
        }
        const JsonValue* id = string_member(&v, "_id", 1, 0, path, line_no);
        const JsonValue* text = string_member(&v, "text", 1, 0, path, line_no);
        const JsonValue* title = with_title ? string_member(&v, "title", 0, 1, path, line_no) : NULL;
        if (id->len == 0) { die("%s line %d: empty \"_id\"", path, line_no); }
        if (strlen(id->str) != id->len) { die("%s line %d: \"_id\" contains a NUL character", path, line_no); }
        int added;
        int i = strtab_intern(&t->ids, id->str, &added);
        if (!added) {
            die("%s line %d: duplicate \"_id\" \"%s\", already used at line %d", path, line_no, id->str, first_line[i]);
        }
        arrput(first_line, line_no);
        arrput(t->text_start, t->arena_len);
        arrput(t->title_len, 0);
        int64_t replaced = 0;
        if (title != NULL && title->len > 0) {
            replaced += append_clean(t, title->str, title->len);
            size_t tl = t->arena_len - t->text_start[i];
            if (tl > INT_MAX) { die("%s line %d: title of %zu bytes, longer than this reader takes", path, line_no, tl); }
            t->title_len[i] = (int)tl;
            arena_reserve(t, 1);
            t->arena[t->arena_len++] = ' ';
        }
        replaced += append_clean(t, text->str, text->len);
        arena_reserve(t, 1);
        t->arena[t->arena_len++] = '\0';
        if (replaced > 0 && t->n_replaced == 0) { first_replaced_line = line_no; }
        t->n_replaced += replaced;
        t->n++;
        json_free(&v);
    }
    if (ferror(fp)) { die("%s: read error after line %d", path, line_no); }
    free(line);
    arrfree(first_line);
    fclose(fp);
    if (t->n_replaced > 0) {
        fprintf(stderr, "warning: %s: %lld bytes of invalid UTF-8 replaced by U+FFFD or NUL characters "
                "dropped, first at line %d\n", path, (long long)t->n_replaced, first_replaced_line);
    }
}

void beir_load_corpus(Corpus* corpus, const char* path) { load_texts(corpus, path, 1); }
void beir_load_queries(Queries* queries, const char* path) { load_texts(queries, path, 0); }

void beir_free_texts(BeirTexts* t) {
    strtab_free(&t->ids);
    free(t->arena);
    arrfree(t->text_start);
    arrfree(t->title_len);
    memset(t, 0, sizeof(*t));
}

// ----------------------------------------------------------------------------
// qrels

typedef struct {
    int query;
    int doc;
    int gain;
    int line;
} Judgment;

static int judgment_compare(const void* pa, const void* pb) {
    const Judgment* a = (const Judgment*)pa;
    const Judgment* b = (const Judgment*)pb;
    if (a->query != b->query) { return a->query < b->query ? -1 : 1; }
    if (a->doc != b->doc) { return a->doc < b->doc ? -1 : 1; }
    return (a->line > b->line) - (a->line < b->line);
}

// the score field: an optional sign and decimal digits, within int32
static int parse_gain(int* out, const char* s) {
    const char* p = s;
    if (*p == '-' || *p == '+') { p++; }
    if (*p == '\0') { return 0; }
    for (const char* c = p; *c; c++) {
        if (*c < '0' || *c > '9') { return 0; }
    }
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno != 0 || v < INT32_MIN || v > INT32_MAX) { return 0; }
    *out = (int)v;
    return 1;
}

void beir_load_qrels(Qrels* qrels, const char* path, const Corpus* corpus, const Queries* queries, int strict) {
    memset(qrels, 0, sizeof(*qrels));
    Judgment* js = NULL;   // stb_ds array
    int unknown_query_line = 0, unknown_doc_line = 0;
    char unknown_query_id[64] = "", unknown_doc_id[64] = "";
    FILE* fp = fopenCheck(path, "rb");
    char* line = NULL;
    size_t line_cap = 0;
    ssize_t got;
    int line_no = 0;
    while ((got = getline(&line, &line_cap, fp)) != -1) {
        if (line_no == INT_MAX) { die("%s: more than %d lines", path, INT_MAX); }
        line_no++;
        size_t len = chomp(line, (size_t)got);
        if (line_no == 1 && strcmp(line, "query-id\tcorpus-id\tscore") == 0) { continue; }
        if (is_blank(line, len)) { continue; }
        if (strlen(line) != len) { die("%s line %d: contains a NUL byte", path, line_no); }
        char* tab1 = strchr(line, '\t');
        char* tab2 = tab1 != NULL ? strchr(tab1 + 1, '\t') : NULL;
        if (tab2 == NULL || strchr(tab2 + 1, '\t') != NULL) {
            die("%s line %d: expected 3 tab-separated fields (query-id, corpus-id, score): \"%.80s\"", path, line_no, line);
        }
        *tab1 = '\0';
        *tab2 = '\0';
        const char* qid = line;
        const char* did = tab1 + 1;
        const char* score = tab2 + 1;
        if (*qid == '\0' || *did == '\0') { die("%s line %d: empty query or corpus id", path, line_no); }
        int gain;
        if (!parse_gain(&gain, score)) { die("%s line %d: score \"%.40s\" is not an integer (int32)", path, line_no, score); }
        int q = beir_index_of(queries, qid);
        int d = beir_index_of(corpus, did);
        if (q < 0) {
            if (qrels->n_unknown_query++ == 0) { unknown_query_line = line_no; snprintf(unknown_query_id, sizeof(unknown_query_id), "%s", qid); }
            continue;
        }
        if (d < 0) {
            if (qrels->n_unknown_doc++ == 0) { unknown_doc_line = line_no; snprintf(unknown_doc_id, sizeof(unknown_doc_id), "%s", did); }
            continue;
        }
        arrput(js, ((Judgment){q, d, gain, line_no}));
    }
    if (ferror(fp)) { die("%s: read error after line %d", path, line_no); }
    free(line);
    fclose(fp);
    int n = (int)arrlen(js);

    if (qrels->n_unknown_query > 0 || qrels->n_unknown_doc > 0) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s: %d lines name an unknown query id (first: line %d, \"%s\"), "
                 "%d an unknown corpus id (first: line %d, \"%s\")", path,
                 qrels->n_unknown_query, unknown_query_line, unknown_query_id,
                 qrels->n_unknown_doc, unknown_doc_line, unknown_doc_id);
        if (strict) { die("%s", msg); }
        fprintf(stderr, "warning: %s; those lines are left out\n", msg);
    }

    if (n > 0) { qsort(js, (size_t)n, sizeof(Judgment), judgment_compare); } // js is NULL when n = 0
    for (int i = 1; i < n; i++) {
        if (js[i].query == js[i - 1].query && js[i].doc == js[i - 1].doc) {
            die("%s line %d: query \"%s\" and document \"%s\" already judged at line %d", path, js[i].line,
                beir_id(queries, js[i].query), beir_id(corpus, js[i].doc), js[i - 1].line);
        }
    }
    qrels->n = n;
    qrels->n_queries = queries->n;
    qrels->query = (int*)mallocCheck(sizeof(int) * (size_t)n);
    qrels->doc = (int*)mallocCheck(sizeof(int) * (size_t)n);
    qrels->gain = (int*)mallocCheck(sizeof(int) * (size_t)n);
    qrels->query_start = (int*)callocCheck((size_t)queries->n + 1, sizeof(int));
    for (int i = 0; i < n; i++) {
        qrels->query[i] = js[i].query;
        qrels->doc[i] = js[i].doc;
        qrels->gain[i] = js[i].gain;
        qrels->query_start[js[i].query + 1]++;
    }
    for (int q = 0; q < queries->n; q++) { qrels->query_start[q + 1] += qrels->query_start[q]; }
    arrfree(js);
}

void beir_free_qrels(Qrels* q) {
    free(q->query);
    free(q->doc);
    free(q->gain);
    free(q->query_start);
    memset(q, 0, sizeof(*q));
}

int beir_qrels_splits(const char* names[3], const char* dir) {
    static const char* const SPLITS[3] = {"train", "dev", "test"};
    int count = 0;
    for (int i = 0; i < 3; i++) {
        char path[4096];
        int w = snprintf(path, sizeof(path), "%s/qrels/%s.tsv", dir, SPLITS[i]);
        if (w < 0 || (size_t)w >= sizeof(path)) { die("dataset path too long: %s", dir); }
        if (access(path, R_OK) == 0) { names[count++] = SPLITS[i]; }
    }
    return count;
}

// splitmix64's finalizer: every input bit affects every output bit
static uint64_t mix64(uint64_t x) {
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27; x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

int beir_query_is_eval(const char* query_id, uint64_t seed, double eval_frac) {
    if (!(eval_frac >= 0.0 && eval_frac <= 1.0)) { die("eval fraction %g is not in [0, 1]", eval_frac); }
    uint64_t h = 14695981039346656037ull; // FNV-1a 64 of the id
    for (const unsigned char* p = (const unsigned char*)query_id; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    h = mix64(h ^ mix64(seed + 0x9e3779b97f4a7c15ull));
    double u = (double)(h >> 11) * (1.0 / 9007199254740992.0); // 53 bits -> [0, 1)
    return u < eval_frac;
}
