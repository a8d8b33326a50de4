"""LAReQA pool construction on hand-written language files: ids, relevance, candidate texts, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hybrid_repro.errors import HybridReproError
from hybrid_repro.evaluation.lareqa import load_lareqa
from hybrid_repro.io import sha256_file


def paragraph(context: str, breaks: list[list[int]], qas: list[tuple[str, int]], sentences: list[str] | None = None):
    return {
        "context": context,
        "sentence_breaks": breaks,
        "sentences": sentences if sentences is not None else [context[a:b] for a, b in breaks],
        "qas": [{"id": qa_id, "question": f"question {qa_id}?", "answers": [{"text": "x", "answer_start": start}]}
                for qa_id, start in qas],
    }


def write_language(directory: Path, lang: str, articles: list[list[dict]]) -> Path:
    path = directory / f"{lang}.json"
    data = {"version": "1.1", "data": [{"title": f"t{i}", "paragraphs": paras} for i, paras in enumerate(articles)]}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture()
def pool_dir(tmp_path: Path) -> Path:
    """en: two articles (paragraphs 1, 2 | 3); de: one article; zh lacks question b."""
    directory = tmp_path / "mini-r"
    directory.mkdir()
    write_language(directory, "en", [
        [paragraph("One two. Three four.", [[0, 8], [9, 20]], [("a", 9)]),
         paragraph("Solo.", [[0, 5]], [])],
        [paragraph("Xx yy.Zz ww.", [[0, 6], [6, 12]], [("b", 6)])],  # answer at a boundary: second sentence
    ])
    write_language(directory, "de", [
        [paragraph("Eins zwei. Drei vier.", [[0, 10], [11, 21]], [("a", 11)]),
         paragraph("Allein. Nochmal.", [[0, 7], [8, 16]], [("b", 0)])],
    ])
    write_language(directory, "zh", [
        [paragraph("一二。三四。", [[0, 3], [3, 6]], [("a", 4)])],
    ])
    return directory


def test_ids_follow_the_reference_code(pool_dir: Path):
    ds = load_lareqa(pool_dir)
    assert ds.name == "mini-r"
    assert ds.languages == ("de", "en", "zh")
    assert ds.questions.qid == ("a_de", "b_de", "a_en", "b_en", "a_zh")
    assert ds.questions.id == ("a", "b", "a", "b", "a")
    assert ds.candidates.cid == (
        "de_1_0", "de_1_1", "de_2_0", "de_2_1",
        "en_1_0", "en_1_1", "en_2_0", "en_3_0", "en_3_1",  # paragraph counter runs across articles
        "zh_1_0", "zh_1_1",
    )
    assert ds.language_blocks == ((0, 4), (4, 9), (9, 11))
    np.testing.assert_array_equal(ds.question_lang_index, [0, 0, 1, 1, 2])


def test_relevance_spans_every_language_holding_the_same_id(pool_dir: Path):
    ds = load_lareqa(pool_dir)
    cid = ds.candidates.cid
    relevant = {qid: [cid[i] for i in ds.relevance[q]] for q, qid in enumerate(ds.questions.qid)}
    assert relevant["a_en"] == relevant["a_de"] == relevant["a_zh"] == ["de_1_1", "en_1_1", "zh_1_1"]
    # answer_start 6 == end of the first span: start <= answer_start < end picks the second sentence
    assert relevant["b_en"] == relevant["b_de"] == ["de_2_0", "en_3_1"]


def test_language_subset_restricts_pools_and_relevance(pool_dir: Path):
    ds = load_lareqa(pool_dir, languages=["zh", "en"])
    assert ds.languages == ("zh", "en")
    assert ds.candidates.cid[:2] == ("zh_1_0", "zh_1_1")
    relevant = {qid: [ds.candidates.cid[i] for i in ds.relevance[q]] for q, qid in enumerate(ds.questions.qid)}
    assert relevant == {"a_zh": ["zh_1_1", "en_1_1"], "a_en": ["zh_1_1", "en_1_1"], "b_en": ["en_3_1"]}


def test_candidate_text_is_the_span_of_the_context(tmp_path: Path):
    directory = tmp_path / "span-r"
    directory.mkdir()
    # the `sentences` field disagrees with the span (as in one XQuAD-R tr paragraph): the span wins
    write_language(directory, "en", [[paragraph("Ab cd. Ef.", [[0, 6], [6, 10]], [("q", 7)], ["Ab cd.", "Ef."])]])
    ds = load_lareqa(directory, candidate_text="sentence+context")
    assert ds.candidates.sentence == ("Ab cd.", " Ef.")
    assert ds.candidate_inputs() == [("Ab cd.", "Ab cd. Ef."), (" Ef.", "Ab cd. Ef.")]
    assert load_lareqa(directory).candidate_inputs() == ["Ab cd.", " Ef."]


def test_checksums_are_the_files_sha256(pool_dir: Path):
    ds = load_lareqa(pool_dir)
    assert ds.checksums == {lang: sha256_file(pool_dir / f"{lang}.json") for lang in ds.languages}


def test_question_without_answer_sentence_is_skipped_with_a_warning(tmp_path: Path):
    directory = tmp_path / "gap-r"
    directory.mkdir()
    write_language(directory, "en", [[paragraph("Aa. Bb.", [[0, 3], [4, 7]], [("ok", 4), ("gap", 3)])]])
    with pytest.warns(UserWarning, match="1 question"):
        ds = load_lareqa(directory)
    assert ds.questions.qid == ("ok_en",)
    assert ds.skipped_questions == ("gap_en",)


def test_missing_language_file_names_the_file(pool_dir: Path):
    with pytest.raises(HybridReproError, match=r"missing language file .*fr\.json"):
        load_lareqa(pool_dir, languages=["en", "fr"])


def test_truncated_json_names_the_file(pool_dir: Path):
    path = pool_dir / "de.json"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(HybridReproError, match=r"de\.json is not valid JSON \(truncated"):
        load_lareqa(pool_dir)


def test_file_without_sentence_breaks_is_rejected(tmp_path: Path):
    directory = tmp_path / "plain"
    directory.mkdir()
    (directory / "en.json").write_text(json.dumps({"data": [{"paragraphs": [{"context": "A.", "qas": []}]}]}))
    with pytest.raises(HybridReproError, match=r"en\.json does not have the SQuAD layout with sentence_breaks"):
        load_lareqa(directory)


def test_duplicate_question_ids_are_rejected(tmp_path: Path):
    directory = tmp_path / "dup"
    directory.mkdir()
    write_language(directory, "en", [[paragraph("A.", [[0, 2]], [("q", 0), ("q", 1)])]])
    with pytest.raises(HybridReproError, match="duplicate question id 'q_en'"):
        load_lareqa(directory)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"candidate_text": "context"}, "candidate_text must be one of"), ({"languages": ["en", "en"]}, "listed twice")],
)
def test_bad_arguments_are_rejected(pool_dir: Path, kwargs: dict, message: str):
    with pytest.raises(HybridReproError, match=message):
        load_lareqa(pool_dir, **kwargs)


def test_empty_or_absent_directory_is_a_clear_error(tmp_path: Path):
    with pytest.raises(HybridReproError, match="does not exist"):
        load_lareqa(tmp_path / "nowhere")
    with pytest.raises(HybridReproError, match="no language files"):
        load_lareqa(tmp_path)
