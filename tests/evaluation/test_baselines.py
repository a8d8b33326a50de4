"""BM25 tokenizer and ranker, the random ranker and its exact expected metrics."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from test_encode import write_squad_file

from hybrid_repro.evaluation.baselines import (
    Bm25Ranker,
    bm25_tokenize,
    expected_random_ap,
    expected_random_metrics,
    expected_random_result,
    random_score_rows,
)
from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.lareqa import load_lareqa
from hybrid_repro.evaluation.metrics import average_precision, rank_distance, recall_at, reciprocal_rank
from hybrid_repro.evaluation.settings import evaluate_score_rows
from test_lareqa_shared_data import REPO_ROOT, shared_dataset_dir



def test_tokenizer_chinese_gives_character_unigrams_and_bigrams():
    assert bm25_tokenize("北京大学。") == ["北", "京", "大", "学", "北京", "京大", "大学"]


def test_tokenizer_thai_keeps_marks_with_their_consonant():
    tokens = bm25_tokenize("ผู้ใหญ่")
    assert tokens[:4] == ["ผู้", "ใ", "ห", "ญ่"]
    assert "ผู้ใ" in tokens and "หญ่" in tokens and "ู" not in tokens


def test_tokenizer_spaced_scripts_give_casefolded_words():
    assert bm25_tokenize("Straße, HELLO-world! 2019年") == ["strasse", "hello", "world", "2019", "年"]
    assert bm25_tokenize("हिन्दी भाषा") == ["हिन्दी", "भाषा"]
    assert bm25_tokenize("ＡＢＣ ĳ") == ["abc", "ij"]
    assert bm25_tokenize(" ,.!? ") == []


@pytest.mark.parametrize("n", range(1, 8))
def test_expected_random_metrics_match_exhaustive_enumeration(n: int):
    metrics = ("map", "map@2", "r@1", "r@3", "mrr", "rank_distance")
    for r in range(1, n + 1):
        placements = np.array(list(itertools.combinations(range(1, n + 1), r)), dtype=np.float64)
        exact = {
            "map": average_precision(placements).mean(),
            "map@2": average_precision(placements, 2).mean(),
            "r@1": recall_at(placements, 1).mean(),
            "r@3": recall_at(placements, 3).mean(),
            "mrr": reciprocal_rank(placements).mean(),
            "rank_distance": rank_distance(placements, n).mean(),
        }
        expected = expected_random_metrics(n, r, metrics)
        for name in metrics:
            assert expected[name] == pytest.approx(exact[name], rel=1e-12), (n, r, name)


def test_expected_random_ap_closed_form_edge_cases():
    n = 13014
    harmonic = sum(1.0 / i for i in range(1, n + 1))
    assert expected_random_ap(n, 1) == pytest.approx(harmonic / n)
    assert expected_random_ap(n, n) == pytest.approx(1.0)
    assert expected_random_ap(n, 11) == pytest.approx(((n - 11) * harmonic + 10 * n) / (n * (n - 1)))
    with pytest.raises(ValueError):
        expected_random_ap(5, 0)


@pytest.fixture(scope="module")
def random_fixture(tmp_path_factory) -> Path:
    """3 languages, 120 parallel questions over 40 paragraphs of 3 sentences each."""
    directory = tmp_path_factory.mktemp("random-r")
    rng = np.random.default_rng(0)
    for lang in ("aa", "bb", "cc"):
        paragraphs = []
        for p in range(40):
            sentences = [f"{lang} sentence {p} {s}." for s in range(3)]
            questions = [(f"q{p}-{i}", f"{lang} question {p} {i}?", int(rng.integers(3))) for i in range(3)]
            paragraphs.append((sentences, questions))
        write_squad_file(directory / f"{lang}.json", lang, paragraphs)
    return directory


def test_empirical_random_run_agrees_with_the_expectation(random_fixture: Path):
    dataset = load_lareqa(random_fixture)
    expected = expected_random_result(dataset).to_metrics_json()["settings"]
    runs = [evaluate_score_rows(dataset, random_score_rows(dataset, seed), progress=False) for seed in range(4)]
    for setting in ("mo", "cr", "mul"):
        rows = [
            [row["map"] for row in run.per_query_rows() if row["setting"] == setting]
            for run in runs
        ]
        values = np.concatenate(rows)
        # Per-query APs are independent across queries and seeds; every language has as many
        # queries, so the macro mean is the plain mean and its standard error is std / sqrt(n).
        standard_error = values.std(ddof=1) / np.sqrt(values.size)
        assert abs(values.mean() - expected[setting]["mean"]["map"]) < 4 * standard_error
        assert standard_error < 0.02


def test_random_rows_do_not_depend_on_chunking(random_fixture: Path):
    dataset = load_lareqa(random_fixture)
    score_rows = random_score_rows(dataset, seed=3)
    whole = score_rows(np.arange(10)).numpy()
    parts = np.concatenate([score_rows(np.arange(0, 4)).numpy(), score_rows(np.arange(4, 10)).numpy()])
    np.testing.assert_array_equal(whole, parts)
    assert not np.array_equal(whole, random_score_rows(dataset, seed=4)(np.arange(10)).numpy())


def test_bm25_rows_are_exact_full_scores(random_fixture: Path):
    dataset = load_lareqa(random_fixture)
    ranker = Bm25Ranker(dataset, progress=False)
    rows = ranker.score_rows(np.array([0, 5])).numpy()
    assert rows.shape == (2, len(dataset.candidates))
    top = ranker.index.retrieve([bm25_tokenize(dataset.questions.text[5])], k=5, show_progress=False)
    np.testing.assert_allclose(np.sort(rows[1])[::-1][:5], top.scores[0], rtol=1e-6)


@pytest.mark.shared_data
def test_bm25_beats_random_on_an_xquad_r_subset():
    dataset = load_lareqa(shared_dataset_dir("xquad-r"), languages=["en", "th", "zh"])
    bm25 = evaluate_score_rows(dataset, Bm25Ranker(dataset, progress=False).score_rows, progress=False)
    bm25_metrics = bm25.to_metrics_json()["settings"]
    chance = expected_random_result(dataset).to_metrics_json()["settings"]
    for lang in ("en", "th", "zh"):
        assert bm25_metrics["mo"]["per_language"][lang]["map"] > 0.6
        assert chance["mo"]["per_language"][lang]["map"] < 0.01
    assert bm25_metrics["mul"]["mean"]["map"] > 10 * chance["mul"]["mean"]["map"]


def test_baselines_params_are_validated_like_the_pipeline_params(tmp_path):
    from hybrid_repro.stages.baselines import load_baselines_params

    assert load_baselines_params(REPO_ROOT / "pipelines/lareqa/params.yaml").bm25.k1 > 0
    bad = tmp_path / "params.yaml"
    bad.write_text("baselines:\n  bm25: {k1: -1}\n")
    with pytest.raises(HybridReproError, match=r"(?s)invalid parameters .*baselines\.bm25\.k1"):
        load_baselines_params(bad)
    with pytest.raises(HybridReproError, match="not found"):
        load_baselines_params(tmp_path / "missing.yaml")
