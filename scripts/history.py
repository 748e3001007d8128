#!/usr/bin/env python
"""The evaluations a run made while it trained, from its results.json: one table per model.

    python scripts/history.py runs/seqgan                         # every metric
    python scripts/history.py runs/seqgan --metrics bleu2,self_bleu2 --models seqgan
    python scripts/history.py runs/irgan --metrics p@3            # each seed's IRGAN epochs against its BPR start
    python scripts/history.py runs/seqgan --timings               # where the time went, finished or not

The figures in docs/results.md about the course of a run (how far SeqGAN's BLEU rose in its first
updates, where NLL-oracle was lowest, how far IRGAN moved from BPR) are these tables.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

from seqadv.runtime.cli import OneLineParser, guarded


def results_files(run: Path) -> list[Path]:
    """A run's results.json, or every seed's of an IRGAN or train_seeds.py directory."""
    if (run / "results.json").is_file():
        return [run / "results.json"]
    found = sorted(run.glob("seed-*/results.json"))
    if not found:
        raise ValueError(f"{run}: no results.json there (nor in seed-*/): give a finished run's --out")
    return found


def table(name: str, rows: list[dict], metrics: Optional[list[str]], start: Optional[dict] = None) -> list[str]:
    step = next(k for k in ("g_updates", "epoch") if k in rows[0])
    shown = [m for m in rows[0] if m != step and (metrics is None or m in metrics)]
    width = {m: max(12, len(m) + 2) for m in shown}  # a long metric's name keeps a space before it
    lines = [f"{name}", f"{step:>10}" + "".join(f"{m:>{width[m]}}" for m in shown)]
    if start is not None:
        lines.append(f"{'start':>10}" + "".join(f"{start[m]:>{width[m]}.4f}" for m in shown))
    lines += [f"{row[step]:>10}" + "".join(f"{row[m]:>{width[m]}.4f}" for m in shown) for row in rows]
    return lines


def read_results(path: Path) -> dict:
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable results.json ({exc})") from None
    if not isinstance(results, dict) or not isinstance(results.get("history"), dict):
        raise ValueError(f"{path}: no history of evaluations in it (not a results.json a trainer wrote)")
    return results


def unknown(option: str, asked: Optional[list[str]], available: list[str], run: str) -> None:
    """ValueError naming the names asked for with --metrics / --models that no table has."""
    missing = [name for name in asked or [] if name not in available]
    if missing:
        raise ValueError(f"{option} {','.join(missing)}: not in {run}; it has {', '.join(available) or 'none'}")


def history(args: argparse.Namespace) -> list[str]:
    metrics = args.metrics.split(",") if args.metrics else None
    models = args.models.split(",") if args.models else None
    runs = [(path, read_results(path)) for path in results_files(Path(args.run))]
    found = {name: rows for _, results in runs for name, rows in results["history"].items() if rows}
    unknown("--models", models, list(found), args.run)
    unknown("--metrics", metrics,
            list(dict.fromkeys(m for rows in found.values() for m in rows[0] if m not in ("g_updates", "epoch"))),
            args.run)
    out = []
    for path, results in runs:
        label = f"{path.parent.name} ({results.get('recipe', '?')}, seed {results.get('seed', '?')})"
        for model, rows in results["history"].items():
            if rows and (models is None or model in models):
                # IRGAN's epochs start from the BPR model: its row is where they begin
                start = results.get("models", {}).get("bpr") if model == "irgan" else None
                out += table(f"{label}: {model}", rows, metrics, start) + [""]
    return out


def timings(run: Path) -> list[str]:
    """A run's timings: each phase's seconds and, for SeqGAN's adversarial epochs, the mean
    epoch split into rollouts, G updates and D training, and the rollouts' completions
    rolled out and skipped. From results.json, or from checkpoint.pt where the run has not
    finished (stopped, or still going): there, from the epochs its checkpoint holds."""
    if (run / "results.json").is_file():
        source = run / "results.json"
        t = json.loads(source.read_text(encoding="utf-8")).get("timings", {})
        epochs = None
        split = {k[len("adversarial_epoch_"):]: v for k, v in t.items() if k.startswith("adversarial_epoch_")}
    elif (run / "checkpoint.pt").is_file():
        from seqadv.runtime.checkpoint import load_checkpoint

        source = run / "checkpoint.pt"
        checkpoint = load_checkpoint(source)
        t, progress = checkpoint.get("timings", {}), checkpoint.get("progress", {})
        epochs = progress.get("done", 0) if progress.get("phase") == "adversarial" else 0
        split = {k: v / epochs for k, v in checkpoint.get("split", {}).items()} if epochs else {}
    else:
        raise ValueError(f"{run}: neither results.json nor checkpoint.pt there: give a run's --out")
    out = [f"{run} ({source.name})"] + [f"{k:<28}{v:>12.1f}" for k, v in t.items()
                                         if k.endswith("_s") and not k.startswith("adversarial_epoch_")]
    if split.get("rollout_s") is not None:
        epoch = split.get("s") or split["rollout_s"] + split["g_update_s"] + split["d_train_s"]
        over = f"over {epochs} epochs in its checkpoint" if epochs else "over the run"
        out.append(f"one adversarial epoch, mean {over}: {epoch:.2f} s; rollouts {split['rollout_s']:.2f} s, "
                   f"G update {split['g_update_s']:.2f} s, D training {split['d_train_s']:.2f} s")
        if "rollout_rows" in split:
            rolled, skipped = split["rollout_rows"], split.get("rollout_rows_skipped", 0)
            out.append(f"rollouts per adversarial epoch: {rolled:,.0f} completions rolled out, {skipped:,.0f} skipped "
                       f"(their prefix had ended: {skipped / max(rolled + skipped, 1):.0%})")
    return out


def main(argv: Optional[list[str]] = None) -> int:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a run's --out (or a directory of seed-*/ runs)")
    parser.add_argument("--metrics", help="comma-separated metric names (default: all)")
    parser.add_argument("--models", help="comma-separated models (default: all), e.g. seqgan,mle")
    parser.add_argument("--timings", action="store_true",
                        help="the run's timings instead (from checkpoint.pt for a run that has not finished)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    args = parser.parse_args(argv)
    if args.timings and (args.metrics or args.models):
        parser.error("--timings shows the run's timings: not with --metrics or --models")
    lines = (lambda: timings(Path(args.run))) if args.timings else (lambda: history(args))
    return guarded("history.py", lambda: print("\n".join(lines()).rstrip()), argv)


if __name__ == "__main__":
    sys.exit(main())
