#!/usr/bin/env python3
"""Byte-level BPE vocabularies with the Qwen2 and Llama 3 pre-tokenizers,
trained here with the Python `tokenizers` library, and the ids that library
gives for the 1,000 strings of tests/fixtures/tokenizer_golden.json.

Each tokenizer is built as the published tokenizer.json files of Qwen2.5 and
Llama 3 are: a `Split` on the family's regex (Isolated), then `ByteLevel`
without its own regex; a ByteLevel decoder. cairn rebuilds the same
tokenizer from GGUF metadata (`tokenizer.ggml.model = gpt2`,
`tokenizer.ggml.pre = qwen2 / llama-bpe`, tokens, merges) and must give the
same ids (native/tests/golden_formats.rs). Writes
tests/fixtures/bpe_pretokenizer_golden.json.

    ~/.cache/cairn/refvenv/bin/pip install tokenizers
    ~/.cache/cairn/refvenv/bin/python tests/scripts/make_bpe_pretokenizer_golden.py
"""
import json
from pathlib import Path

import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

ROOT = Path(__file__).resolve().parents[2]
# The Split patterns of Qwen2.5's and Llama 3's tokenizer.json.
REGEXES = {
    "qwen2": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
    "llama-bpe": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
}


def main():
    texts = [c["text"] for c in json.loads((ROOT / "tests/fixtures/tokenizer_golden.json").read_text())["cases"]]
    out = {"meta": {"reference": f"tokenizers {tokenizers.__version__}"}, "tokenizers": {}}
    for pre, regex in REGEXES.items():
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ])
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=1500, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=False)
        tok.train_from_iterator(texts * 3, trainer)
        doc = json.loads(tok.to_str())
        vocab = doc["model"]["vocab"]
        tokens = [None] * len(vocab)
        for t, i in vocab.items():
            tokens[i] = t
        merges = [m if isinstance(m, str) else " ".join(m) for m in doc["model"]["merges"]]
        cases = [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in texts]
        out["tokenizers"][pre] = {"tokens": tokens, "merges": merges, "cases": cases}
        print(pre, len(tokens), "tokens", len(merges), "merges")
    (ROOT / "tests/fixtures/bpe_pretokenizer_golden.json").write_text(
        json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
