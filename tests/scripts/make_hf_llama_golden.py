#!/usr/bin/env python3
"""Golden logits of a tiny Hugging Face-layout Llama, computed the way
`transformers`' LlamaForCausalLM does it (rotate-half RoPE on HF's row
order), to check that `cairn quantize` converts HF checkpoints to GGUF with
the Q/K permutation llama.cpp's pair RoPE needs.

The weights come from cairn's deterministic LCG (`cairn_core::util::pseudo_random`,
re-implemented below), so the Rust test regenerates the very same
model.safetensors without committing it. Writes tests/fixtures/hf_llama_tiny.json.

    pip install numpy==2.4.6
    python3 tests/scripts/make_hf_llama_golden.py
"""
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CFG = dict(hidden=64, heads=4, kv_heads=2, layers=2, ffn=96, vocab=260, theta=10000.0, eps=1e-5)
IDS = [1, 5, 7, 200, 33, 9, 259, 100]
M = (1 << 64) - 1


def pseudo_random(n, seed):
    s = (seed * 6364136223846793005 + 1442695040888963407) & M
    out = np.empty(n, np.float32)
    for i in range(n):
        s = (s * 6364136223846793005 + 1442695040888963407) & M
        out[i] = np.float32((s >> 40) / float(1 << 24) - 0.5)
    return out


def tensors():
    """Names, shapes and seeds in the order the Rust test writes them."""
    c, d = CFG, CFG["hidden"] // CFG["heads"]
    spec = [("model.embed_tokens.weight", [c["vocab"], c["hidden"]])]
    for l in range(c["layers"]):
        p = f"model.layers.{l}."
        spec += [
            (p + "input_layernorm.weight", [c["hidden"]]),
            (p + "self_attn.q_proj.weight", [c["heads"] * d, c["hidden"]]),
            (p + "self_attn.k_proj.weight", [c["kv_heads"] * d, c["hidden"]]),
            (p + "self_attn.v_proj.weight", [c["kv_heads"] * d, c["hidden"]]),
            (p + "self_attn.o_proj.weight", [c["hidden"], c["heads"] * d]),
            (p + "post_attention_layernorm.weight", [c["hidden"]]),
            (p + "mlp.gate_proj.weight", [c["ffn"], c["hidden"]]),
            (p + "mlp.up_proj.weight", [c["ffn"], c["hidden"]]),
            (p + "mlp.down_proj.weight", [c["hidden"], c["ffn"]]),
        ]
    spec += [("model.norm.weight", [c["hidden"]]), ("lm_head.weight", [c["vocab"], c["hidden"]])]
    w = {}
    for seed, (name, shape) in enumerate(spec, start=100):
        v = pseudo_random(int(np.prod(shape)), seed).reshape(shape)
        # Norm weights near 1, matrices scaled like the Rust test (×0.5; embeddings ×2).
        w[name] = (1.0 + 0.1 * v) if len(shape) == 1 else v * (2.0 if "embed" in name else 0.5)
        w[name] = w[name].astype(np.float32)
    return w


def rms(x, g, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], -1)


def forward(w, ids):
    c = CFG
    d = c["hidden"] // c["heads"]
    t = len(ids)
    inv = 1.0 / c["theta"] ** (np.arange(0, d, 2, dtype=np.float64) / d)
    ang = np.outer(np.arange(t), inv)
    emb = np.concatenate([ang, ang], -1)
    cos, sin = np.cos(emb).astype(np.float32)[:, None, :], np.sin(emb).astype(np.float32)[:, None, :]
    x = w["model.embed_tokens.weight"][ids]
    rep = c["heads"] // c["kv_heads"]
    mask = np.triu(np.full((t, t), -np.inf, np.float32), 1)
    for l in range(c["layers"]):
        p = f"model.layers.{l}."
        h = rms(x, w[p + "input_layernorm.weight"], c["eps"])
        q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(t, c["heads"], d)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(t, c["kv_heads"], d)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(t, c["kv_heads"], d)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        out = np.empty((t, c["heads"], d), np.float32)
        for hh in range(c["heads"]):
            s = q[:, hh] @ k[:, hh // rep].T / np.sqrt(d) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            out[:, hh] = s @ v[:, hh // rep]
        x = x + out.reshape(t, -1) @ w[p + "self_attn.o_proj.weight"].T
        h = rms(x, w[p + "post_attention_layernorm.weight"], c["eps"])
        g = h @ w[p + "mlp.gate_proj.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    x = rms(x, w["model.norm.weight"], c["eps"])
    return x @ w["lm_head.weight"].T


def main():
    logits = forward(tensors(), IDS)
    (ROOT / "tests/fixtures/hf_llama_tiny.json").write_text(json.dumps({
        "meta": {"reference": "numpy, transformers' Llama math (rotate_half RoPE)", "config": CFG},
        "ids": IDS,
        "logits": [[float(v) for v in row] for row in logits],
    }))


if __name__ == "__main__":
    main()
