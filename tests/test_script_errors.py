"""Bad input to every script in scripts/: exit code 2 and exactly one line on stderr that
names the option or the file, never a traceback (docs/scale-out.md, "Bad input").

Each case calls the script's `main(argv)` in the test's process (nothing trains: every
error is found before the first step), and a few run the script as a user does.
"""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
ALL_SCRIPTS = sorted(p.stem for p in SCRIPTS.glob("*.py"))


def script(name: str):
    """A script as a module, loaded from its file: scripts/ is not put on the path, so a script
    that imported another (rather than the library) would fail here, and `evaluate` cannot
    shadow a package of that name."""
    module_name = f"scripts_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def call(name: str, argv: list[str]) -> int:
    module = script(name)
    try:
        if name == "bench_rollout":  # its main runs under the guard in its `__main__` block
            return module.guarded("bench_rollout.py", lambda: module.main(argv), argv)
        return module.main(argv)
    except SystemExit as exc:  # argparse's errors
        return exc.code


# --- what the cases are given, made in the test's folder -------------------------------------------

def under_a_file(folder: Path) -> str:
    """A path that cannot be created, even by root: below a regular file."""
    (folder / "plain").write_text("a file, not a directory\n")
    return str(folder / "plain" / "out")


def tiny_corpus(folder: Path) -> str:
    (folder / "three.txt").write_text("a b c\n", encoding="utf-8")
    return str(folder / "three.txt")


def corpus_of_72(folder: Path) -> str:
    """65 training lines: one batch of 64, but not once the validation part is held out."""
    (folder / "c72.txt").write_text("".join(f"w{i % 7} w{i % 5} w{i % 3}\n" for i in range(72)), encoding="utf-8")
    return str(folder / "c72.txt")


def few_items(folder: Path) -> str:
    (folder / "r.tsv").write_text("".join(f"{u} {i} 5\n" for u in range(1, 6) for i in range(1, 4)))
    return str(folder / "r.tsv")


def a_run(folder: Path) -> str:
    """A finished run's results.json, with its history of evaluations."""
    run = folder / "run"
    run.mkdir()
    history = {"seqgan": [{"g_updates": 0, "bleu2": 0.5, "nll_test": 3.0}], "mle": [{"g_updates": 0, "bleu2": 0.4}]}
    (run / "results.json").write_text(json.dumps({"recipe": "seqgan", "seed": 1, "history": history, "models": {}}))
    return str(run)


def a_broken_run(folder: Path) -> str:
    (folder / "broken").mkdir()
    (folder / "broken" / "results.json").write_text("{not json")
    return str(folder / "broken")


def a_run_without_history(folder: Path) -> str:
    (folder / "other").mkdir()
    (folder / "other" / "results.json").write_text(json.dumps({"models": {}}))
    return str(folder / "other")


def a_run_with_a_model(folder: Path) -> str:
    """A run directory as evaluate.py finds one: every file of one recipe's `sweep_files` (the
models are never loaded: --out is checked first)."""
    (folder / "models").mkdir()
    for name in ("mle.pt", "seqgan.pt"):
        (folder / "models" / name).write_bytes(b"")
    return str(folder / "models")


def a_folder(folder: Path) -> str:
    return str(folder)


# (script, argv (a function makes a file or folder in the test's folder), a fragment of the one line)
TINY = ["--preset", "tiny"]
REQUIRED = {"compare_recipes": ["--corpus", "poems"], "evaluate": ["run"], "history": ["run"], "sample": ["run"],
            "lm_noise": ["run", "--out", "noise.json"]}
CASES = [
    # an --out that cannot be created (the path is named, with its option)
    *[(s, [*TINY, "--out", under_a_file], "--out ") for s in
      ("train_mle", "train_seqgan", "train_scratchgan", "train_maskgan", "train_irgan", "train_maligan", "train_rankgan", "train_leakgan", "train_relgan", "train_cot", "train_dpgan")],
    ("evaluate", [a_run_with_a_model, "--out", under_a_file], "--out "),
    ("train_seeds", ["--out", under_a_file, "--", *TINY], "--out "),
    ("compare_recipes", ["--corpus", "poems", "--report", "--results", under_a_file], "--results "),
    ("compare_recipes", ["--corpus", "poems", "--seed", "1", "--runs", under_a_file, "--results", a_folder],
     "--runs "),
    ("bench_rollout", ["--json", under_a_file], "--json "),
    # unknown names
    ("train_scratchgan", [*TINY, "--corpus", "peoms"], "unknown corpus 'peoms'"),
    ("train_irgan", [*TINY, "--data", "nope"], "unknown corpus 'nope'"),
    ("history", [a_run, "--metrics", "bleu2,no_such_metric"], "--metrics no_such_metric: not in"),
    ("history", [a_run, "--models", "gan"], "--models gan: not in"),
    ("history", [a_run, "--timings", "--metrics", "bleu2"], "--timings shows the run's timings: not with --metrics"),
    ("history", [a_folder, "--timings"], "neither results.json nor checkpoint.pt there"),
    ("compare_recipes", ["--corpus", "peoms", "--report"], "--corpus: invalid choice: 'peoms'"),
    ("bench_bleu", ["--corpus", "peoms"], "unknown corpus 'peoms'"),
    ("evaluate", ["nowhere/run"], "nowhere/run: no such run directory"),
    ("sample", ["nowhere/run.pt"], "nowhere/run.pt: no such run directory or model file"),
    ("bench_rollout", ["--device", "gpu"], "--device gpu: not a device"),
    # too little data
    ("train_mle", [*TINY, "--corpus", tiny_corpus], "three.txt: only 1 non-empty line(s), too few for a corpus"),
    ("train_mle", [*TINY, "--corpus", corpus_of_72], "c72.txt: 62 training sequences once 3 are held out for validation"),
    ("train_seqgan", [*TINY, "--corpus", tiny_corpus], "three.txt: only 1 non-empty line(s)"),
    ("train_scratchgan", [*TINY, "--corpus", tiny_corpus], "three.txt: only 1 non-empty line(s)"),
    ("train_maskgan", [*TINY, "--corpus", tiny_corpus], "three.txt: only 1 non-empty line(s)"),
    ("train_irgan", [*TINY, "--data", few_items, "--seeds", "1"], "r.tsv: 3 items, too few to rank"),
    ("history", [a_broken_run], "results.json: not a readable results.json"),
    ("history", [a_run_without_history], "results.json: no history of evaluations in it"),
    # out of range, or options that contradict each other
    ("train_mle", [*TINY, "--validation-fraction", "1.5"], "--validation-fraction must be in (0, 1), got 1.5"),
    ("train_seqgan", [*TINY, "--seed", "-1"], "--seed must be in 0.."),
    ("train_seqgan", [*TINY, "--importance-weight", "sequence"], "--importance-weight: invalid choice: 'sequence'"),
    ("train_seqgan", [*TINY, "--importance-clip", "-1"], "--importance-clip must not be negative, got -1.0"),
    ("train_seqgan", [*TINY, "--importance-clip", "inf"], "--importance-clip must be finite (0: no clipping)"),
    ("train_seqgan", [*TINY, "--pg-baseline", "loo", "--batch-size", "1"],
     "--pg-baseline loo needs a --batch-size of at least 2, got 1"),
    ("train_maskgan", [*TINY, "--mask-rate", "0"], "--mask-rate must be in (0, 1]"),
    ("train_maligan", [*TINY, "--credit", "rollouts"], "--credit: invalid choice: 'rollouts'"),
    ("train_maligan", [*TINY, "--weights", "seqgan"], "--weights: invalid choice: 'seqgan'"),
    ("train_maligan", [*TINY, "--batch-size", "1"], "MaliGAN normalises its weights over the batch, so it needs"),
    ("train_maligan", [*TINY, "--pg-baseline", "loo"], "unrecognized arguments: --pg-baseline loo"),
    ("train_dpgan", [*TINY, "--num-rollouts", "8"], "unrecognized arguments: --num-rollouts 8"),
    ("train_dpgan", [*TINY, "--reward", "sentence"], "--reward: invalid choice: 'sentence'"),
    ("train_dpgan", [*TINY, "--discount", "1.5"], "--discount must be in [0, 1], got 1.5"),
    ("train_rankgan", [*TINY, "--rank-aggregate", "max"], "--rank-aggregate: invalid choice: 'max'"),
    ("train_rankgan", [*TINY, "--ref-size", "0"], "--ref-size must be positive"),
    ("train_rankgan", [*TINY, "--adv-batch-size", "1"], "RankGAN ranks G's samples against each other"),
    ("train_leakgan", [*TINY, "--generator", "transformer"], "LeakGAN trains its own generator"),
    ("train_leakgan", [*TINY, "--init-from", "runs/seqgan"], "LeakGAN's pretraining interleaves D rounds"),
    ("train_leakgan", [*TINY, "--pretrain-epochs", "5"], "--pretrain-epochs 5 does not split into --pretrain-cycles 2"),
    ("train_leakgan", [*TINY, "--rescale", "rank"], "--rescale: invalid choice: 'rank'"),
    ("train_leakgan", [*TINY, "--kl-coef", "0.1"], "--kl-coef: LeakGAN's manager and worker losses take no KL"),
    ("train_cot", [*TINY, "--generator", "transformer"], "CoT's mediator is an LSTM twice G's size"),
    ("train_cot", [*TINY, "--m-dropout", "1"], "--m-dropout must be below 1"),
    ("train_cot", [*TINY, "--iterations", "0"], "--iterations must be positive"),
    ("train_relgan", [*TINY, "--loss", "wgan-gp"], "--loss: invalid choice: 'wgan-gp'"),
    ("train_relgan", [*TINY, "--generator", "transformer"], "--generator transformer: choose one of relgan, lstm"),
    ("train_relgan", [*TINY, "--adv-steps", "6000"], "--adv-steps 6000 runs past the temperature schedule's"),
    ("train_relgan", [*TINY, "--num-rep", "3"], "--d-embedding-dim 8 does not split into --num-rep 3"),
    ("train_relgan", [*TINY, "--beta-max", "0"], "--beta-max must be positive"),
    ("train_scratchgan", [*TINY, "--loss-positions", "tokens"], "--loss-positions: invalid choice: 'tokens'"),
    ("train_scratchgan", [*TINY, "--adv-grad-clip", "-1"], "--adv-grad-clip must not be negative, got -1.0"),
    ("train_scratchgan", [*TINY, "--embeddings", "glove.txt"], "--embeddings starts ScratchGAN's generator and D"),
    ("train_scratchgan", [*TINY, "--generator", "scratchgan", "--embeddings", "nowhere/glove.txt"],
     "nowhere/glove.txt: No such file or directory"),
    ("train_scratchgan", [*TINY, "--init-from", "nowhere"], "--init-from nowhere: no checkpoint.pt there"),
    ("train_seqgan", [*TINY, "--init-from", "nowhere", "--pretrain-epochs", "3"],
     "--init-from nowhere brings its pretrained G: drop --pretrain-epochs"),
    ("train_irgan", [*TINY, "--mix", "1"], "--mix must be in [0, 1)"),
    ("evaluate", ["nowhere/run", "--temperatures", "0.5,0"], "--temperatures must be positive, got 0.5,0"),
    ("evaluate", ["nowhere/run", "--temperatures", "warm"], "--temperatures: expected comma-separated float"),
    ("evaluate", ["nowhere/run", "--samples", "1"], "--samples must be at least 2, got 1"),
    ("sample", ["nowhere/run.pt", "--temperature", "0"], "--temperature must be positive, got 0"),
    ("sample", ["nowhere/run.pt", "--num", "-3"], "--num must be at least 1, got -3"),
    ("sample", ["nowhere/run.pt", "--infill", "a _ c", "--user", "1"], "--infill (an infilling model) and --user"),
    ("compare_recipes", ["--corpus", "poems"], "nothing to do: give --seed S"),
    ("lm_noise", ["run", "--out", "noise.json", "--repeats", "1"], "--repeats must be at least 2"),
    ("lm_noise", ["run", "--out", "noise.json", "--steps", "300,0"], "--steps must be at least 1, got 300,0"),
    ("lm_noise", ["nowhere/run", "--out", "noise.json"], "nowhere/run: no such run directory"),
    ("lm_noise", ["--summarize", "nowhere.json"], "--summarize nowhere.json: no such file"),
    ("lm_noise", ["run"], "give the models and --out (or --summarize JSON)"),
    ("lm_noise", [a_run_with_a_model, "--out", under_a_file], "--out "),
    ("train_seeds", ["--seeds", "0"], "--seeds must be at least 1, got 0"),
    ("train_seeds", ["--eval-args=--samples 100"], "--eval-args is for evaluate.py's sweep: give --evaluate"),
    ("train_seeds", ["--out", a_folder, "--evaluate", "--eval-args=--samples 1", "--", *TINY],
     "--samples must be at least 2"),
    ("train_seeds", ["--out", a_folder, "--", *TINY, "--g-steps", "0"], "--g-steps must be positive"),
    ("train_seeds", ["--", "--seed", "3"], "--seed, --out and --resume are set per seed"),
    ("bench_bleu", ["--n", "0"], "--n must be at least 1, got 0"),
    ("bench_bleu", ["--samples", "-3"], "--samples must be at least 1, got -3"),
    ("bench_rollout", ["--batch", "0"], "--batch must be at least 1, got 0"),
    ("oracle_table", ["--collect", "nowhere"], "--collect nowhere: no such folder"),
    ("bench_rollout", ["--nproc", "1,two"], "--nproc: expected comma-separated int values"),
    ("bench_rollout", ["--eos", "--model", "transformer"], "--eos times the LSTM policy in one process"),
    # argparse's own: an unknown option, in every script
    *[(s, [*REQUIRED.get(s, []), "--no-such-option"], "unrecognized arguments: --no-such-option")
      for s in ALL_SCRIPTS],
]
if not torch.cuda.is_available():
    CASES.append(("sample", ["nowhere/run.pt", "--device", "cuda"], "--device cuda: CUDA is not available"))


@pytest.mark.parametrize("name, argv, fragment", CASES,
                         ids=[f"{c[0]}:{' '.join(a if isinstance(a, str) else a.__name__ for a in c[1])}"
                              for c in CASES])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys, name, argv, fragment):
    monkeypatch.chdir(tmp_path)  # nothing a case writes (runs/, results/) lands in the repository
    argv = [a(tmp_path) if callable(a) else a for a in argv]
    code = call(name, argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err, err[-3000:]
    assert len(lines) == 1 and fragment in lines[0], lines
    for given in argv:  # an unwritable directory is named with its path
        if given.endswith("plain/out"):
            assert given in lines[0], lines


def test_every_script_is_in_the_table():
    assert {c[0] for c in CASES if "--no-such-option" not in c[1]} == set(ALL_SCRIPTS)


@pytest.mark.parametrize("name, argv, fragment", [
    ("compare_recipes.py", ["--corpus", "poems", "--no-such-option"], "compare_recipes.py: error: unrecognized arguments: --no-such-option"),
    ("train_mle.py", ["--preset", "tiny", "--out", under_a_file], "train_mle.py: error: --out "),
    ("bench_bleu.py", ["--corpus", "peoms"], "bench_bleu.py: error: unknown corpus 'peoms'"),
])
def test_as_a_user_runs_it(tmp_path, name, argv, fragment):
    argv = [a(tmp_path) if callable(a) else a for a in argv]
    done = subprocess.run([sys.executable, str(SCRIPTS / name), *argv], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith(fragment), done.stderr[-3000:]


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(ValueError):
        script("history").main(["nowhere/run", "--debug"])


def test_a_reader_that_closes_the_pipe_ends_the_script_quietly():
    """`oracle_table.py | head -1`: the pipe closes under the script; no traceback, exit 141 as a shell tool."""
    read, write = os.pipe()
    os.close(read)  # closed before the script writes: its first print meets a closed pipe
    done = subprocess.run([sys.executable, str(SCRIPTS / "oracle_table.py")], stdout=write, stderr=subprocess.PIPE,
                          text=True, timeout=120)
    os.close(write)
    assert done.returncode == 141 and done.stderr == "", done.stderr[-3000:]
