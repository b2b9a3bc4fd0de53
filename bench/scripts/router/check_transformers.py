#!/usr/bin/env python3
"""transformers loads a classifier directory written by `cairn train classify`
and gives cairn's probabilities (first 20 test questions).

    pip install torch transformers==4.57.1
    python3 bench/scripts/router/check_transformers.py ROUTER_DIR path/to/cairn [test.jsonl]
"""
import json, subprocess, sys, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
d = sys.argv[1]
m = AutoModelForSequenceClassification.from_pretrained(d).eval()
tok = AutoTokenizer.from_pretrained(d)
rows = [json.loads(l) for l in open(sys.argv[3] if len(sys.argv) > 3 else 'bench/data/router/test.jsonl')][:20]
texts = [r['text'] for r in rows]
with torch.no_grad():
    enc = tok(texts, padding=True, truncation=True, max_length=128, return_tensors='pt')
    p = torch.softmax(m(**enc).logits, -1)
out = json.loads(subprocess.run([sys.argv[2], 'classify', '--model', d] + texts,
                                capture_output=True, text=True, check=True).stdout)
labels = [m.config.id2label[i] for i in range(p.shape[1])]
worst = max(abs(p[i, j].item() - out[i]['scores'][labels[j]]) for i in range(len(texts)) for j in range(len(labels)))
same = sum(labels[int(p[i].argmax())] == out[i]['labels'][0] for i in range(len(texts)))
print(f"transformers loads cairn's router: {same}/{len(texts)} same labels, max |prob diff| {worst:.2e}")
