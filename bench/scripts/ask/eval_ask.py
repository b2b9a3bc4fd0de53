#!/usr/bin/env python3
"""Grounded answers of `cairn ask` on FAQ questions of bench/rag_eval_set.json.

For every STEP-th question (R FAQ and Debian FAQ; the FAQs are in the index,
so this measures answering, not retrieval on unseen text) and for each
setting, runs `cairn ask` (greedy) and parses the sources it prints:
  cited       the model wrote a valid [n]
  attributed  no [n], but answer sentences match source sentences (cosine ≥ 0.6)
  right page  a cited/attributed source is one of the question's gold pages
  idk         the answer is "I don't know"

    python3 bench/scripts/ask/eval_ask.py path/to/cairn [STEP]

Needs the index of `cairn index` over the corpus (README). Writes
bench/reports/ask/report.json (answers included) and prints the table.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETTINGS = {
    "passage, repetition penalty 1.15 (before)": ["--context", "passage", "--repetition-penalty", "1.15"],
    "matched chunk, no penalty, repeat stop (default)": ["--context", "matched", "--repetition-penalty", "1.0"],
}
SOURCE = re.compile(r"^\s+\[(\d+)\] (\S+), page (\d+)")


def ask(cairn, question, extra):
    out = subprocess.run([cairn, "ask", question, *extra], capture_output=True, text=True,
                         check=True).stdout
    answer, _, tail = out.partition("\nSources")
    kind = ("cited" if tail.startswith(" cited") else
            "attributed" if tail.startswith(" (attributed") else "none")
    pages = [(Path(m.group(2)).name, int(m.group(3))) for m in map(SOURCE.match, tail.splitlines()) if m]
    return answer.strip(), kind, pages


def main():
    cairn = sys.argv[1]
    step = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    qs = json.loads((HERE.parents[1] / "data" / "rag_eval_set.json").read_text())["questions"]
    qs = qs[::step]
    report = {}
    for name, extra in SETTINGS.items():
        rows, counts = [], {"cited": 0, "attributed": 0, "right_page": 0, "idk": 0}
        for q in qs:
            answer, kind, pages = ask(cairn, q["question"], extra)
            right = kind != "none" and any(f == q["file"] and p in q["pages"] for f, p in pages)
            counts["cited"] += kind == "cited"
            counts["attributed"] += kind == "attributed"
            counts["right_page"] += right
            counts["idk"] += answer.lower().startswith("i don't know")
            rows.append({"question": q["question"], "gold": [q["file"], q["pages"]], "answer": answer,
                         "sources": kind, "pages": pages, "right_page": right})
            print(f"{name[:20]} | {q['question'][:60]!r}: {kind}, right page {right}", file=sys.stderr)
        report[name] = {"questions": len(qs), **counts, "rows": rows}
    (HERE.parents[1] / "reports" / "ask" / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(qs)} questions (every {step}th of rag_eval_set.json)")
    print("| setting | cited [n] | attributed | a cited/attributed source is a gold page | I don't know |")
    print("|---|---|---|---|---|")
    for name, r in report.items():
        n = r["questions"]
        print(f"| {name} | {r['cited']}/{n} | {r['attributed']}/{n} | {r['right_page']}/{n} | {r['idk']}/{n} |")


if __name__ == "__main__":
    main()
