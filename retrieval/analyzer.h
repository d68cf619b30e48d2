/*
 * retrieval/analyzer.h — the English analyzer of the BM25 first stage: text -> index terms.
 *
 * 1. Words: maximal runs of ASCII letters and digits, lower-cased (A-Z -> a-z). Every other
 *    byte separates words, UTF-8 multi-byte characters included (the collections this
 *    project reads are English; an accented letter splits a word). A run longer than
 *    ANALYZER_MAX_WORD bytes is cut into pieces of that length, as Lucene's
 *    StandardTokenizer cuts at its maximum token length of 255.
 *    As a regular expression on the lower-cased text: [a-z0-9]{1,255}.
 * 2. Stopwords: a word in the analyzer's list is dropped (before stemming). The default is
 *    Lucene's English stop set (the 33 words of EnglishAnalyzer), any list can be given.
 * 3. The Porter stemmer: the algorithm as published (M.F. Porter, "An algorithm for suffix
 *    stripping", Program 14(3), 1980). Letters other than a, e, i, o, u and y (digits
 *    included) are consonants; y is a consonant at the start of a word and after a vowel.
 *    The test checks ours against PyStemmer's Stemmer('porter') (Snowball's "porter") on
 *    every word of Cranfield, where they agree on all 13,778 distinct words. They differ
 *    in one place: after -ed/-ing is removed, Snowball undoubles only bb dd ff gg mm nn pp
 *    rr tt, the paper (and we) any double consonant but ll ss zz ("trekking": paper
 *    "trek", Snowball "trekk"); 1 word in 120,000 distinct words of English prose and
 *    code differed for this reason.
 *    Lucene's PorterStemFilter runs Porter's own reference code, which departs from the
 *    paper in three places that we do NOT follow: words of one or two letters are left
 *    alone (the paper turns "is" into "i"), step 2 maps "bli" -> "ble" (the paper: "abli"
 *    -> "able") and adds "logi" -> "log". Stems can differ from Lucene's on such words.
 *    The one-letter word "s" stems to the empty term "", which is kept as a term like
 *    any other (PyStemmer and bm25s do the same).
 */
#ifndef ZELO_ANALYZER_H
#define ZELO_ANALYZER_H

#include "common/strtab.h"

#define ANALYZER_MAX_WORD 255

// Lucene's English stop set (EnglishAnalyzer.ENGLISH_STOP_WORDS_SET), 33 words
extern const char* const ENGLISH_STOPWORDS[];
extern const int N_ENGLISH_STOPWORDS;

typedef struct {
    StrTab stopwords;   // own copies of the words dropped before stemming, lower-case
} Analyzer;

// stopwords == NULL takes ENGLISH_STOPWORDS; n_stopwords == 0 drops nothing.
// Stopwords are matched against lower-cased words, so each must be lower-case letters and
// digits only (anything else could never match, and would hide a mistake): die() otherwise.
void analyzer_init(Analyzer* a, const char* const* stopwords, int n_stopwords);
void analyzer_free(Analyzer* a);

// the next word of the text at *cursor, lower-cased, into word (NUL-terminated);
// returns its length and advances *cursor past it, or returns 0 at the end of the text
int analyzer_next_word(char word[ANALYZER_MAX_WORD + 1], const char** cursor);

// turns a word (from analyzer_next_word) into its term in place: returns the term's
// length, or -1 if the word is a stopword (a term can be "", see above)
int analyzer_term(const Analyzer* a, char* word, int len);

// the Porter stem of word[0..len) in place (lower-case ASCII); returns the new length,
// never more than len
int porter_stem(char* word, int len);

#endif // ZELO_ANALYZER_H
