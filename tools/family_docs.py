#!/usr/bin/env python
"""Put the family benchmark's printout into the docs: runs `python scripts/compare_recipes.py
--corpus coco-texygen --report` over the committed JSON and writes what it printed between
the `<!-- family-report -->` markers of docs/results.md and its verdict table between the
`<!-- family-verdicts -->` markers of README.md. Every number there is the report's.

    python tools/family_docs.py
"""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def replace_between(path: Path, start: str, end: str, block: str) -> None:
    text = path.read_text()
    i, j = text.index(start) + len(start), text.index(end)
    path.write_text(text[:i] + "\n" + block + text[j:])


def main() -> int:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "compare_recipes.py"), "--corpus", "coco-texygen",
                           "--report"], capture_output=True, text=True, env=env, cwd=REPO)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        return done.returncode
    lines = [line for line in done.stdout.splitlines() if not line.startswith("wrote ")]
    block = ("`python scripts/compare_recipes.py --corpus coco-texygen --report` printed (it also wrote\n"
             "`results/compare/coco-texygen/summary.json` and the four figures below):\n\n```\n" + "\n".join(lines)
             + "\n```\n\n"
             "![the family at T = 1 against MLE's temperature curve, both planes](../results/compare/coco-texygen.png)"
             "\n\n![ours and Texygen's published points, counted as Texygen's table counted]"
             "(../results/compare/coco-texygen-texygen-counts.png)\n"
             "\nEach verdict's evidence, a panel per GAN with the three MLE curves it is measured against "
             "(each seed's point at T = 1 a cross; the panel's title its verdict in short):\n\n"
             "![each GAN against its three MLE curves, the BLEU plane](../results/compare/coco-texygen-bleu-against-curves.png)"
             "\n\n![each GAN against its three MLE curves, the LM plane](../results/compare/coco-texygen-lm-against-curves.png)\n")
    replace_between(REPO / "docs" / "results.md", "<!-- family-report -->", "<!-- /family-report -->", block)
    table = [line for line in done.stdout.split("\nthe verdicts (markdown")[1].splitlines()[1:]
             if line.startswith("|")]
    replace_between(REPO / "README.md", "<!-- family-verdicts -->", "<!-- /family-verdicts -->", "\n".join(table) + "\n")
    print(done.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
