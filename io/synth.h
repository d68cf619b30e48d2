/*
 * io/synth.h — a built-in synthetic retrieval collection, so that `train_zelo` with no data
 * runs the whole method (and tests can exercise it) without any download.
 *
 * The world it describes:
 * - concepts: n_topics topics and n_facets facets (aspects any topic can be asked about);
 *   every concept has n_forms surface forms, unrelated pseudo-words (synonyms). Nothing in
 *   the spelling of the forms tells that they name the same concept, so a model can learn
 *   the synonymy only from relevance, as with real vocabulary mismatch;
 * - every topic has its own vocabulary of n_topic_words words, and there are
 *   n_common_words common words drawn with Zipf frequencies (rank r weighs 1/(r+1));
 * - a document has a main topic with 2 to 4 of its facets, and often a secondary topic
 *   with 1 or 2 facets. Its body is a set of sentences, each about one topic: a form of
 *   a facet (often with a form of the topic) among words of that topic's vocabulary and
 *   common words. The title is a form of the main topic and words of its vocabulary. A
 *   document's author uses ONE form of each concept throughout, chosen at random;
 * - a query asks for a topic and two facets (a combination some document covers under
 *   its main topic, and no two queries ask for the same one), each concept named by a
 *   form chosen independently of any document, plus up to two frequent common words;
 * - relevance of a document to a query asking for topic t and facets {f1, f2}: c = how
 *   many of f1, f2 the document discusses under topic t (in the sentences about t); the
 *   grade is 0 when c = 0, else c + 1 if t is the document's main topic, else c. So 3 =
 *   main topic with both facets, 2 = main topic with one facet (or both facets in passing),
 *   1 = one facet in passing.
 * A relevant document names each concept of the query with the query's form only one time
 * in n_forms, so BM25 finds part of the relevant set and misses the rest, and a
 * cross-encoder trained on the training queries can learn which forms mean the same thing
 * (and which topic vocabulary goes with which topic) and do better on the test queries.
 *
 * Files written into dir (created with its parents if needed; existing files replaced;
 * each written under a temporary name and renamed when complete, corpus.jsonl last, so a
 * corpus.jsonl present means the collection is whole):
 *   corpus.jsonl       {"_id": "d<i>", "title": ..., "text": ...}, documents d0..d<n-1>
 *   queries.jsonl      {"_id": "q<i>", "text": ...}
 *   qrels/train.tsv    "query-id<TAB>corpus-id<TAB>score" with the header line, every
 *   qrels/test.tsv     document of grade >= 1; each query is in exactly one of the two
 *   vocab.txt          a WordPiece vocabulary: [PAD] [UNK] [CLS] [SEP] [MASK], every
 *                      single lower-case letter, digit and ASCII punctuation character,
 *                      the same letters and digits as "##" continuations, then every
 *                      synthetic word as one whole token
 * Pseudo-words are made of consonant-vowel syllables and end in a, o or u, which no rule
 * of the Porter stemmer touches and no English stopword matches, so each word is its own
 * BM25 term. All choices come from one seeded generator with integer arithmetic only: the
 * same config gives byte-identical files on any machine.
 */
#ifndef ZELO_SYNTH_H
#define ZELO_SYNTH_H

#include <stdint.h>

typedef struct {
    uint64_t seed;
    int n_docs;
    int n_queries;
    int test_percent;      // share of the queries (rounded) in qrels/test.tsv, 1..99
    int n_topics;
    int n_facets;          // 4..64: a document takes up to 4, a query 2
    int n_forms;           // surface forms per concept, >= 1 (1: no vocabulary mismatch)
    int n_topic_words;     // words of each topic's own vocabulary
    int n_common_words;    // words shared by all topics (Zipf frequencies)
    int doc_min_words;     // words in a document's body, drawn uniformly in
    int doc_max_words;     // [doc_min_words, doc_max_words] (raised if its mentions need more)
} SynthConfig;

// the collection `train_zelo` uses when no data is given: 2,000 documents of 6..12 words
// (raised to fit the mentions of their concepts; each word one token, so query + document
// fit in 128 tokens), 200 queries of which 30% are held out, 4 topics, 12 facets, 2 forms
// each, 272 words in all
void synth_default_config(SynthConfig* cfg);

// writes the collection described above into dir; dies on an invalid config
void synth_write_collection(const char* dir, const SynthConfig* cfg);

#endif // ZELO_SYNTH_H
