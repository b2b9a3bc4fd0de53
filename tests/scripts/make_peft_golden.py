#!/usr/bin/env python3
"""A PEFT LoRA adapter for SmolLM2-135M-Instruct written by Hugging Face
PEFT, and transformers' logits with and without it: cairn must load the
adapter (tests/fixtures/peft_adapter/) and reproduce the change it makes.

The model is the same GGUF file cairn reads, loaded by transformers
(`gguf_file=`, dequantized to f32). The adapter targets q_proj and k_proj
(whose rows llama.cpp permutes in GGUF files, the case a layout bug would
break) and v_proj, rank 2, with B drawn at random (a fresh PEFT adapter has
B = 0 and would change nothing). Golden: last-position logits of a prompt
for the 50 highest-scoring vocabulary ids of the adapted model.

    pip install torch transformers==4.57.1 peft==0.21.2 gguf safetensors
    python3 tests/scripts/make_peft_golden.py ~/.cache/cairn/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import json
import sys
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "peft_adapter"
IDS = [1, 504, 3458, 282, 8320, 3220, 314]  # "<|im_start|>The history of Rome began" ids, any fixed ids do


def main():
    gguf = Path(sys.argv[1])
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                 torch_dtype=torch.float32)
    model.eval()
    ids = torch.tensor([IDS])
    with torch.no_grad():
        base = model(input_ids=ids).logits[0, -1]
    cfg = LoraConfig(r=2, lora_alpha=4, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj"],
                     task_type="CAUSAL_LM", init_lora_weights="gaussian")
    peft = get_peft_model(model, cfg)
    with torch.no_grad():
        for n, p in peft.named_parameters():
            if "lora_B" in n:
                p.copy_(0.05 * torch.randn_like(p))
    peft.eval()
    with torch.no_grad():
        adapted = peft(input_ids=ids).logits[0, -1]
    peft.save_pretrained(OUT)
    top = torch.topk(adapted, 50).indices.tolist()
    golden = {"ids": IDS, "top_ids": top,
              "base": [float(base[i]) for i in top], "adapted": [float(adapted[i]) for i in top],
              "max_change": float((adapted - base).abs().max())}
    (OUT / "golden.json").write_text(json.dumps(golden, indent=1) + "\n")
    print("max |adapted - base| =", golden["max_change"], "; wrote", OUT)


if __name__ == "__main__":
    main()
