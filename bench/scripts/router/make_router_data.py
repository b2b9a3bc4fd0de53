#!/usr/bin/env python3
"""Builds the router's data: which document collection answers a question.

Collections (labels) and their manuals:
  debian   Debian Reference                       (debian-reference.en.pdf)
  r-admin  R Installation and Administration       (R-admin.pdf)
  r-lang   An Introduction to R, R Language Definition, R Data Import/Export
                                                   (R-intro.pdf, R-lang.pdf, R-data.pdf)
  r-devel  Writing R Extensions, R Internals       (R-exts.pdf, R-ints.pdf)

Training and validation data come from the manuals only, three kinds of
example (--kinds= picks some; default all three):
  * passage: the text of every page cut into 60-word pieces (at most
    PASSAGES_PER_CLASS per collection, a seeded sample);
  * heading: the numbered section titles ("6.3 Installing packages");
  * generated: SmolLM2-135M-Instruct (through `cairn generate`, greedy, a
    one-example Text/Question prompt) asked for one question per sampled
    passage (answers without a question mark are dropped); cached in
    generated_questions.jsonl so a rerun does not regenerate them.
REPORT.md has what each kind does to the test score (probe_kinds.py) and
the passage-only runs.
10% of each (collection, kind) goes to validation.

The test set is human-written questions that never appear in training: the
numbered questions of the R FAQ and of the Debian FAQ, labeled by hand in
rfaq_labels.tsv and dfaq_labels.tsv by one rule: questions about the project
(history, mailing lists, licensing, contributing), about third-party software,
or that two collections answer equally are left out, with the reason
(test.jsonl); test_full.jsonl keeps every Debian FAQ question (the first
protocol, REPORT.md). Neither FAQ is a training source.

    python3 bench/scripts/router/make_router_data.py ~/.cache/cairn/corpus [path/to/cairn] [--kinds=passage,heading,generated]

Writes train.jsonl, val.jsonl, test.jsonl, test_full.jsonl into bench/data/router/.
"""
import json
import random
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "data" / "router"
COLLECTIONS = {
    "debian": ["debian/debian-reference.en.pdf"],
    "r-admin": ["r-manuals/R-admin.pdf"],
    "r-lang": ["r-manuals/R-intro.pdf", "r-manuals/R-lang.pdf", "r-manuals/R-data.pdf"],
    "r-devel": ["r-manuals/R-exts.pdf", "r-manuals/R-ints.pdf"],
}
PASSAGES_PER_CLASS = 400
GENERATED_PER_CLASS = 60
WORDS = 60
SEED = 13
HEADING = re.compile(r"^(\d+(?:\.\d+)*)\.?\s+([A-Z][^\n]{3,90}?)(?:\s*\.(?:\s*\.)+\s*\d+)?\s*$")
QUESTION = re.compile(r"^(\d+(?:\.\d+)+)\.?\s+(.+\?)\s*$")


def pages(cairn, path):
    doc = json.loads(subprocess.run([cairn, "extract", str(path)], check=True,
                                    capture_output=True, text=True).stdout)
    n = max(s["page"] for s in doc["segments"])
    out = [""] * n
    for s in doc["segments"]:
        out[s["page"] - 1] += s["text"] + "\n"
    return out


def clean(text):
    return re.sub(r"\s+", " ", text).strip()


def manual_examples(cairn, corpus, label, rel):
    ps = pages(cairn, corpus / rel)
    passages, headings = [], {}
    for text in ps:
        for line in text.splitlines():
            m = HEADING.match(line.strip())
            if m and 2 <= len(m.group(2).split()) <= 12 and not m.group(2).endswith("."):
                title = clean(m.group(2).rstrip(" ."))
                headings.setdefault(title.lower(), title)
        lines = text.splitlines()
        # Drop the running header ("Chapter 2: R Basics 7").
        body = clean(" ".join(lines[1:] if len(lines) > 1 else lines))
        words = body.split()
        for i in range(0, len(words), WORDS):
            piece = words[i:i + WORDS]
            if len(piece) >= 25 and is_prose(piece):
                passages.append(" ".join(piece))
    return passages, list(headings.values())


# One worked example in the prompt: the 135M instruct model answers a bare
# instruction with chatter, but continues a Text/Question pattern well.
SHOT = ("Text: The install.packages() function downloads packages from CRAN and "
        "installs them into a library directory.\nQuestion: How do I install a package "
        "from CRAN?\n\n")


def generate_question(cairn, passage):
    prompt = SHOT + "Text: " + passage + "\nQuestion:"
    out = subprocess.run([cairn, "generate", "--max-new-tokens", "25",
                          "--repetition-penalty", "1.1", prompt],
                         check=True, capture_output=True, text=True).stdout
    first = out.strip().splitlines()[0] if out.strip() else ""
    if "?" not in first:
        return None
    q = clean(first.split("?")[0]) + "?"
    return q if len(q.split()) >= 3 else None


def is_prose(piece):
    """Not a table-of-contents or index fragment: mostly words, no dot leaders."""
    alpha = sum(1 for w in piece if re.search(r"[A-Za-z]{2,}", w))
    return ". . ." not in " ".join(piece) and alpha >= 0.6 * len(piece)


def faq_questions(cairn, path, skip_pages=0):
    found = {}
    for i, text in enumerate(pages(cairn, path)):
        if i < skip_pages:
            continue
        for line in text.splitlines():
            m = QUESTION.match(line.strip())
            if m and m.group(1) not in found:
                found[m.group(1)] = clean(m.group(2))
    return found


def read_labels(name):
    """Question number → label ("-" = left out) from a hand-labeled TSV."""
    labels = {}
    for line in (DATA / name).read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        num, lab = line.split("\t")[:2]
        labels[num] = lab
    return labels


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--kinds")]
    kinds = ["passage", "heading", "generated"]
    for a in sys.argv[1:]:
        if a.startswith("--kinds="):
            kinds = a.split("=", 1)[1].split(",")
    unknown = set(kinds) - {"passage", "heading", "generated"}
    if unknown:
        sys.exit(f"--kinds: unknown kind(s) {sorted(unknown)} (passage, heading, generated)")
    corpus = Path(args[0]).expanduser()
    cairn = args[1] if len(args) > 1 else "cairn"
    rng = random.Random(SEED)
    cache_path = DATA / "generated_questions.jsonl"
    cache = {}
    if cache_path.exists():
        for line in cache_path.read_text().splitlines():
            r = json.loads(line)
            cache[r["passage"]] = r
    train, val = [], []
    for label, rels in COLLECTIONS.items():
        passages, headings = [], []
        for rel in rels:
            p, h = manual_examples(cairn, corpus, label, rel)
            passages += p
            headings += h
        rng.shuffle(passages)
        passages = passages[:PASSAGES_PER_CLASS]
        generated = []
        for p in passages[:GENERATED_PER_CLASS] if "generated" in kinds else []:
            if p not in cache:
                q = generate_question(cairn, p)
                cache[p] = {"label": label, "passage": p, "question": q}
                with cache_path.open("a") as f:
                    f.write(json.dumps(cache[p]) + "\n")
            if cache[p]["question"]:
                generated.append(cache[p]["question"])
        print(f"{label}: {len(passages)} passages, {len(headings)} headings, "
              f"{len(generated)} generated questions", file=sys.stderr)
        for kind, texts in (("passage", passages), ("heading", headings), ("generated", generated)):
            if kind not in kinds:
                continue
            texts = sorted(set(texts))
            rng.shuffle(texts)
            cut = max(1, len(texts) // 10)
            val += [{"text": t, "label": label, "kind": kind} for t in texts[:cut]]
            train += [{"text": t, "label": label, "kind": kind} for t in texts[cut:]]
    rng.shuffle(train)
    rng.shuffle(val)

    rlabels, dlabels = read_labels("rfaq_labels.tsv"), read_labels("dfaq_labels.tsv")
    test, test_full = [], []
    for num, q in faq_questions(cairn, corpus / "r-manuals/R-FAQ.pdf", skip_pages=6).items():
        if rlabels.get(num, "-") != "-":
            test.append({"text": q, "label": rlabels[num], "source": f"R FAQ {num}"})
    test_full += test
    for num, q in faq_questions(cairn, corpus / "debian/debian-faq.en.pdf", skip_pages=6).items():
        row = {"text": q, "label": "debian", "source": f"Debian FAQ {num}"}
        if num not in dlabels:
            sys.exit(f"dfaq_labels.tsv: Debian FAQ question {num} is not labeled")
        test_full.append(row)
        if dlabels[num] != "-":
            test.append(row)
    train_texts = {e["text"].lower() for e in train + val}
    leaked = [t["text"] for t in test_full if t["text"].lower() in train_texts]
    if leaked:
        sys.exit(f"test questions found in the training data: {leaked}")
    for name, rows in (("train", train), ("val", val), ("test", test), ("test_full", test_full)):
        with (DATA / f"{name}.jsonl").open("w") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        counts = {}
        for r in rows:
            counts[r["label"]] = counts.get(r["label"], 0) + 1
        print(f"{name}: {len(rows)} {dict(sorted(counts.items()))}", file=sys.stderr)


if __name__ == "__main__":
    main()
