#!/usr/bin/env python3
"""Golden logits of tiny randomly initialised transformers classifiers.

Writes tests/fixtures/tiny_cls/{bert,distilbert}/ (config.json +
model.safetensors as transformers' save_pretrained writes them) and
tests/fixtures/tiny_cls/golden.json: for fixed padded id batches, the logits
of BertForSequenceClassification (single-label) and
DistilBertForSequenceClassification (multi-label) in eval mode, and BERT's
with sentence-pair token types.
cairn's loader must reproduce them (core/tests/classifier_golden.rs).

    pip install torch transformers safetensors   # torch 2.15, transformers 4.57.1 here
    python3 tests/scripts/make_classifier_golden.py
"""
import json
from pathlib import Path

import torch
from transformers import (BertConfig, BertForSequenceClassification, DistilBertConfig,
                          DistilBertForSequenceClassification)

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_cls"
IDS = [[2, 17, 45, 9, 3, 0, 0], [2, 88, 5, 61, 23, 71, 3], [2, 30, 3, 0, 0, 0, 0]]
MASK = [[1 if t else 0 for t in row] for row in IDS]
# Sentence-pair segments (a cross-encoder's query / passage): BERT adds token type 1.
TYPES = [[0, 0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1, 1], [0, 0, 1, 0, 0, 0, 0]]
LABELS = {0: "alpha", 1: "beta", 2: "gamma"}


def main():
    torch.manual_seed(0)
    bert = BertForSequenceClassification(BertConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=32, max_position_embeddings=32, id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()}, problem_type="single_label_classification"))
    distil = DistilBertForSequenceClassification(DistilBertConfig(
        vocab_size=100, dim=16, n_layers=2, n_heads=4, hidden_dim=32,
        max_position_embeddings=32, id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()}, problem_type="multi_label_classification"))
    golden = {"ids": IDS, "mask": MASK}
    for name, model in (("bert", bert), ("distilbert", distil)):
        # Non-trivial LayerNorm and bias values (the defaults are 1 and 0).
        with torch.no_grad():
            for n, p in model.named_parameters():
                if p.dim() == 1:
                    p.add_(0.1 * torch.randn_like(p))
                # Segment embeddings and head large enough that token types move the logits.
                if "token_type_embeddings" in n or n == "classifier.weight":
                    p.mul_(30.0)
        model.eval()
        model.save_pretrained(OUT / name, safe_serialization=True)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor(IDS), attention_mask=torch.tensor(MASK)).logits
        golden[name] = logits.tolist()
        if name == "bert":
            with torch.no_grad():
                typed = model(input_ids=torch.tensor(IDS), attention_mask=torch.tensor(MASK),
                              token_type_ids=torch.tensor(TYPES)).logits
            golden["types"] = TYPES
            golden["bert_typed"] = typed.tolist()
    (OUT / "golden.json").write_text(json.dumps(golden, indent=1) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
