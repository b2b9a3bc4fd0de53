#!/usr/bin/env python3
"""Scores grounded answers on the held-out split, without and with an adapter.

For each example of test.jsonl, `cairn generate --chat` (greedy, the same
system line and sources as training) answers; reported per run:
  cites     share of answers that cite a source ([n] with n in 1..3)
  correct   share of answerable questions whose answer cites the gold source
            (the passage that contains the FAQ's answer) and no other
  idk       share of unanswerable questions answered "I don't know"
The perplexity of the reference answers comes from `cairn train lora --val`.

    python3 bench/scripts/grounded/eval_grounded.py path/to/cairn [adapter_dir]
"""
import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(cairn, adapter, row):
    system, user = row["messages"][0]["content"], row["messages"][1]["content"]
    cmd = [cairn, "generate", "--chat", "--system", system, "--max-new-tokens", "80",
           "--repetition-penalty", "1.1", user]
    if adapter:
        cmd[2:2] = ["--adapter", adapter]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def main():
    cairn = sys.argv[1]
    adapters = [None] + sys.argv[2:]
    rows = [json.loads(l) for l in (HERE.parents[1] / "data/grounded/test.jsonl").read_text().splitlines()]
    report = {}
    for a in adapters:
        cites = correct = answerable = idk = unanswerable = 0
        outputs = []
        for r in rows:
            out = run(cairn, a, r)
            cited = {int(n) for n in re.findall(r"\[(\d)\]", out) if 1 <= int(n) <= 3}
            cites += bool(cited)
            if r["gold_source"] is None:
                unanswerable += 1
                idk += "i don't know" in out.lower()
            else:
                answerable += 1
                correct += cited == {r["gold_source"]}
            outputs.append({"source": r["source"], "gold": r["gold_source"], "answer": out})
        name = a or "base"
        report[name] = {"examples": len(rows), "cites": cites / len(rows),
                        "correct_citation": correct / max(answerable, 1),
                        "idk_when_unanswerable": idk / max(unanswerable, 1),
                        "outputs": outputs}
        print(f"{name}: cites {cites}/{len(rows)}, correct citation {correct}/{answerable}, "
              f"I don't know {idk}/{unanswerable}", file=sys.stderr)
    (HERE.parents[1] / "reports/grounded/eval_report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
