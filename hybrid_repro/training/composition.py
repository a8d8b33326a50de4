"""What a run's batches actually held: the realised composition summarised from ``batches.jsonl`` rows.

The sampler's rules fix the expected shares (docs/sampling.md); this summary is the measured side, written
into the run's metrics JSON so that a reader can check, per run, the monolingual share against alpha, the
monolingual languages against uniform, and how many in-batch false negatives the loss had to mask.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable


def shares(counts: Counter, total: int) -> dict[str, float]:
    """Each key's share of ``total``, rounded to 4 decimals, keys sorted."""
    return {key: round(count / total, 4) for key, count in sorted(counts.items())}


def summarise_batches(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Shares over the rows written per step (``strategy``, ``dataset``, ``language_pairs``,
    ``false_negatives_masked``).

    * ``monolingual_share``: the realised alpha;
    * ``monolingual_languages``: the share of monolingual batches in each language;
    * ``cross_lingual_query_languages`` / ``cross_lingual_passage_languages``: shares of X-Y triplets;
    * ``datasets``: the share of batches from each dataset;
    * ``false_negatives_masked``: (query, passage) pairs the loss excluded because the passage holds the
      query's answer (its translation, or the same passage as another triplet's positive), and the number of
      batches with at least one.
    """
    rows = list(rows)
    strategies, datasets, mono_languages = Counter(), Counter(), Counter()
    query_languages, passage_languages = Counter(), Counter()
    masked = batches_with_masked = 0
    for row in rows:
        strategies[row["strategy"]] += 1
        datasets[row["dataset"]] += 1
        for pair, count in row["language_pairs"].items():
            query, passage = pair.split("->")
            if row["strategy"] == "mono":
                mono_languages[query] += 1
            else:
                query_languages[query] += count
                passage_languages[passage] += count
        masked += row["false_negatives_masked"]
        batches_with_masked += row["false_negatives_masked"] > 0
    n_mono = strategies["mono"]
    n_cross_triplets = sum(query_languages.values())
    return {
        "batches": len(rows),
        "monolingual_share": round(n_mono / len(rows), 4) if rows else None,
        "monolingual_languages": shares(mono_languages, n_mono) if n_mono else {},
        "cross_lingual_query_languages": shares(query_languages, n_cross_triplets) if n_cross_triplets else {},
        "cross_lingual_passage_languages": shares(passage_languages, n_cross_triplets) if n_cross_triplets else {},
        "datasets": shares(datasets, len(rows)) if rows else {},
        "false_negatives_masked": {"pairs": masked, "batches": batches_with_masked},
    }
