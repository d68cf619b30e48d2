/*
 * io/json.h — a small JSON reader (RFC 8259) and string writer. Used for BEIR JSONL lines,
 * judgments, Hugging Face config.json / tokenizer.json and safetensors headers.
 *
 * The parser builds a tree of JsonValue. Strings are decoded to UTF-8 (\uXXXX escapes and
 * surrogate pairs included) and NUL-terminated; `len` holds the byte length, since a
 * decoded string may contain \u0000. Errors never abort: json_parse returns 0 and writes
 * "line L, column C: what" into err, so a caller can add its own file name and line.
 * Object keys are C strings: a key holding \u0000 is refused (no format read here has one,
 * and it would otherwise match the key cut at the NUL).
 */
#ifndef ZELO_JSON_H
#define ZELO_JSON_H

#include <stddef.h>
#include <stdio.h>

typedef enum { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } JsonType;

typedef struct JsonValue {
    JsonType type;
    double number;            // JSON_NUMBER
    char* str;                // JSON_STRING: decoded UTF-8, NUL-terminated
    size_t len;               // JSON_STRING: byte length of str
    int count;                // JSON_ARRAY / JSON_OBJECT: number of items
    struct JsonValue* items;  // stb_ds array (count,): array elements, or object values
    char** keys;              // stb_ds array (count,): object keys (decoded UTF-8), NULL for arrays
} JsonValue;

// parses text[0..len) as one JSON value (surrounding whitespace allowed).
// returns 1 on success; on failure returns 0, leaves *out empty and writes a message to err.
int json_parse(JsonValue* out, const char* text, size_t len, char* err, size_t errlen);
void json_free(JsonValue* v);

// object member by key (the last one if a key repeats), or NULL if absent / not an object
const JsonValue* json_get(const JsonValue* obj, const char* key);
const char* json_type_name(JsonType type);

// writes s as a JSON string literal (quotes, escapes; invalid UTF-8 bytes become U+FFFD)
void json_write_string(FILE* fp, const char* s);

#endif // ZELO_JSON_H
