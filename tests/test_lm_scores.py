"""Caccia et al.'s second plane: the LM score, the reverse-LM score, and evaluate.py's sweep of them."""
import csv
import json
import math
import statistics

import pytest
import test_evaluate
import torch
from matplotlib.image import imread
from test_evaluate import script

from seqadv.data.dataset import load_corpus
from seqadv.eval.metrics import lm_score, nll, reverse_lm_score, train_language_model
from seqadv.eval.report import (Crossing, advantage_noise, advantages_at, crossings, curve_advantages,
                                dominating_temperatures, matched_diversity)
from seqadv.eval.seeds import aggregate_sweeps
from seqadv.eval.sweep import (SweepSettings, corpus_of, evaluate_at, load_generators, model_paths, real_language_model,
                               reverse_lm_of)

tiny_run = test_evaluate.tiny_run  # the toy SeqGAN run of test_evaluate.py, a fixture here too

STEPS = 100  # enough for 500 poems to beat their unigram statistics by a clear margin, 2 s on one core


@pytest.fixture(scope="module")
def poems():
    return load_corpus("poems", max_train=500, max_test=200)


def settings(data, **changes):
    return {"start_token": data.start_token, "eos_token": data.eos_token, "pad_token": data.pad_token,
            "steps": STEPS, **changes}


@pytest.fixture(scope="module")
def real_lm(poems):
    return train_language_model(poems.train, poems.vocab_size, seed=0, **settings(poems))


def test_the_training_data_covers_the_test_split_better_than_its_unigram_samples(poems, real_lm):
    # as many sequences drawn token by token from the training split's unigram distribution
    counts = torch.bincount(poems.train.flatten(), minlength=poems.vocab_size).float()
    unigram = torch.multinomial(counts / counts.sum(), poems.train.numel(), replacement=True,
                                generator=torch.Generator().manual_seed(0)).view_as(poems.train)
    real = reverse_lm_score(poems.train, poems.test, poems.vocab_size, seed=0, **settings(poems))
    shuffled = reverse_lm_score(unigram, poems.test, poems.vocab_size, seed=0, **settings(poems))
    # the reverse LM of the training data is the LM score's language model, trained again from the same seed
    assert real == nll(real_lm, poems.test, eos_token=poems.eos_token, pad_token=poems.pad_token)
    # measured 6.42 against 7.13 nats: a unigram model's samples teach nothing of the order of characters
    assert real < shuffled - 0.4
    assert shuffled < math.log(poems.vocab_size)  # but they do teach the characters' frequencies


def test_real_text_scores_better_than_random_tokens_under_the_real_language_model(poems, real_lm):
    uniform = torch.randint(0, poems.vocab_size, poems.test.shape, generator=torch.Generator().manual_seed(0))
    real = lm_score(poems.test, real_lm, poems.eos_token, poems.pad_token)
    random = lm_score(uniform, real_lm, poems.eos_token, poems.pad_token)
    assert real < math.log(poems.vocab_size) - 1.0  # measured 6.42 nats against log V = 7.58
    # uniform tokens cost at least log V under any model (Gibbs' inequality), plus how far it is from uniform
    assert random > math.log(poems.vocab_size) + 2.0  # measured 11.7


def test_equal_seeds_train_bitwise_equal_language_models_and_different_seeds_do_not(poems):
    rng_state = torch.get_rng_state()
    few = settings(poems, steps=20)
    a, b, c = (train_language_model(poems.train, poems.vocab_size, seed=s, **few) for s in (3, 3, 4))
    torch.testing.assert_close(a.state_dict(), b.state_dict(), rtol=0, atol=0)
    assert not torch.equal(a.head.weight, c.head.weight)
    assert not a.training  # returned in eval mode
    torch.testing.assert_close(torch.get_rng_state(), rng_state, rtol=0, atol=0)  # the caller's draws go on as they were
    scores = [reverse_lm_score(poems.train[:200], poems.test, poems.vocab_size, seed=s, **few) for s in (3, 3, 4)]
    assert scores[0] == scores[1] and scores[0] != scores[2]


def test_padding_after_every_sequence_ends_changes_nothing():
    # ids: 0 pad, 1 start, 2 end; the end and padding after sequences of 1 to 6 tokens
    gen = torch.Generator().manual_seed(0)
    data = torch.zeros(40, 8, dtype=torch.long)
    for row in data:
        n = int(torch.randint(1, 7, (1,), generator=gen))
        row[:n] = torch.randint(3, 12, (n,), generator=gen)
        row[n] = 2
    longer = torch.cat([data, torch.zeros(40, 5, dtype=torch.long)], dim=1)
    kw = dict(start_token=1, eos_token=2, pad_token=0, steps=10, batch_size=16, seed=0)
    torch.testing.assert_close(train_language_model(longer, 12, **kw).state_dict(),
                               train_language_model(data, 12, **kw).state_dict(), rtol=0, atol=0)


def test_matched_diversity_in_the_lm_plane_prefers_the_lower_lm_score_on_the_cooling_branch():
    # a at T=1: reverse 3.0, LM 4.0; b's curve on T <= 1 at reverse 3.0 is 4.5 -> a is better (lower is
    # better here). b's T=1.3 point lies past the fold (worse on both axes than its T=1): with it the
    # curve would read 7.67 there. Points without a reverse-LM score (a's T=0.8) are left out.
    curves = {"a": [{"temperature": 0.8, "lm_score": 3.0}, {"temperature": 1.0, "lm_score": 4.0, "reverse_lm_score": 3.0}],
              "b": [{"temperature": 0.8, "lm_score": 4.0, "reverse_lm_score": 4.0},
                    {"temperature": 1.0, "lm_score": 5.0, "reverse_lm_score": 2.0},
                    {"temperature": 1.3, "lm_score": 9.0, "reverse_lm_score": 3.5}]}
    lines = matched_diversity(curves, "reverse_lm_score", "lm_score")
    assert lines == ["at a's reverse_lm_score at T=1 (3.0000): a lm_score 4.0000, b's curve 4.5000 -> a is better at "
                     "matched diversity",
                     "b at T=1 (reverse_lm_score 2.0000) lies outside a's sweep"]


def test_advantages_along_a_curve_use_the_cooling_branch_of_both_curves_and_only_points_inside_the_reference():
    # b's curve on T <= 1 runs from (reverse 2.0, LM 5.0) to (4.0, 4.0). a's points: T=0.8 at reverse 5.0 lies
    # outside it; T=0.9 at 3.5 against 4.25 (a's 3.5: 0.75 better); T=1 at 3.0 against 4.5 (a's 4.0: 0.5
    # better); T=1.3 is past the fold (worse on both axes than a's T=1) and left out even though its
    # reverse-LM score lies inside b's
    curves = {"a": [{"temperature": 0.8, "lm_score": 3.0, "reverse_lm_score": 5.0},
                    {"temperature": 0.9, "lm_score": 3.5, "reverse_lm_score": 3.5},
                    {"temperature": 1.0, "lm_score": 4.0, "reverse_lm_score": 3.0},
                    {"temperature": 1.3, "lm_score": 9.0, "reverse_lm_score": 3.2}],
              "b": [{"temperature": 0.8, "lm_score": 4.0, "reverse_lm_score": 4.0},
                    {"temperature": 1.0, "lm_score": 5.0, "reverse_lm_score": 2.0},
                    {"temperature": 1.3, "lm_score": 9.0, "reverse_lm_score": 3.5}]}
    along = curve_advantages(curves["a"], curves["b"], "reverse_lm_score", "lm_score")
    assert list(along) == [0.9, 1.0]
    torch.testing.assert_close(list(along.values()), [[0.75], [0.5]])
    # the other way round: b at T=1 (reverse 2.0) lies outside a's branch (3.0 to 5.0); b at 0.8 (4.0) against
    # a's 3.5 - 0.5 / 3 there (between its T=0.9 and T=0.8 points): b is 2/3 worse
    torch.testing.assert_close(curve_advantages(curves["b"], curves["a"], "reverse_lm_score", "lm_score"), {0.8: [-2 / 3]})


def test_a_curve_that_does_not_fold_keeps_its_hot_branch_and_stops_at_the_fold():
    # MLE's T=1.2 covers more than its T=1 (reverse 4.2 against 4.3) at a worse LM score: part of the
    # trade-off, as on coco-texygen. A GAN at reverse 4.28 lies between them: MLE's curve there is
    # 3.6 + 0.2 * (4.0 - 3.6) = 3.68, the GAN's 3.46 is 0.22 better. On the cooling branch alone it
    # would lie outside the curve. T=1.4 is worse on both axes than T=1: the fold, left out with what
    # follows it (between T=1.4 and 1.6 the curve would pass 4.28 again).
    mle = [{"temperature": 0.8, "lm_score": 3.0, "reverse_lm_score": 4.8},
           {"temperature": 1.0, "lm_score": 3.6, "reverse_lm_score": 4.3},
           {"temperature": 1.2, "lm_score": 4.0, "reverse_lm_score": 4.2},
           {"temperature": 1.4, "lm_score": 5.0, "reverse_lm_score": 4.4},
           {"temperature": 1.6, "lm_score": 6.0, "reverse_lm_score": 4.1}]
    gan = {"temperature": 1.0, "lm_score": 3.46, "reverse_lm_score": 4.28}
    found = advantages_at(gan, mle, "reverse_lm_score", "lm_score")
    assert len(found) == 1
    torch.testing.assert_close(found[0][0], 3.68 - 3.46)
    assert advantages_at(gan, mle[:2] + mle[3:], "reverse_lm_score", "lm_score") == []  # T=1.4 onwards: folded


def test_a_point_outside_a_curve_is_dominated_only_by_points_no_worse_on_both_axes():
    point = {"temperature": 1.0, "bleu4": 0.1, "self_bleu4": 0.2}
    curve = [{"temperature": 0.8, "bleu4": 0.3, "self_bleu4": 0.3},  # better samples, less diverse: no
             {"temperature": 1.0, "bleu4": 0.2, "self_bleu4": 0.1},  # better on both: yes
             {"temperature": 1.2, "bleu4": 0.1, "self_bleu4": 0.2},  # the same point: no
             {"temperature": 1.3, "bleu4": 0.1, "self_bleu4": 0.15}]  # as good, more diverse: yes
    assert dominating_temperatures(point, curve, "self_bleu4", "bleu4") == [1.0, 1.3]
    # the LM plane (lower is better on both axes): dominance needs no curve, so a point past the fold
    # (T=1.3) counts as much as one on the cooling branch
    point = {"temperature": 1.0, "lm_score": 6.0, "reverse_lm_score": 4.5}
    curve = [{"temperature": 0.8, "lm_score": 4.0, "reverse_lm_score": 4.0},
             {"temperature": 1.0, "lm_score": 6.5, "reverse_lm_score": 2.0},
             {"temperature": 1.3, "lm_score": 5.0, "reverse_lm_score": 3.5}]
    assert dominating_temperatures(point, curve, "reverse_lm_score", "lm_score") == [0.8, 1.3]


def test_evaluate_writes_the_scores_at_the_chosen_temperatures_only(tiny_run, tmp_path):
    common = [tiny_run, "--temperatures", "0.8,1.0,1.25", "--samples", "40", "--self-bleu-samples", "20",
              "--lm-steps", "20"]
    result = script("evaluate.py", *common, "--reverse-lm-temperatures", "1.0,1.25,1.5", "--reverse-lm-samples", "100",
                    "--out", tmp_path / "on")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "reverse-LM score at T = 1, 1.25, from 100 samples" in result.stdout
    # matched diversity in the second plane too (the toy curves may not overlap)
    assert any("reverse_lm_score at T=1" in line or "T=1 (reverse_lm_score" in line for line in result.stdout.splitlines())
    models = json.loads((tmp_path / "on" / "eval.json").read_text())["models"]
    for curve in models.values():
        assert all(m["lm_score"] > 0 for m in curve)
        assert ["reverse_lm_score" in m for m in curve] == [False, True, True]
        assert all(m["reverse_lm_score"] > 0 for m in curve[1:])
    with open(tmp_path / "on" / "eval.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["reverse_lm_score"] == "" for r in rows] == [True, False, False] * 2  # an empty cell where not measured
    assert float(rows[2]["reverse_lm_score"]) == models["mle"][2]["reverse_lm_score"]

    result = script("evaluate.py", *common, "--no-lm-score", "--out", tmp_path / "off")
    assert result.returncode == 0, result.stderr[-2000:]
    off = json.loads((tmp_path / "off" / "eval.json").read_text())["models"]
    assert not any(k in m for curve in off.values() for m in curve for k in ("lm_score", "reverse_lm_score"))
    # the other metrics are those of the run with the scores: their samples are the same
    assert off["seqgan"][1]["bleu4"] == models["seqgan"][1]["bleu4"]
    # the second plane is a second panel beside the first
    assert imread(tmp_path / "on" / "eval.png").shape[1] > 1.8 * imread(tmp_path / "off" / "eval.png").shape[1]


def test_seeds_average_the_scores_where_every_seed_has_them():
    point = {"temperature": 1.0, "bleu4": 0.25, "lm_score": 4.0, "reverse_lm_score": 3.0}
    seeds = [{"mle": [{"temperature": 0.8, "bleu4": 0.5, "lm_score": 3.0}, point]},
             {"mle": [{"temperature": 0.8, "bleu4": 0.7, "lm_score": 5.0}, {**point, "reverse_lm_score": 5.0}]},
             {"mle": [{"temperature": 0.8, "bleu4": 0.6, "lm_score": 4.0}, {**point, "reverse_lm_score": 4.0}]}]
    curve = aggregate_sweeps(seeds)["mle"]
    assert set(curve[0]) == {"temperature", "bleu4", "lm_score"}
    assert curve[0]["lm_score"]["mean"] == pytest.approx(4.0) and curve[0]["lm_score"]["std"] == pytest.approx(1.0)
    assert curve[1]["reverse_lm_score"]["values"] == [3.0, 5.0, 4.0]
    # a seed evaluated without the scores: the others' mean would pass for all seeds', so there is none
    older = {"mle": [{"temperature": 0.8, "bleu4": 0.4}, {"temperature": 1.0, "bleu4": 0.35}]}
    curve = aggregate_sweeps([*seeds, older])["mle"]
    assert set(curve[0]) == set(curve[1]) == {"temperature", "bleu4"}
    assert curve[1]["bleu4"]["mean"] == pytest.approx((3 * 0.25 + 0.35) / 4)


def test_a_curve_that_is_not_monotonic_is_followed_along_the_sweep_and_crossed_more_than_once():
    # poems seed 88's seqgan/mle: reverse-LM 5.8293, 5.7192, 5.7448, 5.7170 at T = 0.7 .. 1.0 (the issue's
    # example). A GAN at reverse-LM 5.73 meets it three times: between T=0.7 and 0.8, 0.8 and 0.9, 0.9 and
    # 1.0. Sorting by the reverse-LM score instead would join T=1.0 (5.7170) to T=0.8 (5.7192): a segment
    # that is not on the sweep, and one made-up value.
    lm = [5.1, 5.3, 5.4, 5.6]
    curve = [{"temperature": t, "reverse_lm_score": r, "lm_score": q}
             for t, r, q in zip((0.7, 0.8, 0.9, 1.0), (5.8293, 5.7192, 5.7448, 5.7170), lm)]
    found = crossings(curve, "reverse_lm_score", "lm_score", 5.73)
    f0 = (5.73 - 5.8293) / (5.7192 - 5.8293)
    f1 = (5.73 - 5.7192) / (5.7448 - 5.7192)
    f2 = (5.73 - 5.7448) / (5.7170 - 5.7448)
    expected = [(0.7 + 0.1 * f0, 5.1 + 0.2 * f0, 0.2 / (5.7192 - 5.8293)),
                (0.8 + 0.1 * f1, 5.3 + 0.1 * f1, 0.1 / (5.7448 - 5.7192)),
                (0.9 + 0.1 * f2, 5.4 + 0.2 * f2, 0.2 / (5.7170 - 5.7448))]
    torch.testing.assert_close([(c.temperature, c.quality, c.slope) for c in found], expected)
    # a GAN point with LM score 5.45 there: worse than the curve at the first two crossings, better at the
    # third, so the line gives all three and says it is ambiguous
    point = {"temperature": 1.0, "reverse_lm_score": 5.73, "lm_score": 5.45}
    advantages = [a for a, _ in advantages_at(point, curve, "reverse_lm_score", "lm_score")]
    torch.testing.assert_close(advantages, [q - 5.45 for _, q, _ in expected])
    assert advantages[0] < advantages[1] < 0 < advantages[2]
    lines = matched_diversity({"gan": [point], "mle": curve}, "reverse_lm_score", "lm_score")
    assert lines[0].startswith("at gan's reverse_lm_score at T=1 (5.7300): gan lm_score 5.4500, mle's curve passes it "
                               "3 times:") and lines[0].endswith("-> ambiguous: gan is better at 1 of 3")
    # between 5.7170 and 5.7192 the sweep passes once (between T=0.9 and 1.0)
    torch.testing.assert_close([c.temperature for c in crossings(curve, "reverse_lm_score", "lm_score", 5.718)],
                               [0.9 + 0.1 * (5.718 - 5.7448) / (5.7170 - 5.7448)])
    # a sweep point at exactly the diversity (T=0.9's 5.7448) is one crossing, not one per segment that meets
    # there; the segment from T=0.7 to 0.8 passes it too
    fa = (5.7448 - 5.8293) / (5.7192 - 5.8293)
    torch.testing.assert_close([(c.temperature, c.quality) for c in
                                crossings(curve, "reverse_lm_score", "lm_score", 5.7448)],
                               [(0.7 + 0.1 * fa, 5.1 + 0.2 * fa), (0.9, 5.4)])
    # outside every segment: none
    assert crossings(curve, "reverse_lm_score", "lm_score", 5.9) == []


def test_the_noise_of_an_advantage_adds_both_points_quality_noise_and_their_diversity_noise_through_the_slope():
    # advantage = q_ref(x_gan) - q_gan: each quality carries 0.01; each diversity 0.02, which moves the
    # reference's quality by slope 3 times it. Var = 2 * 0.01^2 + 2 * (3 * 0.02)^2
    torch.testing.assert_close(advantage_noise(Crossing(1.0, 5.0, 3.0), 0.01, 0.02), (2e-4 + 2 * 0.06 ** 2) ** 0.5)
    torch.testing.assert_close(advantage_noise(Crossing(1.0, 5.0, -3.0), 0.01, 0.02), (2e-4 + 2 * 0.06 ** 2) ** 0.5)
    assert advantage_noise(Crossing(1.0, 5.0, float("inf")), 0.01, 0.02) == float("inf")


def test_lm_seeds_average_that_many_language_models_each_on_its_own_samples(tiny_run):
    paths = model_paths((str(tiny_run),))
    meta, generators = load_generators(paths, torch.device("cpu"))
    data, g = corpus_of(meta, None), generators[0]
    one = SweepSettings(lm_steps=5, reverse_lm_samples=60, samples=40, seed=3)
    two = SweepSettings(lm_steps=5, reverse_lm_samples=60, samples=40, seed=3, lm_seeds=2)
    draw = lambda n, s: g.sample(n, data.length, temperature=1.0, generator=torch.Generator().manual_seed(s))  # noqa: E731
    kw = dict(start_token=data.start_token, eos_token=data.eos_token, pad_token=data.pad_token, steps=5)
    # reverse-LM: the i-th score from samples and a language model both seeded 3 + i
    by_seed = [reverse_lm_score(draw(60, s), data.test, data.vocab_size, seed=s, **kw) for s in (3, 4)]
    assert by_seed[0] != by_seed[1]
    assert reverse_lm_of(g, data, 1.0, one) == by_seed[0]
    assert reverse_lm_of(g, data, 1.0, two) == pytest.approx(sum(by_seed) / 2, rel=1e-12)
    # LM score: the i-th real language model (seed 3 + i) on the i-th sample set
    real = real_language_model(data, two, torch.device("cpu"))
    expected = [train_language_model(data.train, data.vocab_size, seed=s, **kw) for s in (3, 4)]
    for lm, hand in zip(real, expected):
        torch.testing.assert_close(lm.state_dict(), hand.state_dict(), rtol=0, atol=0)
    point = evaluate_at(g, data, 1.0, two, None, set(), real)
    hand = [lm_score(draw(40, s), lm, data.eos_token, data.pad_token) for s, lm in zip((3, 4), expected)]
    assert point["lm_score"] == pytest.approx(sum(hand) / 2, rel=1e-12)
    assert len(real_language_model(data, one, torch.device("cpu"))) == 1


def test_lm_noise_measures_the_spread_over_lm_seeds_and_sample_sets(tiny_run, tmp_path):
    out = tmp_path / "noise.json"
    result = script("lm_noise.py", tiny_run / "mle.pt", "--steps", "3", "--repeats", "3", "--temperatures", "0.9,1.0",
                    "--samples", "30", "--reverse-lm-samples", "40", "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads(out.read_text())
    budget = record["budgets"]["3"]
    points = [budget["points"]["mle"][t] for t in ("0.9", "1")]
    for p in points:
        for score in ("lm_score", "reverse_lm_score"):
            assert len(p[score]["lm_seeds"]) == 3 and len(p[score]["sample_sets"]) == 3
            assert p[score]["lm_seeds"][0] == p[score]["sample_sets"][0]  # the pair at --seed is shared
    # pooled: the root of the mean variance over the points; a point's total adds the two parts
    for score in ("lm_score", "reverse_lm_score"):
        lm = math.sqrt(sum(statistics.variance(p[score]["lm_seeds"]) for p in points) / 2)
        samples = math.sqrt(sum(statistics.variance(p[score]["sample_sets"]) for p in points) / 2)
        noise = budget["noise"][score]
        assert noise["lm_seeds"] == pytest.approx(lm) and noise["sample_sets"] == pytest.approx(samples)
        assert noise["total"] == pytest.approx(math.hypot(lm, samples))
        assert noise["total_mean_of_3"] == pytest.approx(math.sqrt(lm ** 2 / 3 + samples ** 2))
        assert noise["total_mean_of_3_sample_sets"] == pytest.approx(math.hypot(lm, samples) / math.sqrt(3))
    assert record["chosen"]["cost"] <= 3.0 + 1e-9 and "chosen at most 3 times" in result.stdout
    # the table again from the JSON alone: the same choice
    again = script("lm_noise.py", "--summarize", out)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(out.read_text())["chosen"] == record["chosen"]
    bad = script("lm_noise.py", tiny_run / "mle.pt", "--repeats", "1", "--out", out)
    assert bad.returncode == 2 and "--repeats must be at least 2" in bad.stderr and "Traceback" not in bad.stderr
