"""Quality-against-diversity curves: the axes, a curve's quality at a given
diversity, and the plot (evaluate.py and train_seeds.py draw the same figure)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np


def sweep_axes(oracle: bool) -> tuple[str, str, str, str]:
    """(diversity metric, quality metric, their axis labels): Self-BLEU-4 and BLEU-4
    for text; NLL-test and NLL-oracle for the oracle corpus."""
    if oracle:
        return "nll_test", "nll_oracle", "NLL-test (lower: covers more of the data)", "NLL-oracle (lower: better samples)"
    return "self_bleu4", "bleu4", "Self-BLEU-4 (lower: more diverse)", "BLEU-4 (higher: better samples)"


def quality_at(curve: list[dict], x_key: str, y_key: str, x: float) -> Optional[float]:
    """A curve's quality where its diversity is x (linear between sweep points), or None outside it.

    Shape: curve is a list of {x_key: float, y_key: float, ...}, one per temperature.
    """
    points = sorted((m[x_key], m[y_key]) for m in curve)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if not xs[0] <= x <= xs[-1]:
        return None
    return float(np.interp(x, xs, ys))


def matched_diversity(curves: dict, x_key: str, y_key: str, prefix: str = "", sweep: str = "sweep") -> list[str]:
    """One line per pair of models: the first at temperature 1 against the second's
    curve at the same diversity, and which is better there."""
    lower_is_better = y_key.startswith("nll")
    lines = []
    for name, curve in curves.items():
        at_one = next((m for m in curve if m["temperature"] == 1.0), None)
        for other, other_curve in curves.items():
            if other == name or at_one is None:
                continue
            q = quality_at(other_curve, x_key, y_key, at_one[x_key])
            if q is None:
                lines.append(f"{name} at T=1 ({x_key} {at_one[x_key]:.4f}) lies outside {other}'s {sweep}")
                continue
            ahead = at_one[y_key] < q if lower_is_better else at_one[y_key] > q
            lines.append(f"{prefix}at {name}'s {x_key} at T=1 ({at_one[x_key]:.4f}): {name} {y_key} {at_one[y_key]:.4f}, "
                         f"{other}'s curve {q:.4f} -> {name if ahead else other} is better at matched diversity")
    return lines


def plot_sweep(curves: dict, x_key: str, y_key: str, x_label: str, y_label: str, title: str, path: Path,
               errors: Optional[dict] = None) -> None:
    """One line per model through its temperatures, a star at temperature 1. `errors`,
    shaped like `curves`, adds error bars (e.g. the std over seeds). Written atomically."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for name, curve in curves.items():
        xs, ys = [m[x_key] for m in curve], [m[y_key] for m in curve]
        if errors is not None:
            line = ax.errorbar(xs, ys, xerr=[m[x_key] for m in errors[name]], yerr=[m[y_key] for m in errors[name]],
                               marker="o", markersize=3, capsize=2, label=name).lines[0]
        else:
            (line,) = ax.plot(xs, ys, marker="o", markersize=3, label=name)
        for m in curve:
            if m["temperature"] == 1.0:
                ax.plot(m[x_key], m[y_key], marker="*", markersize=14, color=line.get_color())
        for m in (curve[0], curve[-1]):
            ax.annotate(f"T={m['temperature']:g}", (m[x_key], m[y_key]), fontsize=7,
                        textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
