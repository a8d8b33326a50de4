"""Stage ``train@RUN``: fine-tune the dual encoder with the run's batch strategy.

Reads ``translate.out_dir/{train,val}.jsonl``; writes ``train.model_dir/RUN``,
``train.metrics_dir/RUN/`` and ``train.metrics_dir/RUN.json``, and keeps resumable checkpoints in
``train.checkpoint_dir/RUN`` (see :mod:`hybrid_repro.training.trainer`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import torch

import hybrid_repro.kernels
import hybrid_repro.modeling
import hybrid_repro.training
from hybrid_repro.config import Params
from hybrid_repro.data.translated_manifest import VerifiedTrainingData, verify_training_data
from hybrid_repro.errors import HybridReproError
from hybrid_repro.modeling.encoder import Encoder
from hybrid_repro.modeling.loss import InfoNCELoss
from hybrid_repro.training.sampler import ExampleMeta, HybridBatchSampler
from hybrid_repro.training.trainer import Trainer, resolve_precision
from hybrid_repro.training.triplets import (
    TrainingExamples, TripletLookup, corpus_texts, read_training_examples, validation_batches)

# Settings that change how a run is carried out or recorded, but not the weights it ends with:
# a checkpoint written under other values of these is still resumed. `num_threads` does change the
# weights (CPU kernels split reductions by thread), so the fingerprint holds the effective thread
# count on CPU instead of the setting: unset and set to the machine's default are the same trajectory.
TRAIN_KEYS_NOT_IN_FINGERPRINT = ("checkpoint_every", "log_every", "num_threads", "checkpoint_dir", "model_dir",
                                 "metrics_dir")


def run_train(params: Params, run_name: str, progress_bar: bool = True) -> None:
    """Train run ``run_name`` of ``params`` to the end, resuming from its checkpoint when one matches."""
    params.run(run_name)  # an unknown run is the first thing to report, before any file is read
    data_dir = params.translate.out_dir
    train_path, val_path = data_dir / "train.jsonl", data_dir / "val.jsonl"
    if not data_dir.is_dir():
        raise HybridReproError(f"training data {data_dir} is missing: run the translate stage first "
                               "(`dvc repro translate`, or `hybrid-repro translate`)")
    verified = verify_training_data(data_dir, params.translate.train_languages)
    if params.train.num_threads is not None:
        torch.set_num_threads(params.train.num_threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    with read_training_examples(train_path) as train_examples, read_training_examples(val_path) as val_examples:
        _fit(params, run_name, train_examples, val_examples, verified, device, progress_bar)


def _fit(params: Params, run_name: str, train_examples: TrainingExamples, val_examples: TrainingExamples,
         verified: VerifiedTrainingData, device: torch.device, progress_bar: bool) -> None:
    run = params.run(run_name)
    seed = params.run_seed(run_name)
    corpus = corpus_texts(train_examples) if params.model.source == "scratch" else None
    encoder = Encoder.build(params.model, corpus, seed)
    sampler = run_sampler(params, run_name, train_examples.metas)
    val_languages = params.train.val_languages or (verified.source_language,)
    # The global seed, not the run's: every run is validated on the same batches.
    val_batches = validation_batches(
        val_examples, batch_size=params.sampler.batch_size, mono_probability=params.train.val_mono_probability,
        languages=val_languages, dataset_mixing=params.sampler.dataset_mixing, seed=params.seed)
    loss_fn = InfoNCELoss.from_config(params.loss, device)
    precision = "bf16" if resolve_precision(params.train.precision, device) else "fp32"
    print(f"train {run_name}: strategy {run.strategy} (monolingual batch probability {run.mono_probability:g}), "
          f"seed {seed}, {len(train_examples)} training examples, {len(val_batches)} validation batches "
          f"({', '.join(val_languages)}); "
          f"device {device}, {torch.get_num_threads()} threads, precision {precision}")
    print(f"train {run_name}: {loss_fn.describe()}")

    trainer = Trainer(
        encoder=encoder, loss_fn=loss_fn, sampler=sampler, lookup=TripletLookup(train_examples),
        val_batches=val_batches, train_cfg=params.train, run_name=run_name, seed=seed, device=device,
        config_fingerprint=config_fingerprint(params, run_name, encoder, verified.sha256),
        progress_bar=progress_bar)
    summary = trainer.fit()
    print(f"train {run_name}: {summary['steps']} steps in {summary['wall_time_s']:.1f}s "
          f"({summary['mean_triplets_per_s']:.0f} triplets/s); best validation loss {summary['best_val_loss']:.4f} "
          f"at step {summary['best_step']}; model in {trainer.model_path}")


def run_sampler(params: Params, run_name: str, examples: Sequence[ExampleMeta]) -> HybridBatchSampler:
    """The batch sampler of run ``run_name`` over ``examples``: its strategy, seed and the shared sampler settings."""
    return HybridBatchSampler(examples, batch_size=params.sampler.batch_size,
                              mono_probability=params.run(run_name).mono_probability,
                              train_languages=params.translate.train_languages,
                              dataset_mixing=params.sampler.dataset_mixing, seed=params.run_seed(run_name))


def config_fingerprint(params: Params, run_name: str, encoder: Encoder, data_sha256: Sequence[str]) -> str:
    """sha256 of everything that decides a run's trajectory: settings, data, initial encoder and code.

    The code counts because DVC re-runs the stage after a code change while the checkpoints persist:
    resuming a finished run trained by older code would hand back the old model.
    """
    train_settings = params.train.model_dump(mode="json", exclude=set(TRAIN_KEYS_NOT_IN_FINGERPRINT))
    settings = {
        "run": params.run(run_name).model_dump(mode="json"),
        "seed": params.run_seed(run_name),
        "global_seed": params.seed,
        "train_languages": list(params.translate.train_languages),
        "model": params.model.model_dump(mode="json"),
        "loss": params.loss.model_dump(mode="json"),
        "sampler": params.sampler.model_dump(mode="json"),
        "train": train_settings,
        # CPU kernels split reductions by thread; a CUDA run's weights do not depend on the CPU thread count.
        "threads": None if torch.cuda.is_available() else torch.get_num_threads(),
        "data": list(data_sha256),
        "initial_encoder": encoder.fingerprint,
        "code": _source_digest(),
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def _source_digest() -> str:
    digest = hashlib.sha256()
    sources = [Path(__file__)]
    for package in (hybrid_repro.modeling, hybrid_repro.training, hybrid_repro.kernels):
        sources += sorted(Path(package.__file__).parent.glob("*.py"))
    for path in sources:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
