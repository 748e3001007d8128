"""Quality-against-diversity curves: the axes, a curve's quality at a given
diversity, and the plot (evaluate.py and train_seeds.py draw the same figure).

A sweep has up to two planes: BLEU-4 against Self-BLEU-4 (NLL-oracle against
NLL-test on the oracle corpus), and Caccia et al.'s LM score against reverse-LM
score where the sweep measured them (`seqadv.metrics.lm_score`, `reverse_lm_score`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

# metrics where a smaller value is the better one (matched by prefix)
LOWER_IS_BETTER = ("nll", "self_bleu", "lm_score", "reverse_lm_score")

# Caccia et al.'s second plane: diversity (coverage of the test split) across, quality up
LM_AXES = ("reverse_lm_score", "lm_score", "reverse-LM score (lower: covers more of the data)",
           "LM score (lower: better samples)")


def lower_is_better(metric: str) -> bool:
    return metric.startswith(LOWER_IS_BETTER)


def sweep_axes(oracle: bool) -> tuple[str, str, str, str]:
    """(diversity metric, quality metric, their axis labels): Self-BLEU-4 and BLEU-4
    for text; NLL-test and NLL-oracle for the oracle corpus."""
    if oracle:
        return "nll_test", "nll_oracle", "NLL-test (lower: covers more of the data)", "NLL-oracle (lower: better samples)"
    return "self_bleu4", "bleu4", "Self-BLEU-4 (lower: more diverse)", "BLEU-4 (higher: better samples)"


def has_lm_scores(curves: dict) -> bool:
    """Whether some point of some curve has both the LM and the reverse-LM score."""
    return any(_points(curve, *LM_AXES[:2]) for curve in curves.values())


def sweep_planes(curves: dict, oracle: bool) -> list[tuple[str, str, str, str]]:
    """The planes a sweep has, each as `sweep_axes` gives one: always that one, and
    the LM plane when the sweep measured its scores."""
    return [sweep_axes(oracle)] + ([LM_AXES] if has_lm_scores(curves) else [])


def at_temperature_one(curve: list[dict], x_key: str, y_key: str) -> Optional[dict]:
    """The curve's point at temperature 1, if it has both metrics there."""
    return next((m for m in curve if m["temperature"] == 1.0 and x_key in m and y_key in m), None)


def _points(curve: list[dict], x_key: str, y_key: str) -> list[int]:
    """The indices of the points that have both metrics (the reverse-LM score is measured
    at a few temperatures of the sweep only)."""
    return [i for i, m in enumerate(curve) if x_key in m and y_key in m]


# In the LM plane the reverse-LM score is not monotonic in temperature: too cold covers
# little of the data, and so does too hot (the curve folds back near T = 1). Cooling trades
# coverage for quality on the branch T <= 1 only, so matched-diversity comparisons there use
# that branch (the plot shows every point).
LM_BRANCH_MAX_TEMPERATURE = 1.0


def _branch(curve: list[dict], x_key: str, y_key: str) -> list[int]:
    """The indices of the points a matched-diversity comparison uses: those with both
    metrics and, in the LM plane, temperatures up to `LM_BRANCH_MAX_TEMPERATURE`."""
    kept = _points(curve, x_key, y_key)
    if x_key == LM_AXES[0]:
        kept = [i for i in kept if curve[i]["temperature"] <= LM_BRANCH_MAX_TEMPERATURE]
    return kept


def quality_at(curve: list[dict], x_key: str, y_key: str, x: float) -> Optional[float]:
    """A curve's quality where its diversity is x (linear between sweep points), or None
    outside it. Only the points of `_branch` count.

    Shape: curve is a list of {x_key: float, y_key: float, ...}, one per temperature.
    """
    points = sorted((curve[i][x_key], curve[i][y_key]) for i in _branch(curve, x_key, y_key))
    if not points:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if not xs[0] <= x <= xs[-1]:
        return None
    return float(np.interp(x, xs, ys))


def advantage_at(point: dict, reference: list[dict], x_key: str, y_key: str) -> Optional[float]:
    """A point's quality minus the reference curve's at the point's diversity, signed so that
    positive means the point is better; None where its diversity lies outside the reference."""
    q = quality_at(reference, x_key, y_key, point[x_key])
    if q is None:
        return None
    return (q - point[y_key]) if lower_is_better(y_key) else (point[y_key] - q)


def curve_advantages(curve: list[dict], reference: list[dict], x_key: str, y_key: str) -> dict[float, float]:
    """{temperature: advantage_at} for each point of a curve (on its `_branch`) whose diversity
    lies inside the reference's: where along the sweep one curve is above the other."""
    table = {}
    for i in _branch(curve, x_key, y_key):
        value = advantage_at(curve[i], reference, x_key, y_key)
        if value is not None:
            table[curve[i]["temperature"]] = value
    return table


def dominating_temperatures(point: dict, reference: list[dict], x_key: str, y_key: str) -> list[float]:
    """The temperatures of the reference's points (on its `_branch`) that are at least as good as
    the point on both axes and better on one: where a point lies outside the reference's sweep,
    whether the reference still beats it outright."""
    def better(key: str, a: float, b: float) -> bool:  # a strictly better than b
        return a < b if lower_is_better(key) else a > b

    found = []
    for i in _branch(reference, x_key, y_key):
        r = reference[i]
        if not (better(x_key, point[x_key], r[x_key]) or better(y_key, point[y_key], r[y_key])) and \
                (r[x_key], r[y_key]) != (point[x_key], point[y_key]):
            found.append(r["temperature"])
    return found


def matched_diversity(curves: dict, x_key: str, y_key: str, prefix: str = "", sweep: str = "sweep") -> list[str]:
    """One line per pair of models: the first at temperature 1 against the second's
    curve at the same diversity, and which is better there (by `lower_is_better(y_key)`).
    A model without both metrics at temperature 1 gets no line."""
    lines = []
    for name, curve in curves.items():
        at_one = at_temperature_one(curve, x_key, y_key)
        for other, other_curve in curves.items():
            if other == name or at_one is None:
                continue
            q = quality_at(other_curve, x_key, y_key, at_one[x_key])
            if q is None:
                lines.append(f"{name} at T=1 ({x_key} {at_one[x_key]:.4f}) lies outside {other}'s {sweep}")
                continue
            ahead = at_one[y_key] < q if lower_is_better(y_key) else at_one[y_key] > q
            lines.append(f"{prefix}at {name}'s {x_key} at T=1 ({at_one[x_key]:.4f}): {name} {y_key} {at_one[y_key]:.4f}, "
                         f"{other}'s curve {q:.4f} -> {name if ahead else other} is better at matched diversity")
    return lines


def plot_sweep(curves: dict, x_key: str, y_key: str, x_label: str, y_label: str, title: str, path: Path,
               errors: Optional[dict] = None) -> None:
    """One line per model through its temperatures, a star at temperature 1. `errors`,
    shaped like `curves`, adds error bars (e.g. the std over seeds). When the curves have
    LM and reverse-LM scores, a second panel beside the first draws them (the points that
    have both). Written atomically."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    planes = [(x_key, y_key, x_label, y_label)]
    if (x_key, y_key) != LM_AXES[:2] and has_lm_scores(curves):
        planes.append(LM_AXES)
    fig, axes = plt.subplots(1, len(planes), figsize=(6.4 * len(planes), 4.8), squeeze=False)
    for ax, (x, y, xl, yl) in zip(axes[0], planes):
        _draw_plane(ax, curves, x, y, errors)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
        ax.legend()
    if len(planes) == 1:
        axes[0][0].set_title(title, fontsize=10)
    else:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def _draw_plane(ax, curves: dict, x_key: str, y_key: str, errors: Optional[dict]) -> None:
    for name, full in curves.items():
        kept = _points(full, x_key, y_key)
        if not kept:
            continue
        curve = [full[i] for i in kept]
        xs, ys = [m[x_key] for m in curve], [m[y_key] for m in curve]
        if errors is not None:
            err = [errors[name][i] for i in kept]
            line = ax.errorbar(xs, ys, xerr=[m[x_key] for m in err], yerr=[m[y_key] for m in err],
                               marker="o", markersize=3, capsize=2, label=name).lines[0]
        else:
            (line,) = ax.plot(xs, ys, marker="o", markersize=3, label=name)
        for m in curve:
            if m["temperature"] == 1.0:
                ax.plot(m[x_key], m[y_key], marker="*", markersize=14, color=line.get_color())
        for m in (curve[0], curve[-1]):
            ax.annotate(f"T={m['temperature']:g}", (m[x_key], m[y_key]), fontsize=7,
                        textcoords="offset points", xytext=(4, 4))
