"""Stage `zeroshot` end to end with multilingual-e5-small on a tiny LAReQA-format dataset."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import yaml

from hybrid_repro.evaluation.download import PINNED
from hybrid_repro.io import sha256_file
from hybrid_repro.stages.zeroshot import ZeroShotConfig, load_zeroshot_params, run_zeroshot

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "evaluation"))
from test_encode import write_squad_file  # noqa: E402  (the LAReQA file writer shared by the evaluation tests)

PARAGRAPHS = {
    "en": [(["Paris is the capital of France.", "It lies on the Seine."], [("q1", "What is the capital of France?", 0)]),
           (["Mount Fuji is in Japan.", "It is a volcano."], [("q2", "Which country is Mount Fuji in?", 0)])],
    "de": [(["Paris ist die Hauptstadt Frankreichs.", "Es liegt an der Seine."],
            [("q1", "Was ist die Hauptstadt Frankreichs?", 0)]),
           (["Der Fuji liegt in Japan.", "Er ist ein Vulkan."], [("q2", "In welchem Land liegt der Fuji?", 0)])],
}


def test_committed_params_are_valid():
    config = load_zeroshot_params(REPO / "pipelines/me5-zeroshot/params.yaml")
    assert config.model.source == "local" and config.model.pooling == "mean"
    assert (config.model.query_prefix, config.model.passage_prefix) == ("query: ", "passage: ")


def test_zeroshot_writes_metrics_per_candidate_text_and_the_doc(me5_checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data" / "lareqa" / "xquad-r"
    data.mkdir(parents=True)
    for lang, paragraphs in PARAGRAPHS.items():
        write_squad_file(data / f"{lang}.json", lang, paragraphs)
    # The stage verifies the files against their pins: pin the tiny ones in place of XQuAD-R's.
    monkeypatch.setitem(PINNED, "xquad-r", dataclasses.replace(
        PINNED["xquad-r"], sha256={p.name: sha256_file(p) for p in data.glob("*.json")}))
    raw = yaml.safe_load((REPO / "pipelines/me5-zeroshot/params.yaml").read_text())["zeroshot"]
    raw["model"]["path"] = str(me5_checkpoint)
    config = ZeroShotConfig(**{**raw, "datasets": ["xquad-r"], "candidate_texts": ["sentence", "sentence+context"],
                               "out_dir": "zs",
                               "doc_path": "zs.md", "cache_dir": tmp_path / "cache"})
    run_zeroshot(config, progress=False)
    for candidate_text in ("sentence", "sentence+context"):
        metrics = json.loads((tmp_path / "zs" / candidate_text / "xquad-r" / "metrics.json").read_text())
        assert metrics["encoder"] == "me5-small"
        assert metrics["encoding"]["candidate_text"] == candidate_text
        # A real multilingual encoder finds these parallel answers in both languages.
        assert metrics["settings"]["mo"]["mean"]["map"] == 1.0
        assert metrics["settings"]["cr"]["mean"]["map"] == 1.0
    doc = (tmp_path / "zs.md").read_text()
    assert "| sentence | " in doc and "| sentence+context | " in doc
