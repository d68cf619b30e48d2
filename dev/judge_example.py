#!/usr/bin/env python3
"""
An example judge program for train_zelo's `cmd` judge: copy it, replace judge_pair().

Protocol (judges/judge_cmd.h and dev/README_judge_cmd.md have it in full): one JSON request per
line on stdin,
    {"id": 17, "query": "...", "doc_a": "...", "doc_b": "..."}
with a "query_b" member in cross-query battles (then doc_b answers query_b, not query);
one answer per request on stdout, in the order received,
    {"id": 17, "p": 0.83}
p being the probability that doc_a is the better answer. Log to stderr only: any other
line on stdout is an error. Exit when stdin ends.

Requests come in batches and the next batch waits for every answer of this one, so the
program may gather requests to judge them together (an LLM client sends them in parallel)
but must never wait for more than has arrived: here it reads what is available and
judges it as soon as no more input comes within a few milliseconds.

The default judge is a weak, offline heuristic: the share of the query's words that a
document contains, turned into a probability. `--llm` asks an OpenAI-compatible chat
completions endpoint instead (ZELO_JUDGE_LLM_URL, ZELO_JUDGE_LLM_MODEL and
ZELO_JUDGE_LLM_KEY); nothing touches the network without it.

    ./train_zelo ... --judge "cmd:python3 dev/judge_example.py"          (word overlap)
    ./train_zelo ... --judge "cmd:python3 dev/judge_example.py --llm"    (an LLM)
"""
import json
import math
import os
import re
import select
import sys

MAX_BATCH = 256        # requests judged together at most
QUIET_S = 0.005        # no input for this long: the batch so far is all there is
SHARPNESS = 4.0        # logistic slope on the difference of the two overlap scores
STOPWORDS = {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "how", "in",
             "is", "it", "of", "on", "or", "that", "the", "to", "was", "what", "which",
             "with"}


def words(text):
    return {w for w in re.findall(r"\w+", text.lower()) if w not in STOPWORDS}


def overlap(query, doc):
    """share of the query's distinct words that the document contains, in [0, 1]"""
    q = words(query)
    return len(q & words(doc)) / len(q) if q else 0.0


def judge_pair(req):
    """P(doc_a is the better answer) for one request, by word overlap"""
    a = overlap(req["query"], req["doc_a"])
    b = overlap(req.get("query_b", req["query"]), req["doc_b"])
    return 1.0 / (1.0 + math.exp(-SHARPNESS * (a - b)))


def judge_pair_llm(req):
    """P(doc_a is the better answer) asked of an LLM; optional, used only with --llm"""
    import urllib.request
    if "query_b" in req:
        task = ("Document A is judged as an answer to query A, document B as an answer to "
                "query B.\nQuery A: %s\nDocument A: %s\nQuery B: %s\nDocument B: %s\n"
                % (req["query"], req["doc_a"], req["query_b"], req["doc_b"]))
    else:
        task = ("Query: %s\nDocument A: %s\nDocument B: %s\n"
                % (req["query"], req["doc_a"], req["doc_b"]))
    prompt = (task + "Which document answers its query better? Reply with only a number "
              "between 0 and 1: the probability that document A is the better answer.")
    body = json.dumps({"model": os.environ["ZELO_JUDGE_LLM_MODEL"], "temperature": 0,
                       "messages": [{"role": "user", "content": prompt}]}).encode()
    http = urllib.request.Request(os.environ["ZELO_JUDGE_LLM_URL"], data=body, headers={
        "Content-Type": "application/json",
        "Authorization": "Bearer " + os.environ.get("ZELO_JUDGE_LLM_KEY", "")})
    with urllib.request.urlopen(http, timeout=120) as resp:
        reply = json.load(resp)["choices"][0]["message"]["content"]
    # a model that wraps its number in words still counts; one with no number is an error
    number = re.search(r"\d*\.?\d+", reply)
    if number is None:
        raise ValueError("LLM reply without a probability: %r" % reply)
    return min(1.0, max(0.0, float(number.group())))


def judge_batch(reqs, use_llm):
    if not use_llm:
        return [judge_pair(r) for r in reqs]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=16) as pool:  # the LLM calls of a batch in parallel
        return list(pool.map(judge_pair_llm, reqs))


def main():
    use_llm = "--llm" in sys.argv[1:]
    fd = sys.stdin.fileno()
    buf = b""
    ended = False
    while not ended:
        # block for the first bytes, then take whatever follows without a pause
        chunk = os.read(fd, 1 << 16)
        ended = not chunk
        buf += chunk
        while not ended and buf.count(b"\n") < MAX_BATCH and select.select([fd], [], [], QUIET_S)[0]:
            chunk = os.read(fd, 1 << 16)
            ended = not chunk
            buf += chunk
        *lines, buf = buf.split(b"\n")
        reqs = [json.loads(line) for line in lines]
        for req, p in zip(reqs, judge_batch(reqs, use_llm)):
            sys.stdout.write(json.dumps({"id": req["id"], "p": p}) + "\n")
        sys.stdout.flush()
    if buf.strip():
        sys.stderr.write("judge_example: the input ended inside a request\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
