"""Checkpoint files: atomic layout, best weights reused by hard link, damage reported, RNG states restored."""

import itertools
import os
import random

import numpy as np
import pytest
import torch

from hybrid_repro.errors import HybridReproError
from hybrid_repro.training.checkpoint import (
    BEST_MODEL_FILE, MANIFEST_FILE, MODEL_FILE, STATE_FILE, capture_rng_state, read_checkpoint, restore_rng_state,
    seed_everything, write_checkpoint)
from killing import killed_during


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


# -- completeness: a checkpoint is used whole or not at all -------------------------------------------


def save_at(target, step: int, best_unchanged: bool) -> None:
    """A checkpoint of step ``step``: weights ``step``, best weights ``step + 0.5`` unless unchanged."""
    write_checkpoint(target, model={"w": torch.full((3,), float(step))}, best_model={"w": torch.full((3,), step + 0.5)},
                     best_unchanged=best_unchanged, state={"progress": {"step": step}})


@pytest.mark.parametrize("best_unchanged", [True, False], ids=["best-linked", "best-written"])
@pytest.mark.parametrize("previous", [2, None], ids=["replacing", "first-checkpoint"])
def test_kill_at_every_file_operation_of_a_checkpoint_write(tmp_path, previous, best_unchanged):
    """The next start finds the previous checkpoint or the new one, each whole, and no leftovers."""
    found = set()
    for operation in itertools.count(1):
        target = tmp_path / str(operation) / "run"
        if previous:
            save_at(target, previous, best_unchanged=False)
        if not killed_during(lambda: save_at(target, 4, best_unchanged), operation, extra=[(torch, "save")]):
            break
        checkpoint = read_checkpoint(target)
        step = checkpoint and checkpoint.state["progress"]["step"]
        found.add(step)
        if checkpoint is not None:
            best_step = previous if best_unchanged and previous else step  # a reused best comes from step 2
            assert torch.equal(checkpoint.model["w"], torch.full((3,), float(step)))
            assert torch.equal(checkpoint.best_model["w"], torch.full((3,), best_step + 0.5))
        assert not [p.name for p in target.parent.glob("*") if p.name != "run"]  # no leftovers
    assert found == {previous, 4} and operation > 10


def test_checkpoint_without_manifest_is_ignored_with_one_line(tmp_path, capsys):
    save_at(tmp_path / "run", 2, best_unchanged=False)
    (tmp_path / "run" / MANIFEST_FILE).unlink()
    assert read_checkpoint(tmp_path / "run") is None
    message = capsys.readouterr().err
    assert message.startswith("ignoring the incomplete checkpoint") and message.count("\n") == 1


def test_listed_file_missing_is_an_error(tmp_path):
    save_at(tmp_path / "run", 2, best_unchanged=False)
    (tmp_path / "run" / BEST_MODEL_FILE).unlink()
    with pytest.raises(HybridReproError, match=f"{BEST_MODEL_FILE} is missing; delete .*run to train afresh"):
        read_checkpoint(tmp_path / "run")


def test_checkpoint_directory_not_written_by_this_version_is_refused(tmp_path):
    """Earlier versions wrote no marker: the directory is not silently deleted and replaced."""
    old = tmp_path / "run"
    old.mkdir()
    torch.save({"w": torch.zeros(1)}, old / MODEL_FILE)
    torch.save({"format": 1}, old / STATE_FILE)
    with pytest.raises(HybridReproError, match="refusing to replace .*run: it holds no .*delete it if it is an old"):
        read_checkpoint(old)
    assert sorted(p.name for p in old.iterdir()) == [MODEL_FILE, STATE_FILE]
