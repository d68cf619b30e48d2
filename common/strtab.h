/*
 * common/strtab.h — a string table: strings stored back to back in one arena, numbered 0..count-1
 * in the order they were first added, with an open-addressing hash from string to number.
 * It is the id -> index map of the BEIR loader, the vocabulary of BM25 and the stopword
 * set of the analyzer: one allocation per array instead of one per string, so a corpus of
 * millions of ids costs a few flat arrays.
 */
#ifndef ZELO_STRTAB_H
#define ZELO_STRTAB_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "common/utils.h"

typedef struct {
    char* arena;        // (arena_len,) every string followed by its NUL
    size_t arena_len;
    size_t arena_cap;
    size_t* offsets;    // (count,) where string i starts in arena
    uint32_t* hashes;   // (count,) hash of string i, kept so growing never rehashes text
    int count;
    int cap;
    int* slots;         // (n_slots,) string number, or -1 for an empty slot
    int n_slots;        // a power of two, kept at least twice count
} StrTab;

// FNV-1a: simple, and good enough for ids and words once the table is half empty
static inline uint32_t strtab_hash(const char* s, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static inline void strtab_init(StrTab* t) {
    memset(t, 0, sizeof(*t));
    t->n_slots = 64;
    t->slots = (int*)mallocCheck(sizeof(int) * (size_t)t->n_slots);
    for (int i = 0; i < t->n_slots; i++) { t->slots[i] = -1; }
}

static inline void strtab_free(StrTab* t) {
    free(t->arena);
    free(t->offsets);
    free(t->hashes);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

static inline const char* strtab_get(const StrTab* t, int i) {
    return t->arena + t->offsets[i];
}

// the slot holding s, or the empty slot where s would go
static inline int strtab_slot(const StrTab* t, const char* s, size_t len, uint32_t h) {
    int mask = t->n_slots - 1;
    int slot = (int)(h & (uint32_t)mask);
    while (t->slots[slot] >= 0) {
        int i = t->slots[slot];
        const char* other = t->arena + t->offsets[i];
        if (t->hashes[i] == h && strncmp(other, s, len) == 0 && other[len] == '\0') {
            return slot;
        }
        slot = (slot + 1) & mask;
    }
    return slot;
}

// number of the string s[0..len), or -1 if it is not in the table
static inline int strtab_find(const StrTab* t, const char* s, size_t len) {
    return t->slots[strtab_slot(t, s, len, strtab_hash(s, len))];
}

// number of s[0..len), added at the end if new; *added (if not NULL) says which happened.
// s must not contain a NUL byte (callers check: such a string could never be found again).
static inline int strtab_intern(StrTab* t, const char* s, size_t len, int* added) {
    uint32_t h = strtab_hash(s, len);
    int slot = strtab_slot(t, s, len, h);
    if (t->slots[slot] >= 0) {
        if (added != NULL) { *added = 0; }
        return t->slots[slot];
    }
    // the slot array doubles past half load and its size is an int
    if (t->count >= (1 << 29)) { die("string table full (%d strings)", t->count); }
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
    memcpy(t->arena + t->arena_len, s, len);
    t->arena[t->arena_len + len] = '\0';
    t->arena_len += len + 1;
    t->slots[slot] = i;
    // grow at half load so that probe sequences stay short
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
    if (added != NULL) { *added = 1; }
    return i;
}

#endif // ZELO_STRTAB_H
