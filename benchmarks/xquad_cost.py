"""Cost of one me5-xquad run on this machine: training steps and MLQA-R encoding, and the run estimate.

The encoder is a BERT of multilingual-e5-small's shape (hidden 384, 12 layers, 12 heads, FFN
1536, 512 positions, vocabulary of the tokenizer given) with random weights: the cost of a step
does not depend on the weights. The tokenizer is the real me5 tokenizer (``--tokenizer``, a
checkpoint directory such as the one ``hybrid-repro base-model`` writes), so texts have their real
token lengths. The script

1. trains ``--steps`` steps of the profile's hybrid run through the real train stage
   (``run_train``: sampler, loss, AdamW, one validation pass and one checkpoint at the end) on the
   XQuAD training data in ``--data`` (the translate stage's output), and reads the stage's summary;
2. encodes a random sample of MLQA-R questions and candidate sentences with the profile's
   encoding settings and batch size;
3. writes ``--out`` (JSON): the measurements, the machine, and the estimate of one run of
   ``train.max_steps`` steps followed by the MLQA-R evaluation.

The machine is shared: other people's jobs can take most of its two cores, so the wall times
measured say as much about them as about the code. The script therefore also records the CPU time
the process used (all its threads) and its share of the cores (CPU time / (wall time x threads)),
the load average and the CPU time the hypervisor stole, and gives two estimates: as measured, and
with both cores to itself (wall time x share, i.e. CPU time / threads: exact if the two threads
scale perfectly, so a lower bound).

Usage (repository root, inside .venv; the data stages of the profile must have run):
    python benchmarks/xquad_cost.py --tokenizer pretrained/multilingual-e5-small --data data/translated \
        --mlqa data/lareqa/mlqa-r --out benchmarks/xquad_cost_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from transformers import AutoTokenizer, BertConfig, BertModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.eval_speed import machine  # noqa: E402
from benchmarks.measure_pipeline import cpu_ticks  # noqa: E402
from hybrid_repro.config import params_from_dict  # noqa: E402
from hybrid_repro.evaluation.lareqa import load_lareqa  # noqa: E402
from hybrid_repro.modeling.encoder import Encoder  # noqa: E402
from hybrid_repro.stages.train import run_train  # noqa: E402

PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "me5-xquad.yaml"
RUN = "hybrid-seed1"
ME5_SMALL = {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 1536,
             "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu"}


def random_me5_small(tokenizer_dir: Path, out_dir: Path) -> None:
    """A checkpoint directory: me5-small's shape with random weights, and the real tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    config = BertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **ME5_SMALL)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def profile_params(model_dir: Path, steps: int) -> dict:
    """The profile with the random model, ``steps`` steps and one validation and checkpoint at the end; its output
    paths stay relative (under the working directory)."""
    raw = yaml.safe_load(PROFILE.read_text())
    raw["model"]["path"] = str(model_dir)
    raw["train"].update({"max_steps": steps, "eval_every": steps, "checkpoint_every": steps})
    return raw


def core_share(cpu_s: float, wall_s: float) -> float:
    """The share of the machine's cores (torch's threads) that the process used while it ran."""
    return round(cpu_s / (wall_s * torch.get_num_threads()), 3)


def measure_training(raw: dict, work: Path) -> dict:
    params = params_from_dict(raw)
    steal0, total0 = cpu_ticks()
    started, cpu_started = time.perf_counter(), time.process_time()
    run_train(params, RUN, progress_bar=False)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    steal1, total1 = cpu_ticks()
    summary = json.loads((work / "metrics" / "train" / f"{RUN}.json").read_text())
    steps = summary["steps"]
    return {"run": RUN, "steps": steps, "batch_size": params.sampler.batch_size,
            "stage_wall_s": round(wall, 1), "train_time_s": summary["train_time_s"],
            "seconds_per_step": round(summary["train_time_s"] / steps, 2),
            "triplets_per_s": summary["mean_triplets_per_s"],
            "outside_steps_s": round(wall - summary["train_time_s"], 1),
            "process_cpu_s": round(cpu, 1), "core_share": core_share(cpu, wall),
            "cpu_steal_share": round((steal1 - steal0) / max(1, total1 - total0), 3),
            "load_average_1min_after": round(os.getloadavg()[0], 2)}


def measure_encoding(raw: dict, mlqa_dir: Path, sample: int) -> dict:
    params = params_from_dict(raw)
    encoder = Encoder.build(params.model, None, 0)
    dataset = load_lareqa(mlqa_dir)
    rng = random.Random(0)
    result = {"sample": sample, "batch_size": params.evaluate.batch_size,
              "mlqa_r_questions": len(dataset.questions.text), "mlqa_r_candidates": len(dataset.candidates.sentence)}
    for kind, texts in (("query", list(dataset.questions.text)), ("passage", list(dataset.candidates.sentence))):
        chosen = rng.sample(texts, sample)
        started, cpu_started = time.perf_counter(), time.process_time()
        encoder.encode(chosen, kind, params.evaluate.batch_size, progress=False)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        result[f"{kind}_texts_per_s"] = round(sample / wall, 1)
        result[f"{kind}_core_share"] = core_share(cpu, wall)
    return result


def token_lengths(tokenizer_dir: Path, data_dir: Path, mlqa_dir: Path, raw: dict) -> dict:
    """Token counts (with prefix and special tokens) of the training texts and MLQA-R texts, and the share cut
    by the profile's maximum lengths."""
    from hybrid_repro.training.triplets import read_training_examples

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    model = raw["model"]
    with read_training_examples(data_dir / "train.jsonl") as split:
        examples = list(split)
    dataset = load_lareqa(mlqa_dir)
    groups = {
        "train_queries": ("query", [f["query"] for e in examples for f in e.texts.values()]),
        "train_passages": ("passage", [f[k] for e in examples for f in e.texts.values() for k in ("positive", "negative")]),
        "mlqa_r_questions": ("query", list(dataset.questions.text)),
        "mlqa_r_candidates": ("passage", list(dataset.candidates.sentence)),
    }
    result = {}
    for name, (kind, texts) in groups.items():
        limit = model[f"max_{kind}_length"]
        lengths = np.array([len(ids) for ids in tokenizer([model[f"{kind}_prefix"] + t for t in texts])["input_ids"]])
        result[name] = {"texts": len(texts), "median": int(np.median(lengths)), "p95": int(np.percentile(lengths, 95)),
                        "max": int(lengths.max()), "limit": limit, "share_cut": round(float((lengths > limit).mean()), 4)}
    return result


def estimate(training: dict, encoding: dict, max_steps: int, eval_every: int, both_cores: bool) -> dict:
    """Seconds for one run: the steps, one validation-and-checkpoint pause (as measured, with the stage's start-up
    and final save) per ``eval_every`` steps, and encoding MLQA-R; ranking and metrics add tens of seconds
    (benchmarks/eval_speed_cpu.json: 19 s for the larger XQuAD-R). ``both_cores``: scaled by the measured core
    share (module docstring)."""
    train_share = training["core_share"] if both_cores else 1.0
    train_s = train_share * (training["seconds_per_step"] * max_steps
                             + training["outside_steps_s"] * max(1, max_steps // eval_every))
    encode_s = sum(encoding[f"mlqa_r_{what}"] / encoding[f"{kind}_texts_per_s"]
                   * (encoding[f"{kind}_core_share"] if both_cores else 1.0)
                   for what, kind in (("questions", "query"), ("candidates", "passage")))
    return {"max_steps": max_steps, "train_s": round(train_s), "mlqa_r_encoding_s": round(encode_s),
            "run_minutes": round((train_s + encode_s) / 60, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", type=Path, required=True, help="me5-small checkpoint directory (tokenizer)")
    parser.add_argument("--data", type=Path, default=Path("data/translated"))
    parser.add_argument("--mlqa", type=Path, default=Path("data/lareqa/mlqa-r"))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--sample", type=int, default=256, help="MLQA-R questions and candidates encoded each")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/xquad_cost_cpu.json"))
    args = parser.parse_args()
    profile = yaml.safe_load(PROFILE.read_text())
    tokenizer, data, mlqa, out = (path.resolve() for path in (args.tokenizer, args.data, args.mlqa, args.out))
    home = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="xquad-cost-") as scratch:
        work = Path(scratch)
        # The train stage writes its outputs under the working directory, where it also reads the training data.
        shutil.copytree(data, work / params_from_dict(profile).translate.out_dir)
        os.chdir(work)
        try:
            random_me5_small(tokenizer, work / "me5-small-random")
            raw = profile_params(work / "me5-small-random", args.steps)
            training = measure_training(raw, work)
            encoding = measure_encoding(raw, mlqa, args.sample)
        finally:
            os.chdir(home)
    report = {
        "benchmark": "one me5-xquad run on this machine: training steps (real train stage) and MLQA-R encoding",
        "model": "BERT of multilingual-e5-small's shape, random weights, real me5 tokenizer",
        "machine": {**machine(), "cpu_cores": torch.get_num_threads(),
                    "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
        "training": training,
        "encoding": encoding,
        "token_lengths": token_lengths(tokenizer, data, mlqa, raw),
        "estimate_as_measured": estimate(training, encoding, profile["train"]["max_steps"],
                                         profile["train"]["eval_every"], both_cores=False),
        "estimate_with_both_cores": estimate(training, encoding, profile["train"]["max_steps"],
                                             profile["train"]["eval_every"], both_cores=True),
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
