#!/usr/bin/env python3
"""Golden outputs of `transformers`' `generate` for every decoding flag cairn
implements, on the tiny Hugging Face-layout Llama of make_hf_llama_golden.py
(same LCG weights; the Rust test converts that directory to an F32 GGUF and
decodes it with cairn).

For each case: the generated token ids of `LlamaForCausalLM.generate` (greedy,
beam search with and without an end-of-sequence token, length penalties,
early stopping, repetition penalty, no-repeat n-gram). For the sampling
warpers (temperature, top-k, top-p): the probabilities after transformers'
`LogitsProcessorList` on the prompt's last logits. Writes
tests/fixtures/generate_golden.json.

    pip install torch==2.15.0 transformers==5.24.0 tokenizers==0.23.3 numpy==2.4.6
    python3 tests/scripts/make_generate_golden.py
"""
import json
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.generation.logits_process import (
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from make_hf_llama_golden import CFG, tensors

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "the cat sat on the mat"
MAX_NEW = 12


def bytes_to_unicode():
    """GPT-2's byte → character table (printable bytes map to themselves)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def tokenizer():
    """The byte-level BPE the Rust test writes: 256 byte tokens, four merges."""
    table = bytes_to_unicode()
    vocab = {table[b]: b for b in range(256)}
    merges = ["Ġ t", "h e", "i n", "e r"]
    for i, m in enumerate(merges):
        vocab[m.replace(" ", "")] = 256 + i
    return Tokenizer.from_str(json.dumps({
        "version": "1.0", "added_tokens": [], "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None, "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "vocab": vocab, "merges": merges},
    }))


def model():
    c = CFG
    config = LlamaConfig(
        vocab_size=c["vocab"], hidden_size=c["hidden"], intermediate_size=c["ffn"],
        num_hidden_layers=c["layers"], num_attention_heads=c["heads"],
        num_key_value_heads=c["kv_heads"], rms_norm_eps=c["eps"], rope_theta=c["theta"],
        max_position_embeddings=64, tie_word_embeddings=False, bos_token_id=None,
        eos_token_id=None, pad_token_id=0, attn_implementation="eager",
    )
    m = LlamaForCausalLM(config).eval()
    state = {k: torch.from_numpy(v) for k, v in tensors().items()}
    missing, unexpected = m.load_state_dict(state, strict=False)
    assert not unexpected and all("rotary" in k for k in missing), (missing, unexpected)
    return m


def main():
    torch.manual_seed(0)
    m = model()
    ids = tokenizer().encode(PROMPT).ids
    x = torch.tensor([ids])

    def gen(**kw):
        base = dict(max_new_tokens=MAX_NEW, do_sample=False, num_beams=1, pad_token_id=0,
                    eos_token_id=None, use_cache=True)
        base.update(kw)
        with torch.no_grad():
            out = m.generate(x, **base)
        return [int(t) for t in out[0, len(ids):]]

    greedy = gen()
    # An end-of-sequence id the model produces a few steps in, so beam
    # hypotheses finish at different lengths and the length penalty decides.
    eos = greedy[4]
    cases = [
        ("greedy", {}, greedy),
        ("beams3", {"num_beams": 3}, gen(num_beams=3)),
        ("repetition_penalty", {"repetition_penalty": 1.8}, gen(repetition_penalty=1.8)),
        ("beams3_repetition_penalty", {"num_beams": 3, "repetition_penalty": 1.8},
         gen(num_beams=3, repetition_penalty=1.8)),
        ("no_repeat_ngram", {"no_repeat_ngram_size": 2}, gen(no_repeat_ngram_size=2)),
        ("greedy_eos", {"eos_token_ids": [eos]}, gen(eos_token_id=eos)),
    ]
    for lp in (-3.0, 0.0, 1.0, 3.0):
        cases.append((f"beams4_eos_length_penalty_{lp:g}",
                      {"num_beams": 4, "eos_token_ids": [eos], "length_penalty": lp},
                      gen(num_beams=4, eos_token_id=eos, length_penalty=lp)))
    cases.append(("beams4_eos_early_stopping",
                  {"num_beams": 4, "eos_token_ids": [eos], "early_stopping": True},
                  gen(num_beams=4, eos_token_id=eos, early_stopping=True)))

    with torch.no_grad():
        last = m(x).logits[:, -1, :].float()
    warped = []
    for t, k, p in [(0.7, 20, 1.0), (1.3, 0, 0.8), (1.0, 5, 0.5), (2.0, 0, 1.0)]:
        procs = [TemperatureLogitsWarper(t)]
        if k:
            procs.append(TopKLogitsWarper(k))
        if p < 1.0:
            procs.append(TopPLogitsWarper(p))
        s = LogitsProcessorList(procs)(x, last.clone())
        probs = torch.softmax(s, -1)[0].numpy().astype(np.float64)
        warped.append({"temperature": t, "top_k": k, "top_p": p,
                       "probs": [float(v) for v in probs]})

    (ROOT / "tests/fixtures/generate_golden.json").write_text(json.dumps({
        "meta": {"reference": "transformers 5.24.0 LlamaForCausalLM.generate (float32, eager) on the "
                              "tiny LCG Llama of make_hf_llama_golden.py",
                 "max_new_tokens": MAX_NEW},
        "prompt": PROMPT,
        "prompt_ids": ids,
        "cases": [{"name": n, "config": c, "tokens": t} for n, c, t in cases],
        "warped": warped,
    }, indent=1))
    for n, _, t in cases:
        print(n, t)


if __name__ == "__main__":
    main()
