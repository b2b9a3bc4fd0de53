#!/usr/bin/env python3
"""Constrained decoding speed: cairn serve vs llama.cpp's llama-server (its
GBNF grammar sampler, fed the same JSON Schema), same GGUF, same threads,
same run.

    python3 bench/scripts/grammar_vs_llamacpp.py [--threads N] [--schemas 40]
        [--max-tokens 96] [--out bench/reports/grammar]

For each schema of tests/fixtures/schemas/suite.json (its prompt as one user
turn, greedy), each server generates once under the schema
(`response_format: {type: json_schema}`), then once without it with
`ignore_eos` and `max_tokens` equal to the constrained answer's length, so
both decode the same number of tokens. Decode tokens/s is measured from the
first streamed chunk to the last (prompt processing excluded): (tokens - 1) /
seconds. Reported per server: the median over schemas of tokens/s with and
without the schema and the slowdown (goal: ≤ 10 % for cairn), and how many
constrained outputs parse as JSON. llama-server comes from the
llama-cpp-python sdist, built as in serve_vs_llama_server.py.
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_vs_llama_server import MODEL, ROOT, llama_server_binary, log, wait_ready  # noqa: E402


def stream_chat(port, model, prompt, max_tokens, schema=None, ignore_eos=False):
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0,
            "max_tokens": max_tokens, "stream": True, "stream_options": {"include_usage": True}}
    if schema is not None:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}
    if ignore_eos:
        body["ignore_eos"] = True
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        return {"error": f"HTTP {r.status}: {r.read()[:300]!r}"}
    text, chunks, usage, first, last = [], 0, None, None, None
    buf = b""
    while True:
        line = r.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        v = json.loads(data)
        if v.get("usage"):
            usage = v["usage"]
        for ch in v.get("choices", []):
            piece = (ch.get("delta") or {}).get("content")
            if piece:
                now = time.perf_counter()
                first = first or now
                last = now
                chunks += 1
                text.append(piece)
    n = (usage or {}).get("completion_tokens") or chunks
    secs = (last - first) if first and last else 0.0
    return {"text": "".join(text), "tokens": n, "decode_tokens_per_s": (n - 1) / secs if secs > 0 and n > 1 else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--schemas", type=int, default=40)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--out", default=str(ROOT / "bench/reports/grammar"))
    a = ap.parse_args()
    if not MODEL.exists():
        sys.exit(f"{MODEL} is missing: run `cairn fetch`")
    suite = json.loads((ROOT / "tests/fixtures/schemas/suite.json").read_text())[: a.schemas]
    llama = llama_server_binary(a.threads)
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads), CAIRN_LOG="warn")
    subprocess.check_call(["cargo", "build", "-q", "--release", "-p", "cairn"], cwd=ROOT, env=env)
    target = Path(env.get("CARGO_TARGET_DIR", ROOT / "target"))
    servers = {
        "cairn": ([str(target / "release/cairn"), "serve", "--port", "18091", "--model", str(MODEL),
                   "--max-concurrency", "1"], 18091, str(MODEL)),
        "llama-server": ([str(llama), "-m", str(MODEL), "--port", "18092", "-t", str(a.threads), "-tb",
                          str(a.threads), "-np", "1", "-c", "2048", "--log-disable"], 18092, "smollm2"),
    }
    report = {"model": MODEL.name, "threads": a.threads, "max_tokens": a.max_tokens, "cpus": os.cpu_count(),
              "servers": {}}
    for name, (cmd, port, model) in servers.items():
        log("starting", name)
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rows = []
        try:
            wait_ready(port, p, name)
            stream_chat(port, model, "Hello", 8)  # warm-up
            for case in suite:
                with_s = stream_chat(port, model, case["prompt"], a.max_tokens, schema=case["schema"])
                row = {"name": case.get("name"), "constrained": with_s}
                if "error" not in with_s and with_s["tokens"] > 1:
                    row["free"] = stream_chat(port, model, case["prompt"], with_s["tokens"], ignore_eos=True)
                    try:
                        json.loads(with_s["text"])
                        row["parses"] = True
                    except ValueError:
                        row["parses"] = False
                log(name, case.get("name"), json.dumps({k: v.get("decode_tokens_per_s") if isinstance(v, dict) else v
                                                        for k, v in row.items() if k != "name"}))
                rows.append(row)
        finally:
            p.terminate()
            p.wait(timeout=60)
        ok = [r for r in rows if r.get("free") and r["constrained"]["decode_tokens_per_s"] and r["free"]["decode_tokens_per_s"]]
        med = lambda xs: statistics.median(xs) if xs else float("nan")  # noqa: E731
        c_tps = med([r["constrained"]["decode_tokens_per_s"] for r in ok])
        f_tps = med([r["free"]["decode_tokens_per_s"] for r in ok])
        slow = med([1 - r["constrained"]["decode_tokens_per_s"] / r["free"]["decode_tokens_per_s"] for r in ok])
        report["servers"][name] = {
            "schemas_run": len(ok), "errors": [r["name"] for r in rows if "error" in r["constrained"]],
            "parses": sum(1 for r in rows if r.get("parses")), "median_constrained_tokens_per_s": c_tps,
            "median_free_tokens_per_s": f_tps, "median_slowdown": slow,
            "median_tokens": med([r["constrained"]["tokens"] for r in ok]), "rows": rows,
        }
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    c, l = report["servers"]["cairn"], report["servers"]["llama-server"]
    lines = [
        "# Constrained decoding: cairn serve vs llama-server (grammar sampler)",
        "",
        f"SmolLM2-135M-Instruct Q4_1, {a.threads} threads, {os.cpu_count()} CPUs, the first {len(suite)} schemas of "
        "tests/fixtures/schemas/suite.json, greedy, one client. Each schema's constrained answer, then the same "
        "prompt unconstrained for the same number of tokens (ignore_eos). Decode tokens/s from the first streamed "
        "chunk to the last. Command: `python3 bench/scripts/grammar_vs_llamacpp.py`.",
        "",
        "| server | schemas run | outputs that parse | median tokens | tok/s with schema | tok/s without | median slowdown |",
        "|---|---|---|---|---|---|---|",
    ]
    for nm, r in (("cairn", c), ("llama-server", l)):
        lines.append(f"| {nm} | {r['schemas_run']} | {r['parses']} | {r['median_tokens']:.0f} | "
                     f"{r['median_constrained_tokens_per_s']:.1f} | {r['median_free_tokens_per_s']:.1f} | "
                     f"{100 * r['median_slowdown']:.1f} % |")
    lines += ["", f"cairn/llama-server tokens/s with a schema: "
              f"{c['median_constrained_tokens_per_s'] / l['median_constrained_tokens_per_s']:.2f}×."]
    for nm, r in (("cairn", c), ("llama-server", l)):
        if r["errors"]:
            lines.append(f"{nm} refused {len(r['errors'])} schemas: {', '.join(map(str, r['errors']))}.")
    (out / "REPORT.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
