#!/usr/bin/env python3
"""Builds bench/data/rag_eval_set.json: the numbered questions of the R FAQ and
the Debian FAQ, each with the PDF page(s) that answer it.

For every table-of-contents entry that is a question ("5.3 How can add-on
packages be installed?"), the gold page is the first page after the table of
contents whose text starts a line with that numbered heading; the next page
is gold too when the next heading is not on the same page (the answer runs
on). Pages are 1-based PDF page indices. Page text comes from `cairn
extract` (pdf-extract): pypdf loses the word spaces of the Debian FAQ's
text layer ("HowcanIkeepmyDebiansystemcurrent?").

    python3 bench/scripts/make_rag_eval_set.py ~/.cache/cairn/corpus [path/to/cairn]
"""
import json
import re
import sys
from pathlib import Path

import subprocess

FILES = {
    "r-manuals": "r-manuals/R-FAQ.pdf",
    "debian": "debian/debian-faq.en.pdf",
}
TOC_LINE = re.compile(r"^(\d+(?:\.\d+)+)\.?\s+(.+?\?)[\s.]*\d*$")


def norm(s):
    return re.sub(r"\s+", " ", s).strip().lower()


def questions(cairn, corpus, collection, rel):
    doc = json.loads(subprocess.run([cairn, "extract", str(corpus / rel)], check=True,
                                    capture_output=True, text=True).stdout)
    n = max(s["page"] for s in doc["segments"])
    pages = [""] * n
    for s in doc["segments"]:
        pages[s["page"] - 1] = s["text"]
    toc, toc_pages = {}, set()
    for i, text in enumerate(pages[:12]):
        for line in text.splitlines():
            m = TOC_LINE.match(line.strip())
            if m and (". . ." in line or "..." in line or re.search(r"\s\d+$", line.strip())):
                toc.setdefault(m.group(1), m.group(2).strip(" ."))
                toc_pages.add(i)
    # Every numbered heading's first body page.
    heading_page = {}
    number = re.compile(r"^(\d+(?:\.\d+)+)\.?\s+\S")
    for i, text in enumerate(pages):
        if i in toc_pages:
            continue
        for line in text.splitlines():
            m = number.match(line.strip())
            if m and m.group(1) not in heading_page:
                heading_page[m.group(1)] = i
    ordered = sorted(heading_page.items(), key=lambda kv: kv[1])
    out = []
    for num, q in toc.items():
        if num not in heading_page:
            continue
        p = heading_page[num]
        gold = [p + 1]
        later = [pg for n, pg in ordered if pg >= p and n != num and tuple(map(int, n.split("."))) > tuple(map(int, num.split(".")))]
        if not later or min(later) > p:
            gold.append(p + 2)
        out.append({"collection": collection, "file": Path(rel).name, "number": num,
                    "question": q, "pages": [g for g in gold if g <= len(pages)]})
    return out


def main():
    corpus = Path(sys.argv[1]).expanduser()
    cairn = sys.argv[2] if len(sys.argv) > 2 else "cairn"
    items = []
    for c, rel in FILES.items():
        qs = questions(cairn, corpus, c, rel)
        print(f"{rel}: {len(qs)} questions", file=sys.stderr)
        items += qs
    out = Path(__file__).resolve().parents[1] / "data" / "rag_eval_set.json"
    out.write_text(json.dumps({"meta": {"made_by": "bench/scripts/make_rag_eval_set.py", "pdf_text": "cairn extract (pdf-extract 0.12.1)"},
                               "questions": items}, indent=1, ensure_ascii=False))
    print(out, len(items), "questions", file=sys.stderr)


if __name__ == "__main__":
    main()
