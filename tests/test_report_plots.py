"""Which runs make an alpha sweep."""

from pathlib import Path

from hybrid_repro.report_plots import sweep_groups
from hybrid_repro.seed_groups import RunGroup


def group(strategy, alpha, mono_probability) -> RunGroup:
    return RunGroup(strategy, strategy, alpha, mono_probability, ("r",), (0,), (Path("."),), {})


def test_a_sweep_needs_both_baselines_and_a_hybrid_and_is_ordered_by_alpha():
    mono, cross = group("x-x-mono", None, 1.0), group("x-y", None, 0.0)
    hybrids = [group("hybrid", 0.75, 0.75), group("hybrid", 0.25, 0.25)]
    zero_shot = group(None, None, None)
    assert [g.mono_probability for g in sweep_groups([zero_shot, mono, cross, *hybrids])] == [0.0, 0.25, 0.75, 1.0]
    assert sweep_groups([mono, cross]) == []
    assert sweep_groups([mono, *hybrids]) == []
