/*
 * tokenizer/wordpiece.h — BERT's WordPiece tokenizer, giving the ids of Hugging Face
 * `tokenizers` (BertTokenizerFast) on the same vocabulary.
 *
 * The pipeline, as the reference runs it:
 *   1. added tokens ([CLS], [SEP], [PAD], [UNK], [MASK], ...) are cut out of the raw text
 *      wherever they appear literally, leftmost-longest, and become their own ids;
 *   2. each remaining piece is normalised: clean-up (NUL, U+FFFD and control/format
 *      characters dropped, whitespace turned into ' '), CJK ideographs surrounded by
 *      spaces, accents stripped (NFD, then nonspacing marks dropped), lower-cased one
 *      character at a time;
 *   3. split into words on whitespace, every punctuation character a word of its own;
 *   4. each word becomes the greedy longest-match-first subwords of the vocabulary,
 *      continuations carrying the "##" prefix; a word longer than max_word_chars
 *      characters, or one that cannot be split, becomes a single [UNK].
 *
 * Text is UTF-8 of a given length in bytes, not a C string: a NUL byte is a character like
 * any other, which the clean-up drops as the reference does ("a\0b" gives the ids of "ab";
 * without clean-up it is a word character). Invalid UTF-8: every
 * byte that does not begin a well-formed sequence (a stray continuation byte, a lead byte
 * not followed by enough continuation bytes, an overlong form, an encoded surrogate, a
 * code point above U+10FFFF, bytes 0xC0, 0xC1, 0xF5..0xFF) is read as one U+FFFD, and the
 * next character starts at the following byte. With clean-up on (every BERT vocabulary)
 * U+FFFD is then dropped, so the invalid bytes vanish: "ab\xFFcd" tokenizes as "abcd".
 * Nothing is ever read past the given length.
 *
 * Functions that load files die() with the file (and line or token) on any bad input;
 * the encoders never fail. A loaded Tokenizer is read-only, so threads may share it.
 */
#ifndef ZELO_WORDPIECE_H
#define ZELO_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

// longest word, in characters, the tokenizer can be configured to split (the reference's
// max_input_chars_per_word is 100 for every BERT vocabulary)
#define TOKENIZER_MAX_WORD_CHARS 256

typedef struct {
    // vocabulary: token id -> string, all strings NUL-terminated in one pool
    int vocab_size;
    char* pool;
    int* token_offset;         // (vocab_size,) start of each token in pool
    int* token_len;            // (vocab_size,) its length in bytes
    int max_token_len;         // longest token in bytes: no longer piece can match
    // open-addressing hash table over the vocabulary: slot -> id + 1, 0 when empty
    int* slots;                // (n_slots,)
    uint32_t n_slots;          // a power of two, at least twice vocab_size
    // added tokens, matched in the raw text before normalisation
    int n_added;
    int* added_ids;            // (n_added,)
    char** added_text;         // (n_added,) their literal text
    uint8_t added_first_byte[256];  // 1 where some added token starts with that byte
    // normaliser and model settings
    int clean_text, split_chinese, strip_accents, lowercase;
    char prefix[16];           // continuing_subword_prefix, "##" for BERT
    int prefix_len;
    int max_word_chars;        // longer words become [UNK]
    // special ids (mask_id is -1 when the vocabulary has no mask token)
    int cls_id, sep_id, pad_id, unk_id, mask_id;
} Tokenizer;

// loads a Hugging Face tokenizer from a directory (tokenizer.json if present, else
// vocab.txt with tokenizer_config.json's do_lower_case, strip_accents and
// tokenize_chinese_chars when that file exists), from a tokenizer.json file, or from a
// vocab.txt file (then lower-casing, accent stripping and CJK splitting are on, as the
// reference's defaults). Dies on unreadable files, duplicate tokens, missing [CLS], [SEP],
// [UNK] or [PAD], and settings this implementation does not cover.
void tokenizer_load(Tokenizer* tok, const char* path);
void tokenizer_free(Tokenizer* tok);

// the word pieces of text[0..len), without special tokens around them. Writes at most max_ids ids
// and returns how many the whole text has, so a return value above max_ids means the ids
// were cut (call again with a larger buffer to get them all).
int tokenizer_encode(const Tokenizer* tok, int* ids, int max_ids, const char* text, size_t len);

// [CLS] a[0..a_len) [SEP] b[0..b_len) [SEP] into ids and types (both (max_len,)), types 0
// up to the first [SEP] included and 1 after. When the pair does not fit, a and b are cut at their ends
// as the reference's truncation="longest_first" does: the shorter one is kept whole if
// the longer one can take the rest of the room, otherwise both get half of it, the odd
// token going to the longer one (to b when they are the same length). Returns the length
// (at most max_len). Dies if max_len < 3.
int tokenizer_encode_pair(const Tokenizer* tok, int* ids, int* types, int max_len,
                          const char* a, size_t a_len, const char* b, size_t b_len);

// the split packing of a pair (model.h, PACKING_SPLIT): [CLS] a [SEP] [CLS] b [SEP], types 0 up
// to the first [SEP] included and 1 from the second [CLS]; the texts cut as
// tokenizer_encode_pair cuts them to max_len - 1 tokens, so that the whole fits in max_len
int tokenizer_encode_split_pair(const Tokenizer* tok, int* ids, int* types, int max_len,
                                const char* a, size_t a_len, const char* b, size_t b_len);

// the id of a token string, or -1 if it is not in the vocabulary
int tokenizer_token_id(const Tokenizer* tok, const char* token);
// the string of a token id (dies if id is out of range)
const char* tokenizer_token(const Tokenizer* tok, int id);

// the words of text[0..len) after steps 1-3 above, each followed by one space (added tokens
// appear as their literal text), into out as a NUL-terminated string of at most out_cap
// bytes. Returns the full length without the NUL, like snprintf. For inspecting what the
// normaliser made of a text.
int tokenizer_pretokenize(const Tokenizer* tok, char* out, int out_cap, const char* text, size_t len);

#endif // ZELO_WORDPIECE_H
