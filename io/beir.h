/*
 * io/beir.h — a collection in BEIR format: a corpus, queries, and graded relevance judgments.
 *
 *   <dir>/corpus.jsonl      one JSON object per line: "_id", "text", optional "title"
 *   <dir>/queries.jsonl     one JSON object per line: "_id", "text"
 *   <dir>/qrels/<split>.tsv "query-id<TAB>corpus-id<TAB>score", integer score (the gain);
 *                           the first line is skipped if it is exactly that header
 *
 * Files are read line by line, never as one document. Documents and queries are numbered
 * 0..n-1 in file order; all texts live in one arena. Other JSON members ("metadata", ...)
 * are ignored; blank lines are skipped; a "\r" before the line end is dropped.
 *
 * What a reader refuses, with file and line (die(), exit status 1):
 *   a line that is not a JSON object; "_id" missing, not a string, empty or holding a NUL;
 *   "text" missing or not a string; "title" not a string (null counts as no title);
 *   a duplicate "_id" (both lines are named: two documents under one id make every qrels
 *   line that names it ambiguous, so there is no right one to keep);
 *   in qrels: not exactly three tab-separated fields, an empty id, a score that is not a
 *   whole number in int32, and the same (query, document) pair judged twice.
 * What it repairs, and says so on stderr with counts and the first line concerned:
 *   bytes of invalid UTF-8 inside "text" / "title" (each bad byte becomes U+FFFD; overlong
 *   forms and surrogates count as invalid) and NUL characters (written \u0000 in the JSON),
 *   which are dropped: Hugging Face's BERT normaliser drops them (clean_text), so the
 *   cross-encoder reads "a\u0000b" as "ab" either way, BM25 indexes the letters the model
 *   reads, and the texts stay C strings for every stage. Ids are kept byte for byte, so
 *   that they match the bytes of the qrels file.
 * Qrels lines whose query or document id is unknown are dropped and counted; with strict
 * set they are an error instead.
 */
#ifndef ZELO_BEIR_H
#define ZELO_BEIR_H

#include <stddef.h>
#include <stdint.h>
#include "common/strtab.h"

// documents or queries: ids and texts
typedef struct {
    int n;
    StrTab ids;             // id of item i is string i: beir_id(), beir_index_of()
    char* arena;            // every text, each followed by a NUL
    size_t arena_len;
    size_t arena_cap;
    size_t* text_start;     // stb_ds array (n,): where text i starts in arena
    int* title_len;         // stb_ds array (n,): bytes of title at the start of text i (0: no title)
    int64_t n_replaced;     // invalid UTF-8 bytes replaced and NULs dropped while reading
} BeirTexts;
typedef BeirTexts Corpus;
typedef BeirTexts Queries;

typedef struct {
    int n;                  // judgments kept
    int* query;             // (n,) query index; judgments are sorted by query, then document
    int* doc;               // (n,) document index
    int* gain;              // (n,) graded gain, as written in the file
    int n_queries;          // number of queries of the Queries the indices refer to
    int* query_start;       // (n_queries + 1,) judgments of query q: [query_start[q], query_start[q+1])
    int n_unknown_query;    // lines dropped because their query id is unknown
    int n_unknown_doc;      // lines dropped because their document id is unknown (query known)
} Qrels;

// a document's text is its title, a space, then its body (only the body when the title
// is absent or empty): the text BM25 indexes and a cross-encoder reads, as in BEIR
void beir_load_corpus(Corpus* corpus, const char* path);
// a query's text is its "text" (a "title" member, if any, is ignored)
void beir_load_queries(Queries* queries, const char* path);
void beir_load_qrels(Qrels* qrels, const char* path, const Corpus* corpus, const Queries* queries, int strict);
void beir_free_texts(BeirTexts* t);
void beir_free_qrels(Qrels* q);

static inline const char* beir_id(const BeirTexts* t, int i) { return strtab_get(&t->ids, i); }
static inline const char* beir_text(const BeirTexts* t, int i) { return t->arena + t->text_start[i]; }
// its length in bytes (texts follow each other in the arena, each with its NUL)
static inline size_t beir_text_len(const BeirTexts* t, int i) {
    return (i + 1 < t->n ? t->text_start[i + 1] : t->arena_len) - t->text_start[i] - 1;
}
// the body alone: the text after the title and its space
static inline const char* beir_body(const BeirTexts* t, int i) {
    return beir_text(t, i) + t->title_len[i] + (t->title_len[i] > 0 ? 1 : 0);
}
// index of the item with this id, or -1
static inline int beir_index_of(const BeirTexts* t, const char* id) { return strtab_find(&t->ids, id); }

// which of the standard splits train, dev, test have a file <dir>/qrels/<split>.tsv:
// writes their names (static strings) to names[0..count) and returns count (0 to 3)
int beir_qrels_splits(const char* names[3], const char* dir);

// 1 if the query with this id is held out for evaluation, else 0: a hash of (seed, id)
// mapped to [0, 1) is compared with eval_frac. It depends on the id alone, so the split
// stays the same when the file is reordered or queries are added, and every seed gives
// another split.
int beir_query_is_eval(const char* query_id, uint64_t seed, double eval_frac);

#endif // ZELO_BEIR_H
