"""Training checkpoints: one directory per run, replaced atomically at every save.

Layout of ``<checkpoint_dir>/<run>/``:

* ``model.pt``: the encoder's weights at the checkpointed step;
* ``best_model.pt``: the weights with the lowest validation loss so far (absent before the first
  validation). When they have not changed since the previous checkpoint the file is hard-linked
  from it rather than written again;
* ``trainer_state.pt``: everything else needed to continue as if never stopped (optimiser,
  scheduler, sampler position, random-number states, step counters, early-stopping state and the
  step log), as the trainer defines it;
* ``manifest.json``, written last: the format version and each file's size and sha256.

A checkpoint is used only when complete: every file the manifest lists is present with its
recorded size and sha256. One without a manifest is ignored with a one-line message (training
starts over); one whose files differ from it is an error; neither is ever half-used. The directory is replaced by :func:`~hybrid_repro.io.atomic_output_dir`, and
reading it first completes or rolls back a replacement a kill interrupted, so a kill at any moment
leaves the previous checkpoint or the new one.

Keeping last and best in one directory makes them consistent with each other: a kill between two
writes can never pair a "last" state with a "best" from another point of the run. All files load
with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import pickle
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import atomic_output_dir, prepare_output_dir, read_json, sha256_file, write_json

MODEL_FILE = "model.pt"
BEST_MODEL_FILE = "best_model.pt"
STATE_FILE = "trainer_state.pt"
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 2

StateDict = dict[str, Tensor]


@dataclass
class Checkpoint:
    model: StateDict
    best_model: StateDict | None
    state: dict[str, Any]


def write_checkpoint(directory: str | os.PathLike, *, model: StateDict, best_model: StateDict | None,
                     best_unchanged: bool, state: dict[str, Any]) -> None:
    """Replace ``directory`` with a checkpoint; ``best_unchanged`` reuses the previous ``best_model.pt``."""
    directory = Path(directory)
    previous_best = directory / BEST_MODEL_FILE
    with atomic_output_dir(directory) as tmp:
        torch.save(model, tmp / MODEL_FILE)
        if best_model is not None:
            if best_unchanged and previous_best.is_file():
                _link_or_copy(previous_best, tmp / BEST_MODEL_FILE)
            else:
                torch.save(best_model, tmp / BEST_MODEL_FILE)
        torch.save({"format": FORMAT_VERSION, **state}, tmp / STATE_FILE)
        files = {path.name: {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
                 for path in sorted(tmp.iterdir())}
        write_json(tmp / MANIFEST_FILE, {"format": FORMAT_VERSION, "files": files})


def read_checkpoint(directory: str | os.PathLike) -> Checkpoint | None:
    """The complete checkpoint in ``directory``, or None when there is none or it is incomplete (said on stderr).

    An interrupted replacement of ``directory`` is completed or rolled back first. A checkpoint whose
    files differ from its manifest, or written in another format, is an error rather than silently
    thrown away: atomic replacement never produces one, so something else damaged it.
    """
    directory = Path(directory)
    prepare_output_dir(directory)
    if not directory.is_dir():
        return None
    if not (directory / MANIFEST_FILE).is_file():
        print(f"ignoring the incomplete checkpoint in {directory}: it has no {MANIFEST_FILE}, the file written "
              "last; training from the start", file=sys.stderr)
        return None
    _verify_files(directory)
    state = _load(directory / STATE_FILE)
    if state.get("format") != FORMAT_VERSION:
        raise HybridReproError(f"checkpoint {directory} has format {state.get('format')!r}, this version reads "
                               f"{FORMAT_VERSION}; delete {directory} to train the run afresh")
    best_path = directory / BEST_MODEL_FILE
    return Checkpoint(model=_load(directory / MODEL_FILE),
                      best_model=_load(best_path) if best_path.is_file() else None, state=state)


def _verify_files(directory: Path) -> None:
    """Raise unless every file ``manifest.json`` lists is present with its recorded size and sha256."""
    manifest_path = directory / MANIFEST_FILE
    listed = read_json(manifest_path).get("files")
    if not isinstance(listed, dict) or not {MODEL_FILE, STATE_FILE} <= listed.keys():
        raise HybridReproError(f"{manifest_path} is damaged (it does not list {MODEL_FILE} and {STATE_FILE}); "
                               f"delete {directory} to train afresh")
    for name, expected in listed.items():
        path = directory / name
        if not path.is_file():
            raise HybridReproError(f"checkpoint file {path} is missing; delete {directory} to train afresh")
        if (not isinstance(expected, dict) or path.stat().st_size != expected.get("bytes")
                or sha256_file(path) != expected.get("sha256")):
            raise HybridReproError(f"checkpoint file {path} is damaged (its size or sha256 differs from "
                                   f"{MANIFEST_FILE}); delete {directory} to train afresh")


def _load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise HybridReproError(f"checkpoint file {path} is missing; delete {path.parent} to train afresh") from exc
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as exc:
        raise HybridReproError(f"checkpoint file {path} is damaged ({exc}); delete {path.parent} to train afresh") from exc


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def capture_rng_state() -> dict[str, Any]:
    """The states of every random-number generator training draws from (python, numpy, torch CPU/CUDA)."""
    numpy_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {"bit_generator": numpy_state["bit_generator"],
                  "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
                  "pos": numpy_state["state"]["pos"], "has_gauss": numpy_state["has_gauss"],
                  "gauss": numpy_state["gauss"]},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Undo :func:`capture_rng_state`: every generator continues where it was captured."""
    random.setstate(state["python"])
    numpy_state = state["numpy"]
    np.random.set_state({"bit_generator": numpy_state["bit_generator"],
                         "state": {"key": numpy_state["key"].numpy().astype(np.uint32), "pos": numpy_state["pos"]},
                         "has_gauss": numpy_state["has_gauss"], "gauss": numpy_state["gauss"]})
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) for a fresh start."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)

