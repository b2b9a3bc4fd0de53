#!/usr/bin/env python3
"""Decoder speed: cairn vs llama.cpp on the same GGUF file, same thread count,
same run, plus the memory-bandwidth bound.

    python3 bench/scripts/decode_vs_llamacpp.py [--threads N] [--prompt 512] [--decode 128]

Installs PyPI llama-cpp-python==0.3.36 if missing (it builds llama.cpp from
source with cmake: ~10 minutes on 2 cores). Model: SmolLM2-135M-Instruct.Q4_1.gguf
from the cache (`cairn fetch`). Both sides: a 512-token prompt evaluated in one
batch (prefill), then 128 greedy single-token steps (decode), logits of the
last position only, timings exclude model loading. cairn's numbers, the
STREAM-style copy bandwidth and the bytes per decode step come from
`cargo bench -p cairn --bench decode` (native/benches/decode.rs).
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL = Path(os.environ.get("CAIRN_CACHE", Path.home() / ".cache/cairn")) / \
    "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"


def ensure():
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "llama-cpp-python==0.3.36", "numpy"])


def llamacpp(threads, n_prompt, n_decode):
    import numpy as np
    import llama_cpp
    from llama_cpp import Llama

    llm = Llama(model_path=str(MODEL), n_ctx=n_prompt + n_decode + 16, n_threads=threads,
                n_threads_batch=threads, n_batch=n_prompt, verbose=False)
    text = ("The R FAQ answers questions about installing packages, data frames, "
            "plotting, and the Debian reference explains apt, dpkg and systemd. ") * (n_prompt // 8 + 8)
    ids = llm.tokenize(text.encode(), add_bos=False)[:n_prompt]
    llm.eval(ids[:16])  # warm-up
    llm.reset()
    t = time.perf_counter()
    llm.eval(ids)
    prefill = time.perf_counter() - t
    t = time.perf_counter()
    n_vocab = llm.n_vocab()

    def last_logits():
        # Read the last position's logits straight from llama.cpp (llm.scores
        # only has n_batch rows unless logits_all, which would make the prefill
        # compute all 512 rows of the LM head).
        ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(n_vocab,))

    for _ in range(n_decode):
        nxt = int(np.argmax(last_logits()))
        llm.eval([nxt])
    decode = time.perf_counter() - t
    return {"prefill_tokens_per_s": n_prompt / prefill, "decode_tokens_per_s": n_decode / decode}


def cairn(threads, n_prompt, n_decode):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run(["cargo", "bench", "-q", "-p", "cairn", "--bench", "decode", "--",
                          str(n_prompt), str(n_decode)], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--decode", type=int, default=128)
    a = ap.parse_args()
    ensure()
    ref = llamacpp(a.threads, a.prompt, a.decode)
    ours = cairn(a.threads, a.prompt, a.decode)
    print(json.dumps({"llama.cpp": ref, "cairn": ours}, indent=1))
    print(f"threads {a.threads}, prompt {a.prompt}, decode {a.decode}, model {MODEL.name}")
    print(f"prefill: cairn {ours['prefill_tokens_per_s']:.1f} tok/s, llama.cpp {ref['prefill_tokens_per_s']:.1f} tok/s "
          f"→ {ours['prefill_tokens_per_s'] / ref['prefill_tokens_per_s']:.2f}×")
    print(f"decode:  cairn {ours['decode_tokens_per_s']:.1f} tok/s, llama.cpp {ref['decode_tokens_per_s']:.1f} tok/s "
          f"→ {ours['decode_tokens_per_s'] / ref['decode_tokens_per_s']:.2f}×")
    bound = ours["bandwidth_bound_tokens_per_s"]
    print(f"bandwidth bound: {ours['bytes_per_token'] / 1e6:.1f} MB/token at "
          f"{ours['copy_bandwidth_bytes_per_s'] / 1e9:.1f} GB/s = {bound:.1f} tok/s; "
          f"cairn reaches {100 * ours['decode_tokens_per_s'] / bound:.0f}%, "
          f"llama.cpp {100 * ref['decode_tokens_per_s'] / bound:.0f}%")


if __name__ == "__main__":
    main()
