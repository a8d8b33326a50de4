"""Checkpoint files: atomic layout, best weights reused by hard link, damage reported, RNG states restored."""

import os
import random

import numpy as np
import pytest
import torch

from hybrid_repro.errors import HybridReproError
from hybrid_repro.training.checkpoint import (
    BEST_MODEL_FILE, MODEL_FILE, STATE_FILE, capture_rng_state, read_checkpoint, restore_rng_state,
    seed_everything, write_checkpoint)


def draws() -> tuple:
    return random.random(), float(np.random.rand()), float(np.random.randn()), torch.rand(3).tolist()


def test_rng_states_round_trip():
    seed_everything(7)
    np.random.randn()  # leave a cached Gaussian in numpy's state
    state = capture_rng_state()
    expected = draws()
    draws()
    restore_rng_state(state)
    assert draws() == expected


def test_round_trip_and_best_reuse(tmp_path):
    target = tmp_path / "run"
    model = {"w": torch.arange(4.0)}
    write_checkpoint(target, model=model, best_model={"w": torch.ones(4)}, best_unchanged=False,
                     state={"progress": {"step": 2}, "rng": capture_rng_state()})
    first_best = os.stat(target / BEST_MODEL_FILE).st_ino
    write_checkpoint(target, model={"w": torch.zeros(4)}, best_model={"w": torch.full((4,), 9.0)},
                     best_unchanged=True, state={"progress": {"step": 4}})
    # Reused, not rewritten: the same file under a new directory, holding the old best.
    assert os.stat(target / BEST_MODEL_FILE).st_ino == first_best
    checkpoint = read_checkpoint(target)
    assert checkpoint.state["progress"] == {"step": 4}
    assert torch.equal(checkpoint.model["w"], torch.zeros(4)) and torch.equal(checkpoint.best_model["w"], torch.ones(4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_no_best_before_the_first_validation(tmp_path):
    write_checkpoint(tmp_path / "run", model={"w": torch.zeros(1)}, best_model=None, best_unchanged=False, state={})
    assert read_checkpoint(tmp_path / "run").best_model is None
    assert read_checkpoint(tmp_path / "absent") is None


@pytest.mark.parametrize("damaged", [MODEL_FILE, STATE_FILE])
def test_damaged_files_are_errors(tmp_path, damaged):
    write_checkpoint(tmp_path / "run", model={"w": torch.zeros(1)}, best_model=None, best_unchanged=False, state={})
    path = tmp_path / "run" / damaged
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(HybridReproError, match="damaged"):
        read_checkpoint(tmp_path / "run")


def test_other_format_is_an_error(tmp_path):
    write_checkpoint(tmp_path / "run", model={"w": torch.zeros(1)}, best_model=None, best_unchanged=False,
                     state={"format": 99})
    with pytest.raises(HybridReproError, match="format 99"):
        read_checkpoint(tmp_path / "run")
