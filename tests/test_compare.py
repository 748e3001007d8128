"""compare_recipes.py's report: the per-seed JSON files it writes, aggregated over seeds
(`seqadv.eval.compare`, run through the script and from Python)."""
import json
import subprocess
import sys
from pathlib import Path

import torch

from seqadv.core.registry import recipe
from seqadv.eval.compare import VARIANTS, beats_beyond_noise, report, verdict

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_recipes.py"


def point(temperature, bleu4, self_bleu4, lm=None, reverse=None):
    p = {"temperature": temperature, "bleu4": bleu4, "self_bleu4": self_bleu4}
    if lm is not None:
        p.update(lm_score=lm, reverse_lm_score=reverse)
    return p


def test_the_report_averages_the_seeds_and_says_who_wins_at_matched_diversity(tmp_path):
    results = tmp_path / "results"
    (results / "poems").mkdir(parents=True)
    for seed, shift in [(88, 0.0), (89, 0.02)]:
        sweep = {  # MLE's curve lies above the GAN's: at the GAN's diversity MLE has the higher BLEU-4
            "mle": [point(0.8, 0.30 + shift, 0.30, 4.0, 6.0), point(1.0, 0.20 + shift, 0.10, 4.5, 5.5),
                    point(1.2, 0.10 + shift, 0.05, 5.0, 5.2)],
            "gan": [point(0.8, 0.22, 0.32, 4.2, 6.5), point(1.0, 0.15, 0.20, 4.6, 6.0),
                    point(1.2, 0.08, 0.09, 5.1, 5.8)],
        }
        (results / "poems" / f"seed-{seed}.json").write_text(json.dumps({"seed": seed, "sweep": sweep}))
    done = subprocess.run([sys.executable, str(SCRIPT), "--corpus", "poems", "--report", "--results", str(results)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads((results / "poems" / "summary.json").read_text())
    assert summary["seeds"] == [88, 89]
    at_one = summary["sweep"]["mle"][1]
    assert abs(at_one["bleu4"]["mean"] - 0.21) < 1e-9 and abs(at_one["bleu4"]["std"] - 0.0141421356) < 1e-6
    # the GAN at T=1 (Self-BLEU-4 0.20) against MLE's mean curve there (between 0.8 and 1.0): MLE wins
    assert "gan's self_bleu4 at T=1 (0.2000): gan bleu4 0.1500, mle's curve 0.2600 -> mle is better" in done.stdout
    # the compact table: each seed's GAN at T=1 minus the same seed's MLE curve there (seed 88: 0.15 - 0.25,
    # seed 89: 0.15 - 0.27), negative: MLE is better; std over the seeds
    advantage = summary["advantage_at_matched_diversity"]["bleu4"]["gan"]["mle"]
    torch.testing.assert_close([advantage["at_t1"]["seeds"][s]["advantages"] for s in ("88", "89")], [[-0.10], [-0.12]])
    torch.testing.assert_close([advantage["at_t1"]["low"], advantage["at_t1"]["high"], advantage["at_t1"]["std"]],
                               [-0.11, -0.11, 0.02 ** 0.5 / 10])
    assert advantage["at_t1"]["ambiguous_seeds"] == []
    # along the GAN's curve: T=0.8 (Self-BLEU-4 0.32) lies outside MLE's sweep; T=1.2 at 0.09 against
    # MLE's 0.18 / 0.20 between its T=1 and T=1.2 points
    along = advantage["along_curve"]
    assert list(along) == ["1.0", "1.2"]
    torch.testing.assert_close([along[t][k] for t in along for k in ("low", "high")], [-0.11] * 4)
    assert "-0.1100 ± 0.0141" in done.stdout and "-0.1100 -0.1100 (2)" in done.stdout
    # the LM plane: the GAN at T=1 (reverse-LM 6.0, LM 4.6) against MLE's 4.0
    lm = summary["advantage_at_matched_diversity"]["lm_score"]["gan"]["mle"]
    torch.testing.assert_close([lm["at_t1"]["low"], lm["along_curve"]["1.0"]["low"]], [-0.6, -0.6])
    # both curves' T=1.2 cover more than their T=1 (no fold), so the GAN's T=1.2 (reverse-LM 5.8, LM 5.1)
    # counts along its curve, against MLE's 4.0 + 0.2 / 0.5 * 0.5 = 4.2 there
    assert list(lm["along_curve"]) == ["1.0", "1.2"] and advantage["outside"] == {} and lm["outside"] == {}
    torch.testing.assert_close(lm["along_curve"]["1.2"]["low"], -0.9)
    assert "lm_score" in done.stdout and (results / "poems.png").is_file()
    # the same report from Python: the same lines, and the summary it writes
    lines = []
    written = report("poems", results / "poems", say=lines.append)
    assert "".join(line + "\n" for line in lines) == done.stdout
    assert json.loads(json.dumps(written)) == summary


def test_the_variants_recipes_come_from_the_registry():
    # seqadv.eval sits below the trainers: it reaches them by name, filled in when seqadv is imported
    for name, _ in VARIANTS.values():
        entry = recipe(name)
        assert entry.trainer.recipe == name and entry.kind == "text" and entry.trainer.config_class is entry.config


def test_a_report_without_seeds_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--corpus", "coco", "--report", "--results", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no seed-*.json yet" in done.stderr and "Traceback" not in done.stderr


def test_the_lm_plane_follows_each_sweep_reports_ambiguous_crossings_and_prints_the_measured_noise(tmp_path):
    results = tmp_path / "results"
    (results / "poems").mkdir(parents=True)
    (results / "lm_noise").mkdir()
    # seed 88's MLE curve is not monotonic in reverse-LM (6.0, 5.6, 5.8 at T = 0.8, 0.9, 1.0): the GAN's
    # 5.7 is passed twice, at LM 4.0 + 0.3 * 0.75 = 4.225 and at 4.3 + 0.2 * 0.5 = 4.4; the GAN's LM 4.4
    # is 0.175 worse than the first and level with the second. Seed 89's curve passes it once, at 4.4,
    # where the GAN's 4.2 is 0.2 better.
    mle = {88: [(0.8, 4.0, 6.0), (0.9, 4.3, 5.6), (1.0, 4.5, 5.8)], 89: [(0.8, 4.0, 6.0), (0.9, 4.3, 5.8), (1.0, 4.5, 5.6)]}
    gan_lm = {88: 4.4, 89: 4.2}
    for seed in (88, 89):
        sweep = {"mle": [point(t, 0.3 - 0.1 * t, 0.5 - 0.2 * t, lm, rev) for t, lm, rev in mle[seed]],
                 "gan": [point(1.0, 0.2, 0.3, gan_lm[seed], 5.7)]}
        (results / "poems" / f"seed-{seed}.json").write_text(json.dumps(
            {"seed": seed, "sweep": sweep, "evaluate": "python scripts/evaluate.py x --lm-steps 300"}))
    # one point's noise as lm_noise.py writes it: LM score 0.01, reverse-LM 0.02 (and another budget, unused)
    noise = lambda lm, rev: {"noise": {"lm_score": {"total": lm}, "reverse_lm_score": {"total": rev}}}  # noqa: E731
    (results / "lm_noise" / "poems.json").write_text(json.dumps({"budgets": {"300": noise(0.01, 0.02),
                                                                             "900": noise(9.0, 9.0)}}))
    done = subprocess.run([sys.executable, str(SCRIPT), "--corpus", "poems", "--report", "--results", str(results)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads((results / "poems" / "summary.json").read_text())
    lm = summary["advantage_at_matched_diversity"]["lm_score"]["gan"]["mle"]["at_t1"]
    torch.testing.assert_close([lm["seeds"]["88"]["advantages"], lm["seeds"]["89"]["advantages"]],
                               [[4.225 - 4.4, 0.0], [0.2]])
    assert lm["ambiguous_seeds"] == [88]
    torch.testing.assert_close([lm["low"], lm["high"]], [(4.225 - 4.4 + 0.2) / 2, 0.1])
    # each seed's noise: the larger over its crossings of sqrt(2 * 0.01^2 + 2 * (slope * 0.02)^2), slopes
    # -0.75 and 1 (seed 88), -1 (seed 89); the mean of the two seeds has sqrt(sum of squares) / 2
    torch.testing.assert_close([lm["seeds"]["88"]["noise"], lm["seeds"]["89"]["noise"], lm["noise"]],
                               [1e-3 ** 0.5, 1e-3 ** 0.5, 2e-3 ** 0.5 / 2])
    assert summary["lm_noise"]["quality"] == 0.01 and summary["lm_noise"]["diversity"] == 0.02
    # the range +0.0125..+0.1 is neither beyond twice the noise (0.0447) nor within it
    assert f"{lm['low']:+.3f}..{lm['high']:+.3f} (1 ambiguous)" in done.stdout and "±0.022 ambiguous" in done.stdout


def test_a_verdict_needs_the_whole_range_beyond_twice_the_noise():
    assert verdict(0.3, 0.5, 0.1) == "GAN ahead" and verdict(-0.5, -0.21, 0.1) == "MLE ahead"
    assert verdict(-0.2, 0.2, 0.1) == "within noise" and verdict(0.1, 0.3, 0.1) == "ambiguous"
    assert verdict(-0.3, 0.3, 0.1) == "ambiguous"


def test_dominance_beyond_noise_needs_both_margins_above_twice_a_differences_noise():
    noise = {"quality": 0.01, "diversity": 0.02}  # a difference of two points: sqrt(2) times that
    point = {"lm_score": 5.0, "reverse_lm_score": 4.0}
    # margins 0.1 (LM) and 0.06 (reverse-LM): above 2 * sqrt(2) * 0.01 = 0.028 and 2 * sqrt(2) * 0.02 = 0.057
    assert beats_beyond_noise({"lm_score": 4.9, "reverse_lm_score": 3.94}, point, "reverse_lm_score", "lm_score", noise)
    # a reverse-LM margin of 0.05: better, but within the noise
    assert not beats_beyond_noise({"lm_score": 4.9, "reverse_lm_score": 3.95}, point, "reverse_lm_score", "lm_score",
                                  noise)
    # BLEU (higher is better) on the quality axis
    assert beats_beyond_noise({"bleu4": 0.3, "self_bleu4": 0.1}, {"bleu4": 0.2, "self_bleu4": 0.2}, "self_bleu4",
                              "bleu4", noise)


def test_a_crowded_sweep_plot_keeps_every_model_in_one_legend_outside_and_the_colours_asked(monkeypatch, tmp_path):
    from seqadv.eval import report as report_module

    drawn = {}
    monkeypatch.setattr(report_module, "save_figure", lambda fig, path: drawn.update(fig=fig))
    both = {"self_bleu4": 0.4, "bleu4": 0.3, "reverse_lm_score": 4.3, "lm_score": 3.6}
    curves = {f"gan{i}": [{"temperature": 1.0, **both}] for i in range(7)}
    curves["mle"] = [{"temperature": t, **both} for t in (0.8, 1.0, 1.2)]
    curves["training captions"] = [{"temperature": 1.0, "self_bleu4": 0.42, "bleu4": 0.33}]  # no LM point
    report_module.plot_sweep(curves, "self_bleu4", "bleu4", "x", "y", "t", tmp_path / "f.png",
                             colors={"training captions": "black"})
    bleu_panel, lm_panel = drawn["fig"].axes
    assert bleu_panel.get_legend() is None  # nine curves: one legend, beside the last panel
    assert [t.get_text() for t in lm_panel.get_legend().get_texts()] == list(curves)
    (captions,) = [line for line in bleu_panel.get_lines() if line.get_label() == "training captions"]
    assert captions.get_color() == "black"
    # a lone point is not labelled with its temperature (its star says T = 1); a curve's two ends are
    assert [t.get_text() for t in bleu_panel.texts] == ["T=0.8", "T=1.2"]
