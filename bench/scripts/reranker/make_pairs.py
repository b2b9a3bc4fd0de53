#!/usr/bin/env python3
"""Builds the cross-encoder training pairs from the corpus (no human labels):
the SmolLM2-generated questions of bench/data/router/generated_questions.jsonl,
each with the corpus passage it was generated from as the positive, and hard
negatives: the 3 passages BM25 ranks highest for the question among all the
other passages (plus one random passage). Questions sharing no content word
with their passage are dropped (the generator often drifts off its passage).
Split by question: 90% train, 10% val. The evaluation set
(bench/data/rag_eval_set.json, human-written FAQ questions) is never used here.

Output lines: {"text": question, "text_pair": passage, "labels": ["relevant"] | []}
    python3 bench/scripts/reranker/make_pairs.py      # writes bench/reranker/{train,val}.jsonl
"""
import json
import math
import random
import re
from collections import Counter
from pathlib import Path

HERE = Path(__file__).parent
STOP = set("a an the of to in on for and or is are be by with as at it this that from how do does what can i you "
           "my your when which why where use using used not no if into its their there they we our".split())


def words(t):
    return [w for w in re.findall(r"[a-z0-9_.]+", t.lower()) if w not in STOP and len(w) > 1]


class BM25:
    def __init__(self, docs, k1=1.2, b=0.75):
        self.docs = [Counter(words(d)) for d in docs]
        self.len = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.len) / len(self.len)
        df = Counter(w for d in self.docs for w in d)
        n = len(docs)
        self.idf = {w: math.log(1 + (n - c + 0.5) / (c + 0.5)) for w, c in df.items()}
        self.k1, self.b = k1, b

    def scores(self, q):
        qs = words(q)
        out = []
        for d, l in zip(self.docs, self.len):
            s = 0.0
            for w in qs:
                f = d.get(w, 0)
                if f:
                    s += self.idf[w] * f * (self.k1 + 1) / (f + self.k1 * (1 - self.b + self.b * l / self.avg))
            out.append(s)
        return out


def pair_rows(query, positive, negatives):
    """The JSONL rows of one query: its positive, then its negatives."""
    return [{"text": query, "text_pair": positive, "labels": ["relevant"]}] + \
        [{"text": query, "text_pair": n, "labels": []} for n in negatives]


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for o in rows:
            f.write(json.dumps(o) + "\n")


def main():
    rows = [json.loads(l) for l in open(HERE.resolve().parents[1] / "data/router/generated_questions.jsonl")]
    rows = [r for r in rows if r.get("question") and r.get("passage")]
    passages = sorted({r["passage"] for r in rows})
    index = {p: i for i, p in enumerate(passages)}
    bm25 = BM25(passages)
    rng = random.Random(13)
    kept = [r for r in rows if set(words(r["question"])) & set(words(r["passage"]))]
    rng.shuffle(kept)
    n_val = max(1, len(kept) // 10)
    splits = {"val": kept[:n_val], "train": kept[n_val:]}
    for name, part in splits.items():
        out = []
        for r in part:
            q, pos = r["question"], r["passage"]
            s = bm25.scores(q)
            order = sorted(range(len(passages)), key=lambda i: -s[i])
            negs = [passages[i] for i in order if i != index[pos]][:3]
            while True:
                x = passages[rng.randrange(len(passages))]
                if x != pos and x not in negs:
                    negs.append(x)
                    break
            out += pair_rows(q, pos, negs)
        write_jsonl(HERE.resolve().parents[1] / "data/reranker" / f"{name}.jsonl", out)
        print(f"{name}: {len(part)} questions, {len(out)} pairs")
    print(f"dropped {len(rows) - len(kept)} of {len(rows)} questions sharing no content word with their passage")


if __name__ == "__main__":
    main()
