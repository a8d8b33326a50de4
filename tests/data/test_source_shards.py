"""Normalised rows, mined negatives and Parquet shards of one source."""

import pytest

from hybrid_repro.data.negatives import Passages, mine_negatives
from hybrid_repro.data.source_shards import COLUMNS, normalise, read_source_pairs, write_source
from hybrid_repro.data.training_sources import SPECS, RawPair
from hybrid_repro.errors import HybridReproError

TOPICS = ["glacier ice cave", "volcano lava eruption", "river delta sediment", "desert dune sand",
          "forest canopy tree", "ocean tide moon"]


def _pairs():
    """Three questions per passage, so several examples share each positive passage."""
    return [RawPair(f"{topic}/{k}", f"question {k} about {topic}", f"A passage on the {topic}.", passage_key=topic)
            for topic in TOPICS for k in range(3)]


@pytest.mark.parametrize("method", ["bm25", "random"])
def test_a_mined_negative_is_never_a_passage_with_the_positives_passage_id(method):
    rows, dropped = normalise(SPECS["duorc"], _pairs(), method, seed=3)
    assert dropped == {"empty": 0, "duplicate": 0} and len(rows) == 18
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


def test_filtering_drops_empty_and_repeated_pairs_and_given_negatives_are_required_when_asked():
    pairs = _pairs()[::3][:2] + [_pairs()[0], RawPair("x", "", "p")]
    _, dropped = normalise(SPECS["duorc"], pairs, "random", seed=0)
    assert dropped == {"empty": 1, "duplicate": 1}
    with pytest.raises(HybridReproError, match="negatives to bm25 or random"):
        normalise(SPECS["mrtydi"], _pairs(), "given", seed=0)


def test_shards_are_few_per_language_with_checksums_the_reader_verifies(tmp_path):
    pairs = [RawPair(str(i), f"q{i}", f"p{i}", language=lang, negative=f"n{i}") for lang in ("en", "de")
             for i in range(5)]
    rows, dropped = normalise(SPECS["mmarco"], pairs, "given", seed=0)
    manifest = write_source(tmp_path, SPECS["mmarco"], rows, dropped, {"revision": "0" * 40}, "given", shard_rows=2)
    assert [shard["file"] for shard in manifest["shards"]] == [
        f"{lang}-{n:04d}.parquet" for lang in ("de", "en") for n in range(3)]
    assert manifest["pairs"] == {"de": 5, "en": 5} and manifest["revision"] == "0" * 40
    _, table = read_source_pairs(tmp_path)
    assert table.num_rows == 10 and tuple(table.column_names) == COLUMNS
    (tmp_path / "en-0001.parquet").write_bytes(b"tampered")
    with pytest.raises(HybridReproError, match="source@mmarco"):
        read_source_pairs(tmp_path)
