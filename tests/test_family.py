"""The family benchmark on the published COCO protocol (`seqadv.eval.family`, compare_recipes.py
--corpus coco-texygen): one JSON per (recipe, seed), the samples it scored, the report."""
import gzip
import json
import math
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seqadv.core.registry import recipe
from seqadv.data.dataset import load_corpus
from seqadv.eval import family
from seqadv.eval.metrics import BLEU

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_recipes.py"
TINY = ("--preset", "tiny", "--max-train", "128", "--max-test", "100")
SWEEP = ("--temperatures", "0.8,1.0,1.2", "--samples", "40", "--no-lm-score")


def test_every_variant_is_a_registered_text_recipe():
    for name, variant in family.FAMILY.items():
        entry = recipe(variant.recipe)
        assert entry.kind == "text" and entry.trainer.recipe == variant.recipe
        assert variant.init_from is None or family.FAMILY[variant.init_from].recipe == "seqgan"
    assert list(family.FAMILY).index("seqgan") < min(list(family.FAMILY).index(n) for n, v in family.FAMILY.items()
                                                   if v.init_from)


def test_a_variant_runs_once_and_commits_the_samples_it_scored(tmp_path):
    runs, results = tmp_path / "runs", tmp_path / "results"
    said = []
    family.run_seed(88, runs, results, ["mle_best", "seqgan", "maligan"], say=said.append, train_options=TINY,
                    sweep_args=SWEEP, texygen_samples=120)
    seqgan = json.loads((results / "seqgan" / "seed-88.json").read_text())
    maligan = json.loads((results / "maligan" / "seed-88.json").read_text())
    # MLE-best's curve counted Texygen's way, for the published points to be read against
    mle_best = json.loads((results / "mle_best" / "seed-88.json").read_text())
    curve = mle_best["texygen_curve"]
    assert [p["temperature"] for p in curve] == list(family.TEXYGEN_CURVE_TEMPERATURES)
    at_one = next(p for p in curve if p["temperature"] == 1.0)  # the same samples as its T = 1 count
    counted = mle_best["texygen_protocol"]["mle_best/mle_best"]
    assert [at_one[f"bleu{n}"] for n in (2, 3, 4, 5)] == counted["bleu"]
    assert [at_one[f"self_bleu{n}"] for n in (2, 3, 4, 5)] == counted["self_bleu"]
    assert curve[0] != curve[-1]
    # MaliGAN starts from SeqGAN's pretrained G of the seed, and says so in its command
    assert f"--init-from {runs / 'coco-texygen' / 'seed-88' / 'seqgan'}" in maligan["command"]
    assert "--init-from" not in seqgan["command"] and "--preset tiny" in seqgan["command"]
    assert set(seqgan["sweep"]) == {"seqgan/pretrained", "seqgan/mle", "seqgan/seqgan"}
    # its pretrained G is SeqGAN's, swept once, there
    assert set(maligan["sweep"]) == {"maligan/mle", "maligan/maligan"} and family.gan_model("maligan") == "maligan/maligan"
    records = family.load_records(results)
    assert family.references_of("maligan", 88, records)["start"][0] == "seqgan/pretrained"
    # the committed samples are the ones the sweep scored at T = 1: the same BLEU-4 from the file
    data = load_corpus("coco-texygen", max_train=128, max_test=100)
    bleu = BLEU(data.references(), max_n=4)
    for model in ("seqgan/seqgan", "seqgan/mle"):
        with gzip.open(seqgan["samples"][model], "rt") as f:
            lines = f.read().splitlines()
        at_one = next(p for p in seqgan["sweep"][model] if p["temperature"] == 1.0)
        assert len(lines) == 40
        assert bleu.score([line.split() for line in lines], 4) == pytest.approx(at_one["bleu4"], abs=1e-12)
    # Texygen's count of each model, on samples of its own (10,000 by default)
    counts = seqgan["texygen_protocol"]
    assert set(counts) == set(seqgan["sweep"]) and counts["seqgan/seqgan"]["samples"] == 120
    assert set(maligan["texygen_protocol"]) == {"maligan/mle", "maligan/maligan"}
    # the report counts the committed samples as RelGAN's code counted its own: the first 200 against every
    # test caption (here all 40)
    summary = family.report(results, say=lambda line: None)
    with gzip.open(results / "seqgan" / "samples" / "seed-88-seqgan.txt.gz", "rt") as f:
        samples = [line.split() for line in f.read().splitlines()]
    every = BLEU(load_corpus("coco-texygen").references(), max_n=5)
    relgan_way = next(v for k, v in summary["published"].items() if k.startswith("RelGAN"))
    assert relgan_way["relgan"]["ours"] is None  # no RelGAN run here
    texygen = next(v for k, v in summary["published"].items() if k.startswith("Texygen"))["seqgan"]
    torch.testing.assert_close(texygen["ours_on_their_protocol"]["bleu"], counts["seqgan/seqgan"]["bleu"])
    assert texygen["published"]["bleu"] == [0.745, 0.498, 0.294, 0.180]
    assert relgan_way["relgan"]["ours_on_their_protocol"] is None
    references = load_corpus("coco-texygen").references()
    their_way = family.on_their_protocol(results, family.load_records(results), "relgan", "seqgan", "seqgan/seqgan",
                                         references)
    torch.testing.assert_close(their_way["bleu"], [every.score(samples[:200], n) for n in (2, 3, 4, 5)])
    # the T = 1 table's length is the committed samples' mean number of tokens
    assert summary["at_t1"]["seqgan/seqgan"]["length"]["mean"] == pytest.approx(sum(map(len, samples)) / len(samples))
    # done is done: a second call trains and writes nothing
    stamp = (results / "seqgan" / "seed-88.json").stat().st_mtime_ns
    again = []
    family.run_seed(88, runs, results, ["seqgan", "maligan"], say=again.append, train_options=TINY, sweep_args=SWEEP,
                    texygen_samples=120)
    assert again == [] and (results / "seqgan" / "seed-88.json").stat().st_mtime_ns == stamp
    # on a fresh machine (SeqGAN's JSON committed, its run gone) the variants that start from SeqGAN's G
    # (recipes that differ from SeqGAN's in the adversarial phase only) pretrain the same G themselves rather
    # than retraining SeqGAN
    fresh = [name for name, v in family.FAMILY.items() if v.init_from == "seqgan"]
    assert fresh == ["seqgan_loo_cold", "maligan", "rankgan", "dpgan"]
    for name in ("seqgan", "maligan"):  # MaliGAN ran above, from SeqGAN's run: run again, fresh
        shutil.rmtree(runs / "coco-texygen" / "seed-88" / name)
    shutil.rmtree(results / "maligan")
    family.run_seed(88, runs, results, fresh, say=again.append, train_options=TINY, sweep_args=SWEEP,
                    texygen_samples=120)
    assert not (runs / "coco-texygen" / "seed-88" / "seqgan").exists()
    for name in fresh:
        record = json.loads((results / name / "seed-88.json").read_text())
        assert "--init-from" not in record["command"] and f"{name}/pretrained" in record["sweep"]
        torch.testing.assert_close(record["sweep"][f"{name}/pretrained"], seqgan["sweep"]["seqgan/pretrained"])


def curve(points):
    return [{"temperature": t, "bleu4": b, "self_bleu4": s, "nll_test": 4.0, "copied": 0.0,
             **{f"bleu{n}": b for n in (2, 3, 5)}, **{f"self_bleu{n}": s for n in (2, 3, 5)}} for t, b, s in points]


def write(results, variant, seed, sweep, command="python scripts/x.py", **more):
    (results / variant).mkdir(parents=True, exist_ok=True)
    record = {"seed": seed, "variant": variant, "command": command, "sweep": sweep,
              "train": {"timings": {"total_s": 100.0 + seed}}, **more}
    (results / variant / f"seed-{seed}.json").write_text(json.dumps(record))


def test_the_report_measures_each_gan_against_three_mle_curves(tmp_path):
    results = tmp_path / "coco-texygen"
    # MLE-best's curve: BLEU-4 0.30 at Self-BLEU-4 0.40 down to 0.10 at 0.10, straight
    mle = [(0.8, 0.30, 0.40), (1.0, 0.20, 0.25), (1.2, 0.10, 0.10)]
    gaps = {88: 0.05, 89: 0.03, 90: 0.04}  # SeqGAN at T = 1 lies this far below MLE-best's curve
    for seed, gap in gaps.items():
        # and counted Texygen's way: BLEU-n 0.30 at Self-BLEU-n 0.80 (T = 0.8), 0.25 at 0.60 (T = 1), every n
        write(results, "mle_best", seed, {"mle_best/mle_best": curve(mle)},
              texygen_curve=[{k: v for k, v in p.items() if k != "nll_test"} for p in curve([(0.8, 0.30, 0.80),
                                                                                             (1.0, 0.25, 0.60)])])
        # SeqGAN at T=1: Self-BLEU-4 0.325, where MLE-best's curve has BLEU-4 0.25
        write(results, "seqgan", seed, {
            "seqgan/pretrained": curve([(0.8, 0.21, 0.40), (1.0, 0.15, 0.30), (1.2, 0.10, 0.10)]),
            "seqgan/mle": curve([(0.8, 0.30, 0.40), (1.0, 0.22, 0.30), (1.2, 0.10, 0.10)]),
            "seqgan/seqgan": curve([(0.8, 0.26, 0.45), (1.0, 0.25 - gap, 0.325), (1.2, 0.15, 0.20)])})
    write(results, "cot", 88, {"cot/mle": curve(mle), "cot/cot": curve([(1.0, 0.22, 0.25)])})
    # the oracle benchmark's table is printed beside: one SeqGAN seed, 0.2 below its MLE in NLL-oracle
    oracle = tmp_path / "oracle"
    (oracle / "seqgan").mkdir(parents=True)
    (oracle / "seqgan" / "seed-88.json").write_text(json.dumps({"models": {
        "pretrained": {"nll_oracle": 9.0, "nll_test": 7.8}, "mle": {"nll_oracle": 8.9, "nll_test": 7.7},
        "seqgan": {"nll_oracle": 8.7, "nll_test": 7.9}}}))
    lines = []
    family.report(results, say=lines.append, oracle=oracle)  # compare_recipes.py --corpus coco-texygen --report
    stdout = "".join(line + "\n" for line in lines)
    summary = json.loads((results / "summary.json").read_text())
    # the MLE baselines at T = 1 beside the GANs: each variant's equal-budget MLE and its own pretrained G, over
    # the seeds that have them (CoT's one seed has its MLE only)
    torch.testing.assert_close([summary["at_t1"][m]["bleu4"]["mean"] for m in ("seqgan/mle", "seqgan/pretrained")],
                               [0.22, 0.15])
    assert "cot/mle" in summary["at_t1"] and "cot/pretrained" not in summary["at_t1"]
    assert stdout.split("the MLE baselines")[1].splitlines()[1].startswith("seqgan/mle ")
    seqgan = summary["matched_diversity"]["seqgan"]["bleu"]
    best = seqgan["best"]["advantage"]
    torch.testing.assert_close([best["seeds"][s]["advantages"][0] for s in ("88", "89", "90")], [-0.05, -0.03, -0.04])
    torch.testing.assert_close([best["low"], best["std"]], [-0.04, 0.01])
    # mean -0.04 against a standard error of 0.01 / sqrt(3): below the curve, by 6.9 of them, past
    # Student's t at 95% for 3 seeds (4.30)
    assert seqgan["best"]["verdict"] == f"below, by {0.04 / (0.01 / math.sqrt(3)):.1f} s.e. (95%: 4.30)"
    # and each seed's, behind the cell, printed
    assert "  seqgan          vs MLE-best: 88 -0.050, 89 -0.030, 90 -0.040   vs equal-budget MLE: " in stdout
    assert family.seed_by_seed({"seeds": {"89": {"advantages": [-0.02, 0.01]}}, "outside": {"88": [0.8], "90": []}}) == (
        "88 dominated, 89 -0.020..+0.010, 90 outside")
    # its own equal-budget MLE: 0.30 + (0.325 - 0.40) / (0.30 - 0.40) * (0.22 - 0.30) = 0.24 at Self-BLEU-4 0.325
    torch.testing.assert_close(seqgan["equal"]["advantage"]["low"], 0.25 - 0.04 - 0.24)
    # the pretrained G passes 0.325 at 0.15 + 0.25 * 0.06 = 0.165: SeqGAN is above it by 0.045 ± 0.01
    torch.testing.assert_close(seqgan["start"]["advantage"]["low"], 0.045)
    assert seqgan["start"]["verdict"] == f"above, by {0.045 / (0.01 / math.sqrt(3)):.1f} s.e. (95%: 4.30)"
    # the README's table: two rows per GAN (BLEU plane, LM plane), its verdict and advantage against each curve
    row = next(line for line in lines if line.startswith("| seqgan |")).split(" | ")
    # in short: below MLE-best and its own MLE, above the pretrained G it started from: mixed, each named
    assert row[1:4] == ["BLEU-4", "mixed: **below** MLE-best, equal-budget MLE; **above** pretrained G",
                        f"**below** -0.040 ± 0.010 ({0.04 / (0.01 / math.sqrt(3)):.1f} s.e., 3 seeds)"]
    assert row[5] == f"**above** +0.045 ± 0.010 ({0.045 / (0.01 / math.sqrt(3)):.1f} s.e., 3 seeds) |"
    assert summary["in_short"]["seqgan"]["bleu"] == row[2]
    assert len(row) == 6 and family.verdict_table(summary["matched_diversity"])[2] == "| seqgan | " + " | ".join(row[1:])
    # a mean 3.5 standard errors above 0 over 3 seeds is on the curve: Student's t, not 2 s.e.
    def adv(per_seed, outside=None):  # an advantage as seed_advantages gives it: {seed: advantages at crossings}
        lows, highs = [min(a) for a in per_seed.values()], [max(a) for a in per_seed.values()]
        mids = [(lo + hi) / 2 for lo, hi in zip(lows, highs)]
        return {"seeds": {s: {"advantages": a} for s, a in per_seed.items()}, "low": statistics.fmean(lows),
                "high": statistics.fmean(highs), "std": statistics.stdev(mids) if len(mids) > 1 else 0.0,
                "ambiguous_seeds": [s for s, a in per_seed.items() if len(a) > 1], "outside": outside or {}}

    three = adv({"88": [0.01], "89": [0.02], "90": [0.03]})
    assert family.verdict(three) == "on, within 3.5 s.e. (95%: 4.30)"
    # no spread over seeds: the same nonzero advantage in each is past any bar; exactly 0 (a GAN that is its
    # own start) is on the curve, not above it
    assert family.verdict(adv({"88": [0.02], "89": [0.02], "90": [0.02]})) == "above, by inf s.e. (95%: 4.30)"
    assert family.verdict(adv({"88": [0.0], "89": [0.0], "90": [0.0]})) == "on, within 0.0 s.e. (95%: 4.30)"
    # one seed states no verdict; in the LM plane it states what measurement noise alone gives
    one = adv({"88": [0.3]})
    assert family.verdict(one) == "1 seed: no noise stated"
    assert family.verdict({**one, "noise": 0.349}) == "1 seed, noise ±0.349"
    assert family.verdict(adv({"88": [-0.1, 0.2]})) == "ambiguous"  # one seed whose crossings disagree in sign
    # two seeds inside the curve and one outside, beaten on both axes by the curve's T = 1 point: the verdict is
    # over the two (t at 1 degree of freedom), and says so
    two = adv({"88": [-0.019], "89": [-0.021]}, outside={"90": [1.0]})
    assert family.verdict(two) == "below, by 20.0 s.e. (95%: 12.71); outside in 1, dominated in 1"
    # a curve passing a seed's diversity twice: the test with every seed's lowest crossing and with every
    # seed's highest; they disagree here (below with the lowest, on with the highest): ambiguous, although no
    # seed's crossings disagree in sign ...
    twice = adv({"88": [-0.019, -0.001], "89": [-0.021]})
    assert family.verdict(twice) == "ambiguous"
    # ... and where both tests agree, that verdict, whatever the signs within a seed
    agree = adv({"88": [-0.10, 0.10], "89": [-0.50], "90": [-0.52]})
    assert family.verdict(agree).startswith("on, within")
    assert family.verdict(adv({"88": [0.01, 0.012], "89": [0.011], "90": [0.0105]})).startswith("above, by")
    # the README's cells say the same, verdict first; a range where a curve passes twice, not its midpoint
    assert family.brief(three) == "on +0.020 ± 0.010 (3.5 s.e., 3 seeds)"
    assert family.brief(two) == "**below** -0.020 ± 0.001 (20.0 s.e., 2 seeds; outside in 1, dominated in 1)"
    assert family.brief(twice) == "ambiguous -0.020..-0.011 (2 seeds)"
    assert family.brief({**one, "noise": 0.349}) == "+0.300 (1 seed, noise ±0.349)"
    assert family.brief(None) == "-"
    # a plane's verdict in short: better than MLE only where above every curve; below where any curve is
    # below it or dominates it in every seed; on where none is below and one is on; else no verdict
    above = adv({"88": [0.02], "89": [0.021], "90": [0.019]})
    dominated = {"outside": {"88": [1.0], "89": [0.9]}, "seeds_total": 2}
    assert family.plain({"best": three, "equal": above, "start": None}) == "on MLE-best"
    assert family.plain({"best": three, "equal": dominated, "start": None}) == "**below** equal-budget MLE (dominated)"
    assert family.plain({"best": above, "equal": above, "start": above}) == "**above** all three"
    assert family.plain({"best": above, "equal": above, "start": None}) == "**above** MLE-best, equal-budget MLE"
    assert family.plain({"best": above, "equal": one, "start": above}) == "no verdict"
    # below one curve and above another is said as such, not folded into either
    below = adv({"88": [-0.02], "89": [-0.021], "90": [-0.019]})
    assert family.plain({"best": above, "equal": None, "start": below}) == (
        "mixed: **below** pretrained G; **above** MLE-best")
    # one seed, dominated, is one seed: no verdict, as inside the curve
    assert family.plain({"best": {"outside": {"88": [1.0]}, "seeds_total": 1}, "equal": None, "start": None}) == (
        "no verdict")
    # above over the seeds inside, but a point of the curve beats the third seed on both axes: ambiguous
    above_but_beaten = {**adv({"88": [0.02], "89": [0.021]}), "outside": {"90": [1.0]}}
    assert family.judge(above_but_beaten)["word"] == "ambiguous"
    assert family.verdict(above_but_beaten) == "ambiguous; outside in 1, dominated in 1"
    assert family.plain({"best": {"outside": {"88": []}, "seeds_total": 1}, "equal": None, "start": None}) == "no verdict"
    # Student's t beyond the table: the Cornish-Fisher expansion (t at 10 and 30 degrees of freedom: 2.228, 2.042)
    assert [round(family.t_95(d), 3) for d in (2, 10, 30)] == [4.303, 2.228, 2.042]
    cot = summary["matched_diversity"]["cot"]["bleu"]
    assert cot["equal"]["verdict"] == "1 seed: no noise stated" and cot["start"]["advantage"] is None
    # Texygen's published SeqGAN beside ours at T = 1 (each BLEU-n here 0.25 - gap, mean 0.21; Self-BLEU 0.325)
    assert ("SeqGAN           published 0.745/0.498/0.294/0.180 | 0.950/0.840/0.670/0.489   ours "
            "0.210/0.210/0.210/0.210 | 0.325/0.325/0.325/0.325\n") in stdout  # no samples: not counted their way
    assert (tmp_path / "coco-texygen.png").is_file()
    assert (tmp_path / "coco-texygen-texygen-counts.png").is_file()  # ours and the published points, counted alike
    for plane in ("bleu", "lm"):  # a panel per GAN with the three curves of its verdict
        assert (tmp_path / f"coco-texygen-{plane}-against-curves.png").is_file()
    # Texygen's SeqGAN, BLEU-4 0.294 at Self-BLEU-4 0.670, against that curve: 0.25 + 0.07 / 0.20 * 0.05 = 0.2675
    # there; its Self-BLEU-2 0.950 lies outside the curve
    gaps = summary["published"]["against our MLE counted their way"]["seqgan"]
    assert gaps[0] is None
    torch.testing.assert_close(gaps[2], 0.294 - 0.2675)
    torch.testing.assert_close(summary["wall_time_s"]["mle_best"]["mean"], 189.0)
    # the cost a seed is the least over seeds (a pause only adds), then each seed's
    assert summary["wall_time_s"]["mle_best"]["least"] == 188.0
    assert "  mle_best               188 s   seed 88: 188 s, 89: 189 s, 90: 190 s\n" in stdout
    row = summary["oracle_table"][2].split()
    assert row[:7] == ["SeqGAN", "1", "9.000", "8.900", "8.700", "-0.200", "0.200"] and row[7] == "8.736"
    assert summary["oracle_table"][2] in stdout.split("the family on the SeqGAN paper's oracle")[1]


def test_each_gans_curves_are_its_own_seeds_curves(tmp_path):
    # the figure's curves: per role, the mean over the verdict's seeds of that seed's own curve,
    # temperature by temperature; a variant started --init-from SeqGAN is judged against SeqGAN's
    # pretrained G of the same seed
    results = tmp_path / "coco-texygen"
    for seed, shift in ((88, 0.0), (89, 0.02)):
        write(results, "mle_best", seed, {"mle_best/mle_best": curve([(0.8, 0.30 + shift, 0.40),
                                                                      (1.0, 0.20 + shift, 0.25)])})
        write(results, "seqgan", seed, {"seqgan/pretrained": curve([(0.8, 0.2, 0.4), (1.0, 0.10 + shift, 0.30)]),
                                        "seqgan/mle": curve([(0.8, 0.5, 0.5), (1.0, 0.5, 0.5)]),
                                        "seqgan/seqgan": curve([(0.8, 0.5, 0.5), (1.0, 0.5, 0.5)])})
    write(results, "maligan", 89, {"maligan/mle": curve([(0.8, 0.5, 0.5), (1.0, 0.40, 0.35)]),
                                   "maligan/maligan": curve([(0.8, 0.5, 0.5), (1.0, 0.3, 0.3)])},
          command="python scripts/train_maligan.py --init-from runs/x/seqgan")
    write(results, "mle_best", 90, {"mle_best/mle_best": curve([(0.8, 0.9, 0.9), (1.0, 0.90, 0.9)])})
    records = family.load_records(results)
    keys = ("self_bleu4", "bleu4")
    best = family.role_curve("seqgan", "best", records, *keys)
    assert best["seeds"] == [88, 89] == list(family.role_sweeps("seqgan", "best", records))
    torch.testing.assert_close([p["bleu4"] for p in best["mean"]], [0.31, 0.21])
    torch.testing.assert_close(best["std"][1]["bleu4"], math.sqrt(2) * 0.01)
    start = family.role_curve("maligan", "start", records, *keys)
    assert start["seeds"] == [89]  # SeqGAN's pretrained G of seed 89, not 88, and not a mean of both
    torch.testing.assert_close([start["mean"][1]["bleu4"], start["mean"][1]["self_bleu4"]], [0.12, 0.30])
    assert family.role_curve("maligan", "best", records, *keys)["seeds"] == [89]  # MLE-best's 90 is not maligan's
    # the LM plane: a seed whose curve folds at T = 1.2 (worse on both axes than its T = 1) takes that point
    # off the drawn curve, as off its comparisons
    def lm(points):
        return [{"temperature": t, "lm_score": q, "reverse_lm_score": d} for t, q, d in points]
    fold = {"mle_best": {88: {"seed": 88, "command": "x", "sweep": {"mle_best/mle_best": lm(
                [(0.8, 3.0, 4.6), (1.0, 3.5, 4.3), (1.2, 4.0, 4.4)])}},
                         89: {"seed": 89, "command": "x", "sweep": {"mle_best/mle_best": lm(
                [(0.8, 3.0, 4.6), (1.0, 3.5, 4.3), (1.2, 4.0, 4.2)])}}},
            "seqgan": {seed: {"seed": seed, "command": "x", "sweep": {"seqgan/seqgan": lm([(0.8, 3, 5), (1.0, 3.2, 4.5),
                                                                                          (1.2, 3.5, 4.4)])}}
                       for seed in (88, 89)}}
    drawn = family.role_curve("seqgan", "best", fold, "reverse_lm_score", "lm_score")
    assert drawn["branch"] == {0.8, 1.0}  # seed 88 folds at 1.2; seed 89 does not
    fold["mle_best"][89]["sweep"]["mle_best/mle_best"][2]["temperature"] = 1.3
    with pytest.raises(ValueError, match="different temperatures"):
        family.role_curve("seqgan", "best", fold, "reverse_lm_score", "lm_score")
    assert family.role_curve("cot", "best", {"cot": {88: {"sweep": {}, "command": "x", "seed": 88}}}, *keys) is None


def test_a_family_report_without_runs_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--corpus", "coco-texygen", "--report", "--results",
                           str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no <variant>/seed-*.json yet" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, str(SCRIPT), "--corpus", "poems", "--variant", "seqgan", "--report"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--variant is for --corpus coco-texygen" in done.stderr


def test_texygen_counted_its_training_set_row_as_we_count_it():
    """Texygen's COCO table has a 'training set' row (docs/evaluation.md): the 10,000 training
    captions, BLEU against the test captions .740/.520/.337/.218, Self-BLEU .892/.747/.573/.415.
    Counted as `texygen_counts` counts (every caption against all 10,000 test captions; Self-BLEU
    among all 10,000) they give that row; its Bleu class's default (the first 500 references)
    would not."""
    counts = family.real_text_scores()["texygen"]  # texygen_counts of the 10,000 training captions
    data = load_corpus("coco-texygen")
    captions = [data.tokens(row) for row in data.train]
    torch.testing.assert_close(counts["bleu"], [0.740, 0.520, 0.337, 0.218], atol=0.002, rtol=0)
    torch.testing.assert_close(counts["self_bleu"], [0.892, 0.747, 0.573, 0.415], atol=0.002, rtol=0)
    assert BLEU(data.references()[:500], max_n=2).score(captions, 2) < 0.6
