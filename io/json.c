/*
 * io/json.c — a recursive-descent JSON parser (RFC 8259) into a JsonValue tree, and a
 * string writer. Numbers are parsed with strtod after checking the JSON number grammar,
 * so "01", "1.", ".5", "+1", "NaN" and "Infinity" are refused as the RFC says.
 */
#include "io/json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stb/stb_ds.h>

#include "common/utils.h"

// nesting deeper than this is refused rather than risking the C stack on hostile input
#define JSON_MAX_DEPTH 512

typedef struct {
    const char* text;
    size_t len;
    size_t pos;
    char* err;
    size_t errlen;
    int failed;
} JsonParser;

static void parser_fail(JsonParser* p, const char* what) {
    if (p->failed) { return; }
    p->failed = 1;
    // line and column of the failure, counted in bytes, 1-based
    size_t line = 1, col = 1;
    for (size_t i = 0; i < p->pos && i < p->len; i++) {
        if (p->text[i] == '\n') { line++; col = 1; } else { col++; }
    }
    if (p->err != NULL && p->errlen > 0) {
        snprintf(p->err, p->errlen, "line %zu, column %zu: %s", line, col, what);
    }
}

static void skip_whitespace(JsonParser* p) {
    while (p->pos < p->len) {
        char c = p->text[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') { break; }
        p->pos++;
    }
}

static int parse_value(JsonParser* p, JsonValue* out, int depth);

static int hex_value(char c) {
    if (c >= '0' && c <= '9') { return c - '0'; }
    if (c >= 'a' && c <= 'f') { return c - 'a' + 10; }
    if (c >= 'A' && c <= 'F') { return c - 'A' + 10; }
    return -1;
}

// reads the 4 hex digits after "\u"; returns the code unit or -1
static int read_hex4(JsonParser* p) {
    if (p->pos + 4 > p->len) { return -1; }
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(p->text[p->pos + i]);
        if (h < 0) { return -1; }
        v = v * 16 + h;
    }
    p->pos += 4;
    return v;
}

static size_t put_utf8(char* dst, uint32_t cp) {
    if (cp < 0x80) { dst[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        dst[0] = (char)(0xC0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xE0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        dst[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    dst[0] = (char)(0xF0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    dst[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

// parses a string literal at p->pos (which is at the opening quote) into a new buffer.
// Raw bytes are copied as they are (UTF-8 validity is the caller's concern: corpora carry
// bad bytes and each loader has a policy for them); escapes are decoded.
static char* parse_string_raw(JsonParser* p, size_t* len_out) {
    p->pos++; // opening quote
    // the decoded string is never longer than its source text, so one pass suffices
    size_t start = p->pos;
    size_t end = start;
    while (end < p->len && p->text[end] != '"') {
        end += (p->text[end] == '\\') ? 2 : 1;
    }
    if (end >= p->len) { parser_fail(p, "unterminated string"); return NULL; }
    char* buf = (char*)mallocCheck(end - start + 1);
    size_t n = 0;
    while (p->pos < end) {
        unsigned char c = (unsigned char)p->text[p->pos];
        if (c < 0x20) { free(buf); parser_fail(p, "control character inside a string (must be escaped)"); return NULL; }
        if (c != '\\') { buf[n++] = (char)c; p->pos++; continue; }
        p->pos++;
        char e = p->text[p->pos++];
        switch (e) {
            case '"': buf[n++] = '"'; break;
            case '\\': buf[n++] = '\\'; break;
            case '/': buf[n++] = '/'; break;
            case 'b': buf[n++] = '\b'; break;
            case 'f': buf[n++] = '\f'; break;
            case 'n': buf[n++] = '\n'; break;
            case 'r': buf[n++] = '\r'; break;
            case 't': buf[n++] = '\t'; break;
            case 'u': {
                int u = read_hex4(p);
                if (u < 0) { free(buf); parser_fail(p, "bad \\u escape (needs 4 hex digits)"); return NULL; }
                uint32_t cp = (uint32_t)u;
                if (u >= 0xD800 && u <= 0xDBFF) {
                    // a high surrogate pairs with an escaped low surrogate right after it;
                    // unpaired, it becomes U+FFFD (as Python's errors="replace") and the
                    // next escape is read on its own
                    size_t after = p->pos;
                    int lo = -1;
                    if (p->pos + 1 < end && p->text[p->pos] == '\\' && p->text[p->pos + 1] == 'u') {
                        p->pos += 2;
                        lo = read_hex4(p);
                    }
                    if (lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + (((uint32_t)u - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                    } else {
                        cp = 0xFFFD;
                        p->pos = after;
                    }
                } else if (u >= 0xDC00 && u <= 0xDFFF) {
                    cp = 0xFFFD; // a lone low surrogate encodes no character
                }
                n += put_utf8(buf + n, cp);
                break;
            }
            default:
                free(buf);
                p->pos--;
                parser_fail(p, "unknown escape in string");
                return NULL;
        }
    }
    p->pos = end + 1; // closing quote
    buf[n] = '\0';
    *len_out = n;
    return buf;
}

static int parse_number(JsonParser* p, JsonValue* out) {
    size_t i = p->pos;
    const char* t = p->text;
    if (i < p->len && t[i] == '-') { i++; }
    if (i >= p->len || t[i] < '0' || t[i] > '9') { parser_fail(p, "invalid number"); return 0; }
    if (t[i] == '0') { i++; }
    else { while (i < p->len && t[i] >= '0' && t[i] <= '9') { i++; } }
    if (i < p->len && t[i] == '.') {
        i++;
        if (i >= p->len || t[i] < '0' || t[i] > '9') { parser_fail(p, "invalid number (digits must follow '.')"); return 0; }
        while (i < p->len && t[i] >= '0' && t[i] <= '9') { i++; }
    }
    if (i < p->len && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        if (i < p->len && (t[i] == '+' || t[i] == '-')) { i++; }
        if (i >= p->len || t[i] < '0' || t[i] > '9') { parser_fail(p, "invalid number (bad exponent)"); return 0; }
        while (i < p->len && t[i] >= '0' && t[i] <= '9') { i++; }
    }
    // strtod needs a terminated copy: the text may be a line inside a larger buffer
    char tmp[64];
    size_t n = i - p->pos;
    char* s = n < sizeof(tmp) ? tmp : (char*)mallocCheck(n + 1);
    memcpy(s, t + p->pos, n);
    s[n] = '\0';
    out->type = JSON_NUMBER;
    out->number = strtod(s, NULL);
    if (s != tmp) { free(s); }
    p->pos = i;
    return 1;
}

static int match_literal(JsonParser* p, const char* lit) {
    size_t n = strlen(lit);
    if (p->pos + n <= p->len && memcmp(p->text + p->pos, lit, n) == 0) {
        p->pos += n;
        return 1;
    }
    return 0;
}

// appends an item (and its key, for objects) to the stb_ds arrays of an array or object
static void push_item(JsonValue* v, JsonValue item, char* key) {
    arrput(v->items, item);
    if (v->type == JSON_OBJECT) { arrput(v->keys, key); }
    v->count++;
}

static int parse_array(JsonParser* p, JsonValue* out, int depth) {
    out->type = JSON_ARRAY;
    p->pos++; // '['
    skip_whitespace(p);
    if (p->pos < p->len && p->text[p->pos] == ']') { p->pos++; return 1; }
    for (;;) {
        JsonValue item;
        if (!parse_value(p, &item, depth + 1)) { return 0; }
        push_item(out, item, NULL);
        skip_whitespace(p);
        if (p->pos < p->len && p->text[p->pos] == ',') { p->pos++; continue; }
        if (p->pos < p->len && p->text[p->pos] == ']') { p->pos++; return 1; }
        parser_fail(p, "expected ',' or ']' in array");
        return 0;
    }
}

static int parse_object(JsonParser* p, JsonValue* out, int depth) {
    out->type = JSON_OBJECT;
    p->pos++; // '{'
    skip_whitespace(p);
    if (p->pos < p->len && p->text[p->pos] == '}') { p->pos++; return 1; }
    for (;;) {
        skip_whitespace(p);
        if (p->pos >= p->len || p->text[p->pos] != '"') { parser_fail(p, "expected a string key in object"); return 0; }
        size_t klen;
        char* key = parse_string_raw(p, &klen);
        if (key == NULL) { return 0; }
        // keys are C strings (json_get compares them so): "p\u0000x" would read as "p"
        if (strlen(key) != klen) { free(key); parser_fail(p, "object key holds \\u0000"); return 0; }
        skip_whitespace(p);
        if (p->pos >= p->len || p->text[p->pos] != ':') { free(key); parser_fail(p, "expected ':' after object key"); return 0; }
        p->pos++;
        JsonValue item;
        if (!parse_value(p, &item, depth + 1)) { free(key); return 0; }
        push_item(out, item, key);
        skip_whitespace(p);
        if (p->pos < p->len && p->text[p->pos] == ',') { p->pos++; continue; }
        if (p->pos < p->len && p->text[p->pos] == '}') { p->pos++; return 1; }
        parser_fail(p, "expected ',' or '}' in object");
        return 0;
    }
}

static int parse_value(JsonParser* p, JsonValue* out, int depth) {
    memset(out, 0, sizeof(*out));
    if (depth > JSON_MAX_DEPTH) { parser_fail(p, "nesting too deep"); return 0; }
    skip_whitespace(p);
    if (p->pos >= p->len) { parser_fail(p, "unexpected end of input"); return 0; }
    char c = p->text[p->pos];
    int ok;
    if (c == '{') { ok = parse_object(p, out, depth); }
    else if (c == '[') { ok = parse_array(p, out, depth); }
    else if (c == '"') {
        out->type = JSON_STRING;
        out->str = parse_string_raw(p, &out->len);
        ok = out->str != NULL;
    }
    else if (c == '-' || (c >= '0' && c <= '9')) { ok = parse_number(p, out); }
    else if (match_literal(p, "true")) { out->type = JSON_TRUE; ok = 1; }
    else if (match_literal(p, "false")) { out->type = JSON_FALSE; ok = 1; }
    else if (match_literal(p, "null")) { out->type = JSON_NULL; ok = 1; }
    else { parser_fail(p, "unexpected character"); ok = 0; }
    if (!ok) { json_free(out); }
    return ok;
}

int json_parse(JsonValue* out, const char* text, size_t len, char* err, size_t errlen) {
    JsonParser p = { text, len, 0, err, errlen, 0 };
    if (err != NULL && errlen > 0) { err[0] = '\0'; }
    if (!parse_value(&p, out, 0)) { return 0; }
    skip_whitespace(&p);
    if (p.pos != p.len) {
        parser_fail(&p, "unexpected text after the JSON value");
        json_free(out);
        return 0;
    }
    return 1;
}

void json_free(JsonValue* v) {
    if (v->type == JSON_STRING) { free(v->str); }
    if (v->type == JSON_ARRAY || v->type == JSON_OBJECT) {
        for (int i = 0; i < v->count; i++) {
            json_free(&v->items[i]);
            if (v->keys != NULL) { free(v->keys[i]); }
        }
        arrfree(v->items);
        arrfree(v->keys);
    }
    memset(v, 0, sizeof(*v));
}

const JsonValue* json_get(const JsonValue* obj, const char* key) {
    if (obj == NULL || obj->type != JSON_OBJECT) { return NULL; }
    for (int i = obj->count - 1; i >= 0; i--) {
        if (strcmp(obj->keys[i], key) == 0) { return &obj->items[i]; }
    }
    return NULL;
}

const char* json_type_name(JsonType type) {
    switch (type) {
        case JSON_NULL: return "null";
        case JSON_FALSE: case JSON_TRUE: return "boolean";
        case JSON_NUMBER: return "number";
        case JSON_STRING: return "string";
        case JSON_ARRAY: return "array";
        case JSON_OBJECT: return "object";
    }
    return "unknown";
}

// length of the valid UTF-8 sequence starting at s (1..4), or 0 if the bytes there are not one
static int utf8_sequence_length(const unsigned char* s) {
    if (s[0] < 0x80) { return 1; }
    int n;
    uint32_t min;
    if ((s[0] & 0xE0) == 0xC0) { n = 2; min = 0x80; }
    else if ((s[0] & 0xF0) == 0xE0) { n = 3; min = 0x800; }
    else if ((s[0] & 0xF8) == 0xF0) { n = 4; min = 0x10000; }
    else { return 0; }
    uint32_t cp = s[0] & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) { return 0; } // also stops at the terminating NUL
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    // overlong forms, surrogates and values past U+10FFFF are not valid UTF-8
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) { return 0; }
    return n;
}

void json_write_string(FILE* fp, const char* s) {
    const unsigned char* u = (const unsigned char*)s;
    fputc('"', fp);
    while (*u) {
        unsigned char c = *u;
        if (c == '"') { fputs("\\\"", fp); u++; }
        else if (c == '\\') { fputs("\\\\", fp); u++; }
        else if (c == '\n') { fputs("\\n", fp); u++; }
        else if (c == '\r') { fputs("\\r", fp); u++; }
        else if (c == '\t') { fputs("\\t", fp); u++; }
        else if (c < 0x20) { fprintf(fp, "\\u%04x", c); u++; }
        else {
            int n = utf8_sequence_length(u);
            if (n == 0) { fputs("\xEF\xBF\xBD", fp); u++; } // U+FFFD keeps the output valid JSON
            else { fwrite(u, 1, (size_t)n, fp); u += n; }
        }
    }
    fputc('"', fp);
}
