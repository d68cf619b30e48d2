"""
Writes test/fixtures/bm25/cranfield_bm25s.bin: the reference that test/test_bm25.c checks
our analyzer and BM25 against, computed with bm25s (method="lucene") and PyStemmer.

The analysis is spelled out here with the same rule as retrieval/analyzer.h, not taken from our code:
ASCII-only lower-casing (str.lower() would also fold non-ASCII letters, e.g. the Kelvin
sign into "k"), words = the regex [a-z0-9]{1,255}, Lucene's 33 English stopwords removed,
then Stemmer('porter'). bm25s.tokenize does the splitting, stopwords and stemming.

File layout (little-endian):
  header 256 int32: [0] magic 20251002, [1] version 1, [2] n_docs, [3] n_queries, [4] K,
                    [5] bm25s vocabulary size, [6] k1, [7] b (float32 bit patterns)
  doc_terms   (n_docs,) uint32     number of terms of each document
  doc_hash    (n_docs,) uint32     FNV-1a 32 of the document's terms, each followed by 0x00
  query_terms (n_queries,) uint32  the same for queries
  query_hash  (n_queries,) uint32
  top_doc     (n_queries, K) int32    bm25s top-K document indices (file order), best first
  top_score   (n_queries, K) float32  their bm25s scores

Run from the repository root: python dev/gen_bm25_fixture.py
"""
import json
import os
import struct

import numpy as np
import bm25s
import Stemmer

DATA = os.path.join("..", "shared", "data", "cranfield")
OUT = os.path.join("test", "fixtures", "bm25", "cranfield_bm25s.bin")
K = 100
K1, B = 0.9, 0.4
# Lucene's EnglishAnalyzer stop set
STOPWORDS = ["a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into",
             "is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then",
             "there", "these", "they", "this", "to", "was", "will", "with"]
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def analyze(texts):
    lowered = [t.translate(ASCII_LOWER) for t in texts]
    return bm25s.tokenize(lowered, lower=False, token_pattern=r"[a-z0-9]{1,255}",
                          stopwords=STOPWORDS, stemmer=Stemmer.Stemmer("porter"),
                          return_ids=False, show_progress=False)


def fnv1a_terms(terms):
    h = 2166136261
    for t in terms:
        for byte in t.encode("utf-8") + b"\x00":
            h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def main():
    docs = read_jsonl(os.path.join(DATA, "corpus.jsonl"))
    queries = read_jsonl(os.path.join(DATA, "queries.jsonl"))
    # title, a space, the body; the body alone when there is no title (io/beir.h)
    doc_texts = [(d["title"] + " " + d["text"]) if d.get("title") else d["text"] for d in docs]
    query_texts = [q["text"] for q in queries]
    doc_terms = analyze(doc_texts)
    query_terms = analyze(query_texts)

    retriever = bm25s.BM25(method="lucene", k1=K1, b=B)
    retriever.index(doc_terms, show_progress=False)
    for i, q in enumerate(query_terms):
        # bm25s scores a query with no known term by the empty token, which is also the stem
        # of "s": such a query would not test what we mean, so make sure there is none
        assert any(t in retriever.vocab_dict for t in q), f"query {i} has no term of the corpus"
    res = retriever.retrieve(query_terms, k=K, show_progress=False, n_threads=1)
    top_doc = np.asarray(res.documents, dtype=np.int32)
    top_score = np.asarray(res.scores, dtype=np.float32)
    assert top_doc.shape == (len(queries), K)

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    header = np.zeros(256, dtype=np.int32)
    header[:6] = [20251002, 1, len(docs), len(queries), K, len(retriever.vocab_dict)]
    header[6] = struct.unpack("<i", struct.pack("<f", K1))[0]
    header[7] = struct.unpack("<i", struct.pack("<f", B))[0]
    with open(OUT, "wb") as f:
        f.write(header.astype("<i4").tobytes())
        for terms in (doc_terms, query_terms):
            f.write(np.array([len(t) for t in terms], dtype="<u4").tobytes())
            f.write(np.array([fnv1a_terms(t) for t in terms], dtype="<u4").tobytes())
        f.write(top_doc.astype("<i4").tobytes())
        f.write(top_score.astype("<f4").tobytes())
    print(f"wrote {OUT}: {len(docs)} docs, {len(queries)} queries, vocabulary {len(retriever.vocab_dict)}, "
          f"{sum(len(t) for t in doc_terms)} document terms, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
