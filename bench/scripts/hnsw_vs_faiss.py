#!/usr/bin/env python3
"""HNSW recall@10 and speed: cairn's graph vs FAISS's IndexHNSWFlat (PyPI
faiss-cpu), same data distribution, same parameters, same machine, same run.

    python3 bench/scripts/hnsw_vs_faiss.py [N] [DIM] [QUERIES]     # defaults 100000 384 200

Both sides index N unit vectors drawn uniformly from the cube [-0.5, 0.5)^DIM
and normalised (cairn's bench draws them with its own LCG, FAISS's side with
numpy; the distribution is the same, the values are not), inner-product
metric, M = 16, ef_construction = 200, 2 threads, then sweep ef_search and
report recall@10 against exact search. Environment: CAIRN_HNSW_M,
CAIRN_HNSW_EFC, CAIRN_HNSW_EF as for `cargo bench --bench hnsw_recall`.
"""
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKGS = ["faiss-cpu==1.15.1", "numpy"]


def ensure_packages():
    try:
        import faiss  # noqa: F401
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *PKGS])


def faiss_side(n, dim, nq, m, efc, efs):
    import faiss
    import numpy as np

    faiss.omp_set_num_threads(2)
    rng = np.random.default_rng(1)
    xb = rng.random((n, dim), dtype=np.float32) - 0.5
    xq = rng.random((nq, dim), dtype=np.float32) - 0.5
    xb /= np.linalg.norm(xb, axis=1, keepdims=True)
    xq /= np.linalg.norm(xq, axis=1, keepdims=True)
    flat = faiss.IndexFlatIP(dim)
    flat.add(xb)
    _, truth = flat.search(xq, 10)
    index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = efc
    t = time.perf_counter()
    index.add(xb)
    build = time.perf_counter() - t
    for ef in efs:
        index.hnsw.efSearch = ef
        # One query at a time, as cairn's bench searches.
        t = time.perf_counter()
        got = np.vstack([index.search(xq[i : i + 1], 10)[1] for i in range(nq)])
        qps = nq / (time.perf_counter() - t)
        recall = np.mean([len(set(truth[i]) & set(got[i])) / 10 for i in range(nq)])
        print(f"faiss n={n} dim={dim} M={m} ef_construction={efc} ef_search={ef}: recall@10 {recall:.4f}, build {build:.1f} s, {qps:.0f} q/s")


def main():
    ensure_packages()
    args = [int(a) for a in sys.argv[1:]]
    n, dim, nq = (args + [100_000, 384, 200][len(args):])[:3]
    ints = lambda var, d: [int(x) for x in os.environ.get(var, d).split(",")]
    m, efc = ints("CAIRN_HNSW_M", "16")[0], ints("CAIRN_HNSW_EFC", "200")[0]
    efs = ints("CAIRN_HNSW_EF", "10,50,100,200,400")
    env = dict(os.environ, CAIRN_HNSW_M=str(m), CAIRN_HNSW_EFC=str(efc), CAIRN_HNSW_EF=",".join(map(str, efs)))
    out = subprocess.run(
        ["cargo", "bench", "--locked", "-q", "-p", "cairn", "--bench", "hnsw_recall", "--", str(n), str(dim), str(nq)],
        cwd=ROOT, check=True, capture_output=True, text=True, env=env,
    ).stdout
    print("cairn " + out.strip().replace("\n", "\ncairn "))
    faiss_side(n, dim, nq, m, efc, efs)


if __name__ == "__main__":
    main()
