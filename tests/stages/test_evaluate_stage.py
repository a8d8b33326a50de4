"""Stage `evaluate@RUN` end to end on a tiny LAReQA-format dataset, with a bag-of-words encoder."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from hybrid_repro.config import Params, params_from_dict
from hybrid_repro.data.translated_manifest import MANIFEST, manifest_files
from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.download import PINNED
from hybrid_repro.evaluation.lareqa import load_lareqa
from hybrid_repro.evaluation.runfile import read_run_file
from hybrid_repro.evaluation.settings import evaluate_run
from hybrid_repro.io import sha256_file, write_json
from hybrid_repro.stages import evaluate as evaluate_stage
from hybrid_repro.stages.evaluate import run_evaluate, run_evaluate_base

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("in_basetemp")
sys.path.insert(0, str(REPO / "tests" / "evaluation"))
from test_encode import write_squad_file  # noqa: E402  (the LAReQA file writer shared by the evaluation tests)

sys.path.insert(0, str(REPO / "tests"))
from tiny_bert import tiny_local_bert  # noqa: E402

LANGUAGES = ("en", "de", "fr")
ENTITIES = ("zorbal", "quenti", "mirova", "taskel", "bronik", "velund")
FILLER = {"en": "the city of", "de": "die stadt von", "fr": "la ville de"}
ASK = {"en": "where is", "de": "wo ist", "fr": "ou est"}
DIM = 4096


@dataclasses.dataclass(frozen=True)
class BowSettings:
    max_query_length: int = 32
    max_passage_length: int = 64


class BagOfWordsEncoder:
    """Hashed, L2-normalised bag of words: texts sharing a rare word score high."""

    fingerprint = "bow-4096"
    settings = BowSettings()

    def __init__(self):
        self.calls = 0

    def encode(self, texts, kind, batch_size, progress=True):
        self.calls += 1
        out = np.zeros((len(texts), DIM), np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().replace("?", " ").replace(".", " ").split():
                out[row, int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little") % DIM] += 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def write_tiny_lareqa(directory: Path) -> None:
    """3 languages, 3 paragraphs of 2 sentences; each sentence names its own entity.

    18 candidates in all: fewer than the run files keep per query, so they hold full rankings.
    """
    directory.mkdir(parents=True)
    for lang in LANGUAGES:
        paragraphs = []
        for p in range(3):
            names = ENTITIES[2 * p : 2 * p + 2]
            sentences = [f"{name} {FILLER[lang]} {lang}word{p}." for name in names]
            questions = [(f"q{p}{s}", f"{ASK[lang]} {name}?", s) for s, name in enumerate(names)]
            paragraphs.append((sentences, questions))
        write_squad_file(directory / f"{lang}.json", lang, paragraphs)


def write_eval_manifest(translated: Path) -> None:
    """The manifest the translate stage would write for the files under ``translated``."""
    write_json(translated / MANIFEST, {"languages": {"train": ["qen"], "eval": list(LANGUAGES)},
                                       "files": manifest_files(translated)})


def stage_params(root: Path, datasets: tuple[str, ...] = ("synth-r",)) -> Params:
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    raw["translate"].update(out_dir=os.path.relpath(root / "translated"), eval_languages=list(LANGUAGES))
    raw.setdefault("train", {})["model_dir"] = os.path.relpath(root / "models")
    raw["evaluate"] = {**raw.get("evaluate", {}), "datasets": list(datasets),
                       "cache_dir": os.path.relpath(root / "cache"), "out_dir": os.path.relpath(root / "results")}
    return params_from_dict(raw)


@pytest.fixture()
def ready(tmp_path: Path, monkeypatch) -> tuple[Params, str, list[BagOfWordsEncoder]]:
    """Params, a run name with a model directory, and the encoders the stage loaded."""
    params = stage_params(tmp_path)
    run_name = next(iter(params.runs))
    write_tiny_lareqa(params.translate.out_dir / "eval" / "synth-r")
    write_eval_manifest(params.translate.out_dir)
    (params.train.model_dir / run_name).mkdir(parents=True)
    loaded: list[BagOfWordsEncoder] = []

    def load(model_dir: Path) -> BagOfWordsEncoder:
        assert model_dir == params.train.model_dir / run_name
        loaded.append(BagOfWordsEncoder())
        return loaded[-1]

    monkeypatch.setattr(evaluate_stage, "load_run_encoder", load)
    return params, run_name, loaded


def test_writes_metrics_per_query_heatmap_and_run_files(ready):
    params, run_name, loaded = ready
    run_evaluate(params, run_name)
    out = params.evaluate.out_dir / run_name / "synth-r"
    assert sorted(p.name for p in out.iterdir()) == ["cr_heatmap.png", "metrics.json", "per_query.parquet", "runs"]
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["dataset"] == "synth-r" and metrics["run"] == run_name
    assert metrics["model_fingerprint"] == "bow-4096"
    assert metrics["encoding"]["max_passage_length"] == 64 and metrics["encoding"]["candidate_text"] == "sentence"
    assert metrics["run_files"] == {"top_k": 20, "mo": "runs/mo.trec", "cr": "runs/cr.trec", "mul": "runs/mul.trec"}
    for setting in ("mo", "cr", "mul"):
        assert metrics["settings"][setting]["mean"]["map"] > 0.9, setting
    assert len(metrics["settings"]["cr"]["per_pair"]) == 6

    n_questions = 6 * len(LANGUAGES)
    table = pq.read_table(out / "per_query.parquet").to_pylist()
    assert len(table) == n_questions * (1 + (len(LANGUAGES) - 1) + 1)
    assert (out / "cr_heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    dataset = load_lareqa(params.translate.out_dir / "eval" / "synth-r", name="synth-r")
    runs = {setting: read_run_file(out / "runs" / f"{setting}.trec") for setting in ("mo", "cr", "mul")}
    for qid in dataset.questions.qid:
        own = qid.rsplit("_", 1)[1]
        assert {cid.split("_")[0] for cid in runs["mo"][qid]} == {own}
        assert {cid.split("_")[0] for cid in runs["cr"][qid]} == set(LANGUAGES) - {own}
        assert len(runs["mul"][qid]) == len(dataset.candidates)
    # the untruncated Mul. run file reproduces the stage's metrics through the run-file scorer
    rescored = evaluate_run(dataset, runs["mul"], "mul").to_metrics_json()["settings"]["mul"]["mean"]
    assert rescored == pytest.approx(metrics["settings"]["mul"]["mean"])


def test_second_run_reads_the_embedding_cache(ready):
    params, run_name, loaded = ready
    run_evaluate(params, run_name)
    first = (params.evaluate.out_dir / run_name / "synth-r" / "metrics.json").read_text(encoding="utf-8")
    run_evaluate(params, run_name)
    second = json.loads((params.evaluate.out_dir / run_name / "synth-r" / "metrics.json").read_text(encoding="utf-8"))
    assert loaded[0].calls > 0 and loaded[1].calls == 0
    assert second["embedding_cache_hits"] == {"query": True, "passage": True}
    assert second["settings"] == json.loads(first)["settings"]


def test_missing_model_directory_says_to_train(ready):
    params, run_name, _ = ready
    (params.train.model_dir / run_name).rmdir()
    with pytest.raises(HybridReproError, match=rf"hybrid-repro train --run {run_name}"):
        run_evaluate(params, run_name)
    assert not params.evaluate.out_dir.exists()


@pytest.mark.parametrize(
    ("dataset", "hint"),
    [("synth-r", "hybrid-repro translate"), ("xquad-r", r"fetch@xquad-r"), ("mlqa-r", r"fetch@mlqa-r")],
)
def test_missing_dataset_directory_names_the_stage_to_run(tmp_path: Path, monkeypatch, dataset: str, hint: str):
    monkeypatch.chdir(tmp_path)
    params = stage_params(tmp_path, datasets=(dataset,))
    run_name = next(iter(params.runs))
    (params.train.model_dir / run_name).mkdir(parents=True)
    with pytest.raises(HybridReproError, match=hint):
        run_evaluate(params, run_name)
    assert not params.evaluate.out_dir.exists()


def test_unknown_run_is_an_error(ready, tmp_path: Path):
    params, _, _ = ready
    with pytest.raises(HybridReproError, match="unknown run"):
        run_evaluate(params, "no-such-run")


def test_evaluate_base_scores_the_unchanged_encoder_exactly_as_a_run_holding_it(tmp_path: Path):
    """The report's zero-shot row: the pretrained encoder of params.model, unchanged, through the run's code path."""
    from hybrid_repro.modeling.encoder import Encoder

    params = stage_params(tmp_path)
    write_tiny_lareqa(params.translate.out_dir / "eval" / "synth-r")
    write_eval_manifest(params.translate.out_dir)
    dataset = load_lareqa(params.translate.out_dir / "eval" / "synth-r", name="synth-r")
    bert = tiny_local_bert(tmp_path / "pretrained", [*dataset.questions.text, *dataset.candidates.sentence])
    model = params.model.model_copy(update={"source": "local", "path": bert})
    base_dir = params.evaluate.out_dir / "base"
    params = params.model_copy(update={"model": model, "report": params.report.model_copy(
        update={"baseline_results": base_dir, "baseline_label": "tiny zero-shot"})})
    run_evaluate_base(params)
    base = json.loads((base_dir / "synth-r" / "metrics.json").read_text(encoding="utf-8"))
    assert base["run"] == "base" and base["encoding"]["pooling"] == model.pooling

    run_name = next(iter(params.runs))
    Encoder.build(model, None, seed=0).save(params.train.model_dir / run_name)
    run_evaluate(params, run_name)
    saved = json.loads((params.evaluate.out_dir / run_name / "synth-r" / "metrics.json").read_text(encoding="utf-8"))
    assert saved["model_fingerprint"] == base["model_fingerprint"]
    assert saved["settings"] == base["settings"]


def test_evaluate_base_needs_a_pretrained_encoder_and_a_place_for_its_results(ready):
    params, _, _ = ready
    with pytest.raises(HybridReproError, match="report.baseline_results is null"):
        run_evaluate_base(params)
    placed = params.model_copy(update={"report": params.report.model_copy(update={"baseline_results": Path("b")})})
    with pytest.raises(HybridReproError, match="'scratch' has no pretrained encoder"):
        run_evaluate_base(placed)
    assert not Path("b").exists()


def test_baselines_stage_writes_both_rankers_and_the_doc(tmp_path: Path, monkeypatch):
    from hybrid_repro.stages.baselines import BaselinesConfig, run_baselines

    monkeypatch.chdir(tmp_path)
    directory = tmp_path / "data" / "lareqa" / "xquad-r"
    write_tiny_lareqa(directory)
    # The stage verifies the files against their pins: pin the tiny ones in place of XQuAD-R's.
    tiny_pin = dataclasses.replace(PINNED["xquad-r"], sha256={p.name: sha256_file(p) for p in directory.glob("*.json")})
    monkeypatch.setitem(PINNED, "xquad-r", tiny_pin)
    config = BaselinesConfig(datasets=("xquad-r",), out_dir="baselines", doc_path="doc.md")
    run_baselines(config, progress=False)
    bm25 = json.loads((config.out_dir / "bm25" / "xquad-r" / "metrics.json").read_text(encoding="utf-8"))
    random = json.loads((config.out_dir / "random" / "xquad-r" / "metrics.json").read_text(encoding="utf-8"))
    assert bm25["ranker"]["k1"] == config.bm25.k1 and random["ranker"]["seed"] == config.random.seed
    # the question shares its entity name with exactly its answers: BM25 finds them in every setting
    assert all(bm25["settings"][s]["mean"]["map"] == pytest.approx(1.0) for s in ("mo", "cr", "mul"))
    assert set(random["expected"]) == {"mo", "cr", "mul"}
    for ranker in ("bm25", "random"):
        assert (config.out_dir / ranker / "xquad-r" / "runs" / "cr.trec").stat().st_size > 0
    doc = config.doc_path.read_text(encoding="utf-8")
    bm25_row = next(line for line in doc.splitlines() if line.startswith("| BM25 |"))
    assert bm25_row.split(" | ")[1] == f"{bm25['settings']['mo']['mean']['map']:.4f}"
    expected_row = next(line for line in doc.splitlines() if line.startswith("| random (expected) |"))
    assert expected_row.split(" | ")[1] == f"{random['expected']['mo']['map']:.4f}"
