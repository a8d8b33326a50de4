"""Every source's records become the pairs the paper used: right fields, filtering, ids shared across languages."""

import json
import zipfile

from hybrid_repro.sources.files import read_entityquestions, read_mmarco
from hybrid_repro.sources.specs import MMARCO_LANGUAGES, SPECS, passage_id


def _pairs(name, row, config=None):
    return list(SPECS[name].read_row(row, config))


def test_every_table_source_has_a_reader_and_every_file_source_names_its_files():
    for spec in SPECS.values():
        assert (spec.read_row is not None) == (spec.kind == "hub"), spec.name
        assert bool(spec.files) == (spec.kind == "hub-files") and bool(spec.url) == (spec.kind == "url"), spec.name


def test_wikiqa_keeps_only_correct_answer_sentences():
    row = {"question_id": "Q1", "question": "how are  glacier caves formed?", "document_title": "Glacier cave",
           "answer": "A glacier cave is a cave formed within the ice of a glacier.", "label": 1}
    [pair] = _pairs("wikiqa", row)
    assert pair.query == "how are glacier caves formed?" and pair.positive.startswith("A glacier cave")
    assert _pairs("wikiqa", {**row, "label": 0}) == []


def test_duorc_drops_unanswerable_questions_and_shares_the_plot_passage():
    row = {"plot_id": "p7", "plot": "A plot.", "question_id": "q1", "question": "Who?", "no_answer": False}
    [first] = _pairs("duorc", row, "SelfRC")
    [second] = _pairs("duorc", {**row, "question_id": "q2", "question": "Where?"}, "SelfRC")
    assert first.passage_key == second.passage_key == "SelfRC/p7"
    assert _pairs("duorc", {**row, "no_answer": True}, "SelfRC") == []


def test_mrtydi_keeps_its_given_negative_and_mfaq_yields_every_pair_of_a_page():
    [pair] = _pairs("mrtydi", {"query_id": "3", "query": "q", "positive_passages": [{"docid": "d1", "text": "yes"}],
                               "negative_passages": [{"docid": "d9", "text": "no"}]})
    assert (pair.negative, pair.passage_key, pair.negative_key) == ("no", "d1", "d9")
    pairs = _pairs("mfaq", {"id": 5, "qa_pairs": [{"question": "a?", "answer": "A"}, {"question": "b?", "answer": "B"}]})
    assert [(p.source_id, p.query) for p in pairs] == [("5/0", "a?"), ("5/1", "b?")]


def test_entityquestions_reads_every_relation_with_its_first_answer(tmp_path):
    archive = tmp_path / "dataset.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("dataset/train/P17.train.json", json.dumps([{"question": "Where is X?", "answers": ["Y", "Z"]},
                                                                     {"question": "No answer?", "answers": []}]))
        bundle.writestr("dataset/dev/P17.dev.json", json.dumps([{"question": "dev", "answers": ["d"]}]))
        bundle.writestr("dataset/train/P19.train.json", json.dumps([{"question": "Born where?", "answers": ["W"]}]))
    pairs = list(read_entityquestions(archive))
    assert [(p.source_id, p.positive) for p in pairs] == [("P17/0", "Y"), ("P19/0", "W")]
    assert len(list(read_entityquestions(archive, limit=1))) == 1


def test_mmarco_joins_triples_in_every_language_with_passage_ids_shared_across_languages(tmp_path):
    files = {"data/triples.train.ids.small.tsv": "q1\tp1\tp2\nq2\tp3\tp1\n"}
    for code, name in MMARCO_LANGUAGES.items():
        files[f"data/google/queries/train/{name}_queries.train.tsv"] = f"q1\t{code} query one\nq2\t{code} query two\n"
        files[f"data/google/collections/{name}_collection.tsv"] = "".join(
            f"{pid}\t{code} passage {pid}\n" for pid in ("p1", "p2", "p3", "p4"))
    paths = {}
    for name, text in files.items():
        path = tmp_path / name.replace("/", "_")
        path.write_text(text, encoding="utf-8")
        paths[name] = path
    pairs = list(read_mmarco(paths, ("en", "de"), limit=1))
    assert [(p.language, p.query, p.positive, p.negative) for p in pairs] == [
        ("en", "en query one", "en passage p1", "en passage p2"), ("de", "de query one", "de passage p1", "de passage p2")]
    assert len({passage_id("mmarco", p.passage_key) for p in pairs}) == 1
