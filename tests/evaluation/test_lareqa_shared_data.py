"""Pools built from the pinned XQuAD-R and MLQA-R files match the published counts."""

from __future__ import annotations

import collections
import functools
import os
from pathlib import Path

import numpy as np
import pytest

from hybrid_repro.evaluation.lareqa import LareqaDataset, load_lareqa
from hybrid_repro.evaluation.settings import evaluate_embeddings

pytestmark = pytest.mark.shared_data

REPO_ROOT = Path(__file__).resolve().parents[2]
XQUAD_R_CANDIDATES = {"ar": 1222, "de": 1276, "el": 1234, "en": 1180, "es": 1215, "hi": 1244, "ru": 1219,
                      "th": 852, "tr": 1167, "vi": 1209, "zh": 1196}
MLQA_R_QUESTIONS = {"ar": 517, "de": 512, "en": 1148, "es": 500, "hi": 507, "vi": 511, "zh": 504}
MLQA_R_CANDIDATES = {"ar": 2545, "de": 2362, "en": 6264, "es": 1787, "hi": 2426, "vi": 2828, "zh": 2322}


def shared_data_dir() -> Path:
    return Path(os.environ.get("HYBRID_REPRO_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@functools.lru_cache(maxsize=None)
def _load(name: str) -> LareqaDataset:
    return load_lareqa(shared_data_dir() / name)


def shared_dataset_dir(name: str) -> Path:
    """The folder of the pinned dataset ``name``, or a skip naming where it was looked for."""
    directory = shared_data_dir() / name
    if not directory.is_dir():
        pytest.skip(f"pinned {name} files not found at {directory} (set HYBRID_REPRO_SHARED_DATA)")
    return directory


def shared_dataset(name: str) -> LareqaDataset:
    """The pinned dataset ``name`` (cached per session), or a skip naming where it was looked for."""
    shared_dataset_dir(name)
    return _load(name)


def per_language(values) -> dict[str, int]:
    return dict(sorted(collections.Counter(values).items()))


def relevant_per_question(ds: LareqaDataset) -> collections.Counter:
    return collections.Counter(len(r) for r in ds.relevance)


def test_xquad_r_counts():
    ds = shared_dataset("xquad-r")
    assert ds.languages == tuple(XQUAD_R_CANDIDATES)
    assert per_language(ds.questions.lang) == {lang: 1190 for lang in XQUAD_R_CANDIDATES}
    assert per_language(ds.candidates.lang) == XQUAD_R_CANDIDATES
    assert len(ds.candidates) == 13_014 and len(ds.questions) == 13_090
    assert not ds.skipped_questions
    assert relevant_per_question(ds) == {11: 13_090}
    # one relevant sentence in every language: Mo. and Cr. have exactly one relevant candidate
    assert all(len(set(ds.candidate_lang_index[r].tolist())) == 11 for r in ds.relevance)
    assert ds.candidates.cid[ds.language_blocks[3][0]] == "en_1_0"
    assert ds.candidates.cid[ds.language_blocks[3][1] - 1].startswith("en_240_")


def test_mlqa_r_counts():
    ds = shared_dataset("mlqa-r")
    assert per_language(ds.questions.lang) == MLQA_R_QUESTIONS
    assert per_language(ds.candidates.lang) == MLQA_R_CANDIDATES
    assert len(ds.candidates) == 20_534 and len(ds.questions) == 4_199
    assert not ds.skipped_questions
    assert relevant_per_question(ds) == {4: 3280, 3: 789, 2: 130}
    assert len(set(ds.questions.id)) == 1148


def test_xquad_r_settings_cover_110_pairs():
    ds = shared_dataset("xquad-r")
    rng = np.random.default_rng(0)
    some = np.concatenate([np.flatnonzero(ds.question_lang_index == lang)[:5] for lang in range(11)])
    result = evaluate_embeddings(
        ds, rng.standard_normal((13_090, 8), dtype=np.float32), rng.standard_normal((13_014, 8), dtype=np.float32),
        queries=some, progress=False,
    )
    metrics = result.to_metrics_json()["settings"]
    assert len(metrics["cr"]["per_pair"]) == 110
    assert {row["n_queries"] for row in metrics["cr"]["per_pair"].values()} == {5}
    assert metrics["mo"]["n_queries"] == metrics["mul"]["n_queries"] == {lang: 5 for lang in ds.languages}


def test_mlqa_r_cross_lingual_pairs_drop_queries_without_a_parallel():
    ds = shared_dataset("mlqa-r")
    rng = np.random.default_rng(0)
    result = evaluate_embeddings(
        ds, rng.standard_normal((4_199, 4), dtype=np.float32), rng.standard_normal((20_534, 4), dtype=np.float32),
        progress=False,
    )
    metrics = result.to_metrics_json()["settings"]
    pairs = metrics["cr"]["per_pair"]
    assert len(pairs) == 42
    for pair, row in pairs.items():
        query, target = pair.split("-")
        if query == "en":
            assert row["n_queries"] == MLQA_R_QUESTIONS[target]
        elif target == "en":
            assert row["n_queries"] == MLQA_R_QUESTIONS[query]
        else:
            assert 161 <= row["n_queries"] <= 207
    assert pairs["ar-de"]["n_queries"] == pairs["de-ar"]["n_queries"] == 207
    assert pairs["es-ar"]["n_queries"] == 161
    assert metrics["mo"]["n_queries"] == metrics["mul"]["n_queries"] == MLQA_R_QUESTIONS
