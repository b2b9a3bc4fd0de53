#!/usr/bin/env python3
"""Tokenizer training against Python `tokenizers`: the reference vocabularies
its own trainers learn, and the ids it gives when it loads the tokenizer.json
cairn trained — both on the same corpus with the same settings.

Corpus: tests/fixtures/tokenizer_train_corpus.txt (written here: the 1,000
strings of tests/fixtures/tokenizer_golden.json, three times, one per line).
Both sides read it line by line, keeping each line's "\\n" (as
`Tokenizer.train(files)` does).

- byte-level BPE: `Tokenizer(BPE())`, `ByteLevel(add_prefix_space=False)`
  pre-tokenizer and decoder, `BpeTrainer(vocab_size=1000, min_frequency=2,
  special_tokens=["<|endoftext|>"], initial_alphabet=ByteLevel.alphabet())`;
- WordPiece: `BertWordPieceTokenizer()` (lowercase) trained with
  vocab_size=1000, min_frequency=2, limit_alphabet=1000.

cairn's side: `cairn train tokenizer --kind bpe|wordpiece --vocab-size 1000
--min-frequency 2` on the same file; the file it writes is loaded here with
`Tokenizer.from_file` and encodes the 1,000 strings. Writes
tests/fixtures/tokenizer_train_golden.json, checked by
`cargo nextest run -p cairn --test tokenizer_train`.

    ~/.cache/cairn/refvenv/bin/pip install tokenizers==0.23.3
    ~/.cache/cairn/refvenv/bin/python tests/scripts/make_tokenizer_train_golden.py
"""
import json
import subprocess
import tempfile
from pathlib import Path

import tokenizers
from tokenizers import BertWordPieceTokenizer, Tokenizer, decoders, models, pre_tokenizers, trainers

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests/fixtures/tokenizer_train_corpus.txt"


def by_id(vocab):
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    return tokens


def main():
    texts = [c["text"] for c in json.loads((ROOT / "tests/fixtures/tokenizer_golden.json").read_text())["cases"]]
    CORPUS.write_text("\n".join(t.replace("\n", " ") for t in texts * 3) + "\n")
    out = {"meta": {"reference": f"tokenizers {tokenizers.__version__}", "corpus": str(CORPUS.relative_to(ROOT)),
                    "vocab_size": 1000, "min_frequency": 2}}

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train([str(CORPUS)], trainers.BpeTrainer(
        vocab_size=1000, min_frequency=2, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    doc = json.loads(bpe.to_str())
    out["bpe_reference"] = {"tokens": by_id(doc["model"]["vocab"]),
                            "merges": [m if isinstance(m, str) else " ".join(m) for m in doc["model"]["merges"]]}

    wp = BertWordPieceTokenizer()
    wp.train([str(CORPUS)], vocab_size=1000, min_frequency=2, limit_alphabet=1000, show_progress=False)
    out["wordpiece_reference"] = {"tokens": by_id(json.loads(wp.to_str())["model"]["vocab"])}

    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("bpe", "wordpiece"):
            path = Path(tmp) / f"{kind}.json"
            subprocess.run(["cargo", "run", "-q", "-p", "cairn", "--", "train", "tokenizer", "--kind", kind,
                            "--vocab-size", "1000", "--min-frequency", "2", "--output", str(path), str(CORPUS)],
                           cwd=ROOT, check=True)
            tok = Tokenizer.from_file(str(path))
            out[f"{kind}_cairn_ids"] = [tok.encode(t, add_special_tokens=False).ids for t in texts]
            ref = out[f"{kind}_reference"]["tokens"]
            mine = by_id(json.loads(path.read_text())["model"]["vocab"])
            print(kind, "reference", len(ref), "cairn", len(mine), "same ids", ref == mine,
                  "same set", set(ref) == set(mine), "shared", len(set(ref) & set(mine)))
    (ROOT / "tests/fixtures/tokenizer_train_golden.json").write_text(
        json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
