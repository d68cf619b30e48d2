/*
 * retrieval/biencoder.c — the bi-encoder's zELO loss, its training step and exact retrieval
 * (see biencoder.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "retrieval/biencoder.h"
#include "retrieval/fusion.h"
#include "retrieval/dense.h"
#include "common/utils.h"

double biencoder_rating_temperature(ZeloLink link) {
    return link == ZELO_LINK_BT ? 1.0 : BIENCODER_THURSTONE_T;
}

// ----------------------------------------------------------------------------
// the loss

double biencoder_listwise_loss(float* demb, const float* emb, const float* ratings, const int* doc_start,
                               int G, int C, const BiencoderLoss* cfg) {
    if (G < 1 || doc_start[0] != 0) { die("biencoder_listwise_loss: %d groups, first document %d", G, doc_start[0]); }
    for (int g = 0; g < G; g++) {
        if (doc_start[g + 1] <= doc_start[g]) { die("biencoder_listwise_loss: group %d has no document", g); }
    }
    if (!(cfg->tau > 0.0) || !(cfg->T > 0.0)) { die("biencoder_listwise_loss: temperatures tau %g, T %g must be > 0", cfg->tau, cfg->T); }
    int n = doc_start[G], S = G + n;
    // double throughout: u the normalised rows, norm their lengths, du = d loss / d u
    double* u = (double*)mallocCheck((size_t)S * C * sizeof(double));
    double* norm = (double*)mallocCheck((size_t)S * sizeof(double));
    double* du = (double*)callocCheck((size_t)S * C, sizeof(double));
    double* s = (double*)mallocCheck((size_t)n * sizeof(double));   // one query's logits
    double* t = (double*)mallocCheck((size_t)n * sizeof(double));   // its targets
    for (int r = 0; r < S; r++) {
        double ss = 0.0;
        for (int c = 0; c < C; c++) { ss += (double)emb[(size_t)r * C + c] * emb[(size_t)r * C + c]; }
        // sentence-transformers' Normalize divides by max(norm, 1e-12)
        norm[r] = fmax(sqrt(ss), 1e-12);
        for (int c = 0; c < C; c++) { u[(size_t)r * C + c] = emb[(size_t)r * C + c] / norm[r]; }
    }
    double loss = 0.0;
    for (int g = 0; g < G; g++) {
        int own0 = doc_start[g], own1 = doc_start[g + 1];
        int lo = cfg->in_batch ? 0 : own0, hi = cfg->in_batch ? n : own1;
        const double* q = u + (size_t)g * C;
        double smax = -INFINITY, rmax = -INFINITY;
        for (int j = lo; j < hi; j++) {
            const double* d = u + (size_t)(G + j) * C;
            double dot = 0.0;
            for (int c = 0; c < C; c++) { dot += q[c] * d[c]; }
            s[j] = dot / cfg->tau;
            smax = fmax(smax, s[j]);
        }
        for (int j = own0; j < own1; j++) { rmax = fmax(rmax, ratings[j] / cfg->T); }
        // both softmaxes shifted by their maxima, so that no exponent overflows
        double zs = 0.0, zt = 0.0;
        for (int j = lo; j < hi; j++) { zs += exp(s[j] - smax); }
        for (int j = lo; j < hi; j++) { t[j] = 0.0; }
        for (int j = own0; j < own1; j++) { t[j] = exp(ratings[j] / cfg->T - rmax); zt += t[j]; }
        double lse = smax + log(zs);
        for (int j = lo; j < hi; j++) {
            t[j] /= zt;
            if (t[j] > 0.0) { loss += t[j] * (lse - s[j]); }
            // d L_g / d s_j = p_j - t_j (the t sum to 1); the mean over groups divides by G
            double ds = (exp(s[j] - lse) - t[j]) / (G * cfg->tau);
            double* dq = du + (size_t)g * C;
            double* dd = du + (size_t)(G + j) * C;
            const double* d = u + (size_t)(G + j) * C;
            for (int c = 0; c < C; c++) { dq[c] += ds * d[c]; dd[c] += ds * q[c]; }
        }
    }
    // through the normalisation u = e / |e|: d/de = (du - u (u . du)) / |e|
    for (int r = 0; r < S; r++) {
        const double* ur = u + (size_t)r * C;
        const double* dr = du + (size_t)r * C;
        double dot = 0.0;
        for (int c = 0; c < C; c++) { dot += ur[c] * dr[c]; }
        for (int c = 0; c < C; c++) { demb[(size_t)r * C + c] = (float)((dr[c] - ur[c] * dot) / norm[r]); }
    }
    free(u); free(norm); free(du); free(s); free(t);
    return loss / G;
}

// ----------------------------------------------------------------------------
// the training step

void biencoder_batch_init(BiencoderBatch* b, int groups, int group_size, int max_len, int C, int n_train, int K) {
    memset(b, 0, sizeof(*b));
    b->groups = groups;
    b->group_size = group_size;
    b->max_len = max_len;
    size_t seqs = (size_t)groups * (1 + group_size);
    b->ids = (int*)mallocCheck(seqs * max_len * sizeof(int));
    b->seq_starts = (int*)mallocCheck((seqs + 1) * sizeof(int));
    b->doc_start = (int*)mallocCheck((size_t)(groups + 1) * sizeof(int));
    b->doc = (int*)mallocCheck((size_t)groups * group_size * sizeof(int));
    b->ratings = (float*)mallocCheck((size_t)groups * group_size * sizeof(float));
    b->demb = (float*)mallocCheck(seqs * C * sizeof(float));
    b->order = (int*)mallocCheck((size_t)(n_train > K ? n_train : K) * sizeof(int));
}

void biencoder_batch_free(BiencoderBatch* b) {
    free(b->ids); free(b->seq_starts); free(b->doc_start); free(b->doc); free(b->ratings); free(b->demb); free(b->order);
}

// [CLS] text [SEP], cut to max_len tokens at the end as dense_embed cuts; returns the length
static int encode_text(int* out, const Tokenizer* tok, const char* text, int max_len) {
    int words = tokenizer_encode(tok, out + 1, max_len - 2, text, strlen(text));
    if (words > max_len - 2) { words = max_len - 2; }
    out[0] = tok->cls_id;
    out[words + 1] = tok->sep_id;
    return words + 2;
}

// the first m entries of order become a uniform sample without replacement of 0..n-1
static void sample_without_replacement(int* order, int n, int m, ZeloRng* rng) {
    for (int i = 0; i < n; i++) { order[i] = i; }
    for (int i = 0; i < m; i++) {
        int j = i + zelo_rng_below(rng, n - i);
        int tmp = order[i]; order[i] = order[j]; order[j] = tmp;
    }
}

double biencoder_step(BertModel* model, BiencoderBatch* b, const Tokenizer* tok, const Corpus* corpus,
                      const Queries* queries, const BiencoderData* data, const BiencoderLoss* cfg,
                      uint64_t seed, int step, int micro, float grad_scale) {
    int C = model->config.hidden_size;
    if (b->max_len > model->config.max_position) {
        die("bi-encoder: max_len %d exceeds the model's %d positions", b->max_len, model->config.max_position);
    }
    ZeloRng rng;
    zelo_rng_seed(&rng, seed ^ (0xB1E2C0DE5EEDull * (uint64_t)(step + 1)) ^ (0x94D049BB133111EBull * (uint64_t)(micro + 1)));
    // distinct queries: a query twice in one step would meet its own documents as negatives
    b->G = data->n < b->groups ? data->n : b->groups;
    sample_without_replacement(b->order, data->n, b->G, &rng);
    int* picked = (int*)mallocCheck((size_t)b->G * sizeof(int));
    memcpy(picked, b->order, (size_t)b->G * sizeof(int));
    b->n = 0;
    for (int g = 0; g < b->G; g++) {
        int i = picked[g], nd = data->num_docs[i];
        if (nd < 1) { die("bi-encoder: training query %d has no candidate", i); }
        int m = nd < b->group_size ? nd : b->group_size;
        sample_without_replacement(b->order, nd, m, &rng);
        b->doc_start[g] = b->n;
        for (int k = 0; k < m; k++) {
            b->doc[b->n] = data->docs[(size_t)i * data->K + b->order[k]];
            b->ratings[b->n] = data->ratings[(size_t)i * data->K + b->order[k]];
            b->n++;
        }
    }
    b->doc_start[b->G] = b->n;
    // the sequences: the G queries, then the n documents (the loss's row order)
    int N = 0, S = 0;
    b->seq_starts[0] = 0;
    for (int g = 0; g < b->G; g++) {
        N += encode_text(b->ids + N, tok, beir_text(queries, data->query[picked[g]]), b->max_len);
        b->seq_starts[++S] = N;
    }
    for (int j = 0; j < b->n; j++) {
        N += encode_text(b->ids + N, tok, beir_text(corpus, b->doc[j]), b->max_len);
        b->seq_starts[++S] = N;
    }
    free(picked);
    bert_forward(model, b->ids, NULL, b->seq_starts, S);
    double loss = biencoder_listwise_loss(b->demb, model->embeddings, b->ratings, b->doc_start, b->G, C, cfg);
    for (size_t k = 0; k < (size_t)S * C; k++) { b->demb[k] *= grad_scale; }
    bert_backward(model, NULL, b->demb);
    return loss;
}

// ----------------------------------------------------------------------------
// exact retrieval

void biencoder_search(int* docs_out, float* scores_out, const float* q, int nq, const float* d, int nd, int C, int k) {
    #pragma omp parallel
    {
        float* row = (float*)mallocCheck((size_t)(nd > 0 ? nd : 1) * sizeof(float));  // one query's scores
        #pragma omp for schedule(dynamic, 4)
        for (int i = 0; i < nq; i++) {
            for (int j = 0; j < nd; j++) { row[j] = (float)dense_dot(q + (size_t)i * C, d + (size_t)j * C, C); }
            top_k(docs_out + (size_t)i * k, scores_out + (size_t)i * k, row, nd, k);
        }
        free(row);
    }
}

void biencoder_retrieve(int* docs_out, float* scores_out, BertModel* model, const Tokenizer* tok,
                        const Corpus* corpus, const char* const* query_texts, int n_queries, int k, int max_len) {
    int C = model->config.hidden_size, nd = corpus->n;
    const char** doc_texts = (const char**)mallocCheck((size_t)(nd > 0 ? nd : 1) * sizeof(char*));
    for (int j = 0; j < nd; j++) { doc_texts[j] = beir_text(corpus, j); }
    float* d = (float*)mallocCheck((size_t)(nd > 0 ? nd : 1) * C * sizeof(float));
    float* q = (float*)mallocCheck((size_t)(n_queries > 0 ? n_queries : 1) * C * sizeof(float));
    dense_embed(d, model, tok, doc_texts, nd, max_len);
    dense_embed(q, model, tok, query_texts, n_queries, max_len);
    biencoder_search(docs_out, scores_out, q, n_queries, d, nd, C, k);
    free(doc_texts); free(d); free(q);
}
