#!/usr/bin/env python3
"""LoRA SFT step time: cairn vs Hugging Face PEFT (torch CPU), same run.

Both train a rank-8 LoRA (alpha 16, dropout 0.05, q/k/v/o/gate/up/down) on
SmolLM2-135M-Instruct with one 256-token sequence per step and AdamW, on the
same number of CPU threads. transformers loads the same GGUF file
(`gguf_file=`, dequantized to f32 weights); cairn keeps the Q4_1 blocks and
dequantizes per layer pass (QLoRA). Data: bench/data/grounded/train.jsonl, packed
into 256-token sequences by each side (cairn: `cairn train lora`; PEFT: the
same token count of random ids, since only time is compared).

    python3 bench/scripts/lora_vs_peft.py path/to/cairn [steps]
needs: torch, transformers, peft, gguf (pip).
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GGUF = Path(os.environ.get("CAIRN_CACHE", Path.home() / ".cache/cairn")) / \
    "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
THREADS = int(os.environ.get("THREADS", os.cpu_count() or 2))
SEQ = 256


def peft_steps(steps):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(GGUF.parent), gguf_file=GGUF.name,
                                                 torch_dtype=torch.float32)
    cfg = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, task_type="CAUSAL_LM",
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                     "up_proj", "down_proj"], init_lora_weights="gaussian")
    model = get_peft_model(model, cfg)
    model.print_trainable_parameters()
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    ids = torch.randint(0, 49152, (1, SEQ))
    times = []
    for i in range(steps + 1):
        t = time.perf_counter()
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        if i > 0:  # the first step warms up allocators
            times.append(time.perf_counter() - t)
    return sum(times) / len(times)


def cairn_steps(cairn, steps):
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run(
            [cairn, "train", "lora", "--data", str(ROOT / "bench/data/grounded/train.jsonl"),
             "--out", d, "--seq-len", str(SEQ), "--epochs", "1", "--max-steps", str(steps)],
            check=True, capture_output=True, text=True).stdout
        print(out.strip())
        log = json.loads((Path(d) / "training_log.json").read_text())
        return log["seconds"] / max(1, log["steps"])


def main():
    cairn = sys.argv[1]
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    c = cairn_steps(cairn, steps)
    p = peft_steps(steps)
    print(f"threads {THREADS}, {SEQ} tokens/step, rank 8 on 7 projections")
    print(f"cairn (Q4_1 base, QLoRA): {c:.3f} s/step, {SEQ / c:.1f} tokens/s")
    print(f"PEFT  (f32 base, torch {__import__('torch').__version__}): {p:.3f} s/step, {SEQ / p:.1f} tokens/s")
    print(f"ratio cairn/PEFT throughput: {p / c:.2f}x")


if __name__ == "__main__":
    main()
