"""
Writes the fixtures of test/test_tokenizer.c under test/fixtures/tokenizer/, with Hugging
Face BertTokenizerFast (the `tokenizers` library) as the reference:

  uncased.jsonl   inputs and their ids on the all-MiniLM-L6-v2 vocabulary: queries and
                  documents of ../shared/data/{cranfield,cisi} (by reference), written-out
                  edge cases, and invalid UTF-8 byte strings (as hex); the written-out
                  ones also carry the reference's normalised words
  pairs.jsonl     (a, b, max_len) -> ids and token types of [CLS] a [SEP] b [SEP] with
                  truncation="longest_first"
  corpus_hashes.txt  one line per document field of both collections: a hash of its ids
                  (every document is checked, only a sample above keeps its ids in full)
  cased/          a small cased vocabulary trained here (vocab.txt, tokenizer_config.json:
                  do_lower_case and strip_accents false), cased_json/ the same as
                  tokenizer.json, and cased.jsonl inputs with their ids on it;
                  lower_json/ and lower.jsonl the same vocabulary lower-cased without
                  accent stripping
  sweep_uncased.txt, sweep_cased.txt  every code point c (but NUL and surrogates) as
                  "x" + c + "x" through the reference's normaliser and pre-tokenizer; one
                  hash per block of 1024 code points of the words it gives
  nul.jsonl       texts holding NUL bytes (as hex) and their ids and words on the
                  all-MiniLM-L6-v2 vocabulary: the reference drops a NUL and goes on
                  (BertNormalizer's clean_text); nul_pairs.jsonl pairs of such texts, as
                  pairs.jsonl. Needs only `tokenizers`: `python dev/gen_tokenizer_fixture.py nul`
                  writes these two files alone

Hashes are 64-bit FNV-1a (offset 0xcbf29ce484222325, prime 0x100000001b3): of the ids as
little-endian int32, or of the bytes of the words, each word followed by ' ', each code
point's words followed by '\\n'.

usage: python dev/gen_tokenizer_fixture.py   (from the repository root; about a minute)
"""
import json
import os
import random
import struct
import subprocess
import sys

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

OUT = "test/fixtures/tokenizer"
DATA = "../shared/data"
SEED = 1234


def fnv1a(data, h=0xCBF29CE484222325):
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def ids_hash(ids):
    return fnv1a(struct.pack(f"<{len(ids)}i", *ids))


def read_jsonl(path):
    with open(path, encoding="utf-8") as fp:
        return [json.loads(line) for line in fp if line.strip()]


def load_collections():
    cols = {}
    for name in ("cranfield", "cisi"):
        cols[name] = {
            "corpus": read_jsonl(f"{DATA}/{name}/corpus.jsonl"),
            "queries": read_jsonl(f"{DATA}/{name}/queries.jsonl"),
        }
    return cols


def resolve(cols, ref):
    name, kind, _id, field = ref.split("/")
    for rec in cols[name][kind]:
        if rec["_id"] == _id:
            return rec[field]
    raise KeyError(ref)


def edge_cases(rng):
    # hand-written pieces that exercise one rule each
    pieces = [
        "", " ", "   ", "\t", "\n", "\r\n", "\t\n \r", "a", "A", "hello world", "Hello, World!",
        "café", "CAFÉ", "naïve", "résumé", "Ångström", "ÅNGSTRÖM", "niño", "España", "Mañana",
        "e\u0301", "E\u0301\u0327", "a\u0308\u0304", "\u0301alone", "x\u0301\u0302\u0303y", "ﬁ ligature ﬂ",
        "Ⅻ", "①②③", "ｆｕｌｌｗｉｄｔｈ", "ＡＢＣ", "İstanbul", "ß STRASSE", "ΣΑΣ σας ς", "Ǆ ǅ ǆ",
        "中文分词测试", "日本語のテキスト", "한국어 텍스트", "漢字かなカナ", "𠀀𠀁 𪜀", "中a文b", "豈更",
        "😀", "😀😃😄", "👍🏽", "👨‍👩‍👧", "🇫🇷", "emoji😀inside", "❤️", "★☆", "→ ← ↑", "∑∫√∞",
        "\x01\x02\x03", "a\x07b", "a\x1bb", "\x7f", "a\u0085b", "a\u00a0b", "a\u2000b\u3000c",
        "zero\u200bwidth", "zero\u200cwidth\u200djoiner", "\ufeffbom", "soft\u00adhyphen", "\u2028\u2029",
        "\ufffd", "a\ufffdb", "\ue000private", "\U000f0000",
        "x" * 100, "y" * 101, "z" * 150, "supercalifragilisticexpialidocious" * 4,
        "a" + "b" * 98 + "c", "unbelievablenessess", "antidisestablishmentarianism",
        "!!!", "...", "?!?!", "@#$%^&*()", "[]{}<>", "\"'`~|\\", "—–-", "«»„“”‘’", "¿¡", "。、！？", "…",
        "12345", "3.14159", "1,000,000", "2024-01-01", "0x1F", "1e-9", "½ ¼ ¾", "²³", "٣٤٥", "१२३",
        "Ελληνικά κείμενα", "ΑΘΗΝΑ", "Русский текст", "МОСКВА", "العربية نص", "עברית", "हिन्दी पाठ",
        "ภาษาไทย", "ქართული", "Հայերեն", "ትግርኛ", "ᠮᠣᠩᠭᠣᠯ", "ᏣᎳᎩ", "Tiếng Việt", "Türkçe ğüşıö",
        "Ｈｅｌｌｏ", "ǅungla", "ﬀ", "㎏", "℃", "™", "©®",
        "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", "[SEP][SEP]", "a[SEP]b", "[cls] lower",
        "[SEP", "SEP]", "[ SEP ]", "[[SEP]]", "x[MASK]y", "[CLS]hello[SEP]world[SEP]", " [UNK] ",
        "##", "##ing", "un##able", "[UNK]known",
        # NFD sorts runs of combining characters by class; musical symbols (classes 216,
        # 226) survive accent stripping, so their order shows; U+0941 (class 0) ends a run
        "x\U0001D16D\U0001D165y", "x\U0001D16D\u0941\U0001D165y", "x\U0001D16D\u0301\U0001D165y",
        "x\u302e\u1734\u302f\U0001D165\u1dfay", "\U0001D15F\U0001D16D\U0001D165", "e\u0301\U0001D16D\u0327\U0001D165",
        "\u0130\U0001D165\U0001D16D", "\u4e2d\U0001D16D\U0001D165", "\uac00\U0001D16D\U0001D165",
    ]
    cases = list(pieces)
    # every piece between words, to exercise the boundaries around it
    for p in pieces:
        cases.append(f"the {p} test")
    # random mixtures of pieces and plain words
    words = ["the", "flow", "Boundary", "LAYER", "mach", "number", "é", "über", "wing", "Δp", "κ", "ж"]
    for _ in range(600):
        k = rng.randint(1, 6)
        parts = [rng.choice(pieces + words) for _ in range(k)]
        sep = rng.choice([" ", "", "\t", "  ", "\n", ", "])
        cases.append(sep.join(parts))
    # random code points from many blocks, to exercise the Unicode tables in context
    blocks = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x52F), (0x590, 0x6FF),
              (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x1E00, 0x1FFF), (0x2000, 0x206F),
              (0x3000, 0x30FF), (0x4E00, 0x4E80), (0xAC00, 0xAC80), (0xF900, 0xF960), (0xFF00, 0xFFEF),
              (0x1D400, 0x1D4FF), (0x1F300, 0x1F6FF), (0x1D15E, 0x1D172), (0x20000, 0x20040)]
    for _ in range(300):
        a, b = rng.choice(blocks)
        n = rng.randint(1, 12)
        s = "".join(chr(rng.randint(a, b)) for _ in range(n))
        cases.append(s if rng.random() < 0.5 else "word " + s + " end")
    return cases


def invalid_utf8_cases():
    # raw byte strings: truncated sequences, overlongs, encoded surrogates, lone bytes
    cases = [
        b"ab\xffcd", b"\x80", b"\xbf", b"abc\xe2\x82", b"abc\xe2", b"\xe2\x82\xac",
        b"x\xc0\xafy", b"x\xc1\xbfy", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xed\xa0\x80 surrogate",
        b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80",
        b"caf\xc3", b"caf\xc3 ok", b"\xc3\xa9t\xc3", b"\xf0\x9f\x98", b"\xf0\x9f\x98 \xf0\x9f\x98\x80",
        b"[SEP\xff]", b"[SEP]\xff", b"\xff[SEP]", b"a\xe4\xb8b", b"\xe4\xb8\xad\xe4\xb8",
    ]
    cases += [bytes([b]) for b in range(0x80, 0x100)]
    cases += [b"w" + bytes([b]) + b"w" for b in range(0x80, 0x100, 7)]
    return cases


def words_of(tok, text):
    # the normalised words, each followed by ' ', which ids alone do not show when a word
    # is [UNK]; only for texts without added tokens, which the normaliser never sees
    if any(t in text for t in tok.all_special_tokens):
        return {}
    words = tok.backend_tokenizer.pre_tokenizer.pre_tokenize_str(tok.backend_tokenizer.normalizer.normalize_str(text))
    return {"words": "".join(w + " " for w, _ in words)}


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8") as fp:
        for r in records:
            fp.write(json.dumps(r, ensure_ascii=True, separators=(",", ":")) + "\n")


def encode(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def sweep(tok, path):
    norm = tok.backend_tokenizer.normalizer
    pre = tok.backend_tokenizer.pre_tokenizer
    with open(path, "w") as fp:
        for block in range(0x110000 // 1024):
            h = 0xCBF29CE484222325
            for c in range(block * 1024, block * 1024 + 1024):
                if c == 0 or 0xD800 <= c <= 0xDFFF:
                    continue
                words = pre.pre_tokenize_str(norm.normalize_str("x" + chr(c) + "x"))
                h = fnv1a(("".join(w + " " for w, _ in words) + "\n").encode("utf-8"), h)
            fp.write(f"{h:016x}\n")


def nul_cases():
    # NUL bytes where text, words, punctuation, accents, CJK and added tokens meet
    return [
        b"a\x00b", b"\x00", b"\x00\x00\x00", b"\x00a", b"a\x00", b"hello\x00world", b"hello \x00 world",
        b"boundary\x00layer flow", b"\x00the boundary layer\x00", b"a,\x00b", b"caf\xc3\xa9\x00s",
        b"e\x00\xcc\x81", b"\xe4\xb8\xad\x00\xe6\x96\x87", b"[CLS]\x00[SEP]", b"[CL\x00S] x", b"[SEP]\x00",
        b"\x00[MASK]", b"A\x00B\x00C", b"\x00\xff\x00", b"x\x00\t\x00y", b"un\x00aff\x00able",
    ]


# the NUL fixtures need only the `tokenizers` library: the fast tokenizer's backend is the
# tokenizer.json of the model, which gives the same ids as BertTokenizerFast
def write_nul_fixtures(minilm):
    tok = Tokenizer.from_file(f"{minilm}/tokenizer.json")
    tok.no_padding()  # the model's file pads to 128 and cuts there
    tok.no_truncation()
    special = ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]")
    records = []
    for raw in nul_cases():
        text = raw.decode("utf-8", errors="replace")
        r = {"hex": raw.hex(), "ids": tok.encode(text, add_special_tokens=False).ids}
        if not any(t in text for t in special):
            words = tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(text))
            r["words"] = "".join(w + " " for w, _ in words)
        records.append(r)
    write_jsonl(f"{OUT}/nul.jsonl", records)
    pairs = []
    for a, b, max_len in [(b"a\x00b", b"c\x00d", 8), (b"flow\x00", b"\x00heat transfer\x00rate", 6),
                          (b"\x00\x00", b"x", 4), (b"one two\x00three", b"four\x00 five six", 7)]:
        tok.enable_truncation(max_length=max_len, strategy="longest_first")
        enc = tok.encode(a.decode(), b.decode(), add_special_tokens=True)
        pairs.append({"a": {"hex": a.hex()}, "b": {"hex": b.hex()}, "max_len": max_len, "ids": enc.ids,
                      "types": "".join(str(t) for t in enc.type_ids)})
    write_jsonl(f"{OUT}/nul_pairs.jsonl", pairs)
    print(f"nul.jsonl: {len(records)} inputs, nul_pairs.jsonl: {len(pairs)} pairs")


def main():
    from transformers import BertTokenizerFast

    rng = random.Random(SEED)
    os.makedirs(OUT, exist_ok=True)
    minilm = subprocess.check_output(["bash", "dev/find_minilm.sh"]).decode().strip()
    tok = BertTokenizerFast.from_pretrained(minilm)
    cols = load_collections()

    # --- single texts on the uncased vocabulary
    records = []
    for name in ("cranfield", "cisi"):
        for q in cols[name]["queries"]:
            records.append({"ref": f"{name}/queries/{q['_id']}/text"})
        docs = cols[name]["corpus"]
        for d in rng.sample(docs, 120):
            records.append({"ref": f"{name}/corpus/{d['_id']}/text"})
        for d in rng.sample(docs, 60):
            records.append({"ref": f"{name}/corpus/{d['_id']}/title"})
    for r in records:
        r["ids"] = encode(tok, resolve(cols, r["ref"]))
    for text in edge_cases(rng):
        records.append({"text": text, "ids": encode(tok, text), **words_of(tok, text)})
    # invalid UTF-8: the C tokenizer reads each bad byte as U+FFFD, the clean-up drops it,
    # so the reference's ids of the text decoded with replacement characters are expected
    for raw in invalid_utf8_cases():
        text = raw.decode("utf-8", errors="replace")
        records.append({"hex": raw.hex(), "ids": encode(tok, text), **words_of(tok, text)})
    write_jsonl(f"{OUT}/uncased.jsonl", records)
    print(f"uncased.jsonl: {len(records)} inputs")

    # --- every document field of both collections, as a hash of its ids
    with open(f"{OUT}/corpus_hashes.txt", "w") as fp:
        n = 0
        for name in ("cranfield", "cisi"):
            for d in cols[name]["corpus"]:
                for field in ("title", "text"):
                    ids = encode(tok, d[field])
                    fp.write(f"{name}/corpus/{d['_id']}/{field} {len(ids)} {ids_hash(ids):016x}\n")
                    n += 1
    print(f"corpus_hashes.txt: {n} document fields")

    # --- pairs with truncation
    pairs = []
    qrels = {}
    with open(f"{DATA}/cranfield/qrels/test.tsv") as fp:
        next(fp)
        for line in fp:
            q, d, _ = line.split("\t")
            qrels.setdefault(q, []).append(d)
    qids = sorted(qrels, key=int)
    for max_len in (3, 4, 5, 16, 17, 33, 64, 100, 128, 256, 512):
        for q in rng.sample(qids, 8):
            a = {"ref": f"cranfield/queries/{q}/text"}
            b = {"ref": f"cranfield/corpus/{rng.choice(qrels[q])}/text"}
            pairs.append({"a": a, "b": b, "max_len": max_len})
            pairs.append({"a": b, "b": a, "max_len": max_len})  # the longer one first
    # ties in segment length: the same text twice, and texts of equal token counts
    for max_len in (5, 6, 7, 10, 11, 16, 17, 64, 65):
        for q in rng.sample(qids, 3):
            a = {"ref": f"cranfield/queries/{q}/text"}
            pairs.append({"a": a, "b": a, "max_len": max_len})
        for n in (3, 8, 40):
            wa = " ".join(rng.choice(["wing", "flow", "heat", "shock", "layer"]) for _ in range(n))
            wb = " ".join(rng.choice(["mach", "drag", "lift", "plate", "cone"]) for _ in range(n))
            pairs.append({"a": {"text": wa}, "b": {"text": wb}, "max_len": max_len})
            pairs.append({"a": {"text": wa}, "b": {"text": wb + " jet"}, "max_len": max_len})
            pairs.append({"a": {"text": wa + " jet"}, "b": {"text": wb}, "max_len": max_len})
    pairs.append({"a": {"text": ""}, "b": {"text": ""}, "max_len": 8})
    pairs.append({"a": {"text": ""}, "b": {"text": "only b here"}, "max_len": 4})
    pairs.append({"a": {"text": "only a here"}, "b": {"text": ""}, "max_len": 5})
    for p in pairs:
        ta = p["a"]["text"] if "text" in p["a"] else resolve(cols, p["a"]["ref"])
        tb = p["b"]["text"] if "text" in p["b"] else resolve(cols, p["b"]["ref"])
        # a batch call, as sentence-transformers' CrossEncoder makes: a single call would
        # take an empty b for "no pair" and leave out the last [SEP]
        enc = tok([ta], [tb], truncation="longest_first", max_length=p["max_len"])
        p["ids"] = enc["input_ids"][0]
        p["types"] = "".join(str(t) for t in enc["token_type_ids"][0])
    write_jsonl(f"{OUT}/pairs.jsonl", pairs)
    print(f"pairs.jsonl: {len(pairs)} pairs")

    # --- a small cased vocabulary, trained here on both collections (the trainer breaks
    # ties in no fixed order, so a rerun may give another vocabulary; the fixture files
    # are written together and stay consistent with one another)
    wp = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wp.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    wp.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    texts = [d["text"] for name in cols for d in cols[name]["corpus"]]
    extra = ["Ünïcödé Ångström ÅNGSTRÖM café CAFÉ naïve Straße ΣΑΣ Москва 中文"] * 20
    trainer = trainers.WordPieceTrainer(vocab_size=2500, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    wp.train_from_iterator(texts + extra, trainer)
    vocab = sorted(wp.get_vocab().items(), key=lambda kv: kv[1])
    os.makedirs(f"{OUT}/cased", exist_ok=True)
    with open(f"{OUT}/cased/vocab.txt", "w", encoding="utf-8") as fp:
        for token, _ in vocab:
            fp.write(token + "\n")
    with open(f"{OUT}/cased/tokenizer_config.json", "w") as fp:
        json.dump({"tokenizer_class": "BertTokenizer", "do_lower_case": False, "strip_accents": False,
                   "tokenize_chinese_chars": True}, fp, indent=2)
    # the reference as the C test will load it: from the directory without tokenizer.json
    cased = BertTokenizerFast.from_pretrained(f"{OUT}/cased")
    norm = cased.backend_tokenizer.normalizer
    assert norm.lowercase is False and norm.strip_accents is False, "the cased reference must be cased"
    crecords = []
    for q in cols["cisi"]["queries"]:
        crecords.append({"ref": f"cisi/queries/{q['_id']}/text"})
    for d in rng.sample(cols["cisi"]["corpus"], 40):
        crecords.append({"ref": f"cisi/corpus/{d['_id']}/text"})
    for r in crecords:
        r["ids"] = encode(cased, resolve(cols, r["ref"]))
    for text in edge_cases(random.Random(SEED + 1))[:260]:
        crecords.append({"text": text, "ids": encode(cased, text), **words_of(cased, text)})
    # the same tokenizer as one tokenizer.json file must give the same ids
    os.makedirs(f"{OUT}/cased_json", exist_ok=True)
    cased.backend_tokenizer.save(f"{OUT}/cased_json/tokenizer.json")
    same = BertTokenizerFast(tokenizer_file=f"{OUT}/cased_json/tokenizer.json")
    assert all(encode(same, r["text"]) == r["ids"] for r in crecords if "text" in r)
    write_jsonl(f"{OUT}/cased.jsonl", crecords)
    print(f"cased.jsonl: {len(crecords)} inputs")

    # --- the third setting: lower-casing without accent stripping (no NFD), on the same
    # small vocabulary; here lower-casing alone turns U+0130 into "i" + U+0307
    lower = Tokenizer.from_str(cased.backend_tokenizer.to_str())
    lower.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=False)
    os.makedirs(f"{OUT}/lower_json", exist_ok=True)
    lower.save(f"{OUT}/lower_json/tokenizer.json")
    lower = BertTokenizerFast(tokenizer_file=f"{OUT}/lower_json/tokenizer.json")
    lrecords = []
    for text in edge_cases(random.Random(SEED + 2))[:250]:
        lrecords.append({"text": text, "ids": encode(lower, text), **words_of(lower, text)})
    write_jsonl(f"{OUT}/lower.jsonl", lrecords)
    print(f"lower.jsonl: {len(lrecords)} inputs")

    sweep(tok, f"{OUT}/sweep_uncased.txt")
    sweep(cased, f"{OUT}/sweep_cased.txt")
    print("sweeps written")
    write_nul_fixtures(minilm)


if __name__ == "__main__":
    if sys.argv[1:] == ["nul"]:
        write_nul_fixtures(subprocess.check_output(["bash", "dev/find_minilm.sh"]).decode().strip())
    else:
        main()
