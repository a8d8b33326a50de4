"""The trainer, driven through the train stage on a tiny dataset: resume, NaN handling, early stopping, outputs."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import torch
import yaml

from hybrid_repro.config import Params, params_from_dict
from hybrid_repro.data.translated_manifest import MANIFEST, manifest_files
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import write_json
from hybrid_repro.modeling.encoder import Encoder
from hybrid_repro.stages.train import run_train
from hybrid_repro.training.checkpoint import read_checkpoint, write_checkpoint
from hybrid_repro.training import trainer as trainer_module
from hybrid_repro.training.trainer import Trainer, resolve_precision
from killing import Killed, killed_before

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("in_basetemp")
LANGUAGES = ("xa", "xb", "xc")
SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo")
RUN = "hybrid"


def _word(index: int) -> str:
    return SYLLABLES[index % 8] + SYLLABLES[index // 8 % 8] + SYLLABLES[index // 64 % 8]


def _in_language(text: str, lang: str) -> str:
    """A deterministic 'translation': xb reverses every word, xc appends a suffix to it."""
    words = text.split()
    if lang == "xb":
        words = [word[::-1] for word in words]
    elif lang == "xc":
        words = [word + "x" for word in words]
    return " ".join(words)


def write_triplet_split(path: Path, count: int, offset: int = 0) -> None:
    """``count`` examples in the translated-data layout: two datasets, all three languages."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(offset, offset + count):
        entity, place, other = _word(i), _word(i + 100), _word(i + 200)
        source = {"query": f"where does {entity} live", "positive": f"{entity} lives in {place}",
                  "negative": f"{other} lives near {place}"}
        lines.append(json.dumps({
            "id": f"ex{i}", "question_id": f"q{i}", "dataset": "d1" if i % 3 else "d2",
            "positive_id": f"s{i}", "negative_id": f"n{i}", "texts": {lang: {k: _in_language(v, lang) for k, v in source.items()} for lang in LANGUAGES}}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def tiny_params(root: Path, **train) -> Params:
    """Repository params with tiny model, data under ``root`` (relative to the working directory, as
    params require) and the given ``train`` overrides."""
    return params_from_dict(tiny_raw(root, **train))


def tiny_raw(root: Path, **train) -> dict:
    """The mapping :func:`tiny_params` validates, e.g. to write as a params file."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    raw["translate"].update(out_dir=os.path.relpath(root / "data"), train_languages=list(LANGUAGES), low_resource={})
    raw["model"].update(max_query_length=16, max_passage_length=16,
                        scratch={"vocab_size": 120, "hidden_size": 16, "num_layers": 1, "num_heads": 2,
                                 "intermediate_size": 32})
    raw["sampler"]["batch_size"] = 4
    raw["runs"] = {"x-x-mono": {"strategy": "x-x-mono"}, "x-y": {"strategy": "x-y"},
                   RUN: {"strategy": "hybrid", "alpha": 0.5}}
    raw["train"] = {"lr": 0.003, "warmup_ratio": 0.2, "max_steps": 9, "eval_every": 4, "checkpoint_every": 3,
                    "log_every": 2, "checkpoint_dir": os.path.relpath(root / "checkpoints"),
                    "model_dir": os.path.relpath(root / "models"), "metrics_dir": os.path.relpath(root / "metrics"),
                    **train}
    return raw


def write_tiny_data(root: Path) -> None:
    write_triplet_split(root / "data" / "train.jsonl", 36)
    write_triplet_split(root / "data" / "val.jsonl", 12, offset=500)
    write_manifest(root / "data")


def write_manifest(data_dir: Path) -> None:
    """The manifest the train stage verifies the splits against, as the translate stage writes it."""
    eval_languages = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))["translate"]["eval_languages"]
    write_json(data_dir / MANIFEST, {"languages": {"train": list(LANGUAGES), "eval": eval_languages,
                                                   "source": LANGUAGES[0]},
                                     "files": manifest_files(data_dir)})


@pytest.fixture
def root(tmp_path) -> Path:
    write_tiny_data(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def deterministic():
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)


def train(root: Path, **train_overrides) -> Params:
    params = tiny_params(root, **train_overrides)
    run_train(params, RUN, progress_bar=False)
    return params


def final_weights(params: Params) -> dict[str, torch.Tensor]:
    return Encoder.load(params.train.model_dir / RUN).model.state_dict()


def steps(params: Params) -> list[dict[str, str]]:
    with (params.train.metrics_dir / RUN / "steps.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def assert_same_weights(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> None:
    assert left.keys() == right.keys()
    for name in left:
        assert torch.equal(left[name], right[name]), name


def fail_at_step(monkeypatch, step: int, error: Exception) -> None:
    original = Trainer._train_step

    def train_step(self, batch):
        if self.progress.step + 1 == step:
            raise error
        return original(self, batch)

    monkeypatch.setattr(Trainer, "_train_step", train_step)


def _tree_bytes(directory: Path) -> dict[str, bytes]:
    """File name -> bytes of every file in ``directory``."""
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_resuming_after_a_crash_gives_the_same_run(tmp_path, monkeypatch, capsys):
    # 9 steps cross an epoch boundary; checkpoints at 3 and 6; validations at 4, 8 and 9.
    write_tiny_data(tmp_path / "straight")
    straight = train(tmp_path / "straight")

    write_tiny_data(tmp_path / "crashed")
    with monkeypatch.context() as patch:
        fail_at_step(patch, 8, KeyboardInterrupt())
        with pytest.raises(KeyboardInterrupt):
            train(tmp_path / "crashed")
    assert read_checkpoint(tmp_path / "crashed" / "checkpoints" / RUN).state["progress"]["step"] == 6
    resumed = train(tmp_path / "crashed")
    assert "resuming from the checkpoint at step 6 of 9" in capsys.readouterr().out

    assert_same_weights(final_weights(straight), final_weights(resumed))
    last = read_checkpoint(straight.train.checkpoint_dir / RUN), read_checkpoint(resumed.train.checkpoint_dir / RUN)
    assert_same_weights(last[0].model, last[1].model)
    columns = ("step", "loss", "lr", "val_loss")
    assert [[row[c] for c in columns] for row in steps(straight)] == [[row[c] for c in columns] for row in steps(resumed)]
    batches = [(p.train.metrics_dir / RUN / "batches.jsonl").read_text() for p in (straight, resumed)]
    assert batches[0] == batches[1]
    assert _tree_bytes(straight.train.model_dir / RUN) == _tree_bytes(resumed.train.model_dir / RUN)


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_checkpoint(root, monkeypatch):
    original = Trainer._batch_loss

    def batch_loss(self, texts):
        loss = original(self, texts)
        return loss * float("nan") if self.encoder.training and self.progress.step + 1 == 5 else loss

    monkeypatch.setattr(Trainer, "_batch_loss", batch_loss)
    with pytest.raises(HybridReproError, match=r"loss became nan at step 5.*checkpoint \(step 3\)"):
        train(root)
    checkpoint = read_checkpoint(root / "checkpoints" / RUN)
    assert checkpoint.state["progress"]["step"] == 3
    assert all(torch.isfinite(t).all() for t in checkpoint.model.values() if t.is_floating_point())
    assert not (root / "models" / RUN).exists()


def test_early_stopping_keeps_the_weights_of_the_best_validation(root, monkeypatch):
    losses = iter([3.0, 2.0, 2.5, 2.7, 2.9])
    snapshots = {}

    def validation_loss(self):
        snapshots[self.progress.step] = {k: v.clone() for k, v in self.encoder.model.state_dict().items()}
        return next(losses)

    monkeypatch.setattr(Trainer, "validation_loss", validation_loss)
    params = train(root, max_steps=40, eval_every=2, patience=2)
    summary = json.loads((params.train.metrics_dir / f"{RUN}.json").read_text())
    assert (summary["steps"], summary["stopped_early"], summary["best_step"], summary["best_val_loss"]) == (8, True, 4, 2.0)
    assert summary["final_val_loss"] == 2.7
    assert_same_weights(final_weights(params), snapshots[4])


def test_outputs_record_every_step_batch_and_a_summary(root, capsys):
    params = train(root)
    rows = steps(params)
    assert [int(row["step"]) for row in rows] == list(range(1, 10))
    assert [row["step"] for row in rows if row["val_loss"]] == ["4", "8", "9"]
    assert all(float(row["triplets_per_s"]) > 0 and float(row["loss"]) > 0 for row in rows)
    lrs = [float(row["lr"]) for row in rows]
    assert lrs[1] == max(lrs) == pytest.approx(0.003) and lrs[0] < lrs[1] and lrs[-1] < lrs[2]
    batches = [json.loads(line) for line in (params.train.metrics_dir / RUN / "batches.jsonl").read_text().splitlines()]
    assert [b["step"] for b in batches] == list(range(1, 10))
    assert all(b["strategy"] in ("mono", "x-y") and sum(b["language_pairs"].values()) == 4 for b in batches)
    summary = json.loads((params.train.metrics_dir / f"{RUN}.json").read_text())
    assert summary["steps"] == 9 and summary["loss_impl"] == "torch" and summary["device"] == "cpu"
    assert summary["best_val_loss"] == min(float(row["val_loss"]) for row in rows if row["val_loss"])
    assert summary["mean_triplets_per_s"] > 0 and summary["wall_time_s"] >= summary["train_time_s"] > 0
    assert summary["model_fingerprint"] == Encoder.load(params.train.model_dir / RUN).fingerprint
    realised = summary["realised_batches"]
    assert realised["batches"] == 9
    assert realised["monolingual_share"] == round(sum(b["strategy"] == "mono" for b in batches) / 9, 4)
    # The tiny data's negatives are never answers, so nothing needs masking.
    assert realised["false_negatives_masked"] == {"pairs": 0, "batches": 0}
    out = capsys.readouterr().out
    assert "PyTorch reference" in out and "validation batches (xa)" in out


def test_without_max_steps_training_runs_every_planned_epoch(tmp_path):
    counts = {}
    for epochs in (1, 2):
        write_tiny_data(tmp_path / str(epochs))
        params = train(tmp_path / str(epochs), max_steps=None, epochs=epochs, eval_every=100, checkpoint_every=100)
        summary = json.loads((params.train.metrics_dir / f"{RUN}.json").read_text())
        batches = (params.train.metrics_dir / RUN / "batches.jsonl").read_text().splitlines()
        assert summary["planned_steps"] == summary["steps"] == len(batches)
        counts[epochs] = summary["steps"]
    assert counts[2] > counts[1] > 0


def test_finished_run_only_rewrites_its_outputs(root, monkeypatch, capsys):
    first = train(root)
    weights = final_weights(first)
    normal_finish = _tree_bytes(first.train.model_dir / RUN)
    (first.train.metrics_dir / f"{RUN}.json").unlink()

    def no_training(self, batch):
        raise AssertionError("a finished run must not train again")

    monkeypatch.setattr(Trainer, "_train_step", no_training)
    again = train(root)
    assert "holds the finished run (step 9)" in capsys.readouterr().out
    assert_same_weights(weights, final_weights(again))
    assert json.loads((again.train.metrics_dir / f"{RUN}.json").read_text())["steps"] == 9
    # The model directory's bytes must not depend on how the run ended (tokenizer.json included).
    rewritten = _tree_bytes(again.train.model_dir / RUN)
    assert sorted(rewritten) == sorted(normal_finish)
    for name, content in normal_finish.items():
        assert rewritten[name] == content, name


def test_checkpoint_of_other_settings_is_not_resumed(tmp_path, capsys):
    write_tiny_data(tmp_path / "a")
    train(tmp_path / "a", lr=0.01)
    capsys.readouterr()
    changed = train(tmp_path / "a", lr=0.002)
    assert "ignoring the checkpoint" in capsys.readouterr().out
    write_tiny_data(tmp_path / "b")
    fresh = train(tmp_path / "b", lr=0.002)
    assert_same_weights(final_weights(changed), final_weights(fresh))


def test_bf16_autocast_and_gradient_checkpointing_train_on_cpu(root):
    params = train(root, max_steps=3, precision="bf16", gradient_checkpointing=True)
    summary = json.loads((params.train.metrics_dir / f"{RUN}.json").read_text())
    assert summary["precision"] == "bf16"
    assert all(float(row["loss"]) > 0 for row in steps(params))


@pytest.mark.parametrize("precision, expected", [("auto", None), ("fp32", None), ("bf16", torch.bfloat16)])
def test_precision_on_cpu(precision, expected):
    assert resolve_precision(precision, torch.device("cpu")) == expected


def kill_checkpoint_write(patch, at_step: int, operation: str, occurrence: int) -> None:
    """Kill the process (simulated) inside the checkpoint write of step ``at_step``, just before the
    ``occurrence``-th call of file operation ``operation`` (see tests/killing.py)."""
    original = trainer_module.write_checkpoint

    def write_checkpoint(directory, **kwargs):
        if kwargs["state"]["progress"]["step"] != at_step:
            return original(directory, **kwargs)
        with killed_before(operation, occurrence, extra=[(torch, "save")]):
            original(directory, **kwargs)

    patch.setattr(trainer_module, "write_checkpoint", write_checkpoint)


@pytest.mark.parametrize(
    ("at_step", "operation", "occurrence", "resumed"),
    [
        (6, "save", 3, "resuming from the checkpoint at step 3 of 9"),
        (6, "replace", 4, "resuming from the checkpoint at step 6 of 9"),
        (9, "replace", 4, "holds the finished run (step 9)"),
    ],
    # Replacements in a checkpoint write: the manifest file, then tmp -> new, previous -> aside,
    # new -> in place, aside -> deleted. The 4th is where a kill lost whole runs before. Every other
    # kill point is covered, faster, by test_trainer_checkpoint.py.
    ids=["writing-files", "previous-set-aside", "final-checkpoint"],
)
def test_kill_during_a_checkpoint_write_resumes_instead_of_restarting(root, monkeypatch, capsys, at_step, operation,
                                                                      occurrence, resumed):
    with monkeypatch.context() as patch:
        kill_checkpoint_write(patch, at_step, operation, occurrence)
        with pytest.raises(Killed):
            train(root)
    capsys.readouterr()
    params = train(root)
    assert resumed in capsys.readouterr().out
    assert [int(row["step"]) for row in steps(params)] == list(range(1, 10))
    assert sorted(p.name for p in (root / "checkpoints").iterdir()) == [RUN]


def test_finished_checkpoint_without_best_weights_is_a_clear_error(root):
    train(root)
    directory = root / "checkpoints" / RUN
    checkpoint = read_checkpoint(directory)
    write_checkpoint(directory, model=checkpoint.model, best_model=None, best_unchanged=False, state=checkpoint.state)
    with pytest.raises(HybridReproError, match="holds the finished run but no best_model.pt; delete .* to train afresh"):
        train(root)
