#!/usr/bin/env python3
"""`cairn ask` on questions written in users' own words (bench/data/ask_eval_set.json):
generated vs. quoted (extractive) answers.

For each answerable question (61, with gold file, pages and key terms) and
each answer mode, runs `cairn ask` over the index of the manuals and scores:
  key-term recall   the answer contains one of the question's key terms
  ceiling           the retrieved chunks (top 5) contain one (what an
                    extractive answer could at best quote)
  gold source       a listed source (cited, else attributed) is a gold page
  citation prec.    listed sources that are gold pages / listed sources
  answered          not "I don't know"
and for the 30 unanswerable questions (near-domain, off-topic) the share
refused ("I don't know"). Faithfulness is not scored here (no validated
judge yet); a quoted answer is verbatim source text by construction.

    python3 bench/scripts/router/retrieval_routes.py path/to/cairn   # builds the index once
    python3 bench/scripts/ask/eval_answers.py path/to/cairn [--index FILE] [--modes generate,quote]

Writes bench/reports/ask/answers.json (every answer) and prints the table.
"""
import argparse
import json
import os
import re
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("CAIRN_CACHE", Path.home() / ".cache/cairn"))
MODES = {
    "generate": [],
    "quote": ["--answer", "quote"],
    "quote-passage": ["--answer", "quote", "--context", "passage"],
    "quote-5": ["--answer", "quote", "--quote-sentences", "5"],
    "quote-0.4": ["--answer", "quote", "--quote-min-cosine", "0.4"],
}
SOURCE = re.compile(r"^\s+\[(\d+)\] (\S+), page (\d+)")


def ask(cairn, index, question, extra):
    t = time.time()
    out = subprocess.run([cairn, "ask", question, "--index", index, *extra],
                         capture_output=True, text=True, check=True).stdout
    answer, _, tail = out.partition("\n\nSources")
    pages = [(Path(m.group(2)).name, int(m.group(3))) for m in map(SOURCE.match, tail.splitlines()) if m]
    return answer.strip(), pages, time.time() - t


def has_term(text, terms):
    """Case- and whitespace-blind: PDF text breaks identifiers at line ends
    ("R_ LIBS_USER"), and either spelling is the term."""
    flat = re.sub(r"\s+", "", text.lower())
    return any(re.sub(r"\s+", "", k.lower()) in flat for k in terms)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cairn")
    ap.add_argument("--index", default=str(CACHE / "index/router.cidx"))
    ap.add_argument("--modes", default="generate,quote", help="comma-separated names of MODES")
    ap.add_argument("--out", default=str(HERE.parents[1] / "reports/ask/answers.json"))
    a = ap.parse_args()
    modes = {m: MODES[m] for m in a.modes.split(",")}
    data = json.loads((HERE.parents[1] / "data/ask_eval_set.json").read_text())
    qs, un = data["questions"], data["unanswerable"]
    # The extractive ceiling: the retrieved chunks hold a key term.
    ceiling = 0
    for q in qs:
        out = subprocess.run([a.cairn, "ask", q["question"], "--index", a.index, "--retrieve-only"],
                             capture_output=True, text=True, check=True).stdout
        hits = json.loads(out)
        ceiling += any(has_term(h["matched"]["text"], q["key_terms"]) for h in hits)
    report = {"ceiling": ceiling, "n": len(qs), "modes": {}}
    for mode, extra in modes.items():
        rows, key, gold, listed, good, answered, secs = [], 0, 0, 0, 0, 0, 0.0
        for q in qs:
            answer, pages, s = ask(a.cairn, a.index, q["question"], extra)
            secs += s
            idk = answer.startswith("I don't know")
            hit = [p for p in pages if p[0] == q["file"] and p[1] in q["pages"]]
            key += has_term(answer, q["key_terms"])
            gold += bool(hit)
            listed += len(pages)
            good += len(hit)
            answered += not idk
            rows.append({"question": q["question"], "answer": answer, "sources": pages,
                         "key_term": has_term(answer, q["key_terms"]), "gold_source": bool(hit)})
        refused = 0
        for u in un:
            answer, _, s = ask(a.cairn, a.index, u["question"], extra)
            refused += answer.startswith("I don't know")
            rows.append({"question": u["question"], "kind": u["kind"], "answer": answer})
        report["modes"][mode] = {"key_term": key, "gold_source": gold, "listed": listed, "listed_gold": good,
                                 "answered": answered, "refused": refused, "unanswerable": len(un),
                                 "seconds_per_answer": secs / len(qs), "rows": rows}
    Path(a.out).write_text(json.dumps(report, indent=1, ensure_ascii=False))
    n = len(qs)
    print(f"extractive ceiling (a top-5 chunk holds a key term): {ceiling}/{n} = {ceiling / n:.2f}")
    print("| mode | key-term recall | gold source listed | citation precision | answered | unanswerable refused | s/answer |")
    print("|---|---|---|---|---|---|---|")
    for mode, r in report["modes"].items():
        prec = r["listed_gold"] / r["listed"] if r["listed"] else 0.0
        print(f"| {mode} | {r['key_term']}/{n} = {r['key_term'] / n:.2f} | {r['gold_source']}/{n} = {r['gold_source'] / n:.2f} "
              f"| {prec:.2f} ({r['listed_gold']}/{r['listed']}) | {r['answered']}/{n} | {r['refused']}/{r['unanswerable']} "
              f"| {r['seconds_per_answer']:.1f} |")


if __name__ == "__main__":
    main()
