/*
 * retrieval/analyzer.c — words, stopwords and the Porter stemmer (see analyzer.h for the rules).
 */
#include "retrieval/analyzer.h"

const char* const ENGLISH_STOPWORDS[] = {
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into",
    "is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then",
    "there", "these", "they", "this", "to", "was", "will", "with",
};
const int N_ENGLISH_STOPWORDS = (int)(sizeof(ENGLISH_STOPWORDS) / sizeof(ENGLISH_STOPWORDS[0]));

static int is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

void analyzer_init(Analyzer* a, const char* const* stopwords, int n_stopwords) {
    if (stopwords == NULL) {
        stopwords = ENGLISH_STOPWORDS;
        n_stopwords = N_ENGLISH_STOPWORDS;
    }
    strtab_init(&a->stopwords);
    for (int i = 0; i < n_stopwords; i++) {
        const char* w = stopwords[i];
        size_t len = strlen(w);
        if (len == 0 || len > ANALYZER_MAX_WORD) {
            die("stopword %d has length %zu; a stopword is 1 to %d letters or digits", i, len, ANALYZER_MAX_WORD);
        }
        for (size_t j = 0; j < len; j++) {
            unsigned char c = (unsigned char)w[j];
            if (!is_word_byte(c) || (c >= 'A' && c <= 'Z')) {
                die("stopword %d ('%s') must be lower-case ASCII letters and digits only, "
                    "since it is compared with lower-cased words", i, w);
            }
        }
        strtab_intern(&a->stopwords, w, NULL);
    }
}

void analyzer_free(Analyzer* a) {
    strtab_free(&a->stopwords);
}

int analyzer_next_word(char word[ANALYZER_MAX_WORD + 1], const char** cursor) {
    const unsigned char* p = (const unsigned char*)*cursor;
    while (*p != '\0' && !is_word_byte(*p)) { p++; }
    int len = 0;
    while (len < ANALYZER_MAX_WORD && is_word_byte(*p)) {
        unsigned char c = *p++;
        word[len++] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    word[len] = '\0';
    *cursor = (const char*)p;
    return len;
}

int analyzer_term(const Analyzer* a, char* word, int len) {
    if (strtab_count(&a->stopwords) > 0 && strtab_find(&a->stopwords, word) >= 0) {
        return -1;
    }
    return porter_stem(word, len);
}

// ----------------------------------------------------------------------------
// Porter stemmer. Notation of the paper: a word is [C](VC)^m[V], where C is a run of
// consonants and V a run of vowels; m is its "measure". Conditions of a rule apply to the
// stem, the word without the rule's suffix, here always a prefix b[0..n).

static int is_consonant(const char* b, int i) {
    switch (b[i]) {
        case 'a': case 'e': case 'i': case 'o': case 'u': return 0;
        // y after a consonant sounds as a vowel ("syzygy"), else it is a consonant ("yoyo")
        case 'y': return i == 0 ? 1 : !is_consonant(b, i - 1);
        default: return 1;
    }
}

// m of the stem b[0..n)
static int measure(const char* b, int n) {
    int i = 0;
    while (i < n && is_consonant(b, i)) { i++; }
    int m = 0;
    for (;;) {
        while (i < n && !is_consonant(b, i)) { i++; }
        if (i == n) { return m; }
        while (i < n && is_consonant(b, i)) { i++; }
        m++;
    }
}

// *v*: the stem contains a vowel
static int has_vowel(const char* b, int n) {
    for (int i = 0; i < n; i++) {
        if (!is_consonant(b, i)) { return 1; }
    }
    return 0;
}

// *d: the stem ends with a double consonant
static int ends_double_consonant(const char* b, int n) {
    return n >= 2 && b[n - 1] == b[n - 2] && is_consonant(b, n - 1);
}

// *o: the stem ends consonant-vowel-consonant, the last consonant not w, x or y
static int ends_cvc(const char* b, int n) {
    if (n < 3 || !is_consonant(b, n - 3) || is_consonant(b, n - 2) || !is_consonant(b, n - 1)) {
        return 0;
    }
    char c = b[n - 1];
    return c != 'w' && c != 'x' && c != 'y';
}

static int ends_with(const char* b, int n, const char* suffix) {
    int s = (int)strlen(suffix);
    return s <= n && memcmp(b + n - s, suffix, (size_t)s) == 0;
}

typedef struct {
    const char* suffix;
    const char* replacement;
} SuffixRule;

// steps 2 to 4 apply the rule with the longest matching suffix, and only that one: when
// its condition fails the word is left alone (no shorter suffix is tried)
static const SuffixRule* longest_rule(const SuffixRule* rules, int n_rules, const char* b, int n) {
    const SuffixRule* best = NULL;
    for (int i = 0; i < n_rules; i++) {
        if (ends_with(b, n, rules[i].suffix) &&
            (best == NULL || strlen(rules[i].suffix) > strlen(best->suffix))) {
            best = &rules[i];
        }
    }
    return best;
}

// replaces the last strlen(suffix) letters of b[0..n) by replacement; returns the new length
static int replace_suffix(char* b, int n, const char* suffix, const char* replacement) {
    int stem = n - (int)strlen(suffix);
    int r = (int)strlen(replacement);
    memcpy(b + stem, replacement, (size_t)r);
    return stem + r;
}

static const SuffixRule STEP2_RULES[] = {
    {"ational", "ate"}, {"tional", "tion"}, {"enci", "ence"}, {"anci", "ance"},
    {"izer", "ize"}, {"abli", "able"}, {"alli", "al"}, {"entli", "ent"}, {"eli", "e"},
    {"ousli", "ous"}, {"ization", "ize"}, {"ation", "ate"}, {"ator", "ate"},
    {"alism", "al"}, {"iveness", "ive"}, {"fulness", "ful"}, {"ousness", "ous"},
    {"aliti", "al"}, {"iviti", "ive"}, {"biliti", "ble"},
};
static const SuffixRule STEP3_RULES[] = {
    {"icate", "ic"}, {"ative", ""}, {"alize", "al"}, {"iciti", "ic"}, {"ical", "ic"},
    {"ful", ""}, {"ness", ""},
};
static const SuffixRule STEP4_RULES[] = {
    {"al", ""}, {"ance", ""}, {"ence", ""}, {"er", ""}, {"ic", ""}, {"able", ""},
    {"ible", ""}, {"ant", ""}, {"ement", ""}, {"ment", ""}, {"ent", ""}, {"ion", ""},
    {"ou", ""}, {"ism", ""}, {"ate", ""}, {"iti", ""}, {"ous", ""}, {"ive", ""}, {"ize", ""},
};
#define N_RULES(r) ((int)(sizeof(r) / sizeof(r[0])))

// step 1a: plurals; step 1b: -ed and -ing, with the clean-up of what they leave
static int step1ab(char* b, int n) {
    if (ends_with(b, n, "sses")) { n -= 2; }
    else if (ends_with(b, n, "ies")) { n -= 2; }
    else if (ends_with(b, n, "ss")) { }
    else if (ends_with(b, n, "s")) { n -= 1; }

    if (ends_with(b, n, "eed")) {
        if (measure(b, n - 3) > 0) { n -= 1; }
        return n;
    }
    int stem;
    if (ends_with(b, n, "ed")) { stem = n - 2; }
    else if (ends_with(b, n, "ing")) { stem = n - 3; }
    else { return n; }
    if (!has_vowel(b, stem)) { return n; }
    n = stem;
    if (ends_with(b, n, "at") || ends_with(b, n, "bl") || ends_with(b, n, "iz")) {
        b[n++] = 'e';
    } else if (ends_double_consonant(b, n) && b[n - 1] != 'l' && b[n - 1] != 's' && b[n - 1] != 'z') {
        n -= 1;
    } else if (measure(b, n) == 1 && ends_cvc(b, n)) {
        b[n++] = 'e';
    }
    return n;
}

int porter_stem(char* b, int n) {
    n = step1ab(b, n);

    // step 1c: (*v*) Y -> I
    if (n >= 1 && b[n - 1] == 'y' && has_vowel(b, n - 1)) { b[n - 1] = 'i'; }

    // steps 2 and 3: (m > 0) suffix -> replacement
    const SuffixRule* r = longest_rule(STEP2_RULES, N_RULES(STEP2_RULES), b, n);
    if (r != NULL && measure(b, n - (int)strlen(r->suffix)) > 0) { n = replace_suffix(b, n, r->suffix, r->replacement); }
    r = longest_rule(STEP3_RULES, N_RULES(STEP3_RULES), b, n);
    if (r != NULL && measure(b, n - (int)strlen(r->suffix)) > 0) { n = replace_suffix(b, n, r->suffix, r->replacement); }

    // step 4: (m > 1) suffix -> nothing; -ion only after s or t
    r = longest_rule(STEP4_RULES, N_RULES(STEP4_RULES), b, n);
    if (r != NULL) {
        int stem = n - (int)strlen(r->suffix);
        int ok = measure(b, stem) > 1;
        if (ok && strcmp(r->suffix, "ion") == 0) { ok = stem >= 1 && (b[stem - 1] == 's' || b[stem - 1] == 't'); }
        if (ok) { n = stem; }
    }

    // step 5a: (m > 1) E -> ; (m = 1 and not *o) E ->
    if (n >= 1 && b[n - 1] == 'e') {
        int m = measure(b, n - 1);
        if (m > 1 || (m == 1 && !ends_cvc(b, n - 1))) { n -= 1; }
    }
    // step 5b: (m > 1 and *d and *L) -> single letter
    if (n >= 2 && b[n - 1] == 'l' && b[n - 2] == 'l' && measure(b, n) > 1) { n -= 1; }

    b[n] = '\0';
    return n;
}
