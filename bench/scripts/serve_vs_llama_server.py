#!/usr/bin/env python3
"""`cairn serve` vs llama.cpp's `llama-server`: many streaming clients, same
GGUF, same threads, same run.

    python3 bench/scripts/serve_vs_llama_server.py [--threads N] [--tokens 64]
        [--clients 1,8,32] [--soak 200] [--out bench/reports/serve]

llama-server is built from the llama.cpp source inside the PyPI sdist of
llama-cpp-python==0.3.36 (downloaded once, sha256-checked, built with cmake
from PyPI into ~/.cache/cairn/bench; ~10 minutes on 2 cores), with parallel
slots (-np = the most clients) and continuous batching on. cairn serve runs
its release build with --max-concurrency = the most clients.

For each client count, every client sends one streamed chat completion
(its own prompt, greedy, `ignore_eos` so both servers generate exactly
--tokens tokens) at the same moment. Reported: aggregate generated tokens/s
(all completion tokens over the wall time from the first request to the
last token), time to first token p50/p95, per-client decode tokens/s.
Then a soak: --soak clients (short answers) through cairn serve, counting
errors, with its RSS before and after. Writes report.json and REPORT.md.
"""
import argparse
import hashlib
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("CAIRN_CACHE", Path.home() / ".cache/cairn"))
MODEL = CACHE / "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
SDIST = ("https://files.pythonhosted.org/packages/ec/e9/e7de2b0463ea3ffbf0ede6cb21b58c1258a8f6521aae45ca773a59fe7cf3/"
         "llama_cpp_python-0.3.36.tar.gz")
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
WORK = CACHE / "bench/llama-cpp-python-0.3.36"


def log(*a):
    print("[serve-bench]", *a, file=sys.stderr, flush=True)


def llama_server_binary(threads):
    exe = WORK / "build/bin/llama-server"
    if exe.exists():
        return exe
    WORK.mkdir(parents=True, exist_ok=True)
    tgz = WORK / "sdist.tar.gz"
    if not tgz.exists():
        log("downloading", SDIST)
        data = urllib.request.urlopen(SDIST).read()
        digest = hashlib.sha256(data).hexdigest()
        if digest != SDIST_SHA256:
            sys.exit(f"sha256 mismatch for the llama-cpp-python sdist: {digest}")
        tgz.write_bytes(data)
    src = WORK / "src"
    if not src.exists():
        with tarfile.open(tgz) as t:
            t.extractall(WORK / "x", filter="data")
        top = next((WORK / "x").iterdir())
        shutil.move(str(top / "vendor/llama.cpp"), str(src))
    cmake = shutil.which("cmake")
    if cmake is None:
        venv = WORK / "venv"
        if not (venv / "bin/cmake").exists():
            subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
            subprocess.check_call([str(venv / "bin/pip"), "install", "-q", "cmake==3.31.6"])
        cmake = str(venv / "bin/cmake")
    log("building llama-server (cmake, Release)")
    subprocess.check_call([cmake, "-S", str(src), "-B", str(WORK / "build"), "-DCMAKE_BUILD_TYPE=Release",
                           "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
                           "-DLLAMA_BUILD_SERVER=ON", "-DGGML_NATIVE=ON"], stdout=subprocess.DEVNULL)
    subprocess.check_call([cmake, "--build", str(WORK / "build"), "--target", "llama-server",
                           "-j", str(threads)], stdout=subprocess.DEVNULL)
    return exe


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wait_ready(port, proc, what, timeout=300):
    t = time.time()
    while time.time() - t < timeout:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"{what} never became ready")


def stream_one(port, model, prompt, tokens, results, i, start_gate):
    body = json.dumps({
        "model": model, "messages": [{"role": "user", "content": prompt}],
        "temperature": 0, "max_tokens": tokens, "ignore_eos": True, "stream": True,
        "stream_options": {"include_usage": True},
    })
    start_gate.wait()
    t0 = time.perf_counter()
    ttft, n_chunks, usage, err = None, 0, None, None
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        if r.status != 200:
            err = f"HTTP {r.status}: {r.read()[:200]!r}"
        else:
            for raw in r:
                line = raw.decode().strip()
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    break
                v = json.loads(data)
                if v.get("usage"):
                    usage = v["usage"]
                for ch in v.get("choices", []):
                    if ch.get("delta", {}).get("content"):
                        n_chunks += 1
                        if ttft is None:
                            ttft = time.perf_counter() - t0
    except Exception as e:  # noqa: BLE001 - counted as an error of the run
        err = repr(e)
    end = time.perf_counter()
    tokens_out = usage["completion_tokens"] if usage else n_chunks
    results[i] = {"start": t0, "end": end, "ttft": ttft, "tokens": tokens_out, "error": err}


def run_clients(port, model, n, tokens):
    prompts = [f"Write a short story about the number {i} and a lighthouse." for i in range(n)]
    results = [None] * n
    gate = threading.Barrier(n)
    threads = [threading.Thread(target=stream_one, args=(port, model, prompts[i], tokens, results, i, gate))
               for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r["error"] for r in results if r["error"]]
    ok = [r for r in results if not r["error"]]
    wall = max(r["end"] for r in ok) - min(r["start"] for r in ok) if ok else float("nan")
    total = sum(r["tokens"] for r in ok)
    ttfts = sorted(r["ttft"] for r in ok if r["ttft"] is not None)

    def pct(p):
        return ttfts[min(len(ttfts) - 1, int(round(p * (len(ttfts) - 1))))] if ttfts else float("nan")
    per_client = [(r["tokens"] - 1) / (r["end"] - r["start"] - r["ttft"]) for r in ok
                  if r["ttft"] is not None and r["tokens"] > 1 and r["end"] - r["start"] > r["ttft"]]
    return {"clients": n, "errors": len(errors), "error_examples": errors[:3], "tokens": total,
            "wall_s": wall, "aggregate_tokens_per_s": total / wall if ok else 0.0,
            "ttft_p50_s": pct(0.5), "ttft_p95_s": pct(0.95),
            "per_client_decode_tokens_per_s": statistics.median(per_client) if per_client else float("nan")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--soak", type=int, default=200)
    ap.add_argument("--out", default=str(ROOT / "bench/reports/serve"))
    a = ap.parse_args()
    counts = [int(c) for c in a.clients.split(",")]
    slots = max(counts)
    if not MODEL.exists():
        sys.exit(f"{MODEL} is missing: run `cairn fetch`")
    llama = llama_server_binary(a.threads)
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads), CAIRN_LOG="warn")
    subprocess.check_call(["cargo", "build", "-q", "--release", "-p", "cairn"], cwd=ROOT, env=env)
    target = Path(env.get("CARGO_TARGET_DIR", ROOT / "target"))
    cairn_exe = target / "release/cairn"
    ctx_per_slot = 512
    servers = {
        "cairn": (["serve", "--port", "18081", "--model", str(MODEL), "--max-concurrency", str(slots),
                   "--queue", str(max(256, a.soak))], 18081, cairn_exe),
        "llama-server": (["-m", str(MODEL), "--port", "18082", "-t", str(a.threads), "-tb", str(a.threads),
                          "-np", str(slots), "-c", str(ctx_per_slot * slots), "-cb", "--log-disable"],
                         18082, llama),
    }
    report = {"model": MODEL.name, "threads": a.threads, "tokens_per_request": a.tokens,
              "machine": os.uname().machine, "cpus": os.cpu_count(), "runs": {}}
    for name, (args, port, exe) in servers.items():
        log("starting", name)
        p = subprocess.Popen([str(exe)] + args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(port, p, name)
            model = str(MODEL) if name == "cairn" else "smollm2"
            run_clients(port, model, 2, 8)  # warm-up
            runs = []
            for n in counts:
                r = run_clients(port, model, n, a.tokens)
                log(name, json.dumps(r))
                runs.append(r)
            report["runs"][name] = runs
            if name == "cairn" and a.soak:
                before = rss_kib(p.pid)
                t = time.time()
                s = run_clients(port, model, a.soak, 16)
                s.update({"rss_before_kib": before, "rss_after_kib": rss_kib(p.pid), "seconds": time.time() - t})
                log("soak", json.dumps(s))
                report["soak"] = s
        finally:
            p.terminate()
            p.wait(timeout=60)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# cairn serve vs llama-server",
        "",
        f"SmolLM2-135M-Instruct Q4_1, {a.threads} threads, {a.tokens} tokens per request (greedy, ignore_eos), "
        f"{os.cpu_count()} CPUs. Command: `python3 bench/scripts/serve_vs_llama_server.py`.",
        "",
        "| clients | server | aggregate tok/s | TTFT p50 (s) | TTFT p95 (s) | per-client decode tok/s | errors | cairn/llama aggregate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, n in enumerate(counts):
        c, l = report["runs"]["cairn"][i], report["runs"]["llama-server"][i]
        ratio = c["aggregate_tokens_per_s"] / l["aggregate_tokens_per_s"] if l["aggregate_tokens_per_s"] else float("nan")
        for nm, r in (("cairn", c), ("llama-server", l)):
            lines.append(f"| {n} | {nm} | {r['aggregate_tokens_per_s']:.1f} | {r['ttft_p50_s']:.3f} | "
                         f"{r['ttft_p95_s']:.3f} | {r['per_client_decode_tokens_per_s']:.1f} | {r['errors']} | "
                         f"{ratio:.2f}× |" if nm == "cairn" else
                         f"| {n} | {nm} | {r['aggregate_tokens_per_s']:.1f} | {r['ttft_p50_s']:.3f} | "
                         f"{r['ttft_p95_s']:.3f} | {r['per_client_decode_tokens_per_s']:.1f} | {r['errors']} | |")
    if "soak" in report:
        s = report["soak"]
        lines += ["", f"Soak: {s['clients']} concurrent streaming clients (16 tokens each) through cairn serve: "
                  f"{s['errors']} errors, {s['seconds']:.1f} s, RSS {s['rss_before_kib'] / 1024:.0f} MiB before, "
                  f"{s['rss_after_kib'] / 1024:.0f} MiB after."]
    (out / "REPORT.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
