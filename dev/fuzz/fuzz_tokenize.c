/*
 * dev/fuzz/fuzz_tokenize.c — the tokenizer's encoders on any text (the texts of a corpus
 * are outside bytes too), on the cased test vocabulary (test/fixtures/tokenizer/cased) and
 * the same vocabulary lower-cased (lower_json): every id must be in the vocabulary, a pair
 * must fit max_len, and the full count must not depend on the size of the buffer.
 */
#include "dev/fuzz/fuzz.h"
#include "tokenizer/wordpiece.h"

static Tokenizer cased, lower;

static void check(const Tokenizer* tok, const uint8_t* data, size_t size) {
    const char* text = (const char*)data;
    static int ids[1 << 16], types[1 << 16];
    int n = tokenizer_encode(tok, ids, 1 << 16, text, size);
    for (int i = 0; i < n && i < (1 << 16); i++) {
        if (ids[i] < 0 || ids[i] >= tok->vocab_size) { abort(); }
    }
    if (tokenizer_encode(tok, ids, 3, text, size) != n) { abort(); }
    size_t half = size / 2;
    int max_len = 3 + (int)(size % 61);
    int len = tokenizer_encode_pair(tok, ids, types, max_len, text, half, text + half, size - half);
    if (len > max_len || ids[0] != tok->cls_id || ids[len - 1] != tok->sep_id) { abort(); }
    static char words[1 << 18];
    tokenizer_pretokenize(tok, words, sizeof(words), text, size);
}

static void encode(const uint8_t* data, size_t size) {
    check(&cased, data, size);
    check(&lower, data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (cased.vocab_size == 0) {
        tokenizer_load(&cased, "test/fixtures/tokenizer/cased");
        tokenizer_load(&lower, "test/fixtures/tokenizer/lower_json/tokenizer.json");
    }
    fuzz_run(encode, data, size);
    return 0;
}
