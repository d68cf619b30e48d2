"""
Writes the fixture of test/test_metrics.c: a synthetic TREC run and qrels covering the
cases where trec_eval's conventions matter, and the per-query values that pytrec_eval
(the trec_eval 9.0.x bundled by pytrec-eval-terrier) gives for them.

    python dev/gen_metrics_fixture.py     # writes test/fixtures/metrics/{run,qrels,expected}.txt

Reference for each measure: ndcg_cut_10, recall_100, recip_rank, map_cut_100, P_10,
num_rel, num_ret from pytrec_eval; MRR@10 from its definition, computed here from a sort of
our own (float32 score descending, ties by document id descending in byte order) and cross-checked
against pytrec_eval's recip_rank (the two must agree whenever the first relevant document
is in the top 10). A query in the qrels but not in the run gets pytrec_eval's values for an
empty ranking (trec_eval -c); run queries without qrels are left out, as pytrec_eval does.
The mean line averages over the queries with at least one relevant document (numpy).
"""
import importlib.metadata
import os

import numpy as np
import pytrec_eval

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "metrics")
MEASURES = {"ndcg_cut_10", "recall_100", "recip_rank", "map_cut_100", "P_10", "num_rel", "num_ret"}
N_QUERIES = 200
N_RUN_ONLY = 8

rng = np.random.default_rng(20250912)


def make_doc_ids(n):
    # id shapes whose byte order differs from their numeric order, upper before lower case,
    # and multi-byte UTF-8, so that the tie-breaking order is really exercised
    shapes = ["d{}", "D{}", "doc-{}_x", "{}", "dé{}", "d{}0"]
    ids = set()
    while len(ids) < n:
        ids.add(shapes[rng.integers(len(shapes))].format(rng.integers(1, 400)))
    return sorted(ids)


def float32_texts(x):
    # most scores are floats, as a model's are, written in their shortest form
    return [str(np.float32(v)) for v in x]


def make_scores(n, kind):
    """returns score texts as they go into the run file; pytrec_eval gets float(text), the
    double that the C reader also parses first"""
    if kind == "ties":  # few distinct values: long runs of ties, some across rank 10 and 100
        return float32_texts(rng.choice([-1.5, 0.0, 0.25, 0.5, 3.0], size=n))
    if kind == "all_equal":
        return float32_texts(np.full(n, rng.normal()))
    if kind == "near_ties":
        # distinct doubles 3e-9 apart, where floats near 0.1 are 7.5e-9 apart: trec_eval keeps
        # scores as floats, so some of these are ties for it (and must be for us) and some not
        base = rng.choice([0.1, 0.7], size=n)
        return [repr(float(b) + float(k) * 3e-9) for b, k in zip(base, rng.integers(0, 6, size=n))]
    scale = 10.0 ** rng.integers(-3, 4)
    return float32_texts(rng.normal(size=n) * scale)


def make_query(kind):
    """returns (qrels dict or None, run dict or None)"""
    n_pool = {"long": 140, "short": 12}.get(kind, 50)
    pool = make_doc_ids(n_pool)
    rng.shuffle(pool)
    n_judged = int(rng.integers(1, min(len(pool), 40) + 1))
    judged = pool[:n_judged]
    if kind == "no_relevant":
        grades = rng.choice([0, 0, -1], size=n_judged)
    elif kind == "negative":
        grades = rng.choice([-2, -1, 0, 1, 2, 3], size=n_judged)
    else:
        grades = rng.choice([0, 0, 1, 2, 3, 4], size=n_judged)
    qrels = {d: int(g) for d, g in zip(judged, grades)}
    if kind == "missing_run":
        return qrels, None
    if kind == "short":
        n_ret = int(rng.integers(1, 10))
    elif kind == "long":
        n_ret = int(rng.integers(101, 126))
    elif kind == "late_relevant":
        n_ret = int(rng.integers(12, 36))
    else:
        n_ret = int(rng.integers(1, 36))
    # retrieve a random part of the pool: some relevant documents are left out
    retrieved = list(rng.permutation(pool)[:n_ret])
    score_kind = kind if kind in ("ties", "all_equal", "near_ties") else "normal"
    if kind == "long" and rng.random() < 0.5:  # ties across the cuts at 10 and 100
        score_kind = "ties"
    scores = make_scores(n_ret, score_kind)
    if kind == "late_relevant":  # the only relevant documents sit below rank 10
        order = sorted(range(n_ret), key=lambda i: (np.float32(float(scores[i])), retrieved[i].encode("utf-8")),
                       reverse=True)
        for i in order[:10]:
            qrels[retrieved[i]] = 0
        if n_ret > 10:
            qrels[retrieved[order[int(rng.integers(10, n_ret))]]] = int(rng.integers(1, 4))
    run = dict(zip(retrieved, scores))
    return qrels, run


KINDS = ["normal", "ties", "all_equal", "short", "long", "no_relevant", "negative",
         "missing_run", "near_ties", "late_relevant"]


def mrr_at_10(qrels, run):
    # our own trec_eval order: score (as a float32, the type trec_eval stores) descending,
    # then doc id descending in UTF-8 byte order
    ranked = sorted(run.items(), key=lambda kv: (np.float32(float(kv[1])), kv[0].encode("utf-8")), reverse=True)
    for rank, (doc, _) in enumerate(ranked[:10], start=1):
        if qrels.get(doc, 0) >= 1:
            return 1.0 / rank
    return 0.0


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    all_qrels, all_runs = {}, {}
    for q in range(N_QUERIES):
        qid = f"q{q + 1}" if q % 3 else str(q + 1)  # mixed qid shapes, sorted as bytes in C
        qrels, run = make_query(KINDS[q % len(KINDS)])
        all_qrels[qid] = qrels
        if run is not None:
            all_runs[qid] = run
    for q in range(N_RUN_ONLY):
        all_runs[f"unjudged{q}"] = dict(zip(make_doc_ids(5), make_scores(5, "normal")))

    evaluator = pytrec_eval.RelevanceEvaluator(all_qrels, MEASURES)
    # an empty ranking for each qrels query the run lacks gives trec_eval -c's values
    results = evaluator.evaluate({qid: {d: float(t) for d, t in all_runs.get(qid, {}).items()} for qid in all_qrels})
    assert set(results) == set(all_qrels)

    rows = []
    for qid in sorted(all_qrels, key=lambda s: s.encode("utf-8")):
        r = results[qid]
        mrr = mrr_at_10(all_qrels[qid], all_runs.get(qid, {}))
        # recip_rank >= 0.1 exactly when the first relevant document is in the top 10
        want = r["recip_rank"] if r["recip_rank"] >= 0.1 - 1e-12 else 0.0
        assert abs(mrr - want) < 1e-15, (qid, mrr, r["recip_rank"])
        num_ret = int(r["num_ret"])
        if max(all_qrels[qid].values()) < 0:
            # trec_eval sizes a table by the largest grade + 1 and misbehaves when that is 0:
            # we have seen num_ret 0 and crashes. Every measure is still 0 (nothing is
            # relevant), but num_ret is taken from its definition here.
            num_ret = len(all_runs.get(qid, {}))
        rows.append((qid, int(r["num_rel"]), num_ret, r["ndcg_cut_10"], r["recall_100"],
                     r["recip_rank"], mrr, r["map_cut_100"], r["P_10"]))

    # run lines: shuffled across queries, random rank column (trec_eval ignores it), mixed
    # separators and a CRLF line ending now and then
    lines = []
    for qid, run in all_runs.items():
        for doc, score in run.items():
            lines.append((qid, doc, score))
    order = rng.permutation(len(lines))
    with open(os.path.join(OUT_DIR, "run.txt"), "w", encoding="utf-8", newline="") as f:
        for k, i in enumerate(order):
            qid, doc, score = lines[i]
            sep = "\t" if k % 7 == 0 else ("  " if k % 11 == 0 else " ")
            end = "\r\n" if k % 13 == 0 else "\n"
            f.write(sep.join([qid, "Q0", doc, str(int(rng.integers(1, 1000))), score, "synthetic"]) + end)
    with open(os.path.join(OUT_DIR, "qrels.txt"), "w", encoding="utf-8", newline="\n") as f:
        for qid, qrels in all_qrels.items():
            for doc, grade in qrels.items():
                f.write(f"{qid} 0 {doc} {grade}\n")

    arr = np.array([row[3:] for row in rows], dtype=np.float64)
    has_rel = np.array([row[1] > 0 for row in rows])
    mean = arr[has_rel].mean(axis=0)
    with open(os.path.join(OUT_DIR, "expected.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("# qid num_rel num_ret ndcg_cut_10 recall_100 recip_rank mrr_10 map_cut_100 P_10"
                "\n# from pytrec-eval-terrier " + importlib.metadata.version("pytrec-eval-terrier")
                + " by dev/gen_metrics_fixture.py; the mean line: count num_rel_sum num_ret_sum, then"
                + " the means over queries with num_rel > 0\n")
        for row in rows:
            f.write(f"{row[0]} {row[1]} {row[2]} " + " ".join(repr(float(v)) for v in row[3:]) + "\n")
        f.write(f"mean {int(has_rel.sum())} {sum(row[1] for row in rows)} {sum(row[2] for row in rows if row[1] > 0)} "
                + " ".join(repr(float(v)) for v in mean) + "\n")
        f.write(f"run_only {N_RUN_ONLY}\n")
    kinds_count = {k: sum(1 for q in range(N_QUERIES) if KINDS[q % len(KINDS)] == k) for k in KINDS}
    print(f"{len(rows)} qrels queries ({int(has_rel.sum())} with relevant docs), {len(lines)} run lines,"
          f" kinds {kinds_count}")


if __name__ == "__main__":
    main()
