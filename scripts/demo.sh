#!/usr/bin/env bash
# cairn's main job on the bundled defaults: installs what the demo needs (not
# the test-only tools), builds cairn, fetches the pinned models and the two
# FAQs (R FAQ, Debian FAQ; sha256-verified), indexes them into a demo index,
# answers questions with citations (file and page), once more by quoting the
# sources, refuses one the documents do not answer, and says how to open the
# in-browser demo.
# Usage: scripts/demo.sh   (CAIRN_CACHE / CAIRN_BUILD_CACHE move the caches)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
scripts/setup.sh demo
export CARGO_TARGET_DIR="${CAIRN_BUILD_CACHE:-$HOME/.cache/cairn}/build/native"
cache="${CAIRN_CACHE:-$HOME/.cache/cairn}"
echo "[demo] building cairn (release; the first build takes a while)" >&2
cargo build --locked --release -q -p cairn
cairn="$CARGO_TARGET_DIR/release/cairn"
run() { printf '\n$ cairn %s\n' "$*"; "$cairn" "$@"; }
index="$cache/index/demo.cidx"

run fetch --only smollm2,minilm,r-manuals,debian-faq
run index "$cache/corpus/r-manuals/R-FAQ.pdf" --collection r-faq --index "$index"
run index "$cache/corpus/debian/debian-faq.en.pdf" --collection debian-faq --index "$index"
for q in \
  "What is R?" \
  "What is Debian GNU/Linux?" ; do
  run ask --index "$index" "$q"
done
echo
echo "Quoted instead of generated: the sources' own sentences, verbatim, with their numbers (no decoder):"
run ask --index "$index" --answer quote "How can R be installed?"
echo
echo "A question the documents do not answer is refused (no passage is close enough):"
run ask --index "$index" "What is the boiling point of mercury on Venus?"

cat <<MSG

Done in $(( $(date +%s) - start )) s. Next:
  - your own documents:   $cairn index DIR --collection NAME   then   $cairn ask "..."
  - every command:        $cairn --help   (reference: docs/CLI.md)
  - the in-browser demo:  scripts/serve-demo.sh, then open http://127.0.0.1:8080/
MSG
