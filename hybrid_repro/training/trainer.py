"""Fine-tune the dual encoder on sampled triplet batches with InfoNCE, resumably.

One optimisation step: look up the batch's texts, encode the B queries and the 2B passages
``[positives; negatives]`` with the shared encoder (under bf16 autocast when the precision says
so), compute the loss in float32 with ``labels = arange(B)``, then AdamW with gradient clipping
and a linear warm-up / linear decay schedule. Weight decay skips biases and normalisation weights
(every one-dimensional parameter), as is usual for transformers.

Length: ``max_steps`` optimisation steps when set, otherwise ``epochs`` whole sampler epochs (their
batch counts are known in advance, so the schedule can decay to the last step).

Validation: every ``eval_every`` steps and after the last one, the same loss over fixed validation
batches (eval mode, no gradients). The weights with the lowest validation loss are kept and become
the final model; with ``patience``, training stops after that many validations without a new best.

Outputs of run ``R`` (``train`` section of params):

* ``model_dir/R/``: the best weights, via :meth:`Encoder.save`;
* ``metrics_dir/R/steps.csv`` (step, loss, lr, val_loss, triplets_per_s; val_loss only on
  validation steps) and ``metrics_dir/R/batches.jsonl`` (each step's realised batch composition);
* ``metrics_dir/R.json``: summary (final and best validation loss, steps, wall time, mean
  throughput, loss implementation, device, precision, and the realised batch composition of
  :func:`~hybrid_repro.training.composition.summarise_batches`);
* ``checkpoint_dir/R/``: see :mod:`hybrid_repro.training.checkpoint`, written every
  ``checkpoint_every`` steps and at the end.

Resuming: a checkpoint whose configuration fingerprint matches continues exactly where it stopped
(on CPU, to identical weights); one from other settings is ignored, and a finished one only
rewrites the outputs. A NaN or infinite loss (or gradient norm) stops training with an error that
names the step; the last checkpoint, all from before that step, stays in place.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from hybrid_repro.config import TrainConfig
from hybrid_repro.data.jsonl import write_jsonl
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import atomic_output_dir, prepare_output_dir, write_json
from hybrid_repro.modeling.encoder import Encoder
from hybrid_repro.modeling.loss import InfoNCELoss
from hybrid_repro.training.checkpoint import (
    BEST_MODEL_FILE, StateDict, capture_rng_state, read_checkpoint, restore_rng_state, seed_everything, write_checkpoint)
from hybrid_repro.training.composition import summarise_batches
from hybrid_repro.training.sampler import Batch, HybridBatchSampler
from hybrid_repro.training.schedule import warmup_linear_decay
from hybrid_repro.training.triplets import TripletTexts

STEP_COLUMNS = ("step", "loss", "lr", "val_loss", "triplets_per_s")


@dataclass
class Progress:
    """Everything about the run so far that is not a tensor; saved in every checkpoint."""

    step: int = 0
    best_val_loss: float | None = None
    best_step: int | None = None
    last_val_loss: float | None = None
    validations_without_improvement: int = 0
    stopped_early: bool = False
    finished: bool = False
    train_seconds: float = 0.0
    wall_seconds: float = 0.0
    triplets: int = 0
    steps_log: list[dict[str, Any]] = field(default_factory=list)
    batches_log: list[dict[str, Any]] = field(default_factory=list)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``train.precision`` on ``device``: bf16, or None for plain float32.

    ``auto`` uses bf16 only on CUDA devices that support it; on CPU bf16 autocast is slower than
    float32 on most processors, so only an explicit ``bf16`` turns it on there.
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise HybridReproError("train.precision = bf16, but this GPU does not support bfloat16; use fp32 or auto")
        return torch.bfloat16
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    raise HybridReproError(f"train.precision must be auto, fp32 or bf16, got {precision!r}")


class Trainer:
    """Trains ``encoder`` on the batches of ``sampler``; :meth:`fit` runs (or resumes) the whole run.

    ``lookup`` turns a sampled batch into texts; ``val_batches`` are the fixed validation batches.
    ``config_fingerprint`` identifies everything that shapes the trajectory (settings, data,
    tokenizer): a checkpoint with another fingerprint is not resumed.
    """

    def __init__(self, *, encoder: Encoder, loss_fn: InfoNCELoss, sampler: HybridBatchSampler,
                 lookup: Callable[[Batch], TripletTexts], val_batches: Sequence[TripletTexts],
                 train_cfg: TrainConfig, run_name: str, seed: int, device: torch.device,
                 config_fingerprint: str, progress_bar: bool = True):
        if not val_batches:
            raise HybridReproError("no validation batches: val.jsonl is too small for one batch of "
                                   "sampler.batch_size distinct questions; lower the batch size or add data")
        self.encoder = encoder.to(device)
        self.loss_fn = loss_fn
        self.sampler = sampler
        self.lookup = lookup
        self.val_batches = list(val_batches)
        self.cfg = train_cfg
        self.run_name = run_name
        self.seed = seed
        self.device = torch.device(device)
        self.config_fingerprint = config_fingerprint
        self.progress_bar = progress_bar
        self.autocast_dtype = resolve_precision(train_cfg.precision, self.device)
        if train_cfg.gradient_checkpointing:
            encoder.enable_gradient_checkpointing()
        self.total_steps = self._count_total_steps()
        self.optimizer = _adamw(encoder, train_cfg.lr, train_cfg.weight_decay)
        self.scheduler = warmup_linear_decay(self.optimizer, train_cfg.warmup_ratio, self.total_steps)
        self.progress = Progress()
        self.best_state: StateDict | None = None
        self._best_saved_step: int | None = None
        self._checkpoint_step: int | None = None

    # ------------------------------------------------------------------ paths
    @property
    def checkpoint_path(self) -> Path:
        return self.cfg.checkpoint_dir / self.run_name

    @property
    def model_path(self) -> Path:
        return self.cfg.model_dir / self.run_name

    @property
    def metrics_path(self) -> Path:
        return self.cfg.metrics_dir / self.run_name

    @property
    def summary_path(self) -> Path:
        return self.cfg.metrics_dir / f"{self.run_name}.json"

    # ------------------------------------------------------------------ the run
    def fit(self) -> dict[str, Any]:
        """Train to the end (or resume to it), write model, metrics and checkpoint; return the summary."""
        # Before any work: a foreign directory where an output goes is refused now, not after training.
        for path in (self.model_path, self.metrics_path):
            prepare_output_dir(path)
        if not self._resume():
            seed_everything(self.seed)
        if not self.progress.finished:
            self._train_to_end()
            self._save_checkpoint()
        return self._write_outputs()

    def _train_to_end(self) -> None:
        started = time.perf_counter()
        wall_before = self.progress.wall_seconds
        with tqdm(total=self.total_steps, initial=self.progress.step, desc=f"train {self.run_name}",
                  unit="step", disable=not self.progress_bar, dynamic_ncols=True) as bar:
            for batch in self._remaining_batches():
                row = self._train_step(batch)
                self._after_step(row, bar)
                self.progress.wall_seconds = wall_before + time.perf_counter() - started
                if self.progress.finished:
                    return
                if self.progress.step % self.cfg.checkpoint_every == 0:
                    self._save_checkpoint()

    def _remaining_batches(self) -> Iterator[Batch]:
        """Batches from the sampler's current position, epoch after epoch, without end."""
        # Every epoch has at least one batch: the sampler checks that it can fill one when built.
        while True:
            epoch = self.sampler.state_dict()["epoch"]
            yield from self.sampler
            self.sampler.set_epoch(epoch + 1)

    def _count_total_steps(self) -> int:
        if self.cfg.max_steps is not None:
            return self.cfg.max_steps
        # Last epoch first, so the sampler's one cached plan is epoch 0's, where training starts.
        return sum(self.sampler.num_batches(epoch) for epoch in reversed(range(self.cfg.epochs)))

    def _train_step(self, batch: Batch) -> dict[str, Any]:
        step = self.progress.step + 1
        started = time.perf_counter()
        texts = self.lookup(batch)
        self.encoder.train()
        lr = self.scheduler.get_last_lr()[0]
        loss = self._batch_loss(texts)
        value = loss.item()
        if not math.isfinite(value):
            self._fail_non_finite("loss", value, step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip is not None:
            norm = nn.utils.clip_grad_norm_(self.encoder.parameters(), self.cfg.grad_clip)
            if not torch.isfinite(norm):
                self._fail_non_finite("gradient norm", norm.item(), step)
        self.optimizer.step()
        self.scheduler.step()
        seconds = time.perf_counter() - started
        self.progress.step = step
        self.progress.train_seconds += seconds
        self.progress.triplets += len(texts)
        false_negatives = texts.false_negatives(self.loss_fn.positives_as_negatives)
        self.progress.batches_log.append({"step": step, **batch.composition(), "false_negatives_masked": false_negatives})
        return {"step": step, "loss": value, "lr": lr, "val_loss": None, "triplets_per_s": len(texts) / seconds}

    def _batch_loss(self, texts: TripletTexts) -> Tensor:
        autocast = (torch.autocast(self.device.type, dtype=self.autocast_dtype) if self.autocast_dtype
                    else contextlib.nullcontext())
        with autocast:
            queries = self.encoder.forward_texts(texts.queries, "query")
            passages = self.encoder.forward_texts(texts.positives + texts.negatives, "passage")
        labels = torch.arange(len(texts), device=self.device)
        query_ids, passage_ids = texts.loss_ids(self.device)
        return self.loss_fn(queries.float(), passages.float(), labels, query_ids, passage_ids)

    def _fail_non_finite(self, what: str, value: float, step: int) -> None:
        kept = (f"the last checkpoint (step {self._checkpoint_step}) in {self.checkpoint_path} is kept"
                if self._checkpoint_step is not None else "no checkpoint had been written yet")
        raise HybridReproError(
            f"run {self.run_name}: the training {what} became {value} at step {step}; {kept}. "
            "Lower train.lr, keep train.grad_clip set, or use train.precision fp32, then run the stage again")

    def _after_step(self, row: dict[str, Any], bar: tqdm) -> None:
        step = row["step"]
        if step % self.cfg.eval_every == 0 or step == self.total_steps:
            row["val_loss"] = self._validate(step)
        self.progress.steps_log.append(row)
        if step == self.total_steps or self.progress.stopped_early:
            self.progress.finished = True
        bar.update(1)
        if step % self.cfg.log_every == 0 or self.progress.finished:
            recent = self.progress.steps_log[-self.cfg.log_every:]
            postfix = {"loss": f"{sum(r['loss'] for r in recent) / len(recent):.4f}",
                       "triplets/s": f"{sum(r['triplets_per_s'] for r in recent) / len(recent):.0f}"}
            if self.progress.last_val_loss is not None:
                postfix["val"] = f"{self.progress.last_val_loss:.4f}"
            bar.set_postfix(postfix)

    # ------------------------------------------------------------------ validation and early stopping
    def validation_loss(self) -> float:
        """Mean loss over the validation batches, in eval mode and without gradients."""
        was_training = self.encoder.training
        self.encoder.eval()
        try:
            with torch.no_grad():
                losses = [self._batch_loss(texts).item() for texts in self.val_batches]
        finally:
            self.encoder.train(was_training)
        return sum(losses) / len(losses)

    def _validate(self, step: int) -> float:
        value = self.validation_loss()
        if not math.isfinite(value):
            self._fail_non_finite("validation loss", value, step)
        progress = self.progress
        progress.last_val_loss = value
        if progress.best_val_loss is None or value < progress.best_val_loss:
            progress.best_val_loss, progress.best_step = value, step
            progress.validations_without_improvement = 0
            self.best_state = {name: t.detach().to("cpu", copy=True) for name, t in self.encoder.model.state_dict().items()}
        else:
            progress.validations_without_improvement += 1
            if self.cfg.patience is not None and progress.validations_without_improvement >= self.cfg.patience:
                progress.stopped_early = True
                tqdm.write(f"train {self.run_name}: early stop at step {step}, no better validation loss for "
                           f"{self.cfg.patience} validations (best {progress.best_val_loss:.4f} at step {progress.best_step})")
        return value

    # ------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self) -> None:
        best_step = self.progress.best_step
        write_checkpoint(
            self.checkpoint_path, model=self.encoder.model.state_dict(), best_model=self.best_state,
            best_unchanged=best_step is not None and best_step == self._best_saved_step,
            state={
                "config_fingerprint": self.config_fingerprint,
                "progress": dataclasses.asdict(self.progress),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "sampler": self.sampler.state_dict(),
                "rng": capture_rng_state(),
            })
        self._best_saved_step = best_step
        self._checkpoint_step = self.progress.step

    def _resume(self) -> bool:
        """Load a matching checkpoint, if any; True when the run continues from one."""
        checkpoint = read_checkpoint(self.checkpoint_path)
        if checkpoint is None:
            return False
        if checkpoint.state.get("config_fingerprint") != self.config_fingerprint:
            tqdm.write(f"train {self.run_name}: ignoring the checkpoint in {self.checkpoint_path}, written with other "
                       "settings, data or code; training from the start")
            return False
        state = checkpoint.state
        if state["progress"]["finished"] and checkpoint.best_model is None:
            raise HybridReproError(f"run {self.run_name}: the checkpoint in {self.checkpoint_path} holds the finished "
                                   f"run but no {BEST_MODEL_FILE}; delete {self.checkpoint_path} to train afresh")
        self.encoder.model.load_state_dict(checkpoint.model)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        self.progress = Progress(**state["progress"])
        self.best_state = checkpoint.best_model
        self._best_saved_step = self.progress.best_step
        self._checkpoint_step = self.progress.step
        # Last, so that nothing above draws from the restored generators.
        restore_rng_state(state["rng"])
        if self.progress.finished:
            tqdm.write(f"train {self.run_name}: the checkpoint holds the finished run (step {self.progress.step}); "
                       "writing its outputs again")
        else:
            tqdm.write(f"train {self.run_name}: resuming from the checkpoint at step {self.progress.step} of "
                       f"{self.total_steps}")
        return True

    # ------------------------------------------------------------------ outputs
    def _write_outputs(self) -> dict[str, Any]:
        progress = self.progress
        self.encoder.model.load_state_dict(self.best_state)
        fingerprint = self.encoder.save(self.model_path)
        with atomic_output_dir(self.metrics_path) as tmp:
            (tmp / "steps.csv").write_text(_steps_csv(progress.steps_log), encoding="utf-8")
            write_jsonl(tmp / "batches.jsonl", progress.batches_log)
        summary = {
            "run": self.run_name,
            "steps": progress.step,
            "planned_steps": self.total_steps,
            "stopped_early": progress.stopped_early,
            "final_val_loss": progress.last_val_loss,
            "best_val_loss": progress.best_val_loss,
            "best_step": progress.best_step,
            "final_train_loss": progress.steps_log[-1]["loss"],
            "wall_time_s": round(progress.wall_seconds, 3),
            "train_time_s": round(progress.train_seconds, 3),
            "mean_triplets_per_s": round(progress.triplets / progress.train_seconds, 2) if progress.train_seconds else None,
            "loss_impl": self.loss_fn.impl_name,
            "loss": self.loss_fn.describe(),
            "device": str(self.device),
            "precision": "bf16" if self.autocast_dtype is not None else "fp32",
            "model_fingerprint": fingerprint,
            "realised_batches": summarise_batches(progress.batches_log),
        }
        write_json(self.summary_path, summary)
        return summary


def _adamw(encoder: Encoder, lr: float, weight_decay: float) -> torch.optim.AdamW:
    decayed = [p for p in encoder.parameters() if p.requires_grad and p.ndim > 1]
    not_decayed = [p for p in encoder.parameters() if p.requires_grad and p.ndim <= 1]
    return torch.optim.AdamW([{"params": decayed, "weight_decay": weight_decay},
                              {"params": not_decayed, "weight_decay": 0.0}], lr=lr)


def _steps_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=STEP_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row[key] is None else row[key] for key in STEP_COLUMNS})
    return buffer.getvalue()
