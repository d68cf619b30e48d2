/*
 * common/strtab.h — a string table: strings numbered 0..count-1 in the order they were first
 * added, on stb_ds's string hash map (common/stb_ds.c) with its arena, which copies every
 * key into large blocks instead of one allocation per string. The map keeps its entries in
 * one array in insertion order and nothing is ever deleted, so a string's number is its
 * entry's index, and its copy stays in place while the table grows.
 * It is the id -> index map of the BEIR loader, the vocabulary of BM25 and the stopword set
 * of the analyzer.
 *
 * Speed, beside the open-addressing table the project wrote before (FNV-1a, linear probing,
 * one arena): dev/bench_strtab.sh (one thread, on a 2-core machine at load average 9-10)
 * puts stb_ds at 1.25x its time on BM25's path, every word of a 100,100-document corpus
 * interned (15.1 million words, 13,611 distinct: 1.06 s against 0.85 s), and at 1.58x with a
 * large vocabulary (6 million words, 827,579 distinct: 2.57 s against 1.63 s); interning and
 * then finding 100,000 ids costs 0.4-0.9 us per id against 0.03-0.12 us. Whole BM25 builds of
 * the 100,100 documents took 1.14x-1.55x as long as with the earlier table (dev/bench_bm25.c,
 * both builds taking turns, load 4.5 to 9). That is a fraction of a second per 100,000
 * documents, once per collection, and the ids' 0.04-0.09 s per 100,000 is a small part of
 * reading the collection (0.4-0.7 s for those 100,100 documents and their queries): not
 * enough to keep a hand-written table (STYLE.md's budget of complexity).
 */
#ifndef ZELO_STRTAB_H
#define ZELO_STRTAB_H

#include <limits.h>
#include <stddef.h>
#include <stb/stb_ds.h>
#include "common/utils.h"

typedef struct {
    char* key;
} StrTabEntry;

typedef struct {
    StrTabEntry* map;   // stb_ds string hash map: (count,) entries, entry i holds string i
} StrTab;

static inline void strtab_init(StrTab* t) {
    t->map = NULL;
    sh_new_arena(t->map);
}

static inline void strtab_free(StrTab* t) {
    shfree(t->map);
}

static inline int strtab_count(const StrTab* t) {
    return (int)shlen(t->map);
}

static inline const char* strtab_get(const StrTab* t, int i) {
    return t->map[i].key;
}

// number of the string s, or -1 if it is not in the table. shgeti would write its answer
// into the table's header; stbds_hmget_key_ts (what hmgeti_ts calls, for string keys) writes
// it to i and leaves the table as it is, so that threads may look up in one table at once.
static inline int strtab_find(const StrTab* t, const char* s) {
    ptrdiff_t i;
    stbds_hmget_key_ts(t->map, sizeof(*t->map), (void*)s, sizeof(t->map->key), &i, STBDS_HM_STRING);
    return (int)i;
}

// number of the string s, added at the end if new; *added (if not NULL) says which happened
static inline int strtab_intern(StrTab* t, const char* s, int* added) {
    int i = strtab_find(t, s);
    if (added != NULL) { *added = i < 0; }
    if (i >= 0) { return i; }
    if (shlen(t->map) == INT_MAX) { die("string table full (%d strings)", INT_MAX); }
    StrTabEntry e = {(char*)s};   // shputs copies the string into the arena
    shputs(t->map, e);
    return (int)shlen(t->map) - 1;
}

#endif // ZELO_STRTAB_H
