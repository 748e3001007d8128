#!/usr/bin/env python
"""The SeqGAN discriminator of the `cpu` preset over a Hugging Face-sized vocabulary: its
size (parameters, with Adam's two moments) and the time of one training step (batch 64,
25 tokens, the poems' length in a word-level tokenizer), at the built-in tokenizers'
vocabulary (5,000), GPT-2's (50,257) and Llama 2's (32,000). Medians of 20 steps after 3.

    python tools/bench_d_vocab.py
"""
import statistics
import time

import torch

from seqadv.models.discriminator import Discriminator
from seqadv.trainers.seqgan import SeqGANConfig
from seqadv.trainers.seqgan import discriminator_step

torch.manual_seed(0)
c = SeqGANConfig(preset="cpu")
print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; D: embedding {c.d_embedding_dim}, "
      f"{sum(c.d_num_filters)} filters of widths {c.d_filter_sizes}")
for vocab in (5000, 32000, 50257):
    d = Discriminator(vocab, c.d_embedding_dim, c.d_filter_sizes, c.d_num_filters, c.d_dropout)
    opt = torch.optim.Adam(d.parameters(), lr=c.d_lr)
    tokens = torch.randint(0, vocab, (64, 25))
    labels = torch.cat([torch.ones(32), torch.zeros(32)])
    times = []
    for i in range(23):
        t = time.perf_counter()
        discriminator_step(d, opt, tokens, labels, c.d_l2, "bench")
        if i >= 3:
            times.append(time.perf_counter() - t)
    params = sum(p.numel() for p in d.parameters())
    embedding = d.embedding.weight.numel()
    print(f"vocabulary {vocab:>6}: {params / 1e6:5.2f} M parameters ({embedding / 1e6:5.2f} M the embedding), "
          f"{params * 4 * 3 / 2**20:6.1f} MiB with Adam's moments; one D step {statistics.median(times) * 1e3:6.1f} ms")
