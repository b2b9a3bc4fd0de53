#!/usr/bin/env python3
"""IVF-Flat, IVF-PQ and exact flat search: cairn (native/benches/ivf_recall.rs)
against FAISS (PyPI faiss-cpu 1.15.1) on the very same vectors, same
parameters, same machine, same run; prints both sides and the ratios.

    python3 bench/scripts/ivf_vs_faiss.py random [N] [DIM] [QUERIES]   # defaults 100000 384 200
    python3 bench/scripts/ivf_vs_faiss.py corpus INDEX.cidx [QUERIES]  # chunks of a `cairn index`

Environment: IVF_NLIST (default 1024 random / 100 corpus), IVF_PQ_M (48),
IVF_NPROBE (1,4,16,64). Random vectors: uniform in [-0.5, 0.5)^DIM,
normalised (numpy, seed 1). Corpus: every live chunk vector of the index
(MiniLM embeddings), every n/QUERIES-th held out as a query.

Both sides: inner product on unit vectors; FAISS IndexIVFFlat /
IndexIVFPQ (8-bit codes, by_residual) with an IndexFlatIP quantizer, its
default k-means (10 iterations, ≤ 256 points per centroid); 2 threads.
"qps_one" runs the queries one at a time (as a RAG query does), "qps_batch"
all at once (FAISS: OpenMP over queries / BLAS for flat; cairn: rayon over
queries / one GEMM for flat). recall@10 is against exact search.
"""
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKGS = ["faiss-cpu==1.15.1", "numpy"]


def ensure_packages():
    try:
        import faiss  # noqa: F401
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *PKGS])


def cargo_bench(*args):
    out = subprocess.run(
        ["cargo", "bench", "--locked", "-q", "-p", "cairn", "--bench", "ivf_recall", "--", *map(str, args)],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return out


def parse(line):
    return dict(kv.split("=", 1) for kv in line.split())


def faiss_side(xb, xq, nlist, m, nprobes):
    import faiss
    import numpy as np

    faiss.omp_set_num_threads(2)
    n, d = xb.shape
    nq = xq.shape[0]
    rows = []
    flat = faiss.IndexFlatIP(d)
    flat.add(xb)
    t = time.perf_counter()
    truth = np.vstack([flat.search(xq[i : i + 1], 10)[1] for i in range(nq)])
    one = nq / (time.perf_counter() - t)
    t = time.perf_counter()
    flat.search(xq, 10)
    batch = nq / (time.perf_counter() - t)
    rows.append(dict(side="faiss", index="flat", n=n, dim=d, qps_one=f"{one:.1f}", qps_batch=f"{batch:.1f}"))
    for mm in (0, m):
        quantizer = faiss.IndexFlatIP(d)
        if mm == 0:
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            kind = "ivfflat"
        else:
            index = faiss.IndexIVFPQ(quantizer, d, nlist, mm, 8, faiss.METRIC_INNER_PRODUCT)
            kind = f"ivfpq{mm}"
        t = time.perf_counter()
        index.train(xb)
        train = time.perf_counter() - t
        t = time.perf_counter()
        index.add(xb)
        add = time.perf_counter() - t
        for p in nprobes:
            index.nprobe = p
            t = time.perf_counter()
            got = np.vstack([index.search(xq[i : i + 1], 10)[1] for i in range(nq)])
            one = nq / (time.perf_counter() - t)
            t = time.perf_counter()
            index.search(xq, 10)
            batch = nq / (time.perf_counter() - t)
            recall = np.mean([len(set(truth[i]) & set(got[i])) / 10 for i in range(nq)])
            rows.append(dict(side="faiss", index=kind, nlist=nlist, nprobe=p, recall10=f"{recall:.4f}",
                             qps_one=f"{one:.1f}", qps_batch=f"{batch:.1f}", train_s=f"{train:.2f}", add_s=f"{add:.2f}"))
    return rows


def main():
    ensure_packages()
    import numpy as np

    args = sys.argv[1:] or ["random"]
    mode = args[0]
    work = Path(tempfile.mkdtemp(prefix="ivf_bench_"))
    base, queries = work / "base.f32", work / "queries.f32"
    if mode == "random":
        n, d, nq = ([int(a) for a in args[1:]] + [100_000, 384, 200][len(args) - 1 :])[:3]
        rng = np.random.default_rng(1)
        xb = rng.random((n, d), dtype=np.float32) - 0.5
        xq = rng.random((nq, d), dtype=np.float32) - 0.5
        xb /= np.linalg.norm(xb, axis=1, keepdims=True)
        xq /= np.linalg.norm(xq, axis=1, keepdims=True)
        xb.astype("<f4").tofile(base)
        xq.astype("<f4").tofile(queries)
        default_nlist = 1024
        label = f"{n} random unit vectors, dim {d}, {nq} queries"
    elif mode == "corpus":
        index, nq = args[1], int(args[2]) if len(args) > 2 else 200
        out = cargo_bench("export", index, base, queries, nq)
        d = int(re.search(r"dim=(\d+)", out).group(1))
        xb = np.fromfile(base, dtype="<f4").reshape(-1, d)
        xq = np.fromfile(queries, dtype="<f4").reshape(-1, d)
        default_nlist = 100
        label = f"{xb.shape[0]} chunk vectors of {index}, dim {d}, {xq.shape[0]} held-out chunks as queries"
    else:
        sys.exit(__doc__)
    nlist = int(os.environ.get("IVF_NLIST", default_nlist))
    m = int(os.environ.get("IVF_PQ_M", 48))
    nprobes = [int(p) for p in os.environ.get("IVF_NPROBE", "1,4,16,64").split(",")]
    print(f"# {label}; nlist {nlist}, PQ m {m}, nprobe {nprobes}")
    cairn = [parse(l) for l in cargo_bench("run", base, queries, d, nlist, m, ",".join(map(str, nprobes))).splitlines() if l.startswith("side=")]
    faiss_rows = faiss_side(xb, xq, nlist, m, nprobes)
    key = lambda r: (r["index"], str(r.get("nprobe", "")))
    fa = {key(r): r for r in faiss_rows}
    print("| index | nprobe | recall@10 cairn | recall@10 FAISS | q/s one-by-one cairn / FAISS (ratio) | q/s batch cairn / FAISS (ratio) | train+add s cairn / FAISS |")
    print("|---|---|---|---|---|---|---|")
    for c in cairn:
        f = fa[key(c)]
        ratio = lambda k: f"{float(c[k]):.0f} / {float(f[k]):.0f} ({float(c[k]) / float(f[k]):.2f}×)"
        build = (f"{float(c['train_s']) + float(c['add_s']):.1f} / {float(f['train_s']) + float(f['add_s']):.1f}"
                 if "train_s" in c else "")
        print(f"| {c['index']} | {c.get('nprobe', '')} | {c.get('recall10', '1 (exact)')} | {f.get('recall10', '1 (exact)')} | {ratio('qps_one')} | {ratio('qps_batch')} | {build} |")
    for p in (base, queries):
        p.unlink()
    work.rmdir()


if __name__ == "__main__":
    main()
