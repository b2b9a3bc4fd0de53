#!/usr/bin/env python3
"""Tiny random decoders of every family cairn runs, converted to GGUF by
llama.cpp's own converter, with golden logits from `transformers`.

For each family (Llama with Llama 3 RoPE scaling, Qwen2, Qwen3, Phi-3 with
LongRoPE and a sliding window, Gemma 2 with soft-capping, Gemma 3) the
script builds a model from its own `transformers` config class with random
weights (seeded; biases and norm weights randomised too, so they matter),
saves it as safetensors, converts it with llama.cpp's `convert_hf_to_gguf.py`
to an F32 GGUF (committed: tests/fixtures/families/tiny-<family>.gguf), and
records transformers' logits (eager attention, f32) for a prompt longer than
any sliding window, plus 32 greedy tokens, in tests/fixtures/families/golden.json.
The Gemma 3 model carries a SentencePiece BPE tokenizer trained here (so the
GGUF has a `llama`-model vocabulary with scores and byte fallback); the ids
`sentencepiece` itself gives for the 1,000 strings of
tests/fixtures/tokenizer_golden.json go to tests/fixtures/families/spm_golden.json.
The others carry no tokenizer.

    python3 -m venv ~/.cache/cairn/refvenv
    ~/.cache/cairn/refvenv/bin/pip install torch==2.15.0 transformers==5.24.0 \\
        sentencepiece==0.2.3 numpy==2.4.6 safetensors
    ~/.cache/cairn/refvenv/bin/python tests/scripts/make_decoder_families.py \\
        --llama-cpp ~/.cache/cairn/bench/llama-cpp-python-0.3.36/src

(`--llama-cpp` is the llama.cpp source tree of the llama-cpp-python sdist
that `bench/scripts` unpack; its converter and gguf-py are used as they are.)
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "families"
PROMPT_LEN = 12
GREEDY = 32


def randomise(model, seed):
    """Every parameter drawn again: matrices N(0, 0.2²) (large enough that
    logits spread), biases N(0, 0.5²), norm weights near their neutral value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "norm" in name:
                # Gemma's norms scale by (1 + w): neutral at 0; the others at 1.
                base = 0.0 if "gemma" in type(model).__name__.lower() else 1.0
                p.copy_(base + 0.2 * noise)
            elif name.endswith("bias"):
                p.copy_(0.5 * noise)
            else:
                p.copy_(0.2 * noise)


def families():
    from transformers import (
        Gemma2Config,
        Gemma2ForCausalLM,
        Gemma3ForCausalLM,
        Gemma3TextConfig,
        LlamaConfig,
        LlamaForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
        Phi3Config,
        Phi3ForCausalLM,
        Qwen3Config,
        Qwen3ForCausalLM,
    )

    common = dict(
        hidden_size=32,
        intermediate_size=48,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rms_norm_eps=1e-6,
        attn_implementation="eager",
    )
    return {
        # Llama 3.x: rope_scaling 'llama3' (the converter writes rope_freqs.weight).
        "llama": (
            LlamaForCausalLM,
            LlamaConfig(
                vocab_size=300,
                num_hidden_layers=2,
                tie_word_embeddings=False,
                rope_parameters={
                    "rope_type": "llama3",
                    "rope_theta": 500000.0,
                    "factor": 8.0,
                    "low_freq_factor": 1.0,
                    "high_freq_factor": 4.0,
                    "original_max_position_embeddings": 16,
                },
                **common,
            ),
        ),
        "qwen2": (
            Qwen2ForCausalLM,
            Qwen2Config(
                vocab_size=300,
                num_hidden_layers=2,
                tie_word_embeddings=True,
                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                **common,
            ),
        ),
        "qwen3": (
            Qwen3ForCausalLM,
            Qwen3Config(
                vocab_size=300,
                num_hidden_layers=2,
                head_dim=16,
                tie_word_embeddings=False,
                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                **common,
            ),
        ),
        # Phi-3: fused QKV and gate/up, rotate-half RoPE, a sliding window on
        # every layer (5 < the prompt), LongRoPE factors (short ones below the
        # original context of 64, with the attention factor).
        "phi3": (
            Phi3ForCausalLM,
            Phi3Config(
                vocab_size=300,
                num_hidden_layers=2,
                sliding_window=5,
                tie_word_embeddings=False,
                max_position_embeddings=128,
                original_max_position_embeddings=64,
                rope_parameters={
                    "rope_type": "longrope",
                    "rope_theta": 10000.0,
                    "short_factor": [1.0 + 0.25 * i for i in range(4)],
                    "long_factor": [2.0 + 0.5 * i for i in range(4)],
                    "original_max_position_embeddings": 64,
                },
                pad_token_id=0,
                **{k: v for k, v in common.items() if k != "max_position_embeddings"},
            ),
        ),
        # Gemma 2: sliding (window 5) and global layers alternate; small
        # soft-caps (3) so tanh bends the scores and logits.
        "gemma2": (
            Gemma2ForCausalLM,
            Gemma2Config(
                vocab_size=320,
                num_hidden_layers=3,
                head_dim=16,
                query_pre_attn_scalar=16,
                sliding_window=5,
                attn_logit_softcapping=3.0,
                final_logit_softcapping=3.0,
                tie_word_embeddings=True,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                pad_token_id=0,
                eos_token_id=1,
                bos_token_id=2,
                **common,
            ),
        ),
        # Seven layers: five sliding (window 5 < the prompt), one global, one sliding.
        "gemma3": (
            Gemma3ForCausalLM,
            Gemma3TextConfig(
                vocab_size=320,
                num_hidden_layers=7,
                head_dim=16,
                query_pre_attn_scalar=16,
                sliding_window=5,
                tie_word_embeddings=True,
                rope_parameters={
                    "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                    "full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
                },
                pad_token_id=0,
                eos_token_id=1,
                bos_token_id=2,
                **common,
            ),
        ),
    }


def train_sentencepiece(folder: Path, vocab: int):
    import sentencepiece as spm

    rng = random.Random(7)
    words = ("the of and to in is was for on that with as by at from it be an are this "
             "which or have one had not but what all were when we there can more if "
             "their time will would about some than them these so two may into other "
             "café naïve über 東京 données résumé 42 3.14 x+y").split()
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 14))) for _ in range(4000)]
    text = folder / "train.txt"
    text.write_text("\n".join(lines), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(folder / "tokenizer"), vocab_size=vocab,
        model_type="bpe", byte_fallback=True, character_coverage=1.0,
        add_dummy_prefix=False, pad_id=0, eos_id=1, bos_id=2, unk_id=3,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        split_digits=True, allow_whitespace_only_pieces=True,
        user_defined_symbols=["<start_of_turn>", "<end_of_turn>"],
        minloglevel=2,
    )


def spm_golden(model: Path):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model))
    texts = [c["text"] for c in json.loads((ROOT / "tests/fixtures/tokenizer_golden.json").read_text())["cases"]]
    cases = [{"text": t, "ids": sp.encode(t)} for t in texts]
    meta = {"reference": f"sentencepiece {spm.__version__} (BPE, byte fallback, identity normalization, no dummy prefix)",
            "model": "tiny-gemma3.gguf's tokenizer, trained by tests/scripts/make_decoder_families.py"}
    (OUT / "spm_golden.json").write_text(
        json.dumps({"meta": meta, "cases": cases}, ensure_ascii=False, separators=(",", ":")) + "\n")


def convert(llama_cpp: Path, model_dir: Path, out: Path, family: str):
    """llama.cpp's converter, with `set_vocab` skipped for the families
    whose tiny models carry no tokenizer (it would need a real one)."""
    code = f"""
import sys, runpy
sys.path.insert(0, {str(llama_cpp)!r})
sys.path.insert(1, {str(llama_cpp / 'gguf-py')!r})
import conversion.qwen, conversion.llama, conversion.phi
for cls in (conversion.qwen.Qwen2Model, conversion.qwen.Qwen3Model, conversion.llama.LlamaModel,
            conversion.phi.Phi3MiniModel):
    cls.set_vocab = lambda self: self._set_vocab_none()
sys.argv = ['convert_hf_to_gguf.py', {str(model_dir)!r}, '--outfile', {str(out)!r}, '--outtype', 'f32']
runpy.run_path({str(llama_cpp / 'convert_hf_to_gguf.py')!r}, run_name='__main__')
"""
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "NO_LOCAL_GGUF": ""})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-cpp", type=Path, required=True)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    golden = {"prompt_len": PROMPT_LEN, "greedy_steps": GREEDY, "transformers": None, "families": {}}
    import transformers

    golden["transformers"] = transformers.__version__
    golden["torch"] = torch.__version__
    for seed, (family, (cls, cfg)) in enumerate(families().items(), start=1):
        torch.manual_seed(seed)
        model = cls(cfg).eval()
        randomise(model, seed)
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            if family.startswith("gemma"):
                train_sentencepiece(d, cfg.vocab_size)
                if family == "gemma3":
                    spm_golden(d / "tokenizer.model")
            model.save_pretrained(d, safe_serialization=True)
            gguf = OUT / f"tiny-{family}.gguf"
            convert(args.llama_cpp, d, gguf, family)
        rng = random.Random(seed)
        ids = [rng.randrange(4, cfg.vocab_size) for _ in range(PROMPT_LEN)]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
            seq = list(ids)
            for _ in range(GREEDY):
                nxt = model(torch.tensor([seq])).logits[0, -1]
                seq.append(int(torch.argmax(nxt)))
        golden["families"][family] = {
            "ids": ids,
            "logits": [[round(float(v), 6) for v in row] for row in logits],
            "greedy": seq[PROMPT_LEN:],
            "config": {k: v for k, v in cfg.to_dict().items() if isinstance(v, (int, float, str, list, dict))},
        }
        print(family, "logit range", float(logits.min()), float(logits.max()), "greedy", seq[PROMPT_LEN:][:8])
    (OUT / "golden.json").write_text(json.dumps(golden, indent=1) + "\n")


if __name__ == "__main__":
    main()
