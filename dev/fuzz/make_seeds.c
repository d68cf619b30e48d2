/*
 * dev/fuzz/make_seeds.c — writes the binary seed inputs of the fuzz targets (small but
 * valid files, which the fuzzer then mutates) into dev/fuzz/seeds/: a tiny model
 * checkpoint and its optimizer state, a BM25 index, an embedding file, candidates.bin and
 * targets.bin, all made by the project's own writers. The text seeds are written by hand.
 *
 * usage: make build/fuzz_make_seeds && build/fuzz_make_seeds   (from the repository root)
 * It includes train.c, whose stage writers are static.
 */
#define main train_main
#include "train.c"
#undef main
#include "dev/fuzz/tiny.h"

#define SEEDS "dev/fuzz/seeds"

// writes the byte `first` and then the file src to dst: the targets whose first input byte
// chooses what to do (dev/fuzz/fuzz_train.c, fuzz_dense.c)
static void write_prefixed(const char* dst, unsigned char first, const char* src) {
    size_t len;
    char* bytes = readFileCheck(src, &len);
    FILE* fp = fopenCheck(dst, "wb");
    fputc(first, fp);
    fwriteCheck(bytes, 1, len, fp);
    fcloseCheck(fp);
    free(bytes);
    remove(src);
}

static const char* const TEXTS[3] = { "a b c", "b c d", "flow over a plate" };

int main(void) {
    BertConfig config;
    fuzz_tiny_config(&config);
    BertModel model;
    bert_build(&model, &config);
    bert_init_random(&model, 1);
    makeDirsCheck(SEEDS "/model");
    makeDirsCheck(SEEDS "/optimizer");
    bert_save(&model, SEEDS "/model/tiny.bin");
    // one training step, so that there is optimizer state to save
    int ids[4] = { 2, 5, 6, 3 }, types[4] = { 0, 0, 0, 0 }, seq_starts[2] = { 0, 4 };
    float dlogits[1] = { 1.0f };
    bert_zero_grad(&model);
    bert_forward(&model, ids, types, seq_starts, 1);
    bert_backward(&model, dlogits, NULL);
    bert_adamw_update(&model, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 1);
    bert_save_optimizer(&model, 3, SEEDS "/optimizer/step3.bin");

    Bm25Index index;
    bm25_build(&index, TEXTS, 3, NULL, 0, BM25_DEFAULT_K1, BM25_DEFAULT_B);
    makeDirsCheck(SEEDS "/bm25");
    bm25_save(&index, SEEDS "/bm25/three_docs.idx");
    static const char* const SW[2] = { "a", "the" };
    Bm25Index with_sw;
    bm25_build(&with_sw, TEXTS, 3, SW, 2, 1.2f, 0.75f);
    bm25_save(&with_sw, SEEDS "/bm25/stopwords.idx");
    bm25_free(&with_sw);

    // embeddings of two of the three texts, on the tiny vocabulary seed
    Tokenizer tok;
    tokenizer_load(&tok, SEEDS "/tokenizer_load/vocab.txt");
    DenseStore store;
    dense_store_init(&store, &model, TEXTS, 3, 8);
    int items[2] = { 2, 0 };
    const char* item_texts[2] = { TEXTS[2], TEXTS[0] };
    dense_store_fill(&store, &model, &tok, items, item_texts, 2);
    makeDirsCheck(SEEDS "/dense");
    dense_store_save(&store, "build/fuzz_seed_dense.bin");
    write_prefixed(SEEDS "/dense/two_rows.bin", 1, "build/fuzz_seed_dense.bin");  // 1: the hashes are set
    dense_store_free(&store);

    // targets.bin: two queries of 3 candidates, 3 pairs each
    TrainSet t;
    trainset_alloc(&t, 2, 3, 6);
    for (int i = 0; i < 2; i++) {
        t.query[i] = i;
        t.num_docs[i] = 3;
        t.pair_start[i] = 3 * i;
        for (int k = 0; k < 3; k++) {
            t.docs[i * 3 + k] = k;
            t.ratings[i * 3 + k] = 0.5f * (float)k;
            t.targets[i * 3 + k] = 0.2f * (float)k;
            t.pair_a[i * 3 + k] = k;
            t.pair_b[i * 3 + k] = (k + 1) % 3;
            t.pair_p[i * 3 + k] = 0.3f;
        }
    }
    t.pair_start[2] = 6;
    int header[TARGETS_HEADER_WORDS] = { TARGETS_MAGIC, STAGE_VERSION, 2, 3, 1, 0, 0, 0, 0, 0, 3, 2 };
    makeDirsCheck(SEEDS "/train");
    trainset_write(&t, header, "build/fuzz_seed_targets.bin");
    write_prefixed(SEEDS "/train/targets.bin", 0, "build/fuzz_seed_targets.bin");

    // candidates.bin of a run over the three texts and two queries, K = 2
    Options o;
    options_default(&o);
    o.run_dir = "build/fuzz_seed_run";
    o.candidates = 2;
    o.candidates_from = CANDIDATES_BM25;
    makeDirsCheck(o.run_dir);
    remove("build/fuzz_seed_run/candidates.bin");
    remove("build/fuzz_seed_run/bm25.idx");
    Collection c;
    memset(&c, 0, sizeof(c));
    FILE* fp = fopenCheck("build/fuzz_seed_run/corpus.jsonl", "w");
    for (int i = 0; i < 3; i++) { fprintf(fp, "{\"_id\": \"d%d\", \"text\": \"%s\"}\n", i, TEXTS[i]); }
    fcloseCheck(fp);
    fp = fopenCheck("build/fuzz_seed_run/queries.jsonl", "w");
    fprintf(fp, "{\"_id\": \"q0\", \"text\": \"b c\"}\n{\"_id\": \"q1\", \"text\": \"plate\"}\n");
    fcloseCheck(fp);
    beir_load_corpus(&c.corpus, "build/fuzz_seed_run/corpus.jsonl");
    beir_load_queries(&c.queries, "build/fuzz_seed_run/queries.jsonl");
    Candidates cand;
    Bm25Index run_index;
    bm25_index_stage(&run_index, &c, &o);
    candidates_stage(&cand, &c, &o, &run_index, NULL, NULL, o.candidates, "candidates.bin", "candidates");
    write_prefixed(SEEDS "/train/candidates.bin", 1, "build/fuzz_seed_run/candidates.bin");
    printf("seeds written under %s\n", SEEDS);
    return 0;
}
