"""compare_recipes.py's report: the per-seed JSON files it writes, aggregated over seeds."""
import json
import subprocess
import sys
from pathlib import Path

import torch

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
    torch.testing.assert_close(advantage["at_t1"]["values"], [-0.10, -0.12])
    torch.testing.assert_close([advantage["at_t1"]["mean"], advantage["at_t1"]["std"]], [-0.11, 0.02 ** 0.5 / 10])
    # along the GAN's curve: T=0.8 (Self-BLEU-4 0.32) lies outside MLE's sweep; T=1.2 at 0.09 against
    # MLE's 0.18 / 0.20 between its T=1 and T=1.2 points
    along = advantage["along_curve"]
    assert list(along) == ["1.0", "1.2"]
    torch.testing.assert_close(list(along.values()), [-0.11, -0.11])
    assert "-0.1100 ± 0.0141" in done.stdout and "-0.1100 -0.1100 (2)" in done.stdout
    # the LM plane on the cooling branch (T <= 1): the GAN at T=1 (reverse-LM 6.0, LM 4.6) against MLE's 4.0
    lm = summary["advantage_at_matched_diversity"]["lm_score"]["gan"]["mle"]
    torch.testing.assert_close([lm["at_t1"]["mean"], lm["along_curve"]["1.0"]], [-0.6, -0.6])
    assert list(lm["along_curve"]) == ["1.0"] and advantage["outside"] == {} and lm["outside"] == {}
    assert "lm_score" in done.stdout and (results / "poems.png").is_file()


def test_a_report_without_seeds_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--corpus", "coco", "--report", "--results", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no seed-*.json yet" in done.stderr and "Traceback" not in done.stderr
