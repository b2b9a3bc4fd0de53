#!/usr/bin/env python3
"""A tiny random XLM-RoBERTa cross-encoder (the layout of bge-reranker-base:
XLMRobertaForSequenceClassification, one label) with an XLM-R-style Unigram
tokenizer, and the golden values cairn must reproduce.

The tokenizer: a SentencePiece Unigram model trained here on made-up words,
laid out as transformers' XLMRobertaConverter does (`<s> <pad> </s> <unk>`,
the pieces, `<mask>`; NFKC, Metaspace, the `<s> A </s></s> B </s>` pair
template) with the Python `tokenizers` library. Writes
tests/fixtures/tiny_cls/xlmr/ (config.json, model.safetensors, tokenizer.json)
and tests/fixtures/tiny_cls/xlmr_golden.json: pair ids from Python
`tokenizers`, the classifier's logits and the encoder's last hidden states
from transformers (eager, f32).

    ~/.cache/cairn/refvenv/bin/pip install torch==2.15.0 transformers==5.24.0 \\
        sentencepiece==0.2.3 tokenizers
    ~/.cache/cairn/refvenv/bin/python tests/scripts/make_xlmr_golden.py
"""
import json
import random
import tempfile
from pathlib import Path

import sentencepiece as spm
import tokenizers
import torch
from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import Unigram
from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_cls"
PAIRS = [
    ("kari tone", "sumola pedi vo anel"),
    ("Qu'est-ce que le résumé ?", "daté naïve über kari kari kari tone su"),
    ("x", "ta"),
    ("ＦＵＬＬ width and   spaces", "ka ri to ne su mo la pe di vo an el is ou ch th qu ré na ïv üb er da ta"),
]


def make_tokenizer(folder: Path) -> Tokenizer:
    rng = random.Random(3)
    syll = "ka ri to ne su mo la pe di vo an el is ou ch th qu ré na ïv üb er da ta".split()
    words = ["".join(rng.choice(syll) for _ in range(rng.randint(1, 4))) for _ in range(400)]
    text = folder / "train.txt"
    text.write_text("\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(4000)))
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(folder / "spm"), vocab_size=250,
                                   model_type="unigram", minloglevel=2, character_coverage=1.0)
    sp = spm.SentencePieceProcessor(model_file=str(folder / "spm.model"))
    pieces = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(3, sp.get_piece_size())]
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + pieces + [("<mask>", 0.0)]
    tok = Tokenizer(Unigram(vocab, unk_id=3, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)])
    from tokenizers import AddedToken
    tok.add_special_tokens([AddedToken(t, special=True) for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")])
    return tok


def main():
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as d:
        tok = make_tokenizer(Path(d))
    model_dir = OUT / "xlmr"
    model_dir.mkdir(parents=True, exist_ok=True)
    tok.save(str(model_dir / "tokenizer.json"))
    cfg = XLMRobertaConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=48, max_position_embeddings=80,
                           type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                           num_labels=1, attn_implementation="eager")
    model = XLMRobertaForSequenceClassification(cfg).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_((1.0 if p.dim() == 1 and "LayerNorm.weight" in n else 0.0) + 0.2 * torch.randn_like(p))
    model.save_pretrained(model_dir, safe_serialization=True)
    encs = [tok.encode(a, b) for a, b in PAIRS]
    ids = [e.ids for e in encs]
    width = max(map(len, ids))
    padded = [row + [1] * (width - len(row)) for row in ids]
    mask = [[1] * len(row) + [0] * (width - len(row)) for row in ids]
    with torch.no_grad():
        out = model(input_ids=torch.tensor(padded), attention_mask=torch.tensor(mask), output_hidden_states=True)
    hidden = out.hidden_states[-1]
    golden = {
        "meta": {"tokenizers": tokenizers.__version__, "transformers": __import__("transformers").__version__},
        "pairs": [list(p) for p in PAIRS],
        "ids": ids,
        "logits": [float(v) for v in out.logits[:, 0]],
        "hidden": [[[round(float(x), 6) for x in hidden[r, t]] for t in range(len(ids[r]))] for r in range(len(ids))],
    }
    (OUT / "xlmr_golden.json").write_text(json.dumps(golden) + "\n")
    print("ids", ids, "logits", golden["logits"])


if __name__ == "__main__":
    main()
