#!/usr/bin/env python3
"""Golden GGUF header of SmolLM2-135M-Instruct.Q4_1.gguf from llama.cpp's own
Python reader (PyPI `gguf`).

Writes tests/fixtures/smollm2_gguf_header.json: every tensor's name, ggml type
id, shape (ggml order) and absolute data offset, and every metadata key with its
scalar value, or for arrays the length and first three items.

    pip install gguf==0.19.0
    python3 tests/scripts/make_gguf_golden.py ~/.cache/cairn/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import json
import sys
from pathlib import Path

from gguf import GGUFReader, GGUFValueType


def field_value(f):
    t = f.types[0]
    if t == GGUFValueType.ARRAY:
        items = [f.contents(i) for i in range(min(3, len(f.data)))]
        return {"array_len": len(f.data), "head": items}
    return f.contents()


def main() -> None:
    r = GGUFReader(sys.argv[1])
    meta = {}
    for name, f in r.fields.items():
        if name.startswith("GGUF."):
            continue
        v = field_value(f)
        if isinstance(v, float):
            v = float(f"{v:.9g}")
        meta[name] = v
    tensors = [
        {"name": t.name, "type": int(t.tensor_type), "shape": [int(d) for d in t.shape], "offset": int(t.data_offset)}
        for t in r.tensors
    ]
    out = Path(__file__).resolve().parent.parent / "fixtures" / "smollm2_gguf_header.json"
    out.write_text(json.dumps({"metadata": meta, "tensors": tensors}, ensure_ascii=False, indent=0) + "\n")
    print(f"wrote {len(tensors)} tensors, {len(meta)} keys to {out}")


if __name__ == "__main__":
    main()
