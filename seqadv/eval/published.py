"""Published COCO figures of the family, each with its source and how its protocol differs from
`coco-texygen`'s (seqadv.eval.family prints them beside ours). Only figures read in their
source are here; a row's `label` is the source's own name for the model; BLEU-2..5 and
Self-BLEU-2..5 in that order."""
from __future__ import annotations

OURS = ("ours: every model trained here at the `cpu` preset on all 10,000 training captions; 2,000 samples "
        "at T = 1 scored against all 10,000 test captions (nltk's sentence BLEU, smoothing method1, as Texygen); "
        "Self-BLEU over the same 2,000; the training captions' vocabulary (4,659 tokens); mean over seeds")

PUBLISHED: list[dict] = [
    {
        "source": "Texygen README 'BLEU on image COCO caption test dataset' and 'Mode Collapse (Self-BLEU)' "
                  "(geek-ai/Texygen@08c67a1; the same tables in the paper, Zhu et al., SIGIR 2018)",
        "protocol_key": "texygen",
        "protocol": "Texygen's own training (80 MLE epochs, 100 adversarial), one run, no MLE temperature curve, "
                    "a vocabulary of the training and test files together. Counted, as far as its 'training set' "
                    "row shows, as BLEU of every text against all 10,000 test captions and Self-BLEU among about "
                    "10,000 texts: the 10,000 training captions counted so give that row to within 0.002 here "
                    "(its Bleu class's default, is_fast=True, keeps only the first 500 references, which would "
                    "give BLEU-2 0.51, so the table was not made that way); how many samples of each model were "
                    "counted is not stated. Self-BLEU grows with the number of texts (the training captions: "
                    "Self-BLEU-2 0.80 among 2,000, 0.89 among 10,000), so ours as they count uses 10,000 samples; "
                    "nltk's sentence BLEU with smoothing method1, as ours",
        "rows": {
            "seqgan": {"label": "SeqGAN", "bleu": [0.745, 0.498, 0.294, 0.180],
                       "self_bleu": [0.950, 0.840, 0.670, 0.489]},
            "maligan": {"label": "MaliGAN", "bleu": [0.673, 0.432, 0.257, 0.159],
                        "self_bleu": [0.918, 0.781, 0.606, 0.437]},
            "rankgan": {"label": "RankGAN", "bleu": [0.743, 0.467, 0.264, 0.156],
                        "self_bleu": [0.959, 0.882, 0.762, 0.618]},
            "leakgan": {"label": "LeakGAN", "bleu": [0.746, 0.528, 0.355, 0.230],
                        "self_bleu": [0.966, 0.913, 0.848, 0.780]},
            "mle_best": {"label": "MLE", "bleu": [0.731, 0.497, 0.305, 0.189],
                         "self_bleu": [0.916, 0.769, 0.583, 0.408]},
            # docs/evaluation.md@26f2448's test-data table, its last column
            "training_set": {"label": "training set", "bleu": [0.740, 0.520, 0.337, 0.218],
                             "self_bleu": [0.892, 0.747, 0.573, 0.415]},
        },
    },
    {
        "source": "RelGAN paper, Table 2, COCO Image Captions (Nie et al., ICLR 2019; read in the double-blind "
                  "submission's text), beta_max 100 and 1000, mean ± std over 6 seeds",
        "protocol_key": "relgan",
        "protocol": "the paper's own training (its MLE, SeqGAN, RankGAN and LeakGAN rows are Texygen's, copied); "
                    "references all 10,000 test captions, but its code scores only the first 200 of the 10,000 "
                    "sentences it generates (weilinie/RelGAN utils/metrics/Bleu.py, sample_size 200; 100 after "
                    "Sep 2020), nltk's sentence BLEU with smoothing method1, as ours; vocabulary of 4,682 words "
                    "from both files; no Self-BLEU; no MLE temperature curve. Its budget is not our `cpu` preset's: "
                    "a memory of 2 heads of 256 (ours 64), 150 MLE epochs (ours 20), 2,000 adversarial steps (ours "
                    "200); its code has no end token, so every text runs to the full length, padded with a pad word "
                    "G writes (ours end at G's end token)",
        "rows": {
            "relgan": {"label": "RelGAN (100)", "bleu": [0.849, 0.687, 0.502, 0.331],
                       "bleu_std": [0.030, 0.047, 0.048, 0.044]},
            "relgan_1000": {"label": "RelGAN (1000)", "bleu": [0.814, 0.634, 0.455, 0.303],
                            "bleu_std": [0.012, 0.020, 0.023, 0.020]},
        },
    },
]

# what was looked for and not found, said beside the table rather than left out silently
NOT_FOUND = {
    "leakgan": "the LeakGAN paper (Guo et al., AAAI 2018) measures COCO on a split of its own, 80,000 training "
               "and 5,000 test captions drawn from COCO, not Texygen's files (as its text is quoted at "
               "ri.k117.org); its BLEU-2 there is 0.950 (as listed at sotaverified.org), and the rest of its "
               "table could not be read here; its code (CR-Gjx/LeakGAN, Image COCO/eval_bleu.py) scores 2,000 "
               "samples against the 5,000 test captions without smoothing (with nltk before 3.3 no smoothing "
               "scored a text with no matching n-gram too high; users re-running that code after nltk changed "
               "got BLEU-2..5 0.902/0.784/0.621/0.421, and its author put the drop down to nltk's update, "
               "CR-Gjx/LeakGAN issue 30). Not comparable with this protocol: eight times the training data",
    "dpgan": "DPGAN's paper has no COCO figures (reviews and dialogue)",
    "cot": "CoT's paper figures could not be read here (only its abstract and introduction), and its "
           "authors' code (desire2020/Cooperative-Training) reproduces only the synthetic oracle experiment",
    "scratchgan": "ScratchGAN's paper reports EMNLP 2017 News, not COCO",
}
