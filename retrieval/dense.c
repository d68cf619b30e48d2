/*
 * retrieval/dense.c — bi-encoder embeddings through bert_infer, and a store of them (see dense.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <stb/stb_ds.h>
#include "retrieval/dense.h"
#include "common/utils.h"
#include "retrieval/fusion.h"

#define DENSE_MAGIC 20251101
#define DENSE_VERSION 2  // 2: the model hash leaves out the pooler and the classifier
#define DENSE_HEADER_INTS 256
// tokens per forward pass: large enough for the matrix products to run at full speed,
// small enough that the attention of 256-token sequences stays a few MB per layer
#define DENSE_BATCH_TOKENS 8192
// above this many texts, dense_embed reports its progress
#define DENSE_PROGRESS_MIN 512

// chunk-local sort by token count; the index breaks ties so the order is reproducible
static const int* sort_lengths;
static int by_length(const void* x, const void* y) {
    int a = *(const int*)x, b = *(const int*)y;
    if (sort_lengths[a] != sort_lengths[b]) { return sort_lengths[a] - sort_lengths[b]; }
    return a - b;
}

void dense_embed(float* out, BertModel* model, const Tokenizer* tok, const char* const* texts, int n, int max_len) {
    int C = model->config.hidden_size;
    if (max_len < 3) { die("dense_embed: max_len %d leaves no room for a token between [CLS] and [SEP]", max_len); }
    if (max_len > model->config.max_position) {
        die("dense_embed: max_len %d exceeds the model's %d positions", max_len, model->config.max_position);
    }
    int* tokens = (int*)mallocCheck(sizeof(int) * (size_t)DENSE_CHUNK * (size_t)max_len); // (chunk, max_len)
    int* lengths = (int*)mallocCheck(sizeof(int) * DENSE_CHUNK);
    int* order = (int*)mallocCheck(sizeof(int) * DENSE_CHUNK);
    int max_seqs = DENSE_BATCH_TOKENS / 3 + 1;
    int* ids = (int*)mallocCheck(sizeof(int) * (size_t)(DENSE_BATCH_TOKENS + max_len));
    int* seq_starts = (int*)mallocCheck(sizeof(int) * (size_t)(max_seqs + 2));
    int* batch_items = (int*)mallocCheck(sizeof(int) * (size_t)(max_seqs + 1));
    int show = n >= DENSE_PROGRESS_MIN;
    double t0 = wall_seconds(), last_shown = t0;

    for (int start = 0; start < n; start += DENSE_CHUNK) {
        int m = n - start < DENSE_CHUNK ? n - start : DENSE_CHUNK;
        for (int i = 0; i < m; i++) {
            int* row = tokens + (size_t)i * max_len;
            int words = tokenizer_encode(tok, row + 1, max_len - 2, texts[start + i], strlen(texts[start + i]));
            if (words > max_len - 2) { words = max_len - 2; } // cut at the end, as the reference does
            row[0] = tok->cls_id;
            row[words + 1] = tok->sep_id;
            lengths[i] = words + 2;
            order[i] = i;
        }
        sort_lengths = lengths;
        qsort(order, (size_t)m, sizeof(int), by_length);

        int next = 0;
        while (next < m) {
            int S = 0, N = 0;
            seq_starts[0] = 0;
            // at least one sequence per batch, then as many as the token budget allows
            while (next < m && (S == 0 || N + lengths[order[next]] <= DENSE_BATCH_TOKENS) && S < max_seqs) {
                int i = order[next++];
                memcpy(ids + N, tokens + (size_t)i * max_len, sizeof(int) * (size_t)lengths[i]);
                N += lengths[i];
                batch_items[S++] = i;
                seq_starts[S] = N;
            }
            bert_infer(model, ids, NULL, seq_starts, S);
            for (int s = 0; s < S; s++) {
                const float* e = model->embeddings + (size_t)s * C;
                float* dst = out + (size_t)(start + batch_items[s]) * C;
                double norm = sqrt(dense_dot(e, e, C));
                // sentence-transformers' Normalize divides by max(norm, 1e-12)
                double scale = 1.0 / (norm > 1e-12 ? norm : 1e-12);
                for (int c = 0; c < C; c++) { dst[c] = (float)(e[c] * scale); }
            }
        }
        double now = wall_seconds();
        if (show && (now - last_shown > 2.0 || start + m == n)) {
            double rate = (start + m) / (now - t0 + 1e-9);
            fprintf(stderr, "\rdense: embedded %d/%d texts, %.0f texts/s, %.0f s left   ",
                    start + m, n, rate, (n - start - m) / rate);
            if (start + m == n) { fprintf(stderr, "\n"); }
            last_shown = now;
        }
    }
    free(tokens);
    free(lengths);
    free(order);
    free(ids);
    free(seq_starts);
    free(batch_items);
}

double dense_dot(const float* a, const float* b, int C) {
    double s = 0.0;
    for (int c = 0; c < C; c++) { s += (double)a[c] * (double)b[c]; }
    return s;
}

// ----------------------------------------------------------------------------
// the store

static uint64_t fnv1a64(uint64_t h, const void* data, size_t len) {
    const unsigned char* p = (const unsigned char*)data;
    for (size_t i = 0; i < len; i++) { h ^= p[i]; h *= 1099511628211ull; }
    return h;
}
#define FNV64_START 14695981039346656037ull

uint64_t dense_model_hash(const BertModel* model) {
    // only the tensors mean pooling reads: a checkpoint without a pooler or classifier gets
    // them at random from --seed, and a new seed must not make its embeddings look stale
    size_t used = (size_t)((const char*)model->params.poolw - (const char*)model->params_memory);
    return fnv1a64(FNV64_START, model->params_memory, used);
}

void dense_store_init(DenseStore* store, const BertModel* model, const char* const* texts, int n_items, int max_len) {
    memset(store, 0, sizeof(*store));
    store->n_items = n_items;
    store->C = model->config.hidden_size;
    store->max_len = max_len;
    uint64_t h = FNV64_START;
    // the NUL is hashed too, so that moving a byte from one text to the next changes the hash
    for (int i = 0; i < n_items; i++) { h = fnv1a64(h, texts[i], strlen(texts[i]) + 1); }
    store->text_hash = h;
    store->model_hash = dense_model_hash(model);
    store->row_of = (int*)mallocCheck(sizeof(int) * (size_t)(n_items > 0 ? n_items : 1));
    for (int i = 0; i < n_items; i++) { store->row_of[i] = -1; }
}

int dense_store_missing(int* todo, const char** todo_texts, const DenseStore* store, const int* items,
                        const char* const* texts, int n) {
    int m = 0;
    unsigned char* listed = (unsigned char*)callocCheck((size_t)(store->n_items > 0 ? store->n_items : 1), 1);
    for (int i = 0; i < n; i++) {
        int item = items[i];
        if (item < 0 || item >= store->n_items) { die("dense_store: item %d outside 0..%d", item, store->n_items - 1); }
        if (store->row_of[item] != -1 || listed[item]) { continue; }  // held, or a repeat
        listed[item] = 1;
        todo_texts[m] = texts[i];
        todo[m++] = item;
    }
    free(listed);
    return m;
}

void dense_store_put(DenseStore* store, const int* items, const float* rows, int m) {
    for (int i = 0; i < m; i++) {
        if (items[i] < 0 || items[i] >= store->n_items || store->row_of[items[i]] != -1) {
            die("dense_store_put: item %d outside 0..%d or held already", items[i], store->n_items - 1);
        }
    }
    size_t floats = (size_t)m * store->C;  // a variable: arraddnptr tests its count as a boolean
    if (floats > 0) { memcpy(arraddnptr(store->rows, floats), rows, floats * sizeof(float)); }
    for (int i = 0; i < m; i++) {
        arrput(store->item_of, items[i]);
        store->row_of[items[i]] = store->n + i;
    }
    store->n += m;
}

void dense_store_fill(DenseStore* store, BertModel* model, const Tokenizer* tok, const int* items,
                      const char* const* texts, int n) {
    int* todo = (int*)mallocCheck(sizeof(int) * (size_t)(n > 0 ? n : 1));
    const char** todo_texts = (const char**)mallocCheck(sizeof(char*) * (size_t)(n > 0 ? n : 1));
    int m = dense_store_missing(todo, todo_texts, store, items, texts, n);
    float* rows = (float*)mallocCheck(sizeof(float) * (size_t)(m > 0 ? m : 1) * store->C);
    dense_embed(rows, model, tok, todo_texts, m, store->max_len);
    dense_store_put(store, todo, rows, m);
    free(rows);
    free(todo_texts);
    free(todo);
}

const float* dense_store_row(const DenseStore* store, int item) {
    if (item < 0 || item >= store->n_items || store->row_of[item] < 0) {
        die("dense_store_row: item %d has no embedding (not filled)", item);
    }
    return store->rows + (size_t)store->row_of[item] * store->C;
}

void dense_store_save(const DenseStore* store, const char* path) {
    int32_t header[DENSE_HEADER_INTS] = {0};
    header[0] = DENSE_MAGIC;
    header[1] = DENSE_VERSION;
    header[2] = store->n;
    header[3] = store->C;
    header[4] = store->n_items;
    header[5] = store->max_len;
    header[6] = (int32_t)(uint32_t)(store->text_hash & 0xFFFFFFFFu);
    header[7] = (int32_t)(uint32_t)(store->text_hash >> 32);
    header[8] = (int32_t)(uint32_t)(store->model_hash & 0xFFFFFFFFu);
    header[9] = (int32_t)(uint32_t)(store->model_hash >> 32);
    AtomicFile af;
    FILE* fp = atomicOpen(&af, path, "wb");
    fwriteCheck(header, sizeof(int32_t), DENSE_HEADER_INTS, fp);
    fwriteCheck(store->item_of, sizeof(int), (size_t)store->n, fp);
    fwriteCheck(store->rows, sizeof(float), (size_t)store->n * store->C, fp);
    atomicCommit(&af);
}

static uint64_t header_u64(const int32_t* header, int at) {
    return (uint64_t)(uint32_t)header[at] | ((uint64_t)(uint32_t)header[at + 1] << 32);
}

int dense_store_load(DenseStore* store, const char* path) {
    if (store->n != 0) { die("dense_store_load: the store must be empty (it holds %d rows)", store->n); }
    if (access(path, F_OK) != 0) { return 0; }
    FILE* fp = fopenCheck(path, "rb");
    fseekCheck(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseekCheck(fp, 0, SEEK_SET);
    int32_t header[DENSE_HEADER_INTS];
    if (len < (long)sizeof(header)) { die("'%s' is not an embedding file: %ld bytes, shorter than its header", path, len); }
    freadCheck(header, sizeof(int32_t), DENSE_HEADER_INTS, fp);
    if (header[0] != DENSE_MAGIC) { die("'%s' is not an embedding file (magic %d, expected %d)", path, header[0], DENSE_MAGIC); }
    if (header[1] != DENSE_VERSION) { die("'%s': embedding file version %d, this build reads %d (remove the file to recompute)", path, header[1], DENSE_VERSION); }
    if (header[3] != store->C || header[4] != store->n_items || header[5] != store->max_len) {
        die("'%s' holds embeddings of size %d for %d items at max_len %d; this run needs size %d for %d items "
            "at max_len %d (remove the file to recompute)", path, header[3], header[4], header[5],
            store->C, store->n_items, store->max_len);
    }
    if (header_u64(header, 6) != store->text_hash) {
        die("'%s' was computed for other texts than this collection's (remove the file to recompute)", path);
    }
    if (header_u64(header, 8) != store->model_hash) {
        die("'%s' was computed by another model than the one loaded (remove the file to recompute)", path);
    }
    for (int i = 10; i < DENSE_HEADER_INTS; i++) {
        if (header[i] != 0) { die("'%s': header word %d is %d, expected 0 (corrupt file or newer format)", path, i, header[i]); }
    }
    int n = header[2];
    if (n < 0 || n > store->n_items) { die("'%s': %d rows for a collection of %d items", path, n, store->n_items); }
    long want = (long)sizeof(header) + (long)n * (long)sizeof(int32_t) + (long)n * store->C * (long)sizeof(float);
    if (len != want) { die("'%s' has %ld bytes, expected %ld for %d rows: the file is truncated or corrupt", path, len, want, n); }
    int* items = (int*)mallocCheck(sizeof(int) * (size_t)(n > 0 ? n : 1));
    freadCheck(items, sizeof(int), (size_t)n, fp);
    size_t floats = (size_t)n * store->C;   // a variable: arraddnptr tests its count as a boolean
    float* rows = arraddnptr(store->rows, floats);   // NULL when n is 0: nothing to read
    if (n > 0) { freadCheck(rows, sizeof(float), floats, fp); }
    fclose(fp);
    for (int i = 0; i < n; i++) {
        int item = items[i];
        if (item < 0 || item >= store->n_items) { die("'%s': row %d is for item %d, outside 0..%d", path, i, item, store->n_items - 1); }
        const float* row = store->rows + (size_t)i * store->C;
        for (int c = 0; c < store->C; c++) {
            if (!isfinite(row[c])) { die("'%s': row %d (item %d) holds a non-finite value", path, i, item); }
        }
        if (store->row_of[item] >= 0) { die("'%s': item %d appears twice", path, item); }
        store->row_of[item] = i;
        arrput(store->item_of, item);
    }
    store->n = n;
    free(items);
    return 1;
}

void dense_store_free(DenseStore* store) {
    free(store->row_of);
    arrfree(store->item_of);
    arrfree(store->rows);
    memset(store, 0, sizeof(*store));
}

// queries scored per matrix product: their (64, n_items) block of scores stays a few MB
#define DENSE_SEARCH_QUERIES 64

void dense_search(int* item_out, float* score_out, const DenseStore* store, const float* queries, int nq, int K) {
    int N = store->n_items, C = store->C;
    if (store->n != N) { die("dense_search: the store holds %d of its %d items; fill it with every one first", store->n, N); }
    // the rows in item order, so that a product's column is an item index
    float* by_item = (float*)mallocCheck(sizeof(float) * (size_t)N * C);
    for (int i = 0; i < N; i++) { memcpy(by_item + (size_t)i * C, dense_store_row(store, i), sizeof(float) * (size_t)C); }
    float* zero = (float*)callocCheck((size_t)N, sizeof(float));
    float* scores = (float*)mallocCheck(sizeof(float) * (size_t)DENSE_SEARCH_QUERIES * N);
    for (int q0 = 0; q0 < nq; q0 += DENSE_SEARCH_QUERIES) {
        int m = nq - q0 < DENSE_SEARCH_QUERIES ? nq - q0 : DENSE_SEARCH_QUERIES;
        linear_forward(scores, queries + (size_t)q0 * C, by_item, zero, m, C, N);  // (m, N)
        #pragma omp parallel for schedule(dynamic)
        for (int i = 0; i < m; i++) {
            top_k(item_out + (size_t)(q0 + i) * K, score_out + (size_t)(q0 + i) * K, scores + (size_t)i * N, N, K);
        }
    }
    free(by_item);
    free(zero);
    free(scores);
}
