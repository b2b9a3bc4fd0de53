#!/usr/bin/env python3
"""Tokenizer training on the PDF corpus: cairn (`cairn train tokenizer`)
against Python `tokenizers`' own trainers, same text, same settings, same
run. Prints vocabulary agreement (identical ids / same set / shared tokens),
merge agreement and the training-time ratio.

    python3 bench/scripts/tokenizer_train_vs_hf.py path/to/cairn [VOCAB_SIZE]   # default 8000

The text is what cairn's PDF loader extracts from every corpus PDF
(`cairn extract`), one segment per line, written once to
<cache>/bench/tokenizer_corpus.txt. Both sides read that file line by line.
Settings: byte-level BPE as `Tokenizer(BPE())` + `ByteLevel(add_prefix_space=False)`,
`BpeTrainer(min_frequency=2, special_tokens=["<|endoftext|>"],
initial_alphabet=ByteLevel.alphabet())`; WordPiece as `BertWordPieceTokenizer()`
trained with min_frequency=2, limit_alphabet=1000. Python `tokenizers` runs its
trainer on all cores (2 here); cairn's trainer is single-threaded.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PKGS = ["tokenizers==0.23.3"]


def ensure_packages():
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *PKGS])


def corpus_file(cairn, cache):
    out = cache / "bench" / "tokenizer_corpus.txt"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for pdf in sorted((cache / "corpus").glob("*/*.pdf")):
        doc = json.loads(subprocess.run([cairn, "extract", str(pdf)], check=True, capture_output=True, text=True).stdout)
        for seg in doc["segments"] if isinstance(doc, dict) else doc:
            text = " ".join(seg["text"].split())
            if text:
                lines.append(text)
        print(f"extracted {pdf.name}", file=sys.stderr)
    out.write_text("\n".join(lines) + "\n")
    return out


def by_id(vocab):
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    return tokens


def main():
    ensure_packages()
    from tokenizers import BertWordPieceTokenizer, Tokenizer, decoders, models, pre_tokenizers, trainers

    cairn = sys.argv[1] if len(sys.argv) > 1 else "cairn"
    vocab_size = int(sys.argv[2]) if len(sys.argv) > 2 else 8000
    cache = Path(os.environ.get("CAIRN_CACHE", Path.home() / ".cache" / "cairn"))
    corpus = corpus_file(cairn, cache)
    size = corpus.stat().st_size
    print(f"# corpus {corpus} ({size / 1e6:.1f} MB), vocab {vocab_size}, min_frequency 2")
    print("| kind | same ids | same set | shared tokens | same merges | train s cairn | train s tokenizers | time ratio (tokenizers / cairn) |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("bpe", "wordpiece"):
            if kind == "bpe":
                ref = Tokenizer(models.BPE())
                ref.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
                ref.decoder = decoders.ByteLevel()
                t = time.perf_counter()
                ref.train([str(corpus)], trainers.BpeTrainer(
                    vocab_size=vocab_size, min_frequency=2, special_tokens=["<|endoftext|>"],
                    initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
                ref_s = time.perf_counter() - t
            else:
                ref = BertWordPieceTokenizer()
                t = time.perf_counter()
                ref.train([str(corpus)], vocab_size=vocab_size, min_frequency=2, limit_alphabet=1000, show_progress=False)
                ref_s = time.perf_counter() - t
            rdoc = json.loads(ref.to_str())
            path = Path(tmp) / f"{kind}.json"
            t = time.perf_counter()
            subprocess.run([cairn, "train", "tokenizer", "--kind", kind, "--vocab-size", str(vocab_size),
                            "--min-frequency", "2", "--output", str(path), str(corpus)], check=True,
                           capture_output=True)
            mine_s = time.perf_counter() - t
            mdoc = json.loads(path.read_text())
            a, b = by_id(rdoc["model"]["vocab"]), by_id(mdoc["model"]["vocab"])
            merges = "n/a"
            if kind == "bpe":
                norm = lambda ms: [m if isinstance(m, str) else " ".join(m) for m in ms]
                merges = str(norm(rdoc["model"]["merges"]) == norm(mdoc["model"]["merges"]))
            print(f"| {kind} | {a == b} | {set(a) == set(b)} | {len(set(a) & set(b))} / {len(a)} | {merges} | "
                  f"{mine_s:.2f} | {ref_s:.2f} | {ref_s / mine_s:.2f}× |")


if __name__ == "__main__":
    main()
