"""The paper profiles on fixture sources: stand-ins for their unset pins, and shards of four sources written by the
real shard writer (as `source@NAME` writes them): a QA set to translate (WikiQA), an English-only set (Mr. TyDi), a
pre-translated set (mMARCO, three of its languages) and the validation set (SQuADShifts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from hybrid_repro.config import SourcesConfig, read_params_mapping
from hybrid_repro.sources.files import triple_source_id
from hybrid_repro.sources.shards import write_source
from hybrid_repro.sources.specs import SPECS, RawPair

REPO = Path(__file__).resolve().parents[1]
# Stand-ins for the committed paper profiles' pins, set or null: well-formed, but no real commit, so fixture outputs
# (whose manifests record the pins) do not change when a profile's pins do.
STAND_INS = {"revision": "0" * 40, "model_revision": "1" * 40, "sha256": "2" * 64}
FIXTURE_SOURCES = ("wikiqa", "mrtydi", "mmarco", "squadshifts")
MMARCO_LANGUAGES = ("en", "ar", "de")
# mMARCO triples as (query, positive, negative) numbers: triples 0 and 1 share their query and positive, as MS MARCO's
# do (one query with several BM25 negatives); triple 4 has no German text, as when a translation is missing.
MMARCO_TRIPLES = ((0, 0, 5), (0, 0, 6), (1, 1, 5), (2, 2, 7), (3, 3, 6))
MMARCO_WITHOUT_GERMAN = 4


def with_stand_ins(node: Any) -> Any:
    """``node`` with every pin (a ``revision``, ``model_revision`` or ``sha256``, set or null) replaced by its stand-in."""
    if isinstance(node, dict):
        return {key: STAND_INS[key] if key in STAND_INS else with_stand_ins(value) for key, value in node.items()}
    return node


def mmarco_text(field: str, number: int, language: str) -> str:
    """The released text of a query or passage in ``language``: distinct per language, as a translation is."""
    return f"[{language}] {field} {number}: the red house by the river is number {number}."


def _mmarco_pairs() -> list[RawPair]:
    pairs = []
    for language in MMARCO_LANGUAGES:
        for line, (query, positive, negative) in enumerate(MMARCO_TRIPLES):
            if language == "de" and line == MMARCO_WITHOUT_GERMAN:
                continue
            pairs.append(RawPair(triple_source_id(line, str(query)), mmarco_text("query", query, language),
                                 mmarco_text("passage", positive, language), language=language,
                                 negative=mmarco_text("passage", negative, language),
                                 passage_key=str(positive), negative_key=str(negative)))
    return pairs


FIXTURE_PAIRS = {
    "wikiqa": [RawPair(f"Q{i}", f"Where is the red house number {i}?", f"The red house number {i} is near the river.")
               for i in range(6)],
    "mrtydi": [RawPair(str(i), f"Who wrote book {i}?", f"Book {i} was written by Dr. Smith in {1990 + i}.",
                       negative=f"Cats sleep all day in house {i}.", passage_key=f"doc{i}", negative_key=f"doc{i + 10}")
               for i in range(4)],
    "mmarco": _mmarco_pairs(),
    "squadshifts": [RawPair(f"nyt/{i}", f"When was bridge {i} built?", f"Bridge {i} was built in {1950 + i}.")
                    for i in range(4)],
}


def write_fixture_sources(sources: SourcesConfig, seed: int,
                          pairs: Mapping[str, list[RawPair]] = FIXTURE_PAIRS) -> None:
    """Shards and manifest of every source that ``sources.datasets`` names, from ``pairs`` (by default the fixture
    sources'), at its pin and negatives."""
    for name, settings in sources.datasets.items():
        spec = SPECS[name]
        directory = sources.out_dir / name
        directory.mkdir(parents=True)
        write_source(directory, spec, pairs[name], {spec.pin_key: getattr(settings, spec.pin_key)},
                     settings.negatives, seed, shard_rows=4, max_pairs=settings.max_pairs)


def mini_profile_on_fixtures(mt_model: Path) -> dict[str, Any]:
    """The mini profile, its pins stood in, its sources cut to the fixture ones and its translator replaced by the
    tiny checkpoint ``mt_model`` with short greedy outputs (random weights: no language check can pass)."""
    raw = with_stand_ins(read_params_mapping(REPO / "profiles" / "mini.yaml"))
    raw["sources"]["datasets"] = {name: raw["sources"]["datasets"][name] for name in FIXTURE_SOURCES}
    raw["translate"].update(model_name=str(mt_model), num_beams=1, max_length_ratio=0.25, max_length_extra=2,
                            langid={"max_wrong_rate": 1.0})
    return raw
