"""TREC run files: exact round trip, truncation, malformed input, and per-setting rankings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_settings_lareqa import HAND, hand_score_rows

from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.runfile import read_run_file, rankings_by_setting, setting_rankings, write_run_file
from hybrid_repro.evaluation.settings import evaluate_run, evaluate_score_rows


def test_round_trip_keeps_scores_bit_identical(tmp_path: Path):
    scores32 = np.array([0.1, 1 / 3, -2.5e-8], dtype=np.float32)
    scores64 = [np.pi, np.nextafter(np.pi, 0), 1e300]
    path = tmp_path / "run.trec"
    assert write_run_file(path, [("q1", ["a", "b", "c"], scores32), ("q2", ["x", "y", "z"], scores64)]) == 6
    run = read_run_file(path)
    assert run["q1"] == {"a": float(scores32[0]), "b": float(scores32[1]), "c": float(scores32[2])}
    assert run["q2"] == dict(zip("xyz", scores64))


def test_lines_are_ranked_best_first_with_ties_in_input_order_and_cut_at_top_k(tmp_path: Path):
    path = tmp_path / "run.trec"
    write_run_file(path, [("q", ["c0", "c1", "c2", "c3"], [0.5, 0.9, 0.5, 0.1])], tag="sys", top_k=3)
    assert path.read_text().splitlines() == ["q Q0 c1 1 0.9 sys", "q Q0 c0 2 0.5 sys", "q Q0 c2 3 0.5 sys"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("q Q0 c 1 0.5\n", "expected 6 fields"),
        ("q Q0 c one 0.5 t\n", "rank must be an integer"),
        ("q Q0 c 1 nan t\n", "score is NaN"),
        ("q Q0 c 1 0.5 t\nq Q0 c 2 0.4 t\n", "listed twice"),
        ("\n", "is empty"),
    ],
)
def test_malformed_run_files_are_rejected_with_the_line(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.trec"
    path.write_text(text)
    with pytest.raises(HybridReproError, match=message):
        read_run_file(path)


def test_missing_run_file_and_bad_arguments(tmp_path: Path):
    with pytest.raises(HybridReproError, match="not found"):
        read_run_file(tmp_path / "none.trec")
    with pytest.raises(HybridReproError, match="tag"):
        write_run_file(tmp_path / "r.trec", [], tag="two words")
    with pytest.raises(HybridReproError, match="top_k"):
        write_run_file(tmp_path / "r.trec", [], top_k=0)


def test_failed_write_leaves_nothing_behind(tmp_path: Path):
    def rankings():
        yield "q", ["a"], [1.0]
        raise RuntimeError("encoder crashed")

    with pytest.raises(RuntimeError):
        write_run_file(tmp_path / "run.trec", rankings())
    assert list(tmp_path.iterdir()) == []


def languages_of(rankings) -> dict[str, set[str]]:
    return {qid: {cid.split("_")[0] for cid in cids} for qid, cids, _ in rankings}


def test_setting_rankings_use_each_settings_candidates():
    def collect(setting, target=None, top_k=100):
        return list(setting_rankings(HAND, hand_score_rows, setting, target, top_k=top_k, progress=False))

    assert languages_of(collect("mo")) == {q: {q[-2:]} for q in HAND.questions.qid}
    assert languages_of(collect("cr", "zh")) == {"a_en": {"zh"}, "b_en": {"zh"}, "a_de": {"zh"}, "b_de": {"zh"}}
    assert languages_of(collect("cr")) == {q: {"en", "de", "zh"} - {q[-2:]} for q in HAND.questions.qid}
    assert all(len(cids) == 9 for _, cids, _ in collect("mul"))
    top = collect("mul", top_k=3)
    assert all(len(cids) == 3 for _, cids, _ in top)
    # the top 3 of a_en (scores .95, .9, .8), listed in dataset order: write_run_file does the sorting
    assert top[HAND.questions.qid.index("a_en")][1] == ["en_1_0", "de_1_1", "zh_1_0"]
    with pytest.raises(HybridReproError, match="needs setting 'cr'"):
        collect("mo", "de")


def test_rankings_by_setting_scores_once_and_matches_each_setting():
    calls = []

    def counting_score_rows(indices):
        calls.append(len(indices))
        return hand_score_rows(indices)

    together = rankings_by_setting(HAND, counting_score_rows, top_k=4, progress=False)
    assert sum(calls) == len(HAND.questions)
    for setting in ("mo", "cr", "mul"):
        alone = list(setting_rankings(HAND, hand_score_rows, setting, top_k=4, progress=False))
        assert [(q, list(c), list(v)) for q, c, v in together[setting]] == [(q, list(c), list(v)) for q, c, v in alone]


def test_scoring_a_written_full_run_matches_direct_scoring(tmp_path: Path):
    path = tmp_path / "mul.trec"
    write_run_file(path, setting_rankings(HAND, hand_score_rows, "mul", progress=False))
    from_file = evaluate_run(HAND, read_run_file(path), "mul").to_metrics_json()["settings"]["mul"]
    direct = evaluate_score_rows(HAND, hand_score_rows, progress=False).to_metrics_json()["settings"]["mul"]
    assert from_file == direct
