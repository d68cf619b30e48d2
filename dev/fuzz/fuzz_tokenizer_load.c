/*
 * dev/fuzz/fuzz_tokenizer_load.c — tokenizer/wordpiece.c's readers on any bytes: an input
 * that starts with '{' is written as tokenizer.json, any other as vocab.txt (tokenizer_load
 * tells them apart by the name). A tokenizer it accepts then encodes a fixed text and a pair.
 */
#include "dev/fuzz/fuzz.h"
#include "tokenizer/wordpiece.h"

static void use(const Tokenizer* tok) {
    static const char text[] = "[CLS] Flow over a plate\0, and ##s [SEP] caf\xc3\xa9 \xe4\xb8\xad x";
    int ids[64], types[64];
    int n = tokenizer_encode(tok, ids, 64, text, sizeof(text) - 1);
    for (int i = 0; i < n && i < 64; i++) { (void)tokenizer_token(tok, ids[i]); }
    int len = tokenizer_encode_pair(tok, ids, types, 16, text, sizeof(text) - 1, "plate", 5);
    if (len > 16) { abort(); }
}

static void load(const uint8_t* data, size_t size) {
    Tokenizer tok;
    const char* name = size > 0 && data[0] == '{' ? "tokenizer.json" : "vocab.txt";
    tokenizer_load(&tok, fuzz_file(0, name, data, size));
    use(&tok);
    tokenizer_free(&tok);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz_run(load, data, size);
    return 0;
}
