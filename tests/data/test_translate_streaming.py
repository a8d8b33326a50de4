"""The translate stage streams a paper corpus: released records pass through one at a time, the machine-translated
part is translated and written in chunks, and the outputs are byte for byte those of the in-memory stage it
replaced.

A model-free engine behind the real :class:`NeuralTranslator` (sentence split, dedup, length sort, batches, rejoin)
makes each sentence's translation a function of the sentence alone, so any chunking must give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tracemalloc
from pathlib import Path

import pytest
from paper_sources_fixture import mini_profile_on_fixtures
from test_langid_check import sample_texts
from tiny_mt_models import ReversingEngine

from hybrid_repro.config import LangIdCheckConfig, params_from_dict
from hybrid_repro.data import translated_corpus
from hybrid_repro.data.jsonl import write_jsonl
from hybrid_repro.data.langid_check import identify
from hybrid_repro.data.mt_families import model_family
from hybrid_repro.data.neural_translate import NeuralTranslator
from hybrid_repro.data.source_corpus import found_among
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import sha256_file
from hybrid_repro.sources.files import triple_source_id
from hybrid_repro.sources.shards import write_source
from hybrid_repro.sources.specs import SPECS, RawPair
from hybrid_repro.stages import translate as translate_stage
from hybrid_repro.stages.data import run_data
from hybrid_repro.stages.translate import run_translate

MMARCO_LANGUAGES = ("en", "ar", "de", "ru")
# What the in-memory translate stage (commit 193713b, before streaming) wrote on `paper_corpus` with
# ReversingEngine: sha256 of each output file, and of the metrics' language-check section. The manifest's since
# SQuADShifts is named by its canonical id, ludwigschmidt/squadshifts, in the dataset description it carries (with
# the old name, squadshifts, the stage still writes 27da258c...).
IN_MEMORY_OUTPUT = {
    ".hybrid-repro-output": "872bffe67525ca27e2d2a2e312fc04e82256b1c65d3a7bd08732d2d7141ad5fe",
    "manifest.json": "2db69e7d1dc08640b59fcaf87cd3ae1648b57ffa77b3a4c2d2b05663cb4e1542",
    "train.jsonl": "e4a9359313ba23d028807a00518364bd5ff7b2ca3abca834474c14c27d49f316",
    "val.jsonl": "a9ab24211e2375e424ed4149fd59abf0fa9bef9acc9a31bb117602dadba1a97a",
}
IN_MEMORY_LANGID = "90d3b214b15d45da28949c1bb54604d50c4523502c3e3af648cc81d913dfd13b"


def _wikiqa_pairs(count: int) -> list[RawPair]:
    # Three questions per passage (deduplicated before translation), passages of two sentences (split and rejoined).
    return [RawPair(f"Q{i}", f"Where does the river number {i} meet the sea near town {i % 7}?",
                    f"River {i // 3} flows through the valley. It meets the sea near town {i // 3 % 7}.")
            for i in range(count)]


def _mrtydi_pairs(count: int) -> list[RawPair]:
    return [RawPair(str(i), f"Who painted picture {i}?", f"Picture {i} was painted by Ms. Jones in {1900 + i}.",
                    negative=f"Dogs bark at the postman {i}.", passage_key=f"doc{i}", negative_key=f"doc{i + 1000}")
            for i in range(count)]


def _mmarco_pairs(triples: int) -> list[RawPair]:
    """``triples`` triples in MMARCO_LANGUAGES; every fifth lacks Russian, every seventh German."""
    pairs = []
    for language in MMARCO_LANGUAGES:
        for line in range(triples):
            if (language == "ru" and line % 5 == 4) or (language == "de" and line % 7 == 6):
                continue
            query = line // 2  # two triples per query, as MS MARCO's BM25 negatives give
            pairs.append(RawPair(triple_source_id(line, str(query)), f"<{language}> question {query} about tea?",
                                 f"<{language}> passage {query}: tea grows on hills.", language=language,
                                 negative=f"<{language}> passage {line + 10_000}: coffee grows on hills.",
                                 passage_key=str(query), negative_key=str(line + 10_000)))
    return pairs


def _squadshifts_pairs(count: int) -> list[RawPair]:
    return [RawPair(f"nyt/{i}", f"When did the ferry {i} sail?", f"Ferry {i} sailed in {1960 + i}.")
                for i in range(count)]


def paper_corpus(root: Path, mmarco_triples: int = 60, wikiqa_pairs: int = 45) -> dict:
    """Fetched shards of the four kinds of source, assembled by the data stage under ``root`` (the working
    directory); the raw params of the mini profile on them, with Thai a low-resource language."""
    raw = mini_profile_on_fixtures(Path("no-model"))  # never loaded: the engine is replaced
    raw["translate"]["low_resource"] = {"th": 0.4}
    params = params_from_dict(raw)
    pairs = {"wikiqa": _wikiqa_pairs(wikiqa_pairs), "mrtydi": _mrtydi_pairs(10),
             "mmarco": _mmarco_pairs(mmarco_triples), "squadshifts": _squadshifts_pairs(6)}
    for name, settings in params.sources.datasets.items():
        directory = root / params.sources.out_dir / name
        directory.mkdir(parents=True)
        write_source(directory, SPECS[name], pairs[name], {SPECS[name].pin_key: getattr(settings, SPECS[name].pin_key)},
                     settings.negatives, params.seed, shard_rows=16, max_pairs=settings.max_pairs)
    run_data(params)
    return raw


def run_with_reversing_engine(raw: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """The translate stage of ``raw`` with ReversingEngine in place of the model."""
    translator = NeuralTranslator(model_family("m2m100"), ReversingEngine(), cache=None, batch_size=8, progress=False)
    monkeypatch.setattr(translate_stage, "build_translator", lambda *args: translator)
    run_translate(params_from_dict(raw))


def output_digests(raw: dict) -> tuple[dict[str, str], str]:
    params = params_from_dict(raw)
    out = params.translate.out_dir
    files = {str(p.relative_to(out)): sha256_file(p) for p in sorted(out.rglob("*")) if p.is_file()}
    langid = json.loads(params.translate.metrics_path.read_text())["langid"]
    return files, hashlib.sha256(json.dumps(langid, sort_keys=True).encode()).hexdigest()


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("streaming")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        raw = paper_corpus(root)
    return root, raw


@pytest.mark.parametrize("chunk_examples", [4, 10_000], ids=["many-chunks", "one-chunk"])
def test_output_is_byte_identical_to_the_in_memory_stage(corpus_dir, monkeypatch, chunk_examples):
    root, raw = corpus_dir
    monkeypatch.chdir(root)
    monkeypatch.setattr(translated_corpus, "CHUNK_EXAMPLES", chunk_examples)
    run_with_reversing_engine(raw, monkeypatch)
    assert output_digests(raw) == (IN_MEMORY_OUTPUT, IN_MEMORY_LANGID)


def _edit_released(source: Path, edit) -> None:
    """Replace released.jsonl's records by ``edit(records)`` and record the new checksum, as a faulty data stage
    would have written it."""
    records = [json.loads(line) for line in (source / "released.jsonl").read_text().splitlines()]
    write_jsonl(source / "released.jsonl", edit(records))
    manifest = json.loads((source / "manifest.json").read_text())
    manifest["files"]["released.jsonl"] = sha256_file(source / "released.jsonl")
    (source / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("edit, expected", [
    (lambda records: records[:2] + [{**records[2], "texts": {}}] + records[3:], r"released.jsonl line 3 lacks texts"),
    (lambda records: records + [{**records[0], "dataset": "wikiqa"}],
     r"line 61: dataset 'wikiqa' is not a released dataset"),
    (lambda records: records[:5] + [{**records[5], "texts": {"ar": {"query": "q", "positive": "p"}}}],
     r"line 6: the ar texts lack a query, positive or negative"),
    (lambda records: [], r"datasets \['mmarco'\] have no training examples"),
], ids=["no-texts", "not-released", "text-missing", "no-records"])
def test_a_faulty_released_record_fails_the_stage_and_writes_nothing(corpus_dir, tmp_path, monkeypatch, edit,
                                                                      expected):
    root, raw = corpus_dir
    shutil.copytree(root / "data" / "source", tmp_path / "data" / "source")
    monkeypatch.chdir(tmp_path)
    _edit_released(tmp_path / "data" / "source", edit)
    with pytest.raises(HybridReproError, match=expected):
        run_with_reversing_engine(raw, monkeypatch)
    assert not (tmp_path / "data" / "translated").exists()


def _peak_traced_mib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mmarco_triples: int) -> float:
    root = tmp_path / str(mmarco_triples)
    root.mkdir()
    monkeypatch.chdir(root)
    raw = paper_corpus(root, mmarco_triples=mmarco_triples)
    identify(["The language detector loads its model once per process: not part of the measurement."])
    tracemalloc.start()
    try:
        run_with_reversing_engine(raw, monkeypatch)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_released_records(tmp_path, monkeypatch):
    """Four times the mMARCO records leave the stage's peak of traced Python memory where it was (the in-memory
    stage went from 14 to 54 MiB here). Both sizes write more than the 1 MiB that a checksum reads at a time."""
    small, large = (_peak_traced_mib(tmp_path, monkeypatch, triples) for triples in (2000, 8000))
    assert large - small < 0.5, (small, large)


def test_language_check_sample_ignores_order_and_repetitions():
    """The streamed sample (bottom-k of a seeded hash) depends on the set of distinct texts only; with no more
    candidates than sample_size it is all of them, sorted, as the sample it replaced was."""
    config = LangIdCheckConfig(sample_size=5, min_chars=3)
    texts = [f"text number {i}" for i in range(40)]
    sample = sample_texts(texts, config, "7:langid:qa:de")
    assert len(sample) == 5 and sample == sorted(sample) and set(sample) <= set(texts)
    assert sample_texts(list(reversed(texts)) * 3 + ["no"], config, "7:langid:qa:de") == sample
    assert sample_texts(texts, config, "8:langid:qa:de") != sample
    assert sample_texts(texts[:5] + ["no"], config, "7:langid:qa:de") == sorted(texts[:5])


def test_released_records_are_read_only_until_what_a_check_needs_is_found():
    pulled = []

    def records():
        for number in range(1_000):
            pulled.append(number)
            yield {"dataset": "mmarco", "texts": {"en": {}, "ar": {}} if number < 5 else {"en": {}, "de": {}}}

    assert found_among(records(), set(), lambda record: record["texts"]) == set() and pulled == []
    assert found_among(records(), {"ar", "de"}, lambda record: record["texts"]) == {"ar", "de"} and len(pulled) == 6
    pulled.clear()
    assert found_among(records(), {"ar", "hi"}, lambda record: record["texts"]) == {"ar"} and len(pulled) == 1_000
