#!/usr/bin/env python3
"""HF PEFT loads an adapter written by `cairn train lora`: greedy text of
transformers + PeftModel.from_pretrained equals `cairn generate --adapter`
(same GGUF base, ChatML prompt, 24 new tokens), with and without the adapter.

    pip install torch transformers==4.57.1 peft==0.21.2 gguf
    python3 bench/scripts/grounded/check_peft_loads.py path/to/cairn ADAPTER_DIR [QUESTION]
"""
import os
import subprocess
import sys
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

GGUF = Path(os.environ.get("CAIRN_CACHE", Path.home() / ".cache/cairn")) / \
    "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
QUESTION = sys.argv[3] if len(sys.argv) > 3 else "How can add-on packages be removed in R?"


def main():
    cairn, adapter = sys.argv[1], sys.argv[2]
    tok = AutoTokenizer.from_pretrained(str(GGUF.parent), gguf_file=GGUF.name)
    model = AutoModelForCausalLM.from_pretrained(str(GGUF.parent), gguf_file=GGUF.name,
                                                 dtype=torch.float32).eval()
    prompt = tok.apply_chat_template([{"role": "user", "content": QUESTION}], tokenize=False,
                                     add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False).input_ids

    def hf(m):
        with torch.no_grad():
            out = m.generate(ids, max_new_tokens=24, do_sample=False)
        return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()

    def ours(extra):
        return subprocess.run([cairn, "generate", "--chat", "--max-new-tokens", "24", *extra, QUESTION],
                              check=True, capture_output=True, text=True).stdout.strip()

    base_hf, base_c = hf(model), ours([])
    peft = PeftModel.from_pretrained(model, adapter).eval()
    ad_hf, ad_c = hf(peft), ours(["--adapter", adapter])
    print("base     transformers:", repr(base_hf))
    print("base     cairn:       ", repr(base_c))
    print("adapter  transformers+PEFT:", repr(ad_hf))
    print("adapter  cairn:            ", repr(ad_c))
    print("base equal:", base_hf == base_c, "| adapter equal:", ad_hf == ad_c,
          "| adapter changes the text:", ad_hf != base_hf)


if __name__ == "__main__":
    main()
