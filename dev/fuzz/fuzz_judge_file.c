/*
 * dev/fuzz/fuzz_judge_file.c — judges/judge.c's two readers of judgment lines on any bytes,
 * over a fixed collection (documents d1..d3, queries q1, q2): an input whose first byte is
 * even is the file of a file:PATH judge (judge_create), one whose first byte is odd the
 * judgment cache of a run (judge_cache_open). In a cache every line must name the run's
 * judge, whose name holds this process's scratch path, so "$J" in the input stands for it.
 */
#include "dev/fuzz/fuzz.h"
#include "judges/judge.h"

static Corpus corpus;
static Queries queries;
static JudgeContext ctx;
static Judge cache_judge;  // the judge the cache files belong to

// data[0..size) with every "$J" replaced by the cache judge's name
static char* with_judge_name(size_t* len, const uint8_t* data, size_t size) {
    const char* name = judge_describe(&cache_judge);
    size_t name_len = strlen(name);
    char* out = (char*)mallocCheck(size * (name_len + 1) + 1);
    size_t n = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == '$' && i + 1 < size && data[i + 1] == 'J') { memcpy(out + n, name, name_len); n += name_len; i++; }
        else { out[n++] = (char)data[i]; }
    }
    *len = n;
    return out;
}

static void load(const uint8_t* data, size_t size) {
    int cache = size > 0 && (data[0] & 1);
    data += size > 0;
    size -= size > 0;
    if (!cache) {
        char spec[160];
        snprintf(spec, sizeof(spec), "file:%s", fuzz_file(0, "judgments.jsonl", data, size));
        Judge judge;
        judge_create(&judge, spec, &ctx);
        Battle b = { 0, 1, 0, 2 };
        float p;
        (void)judge_battles(&p, &judge, &b, 1);  // answered or not, it must not read out of bounds
        judge_free(&judge);
        return;
    }
    size_t len;
    char* text = with_judge_name(&len, data, size);
    const char* path = fuzz_file(0, "cache.jsonl", text, len);
    free(text);
    JudgeCache c;
    judge_cache_open(&c, path, &cache_judge);
    Battle b = { 1, 0, 1, 2 };
    float p;
    (void)judge_cache_lookup(&p, &c, &b);
    judge_cache_close(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (corpus.n == 0) {
        static const char docs[] = "{\"_id\": \"d1\", \"text\": \"a\"}\n{\"_id\": \"d2\", \"text\": \"b\"}\n{\"_id\": \"d3\", \"text\": \"c\"}\n";
        static const char qs[] = "{\"_id\": \"q1\", \"text\": \"x\"}\n{\"_id\": \"q2\", \"text\": \"y\"}\n";
        static const char fixed[] = "{\"query_id\": \"q1\", \"doc_a\": \"d1\", \"doc_b\": \"d2\", \"p\": 0.75}\n";
        beir_load_corpus(&corpus, fuzz_file(1, "corpus.jsonl", docs, sizeof(docs) - 1));
        beir_load_queries(&queries, fuzz_file(2, "queries.jsonl", qs, sizeof(qs) - 1));
        ctx.corpus = &corpus;
        ctx.queries = &queries;
        char spec[160];
        snprintf(spec, sizeof(spec), "file:%s", fuzz_file(3, "fixed.jsonl", fixed, sizeof(fixed) - 1));
        judge_create(&cache_judge, spec, &ctx);
    }
    fuzz_run(load, data, size);
    return 0;
}
