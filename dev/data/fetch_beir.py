"""
Downloads a BEIR dataset by name, verifies the zip against its published md5, unpacks it,
and checks and normalises it into the layout train_zelo's loader (io/beir.h) reads:

  <out>/<name>/corpus.jsonl      {"_id", "title", "text"} per line
  <out>/<name>/queries.jsonl     {"_id", "text"} per line
  <out>/<name>/qrels/<split>.tsv "query-id<TAB>corpus-id<TAB>score" with that header line,
                                 for each of train, dev, test the dataset has

cqadupstack is one zip of twelve forums; each becomes <out>/cqadupstack/<forum>/.

Normalising means: every line of corpus and queries is checked (a JSON object with a
non-empty string "_id" — a number id is turned into its decimal string — and a string
"text"; "title" a string or absent), other members ("metadata") are left out, invalid
UTF-8 bytes become U+FFFD and NUL characters spaces (both counted); in the qrels the header
is rewritten, every score must be a whole number, judgments naming an unknown query or
document are dropped and counted, and an exact repeat of a judgment is dropped and counted.
What cannot be repaired without guessing stops the script with the file and line: a
duplicate "_id", a (query, document) pair judged twice with different scores, a line that
is not JSON. Every count is printed, so nothing is changed silently.

The md5 figures are those the BEIR project publishes in its dataset table; a dataset not
in the table (or --url to another mirror) can be fetched with --md5 to verify it, or
without any check, which the script then says. --zip takes a zip already downloaded (the
machine need not be online), and --normalize DIR checks and normalises a BEIR directory in
place (your own data, or a dataset unpacked by hand).

Usage (from the repository root; needs only the Python standard library):
  python dev/data/fetch_beir.py scifact nfcorpus --out data
  python dev/data/fetch_beir.py scifact --zip ~/Downloads/scifact.zip --out data
  python dev/data/fetch_beir.py --normalize data/mydataset
  python dev/data/fetch_beir.py --list
"""
import argparse
import hashlib
import json
import os
import shutil
import sys
import time
import urllib.request
import zipfile

BASE_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets"

# Published md5 of each public zip (BEIR's "Datasets available" table in its README and
# wiki). For msmarco the table gives 444067da...; a listing of the files as served, with
# their sizes (a public gist of BEIR's downloads), gives 244067da..., the same but for the
# first digit, so the table most likely has a typo there: both are accepted.
PUBLISHED_MD5 = {
    "msmarco": ("444067daf65d982533ea17ebd59501e4", "244067daf65d982533ea17ebd59501e4"),
    "trec-covid": ("ce62140cb23feb9becf6270d0d1fe6d1",),
    "nfcorpus": ("a89dba18a62ef92f7d323ec890a0d38d",),
    "nq": ("d4d3d2e48787a744b6f6e691ff534307",),
    "hotpotqa": ("f412724f78b0d91183a0e86805e16114",),
    "fiqa": ("17918ed23cd04fb15047f73e6c3bd9d9",),
    "arguana": ("8ad3e3c2a5867cdced806d6503f29b99",),
    "webis-touche2020": ("46f650ba5a527fc69e0a6521c5a23563",),
    "cqadupstack": ("4e41456d7df8ee7760a7f866133bda78",),
    "quora": ("18fb154900ba42a600f84b839c173167",),
    "dbpedia-entity": ("c2a39eb420a3164af735795df012ac2c",),
    "scidocs": ("38121350fc3a4d2f48850f6aff52e4a9",),
    "fever": ("5a818580227bfb4b35bb6fa46d9b6c03",),
    "climate-fever": ("8b66f0a9126c521bae2bde127b4dc99d",),
    "scifact": ("5f7d1de60b170fc8027bb7898e2efca1",),
}

SPLITS = ("train", "dev", "test")
QRELS_HEADER = "query-id\tcorpus-id\tscore"


class DataError(Exception):
    """A problem in the data that the script will not guess its way around."""


# ----------------------------------------------------------------------------
# download and unpack

def file_md5(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(url, path):
    """Streams url into path (through path.part, so an interrupted download never looks done)."""
    part = path + ".part"
    print(f"downloading {url}")
    with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as f:
        total = int(response.headers.get("Content-Length") or 0)
        done, last = 0, 0.0
        for block in iter(lambda: response.read(1 << 20), b""):
            f.write(block)
            done += len(block)
            now = time.time()
            if now - last > 2.0:
                last = now
                share = f" of {total / 1e6:.1f} MB ({100.0 * done / total:.0f}%)" if total else " MB"
                print(f"  {done / 1e6:.1f}{share}", flush=True)
    if total and done != total:
        raise DataError(f"{url}: received {done} bytes, the server announced {total}")
    os.replace(part, path)


def unpack(zip_path, dest):
    """Extracts the zip into dest, refusing members that would land outside it."""
    root = os.path.realpath(dest)
    with zipfile.ZipFile(zip_path) as z:
        for member in z.infolist():
            target = os.path.realpath(os.path.join(dest, member.filename))
            if os.path.commonpath([root, target]) != root:
                raise DataError(f"{zip_path}: member {member.filename!r} points outside the target directory")
        z.extractall(dest)


def dataset_dirs(top):
    """Directories under top holding a corpus.jsonl: one per dataset (twelve for cqadupstack)."""
    found = []
    for d, _, files in os.walk(top):
        if "corpus.jsonl" in files:
            found.append(d)
    return sorted(found)


# ----------------------------------------------------------------------------
# normalising

def decode_line(raw, counts):
    """bytes -> str; invalid UTF-8 becomes U+FFFD, counted"""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        counts["lines with invalid UTF-8"] += 1
        return raw.decode("utf-8", errors="replace")


def clean_text(s, counts):
    if "\x00" in s:
        counts["NUL characters"] += s.count("\x00")
        s = s.replace("\x00", " ")
    return s


def normalize_jsonl(src, dst, with_title):
    """Checks and rewrites corpus.jsonl (with_title) or queries.jsonl; returns the set of ids
    and a dict of what was repaired."""
    counts = {"lines with invalid UTF-8": 0, "NUL characters": 0, "number ids made strings": 0,
              "null texts made empty": 0, "blank lines": 0}
    first_line = {}
    tmp = dst + ".tmp"
    with open(src, "rb") as fin, open(tmp, "w", encoding="utf-8", newline="\n") as fout:
        for line_no, raw in enumerate(fin, 1):
            line = decode_line(raw, counts)
            if line.strip() == "":
                counts["blank lines"] += 1
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{src} line {line_no}: not valid JSON: {e}") from None
            if not isinstance(obj, dict):
                raise DataError(f"{src} line {line_no}: a JSON {type(obj).__name__}, expected an object")
            doc_id = obj.get("_id")
            if isinstance(doc_id, int) and not isinstance(doc_id, bool):
                doc_id = str(doc_id)
                counts["number ids made strings"] += 1
            if not isinstance(doc_id, str) or doc_id == "" or "\x00" in doc_id:
                raise DataError(f"{src} line {line_no}: \"_id\" is missing, empty or not a string: {obj.get('_id')!r}")
            if doc_id in first_line:
                raise DataError(f"{src} line {line_no}: duplicate \"_id\" {doc_id!r}, first at line {first_line[doc_id]}")
            first_line[doc_id] = line_no
            text = obj.get("text")
            if text is None:
                counts["null texts made empty"] += 1
                text = ""
            if not isinstance(text, str):
                raise DataError(f"{src} line {line_no}: \"text\" is a {type(text).__name__}, expected a string")
            out = {"_id": doc_id}
            if with_title:
                title = obj.get("title")
                if title is not None and not isinstance(title, str):
                    raise DataError(f"{src} line {line_no}: \"title\" is a {type(title).__name__}, expected a string")
                out["title"] = clean_text(title or "", counts)
            out["text"] = clean_text(text, counts)
            fout.write(json.dumps(out, ensure_ascii=False) + "\n")
    os.replace(tmp, dst)
    return set(first_line), counts


def parse_score(s):
    """A qrels score as an int: '2' or an integral float such as '2.0'; None otherwise."""
    try:
        return int(s)
    except ValueError:
        try:
            f = float(s)
        except ValueError:
            return None
        return int(f) if f.is_integer() else None


def normalize_qrels(src, dst, query_ids, doc_ids):
    """Checks and rewrites one qrels file; returns its statistics."""
    stats = {"judgments": 0, "queries": 0, "grades": {}, "unknown query": 0, "unknown document": 0,
             "exact repeats": 0}
    seen = {}  # (query, doc) -> (score, line)
    judged_queries = set()
    rows = []
    with open(src, "rb") as fin:
        counts = {"lines with invalid UTF-8": 0}
        for line_no, raw in enumerate(fin, 1):
            line = decode_line(raw, counts).rstrip("\r\n")
            if line.strip() == "":
                continue
            fields = line.split("\t")
            if len(fields) != 3:
                raise DataError(f"{src} line {line_no}: {len(fields)} tab-separated fields, expected 3: {line[:80]!r}")
            qid, did, score_text = fields
            score = parse_score(score_text)
            if score is None:
                # BEIR's files begin with a header line; any first line whose score is not a number is taken as one
                if line_no == 1:
                    continue
                raise DataError(f"{src} line {line_no}: score {score_text!r} is not a whole number")
            if qid == "" or did == "":
                raise DataError(f"{src} line {line_no}: empty query or corpus id")
            if qid not in query_ids:
                stats["unknown query"] += 1
                continue
            if did not in doc_ids:
                stats["unknown document"] += 1
                continue
            key = (qid, did)
            if key in seen:
                if seen[key][0] != score:
                    raise DataError(f"{src} line {line_no}: query {qid!r} and document {did!r} judged {score}, "
                                    f"but {seen[key][0]} at line {seen[key][1]}")
                stats["exact repeats"] += 1
                continue
            seen[key] = (score, line_no)
            rows.append((qid, did, score))
            judged_queries.add(qid)
            stats["grades"][score] = stats["grades"].get(score, 0) + 1
    if counts["lines with invalid UTF-8"]:
        raise DataError(f"{src}: {counts['lines with invalid UTF-8']} lines are not valid UTF-8; ids must match byte for byte")
    tmp = dst + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as fout:
        fout.write(QRELS_HEADER + "\n")
        for qid, did, score in rows:
            fout.write(f"{qid}\t{did}\t{score}\n")
    os.replace(tmp, dst)
    stats["judgments"] = len(rows)
    stats["queries"] = len(judged_queries)
    return stats


def normalize_dir(src, dst):
    """Normalises the BEIR directory src into dst (the same directory is fine) and prints
    what it holds and what was repaired."""
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not os.path.isfile(os.path.join(src, name)):
            raise DataError(f"{src}: no {name}")
    splits = [s for s in SPLITS if os.path.isfile(os.path.join(src, "qrels", s + ".tsv"))]
    if not splits:
        raise DataError(f"{src}: no qrels/train.tsv, qrels/dev.tsv or qrels/test.tsv")
    os.makedirs(os.path.join(dst, "qrels"), exist_ok=True)
    doc_ids, doc_counts = normalize_jsonl(os.path.join(src, "corpus.jsonl"), os.path.join(dst, "corpus.jsonl"), True)
    query_ids, query_counts = normalize_jsonl(os.path.join(src, "queries.jsonl"), os.path.join(dst, "queries.jsonl"), False)
    print(f"{dst}: {len(doc_ids)} documents, {len(query_ids)} queries")
    for what, counts in (("corpus", doc_counts), ("queries", query_counts)):
        for k, v in counts.items():
            if v:
                print(f"  {what}: {v} {k}")
    for split in splits:
        st = normalize_qrels(os.path.join(src, "qrels", split + ".tsv"), os.path.join(dst, "qrels", split + ".tsv"),
                             query_ids, doc_ids)
        grades = ", ".join(f"{g}: {n}" for g, n in sorted(st["grades"].items()))
        print(f"  qrels/{split}.tsv: {st['judgments']} judgments of {st['queries']} queries (grade: count {grades})")
        for k in ("unknown query", "unknown document", "exact repeats"):
            if st[k]:
                print(f"    dropped {st[k]} lines: {k}")
        if st["judgments"] == 0:
            raise DataError(f"{src}/qrels/{split}.tsv: no judgment left")
    # files of the source that are not part of the layout (other qrels) stay where they were


# ----------------------------------------------------------------------------
# main

def fetch(name, args):
    out_dir = os.path.join(args.out, name)
    zip_path = args.zip or os.path.join(args.out, name + ".zip")
    if not args.zip:
        os.makedirs(args.out, exist_ok=True)
        if not os.path.exists(zip_path):
            download(args.url or f"{BASE_URL}/{name}.zip", zip_path)
    expected = (args.md5.lower(),) if args.md5 else PUBLISHED_MD5.get(name, ())
    if expected:
        got = file_md5(zip_path)
        if got not in expected:
            raise DataError(f"{zip_path}: md5 {got}, expected {' or '.join(expected)} "
                            "(a truncated or changed download: delete it and run again)")
        print(f"{zip_path}: md5 {got} verified")
    else:
        print(f"warning: no md5 known for {name!r} and none given (--md5): {zip_path} is NOT verified")
    unpack_dir = os.path.join(args.out, "." + name + ".unpack")
    shutil.rmtree(unpack_dir, ignore_errors=True)
    unpack(zip_path, unpack_dir)
    try:
        found = dataset_dirs(unpack_dir)
        if not found:
            raise DataError(f"{zip_path}: no corpus.jsonl inside")
        for d in found:
            # the zip holds <name>/... (cqadupstack: <name>/<forum>/...): keep the path below <name>
            rel = os.path.relpath(d, unpack_dir).split(os.sep)[1:]
            normalize_dir(d, os.path.join(out_dir, *rel))
    finally:
        shutil.rmtree(unpack_dir, ignore_errors=True)
    if not args.zip and not args.keep_zip:
        os.remove(zip_path)


def main():
    p = argparse.ArgumentParser(description="Fetch, verify and normalise BEIR datasets for train_zelo.")
    p.add_argument("names", nargs="*", help="dataset names, e.g. scifact nfcorpus fiqa trec-covid msmarco")
    p.add_argument("--out", default="data", help="directory that receives <name>/ [data]")
    p.add_argument("--zip", help="use this zip instead of downloading (one dataset)")
    p.add_argument("--url", help="download from this URL instead of BEIR's (one dataset)")
    p.add_argument("--md5", help="expected md5 of the zip (for a dataset or mirror not in the table)")
    p.add_argument("--keep-zip", action="store_true", help="keep the downloaded zip")
    p.add_argument("--normalize", metavar="DIR", help="check and normalise an existing BEIR directory in place")
    p.add_argument("--list", action="store_true", help="list the datasets with a published md5")
    args = p.parse_args()
    if args.list:
        for name in PUBLISHED_MD5:
            print(name)
        return 0
    if (args.zip or args.url or args.md5) and len(args.names) != 1:
        p.error("--zip, --url and --md5 apply to exactly one dataset")
    if not args.names and not args.normalize:
        p.error("give dataset names or --normalize DIR")
    try:
        if args.normalize:
            normalize_dir(args.normalize, args.normalize)
        for name in args.names:
            if "/" in name or name.startswith("."):
                p.error(f"not a dataset name: {name!r}")
            fetch(name, args)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
