"""Stage `translate`: the data/translated contract (train/val JSONL, XQuAD-R eval files, manifest)
and its errors, none of which may leave a half-written output."""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import OUTPUT_MARKER, sha256_file
from hybrid_repro.stages import translate as translate_stage
from hybrid_repro.stages.data import run_data
from hybrid_repro.stages.translate import run_translate
from test_data_stage import small_params, tree_digest


pytestmark = pytest.mark.usefixtures("in_basetemp")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    params = small_params(root)
    run_data(params)
    run_translate(params)
    return params


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def train(built):
    return _jsonl(built.translate.out_dir / "train.jsonl")


@pytest.fixture(scope="module")
def evals(built):
    folder = built.translate.out_dir / "eval" / "synth-r"
    return {lang: json.loads((folder / f"{lang}.json").read_text()) for lang in built.translate.eval_languages}


def test_example_records_have_the_contract_layout(built, train):
    val = _jsonl(built.translate.out_dir / "val.jsonl")
    for record in train + val:
        assert set(record) == {"id", "question_id", "dataset", "positive_id", "negative_id", "texts"}
        assert record["texts"] and set(record["texts"]) <= set(built.translate.train_languages)
        for texts in record["texts"].values():
            assert set(texts) == {"query", "positive", "negative"} and all(texts.values())
    ids = [r["id"] for r in train + val]
    assert len(ids) == len(set(ids))
    assert all(set(r["texts"]) == set(built.translate.train_languages) for r in val)


def test_eval_only_languages_never_appear_in_training(built, train):
    eval_only = set(built.translate.eval_languages) - set(built.translate.train_languages)
    assert eval_only == {"qel", "qvi"}
    assert not any(eval_only & set(r["texts"]) for r in train)


def test_source_only_dataset_exists_only_in_the_source_language(train):
    faq = [r for r in train if r["dataset"] == "synth-faq"]
    assert faq and all(list(r["texts"]) == ["qen"] for r in faq)
    assert all("qen" in r["texts"] for r in train)


def test_low_resource_language_keeps_its_share_of_each_multilingual_dataset(built, train):
    share = built.translate.low_resource["qar"]
    for dataset in ("synth-qa", "synth-kw"):
        records = [r for r in train if r["dataset"] == dataset]
        assert sum("qar" in r["texts"] for r in records) == round(share * len(records))
        assert all("qru" in r["texts"] for r in records)


def test_translations_are_parallel_and_carry_numbers(train):
    for record in train:
        texts = record["texts"]
        numbers = re.findall(r"[0-9]+", texts["qen"]["positive"])
        for lang in ("qde", "qru", "qzh", "qth"):
            if lang in texts:
                assert re.findall(r"[0-9]+", texts[lang]["positive"]) == numbers


def test_eval_files_follow_the_xquad_r_layout(evals):
    for lang, document in evals.items():
        assert set(document) == {"version", "data"}
        for article in document["data"]:
            assert set(article) == {"title", "paragraphs"}
            for paragraph in article["paragraphs"]:
                assert set(paragraph) == {"context", "qas", "sentences", "sentence_breaks"}
                context, breaks = paragraph["context"], paragraph["sentence_breaks"]
                assert [context[start:end] for start, end in breaks] == paragraph["sentences"]
                for qa in paragraph["qas"]:
                    answer = qa["answers"][0]
                    start = answer["answer_start"]
                    assert context[start : start + len(answer["text"])] == answer["text"], lang
                    assert sum(b <= start < e for b, e in breaks) == 1


def _question_ids(document: dict) -> list[str]:
    return [qa["id"] for a in document["data"] for p in a["paragraphs"] for qa in p["qas"]]


def _answer_sentence_index(document: dict) -> list[tuple[int, int]]:
    found = []
    for a in document["data"]:
        for p_index, p in enumerate(a["paragraphs"]):
            for qa in p["qas"]:
                start = qa["answers"][0]["answer_start"]
                found += [(p_index, s) for s, (b, e) in enumerate(p["sentence_breaks"]) if b <= start < e]
    return found


def test_eval_languages_are_fully_parallel(evals):
    reference = evals["qen"]
    for lang, document in evals.items():
        assert _question_ids(document) == _question_ids(reference)
        assert _answer_sentence_index(document) == _answer_sentence_index(reference), lang
        assert [len(p["sentences"]) for a in document["data"] for p in a["paragraphs"]] == [
            len(p["sentences"]) for a in reference["data"] for p in a["paragraphs"]
        ]
    assert len(set(_question_ids(reference))) == len(_question_ids(reference))


def test_eval_paragraphs_are_disjoint_from_training(evals, train):
    eval_sentences = {s for lang, d in evals.items() for a in d["data"] for p in a["paragraphs"] for s in p["sentences"]}
    train_sentences = {t[f] for r in train for t in r["texts"].values() for f in ("positive", "negative")}
    assert not eval_sentences & train_sentences


def test_scripts_differ_by_language(evals):
    def first_sentence(lang):
        return evals[lang]["data"][0]["paragraphs"][0]["sentences"][0]

    assert re.search("[а-я]", first_sentence("qru")) and re.search("[α-ω]", first_sentence("qel"))
    assert re.search("[\u0600-\u06ff]", first_sentence("qar")) and re.search("[\u4e00-\u9fff]", first_sentence("qzh"))
    assert " " not in first_sentence("qzh") and " " not in first_sentence("qth")


def test_manifest_counts_and_checksums_match_the_files(built, train):
    out = built.translate.out_dir
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["languages"] == {
        "source": "qen", "train": list(built.translate.train_languages), "eval": list(built.translate.eval_languages),
        "eval_only": ["qel", "qvi"], "low_resource": {"qar": 0.25},
    }
    assert set(manifest["files"]) == set(tree_digest(out)) - {"manifest.json", OUTPUT_MARKER}
    assert all(sha256_file(out / name) == digest for name, digest in manifest["files"].items())
    for dataset, per_lang in manifest["counts"]["train"].items():
        for lang, count in per_lang.items():
            assert count == sum(r["dataset"] == dataset and lang in r["texts"] for r in train)
    assert all(c["questions"] > 0 for c in manifest["counts"]["eval"]["synth-r"].values())


def test_lexicon_metrics_say_the_language_check_was_skipped(built):
    metrics = json.loads(built.translate.metrics_path.read_text())
    assert metrics["backend"]["name"] == "lexicon" and "synthetic languages" in metrics["langid"]["skipped"]
    assert "translation" not in metrics and metrics["stage_seconds"] >= 0


def test_translate_is_deterministic(built, tmp_path):
    again = small_params(tmp_path)
    shutil.copytree(built.data.out_dir, again.data.out_dir)
    run_translate(again)
    assert tree_digest(again.translate.out_dir) == tree_digest(built.translate.out_dir)


# -- errors: each must leave an existing output exactly as it was ----------------------------------


@pytest.fixture
def workspace(built, tmp_path):
    """A copy of the built source and output, for tests that break things."""
    params = small_params(tmp_path)
    shutil.copytree(built.data.out_dir, params.data.out_dir)
    shutil.copytree(built.translate.out_dir, params.translate.out_dir)
    return params


def _rewrite_checksum(params, name: str) -> None:
    manifest_path = params.data.out_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][name] = sha256_file(params.data.out_dir / name)
    manifest_path.write_text(json.dumps(manifest))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _replace_first_byte(path: Path, byte: bytes) -> None:
    path.write_bytes(byte + path.read_bytes()[1:])


def _empty(path: Path) -> None:
    path.write_text("")


def _append_line(path: Path, line: str) -> None:
    path.write_text(path.read_text() + line + "\n")


def _set_eval_dataset(source: Path, name: str) -> None:
    document = json.loads((source / "eval.json").read_text())
    (source / "eval.json").write_text(json.dumps({**document, "dataset": name}))


def _unlist(source: Path, name: str) -> None:
    """Remove ``name`` from the corpus and from its manifest, checksums consistent."""
    manifest = json.loads((source / "manifest.json").read_text())
    del manifest["files"][name]
    (source / name).unlink()
    (source / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "breakage, fix_checksum, expected",
    [
        (lambda source: shutil.rmtree(source), False, "does not exist: run `hybrid-repro data`"),
        (lambda source: _truncate(source / "train.jsonl"), False, "does not match the checksum"),
        (lambda source: _truncate(source / "train.jsonl"), True, "line .* is not valid JSON"),
        (lambda source: _truncate(source / "eval.json"), True, "not valid JSON"),
        (lambda source: _truncate(source / "manifest.json"), False, "not valid JSON"),
        (lambda source: (source / "val.jsonl").unlink(), False, "missing file"),
        (lambda source: _empty(source / "train.jsonl"), True, "holds no examples"),
        (lambda source: _replace_first_byte(source / "train.jsonl", b"\xff"), True, "train.jsonl is not valid UTF-8"),
        (lambda source: _replace_first_byte(source / "eval.json", b"\x00"), True, "eval.json contains a NUL byte"),
        # Only a paper corpus goes without an evaluation set; any other would silently translate none.
        (lambda source: _unlist(source, "eval.json"), False, "lists no eval.json, which a 'synthetic' corpus needs"),
        # A lone surrogate escape decodes to no text; a line nested 200,000 deep would exhaust the parser's stack.
        (lambda source: _append_line(source / "train.jsonl", '{"q": "\\ud800"}'), True, "unpaired surrogate escape"),
        (lambda source: _append_line(source / "train.jsonl", "[" * 200_000 + "]" * 200_000), True,
         "nests too deeply"),
        # The evaluation set's name is a folder of the output: a path there must never be written through.
        (lambda source: _set_eval_dataset(source, "../.."), True, r"eval\.json: dataset '\.\./\.\.' is not a name"),
        (lambda source: _set_eval_dataset(source, "/tmp/elsewhere"), True, "is not a name"),
    ],
    ids=["missing-dir", "checksum", "truncated-jsonl", "truncated-json", "corrupt-manifest", "missing-file", "empty",
         "invalid-utf8", "nul-byte", "unlisted-eval", "lone-surrogate", "deep-nesting", "eval-dataset-dotdot",
         "eval-dataset-absolute"],
)
def test_missing_or_corrupt_source_is_rejected(workspace, breakage, fix_checksum, expected):
    before = tree_digest(workspace.translate.out_dir)
    breakage(workspace.data.out_dir)
    if fix_checksum:
        changed = [n for n in ("train.jsonl", "eval.json") if (workspace.data.out_dir / n).exists()]
        for name in changed:
            _rewrite_checksum(workspace, name)
    with pytest.raises(HybridReproError, match=expected):
        run_translate(workspace)
    assert tree_digest(workspace.translate.out_dir) == before


@pytest.mark.parametrize(
    "translate, expected",
    [
        ({"eval_languages": ["qen", "xx"]}, r"\['xx'\] are unknown .* known languages: qen, qde, qru"),
        ({"train_languages": ["qde", "qru"], "low_resource": {}}, "source language 'qen'"),
        ({"low_resource": {"qar": 0.001}}, "training language 'qar' has no examples"),
        ({"low_resource": {"qen": 0.5}}, "names the source language"),
        ({"backend": "nllb", "model_revision": "a" * 40}, "set translate.backend: lexicon"),
    ],
)
def test_bad_language_settings_are_rejected(workspace, tmp_path, translate, expected):
    before = tree_digest(workspace.translate.out_dir)
    params = small_params(tmp_path, translate=translate)
    with pytest.raises(HybridReproError, match=expected):
        run_translate(params)
    assert tree_digest(workspace.translate.out_dir) == before


def test_dataset_without_training_examples_is_rejected(workspace):
    train_path = workspace.data.out_dir / "train.jsonl"
    kept = [line for line in train_path.read_text().splitlines() if '"synth-kw"' not in line]
    train_path.write_text("\n".join(kept) + "\n")
    _rewrite_checksum(workspace, "train.jsonl")
    with pytest.raises(HybridReproError, match=r"\['synth-kw'\] have no training examples"):
        run_translate(workspace)


def test_failure_mid_write_leaves_previous_output(workspace, monkeypatch):
    before = tree_digest(workspace.translate.out_dir)

    def broken_writer(out_dir, *args):
        (out_dir / "train.jsonl").write_text("{}\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(translate_stage, "write_translated_corpus", broken_writer)
    with pytest.raises(KeyboardInterrupt):
        run_translate(workspace)
    assert tree_digest(workspace.translate.out_dir) == before
    assert not [p for p in workspace.translate.out_dir.parent.iterdir() if p.name.startswith(".")]


def test_unwritable_output_location_is_rejected(workspace, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    params = small_params(tmp_path, translate={"out_dir": os.path.relpath(blocker / "translated")})
    with pytest.raises(HybridReproError, match="cannot create directory"):
        run_translate(params)
