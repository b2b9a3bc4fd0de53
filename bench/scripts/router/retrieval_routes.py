#!/usr/bin/env python3
"""Routing by retrieval evidence: how well does "the collection of the best
retrieved passages" route the router's test questions?

Builds (once) an index of the router's four collections from the manuals
only (no FAQ: the test questions come from the FAQs), then retrieves for
each test question over all collections and routes by
  - top1: the collection of the best hit,
  - vote: the collection with the largest summed score over the top k hits.
Prints macro-F1 and accuracy of each rule on test.jsonl (85) and
test_full.jsonl (106), and writes the per-question evidence as JSON for the
router's ensemble.

    python3 bench/scripts/router/retrieval_routes.py [path/to/cairn] [--k 10] > bench/reports/router/retrieval_routes.txt
"""
import argparse
import json
import os
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "data/router"
CACHE = Path(os.environ.get("CAIRN_CACHE", Path.home() / ".cache/cairn"))
CORPUS = CACHE / "corpus"
COLLECTIONS = {
    "debian": ["debian/debian-reference.en.pdf"],
    "r-admin": ["r-manuals/R-admin.pdf"],
    "r-lang": ["r-manuals/R-intro.pdf", "r-manuals/R-lang.pdf", "r-manuals/R-data.pdf"],
    "r-devel": ["r-manuals/R-exts.pdf", "r-manuals/R-ints.pdf"],
}


def macro_f1(truth, pred, labels):
    f1s = []
    for c in labels:
        tp = sum(t == c and p == c for t, p in zip(truth, pred))
        fp = sum(t != c and p == c for t, p in zip(truth, pred))
        fn = sum(t == c and p != c for t, p in zip(truth, pred))
        if tp + fp + fn == 0:
            continue
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return sum(f1s) / len(f1s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cairn", nargs="?", default="cairn")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--index", default=str(CACHE / "index/router.cidx"))
    ap.add_argument("--evidence", default=None, help="write per-question evidence JSON here")
    a = ap.parse_args()
    index = Path(a.index)
    index.parent.mkdir(parents=True, exist_ok=True)
    for name, files in COLLECTIONS.items():
        for f in files:  # unchanged files are skipped (content hash)
            subprocess.run([a.cairn, "index", str(CORPUS / f), "--collection", name,
                            "--index", str(index)], check=True)
    labels = list(COLLECTIONS)
    rows = {}
    for split in ["test.jsonl", "test_full.jsonl"]:
        for line in (DATA / split).read_text().splitlines():
            t = json.loads(line)
            rows[t["text"]] = t["label"]
    evidence = {}
    for q in rows:
        out = subprocess.run([a.cairn, "ask", q, "--index", str(index), "--retrieve-only",
                              "--k", str(a.k), "--candidates", str(max(40, a.k))],
                             check=True, capture_output=True, text=True).stdout
        hits = json.loads(out)
        evidence[q] = [{"collection": h["collection"], "score": h["score"],
                        "cosine": h.get("cosine"), "bm25": h.get("bm25")} for h in hits]
    if a.evidence:
        Path(a.evidence).write_text(json.dumps(evidence, indent=1))
    for split in ["test.jsonl", "test_full.jsonl"]:
        test = [json.loads(l) for l in (DATA / split).read_text().splitlines()]
        truth = [t["label"] for t in test]
        for rule in ["top1", "vote"]:
            pred = []
            for t in test:
                hits = evidence[t["text"]]
                if rule == "top1":
                    pred.append(hits[0]["collection"] if hits else labels[0])
                else:
                    s = defaultdict(float)
                    for h in hits:
                        s[h["collection"]] += h["score"]
                    pred.append(max(s, key=s.get) if s else labels[0])
            acc = sum(p == t for p, t in zip(pred, truth)) / len(truth)
            print(f"{split} {rule} (k={a.k}): macro-F1 {macro_f1(truth, pred, labels):.3f}, "
                  f"accuracy {acc:.3f}, confusions {Counter((t, p) for t, p in zip(truth, pred) if t != p).most_common(6)}")


if __name__ == "__main__":
    main()
