"""The realised-composition summary written into each run's metrics JSON."""

from hybrid_repro.training.composition import summarise_batches


def test_summary_counts_branches_languages_datasets_and_masked_pairs():
    rows = [
        {"strategy": "mono", "dataset": "a", "language_pairs": {"en->en": 4}, "false_negatives_masked": 0},
        {"strategy": "mono", "dataset": "b", "language_pairs": {"de->de": 4}, "false_negatives_masked": 2},
        {"strategy": "mono", "dataset": "a", "language_pairs": {"en->en": 4}, "false_negatives_masked": 0},
        {"strategy": "x-y", "dataset": "a", "language_pairs": {"en->de": 3, "de->zh": 1}, "false_negatives_masked": 1},
    ]
    summary = summarise_batches(rows)
    assert summary["batches"] == 4 and summary["monolingual_share"] == 0.75
    assert summary["monolingual_languages"] == {"de": 0.3333, "en": 0.6667}
    assert summary["cross_lingual_query_languages"] == {"de": 0.25, "en": 0.75}
    assert summary["cross_lingual_passage_languages"] == {"de": 0.75, "zh": 0.25}
    assert summary["datasets"] == {"a": 0.75, "b": 0.25}
    assert summary["false_negatives_masked"] == {"pairs": 3, "batches": 2}


def test_single_strategy_runs_have_empty_shares_for_the_other_branch():
    rows = [{"strategy": "x-y", "dataset": "a", "language_pairs": {"en->de": 2}, "false_negatives_masked": 0}]
    summary = summarise_batches(rows)
    assert summary["monolingual_share"] == 0.0 and summary["monolingual_languages"] == {}
