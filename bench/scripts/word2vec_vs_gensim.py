#!/usr/bin/env python3
"""Word2Vec: cairn (`cairn train word2vec`) against gensim on the same
tokenised corpus, same settings, same run.

    python3 bench/scripts/word2vec_vs_gensim.py path/to/cairn [--cbow] [EPOCHS]

Corpus: the text cairn's PDF loader extracts from every corpus PDF (the file
bench/scripts/tokenizer_train_vs_hf.py writes, <cache>/bench/tokenizer_corpus.txt,
made here if missing), lowercased and split into runs of letters
(`[a-z]+`), one line per extracted segment; written to
<cache>/bench/word2vec_corpus.txt. Settings: skip-gram (or CBOW), dim 100,
window 5, min_count 5, sample 1e-3, negative 5, alpha 0.025, 2 threads on
both sides.

Reported:
- words/s (corpus words × epochs / training seconds) and the ratio;
- neighbour overlap: for the vocabulary words ranked 100–299 by frequency,
  the mean share of cairn's 10 nearest words also among gensim's 10;
- similarity correlation: Spearman's ρ between cairn's and gensim's cosine
  over the pairs of bench/data/word2vec_pairs.tsv found in both vocabularies;
- the same two numbers for gensim against gensim with another seed — the
  agreement two runs of one implementation reach, the yardstick for the first.
"""
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKGS = ["gensim==4.4.0", "scipy"]


def ensure_packages():
    try:
        import gensim  # noqa: F401
        import scipy  # noqa: F401
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *PKGS])


def corpus(cairn, cache):
    out = cache / "bench" / "word2vec_corpus.txt"
    if out.exists():
        return out
    raw = cache / "bench" / "tokenizer_corpus.txt"
    if not raw.exists():
        subprocess.run([sys.executable, str(ROOT / "bench/scripts/tokenizer_train_vs_hf.py"), cairn, "0"], check=False)
        from tokenizer_train_vs_hf import corpus_file  # noqa: E402
        corpus_file(cairn, cache)
    lines = []
    for line in raw.read_text().splitlines():
        words = re.findall(r"[a-z]+", line.lower())
        if len(words) > 1:
            lines.append(" ".join(words))
    out.write_text("\n".join(lines) + "\n")
    return out


def overlap(a, b, words, k=10):
    shared = [w for w in words if w in a.key_to_index and w in b.key_to_index]
    s = 0.0
    for w in shared:
        na = {x for x, _ in a.most_similar(w, topn=k)}
        nb = {x for x, _ in b.most_similar(w, topn=k)}
        s += len(na & nb) / k
    return s / max(1, len(shared))


def pair_corr(a, b, pairs):
    from scipy.stats import spearmanr
    ok = [(x, y) for x, y in pairs if all(w in m.key_to_index for w in (x, y) for m in (a, b))]
    rho = spearmanr([a.similarity(x, y) for x, y in ok], [b.similarity(x, y) for x, y in ok]).statistic
    return rho, len(ok)


def main():
    ensure_packages()
    from gensim.models import KeyedVectors, Word2Vec
    from gensim.models.word2vec import LineSentence

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    cbow = "--cbow" in sys.argv
    cairn = args[0] if args else "cairn"
    epochs = int(args[1]) if len(args) > 1 else 5
    cache = Path(os.environ.get("CAIRN_CACHE", Path.home() / ".cache" / "cairn"))
    sys.path.insert(0, str(ROOT / "bench/scripts"))
    text = corpus(cairn, cache)
    n_words = sum(len(l.split()) for l in text.read_text().splitlines())
    pairs = [tuple(l.split("\t")) for l in (ROOT / "bench/data/word2vec_pairs.tsv").read_text().splitlines()
             if l and not l.startswith("#")]
    settings = dict(vector_size=100, window=5, min_count=5, sample=1e-3, negative=5, alpha=0.025, epochs=epochs,
                    workers=2, sg=0 if cbow else 1, hs=0)
    print(f"# {text} ({n_words} words), {'CBOW' if cbow else 'skip-gram'}, {settings}")
    gensim_models = []
    for seed in (1, 2):
        t = time.perf_counter()
        m = Word2Vec(LineSentence(str(text)), seed=seed, **settings)
        secs = time.perf_counter() - t
        gensim_models.append((m.wv, secs))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "vectors.txt"
        cmd = [cairn, "train", "word2vec", str(text), "--threads", "2", "--epochs", str(epochs), "--output", str(out)]
        if cbow:
            cmd.append("--cbow")
        t = time.perf_counter()
        log = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        wall = time.perf_counter() - t
        mine = KeyedVectors.load_word2vec_format(str(out), binary=False)
    train_s = float(re.search(r"in ([\d.]+) s", log).group(1))
    g1, g1_s = gensim_models[0]
    g2, _ = gensim_models[1]
    rank = [w for w in g1.index_to_key[100:300]]
    rho_c, n_c = pair_corr(mine, g1, pairs)
    rho_g, n_g = pair_corr(g2, g1, pairs)
    print(log.strip())
    print(f"vocabulary: cairn {len(mine)}, gensim {len(g1)}, shared {len(set(mine.key_to_index) & set(g1.key_to_index))}")
    print("| compared with gensim (seed 1) | neighbour overlap @10 (words ranked 100–299) | Spearman ρ of pair cosines | pairs |")
    print("|---|---|---|---|")
    print(f"| cairn | {overlap(mine, g1, rank):.3f} | {rho_c:.3f} | {n_c} |")
    print(f"| gensim, seed 2 | {overlap(g2, g1, rank):.3f} | {rho_g:.3f} | {n_g} |")
    ws_c = n_words * epochs / train_s
    ws_g = n_words * epochs / g1_s
    print(f"words/s: cairn {ws_c:.0f} (training {train_s:.1f} s; {wall:.1f} s with loading and writing), "
          f"gensim {ws_g:.0f} ({g1_s:.1f} s) → {ws_c / ws_g:.2f}× gensim")


if __name__ == "__main__":
    main()
