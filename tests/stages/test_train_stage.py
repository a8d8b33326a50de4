"""Stage `train@RUN`: input checks before any work, and what makes a checkpoint resumable."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import sha256_file
from hybrid_repro.modeling.encoder import Encoder
from hybrid_repro.stages.train import config_fingerprint, run_train

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("in_basetemp")
sys.path.insert(0, str(REPO / "tests" / "training"))
from test_trainer import tiny_params, write_manifest, write_tiny_data  # noqa: E402  (the tiny dataset shared with the trainer tests)


def test_unknown_run_lists_the_defined_runs(tmp_path):
    with pytest.raises(HybridReproError, match="unknown run 'nope'.*x-x-mono"):
        run_train(tiny_params(tmp_path), "nope")


@pytest.mark.parametrize("missing", ["train.jsonl", "val.jsonl"])
def test_missing_data_names_the_stage_to_run(tmp_path, missing):
    write_tiny_data(tmp_path)
    (tmp_path / "data" / missing).unlink()
    with pytest.raises(HybridReproError, match=f"{missing} is missing .*re-run the translate stage"):
        run_train(tiny_params(tmp_path), "x-y")
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "models").exists()


def test_corrupt_data_is_a_clear_error(tmp_path):
    write_tiny_data(tmp_path)
    (tmp_path / "data" / "train.jsonl").write_text('{"id": "a", "question_id": "q", "dataset": "d", "positive_id": "s", '
                                                     '"negative_id": "n", "texts": {}}\n')
    write_manifest(tmp_path / "data")  # recorded as written: the content check, not the checksum, must catch it
    with pytest.raises(HybridReproError, match="line 1: 'texts'"):
        run_train(tiny_params(tmp_path), "x-y")


def test_each_strategy_trains_and_reports_its_loss_and_runs(tmp_path, capsys):
    write_tiny_data(tmp_path)
    params = tiny_params(tmp_path, max_steps=2, eval_every=2)
    for run in ("x-x-mono", "x-y"):
        run_train(params, run, progress_bar=False)
        assert Encoder.load(params.train.model_dir / run).settings.pooling == params.model.pooling
    out = capsys.readouterr().out
    assert "strategy x-x-mono (monolingual batch probability 1)" in out
    assert "strategy x-y (monolingual batch probability 0)" in out
    assert "PyTorch reference (loss.impl = auto and the device is cpu" in out


def test_fingerprint_ignores_bookkeeping_but_not_optimisation(tmp_path):
    write_tiny_data(tmp_path)
    files = [tmp_path / "data" / "train.jsonl", tmp_path / "data" / "val.jsonl"]
    base = tiny_params(tmp_path)
    encoder = Encoder.build(base.model, ["where does kaka live"], seed=0)

    def fingerprint(**train) -> str:
        return config_fingerprint(tiny_params(tmp_path, **train), "x-y", encoder, [sha256_file(f) for f in files])

    assert fingerprint() == fingerprint(checkpoint_every=7, log_every=1, num_threads=1,
                                        metrics_dir="elsewhere")
    assert fingerprint() != fingerprint(lr=0.1)
    assert fingerprint() != config_fingerprint(base, "x-x-mono", encoder, [sha256_file(f) for f in files])
    before = fingerprint()
    files[0].write_text(files[0].read_text() + "\n")
    assert fingerprint() != before


def test_fingerprint_holds_the_effective_thread_count(tmp_path):
    """1 and 2 CPU threads give different weights, so a checkpoint must not be resumed under the other count."""
    write_tiny_data(tmp_path)
    files = [tmp_path / "data" / "train.jsonl", tmp_path / "data" / "val.jsonl"]
    params = tiny_params(tmp_path)
    encoder = Encoder.build(params.model, ["where does kaka live"], seed=0)
    before = torch.get_num_threads()
    try:
        by_threads = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            by_threads[threads] = config_fingerprint(params, "x-y", encoder, [sha256_file(f) for f in files])
    finally:
        torch.set_num_threads(before)
    assert by_threads[1] != by_threads[2]
