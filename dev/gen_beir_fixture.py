"""
Writes test/fixtures/beir/<name>_texts.tsv for cranfield and cisi: what test/test_beir.c
checks the C reader's texts against, read here with Python's json module.

One line per document, then one per query, in file order:
  d|q <TAB> id <TAB> byte length <TAB> FNV-1a 32 (hex) of the UTF-8 text
where a document's text is title + " " + text (text alone when the title is empty, as
io/beir.h says) and a query's text is its "text".

Run from the repository root: python dev/gen_beir_fixture.py
"""
import json
import os


def fnv1a(data):
    h = 2166136261
    for byte in data:
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def main():
    for name in ("cranfield", "cisi"):
        base = os.path.join("..", "shared", "data", name)
        out = os.path.join("test", "fixtures", "beir", f"{name}_texts.tsv")
        lines = []
        for kind, fname in (("d", "corpus.jsonl"), ("q", "queries.jsonl")):
            with open(os.path.join(base, fname), encoding="utf-8") as f:
                for line in f:
                    if not line.strip():
                        continue
                    obj = json.loads(line)
                    text = obj["text"]
                    if kind == "d" and obj.get("title"):
                        text = obj["title"] + " " + text
                    data = text.encode("utf-8")
                    lines.append(f"{kind}\t{obj['_id']}\t{len(data)}\t{fnv1a(data):08x}\n")
        with open(out, "w") as f:
            f.writelines(lines)
        print(f"wrote {out}: {len(lines)} lines, {os.path.getsize(out)} bytes")


if __name__ == "__main__":
    main()
