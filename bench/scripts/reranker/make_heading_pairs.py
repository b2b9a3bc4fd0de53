#!/usr/bin/env python3
"""Cross-encoder pairs from the manuals' own structure (no human labels):
each numbered section heading ("6.3 Installing packages") is a query, the
~80 words that follow it on its page are the positive passage, and the 3
passages of other sections BM25 ranks highest for it (plus one random) are
negatives. Sources: the R manuals except the R FAQ, and the Debian Reference
(the FAQs are the evaluation set, bench/data/rag_eval_set.json, and never used).
A seeded sample of 240 headings; 90% train, 10% val, split by heading.
--sample=N takes N headings instead, --negatives=N takes N BM25 negatives
instead of 3, and --out=NAME writes NAME_{train,val}.jsonl (the listwise runs
of REPORT.md: --sample=876 --out=listwise; --sample=876 --negatives=6
--out=listwise7). Each query's
rows are consecutive (positive first), the layout `cairn train classify
--listwise` groups by.

    python3 bench/scripts/reranker/make_heading_pairs.py path/to/cairn [--sample=N] [--out=NAME]
"""
import json
import random
import re
import subprocess
import sys
from pathlib import Path

from make_pairs import BM25, pair_rows, words, write_jsonl

HERE = Path(__file__).parent
CACHE = Path.home() / ".cache/cairn/corpus"
HEADING = re.compile(r"^(\d+(?:\.\d+){1,3})\s+([A-Z][^\n]{3,70})$")


def sections(cairn, pdf):
    doc = json.loads(subprocess.run([cairn, "extract", str(pdf)], capture_output=True, check=True).stdout)
    out = []
    for seg in doc["segments"]:
        lines = seg["text"].split("\n")
        for i, line in enumerate(lines):
            m = HEADING.match(line.strip())
            if not m or line.strip().endswith((".", ",")) or re.search(r"\.{4,}|\s\d+$", line):
                continue  # table-of-contents lines end in dots / page numbers
            body = " ".join(" ".join(lines[i + 1:]).split()[:80])
            if len(body.split()) >= 40:
                out.append((m.group(2).strip(), body, f"{pdf.name}:{seg['page']}"))
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    opts = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
    cairn = args[0] if args else "cairn"
    sample, prefix = int(opts.get("sample", 240)), opts.get("out", "heading")
    n_neg = int(opts.get("negatives", 3))
    pdfs = [p for p in sorted((CACHE / "r-manuals").glob("*.pdf")) if p.name != "R-FAQ.pdf"]
    pdfs += [p for p in sorted((CACHE / "debian").glob("*.pdf")) if "faq" not in p.name.lower()]
    secs = [s for p in pdfs for s in sections(cairn, p)]
    passages = [b for _, b, _ in secs]
    bm25 = BM25(passages)
    rng = random.Random(7)
    pick = rng.sample(range(len(secs)), min(sample, len(secs)))
    n_val = len(pick) // 10
    for name, part in (("val", pick[:n_val]), ("train", pick[n_val:])):
        out = []
        for i in part:
            q, pos, where = secs[i]
            s = bm25.scores(q)
            order = sorted(range(len(passages)), key=lambda j: -s[j])
            negs = [passages[j] for j in order if secs[j][2] != where][:n_neg]
            negs.append(passages[rng.choice([j for j in range(len(secs)) if secs[j][2] != where])])
            out += pair_rows(q, pos, negs)
        write_jsonl(HERE.resolve().parents[1] / "data/reranker" / f"{prefix}_{name}.jsonl", out)
        print(f"{name}: {len(part)} headings, {len(out)} pairs")
    print(f"{len(secs)} sections found in {len(pdfs)} PDFs")


if __name__ == "__main__":
    main()
