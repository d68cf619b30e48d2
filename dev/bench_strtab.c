/*
 * bench_strtab.c — the string table on stb_ds (common/strtab.h) beside the open-addressing
 * table the project wrote before it (below: strings back to back in one arena, FNV-1a,
 * linear probing at most half full), on the two hot paths that use a string table:
 *   words   BM25's index build interns every word of the corpus in turn (retrieval/bm25.c:
 *           a hit for all but a word's first occurrence), then every new word's term;
 *           here: every word of the corpus, as analyzer_next_word splits them
 *   ids     the BEIR loader interns every document id once (io/beir.c), then qrels and
 *           candidates look ids up; here: every id interned, then every id looked up
 *
 *   bench_strtab <corpus.jsonl> [rounds]
 *
 * Reading and splitting the corpus is not timed. The two tables take turns, rounds times
 * (default 5), each keeping its best time, so that a burst of load on a shared machine hits
 * both; one thread. Both must number the strings alike (checked). Prints one line per path:
 *   <path> strings N distinct D stb_ds S s hand-written H s ratio S/H
 * dev/bench_strtab.sh runs it on two corpora; common/strtab.h gives the figures and why the
 * project keeps stb_ds. Not a test: it prints figures, it asserts only that the two tables agree.
 */
#include <omp.h>
#include <stdint.h>
#include "io/beir.h"
#include "retrieval/analyzer.h"
#include "common/strtab.h"

// ----------------------------------------------------------------------------
// the hand-written table, as common/strtab.h was before stb_ds (ids numbered in order)

typedef struct {
    char* arena;        // (arena_len,) every string followed by its NUL
    size_t arena_len, arena_cap;
    size_t* offsets;    // (count,) where string i starts in arena
    uint32_t* hashes;   // (count,) hash of string i, kept so growing never rehashes text
    int count, cap;
    int* slots;         // (n_slots,) string number, or -1 for an empty slot
    int n_slots;        // a power of two, kept at least twice count
} HandTab;

static uint32_t hand_hash(const char* s, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) { h ^= (unsigned char)s[i]; h *= 16777619u; }
    return h;
}

static void hand_init(HandTab* t) {
    memset(t, 0, sizeof(*t));
    t->n_slots = 64;
    t->slots = (int*)mallocCheck(sizeof(int) * (size_t)t->n_slots);
    for (int i = 0; i < t->n_slots; i++) { t->slots[i] = -1; }
}

static void hand_free(HandTab* t) {
    free(t->arena); free(t->offsets); free(t->hashes); free(t->slots);
}

static int hand_slot(const HandTab* t, const char* s, size_t len, uint32_t h) {
    int mask = t->n_slots - 1;
    int slot = (int)(h & (uint32_t)mask);
    while (t->slots[slot] >= 0) {
        int i = t->slots[slot];
        const char* other = t->arena + t->offsets[i];
        if (t->hashes[i] == h && strncmp(other, s, len) == 0 && other[len] == '\0') { return slot; }
        slot = (slot + 1) & mask;
    }
    return slot;
}

static int hand_find(const HandTab* t, const char* s, size_t len) {
    return t->slots[hand_slot(t, s, len, hand_hash(s, len))];
}

static int hand_intern(HandTab* t, const char* s, size_t len) {
    uint32_t h = hand_hash(s, len);
    int slot = hand_slot(t, s, len, h);
    if (t->slots[slot] >= 0) { return t->slots[slot]; }
    if (t->arena_len + len + 1 > t->arena_cap) {
        size_t cap = t->arena_cap > 0 ? t->arena_cap : 4096;
        while (cap < t->arena_len + len + 1) { cap *= 2; }
        t->arena = (char*)reallocCheck(t->arena, cap);
        t->arena_cap = cap;
    }
    if (t->count == t->cap) {
        t->cap = t->cap > 0 ? t->cap * 2 : 64;
        t->offsets = (size_t*)reallocCheck(t->offsets, sizeof(size_t) * (size_t)t->cap);
        t->hashes = (uint32_t*)reallocCheck(t->hashes, sizeof(uint32_t) * (size_t)t->cap);
    }
    int i = t->count++;
    t->offsets[i] = t->arena_len;
    t->hashes[i] = h;
    memcpy(t->arena + t->arena_len, s, len + 1);
    t->arena_len += len + 1;
    t->slots[slot] = i;
    if (2 * t->count > t->n_slots) {
        free(t->slots);
        t->n_slots *= 2;
        t->slots = (int*)mallocCheck(sizeof(int) * (size_t)t->n_slots);
        for (int j = 0; j < t->n_slots; j++) { t->slots[j] = -1; }
        int mask = t->n_slots - 1;
        for (int j = 0; j < t->count; j++) {
            int s2 = (int)(t->hashes[j] & (uint32_t)mask);
            while (t->slots[s2] >= 0) { s2 = (s2 + 1) & mask; }
            t->slots[s2] = j;
        }
    }
    return i;
}

// ----------------------------------------------------------------------------

// n NUL-terminated strings with their lengths (stb_ds arrays)
typedef struct {
    char* buf;        // words: the strings back to back; ids: NULL (they are the corpus's)
    const char** s;   // (n,)
    int* len;         // (n,)
    int n;
} Strings;

// every string interned (lookups: then every string looked up) into the stb_ds table;
// number[i] gets string i's number
static double time_stb(int* number, const Strings* st, int lookups) {
    double t0 = omp_get_wtime();
    StrTab t;
    strtab_init(&t);
    for (int i = 0; i < st->n; i++) { number[i] = strtab_intern(&t, st->s[i], NULL); }
    if (lookups) {
        for (int i = 0; i < st->n; i++) { number[i] = strtab_find(&t, st->s[i]); }
    }
    strtab_free(&t);
    return omp_get_wtime() - t0;
}

static double time_hand(int* number, const Strings* st, int lookups) {
    double t0 = omp_get_wtime();
    HandTab t;
    hand_init(&t);
    for (int i = 0; i < st->n; i++) { number[i] = hand_intern(&t, st->s[i], (size_t)st->len[i]); }
    if (lookups) {
        for (int i = 0; i < st->n; i++) { number[i] = hand_find(&t, st->s[i], (size_t)st->len[i]); }
    }
    hand_free(&t);
    return omp_get_wtime() - t0;
}

static void bench(const char* name, const Strings* st, int lookups, int rounds) {
    int* a = (int*)mallocCheck(sizeof(int) * (size_t)(st->n + 1));
    int* b = (int*)mallocCheck(sizeof(int) * (size_t)(st->n + 1));
    double best_stb = 1e30, best_hand = 1e30;
    for (int r = 0; r < rounds; r++) {
        double s = time_stb(a, st, lookups);
        double h = time_hand(b, st, lookups);
        if (s < best_stb) { best_stb = s; }
        if (h < best_hand) { best_hand = h; }
    }
    int distinct = 0;
    for (int i = 0; i < st->n; i++) {
        if (a[i] != b[i]) { die("%s: string %d ('%s') is number %d in stb_ds, %d by hand", name, i, st->s[i], a[i], b[i]); }
        if (a[i] + 1 > distinct) { distinct = a[i] + 1; }
    }
    printf("%-5s strings %d distinct %d stb_ds %.4f s hand-written %.4f s ratio %.2f\n",
           name, st->n, distinct, best_stb, best_hand, best_stb / best_hand);
    free(a);
    free(b);
}

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s corpus.jsonl [rounds]\n", argv[0]);
        return 1;
    }
    int rounds = argc == 3 ? atoi(argv[2]) : 5;
    if (rounds < 1) { die("rounds must be >= 1, got '%s'", argv[2]); }
    Corpus corpus;
    beir_load_corpus(&corpus, argv[1]);

    // the words, as bm25_build meets them: copied into buf (stb_ds array), then pointed at
    Strings words = {0};
    size_t* start = NULL;   // stb_ds array (n,): where word i starts in buf
    char word[ANALYZER_MAX_WORD + 1];
    for (int d = 0; d < corpus.n; d++) {
        const char* cursor = beir_text(&corpus, d);
        int len;
        while ((len = analyzer_next_word(word, &cursor)) > 0) {
            arrput(start, (size_t)arrlen(words.buf));
            arrput(words.len, len);
            memcpy(arraddnptr(words.buf, len + 1), word, (size_t)len + 1);
        }
    }
    words.n = (int)arrlen(start);
    for (int i = 0; i < words.n; i++) { arrput(words.s, words.buf + start[i]); }
    arrfree(start);

    // the ids, in file order
    Strings ids = {0};
    ids.n = corpus.n;
    for (int i = 0; i < corpus.n; i++) {
        arrput(ids.s, beir_id(&corpus, i));
        arrput(ids.len, (int)strlen(beir_id(&corpus, i)));
    }

    bench("words", &words, 0, rounds);
    bench("ids", &ids, 1, rounds);
    arrfree(words.buf); arrfree(words.s); arrfree(words.len);
    arrfree(ids.s); arrfree(ids.len);
    beir_free_texts(&corpus);
    return 0;
}
