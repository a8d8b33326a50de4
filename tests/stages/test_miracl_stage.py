"""The MIRACL stages end to end on a synthetic language: fetch, encode (a saved encoder directory),
search, metrics, BM25, report; resume after a kill; subset labels; parameter errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import pytrec_eval
from click.testing import CliRunner
from miracl_synthetic import CORPUS_REVISION, MIRACL_LANG, TOPICS_REVISION, HashingEncoder

from hybrid_repro.cli import cli
from hybrid_repro.config import ModelConfig, ScratchModelConfig
from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.miracl_data import load_miracl_language
from hybrid_repro.evaluation.runfile import read_run_file
from hybrid_repro.modeling.encoder import Encoder
from hybrid_repro.stages.miracl import (MiraclConfig, load_miracl_params, run_miracl_bm25, run_miracl_encode, run_miracl_evaluate,
                                        run_miracl_fetch, run_miracl_report)

# Output paths in params must be relative to the working directory: run from pytest's base temporary folder.
pytestmark = pytest.mark.usefixtures("in_basetemp")


def make_config(tmp_path: Path, **overrides) -> MiraclConfig:
    values = dict(languages=[MIRACL_LANG], topics_revision=TOPICS_REVISION, corpus_revision=CORPUS_REVISION,
                  data_dir=tmp_path / "data", models={"tiny": tmp_path / "models" / "tiny"},
                  out_dir=tmp_path / "miracl",
                  encode={"shard_size": 40, "batch_size": 16}, search={"chunk_size": 33, "device": "cpu"})
    values = {**values, **overrides}
    values.update({key: os.path.relpath(values[key]) for key in ("data_dir", "out_dir")})
    return MiraclConfig.model_validate(values)


def save_tiny_encoder(directory: Path, corpus: list[str]) -> None:
    """A scratch encoder saved the way the train stage saves one."""
    model = ModelConfig(scratch=ScratchModelConfig(vocab_size=300, hidden_size=16, num_layers=1, num_heads=2,
                                                   intermediate_size=32, dropout=0.0))
    Encoder.build(model, corpus, seed=0).save(directory)


def trec_scores(run_path: Path, qrels: dict) -> dict:
    run: dict = {}
    for line in run_path.read_text().splitlines():
        qid, _, docid, _, score, _ = line.split()
        run.setdefault(qid, {})[docid] = float(score)
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"})
    return evaluator.evaluate(run)


def test_pipeline_on_a_saved_encoder_and_bm25(tmp_path, miracl_mirror):
    config = make_config(tmp_path)
    run_miracl_fetch(config, MIRACL_LANG, mirror=miracl_mirror)
    language = load_miracl_language(config.data_dir / MIRACL_LANG, MIRACL_LANG)
    save_tiny_encoder(config.models["tiny"], [p.text for p in language.passages()] + list(language.queries.values()))
    index = run_miracl_encode(config, "tiny", MIRACL_LANG, progress=False)
    assert index["n_passages"] == 120 and len(index["shards"]) == 3
    dense = run_miracl_evaluate(config, "tiny", MIRACL_LANG, progress=False)
    bm25 = run_miracl_bm25(config, MIRACL_LANG, progress=False)
    for name, document in (("tiny", dense), ("bm25", bm25)):
        out = config.results_dir(name, MIRACL_LANG)
        assert json.loads((out / "metrics.json").read_text()) == document
        assert document["n_topics"] == document["n_scored_queries"] == 12 and document["comparable_with_paper"]
        by_query = trec_scores(out / "run.trec", language.qrels)
        for qid, values in document["per_query"].items():
            assert values["ndcg@10"] == pytest.approx(by_query[qid]["ndcg_cut_10"], abs=1e-12)
            assert values["recall@100"] == pytest.approx(by_query[qid]["recall_100"], abs=1e-12)
    # Every query's words come from its relevant passage: BM25 must find most of them.
    assert bm25["metrics"]["recall@100"] == 1.0 and bm25["metrics"]["ndcg@10"] > 0.5
    report = run_miracl_report(config)
    summary = json.loads((report / "summary.json").read_text())
    assert set(summary["runs"]) == {"tiny", "bm25"}
    # One language of 15: labelled, in the JSON, the table and the plot title.
    assert summary["runs"]["tiny"]["label"] == "subset, not comparable with the paper"
    markdown = (report / "miracl.md").read_text()
    assert "**tiny: subset, not comparable with the paper**" in markdown and "paper XLM-R Hybrid" in markdown
    assert (report / "ndcg_by_language.png").stat().st_size > 0


class KilledEncoder(HashingEncoder):
    def encode(self, texts, kind, batch_size, progress=True):
        if self.calls == 5:
            raise KeyboardInterrupt("killed")
        return super().encode(texts, kind, batch_size, progress)


def test_resume_after_a_kill_gives_identical_results(tmp_path, miracl_mirror):
    fresh, resumed = make_config(tmp_path, out_dir=tmp_path / "fresh"), make_config(tmp_path, out_dir=tmp_path / "res")
    run_miracl_fetch(fresh, MIRACL_LANG, mirror=miracl_mirror)
    run_miracl_encode(fresh, "tiny", MIRACL_LANG, encoder=HashingEncoder(), progress=False)
    with pytest.raises(KeyboardInterrupt):
        run_miracl_encode(resumed, "tiny", MIRACL_LANG, encoder=KilledEncoder(), progress=False)
    index = run_miracl_encode(resumed, "tiny", MIRACL_LANG, encoder=HashingEncoder(), progress=False)
    assert index["reused_shards"] == 1
    documents = [run_miracl_evaluate(config, "tiny", MIRACL_LANG, encoder=HashingEncoder(), progress=False)
                 for config in (fresh, resumed)]
    for document in documents:
        document.pop("timing")
    assert documents[0] == documents[1]
    run_files = [config.results_dir("tiny", MIRACL_LANG) / "run.trec" for config in (fresh, resumed)]
    assert run_files[0].read_bytes() == run_files[1].read_bytes()
    assert len(read_run_file(run_files[0])) == 12


def test_cut_corpus_is_labelled_in_every_output(tmp_path, miracl_mirror):
    config = make_config(tmp_path, max_corpus_passages=20)
    run_miracl_fetch(config, MIRACL_LANG, mirror=miracl_mirror)
    run_miracl_encode(config, "tiny", MIRACL_LANG, encoder=HashingEncoder(), progress=False)
    document = run_miracl_evaluate(config, "tiny", MIRACL_LANG, encoder=HashingEncoder(), progress=False)
    assert document["label"] == "subset, not comparable with the paper"
    assert document["n_passages"] < 120 and "corpus cut" in document["reasons"][0]
    assert "subset, not comparable" in (run_miracl_report(config) / "miracl.md").read_text()


def test_stale_embeddings_and_bad_parameters_are_clear_errors(tmp_path, miracl_mirror):
    config = make_config(tmp_path)
    run_miracl_fetch(config, MIRACL_LANG, mirror=miracl_mirror)
    run_miracl_encode(config, "tiny", MIRACL_LANG, encoder=HashingEncoder(), progress=False)
    other = HashingEncoder()
    other.fingerprint = "retrained"
    with pytest.raises(HybridReproError, match="made with another model"):
        run_miracl_evaluate(config, "tiny", MIRACL_LANG, encoder=other, progress=False)
    with pytest.raises(HybridReproError, match="not in miracl.languages"):
        run_miracl_encode(config, "tiny", "ar", encoder=HashingEncoder(), progress=False)
    with pytest.raises(HybridReproError, match="no trained model"):
        run_miracl_encode(config, "tiny", MIRACL_LANG, progress=False)


def test_committed_params_pin_both_datasets_and_a_null_pin_is_refused(tmp_path):
    params = Path(__file__).resolve().parents[2] / "pipelines" / "miracl" / "params.yaml"
    config = load_miracl_params(params)
    assert all(len(pin) == 40 and int(pin, 16) >= 0 for pin in (config.topics_revision, config.corpus_revision))
    unpinned = tmp_path / "params.yaml"
    unpinned.write_text(params.read_text().replace(f"'{config.topics_revision}'", "null"))
    result = CliRunner().invoke(cli, ["miracl-report", "--params", str(unpinned)])
    assert result.exit_code == 2
    assert "miracl.topics_revision: required: the full 40-hex commit hash" in result.output
