#!/usr/bin/env python3
"""SFT data for grounded answering with citations, from the FAQ answers.

For each numbered FAQ question of bench/data/rag_eval_set.json (R FAQ and Debian
FAQ), the answer is the text after its heading on its gold page. One
example = the prompt `cairn ask` builds (core/src/rag/answer.rs: the same
system line, "Sources:" with numbered passages labelled "(file, page N)",
then "Question: ...") over three sources — the answer passage at a random
position and two passages answering other questions — and as the target
the gold source's number followed by the answer's first sentences,
"According to [2], ...". The citation comes first so that the first answer
token is the same for every answerable question: with the citation at the
end, answers began with many different words and greedy decoding picked the
refusal's "I" (one target in ten) — the first adapter refused 27 of 30
answerable questions (REPORT.md). One question in ten gets only the two
distractors and the target "I don't know." Questions are split 80/20 (seeded) into train.jsonl and
test.jsonl; test.jsonl carries the gold source number for scoring.

    python3 bench/scripts/grounded/make_grounded_sft.py ~/.cache/cairn/corpus [path/to/cairn]
"""
import json
import random
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SYSTEM = ("You answer questions using only the numbered sources given by the user. Cite the "
          "sources you use with their numbers in square brackets, like [1]. If the sources do "
          "not contain the answer, reply exactly: I don't know.")
FILES = {"R-FAQ.pdf": "r-manuals/R-FAQ.pdf", "debian-faq.en.pdf": "debian/debian-faq.en.pdf"}
SEED = 5
# About one 128-token chunk, what `cairn ask` gives the model by default.
PASSAGE_WORDS = 70


def cited_answer(answer, n):
    """ "According to [n], <answer>", the answer's first word in lower case
    unless it is a name or code ("R", "Debian", "apt-get")."""
    first = answer.split(" ", 1)[0]
    if first[:1].isupper() and first[1:].islower() and first.isalpha():
        answer = answer[:1].lower() + answer[1:]
    return f"According to [{n}], {answer}"


def pages(cairn, path):
    doc = json.loads(subprocess.run([cairn, "extract", str(path)], check=True,
                                    capture_output=True, text=True).stdout)
    out = {}
    for s in doc["segments"]:
        out[s["page"]] = out.get(s["page"], "") + s["text"] + "\n"
    return out


def clean(t):
    return re.sub(r"\s+", " ", t).strip()


def answer_text(page_text, next_text, number):
    """The text after the heading `number` up to the next numbered heading."""
    lines = (page_text + "\n" + next_text).splitlines()
    start = None
    for i, line in enumerate(lines):
        if start is None and re.match(rf"^{re.escape(number)}\.?\s+\S", line.strip()):
            start = i + 1
            continue
        if start is not None and re.match(r"^\d+(\.\d+)+\.?\s+\S", line.strip()):
            return clean(" ".join(lines[start:i]))
    return clean(" ".join(lines[start:])) if start is not None else ""


def first_sentences(text, words=40):
    out = []
    for s in re.split(r"(?<=[.!?])\s+", text):
        out.append(s)
        if len(" ".join(out).split()) >= 12:
            break
    return " ".join(" ".join(out).split()[:words])


def main():
    corpus = Path(sys.argv[1]).expanduser()
    cairn = sys.argv[2] if len(sys.argv) > 2 else "cairn"
    qs = json.loads((ROOT / "bench/data/rag_eval_set.json").read_text())["questions"]
    docs = {f: pages(cairn, corpus / rel) for f, rel in FILES.items()}
    items = []
    for q in qs:
        p = q["pages"][0]
        text = answer_text(docs[q["file"]].get(p, ""), docs[q["file"]].get(p + 1, ""), q["number"])
        words = text.split()
        if len(words) < 15:
            continue
        items.append({**q, "passage": " ".join(words[:PASSAGE_WORDS]),
                      "answer": first_sentences(text)})
    rng = random.Random(SEED)
    rng.shuffle(items)
    cut = len(items) // 5
    splits = {"test": items[:cut], "train": items[cut:]}
    for name, rows in splits.items():
        with (ROOT / "bench/data/grounded" / f"{name}.jsonl").open("w") as f:
            for k, it in enumerate(rows):
                pool = [o for o in splits[name] if o is not it and o["file"] == it["file"]]
                others = rng.sample(pool, 2)
                unanswerable = k % 10 == 9
                sources = [(o["passage"], o["file"], o["pages"][0]) for o in others]
                gold = None
                if not unanswerable:
                    gold = rng.randrange(3)
                    sources.insert(gold, (it["passage"], it["file"], it["pages"][0]))
                user = "Sources:\n" + "".join(
                    f"[{i + 1}] ({fname}, page {page})\n{text}\n\n"
                    for i, (text, fname, page) in enumerate(sources))
                user += f"Question: {it['question']}"
                target = "I don't know." if unanswerable else cited_answer(it["answer"], gold + 1)
                row = {"messages": [{"role": "system", "content": SYSTEM},
                                    {"role": "user", "content": user},
                                    {"role": "assistant", "content": target}],
                       "gold_source": None if gold is None else gold + 1,
                       "source": f"{it['file']} {it['number']}"}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{name}: {len(rows)} examples", file=sys.stderr)


if __name__ == "__main__":
    main()
