#!/usr/bin/env python3
"""How `cairn ask --router` would route the router's test questions.

For each --router-threshold t, the router picks the fewest collections whose
probabilities sum to t (most probable first; every collection when that takes
all labels), as `cairn::train::route_scores` does. Printed per threshold: the
share of questions whose right collection is searched (coverage), the mean
number of collections searched (4 = no routing), and how often it searched
everything. Top-1 macro-F1 is `cairn eval classify`'s number.

    python3 bench/scripts/router/eval_routes.py path/to/router [path/to/cairn] > bench/router/routes.txt
"""
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def routes(scores, threshold):
    order = sorted(scores, key=lambda l: -scores[l])
    chosen, total = [], 0.0
    for label in order:
        chosen.append(label)
        total += scores[label]
        if total >= threshold:
            break
    if total < threshold or len(chosen) == len(order):
        return list(order)
    return chosen


def main():
    model = sys.argv[1]
    cairn = sys.argv[2] if len(sys.argv) > 2 else "cairn"
    test = [json.loads(l) for l in (HERE.parents[1] / "data/router/test.jsonl").read_text().splitlines()]
    out = subprocess.run([cairn, "classify", "--model", model] + [t["text"] for t in test],
                         check=True, capture_output=True, text=True).stdout
    preds = json.loads(out)
    print(f"{len(test)} test questions, router {model}")
    print("threshold  coverage  mean searched  searched all")
    for t in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99):
        hit = n = every = 0
        for q, p in zip(test, preds):
            r = routes(p["scores"], t)
            hit += q["label"] in r
            n += len(r)
            every += len(r) == len(p["scores"])
        print(f"{t:9.2f}  {hit / len(test):8.3f}  {n / len(test):13.2f}  {every:12d}")


if __name__ == "__main__":
    main()
