"""Train the demo's hybrid run once per loss implementation on this machine and compare the runs.

The runs share the data, the seed and every setting except ``loss.impl``, so on a GPU the fused Triton
kernel and the PyTorch reference should reach the same final loss within bf16/fp32 rounding drift and
differ in throughput only. Everything is written under ``--work`` (inside the repository, as output paths
must be) and the comparison to ``--out/training.json``.

Usage (repository root; ``benchmarks/gpu_check.sh`` calls it):
    python -P benchmarks/gpu_training_check.py --out DIR [--impls triton,torch] [--max-steps 600]
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import yaml

from hybrid_repro.config import params_from_dict
from hybrid_repro.envinfo import environment_summary
from hybrid_repro.io import read_json, write_json
from hybrid_repro.stages.data import run_data
from hybrid_repro.stages.train import run_train
from hybrid_repro.stages.translate import run_translate

RUN = "hybrid"
SUMMARY_KEYS = ("steps", "final_train_loss", "best_val_loss", "best_step", "mean_triplets_per_s", "train_time_s",
                "wall_time_s", "loss_impl", "loss", "device", "precision")


def params_for(raw: dict, work: Path, impl: str, max_steps: int):
    """The committed params with ``loss.impl`` set and every output under ``work``."""
    raw = copy.deepcopy(raw)
    raw["data"]["out_dir"] = str(work / "data" / "source")
    # Every path the data, translate and train stages write goes under work: the defaults are the checkout's
    # own tracked outputs (metrics/translate.json), which a check must not overwrite.
    raw["translate"].update(out_dir=str(work / "data" / "translated"), cache_dir=str(work / "cache" / "translation"),
                            metrics_path=str(work / "metrics" / "translate.json"))
    raw["loss"]["impl"] = impl
    raw["train"].update(max_steps=max_steps, checkpoint_dir=str(work / impl / "checkpoints"),
                        model_dir=str(work / impl / "models"), metrics_dir=str(work / impl / "metrics"))
    return params_from_dict(raw, f"params.yaml with loss.impl={impl}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True, help="a folder inside the repository for the runs")
    parser.add_argument("--impls", default="triton,torch")
    parser.add_argument("--max-steps", type=int, default=600)
    args = parser.parse_args()
    raw = yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8"))
    runs = {}
    for index, impl in enumerate(args.impls.split(",")):
        params = params_for(raw, args.work, impl, args.max_steps)
        if index == 0:
            run_data(params)
            run_translate(params)
        run_train(params, RUN, progress_bar=False)
        summary = read_json(params.train.metrics_dir / f"{RUN}.json")
        runs[impl] = {key: summary[key] for key in SUMMARY_KEYS}
    result = {"environment": environment_summary(), "run": RUN, "max_steps": args.max_steps, "runs": runs}
    if len(runs) == 2:
        first, second = runs.values()
        result["final_train_loss_relative_difference"] = (
            abs(first["final_train_loss"] - second["final_train_loss"]) / abs(second["final_train_loss"]))
        result["throughput_ratio"] = first["mean_triplets_per_s"] / second["mean_triplets_per_s"]
    write_json(args.out / "training.json", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
