"""Quality-against-diversity curves: the axes, a curve's quality at a given
diversity, and the plot (evaluate.py and train_seeds.py draw the same figure).

A sweep has up to two planes: BLEU-4 against Self-BLEU-4 (NLL-oracle against
NLL-test on the oracle corpus), and Caccia et al.'s LM score against reverse-LM
score where the sweep measured them (`seqadv.eval.metrics.lm_score`, `reverse_lm_score`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

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


# In the LM plane the reverse-LM score need not be monotonic in temperature: too cold covers
# little of the data, and too hot can too (the curve folds back past some temperature near 1).
# Cooling trades coverage for quality on the branch T <= 1. A hotter point belongs to the
# trade-off while it covers more than T = 1 or scores better; from the first hotter point that
# is worse on both axes than the curve's own T = 1 (the fold: poems' and coco's MLE curves at
# T = 1.2), a crossing would compare a point with one that T = 1 dominates, so matched-diversity
# comparisons (crossings) stop there. Where the curve does not fold (coco-texygen's MLE-best:
# T = 1.2 covers more than T = 1), the hot points stay. Dominance, which needs no curve, and
# the plot use every point.
LM_BRANCH_MAX_TEMPERATURE = 1.0


def comparison_branch(curve: list[dict], x_key: str, y_key: str) -> list[int]:
    """The indices of the points a matched-diversity comparison uses: those with both
    metrics and, in the LM plane, the temperatures up to `LM_BRANCH_MAX_TEMPERATURE` and the
    hotter ones before the fold (the first that is worse on both axes than T = 1)."""
    kept = _points(curve, x_key, y_key)
    if x_key != LM_AXES[0]:
        return kept
    one = next((curve[i] for i in kept if curve[i]["temperature"] == LM_BRANCH_MAX_TEMPERATURE), None)
    branch = [i for i in kept if curve[i]["temperature"] <= LM_BRANCH_MAX_TEMPERATURE]
    if one is None:  # no point at T = 1 to tell a fold by: the cooling branch alone
        return branch

    def worse(key: str, a: float, b: float) -> bool:  # a no better than b
        return a >= b if lower_is_better(key) else a <= b

    for i in sorted((i for i in kept if curve[i]["temperature"] > LM_BRANCH_MAX_TEMPERATURE),
                    key=lambda i: curve[i]["temperature"]):
        if worse(x_key, curve[i][x_key], one[x_key]) and worse(y_key, curve[i][y_key], one[y_key]):
            break
        branch.append(i)
    return branch


@dataclass(frozen=True)
class Crossing:
    """Where a curve, followed in temperature order, passes a given diversity x: the temperature
    and the quality there, linear between the two neighbouring temperatures, and the segment's
    slope d quality / d diversity (infinite where both ends have the diversity x: the quality
    there is anything between theirs), which turns noise in the diversity into noise in the
    quality."""
    temperature: float
    quality: float
    slope: float


def crossings(curve: list[dict], x_key: str, y_key: str, x: float) -> list[Crossing]:
    """Every place where the curve's diversity is x, along the sweep: each pair of neighbouring
    temperatures (on `comparison_branch`) whose diversities bracket x gives one, interpolated linearly
    between them; a sweep point at exactly x is counted once. Empty: x lies outside the curve.

    The curve is followed in temperature order, not sorted by diversity: a curve that is not
    monotonic (noise, or a fold) passes x more than once, and each passage is a different
    answer to "the curve's quality at diversity x". Sorting by diversity would join points
    that are not neighbours on the sweep and return one made-up value.

    Shape: curve is a list of {"temperature": float, x_key: float, y_key: float, ...}.
    """
    points = sorted((curve[i]["temperature"], curve[i][x_key], curve[i][y_key])
                    for i in comparison_branch(curve, x_key, y_key))
    found: list[Crossing] = []

    def add(c: Crossing) -> None:
        if not found or found[-1].temperature != c.temperature:
            found.append(c)
        elif math.isinf(c.slope):  # a flat segment ending at a point already found: its slope says more
            found[-1] = c

    if len(points) == 1 and points[0][1] == x:
        add(Crossing(points[0][0], points[0][2], 0.0))
    for (t0, x0, y0), (t1, x1, y1) in zip(points, points[1:]):
        if not min(x0, x1) <= x <= max(x0, x1):
            continue
        if x0 == x1:  # both ends at x: each end is a crossing, the segment says nothing between them
            add(Crossing(t0, y0, math.inf))
            add(Crossing(t1, y1, math.inf))
            continue
        slope = (y1 - y0) / (x1 - x0)
        frac = (x - x0) / (x1 - x0)
        add(Crossing(t0 + frac * (t1 - t0), y0 + frac * (y1 - y0), slope))
    return found


def advantages_at(point: dict, reference: list[dict], x_key: str, y_key: str) -> list[tuple[float, Crossing]]:
    """The point's quality against the reference curve's at each crossing of the point's diversity
    (`crossings`): (advantage, crossing), the advantage signed so that positive means the point is
    better. Empty where its diversity lies outside the reference; more than one: the reference
    passes that diversity more than once and the comparison is ambiguous."""
    out = []
    for c in crossings(reference, x_key, y_key, point[x_key]):
        out.append(((c.quality - point[y_key]) if lower_is_better(y_key) else (point[y_key] - c.quality), c))
    return out


def advantage_noise(crossing: Crossing, quality_noise: float, diversity_noise: float) -> float:
    """The standard deviation that measurement noise alone gives an advantage at one crossing:
    the point's and the reference's quality each carry `quality_noise`, and each one's diversity
    carries `diversity_noise`, which moves the reference's quality along the crossed segment by
    its slope. Shape: scalars -> scalar (infinite on a segment flat in diversity)."""
    if math.isinf(crossing.slope):
        return math.inf
    return math.sqrt(2 * quality_noise ** 2 + 2 * (crossing.slope * diversity_noise) ** 2)


def curve_advantages(curve: list[dict], reference: list[dict], x_key: str, y_key: str) -> dict[float, list[float]]:
    """{temperature: [advantage at each crossing]} for each point of a curve (on its `comparison_branch`)
    whose diversity lies inside the reference's: where along the sweep one curve is above the
    other."""
    table = {}
    for i in comparison_branch(curve, x_key, y_key):
        found = advantages_at(curve[i], reference, x_key, y_key)
        if found:
            table[curve[i]["temperature"]] = [a for a, _ in found]
    return table


def dominating_temperatures(point: dict, reference: list[dict], x_key: str, y_key: str) -> list[float]:
    """The temperatures of every measured point of the reference (those with both metrics, past
    the LM plane's fold too: dominance needs no curve) that is at least as good as the point on
    both axes and better on one: whether the reference beats the point outright."""
    def better(key: str, a: float, b: float) -> bool:  # a strictly better than b
        return a < b if lower_is_better(key) else a > b

    found = []
    for i in _points(reference, x_key, y_key):
        r = reference[i]
        if not (better(x_key, point[x_key], r[x_key]) or better(y_key, point[y_key], r[y_key])) and \
                (r[x_key], r[y_key]) != (point[x_key], point[y_key]):
            found.append(r["temperature"])
    return found


def matched_diversity(curves: dict, x_key: str, y_key: str, prefix: str = "", sweep: str = "sweep") -> list[str]:
    """One line per pair of models: the first at temperature 1 against the second's
    curve at the same diversity, and which is better there (by `lower_is_better(y_key)`);
    where the second's curve passes that diversity more than once, each crossing's quality
    and "ambiguous" unless every crossing gives the same answer.
    A model without both metrics at temperature 1 gets no line."""
    lines = []
    for name, curve in curves.items():
        at_one = at_temperature_one(curve, x_key, y_key)
        for other, other_curve in curves.items():
            if other == name or at_one is None:
                continue
            found = advantages_at(at_one, other_curve, x_key, y_key)
            if not found:
                beaten = dominating_temperatures(at_one, other_curve, x_key, y_key)
                lines.append(f"{name} at T=1 ({x_key} {at_one[x_key]:.4f}) lies outside {other}'s {sweep}"
                             + (f"; its point(s) at T={', '.join(f'{t:g}' for t in beaten)} are better on both axes"
                                if beaten else ""))
                continue
            head = f"{prefix}at {name}'s {x_key} at T=1 ({at_one[x_key]:.4f}): {name} {y_key} {at_one[y_key]:.4f}, "
            if len(found) == 1:
                q = found[0][1].quality
                lines.append(head + f"{other}'s curve {q:.4f} -> {name if found[0][0] > 0 else other} is better "
                             "at matched diversity")
                continue
            where = ", ".join(f"{c.quality:.4f} (T~{c.temperature:.2f})" for _, c in found)
            signs = {a > 0 for a, _ in found}
            verdict = (f"ambiguous: {name} is better at {sum(a > 0 for a, _ in found)} of {len(found)}" if len(signs) > 1
                       else f"{name if signs == {True} else other} is better at every one")
            lines.append(head + f"{other}'s curve passes it {len(found)} times: {where} -> {verdict}")
    return lines


def plot_sweep(curves: dict, x_key: str, y_key: str, x_label: str, y_label: str, title: str, path: Path,
               errors: Optional[dict] = None, colors: Optional[dict] = None) -> None:
    """One line per model through its temperatures, a star at temperature 1. `errors`,
    shaped like `curves`, adds error bars (e.g. the std over seeds); `colors` fixes a model's
    colour by name (the others take the colour cycle's next). When the curves have LM and
    reverse-LM scores, a second panel beside the first draws them (the points that have
    both). More curves than `_LEGEND_INSIDE` get one legend, outside the last panel, so that
    it hides no point. Written atomically."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    planes = [(x_key, y_key, x_label, y_label)]
    if (x_key, y_key) != LM_AXES[:2] and has_lm_scores(curves):
        planes.append(LM_AXES)
    outside = len(curves) > _LEGEND_INSIDE
    fig, axes = plt.subplots(1, len(planes), figsize=(6.4 * len(planes) + 2.0 * outside, 4.8), squeeze=False)
    for ax, (x, y, xl, yl) in zip(axes[0], planes):
        _draw_plane(ax, curves, x, y, errors, colors or {})
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
        if not outside:
            ax.legend()
    if outside:  # every panel's models, once each (a model may have points in one panel only)
        handles = {}
        for ax in axes[0]:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(label, handle)
        axes[0][-1].legend(handles.values(), handles.keys(), fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if len(planes) == 1:
        axes[0][0].set_title(title, fontsize=10)
    else:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def save_figure(fig, path: Path) -> None:
    """Write a matplotlib figure as a PNG, atomically (a temporary file, then a rename), and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


_LEGEND_INSIDE = 6  # more curves than this and a legend inside a panel covers points


def _draw_plane(ax, curves: dict, x_key: str, y_key: str, errors: Optional[dict], colors: dict) -> None:
    for name, full in curves.items():
        kept = _points(full, x_key, y_key)
        if not kept:
            continue
        curve = [full[i] for i in kept]
        xs, ys = [m[x_key] for m in curve], [m[y_key] for m in curve]
        style = {"color": colors[name]} if name in colors else {}
        if errors is not None:
            err = [errors[name][i] for i in kept]
            line = ax.errorbar(xs, ys, xerr=[m[x_key] for m in err], yerr=[m[y_key] for m in err],
                               marker="o", markersize=3, capsize=2, label=name, **style).lines[0]
        else:
            (line,) = ax.plot(xs, ys, marker="o", markersize=3, label=name, **style)
        for m in curve:
            if m["temperature"] == 1.0:
                ax.plot(m[x_key], m[y_key], marker="*", markersize=14, color=line.get_color())
        if len(curve) == 1:
            continue  # a lone point: its star, and the title, say it is at T = 1
        for m in (curve[0], curve[-1]):
            ax.annotate(f"T={m['temperature']:g}", (m[x_key], m[y_key]), fontsize=7,
                        textcoords="offset points", xytext=(4, 4))
