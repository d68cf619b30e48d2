/*
 * dev/fuzz/fuzz_trec.c — io/metrics.c's TREC readers (run and qrels files, rerank --run and
 * evaluation) on any bytes: an input whose first byte is odd is read as a qrels file, any
 * other as a run; the rest of the input is the file.
 */
#include "dev/fuzz/fuzz.h"
#include "io/metrics.h"

static void load(const uint8_t* data, size_t size) {
    int qrels = size > 0 && (data[0] & 1);
    const char* path = fuzz_file(0, "trec.txt", data + (size > 0), size - (size > 0));
    if (qrels) {
        TrecQrels q;
        metrics_read_trec_qrels(&q, path);
        trec_qrels_free(&q);
    } else {
        TrecRun r;
        metrics_read_trec_run(&r, path);
        trec_run_free(&r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz_run(load, data, size);
    return 0;
}
