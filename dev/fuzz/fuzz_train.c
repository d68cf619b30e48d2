/*
 * dev/fuzz/fuzz_train.c — the readers of train_zelo's run directory, which are static in
 * train.c (so that file is included here, its main renamed), on any bytes. The first byte
 * chooses the file, the rest is its content:
 *   0 targets.bin    (trainset_read; the header it must match is taken from the input's
 *                     own first 18 words, so that the sizes behind it are reached; the same
 *                     reader takes a round's targets.round<R>.bin)
 *   1 candidates.bin (candidates_stage, for a collection of 3 documents and 2 queries with
 *                     K = 2, as dev/fuzz/make_seeds.c wrote its seed)
 *   2 log.jsonl      (log_rewind, resuming at step 5 of 10, rounds' lines included)
 *   3 checkpoint.txt (checkpoint_step)
 * Not reached without restructuring train.c: the options (argv) and the stages' in-memory
 * hand-offs; the model and optimizer files have targets of their own.
 */
#include "dev/fuzz/fuzz.h"

#define main train_main
#include "train.c"
#undef main

static Collection collection;
static Options options;

// runs the candidates stage on the run directory as it is
static void candidates_once(void) {
    Candidates cand;
    Bm25Index index;
    bm25_index_stage(&index, &collection, &options);
    candidates_stage(&cand, &collection, &options, &index, NULL, NULL, options.candidates, "candidates.bin", "candidates");
    free(cand.docs);
    free(cand.scores);
    bm25_free(&index);
}

static void read_file(const uint8_t* data, size_t size) {
    if (size == 0) { return; }
    int which = data[0] % 4;
    data++;
    size--;
    if (which == 0) {
        int want[TARGETS_HEADER_WORDS] = { 0 };
        memcpy(want, data, size < sizeof(want) ? size : sizeof(want));
        TrainSet t;
        trainset_read(&t, want, fuzz_file(0, "targets.bin", data, size));
        trainset_free(&t);
    } else if (which == 1) {
        fuzz_file(0, "candidates.bin", data, size);
        candidates_once();
    } else if (which == 2) {
        fuzz_file(0, "log.jsonl", data, size);
        MetricScores before, round_end[MAX_ROUNDS];
        int round_seen[MAX_ROUNDS] = { 0 };
        (void)log_rewind(&before, round_end, round_seen, fuzz_dir, 5, 10);
    } else {
        fuzz_file(0, "checkpoint.txt", data, size);
        (void)checkpoint_step(fuzz_dir);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (collection.corpus.n == 0) {
        static const char docs[] = "{\"_id\": \"d0\", \"text\": \"a b c\"}\n{\"_id\": \"d1\", \"text\": \"b c d\"}\n"
                                   "{\"_id\": \"d2\", \"text\": \"flow over a plate\"}\n";
        static const char qs[] = "{\"_id\": \"q0\", \"text\": \"b c\"}\n{\"_id\": \"q1\", \"text\": \"plate\"}\n";
        beir_load_corpus(&collection.corpus, fuzz_file(1, "corpus.jsonl", docs, sizeof(docs) - 1));
        beir_load_queries(&collection.queries, fuzz_file(2, "queries.jsonl", qs, sizeof(qs) - 1));
        options_default(&options);
        options.run_dir = fuzz_dir;
        options.candidates = 2;
        options.candidates_from = CANDIDATES_BM25;
        // a first call builds bm25.idx and candidates.bin; every run then reads the index
        // and a candidates.bin written from its input
        candidates_once();
    }
    fuzz_run(read_file, data, size);
    return 0;
}
