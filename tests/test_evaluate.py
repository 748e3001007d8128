"""The temperature sweep (`seqadv.eval.sweep`, and scripts/evaluate.py over it), its files, and
the metrics it adds; the seeds' aggregation (scripts/train_seeds.py over `seqadv.eval.seeds`)."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest
import torch

from seqadv.eval.metrics import copied, distinct_ngrams, nll
from seqadv.eval.sweep import SweepSettings, summary_lines, sweep, sweep_files, write_sweep
from seqadv.models.generator import Generator

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def script(name, *args):
    return subprocess.run([sys.executable, str(SCRIPTS / name), *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    gen = torch.Generator().manual_seed(0)
    words = [f"w{i}" for i in range(30)]
    lines = [" ".join(words[j] for j in torch.randint(0, 30, (int(torch.randint(3, 9, (1,), generator=gen)),),
                                                      generator=gen).tolist()) for _ in range(300)]
    corpus = root / "toy.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = script("train_seqgan.py", "--corpus", corpus, "--preset", "tiny", "--out", root / "run")
    assert result.returncode == 0, result.stderr[-2000:]
    return root / "run"


def test_the_sweep_writes_json_csv_and_a_readable_png(tiny_run, tmp_path):
    result = script("evaluate.py", tiny_run, "--temperatures", "0.8,1.0,1.25", "--samples", "60",
                    "--self-bleu-samples", "40", "--out", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Self-BLEU on a seeded subsample of 40" in result.stdout
    report = json.loads((tmp_path / "eval.json").read_text())
    assert set(report["models"]) == {"mle", "seqgan"}
    trained = json.loads((tiny_run / "results.json").read_text())["models"]
    for name, curve in report["models"].items():
        assert [m["temperature"] for m in curve] == [0.8, 1.0, 1.25]
        # at temperature 1 the sweep's NLL-test is the model's plain NLL-test, as train_seqgan.py reported it
        assert curve[1]["nll_test"] == pytest.approx(trained[name]["nll_test"], abs=1e-12)
        assert curve[0]["nll_test"] != curve[1]["nll_test"]
        for m in curve:
            assert 0 <= m["bleu5"] <= m["bleu4"] <= m["bleu2"] <= 1 and 0 <= m["self_bleu4"] <= 1
            assert 0 <= m["copied"] <= 60 and m["distinct1"] <= m["distinct2"]
    with open(tmp_path / "eval.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and float(rows[1]["nll_test"]) == curve_value(report, rows[1])
    image = matplotlib.image.imread(tmp_path / "eval.png")
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200 and image.std() > 0


def test_the_sweep_from_python_is_the_scripts(tiny_run, tmp_path):
    result = script("evaluate.py", tiny_run, "--temperatures", "0.9,1.1", "--samples", "30", "--no-lm-score", "--out",
                    tmp_path / "script")
    assert result.returncode == 0, result.stderr[-2000:]
    said = []
    swept = sweep(tiny_run, temperatures=(0.9, 1.1), samples=30, lm_score=False, out=tmp_path / "script",
                  say=said.append)
    assert json.loads(json.dumps(swept)) == json.loads((tmp_path / "script" / "eval.json").read_text())
    write_sweep(swept, tmp_path / "python")
    for name in ("eval.json", "eval.csv"):
        assert (tmp_path / "python" / name).read_text() == (tmp_path / "script" / name).read_text()
    printed = result.stdout.splitlines()
    assert printed[: len(said)] == said and printed[len(said):-1] == summary_lines(swept["models"])
    assert matplotlib.image.imread(tmp_path / "python" / "eval.png").shape[0] > 200


def test_settings_out_of_range_are_one_line_naming_the_option():
    with pytest.raises(ValueError, match="--samples must be at least 2, got 1"):
        SweepSettings(samples=1)
    with pytest.raises(ValueError, match="--temperatures must be positive, got 0.5,0"):
        sweep("anywhere", temperatures=(0.5, 0.0))
    with pytest.raises(ValueError, match="no models to sweep"):
        sweep()


def curve_value(report, row):
    return next(m["nll_test"] for m in report["models"][row["model"]] if m["temperature"] == float(row["temperature"]))


def test_bad_input_gets_one_line(tmp_path):
    result = script("evaluate.py", tmp_path / "nowhere")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nowhere: no such run directory or checkpoint" in lines[0]
    (tmp_path / "empty").mkdir()
    result = script("evaluate.py", tmp_path / "empty")
    # every registered text recipe's sweep files, in the registry's order
    files = sweep_files()
    assert set(files) == {"mle.pt", "seqgan.pt", "scratchgan.pt", "mle_best.pt", "maligan.pt", "rankgan.pt", "leakgan.pt",
                          "relgan.pt", "cot.pt", "dpgan.pt"}
    assert result.returncode == 2 and f"without {', '.join(files[:-1])} or {files[-1]}" in result.stderr


def test_distinct_ngrams_and_copies():
    samples = [["a", "b", "a", "b"], ["a", "b", "c"], ["x"]]
    assert [distinct_ngrams(samples, n) for n in (1, 2, 3)] == [4, 3, 3]  # {a,b,c,x}; {ab,ba,bc}; {aba,bab,abc}
    training = [["a", "b", "c"], ["x"], ["y"]]
    assert copied(samples, training) == 2
    assert copied(samples + [["a", "b", "c"]], training) == 3  # a copy counts each time it is drawn


def test_nll_at_a_temperature_is_that_of_the_scaled_softmax():
    torch.manual_seed(0)
    g = Generator(vocab_size=9, embedding_dim=4, hidden_dim=4, start_token=1)
    data = torch.randint(2, 9, (5, 6))
    for t in (0.5, 1.0, 2.0):
        logp = torch.log_softmax(g.target_logits(data) / t, -1).gather(-1, data.unsqueeze(-1))
        assert nll(g, data, temperature=t) == pytest.approx(-logp.mean().item(), rel=1e-5)


def test_seeds_are_averaged_and_a_rerun_reuses_finished_seeds(tiny_run, tmp_path):
    corpus = tiny_run.parent / "toy.txt"
    out = tmp_path / "seeds"
    result = script("train_seeds.py", "--seeds", "2", "--out", out, "--evaluate", "--eval-args",
                    "--samples 30 --temperatures 0.9,1.0,1.1", "--", "--corpus", corpus, "--preset", "tiny",
                    "--adv-epochs", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert matplotlib.image.imread(out / "seeds.png").shape[0] > 200
    summary = json.loads((out / "seeds.json").read_text())
    runs = [json.loads((out / f"seed-{s}" / "results.json").read_text())["models"] for s in (88, 89)]
    for model in ("pretrained", "mle", "seqgan"):
        values = [r[model]["bleu2"] for r in runs]
        assert summary["models"][model]["bleu2"]["mean"] == pytest.approx(sum(values) / 2)
        assert summary["models"][model]["bleu2"]["std"] == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
    assert runs[0]["seqgan"]["bleu2"] != runs[1]["seqgan"]["bleu2"]  # the seeds differ
    sweeps = [json.loads((out / f"seed-{s}" / "eval" / "eval.json").read_text())["models"] for s in (88, 89)]
    point = summary["sweep"]["mle"][2]
    assert point["temperature"] == 1.1
    assert point["bleu4"]["mean"] == pytest.approx((sweeps[0]["mle"][2]["bleu4"] + sweeps[1]["mle"][2]["bleu4"]) / 2)
    finished = (out / "seed-88" / "results.json").stat().st_mtime_ns
    again = script("train_seeds.py", "--seeds", "2", "--out", out, "--", "--corpus", corpus, "--preset", "tiny",
                   "--adv-epochs", "1")
    assert again.returncode == 0 and (out / "seed-88" / "results.json").stat().st_mtime_ns == finished
    refused = script("train_seeds.py", "--out", out, "--", "--seed", "3")
    assert refused.returncode == 2 and "set per seed" in refused.stderr


def test_matched_diversity_compares_at_the_other_curves_interpolated_quality():
    from seqadv.eval.report import matched_diversity
    curves = {"a": [{"temperature": 0.8, "self_bleu4": 0.2, "bleu4": 0.3}, {"temperature": 1.0, "self_bleu4": 0.1, "bleu4": 0.2}],
              "b": [{"temperature": 1.0, "self_bleu4": 0.15, "bleu4": 0.2}, {"temperature": 1.2, "self_bleu4": 0.05, "bleu4": 0.1}]}
    lines = matched_diversity(curves, "self_bleu4", "bleu4")
    # a at T=1 (0.1): b's curve there is 0.15 -> a better; b at T=1 (0.15): a's curve is 0.25 -> a better
    assert lines == ["at a's self_bleu4 at T=1 (0.1000): a bleu4 0.2000, b's curve 0.1500 -> a is better at matched diversity",
                     "at b's self_bleu4 at T=1 (0.1500): b bleu4 0.2000, a's curve 0.2500 -> a is better at matched diversity"]
