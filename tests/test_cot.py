"""CoT: the mediator learns the balanced mixture of the data and G, and G moves toward it."""
import copy

import torch
import torch.nn.functional as F
from torch.testing import assert_close

from seqadv.models.generator import Generator
from seqadv.trainers.cot import CoTConfig, CoTTrainer, cooperative_g_step, mediator_step


def tiny_g(dropout=0.0, seed=0):
    torch.manual_seed(seed)
    return Generator(7, 4, 5, start_token=0, eos_token=5, pad_token=6, dropout=dropout)


def token_nll(model, batch):
    from seqadv.core.masks import tokens_mask

    mask = tokens_mask(batch, 5, 6)
    nll = F.cross_entropy(model.target_logits(batch).flatten(0, 1), batch.flatten(), reduction="none")
    return (nll * mask.flatten()).sum() / mask.sum()


def test_gs_loss_is_its_kl_to_the_mediator_and_vanishes_when_they_agree():
    g = tiny_g()
    samples = g.sample(16, 6, generator=torch.Generator().manual_seed(0))
    # a mediator with G's weights, its dropout on in training: the loss reads it without dropout
    m = tiny_g(dropout=0.5)
    m.load_state_dict(g.state_dict())
    m.train()
    opt = torch.optim.SGD(g.parameters(), lr=0.1)
    before = copy.deepcopy(g.state_dict())
    assert abs(cooperative_g_step(g, opt, m, samples, 0.0, "test")) < 1e-6
    for name, value in g.state_dict().items():
        assert_close(value, before[name])  # zero gradient: nothing moved
    assert m.training  # its mode restored
    # another mediator: the loss is sum_v pi_g (log pi_g - log pi_m), a mean over the text positions
    other = tiny_g(seed=1)
    with torch.no_grad():
        other.head.bias.normal_(0.0, 2.0)  # a mediator far from G
        log_g, log_m = g.target_logits(samples).log_softmax(-1), other.target_logits(samples).log_softmax(-1)
        kl = (log_g.exp() * (log_g - log_m)).sum(-1)
        ended = (samples == 5).cumsum(1) - (samples == 5).long() > 0
        expected = kl[~ended].mean().item()
    assert expected > 0.1
    assert abs(cooperative_g_step(g, opt, other, samples, 0.0, "test") - expected) < 1e-5


def test_the_mediators_loss_is_half_its_nll_on_real_plus_half_on_generated():
    m = tiny_g(seed=2)
    real = torch.tensor([[1, 2, 3, 5, 6, 6], [2, 3, 4, 1, 5, 6]])
    fake = tiny_g().sample(2, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = ((token_nll(m, real) + token_nll(m, fake)) / 2).item()
    assert abs(mediator_step(m, torch.optim.SGD(m.parameters(), lr=0.0), real, fake, 0.0, "test") - expected) < 1e-5


def test_the_mediator_models_the_mixture_and_cooperative_training_lowers_gs_nll(toy, tmp_path):
    """From scratch on the toy corpus: M, trained on real text and G's, ends modelling that
    mixture better than G does, and G's NLL of held-out text falls well below its start."""
    config = CoTConfig(corpus=str(toy), preset="tiny", out=str(tmp_path), iterations=150, eval_every=150)
    trainer = CoTTrainer(config)
    results = trainer.train()
    start, end = results["models"]["pretrained"]["nll_test"], results["models"]["cot"]["nll_test"]
    assert end < start - 0.8, (start, end)  # 3.21 to 2.02 when written
    gen = torch.Generator().manual_seed(4)
    real = trainer.data.test[:256]
    fake = trainer.g.sample(256, trainer.data.length, generator=gen)
    with torch.no_grad():
        trainer.d.eval()
        mixture = lambda model: ((token_nll_of(model, real, trainer) + token_nll_of(model, fake, trainer)) / 2)  # noqa: E731
        assert mixture(trainer.d) < mixture(trainer.g) - 0.1, (mixture(trainer.d), mixture(trainer.g))  # 2.01, 2.24


def token_nll_of(model, batch, trainer):
    from seqadv.core.masks import tokens_mask

    data = trainer.data
    mask = tokens_mask(batch, data.eos_token, data.pad_token)
    nll = F.cross_entropy(model.target_logits(batch).flatten(0, 1), batch.flatten(), reduction="none")
    return ((nll * mask.flatten()).sum() / mask.sum()).item()
