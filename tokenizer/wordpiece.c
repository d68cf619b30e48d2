/*
 * tokenizer/wordpiece.c — BERT's WordPiece tokenizer (see wordpiece.h for the pipeline).
 */
#include "tokenizer/wordpiece.h"

#include <sys/stat.h>

#include <stb/stb_ds.h>
#include "io/json.h"
#include "tokenizer/unicode_tables.h"
#include "common/utils.h"

// ----------------------------------------------------------------------------
// Unicode look-ups

static uint32_t range_value(const UnicodeRange* r, int n, uint32_t c) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < r[mid].first) { hi = mid - 1; }
        else if (c > r[mid].last) { lo = mid + 1; }
        else { return r[mid].value; }
    }
    return 0;
}

static uint32_t char_class(uint32_t c) {
    if (c < 128) { return unicode_ascii_class[c]; }
    return range_value(unicode_class_ranges, (int)(sizeof(unicode_class_ranges) / sizeof(UnicodeRange)), c);
}

static uint32_t combining_class(uint32_t c) {
    if (c < 0x300) { return 0; }  // nothing below the combining diacritics block combines
    return range_value(unicode_ccc_ranges, (int)(sizeof(unicode_ccc_ranges) / sizeof(UnicodeRange)), c);
}

static const UnicodePair* find_pair(const UnicodePair* p, int n, uint32_t c) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < p[mid].cp) { hi = mid - 1; }
        else if (c > p[mid].cp) { lo = mid + 1; }
        else { return &p[mid]; }
    }
    return NULL;
}

// full canonical decomposition of c into out (at most 4 code points); returns the count
static int decompose(uint32_t* out, uint32_t c) {
    // Hangul syllables decompose by formula (Unicode 3.12) into 2 or 3 jamo
    const uint32_t s_base = 0xAC00, l_base = 0x1100, v_base = 0x1161, t_base = 0x11A7;
    const uint32_t t_count = 28, n_count = 21 * 28, s_count = 19 * 21 * 28;
    if (c >= s_base && c < s_base + s_count) {
        uint32_t s = c - s_base;
        out[0] = l_base + s / n_count;
        out[1] = v_base + (s % n_count) / t_count;
        if (s % t_count == 0) { return 2; }
        out[2] = t_base + s % t_count;
        return 3;
    }
    if (c < 0xC0) { out[0] = c; return 1; }  // nothing below U+00C0 decomposes
    const UnicodePair* p = find_pair(unicode_decompositions, (int)(sizeof(unicode_decompositions) / sizeof(UnicodePair)), c);
    if (p == NULL) { out[0] = c; return 1; }
    int n = decompose(out, p->a);  // only the first code point of a step decomposes further
    if (p->b != 0) { out[n++] = p->b; }
    return n;
}

// lower case of c into out (1 or 2 code points); returns the count
static int lower_case(uint32_t* out, uint32_t c) {
    if (c < 128) { out[0] = (c >= 'A' && c <= 'Z') ? c + 32 : c; return 1; }
    const UnicodePair* p = find_pair(unicode_lowercase_pairs, (int)(sizeof(unicode_lowercase_pairs) / sizeof(UnicodePair)), c);
    if (p != NULL) { out[0] = p->a; out[1] = p->b; return 2; }
    const UnicodeCaseRun* r = unicode_lowercase_runs;
    int lo = 0, hi = (int)(sizeof(unicode_lowercase_runs) / sizeof(UnicodeCaseRun)) - 1;
    out[0] = c;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < r[mid].first) { hi = mid - 1; }
        else if (c > r[mid].last) { lo = mid + 1; }
        else {
            if ((c - r[mid].first) % r[mid].stride == 0) { out[0] = (uint32_t)((int32_t)c + r[mid].delta); }
            break;
        }
    }
    return 1;
}

// reads one character of s[0..end); returns its length in bytes. A byte that does not
// begin a well-formed sequence (wordpiece.h) gives U+FFFD and a length of 1.
static int utf8_decode(uint32_t* cp, const unsigned char* s, const unsigned char* end) {
    unsigned char b = s[0];
    if (b < 0x80) { *cp = b; return 1; }
    int n;
    uint32_t c;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b >= 0xC2 && b <= 0xDF) { n = 2; c = b & 0x1F; }
    else if (b >= 0xE0 && b <= 0xEF) {
        n = 3; c = b & 0x0F;
        if (b == 0xE0) { lo = 0xA0; }       // overlong below U+0800
        if (b == 0xED) { hi = 0x9F; }       // U+D800..U+DFFF are surrogates, not characters
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4; c = b & 0x07;
        if (b == 0xF0) { lo = 0x90; }       // overlong below U+10000
        if (b == 0xF4) { hi = 0x8F; }       // above U+10FFFF
    } else { *cp = 0xFFFD; return 1; }
    if (end - s < n) { *cp = 0xFFFD; return 1; }
    for (int i = 1; i < n; i++) {
        unsigned char lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xBF;
        if (s[i] < lo_i || s[i] > hi_i) { *cp = 0xFFFD; return 1; }
        c = (c << 6) | (s[i] & 0x3F);
    }
    *cp = c;
    return n;
}

static int utf8_encode(char* out, uint32_t c) {
    if (c < 0x80) { out[0] = (char)c; return 1; }
    if (c < 0x800) { out[0] = (char)(0xC0 | (c >> 6)); out[1] = (char)(0x80 | (c & 0x3F)); return 2; }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12)); out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18)); out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F)); out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

// ----------------------------------------------------------------------------
// normaliser: one piece of raw text -> code points

typedef struct {
    uint32_t* cps;   // stb_ds array: the normalised text
    int run_start;   // where the current run of combining characters (ccc > 0) begins
} Normalized;

static int nz_len(const Normalized* nz) { return (int)arrlen(nz->cps); }

static void push_at(Normalized* nz, int pos, const uint32_t* c, int n) {
    arrinsn(nz->cps, pos, n);
    memcpy(nz->cps + pos, c, (size_t)n * sizeof(uint32_t));
}

// appends one character of the decomposed text, lower-cased if asked. NFD also puts each
// run of combining characters in the order of their combining classes (a stable sort);
// marks are dropped, but a surviving combining character still moves back past the
// survivors of its run whose class is higher.
static void push_decomposed(Normalized* nz, const Tokenizer* tok, uint32_t c) {
    uint32_t ccc = combining_class(c);
    uint32_t out[2];
    int n = tok->lowercase ? lower_case(out, c) : (out[0] = c, 1);
    if (ccc == 0) {
        push_at(nz, nz_len(nz), out, n);
        nz->run_start = nz_len(nz);
        return;
    }
    int pos = nz_len(nz);
    while (pos > nz->run_start && combining_class(nz->cps[pos - 1]) > ccc) { pos--; }
    push_at(nz, pos, out, n);
}

static void normalize(Normalized* nz, const Tokenizer* tok, const char* text, const char* end) {
    arrsetlen(nz->cps, 0);
    nz->run_start = 0;
    const unsigned char* s = (const unsigned char*)text;
    const unsigned char* e = (const unsigned char*)end;
    const uint32_t space = ' ';
    while (s < e) {
        uint32_t c;
        s += utf8_decode(&c, s, e);
        uint32_t cls = char_class(c);
        if (tok->clean_text) {
            if (cls & UC_DROP) { continue; }
            if (cls & UC_SPACE) { c = ' '; cls = char_class(c); }
        }
        int chinese = tok->split_chinese && (cls & UC_CHINESE);
        if (chinese) { push_at(nz, nz_len(nz), &space, 1); nz->run_start = nz_len(nz); }
        if (tok->strip_accents) {
            uint32_t parts[4];
            int n = decompose(parts, c);
            for (int i = 0; i < n; i++) {
                if (char_class(parts[i]) & UC_MARK) {
                    // a dropped mark of class 0 still ends the run it would have stopped
                    if (combining_class(parts[i]) == 0) { nz->run_start = nz_len(nz); }
                    continue;
                }
                push_decomposed(nz, tok, parts[i]);
            }
        } else {
            // without NFD there is no reordering: only lower-casing, if any
            uint32_t out[2];
            int n = tok->lowercase ? lower_case(out, c) : (out[0] = c, 1);
            push_at(nz, nz_len(nz), out, n);
        }
        if (chinese) { push_at(nz, nz_len(nz), &space, 1); nz->run_start = nz_len(nz); }
    }
}

// ----------------------------------------------------------------------------
// words: added tokens, then normalised pieces split on whitespace and punctuation

// receives each word in order: its code points, or (NULL, 0, id) for an added token
typedef void (*WordSink)(void* ctx, const uint32_t* word, int n, int added_index);

static void split_piece(const Normalized* nz, WordSink sink, void* ctx) {
    int start = 0;
    for (int i = 0; i < nz_len(nz); i++) {
        uint32_t cls = char_class(nz->cps[i]);
        if (cls & (UC_WHITESPACE | UC_PUNCT)) {
            if (i > start) { sink(ctx, nz->cps + start, i - start, -1); }
            if (cls & UC_PUNCT) { sink(ctx, nz->cps + i, 1, -1); }
            start = i + 1;
        }
    }
    if (nz_len(nz) > start) { sink(ctx, nz->cps + start, nz_len(nz) - start, -1); }
}

// index of the longest added token that starts at s and ends by end, or -1
static int match_added(const Tokenizer* tok, const char* s, const char* end) {
    int best = -1;
    size_t best_len = 0;
    for (int i = 0; i < tok->n_added; i++) {
        size_t len = strlen(tok->added_text[i]);
        if (len > best_len && len <= (size_t)(end - s) && memcmp(s, tok->added_text[i], len) == 0) { best = i; best_len = len; }
    }
    return best;
}

static void split_words(const Tokenizer* tok, const char* text, size_t len, WordSink sink, void* ctx) {
    Normalized nz = {0};
    const char* end = text + len;
    const char* piece = text;
    for (const char* s = text;; s++) {
        int added = -1;
        if (s < end && tok->added_first_byte[(unsigned char)*s]) { added = match_added(tok, s, end); }
        if (added < 0 && s < end) { continue; }
        if (s > piece) {
            normalize(&nz, tok, piece, s);
            split_piece(&nz, sink, ctx);
        }
        if (added < 0) { break; }  // end of text
        sink(ctx, NULL, 0, added);
        s += strlen(tok->added_text[added]) - 1;
        piece = s + 1;
    }
    arrfree(nz.cps);
}

// ----------------------------------------------------------------------------
// vocabulary hash table

static uint32_t hash_bytes(uint32_t h, const char* s, int len) {
    for (int i = 0; i < len; i++) { h = (h ^ (unsigned char)s[i]) * 16777619u; }  // FNV-1a
    return h;
}

// id of prefix + s[0..len) (prefix only if continuation), or -1
static int lookup(const Tokenizer* tok, const char* s, int len, int continuation) {
    uint32_t h = 2166136261u;
    int plen = continuation ? tok->prefix_len : 0;
    h = hash_bytes(h, tok->prefix, plen);
    h = hash_bytes(h, s, len);
    for (uint32_t slot = h & (tok->n_slots - 1);; slot = (slot + 1) & (tok->n_slots - 1)) {
        int id = tok->slots[slot] - 1;
        if (id < 0) { return -1; }
        const char* t = tok->pool + tok->token_offset[id];
        if (tok->token_len[id] == plen + len && memcmp(t, tok->prefix, (size_t)plen) == 0
            && memcmp(t + plen, s, (size_t)len) == 0) {
            return id;
        }
    }
}

int tokenizer_token_id(const Tokenizer* tok, const char* token) {
    return lookup(tok, token, (int)strlen(token), 0);
}

const char* tokenizer_token(const Tokenizer* tok, int id) {
    if (id < 0 || id >= tok->vocab_size) { die("token id %d is outside the vocabulary of %d", id, tok->vocab_size); }
    return tok->pool + tok->token_offset[id];
}

// ----------------------------------------------------------------------------
// encoding

typedef struct {
    const Tokenizer* tok;
    int* ids;
    int max_ids;
    int count;
} IdSink;

static void emit_id(IdSink* out, int id) {
    if (out->count < out->max_ids) { out->ids[out->count] = id; }
    out->count++;
}

// greedy longest-match-first subwords of one word
static void wordpiece(void* ctx, const uint32_t* word, int n, int added_index) {
    IdSink* out = (IdSink*)ctx;
    const Tokenizer* tok = out->tok;
    if (word == NULL) { emit_id(out, tok->added_ids[added_index]); return; }
    if (n > tok->max_word_chars) { emit_id(out, tok->unk_id); return; }
    char bytes[4 * TOKENIZER_MAX_WORD_CHARS];
    int offset[TOKENIZER_MAX_WORD_CHARS + 1];  // (n+1,) byte offset of each character
    offset[0] = 0;
    for (int i = 0; i < n; i++) { offset[i + 1] = offset[i] + utf8_encode(bytes + offset[i], word[i]); }
    int first = out->count;
    int start = 0;
    while (start < n) {
        int end = n;
        // no piece is longer than the longest token
        while (end > start && offset[end] - offset[start] > tok->max_token_len) { end--; }
        int id = -1;
        for (; end > start; end--) {
            id = lookup(tok, bytes + offset[start], offset[end] - offset[start], start > 0);
            if (id >= 0) { break; }
        }
        if (id < 0) {
            out->count = first;  // the whole word, not just the rest, becomes [UNK]
            emit_id(out, tok->unk_id);
            return;
        }
        emit_id(out, id);
        start = end;
    }
}

int tokenizer_encode(const Tokenizer* tok, int* ids, int max_ids, const char* text, size_t len) {
    IdSink out = {tok, ids, max_ids, 0};
    split_words(tok, text, len, wordpiece, &out);
    return out.count;
}

int tokenizer_encode_pair(const Tokenizer* tok, int* ids, int* types, int max_len,
                          const char* a, size_t a_len, const char* b, size_t b_len) {
    if (max_len < 3) { die("tokenizer_encode_pair: max_len %d leaves no room for [CLS] and two [SEP]", max_len); }
    int room = max_len - 3;
    // a goes straight to its place; b is parked in types, which is rewritten at the end,
    // so that no pair needs an allocation
    int na = tokenizer_encode(tok, ids + 1, room, a, a_len);
    int nb = tokenizer_encode(tok, types, room, b, b_len);
    int keep_a = na, keep_b = nb;
    if (na + nb > room) {
        int shorter = na < nb ? na : nb;
        int longer_keep = room - shorter;
        int shorter_keep = shorter;
        if (shorter > room - shorter) {  // the shorter one alone takes over half: split evenly
            shorter_keep = room / 2;
            longer_keep = room / 2 + room % 2;
        }
        // the reference calls a the shorter one when they tie
        if (na <= nb) { keep_a = shorter_keep; keep_b = longer_keep; }
        else { keep_a = longer_keep; keep_b = shorter_keep; }
    }
    int len = 0;
    ids[len++] = tok->cls_id;
    len += keep_a;
    ids[len++] = tok->sep_id;
    memcpy(ids + len, types, (size_t)keep_b * sizeof(int));
    len += keep_b;
    ids[len++] = tok->sep_id;
    for (int i = 0; i < len; i++) { types[i] = i < keep_a + 2 ? 0 : 1; }
    return len;
}

int tokenizer_encode_split_pair(const Tokenizer* tok, int* ids, int* types, int max_len,
                                const char* a, size_t a_len, const char* b, size_t b_len) {
    if (max_len < 4) { die("tokenizer_encode_split_pair: max_len %d leaves no room for two [CLS] and two [SEP]", max_len); }
    int len = tokenizer_encode_pair(tok, ids, types, max_len - 1, a, a_len, b, b_len);
    int b0 = 0;
    while (b0 < len && types[b0] == 0) { b0++; }
    memmove(ids + b0 + 1, ids + b0, (size_t)(len - b0) * sizeof(int));
    memmove(types + b0 + 1, types + b0, (size_t)(len - b0) * sizeof(int));
    ids[b0] = tok->cls_id;
    types[b0] = 1;
    return len + 1;
}

// ----------------------------------------------------------------------------
// pre-tokenized text, for inspection

typedef struct {
    const Tokenizer* tok;
    char* out;
    int cap;
    int len;
} TextSink;

static void put_bytes(TextSink* t, const char* s, int n) {
    for (int i = 0; i < n; i++, t->len++) {
        if (t->len < t->cap - 1) { t->out[t->len] = s[i]; }
    }
}

static void put_word(void* ctx, const uint32_t* word, int n, int added_index) {
    TextSink* t = (TextSink*)ctx;
    if (word == NULL) {
        const char* s = t->tok->added_text[added_index];
        put_bytes(t, s, (int)strlen(s));
    }
    for (int i = 0; i < n; i++) {
        char buf[4];
        put_bytes(t, buf, utf8_encode(buf, word[i]));
    }
    put_bytes(t, " ", 1);
}

int tokenizer_pretokenize(const Tokenizer* tok, char* out, int out_cap, const char* text, size_t len) {
    TextSink t = {tok, out, out_cap, 0};
    split_words(tok, text, len, put_word, &t);
    if (out_cap > 0) { out[t.len < out_cap - 1 ? t.len : out_cap - 1] = '\0'; }
    return t.len;
}

// ----------------------------------------------------------------------------
// loading

// adds token text[0..len) as the next id; dies on a duplicate, naming where it came from
static void add_token(Tokenizer* tok, int id, const char* text, int len, const char* path, int line) {
    uint32_t h = hash_bytes(2166136261u, text, len);
    uint32_t slot = h & (tok->n_slots - 1);
    while (tok->slots[slot] != 0) {
        int other = tok->slots[slot] - 1;
        if (tok->token_len[other] == len && memcmp(tok->pool + tok->token_offset[other], text, (size_t)len) == 0) {
            if (line > 0) { die("%s:%d: duplicate token '%s' (first at line %d)", path, line, text, other + 1); }
            die("%s: duplicate token '%s' (ids %d and %d)", path, text, other, id);
        }
        slot = (slot + 1) & (tok->n_slots - 1);
    }
    tok->slots[slot] = id + 1;
    if (len > tok->max_token_len) { tok->max_token_len = len; }
}

static void alloc_vocab(Tokenizer* tok, int n, size_t pool_bytes) {
    tok->vocab_size = n;
    tok->pool = (char*)mallocCheck(pool_bytes);
    tok->token_offset = (int*)mallocCheck((size_t)n * sizeof(int));
    tok->token_len = (int*)mallocCheck((size_t)n * sizeof(int));
    tok->n_slots = 1024;
    while (tok->n_slots < 2u * (uint32_t)n) { tok->n_slots *= 2; }
    tok->slots = (int*)callocCheck(tok->n_slots, sizeof(int));
}

// vocab.txt: one token a line, id = line number - 1
static void load_vocab_txt(Tokenizer* tok, const char* path) {
    size_t size;
    char* text = readFileCheck(path, &size);
    int n = 0;
    for (size_t i = 0; i < size; i++) { n += text[i] == '\n'; }
    if (size > 0 && text[size - 1] != '\n') { n++; }  // last line without a newline
    if (n == 0) { die("%s: empty vocabulary", path); }
    alloc_vocab(tok, n, size + 1);
    size_t pos = 0;
    for (int id = 0; id < n; id++) {
        size_t start = pos;
        while (pos < size && text[pos] != '\n') { pos++; }
        int len = (int)(pos - start);
        // the reference keeps everything on the line but the newline, '\r' included
        if (memchr(text + start, '\0', (size_t)len) != NULL) { die("%s:%d: NUL byte in token", path, id + 1); }
        memcpy(tok->pool + start, text + start, (size_t)len);
        tok->pool[start + len] = '\0';
        tok->token_offset[id] = (int)start;
        tok->token_len[id] = len;
        add_token(tok, id, tok->pool + start, len, path, id + 1);
        pos++;
    }
    free(text);
}

static int json_flag(const JsonValue* obj, const char* key, int fallback, const char* path) {
    const JsonValue* v = json_get(obj, key);
    if (v == NULL || v->type == JSON_NULL) { return fallback; }
    if (v->type != JSON_TRUE && v->type != JSON_FALSE) { die("%s: \"%s\" must be true, false or null", path, key); }
    return v->type == JSON_TRUE;
}

static const char* json_string_member(const JsonValue* obj, const char* key, const char* path) {
    const JsonValue* v = json_get(obj, key);
    if (v == NULL || v->type != JSON_STRING) { die("%s: missing string \"%s\"", path, key); }
    return v->str;
}

static char* read_json(JsonValue* root, const char* path) {
    size_t len;
    char* text = readFileCheck(path, &len);
    char err[256];
    if (!json_parse(root, text, len, err, sizeof(err))) { die("%s: %s", path, err); }
    if (root->type != JSON_OBJECT) { die("%s: not a JSON object", path); }
    return text;
}

static void set_added_tokens_capacity(Tokenizer* tok, int n) {
    tok->added_ids = (int*)mallocCheck((size_t)n * sizeof(int));
    tok->added_text = (char**)mallocCheck((size_t)n * sizeof(char*));
}

static void add_added_token(Tokenizer* tok, int id, const char* text, const char* path) {
    if (text[0] == '\0') { die("%s: empty added token (id %d)", path, id); }
    tok->added_ids[tok->n_added] = id;
    tok->added_text[tok->n_added] = strdupCheck(text);
    tok->added_first_byte[(unsigned char)text[0]] = 1;
    tok->n_added++;
}

static void load_tokenizer_json(Tokenizer* tok, const char* path) {
    JsonValue root;
    char* text = read_json(&root, path);
    const JsonValue* model = json_get(&root, "model");
    if (model == NULL || model->type != JSON_OBJECT) { die("%s: no \"model\" object", path); }
    if (strcmp(json_string_member(model, "type", path), "WordPiece") != 0) {
        die("%s: model type '%s' is not WordPiece", path, json_string_member(model, "type", path));
    }
    const JsonValue* vocab = json_get(model, "vocab");
    if (vocab == NULL || vocab->type != JSON_OBJECT || vocab->count == 0) { die("%s: no model.vocab object", path); }
    int n = vocab->count;
    size_t pool_bytes = 0;
    for (int i = 0; i < n; i++) { pool_bytes += strlen(vocab->keys[i]) + 1; }
    alloc_vocab(tok, n, pool_bytes);
    for (int i = 0; i < n; i++) { tok->token_offset[i] = -1; }
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        const JsonValue* v = &vocab->items[i];
        const char* key = vocab->keys[i];
        if (v->type != JSON_NUMBER || !(v->number >= 0 && v->number < n) || v->number != (int)v->number) {
            die("%s: model.vocab[\"%s\"] must be an integer id in [0, %d)", path, key, n);
        }
        int id = (int)v->number;
        if (tok->token_offset[id] >= 0) { die("%s: id %d given to both '%s' and '%s'", path, id, tok->pool + tok->token_offset[id], key); }
        size_t len = strlen(key);
        memcpy(tok->pool + pos, key, len + 1);
        tok->token_offset[id] = (int)pos;
        tok->token_len[id] = (int)len;
        add_token(tok, id, tok->pool + pos, (int)len, path, 0);
        pos += len + 1;
    }
    const JsonValue* prefix = json_get(model, "continuing_subword_prefix");
    if (prefix != NULL && prefix->type == JSON_STRING) {
        if (prefix->len >= sizeof(tok->prefix)) { die("%s: continuing_subword_prefix is too long", path); }
        memcpy(tok->prefix, prefix->str, prefix->len + 1);
        tok->prefix_len = (int)prefix->len;
    }
    const JsonValue* max_chars = json_get(model, "max_input_chars_per_word");
    if (max_chars != NULL && max_chars->type == JSON_NUMBER) {
        if (max_chars->number < 1 || max_chars->number > TOKENIZER_MAX_WORD_CHARS) {
            die("%s: max_input_chars_per_word %g is outside [1, %d]", path, max_chars->number, TOKENIZER_MAX_WORD_CHARS);
        }
        tok->max_word_chars = (int)max_chars->number;
    }
    const JsonValue* unk = json_get(model, "unk_token");
    if (unk != NULL && unk->type == JSON_STRING) { tok->unk_id = tokenizer_token_id(tok, unk->str); }

    const JsonValue* norm = json_get(&root, "normalizer");
    if (norm == NULL || norm->type != JSON_OBJECT || strcmp(json_string_member(norm, "type", path), "BertNormalizer") != 0) {
        die("%s: only a BertNormalizer normalizer is supported", path);
    }
    tok->clean_text = json_flag(norm, "clean_text", 1, path);
    tok->split_chinese = json_flag(norm, "handle_chinese_chars", 1, path);
    tok->lowercase = json_flag(norm, "lowercase", 1, path);
    tok->strip_accents = json_flag(norm, "strip_accents", tok->lowercase, path);  // null follows lowercase
    const JsonValue* pre = json_get(&root, "pre_tokenizer");
    if (pre == NULL || pre->type != JSON_OBJECT || strcmp(json_string_member(pre, "type", path), "BertPreTokenizer") != 0) {
        die("%s: only a BertPreTokenizer pre_tokenizer is supported", path);
    }

    const JsonValue* added = json_get(&root, "added_tokens");
    int n_added = added != NULL && added->type == JSON_ARRAY ? added->count : 0;
    set_added_tokens_capacity(tok, n_added);
    for (int i = 0; i < n_added; i++) {
        const JsonValue* a = &added->items[i];
        const char* content = json_string_member(a, "content", path);
        if (strlen(content) != json_get(a, "content")->len) { die("%s: added token '%s' holds a NUL character", path, content); }
        const JsonValue* id = json_get(a, "id");
        if (id == NULL || id->type != JSON_NUMBER || !(id->number >= 0 && id->number < n) || id->number != (int)id->number) {
            die("%s: added token '%s' has no id in the vocabulary", path, content);
        }
        // these options change where an added token matches; BERT vocabularies use none
        if (json_flag(a, "lstrip", 0, path) || json_flag(a, "rstrip", 0, path) || json_flag(a, "single_word", 0, path)
            || json_flag(a, "normalized", 0, path)) {
            die("%s: added token '%s' uses lstrip/rstrip/single_word/normalized, which is not supported", path, content);
        }
        add_added_token(tok, (int)id->number, content, path);
    }
    json_free(&root);
    free(text);
}

// names of the special tokens, as tokenizer_config.json may set them
typedef struct { char* cls; char* sep; char* pad; char* unk; char* mask; } SpecialNames;

static void read_special_name(char** name, const JsonValue* cfg, const char* key, const char* path) {
    const JsonValue* v = json_get(cfg, key);
    if (v == NULL || v->type == JSON_NULL) { return; }
    if (v->type == JSON_OBJECT) { v = json_get(v, "content"); }  // {"content": "[CLS]", ...}
    if (v == NULL || v->type != JSON_STRING) { die("%s: \"%s\" must be a string", path, key); }
    free(*name);
    *name = strdupCheck(v->str);
}

static int is_directory(const char* path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_regular_file(const char* path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char* s, const char* suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int special_id(const Tokenizer* tok, const char* name, const char* what, const char* path, int required) {
    int id = tokenizer_token_id(tok, name);
    if (id < 0 && required) { die("%s: the vocabulary has no %s token '%s'", path, what, name); }
    return id;
}

void tokenizer_load(Tokenizer* tok, const char* path) {
    memset(tok, 0, sizeof(*tok));
    memcpy(tok->prefix, "##", 3);
    tok->prefix_len = 2;
    tok->max_word_chars = 100;
    tok->unk_id = -1;
    SpecialNames names = {strdupCheck("[CLS]"), strdupCheck("[SEP]"), strdupCheck("[PAD]"), strdupCheck("[UNK]"), strdupCheck("[MASK]")};
    char json_path[4096], vocab_path[4096], config_path[4096];
    if (strlen(path) > sizeof(json_path) - 32) { die("tokenizer path is too long: %s", path); }
    int dir = is_directory(path);
    snprintf(json_path, sizeof(json_path), "%s%s", path, dir ? "/tokenizer.json" : "");
    snprintf(vocab_path, sizeof(vocab_path), "%s%s", path, dir ? "/vocab.txt" : "");
    snprintf(config_path, sizeof(config_path), "%s/tokenizer_config.json", path);
    const char* source;
    int from_json = dir ? is_regular_file(json_path) : ends_with(path, ".json");
    if (dir && !from_json && !is_regular_file(vocab_path)) { die("%s: directory has neither tokenizer.json nor vocab.txt", path); }

    // settings of a vocab.txt without tokenizer.json: the reference's BertTokenizer defaults,
    // overridden by tokenizer_config.json where the directory has one
    tok->clean_text = 1;
    tok->split_chinese = 1;
    tok->lowercase = 1;
    tok->strip_accents = -1;  // "follow lowercase", settled below
    if (dir && is_regular_file(config_path)) {
        JsonValue cfg;
        char* text = read_json(&cfg, config_path);
        tok->lowercase = json_flag(&cfg, "do_lower_case", 1, config_path);
        tok->strip_accents = json_flag(&cfg, "strip_accents", -1, config_path);
        tok->split_chinese = json_flag(&cfg, "tokenize_chinese_chars", 1, config_path);
        read_special_name(&names.cls, &cfg, "cls_token", config_path);
        read_special_name(&names.sep, &cfg, "sep_token", config_path);
        read_special_name(&names.pad, &cfg, "pad_token", config_path);
        read_special_name(&names.unk, &cfg, "unk_token", config_path);
        read_special_name(&names.mask, &cfg, "mask_token", config_path);
        json_free(&cfg);
        free(text);
    }
    if (tok->strip_accents < 0) { tok->strip_accents = tok->lowercase; }

    if (from_json) {
        source = json_path;
        load_tokenizer_json(tok, json_path);
    } else {
        source = vocab_path;
        load_vocab_txt(tok, vocab_path);
    }
    tok->cls_id = special_id(tok, names.cls, "CLS", source, 1);
    tok->sep_id = special_id(tok, names.sep, "SEP", source, 1);
    tok->pad_id = special_id(tok, names.pad, "PAD", source, 1);
    if (tok->unk_id < 0) { tok->unk_id = special_id(tok, names.unk, "UNK", source, 1); }
    tok->mask_id = special_id(tok, names.mask, "MASK", source, 0);
    if (!from_json) {
        // the reference registers the special tokens as added tokens, so they are cut
        // out of raw text wherever they appear
        int ids[5] = {tok->pad_id, tok->unk_id, tok->cls_id, tok->sep_id, tok->mask_id};
        set_added_tokens_capacity(tok, 5);
        for (int i = 0; i < 5; i++) {
            if (ids[i] >= 0) { add_added_token(tok, ids[i], tokenizer_token(tok, ids[i]), source); }
        }
    }
    free(names.cls); free(names.sep); free(names.pad); free(names.unk); free(names.mask);
}

void tokenizer_free(Tokenizer* tok) {
    for (int i = 0; i < tok->n_added; i++) { free(tok->added_text[i]); }
    free(tok->added_text);
    free(tok->added_ids);
    free(tok->slots);
    free(tok->token_len);
    free(tok->token_offset);
    free(tok->pool);
    memset(tok, 0, sizeof(*tok));
}
