#!/usr/bin/env python3
"""Dequantization goldens for every ggml block type cairn reads, from PyPI
`gguf`'s reference codecs (gguf.quants.dequantize).

For each type: 4 blocks of seeded random bytes whose f16 scale fields are
replaced by small finite values (so no block decodes to inf/NaN); F16 and
BF16 from random floats. Writes tests/fixtures/quant_dequant_golden.json
with the bytes (hex) and gguf's f32 values.

    ~/.cache/cairn/refvenv/bin/pip install gguf==0.19.0 numpy==2.4.6
    ~/.cache/cairn/refvenv/bin/python tests/scripts/make_quant_dequant_golden.py
"""
import json
from pathlib import Path

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

ROOT = Path(__file__).resolve().parents[2]
# Byte offsets of the f16 scale fields inside one block.
SCALES = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
BLOCKS = 4


def main():
    rng = np.random.default_rng(20261201)
    out = {"meta": {"reference": f"gguf.quants.dequantize (PyPI gguf {gguf.__version__ if hasattr(gguf, '__version__') else '0.19.0'})"}, "types": {}}
    for ty, offsets in SCALES.items():
        block, size = gguf.GGML_QUANT_SIZES[ty]
        raw = bytearray(rng.integers(0, 256, BLOCKS * size, dtype=np.uint8).tobytes())
        for b in range(BLOCKS):
            for off in offsets:
                raw[b * size + off: b * size + off + 2] = np.float16(rng.uniform(-0.1, 0.1)).tobytes()
        values = dequantize(np.frombuffer(bytes(raw), dtype=np.uint8), ty).reshape(-1)
        assert np.all(np.isfinite(values)) and values.size == BLOCKS * block
        out["types"][ty.name] = {"bytes": bytes(raw).hex(), "values": [float(v) for v in values.astype(np.float32)]}
    floats = rng.normal(0, 3, 64).astype(np.float32)
    f16 = floats.astype(np.float16).tobytes()
    bf16 = (floats.view(np.uint32) >> 16).astype(np.uint16).tobytes()
    for name, ty, raw in (("F16", T.F16, f16), ("BF16", T.BF16, bf16)):
        values = dequantize(np.frombuffer(raw, dtype=np.uint8), ty).reshape(-1)
        out["types"][name] = {"bytes": raw.hex(), "values": [float(v) for v in values.astype(np.float32)]}
    (ROOT / "tests/fixtures/quant_dequant_golden.json").write_text(json.dumps(out) + "\n")
    print({k: len(v["values"]) for k, v in out["types"].items()})


if __name__ == "__main__":
    main()
