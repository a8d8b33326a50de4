"""Normalised rows, mined negatives and Parquet shards of one source."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hybrid_repro.sources.negatives import Passages, mine_negatives
from hybrid_repro.sources.shards import COLUMNS, iter_shard_rows, read_source_manifest, write_source
from hybrid_repro.sources.specs import SPECS, RawPair
from hybrid_repro.errors import HybridReproError

TOPICS = ["glacier ice cave", "volcano lava eruption", "river delta sediment", "desert dune sand",
          "forest canopy tree", "ocean tide moon"]


def _pairs():
    """Three questions per passage, so several examples share each positive passage."""
    return [RawPair(f"{topic}/{k}", f"question {k} about {topic}", f"A passage on the {topic}.", passage_key=topic)
            for topic in TOPICS for k in range(3)]


PIN = {"revision": "0" * 40}


def _rows(directory):
    """Every row of a written source, through the streaming reader (which checks each shard's sha256)."""
    return list(iter_shard_rows(directory, read_source_manifest(directory)))


def _table(directory, manifest):
    """The shards read whole by pyarrow in the manifest's order: the oracle for the streaming reader."""
    return pa.concat_tables([pq.read_table(directory / shard["file"]) for shard in manifest["shards"]])


def _written(tmp_path, name, pairs, negatives, shard_rows=100):
    """The manifest and rows of ``pairs`` written as source ``name``."""
    manifest = write_source(tmp_path, SPECS[name], pairs, PIN, negatives, seed=3, shard_rows=shard_rows, max_pairs=None)
    return manifest, _rows(tmp_path)


@pytest.mark.parametrize("method", ["bm25", "random"])
def test_a_mined_negative_is_never_a_passage_with_the_positives_passage_id(method, tmp_path):
    manifest, rows = _written(tmp_path, "duorc", _pairs(), method)
    assert manifest["dropped"] == {"empty": 0, "duplicate": 0} and len(rows) == 18
    positives_by_id = {}
    for row in rows:
        positives_by_id.setdefault(row["passage_id"], set()).add(row["positive"])
    for row in rows:
        assert row["negative_origin"] == method
        assert row["negative_id"] != row["passage_id"]
        # Nor the text of any example's positive that shares this example's passage id.
        assert row["negative"] not in positives_by_id[row["passage_id"]]


def test_bm25_picks_the_lexically_closest_other_passage():
    passages = Passages.distinct(["a", "b", "c"], ["glacier ice cave", "glacier ice sheet melting", "desert sand"])
    assert mine_negatives(["glacier ice"], ["a"], passages, "bm25", 0, "d") == [1]


def test_mining_needs_two_distinct_passages():
    with pytest.raises(HybridReproError, match="at least two"):
        mine_negatives(["q"], ["a"], Passages(["a"], ["text"]), "random", 0, "d")


def test_filtering_drops_empty_and_repeated_pairs_and_given_negatives_are_required_when_asked(tmp_path):
    pairs = _pairs()[::3][:2] + [_pairs()[0], RawPair("x", "", "p")]
    manifest, _ = _written(tmp_path, "duorc", pairs, "random")
    assert manifest["dropped"] == {"empty": 1, "duplicate": 1}
    with pytest.raises(HybridReproError, match="negatives to bm25 or random"):
        write_source(tmp_path, SPECS["mrtydi"], _pairs(), PIN, "given", seed=0, shard_rows=10, max_pairs=None)


def test_given_triples_are_kept_as_released_even_when_query_and_positive_repeat(tmp_path):
    # MS MARCO pairs one query and positive with many BM25 negatives: every triple is a training example.
    pairs = [RawPair(str(i), "q", "p", negative=f"n{i}", passage_key="1", negative_key=str(10 + i)) for i in range(3)]
    manifest, rows = _written(tmp_path, "mmarco", pairs, "given")
    assert manifest["pairs"] == {"en": 3} and [row["negative"] for row in rows] == ["n0", "n1", "n2"]


def test_shards_are_few_per_language_with_checksums_the_reader_verifies(tmp_path):
    pairs = [RawPair(str(i), f"q{i}", f"p{i}", language=lang, negative=f"n{i}") for lang in ("en", "de")
             for i in range(5)]
    manifest = write_source(tmp_path, SPECS["mmarco"], pairs, PIN, "given", seed=0, shard_rows=2, max_pairs=None)
    assert [shard["file"] for shard in manifest["shards"]] == [
        f"{lang}-{n:04d}.parquet" for lang in ("de", "en") for n in range(3)]
    assert manifest["pairs"] == {"de": 5, "en": 5} and manifest["revision"] == "0" * 40
    table = _table(tmp_path, manifest)
    assert table.num_rows == 10 and tuple(table.column_names) == COLUMNS
    (tmp_path / "en-0001.parquet").write_bytes(b"tampered")
    with pytest.raises(HybridReproError, match="source@mmarco"):
        _rows(tmp_path)


def _two_languages(tmp_path, shard_rows=2):
    pairs = [RawPair(f"{i}/q", f"q{i}", f"p{i}", language=lang, negative=f"n{i}") for lang in ("en", "de")
             for i in range(5)]
    return write_source(tmp_path, SPECS["mmarco"], pairs, PIN, "given", seed=0, shard_rows=shard_rows, max_pairs=None)


def test_streamed_rows_are_the_table_rows_in_order_and_a_language_alone_on_request(tmp_path, monkeypatch):
    monkeypatch.setattr("hybrid_repro.sources.shards.BATCH_ROWS", 1)  # batches smaller than a shard
    manifest = _two_languages(tmp_path)
    assert list(iter_shard_rows(tmp_path, manifest)) == _table(tmp_path, manifest).to_pylist()
    assert [row["query"] for row in iter_shard_rows(tmp_path, manifest, "en")] == [f"q{i}" for i in range(5)]


def test_each_shard_is_verified_just_before_it_is_read(tmp_path):
    manifest = _two_languages(tmp_path)
    (tmp_path / "de-0001.parquet").write_bytes(b"tampered")
    rows = iter_shard_rows(tmp_path, manifest, "de")
    assert [next(rows)["query"], next(rows)["query"]] == ["q0", "q1"]  # de-0000 streams before de-0001 is reached
    with pytest.raises(HybridReproError, match="de-0001.parquet is missing or does not match.*source@mmarco"):
        next(rows)


def test_a_shard_whose_rows_are_in_another_language_than_its_entry_is_refused(tmp_path):
    manifest = _two_languages(tmp_path)
    manifest["shards"][0]["language"] = "en"  # de-0000 listed as English
    with pytest.raises(HybridReproError, match=r"de-0000.parquet holds rows in \['de'\], but .* lists it as 'en'"):
        list(iter_shard_rows(tmp_path, manifest))


def test_a_manifest_shard_without_its_language_is_refused(tmp_path):
    manifest = _two_languages(tmp_path)
    del manifest["shards"][1]["language"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(HybridReproError, match="entries with a file, a language and a sha256"):
        read_source_manifest(tmp_path)
