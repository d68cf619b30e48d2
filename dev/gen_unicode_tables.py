"""
Writes tokenizer/unicode_tables.h: the per-code-point facts BERT's normalizer and
pre-tokenizer need (classes, canonical decompositions, lower-case mappings, combining
classes), taken from Python's unicodedata.

Python 3.11 knows Unicode 14.0, but Hugging Face `tokenizers` mixes three versions: its
category tests (control, punctuation, nonspacing mark) come from an older Unicode, its
lower-casing from a newer Rust std, its NFD from the unicode-normalization crate. Since
the tokenizer must give the reference's ids, every code point is also put through the
reference, stage by stage, and where the reference disagrees with unicodedata the
reference wins; the number of such overrides is printed and written into the header.
At the end the whole normaliser, modelled from the tables, is compared with the
reference on every code point and must agree.

usage: python dev/gen_unicode_tables.py   (from the repository root; about a minute)
"""
import unicodedata as ud
from tokenizers import normalizers, pre_tokenizers

OUT = "tokenizer/unicode_tables.h"

# class bits, the same names in the C header
DROP, SPACE, WHITESPACE, PUNCT, MARK, CHINESE = 1, 2, 4, 8, 16, 32
NAMES = ["DROP", "SPACE", "WHITESPACE", "PUNCT", "MARK", "CHINESE"]

# Unicode's White_Space property (PropList.txt), which unicodedata does not expose
WHITE_SPACE = set(range(0x09, 0x0E)) | {0x20, 0x85, 0xA0, 0x1680} | set(range(0x2000, 0x200B)) \
    | {0x2028, 0x2029, 0x202F, 0x205F, 0x3000}
# BERT's "Chinese character" blocks, as the reference defines them
CHINESE_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
                  (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]
HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3  # decomposed by formula in C, not tabled


def codepoints():
    return [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


def python_class(c):
    ch, cat = chr(c), ud.category(chr(c))
    f = 0
    if c in (0, 0xFFFD) or (cat in ("Cc", "Cf", "Co", "Cs") and c not in (9, 10, 13)):
        f |= DROP
    if c in WHITE_SPACE:
        f |= SPACE | WHITESPACE
    if (33 <= c <= 47 or 58 <= c <= 64 or 91 <= c <= 96 or 123 <= c <= 126) or cat.startswith("P"):
        f |= PUNCT
    if cat == "Mn":
        f |= MARK
    if any(a <= c <= b for a, b in CHINESE_RANGES):
        f |= CHINESE
    return f


def main():
    clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    chinese = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    strip = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False)
    lower = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=True)
    full = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True)
    pretok = pre_tokenizers.BertPreTokenizer()

    cls, decomp, lowmap, overrides = {}, {}, {}, {}

    def override(kind):
        overrides[kind] = overrides.get(kind, 0) + 1

    for c in codepoints():
        ch = chr(c)
        f = python_class(c)
        # clean-up: dropped, turned into a space, or kept
        got = clean.normalize_str(ch)
        ref_drop, ref_space = got == "", got == " "
        if bool(f & DROP) != ref_drop or (not ref_drop and bool(f & SPACE) != ref_space):
            override("clean")
            f = (f & ~(DROP | SPACE)) | (DROP if ref_drop else 0) | (SPACE if (ref_space and not ref_drop) else 0)
        ref_chinese = chinese.normalize_str(ch) == " " + ch + " "
        if bool(f & CHINESE) != ref_chinese:
            override("chinese")
            f ^= CHINESE
        # pre-tokenizer: between two letters a whitespace splits and vanishes, a punctuation
        # character becomes a word of its own
        words = [w for w, _ in pretok.pre_tokenize_str("x" + ch + "x")]
        ref_ws = words == ["x", "x"]
        ref_punct = words == ["x", ch, "x"]
        if bool(f & WHITESPACE) != ref_ws:
            override("whitespace")
            f ^= WHITESPACE
        if bool(f & PUNCT) != ref_punct:
            override("punct")
            f ^= PUNCT
        # accents: a character without a decomposition is either a dropped mark or kept
        nfd = ud.normalize("NFD", ch)
        got = strip.normalize_str(ch)
        d = ud.decomposition(ch)
        if d and not d.startswith("<") and not HANGUL_FIRST <= c <= HANGUL_LAST:
            decomp[c] = [int(x, 16) for x in d.split()]
        if nfd == ch and bool(f & MARK) != (got == ""):
            override("mark")
            f ^= MARK
        cls[c] = f
        low = ch.lower()
        ref_low = lower.normalize_str(ch)
        if low != ref_low:
            override("lower")
            low = ref_low
        if low != ch:
            lowmap[c] = [ord(x) for x in low]

    # decompositions are kept one step at a time (at most two code points, the second never
    # decomposing further), and expanded by recursion on the first, as the C code does
    def expand(c):
        if c not in decomp:
            return [c]
        return expand(decomp[c][0]) + decomp[c][1:]

    for c in decomp:
        assert len(decomp[c]) <= 2 and expand(c) == [ord(x) for x in ud.normalize("NFD", chr(c))]
        assert len(expand(c)) <= 4  # the C code expands into a buffer of 4

    # once marks are known, the stripped decomposition must match the reference; a code
    # point unknown to Python but decomposed by the reference gets the reference's (already
    # stripped) output as its decomposition
    def stripped(c):
        if HANGUL_FIRST <= c <= HANGUL_LAST:
            return ud.normalize("NFD", chr(c))
        return "".join(chr(x) for x in expand(c) if not cls.get(x, 0) & MARK)

    for c in codepoints():
        if HANGUL_FIRST <= c <= HANGUL_LAST:
            continue
        ref = strip.normalize_str(chr(c))
        if stripped(c) != ref:
            override("decomposition")
            if ref == chr(c):
                del decomp[c]
            else:
                decomp[c] = [ord(x) for x in ref]
            assert len(decomp.get(c, [])) <= 2 and all(x not in decomp for x in decomp.get(c, [])) and stripped(c) == ref

    # combining classes: NFD sorts each run of characters of class > 0. Class values never
    # change once assigned, but the reference's NFD may not know a recent character at all
    # (class 0 to it). Probe: between X (class 226) and Y (class 216), both kept when
    # accents are stripped, Y moves before X exactly when the character continues the run.
    ccc = {c: ud.combining(chr(c)) for c in codepoints() if ud.combining(chr(c)) > 0}
    x, y = "\U0001D16D", "\U0001D165"
    for c in codepoints():
        if c in decomp or HANGUL_FIRST <= c <= HANGUL_LAST:
            continue  # a decomposition is classed by its parts
        got = strip.normalize_str(x + chr(c) + y)
        continues = got.index(y) < got.index(x)
        if continues != (c in ccc):
            override("combining class")
            assert not continues, f"U+{c:04X} combines in the reference but not in unicodedata"
            del ccc[c]

    # the whole normaliser on one character, modelled from the tables as the C code does
    def model(c):
        f = cls[c]
        if f & DROP:
            return ""
        if f & SPACE:
            return " "
        s = stripped(c)
        s = "".join("".join(chr(y) for y in lowmap.get(ord(x), [ord(x)])) for x in s)
        return " " + s + " " if f & CHINESE else s

    bad = [c for c in codepoints() if model(c) != full.normalize_str(chr(c))]
    assert not bad, f"tables disagree with the reference on {len(bad)} code points, e.g. {[hex(c) for c in bad[:10]]}"

    write_header(cls, decomp, lowmap, ccc, overrides)
    print(f"wrote {OUT}; overrides of unicodedata by the reference: {overrides}")


def ranges_of(values):
    # (first, last, value) runs over the code points whose value is not 0
    out, start, prev, val = [], None, None, None
    for c in sorted(values):
        v = values[c]
        if v == 0:
            continue
        if start is not None and c == prev + 1 and v == val:
            prev = c
            continue
        if start is not None:
            out.append((start, prev, val))
        start, prev, val = c, c, v
    if start is not None:
        out.append((start, prev, val))
    return out


def rows(items, per_line):
    lines = []
    for i in range(0, len(items), per_line):
        lines.append("    " + " ".join(items[i:i + per_line]))
    return "\n".join(lines)


def lowercase_runs(lowmap):
    # single-character mappings as runs (first, last, stride, delta): lower-case letters sit
    # at a fixed distance from their capitals, often every other code point
    runs = []
    for c in sorted(c for c in lowmap if len(lowmap[c]) == 1):
        d = lowmap[c][0] - c
        if runs:
            first, last, stride, delta = runs[-1]
            if delta == d and c - last == stride:
                runs[-1] = (first, c, stride, delta)
                continue
            if delta == d and first == last and c - last in (1, 2):
                runs[-1] = (first, c, c - last, delta)
                continue
        runs.append((c, c, 1, d))
    return runs


def write_header(cls, decomp, lowmap, ccc, overrides):
    class_ranges = ranges_of({c: f for c, f in cls.items() if c >= 0x80})
    ccc_ranges = ranges_of(ccc)
    low_runs = lowercase_runs(lowmap)
    low_pairs = [(c, s) for c, s in sorted(lowmap.items()) if len(s) > 1]
    assert all(len(s) == 2 for _, s in low_pairs)
    hexs = lambda x: f"0x{x:X}"
    ov = ", ".join(f"{k} {v}" for k, v in sorted(overrides.items()))
    with open(OUT, "w") as fp:
        fp.write(f"""/*
 * tokenizer/unicode_tables.h — generated by dev/gen_unicode_tables.py; do not edit.
 * Unicode facts for BERT's normaliser and pre-tokenizer, from Python's unicodedata
 * (Unicode {ud.unidata_version}), corrected where Hugging Face tokenizers classifies by another
 * Unicode version, and checked against it on every code point. Overridden code points:
 * {ov}.
 */
#ifndef ZELO_UNICODE_TABLES_H
#define ZELO_UNICODE_TABLES_H

#include <stdint.h>

// class bits of a code point
enum {{
    UC_DROP = 1,        // removed by the clean-up: NUL, U+FFFD, control and format characters
    UC_SPACE = 2,       // turned into ' ' by the clean-up
    UC_WHITESPACE = 4,  // the pre-tokenizer splits on it
    UC_PUNCT = 8,       // the pre-tokenizer makes it a word of its own
    UC_MARK = 16,       // nonspacing mark, dropped when accents are stripped
    UC_CHINESE = 32,    // CJK ideograph, surrounded by spaces when Chinese characters are split
}};

typedef struct {{ uint32_t first, last, value; }} UnicodeRange;
typedef struct {{ uint32_t first, last, stride; int32_t delta; }} UnicodeCaseRun;
typedef struct {{ uint32_t cp, a, b; }} UnicodePair;

// class bits of the ASCII characters (128,)
static const uint8_t unicode_ascii_class[128] = {{
{rows([f"{cls[c]}," for c in range(128)], 32)}
}};

// class bits of the other code points that have any, as sorted runs (first, last, bits)
static const UnicodeRange unicode_class_ranges[{len(class_ranges)}] = {{
{rows([f"{{{hexs(a)},{hexs(b)},{v}}}," for a, b, v in class_ranges], 5)}
}};

// canonical combining class where it is not 0, as sorted runs (first, last, class)
static const UnicodeRange unicode_ccc_ranges[{len(ccc_ranges)}] = {{
{rows([f"{{{hexs(a)},{hexs(b)},{v}}}," for a, b, v in ccc_ranges], 5)}
}};

// one step of canonical decomposition, sorted by code point: cp -> a b (b = 0 when cp maps
// to a alone); a may decompose further, b never does. Hangul syllables decompose by formula.
static const UnicodePair unicode_decompositions[{len(decomp)}] = {{
{rows([f"{{{hexs(c)},{hexs(d[0])},{hexs(d[1]) if len(d) > 1 else 0}}}," for c, d in sorted(decomp.items())], 6)}
}};

// lower case, one character at a time (no final-sigma rule): runs of first..last every
// stride code points map to cp + delta; the few characters that become two are listed apart
static const UnicodeCaseRun unicode_lowercase_runs[{len(low_runs)}] = {{
{rows([f"{{{hexs(a)},{hexs(b)},{st},{d}}}," for a, b, st, d in low_runs], 5)}
}};
static const UnicodePair unicode_lowercase_pairs[{len(low_pairs)}] = {{
{rows([f"{{{hexs(c)},{hexs(s[0])},{hexs(s[1])}}}," for c, s in low_pairs], 6)}
}};

#endif // ZELO_UNICODE_TABLES_H
""")


if __name__ == "__main__":
    main()
