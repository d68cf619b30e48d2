/*
 * dev/fuzz/fuzz_json.c — io/json.c's parser on any bytes (the input is not NUL-terminated,
 * so a read past len is an ASan report), then every string of the tree written back out.
 */
#include "dev/fuzz/fuzz.h"
#include "io/json.h"

static FILE* sink;

static void write_strings(const JsonValue* v) {
    if (v->type == JSON_STRING) { json_write_string(sink, v->str); }
    for (int i = 0; i < v->count; i++) {
        if (v->keys != NULL) {
            json_write_string(sink, v->keys[i]);
            if (json_get(v, v->keys[i]) == NULL) { abort(); }  // every key must be found again
        }
        write_strings(&v->items[i]);
    }
}

static void parse(const uint8_t* data, size_t size) {
    JsonValue v;
    char err[256];
    if (!json_parse(&v, (const char*)data, size, err, sizeof(err))) { return; }
    write_strings(&v);
    json_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (sink == NULL) { sink = fopen("/dev/null", "w"); }
    fuzz_run(parse, data, size);
    return 0;
}
