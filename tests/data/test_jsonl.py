"""JSON Lines round trips: what write_jsonl writes, read_jsonl reads back unchanged."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybrid_repro.data.jsonl import iter_jsonl, read_jsonl, write_jsonl
from hybrid_repro.errors import HybridReproError

# Characters str.splitlines() ends a line at; JSON escapes the ASCII ones but leaves these three as they are.
LINE_BREAKERS = "\u2028\u2029\x85\n\r\x0b\x0c\x1c\x1d\x1e"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["query", "positive", "id"]),
                                st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(LINE_BREAKERS))),
                max_size=5))
def test_records_round_trip_whatever_their_texts_hold(tmp_path_factory, records):
    path = tmp_path_factory.mktemp("jsonl") / "records.jsonl"
    assert write_jsonl(path, records) == len(records)
    assert read_jsonl(path) == records


def test_a_text_with_a_unicode_line_separator_stays_one_record(tmp_path):
    records = [{"text": "a\u2028b\u2029c\x85d"}, {"text": "e"}]
    write_jsonl(tmp_path / "r.jsonl", records)
    assert read_jsonl(tmp_path / "r.jsonl") == records == list(iter_jsonl(tmp_path / "r.jsonl"))


def test_a_corrupt_line_is_named(tmp_path):
    (tmp_path / "r.jsonl").write_text('{"a": 1}\n{"b": \n')
    with pytest.raises(HybridReproError, match="line 2 is not valid JSON"):
        read_jsonl(tmp_path / "r.jsonl")
