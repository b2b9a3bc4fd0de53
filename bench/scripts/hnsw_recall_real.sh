#!/usr/bin/env bash
# HNSW recall@10 against exact search on ~10,000 real embedded chunks of the
# fetched PDF corpus (R manuals, Debian Reference, Debian FAQ).
# Text comes from poppler's pdftotext (installed here if missing) — a bench-only
# stand-in until cairn's own PDF loader lands; chunks are ~80-word windows.
#   bench/scripts/hnsw_recall_real.sh [CHUNKS]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-10000}
command -v pdftotext >/dev/null || { apt-get update -qq && apt-get install -y -qq poppler-utils >/dev/null; }
work=$(mktemp -d)
cache="${CAIRN_CACHE:-$HOME/.cache/cairn}"
for pdf in "$cache"/corpus/*/*.pdf; do pdftotext -q "$pdf" "$work/$(basename "$pdf").txt"; done
python3 - "$work" "$N" <<'PY'
import sys, pathlib, re
work, n = pathlib.Path(sys.argv[1]), int(sys.argv[2])
words = []
for f in sorted(work.glob("*.txt")):
    words += re.sub(r"\s+", " ", f.read_text(errors="ignore")).split(" ")
size = 80
step = max(1, (len(words) - size) // n)
chunks = [" ".join(words[i:i + size]) for i in range(0, len(words) - size, step)][:n]
(work / "chunks.txt").write_text("\n".join(c.replace("\n", " ") for c in chunks) + "\n")
print(f"{len(chunks)} chunks of {size} words from {len(words)} words", file=sys.stderr)
PY
export CAIRN_LOG=warn
cargo run --locked --release -q -p cairn -- embed --file "$work/chunks.txt" --vectors "$work/chunks.cvec" --kind flat
cargo bench --locked -q -p cairn --bench hnsw_recall -- "$work/chunks.cvec" 200
rm -rf "$work"
