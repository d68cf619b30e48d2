/*
 * test_json.c — io/json.c against Python's json module (dev/gen_json_fixture.py): every
 * valid case must print the same canonical form, every invalid one must be refused with
 * a "line L, column C" message. Then json_write_string round trips, bad UTF-8 included.
 */
#include <string.h>

#include "io/json.h"
#include "test/test.h"
#include "common/utils.h"

// canonical printing, the same rules as the fixture script's canon()
typedef struct { char* buf; size_t len, cap; } Text;

static void text_put(Text* t, const char* s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->buf = (char*)reallocCheck(t->buf, t->cap);
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void canon_string(Text* t, const char* s, size_t n) {
    text_put(t, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"') { text_put(t, "\\\"", 2); }
        else if (c == '\\') { text_put(t, "\\\\", 2); }
        else if (c == '\n') { text_put(t, "\\n", 2); }
        else if (c == '\r') { text_put(t, "\\r", 2); }
        else if (c == '\t') { text_put(t, "\\t", 2); }
        else if (c < 0x20) { snprintf(esc, sizeof(esc), "\\u%04x", c); text_put(t, esc, 6); }
        else { text_put(t, (const char*)&s[i], 1); }
    }
    text_put(t, "\"", 1);
}

static void canon(Text* t, const JsonValue* v) {
    char num[64];
    switch (v->type) {
        case JSON_NULL: text_put(t, "null", 4); break;
        case JSON_TRUE: text_put(t, "true", 4); break;
        case JSON_FALSE: text_put(t, "false", 5); break;
        case JSON_NUMBER: snprintf(num, sizeof(num), "%.17g", v->number + 0.0); /* -0 as 0, as the fixture */ text_put(t, num, strlen(num)); break;
        case JSON_STRING: canon_string(t, v->str, v->len); break;
        case JSON_ARRAY:
        case JSON_OBJECT:
            text_put(t, v->type == JSON_ARRAY ? "[" : "{", 1);
            for (int i = 0; i < v->count; i++) {
                if (i > 0) { text_put(t, ",", 1); }
                if (v->type == JSON_OBJECT) { canon_string(t, v->keys[i], strlen(v->keys[i])); text_put(t, ":", 1); }
                canon(t, &v->items[i]);
            }
            text_put(t, v->type == JSON_ARRAY ? "]" : "}", 1);
            break;
    }
}

static void test_fixture_cases(void) {
    const char* path = "test/fixtures/json/cases.jsonl";
    FILE* fp = fopenCheck(path, "r");
    char line[4096];
    int lineno = 0;
    while (fgets(line, sizeof(line), fp) != NULL) {
        lineno++;
        char err[256];
        JsonValue c;
        if (!json_parse(&c, line, strlen(line), err, sizeof(err))) { die("%s:%d: %s", path, lineno, err); }
        const JsonValue* text = json_get(&c, "text");
        const JsonValue* want = json_get(&c, "canonical");
        if (text == NULL || want == NULL) { die("%s:%d: needs text and canonical", path, lineno); }
        JsonValue v;
        int ok = json_parse(&v, text->str, text->len, err, sizeof(err));
        if (want->type == JSON_NULL) {
            CHECK(!ok, "case %d: %s accepted, Python refuses it", lineno, text->str);
            CHECK(ok || strncmp(err, "line ", 5) == 0, "case %d: error message without position: %s", lineno, err);
        } else {
            CHECK(ok, "case %d: %s refused (%s), Python accepts it", lineno, text->str, err);
            if (ok) {
                Text got = {0};
                canon(&got, &v);
                CHECK(got.len == want->len && memcmp(got.buf, want->str, got.len) == 0,
                      "case %d: got %s want %s", lineno, got.buf, want->str);
                free(got.buf);
                json_free(&v);
            }
        }
        json_free(&c);
    }
    fclose(fp);
}

// \u0000 is kept inside a string value (with its length), refused inside an object key
static void test_nul(void) {
    char err[256];
    JsonValue v;
    const char* value = "{\"p\": \"a\\u0000b\"}";
    int ok = json_parse(&v, value, strlen(value), err, sizeof(err));
    CHECK(ok && json_get(&v, "p") != NULL && json_get(&v, "p")->len == 3 && memcmp(json_get(&v, "p")->str, "a\0b", 4) == 0,
          "a string value holding \\u0000 should keep its 3 bytes");
    if (ok) { json_free(&v); }
    const char* key = "{\"p\\u0000x\": 0.5}";
    ok = json_parse(&v, key, strlen(key), err, sizeof(err));
    CHECK(!ok && strstr(err, "object key holds \\u0000") != NULL, "a key holding \\u0000 should be refused, got %s",
          ok ? "accepted" : err);
    if (ok) { json_free(&v); }
}

// json_write_string output must parse back to the same bytes; bad UTF-8 becomes U+FFFD
static void test_write_string(void) {
    const char* inputs[] = { "plain", "quote \" backslash \\ nl \n tab \t cr \r", "\x01\x1f ctl",
                             "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80", "" };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        char* buf = NULL;
        size_t len = 0;
        FILE* mem = open_memstream(&buf, &len);
        json_write_string(mem, inputs[i]);
        fclose(mem);
        JsonValue v;
        char err[128];
        int ok = json_parse(&v, buf, len, err, sizeof(err));
        CHECK(ok && v.type == JSON_STRING && strcmp(v.str, inputs[i]) == 0, "round trip of input %zu: %s", i, buf);
        if (ok) { json_free(&v); }
        free(buf);
    }
    // a lone continuation byte, a truncated sequence, an overlong '/', an encoded surrogate
    const char* bad = "a\x80" "b\xe4\xb8" "c\xc0\xaf" "d\xed\xa0\x80" "e";
    char* buf = NULL;
    size_t len = 0;
    FILE* mem = open_memstream(&buf, &len);
    json_write_string(mem, bad);
    fclose(mem);
    JsonValue v;
    char err[128];
    int ok = json_parse(&v, buf, len, err, sizeof(err));
    // one U+FFFD per byte that does not begin a valid sequence: a, 1, b, 2, c, 2, d, 3, e
    const char* want = "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd"
                       "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "e";
    CHECK(ok && strcmp(v.str, want) == 0, "bad UTF-8 is not replaced byte by byte: %s", buf);
    if (ok) { json_free(&v); }
    free(buf);
}

int main(void) {
    test_fixture_cases();
    test_write_string();
    test_nul();
    return test_summary("test_json");
}
