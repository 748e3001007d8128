"""docs/adding-a-recipe.md, run as written: its recipe registers itself, trains, learns, and
is found by `seqadv.load`, the sweep's run directories and sample.py's kinds without any of
them being edited; a kill and a resume end bit for bit where the uninterrupted run ends."""
import math
import re
import types
from pathlib import Path

import pytest
import torch

import seqadv
from seqadv.core.registry import RECIPES
from seqadv.runtime.checkpoint import load_checkpoint, resolve_model_path

DOC = Path(__file__).resolve().parents[1] / "docs" / "adding-a-recipe.md"


@pytest.fixture(scope="module")
def recipe():
    """The page's first code block, as the module a user would write."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    module = types.ModuleType("sequence_reward")
    exec(compile(blocks[0], str(DOC), "exec"), module.__dict__)
    yield module
    RECIPES.pop("sequence-reward", None)  # the registry is the process's: leave it as it was


@pytest.fixture(scope="module")
def run(recipe, toy, tmp_path_factory):
    out = tmp_path_factory.mktemp("sr")
    config = recipe.SequenceRewardConfig(corpus=str(toy), preset="tiny", out=str(out), pretrain_epochs=20,
                                         adv_steps=30, eval_every=10)
    trainer = recipe.SequenceRewardTrainer(config)
    return trainer, trainer.train(), out


def test_the_recipe_registers_itself_by_being_written(recipe):
    entry = RECIPES["sequence-reward"]
    assert entry.trainer is recipe.SequenceRewardTrainer and entry.config is recipe.SequenceRewardConfig
    assert (entry.kind, entry.model_file, entry.sweep_files) == ("text", "sequence-reward.pt",
                                                                ("mle.pt", "sequence-reward.pt"))


def test_it_trains_with_the_equal_budget_baseline_and_d_prefers_real_text(run):
    trainer, results, _ = run
    assert set(results["models"]) == {"pretrained", "mle", "sequence-reward"}
    assert results["generator_updates"] == {"pretrain_epochs": 20, "mle_baseline": 30, "sequence-reward": 30}
    pretrained = results["models"]["pretrained"]["nll_test"]
    assert pretrained < 0.6 * math.log(trainer.data.vocab_size)  # uniform guessing: log V
    # D, trained only in the adversarial phase, scores held-out real text above fresh samples
    data, d = trainer.data, trainer.d.eval()
    fake = trainer.g.sample(len(data.test), data.length, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.sigmoid(d(data.test)).mean() > torch.sigmoid(d(fake)).mean() + 0.05


def test_load_sample_and_the_sweep_find_it_unedited(run):
    trainer, _, out = run
    assert resolve_model_path(out).name == "sequence-reward.pt"
    model, tokenizer = seqadv.load(out)
    for p, q in zip(model.parameters(), trainer.g.parameters()):
        assert torch.equal(p, q)
    assert tokenizer.decode(model.sample(1, trainer.data.length, generator=torch.Generator().manual_seed(0))[0])
    from seqadv.eval.sweep import model_paths

    assert [p.name for p in model_paths((str(out),))] == ["mle.pt", "sequence-reward.pt"]


def test_a_killed_run_resumes_bit_for_bit(recipe, toy, tmp_path):
    def config(out):
        return recipe.SequenceRewardConfig(corpus=str(toy), preset="tiny", out=str(out))

    whole = recipe.SequenceRewardTrainer(config(tmp_path / "whole"))
    whole.train()
    # a crash cannot be survived in-process: stop at the checkpoint instead (the loop's
    # Ctrl-C path), which leaves exactly what a kill before the next unit leaves
    stopped = recipe.SequenceRewardTrainer(config(tmp_path / "cut"))

    class StopOnce:
        def at_checkpoint(self, phase, unit):
            if (phase, unit) == ("adversarial", 2):
                stopped.stop.requested = True
            return None

    stopped.crash_at = StopOnce()
    with pytest.raises(seqadv.core.errors.Interrupted):
        stopped.train()
    resumed = recipe.SequenceRewardConfig(corpus=str(toy), preset="tiny", out=str(tmp_path / "cut"),
                                          resume=str(tmp_path / "cut"))
    recipe.SequenceRewardTrainer(resumed).train()
    a, b = load_checkpoint(tmp_path / "whole" / "checkpoint.pt"), load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    for name in ("generator", "discriminator", "mle_generator"):
        for key in a[name]:
            assert torch.equal(a[name][key], b[name][key]), (name, key)
