"""Paired sign-flip tests on per-query AP and Holm's correction, on data where the answer is known."""

import numpy as np
import pytest

from hybrid_repro.errors import HybridReproError
from hybrid_repro.significance import (Comparison, QueryValues, compare, holm_adjust, pool_seeds,
                                       query_average_precision, sign_flip_test, with_holm)
from hybrid_repro.stages.evaluate import write_per_query

RNG = np.random.default_rng(0)


def test_identical_samples_give_p_one():
    ap = RNG.uniform(size=500)
    assert sign_flip_test(ap, ap.copy(), n_resamples=999, seed=1) == pytest.approx(1.0)


def test_a_clear_shift_is_significant_and_noise_alone_is_not():
    ap = RNG.uniform(0.2, 0.8, size=400)
    noise = RNG.normal(0, 0.05, size=400)
    assert sign_flip_test(ap + 0.03 + noise, ap, n_resamples=9999, seed=1) < 0.01
    assert sign_flip_test(ap + noise, ap, n_resamples=9999, seed=1) > 0.05


def test_small_samples_approach_the_exact_p_value():
    # Five positive differences: of the 2^5 sign patterns only all-plus and all-minus are as extreme.
    p_value = sign_flip_test(np.full(5, 0.6), np.full(5, 0.5), n_resamples=9999, seed=0)
    assert p_value == pytest.approx(2 / 32, abs=0.01)


def test_the_same_seed_gives_the_same_p_value():
    first, second = RNG.uniform(size=50), RNG.uniform(size=50)
    assert sign_flip_test(first, second, n_resamples=999, seed=3) == sign_flip_test(first, second, n_resamples=999, seed=3)


def test_unequal_samples_are_an_error():
    with pytest.raises(HybridReproError, match="equal, non-empty"):
        sign_flip_test(np.ones(3), np.ones(4), n_resamples=99, seed=0)


def test_holm_adjustment_by_hand():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> made monotone: 0.06.
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm_adjust([]) == []


def test_holm_keeps_the_order_of_the_raw_p_values_and_never_lowers_them():
    raw = RNG.uniform(0, 0.1, size=20)
    adjusted = np.array(holm_adjust(raw))
    order = np.argsort(raw)
    assert np.all(np.diff(adjusted[order]) >= 0)
    assert np.all(adjusted >= raw) and np.all(adjusted <= 1)


def test_with_holm_fills_the_adjusted_p_values():
    comparisons = [Comparison("ds", "mo", "a", "b", 10, 0.1, p) for p in (0.01, 0.02)]
    assert [c.p_holm for c in with_holm(comparisons)] == pytest.approx([0.02, 0.02])


def test_seeds_are_pooled_per_query_over_the_queries_of_every_seed():
    seed_1 = QueryValues(np.array(["a", "b", "c"]), np.array([0.1, 0.2, 0.3]))
    seed_2 = QueryValues(np.array(["a", "c"]), np.array([0.3, 0.5]))
    seed_3 = QueryValues(np.array(["a", "c"]), np.array([0.5, 0.1]))
    pooled = pool_seeds([seed_1, seed_2, seed_3])
    assert pooled.qids.tolist() == ["a", "c"]
    assert pooled.values == pytest.approx([0.3, 0.3])


def test_per_query_ap_averages_cross_lingual_targets(tmp_path):
    rows = [
        {"setting": "mo", "qid": "1_aa", "query_language": "aa", "target_language": "aa", "map": 0.5},
        {"setting": "cr", "qid": "1_aa", "query_language": "aa", "target_language": "bb", "map": 0.2},
        {"setting": "cr", "qid": "1_aa", "query_language": "aa", "target_language": "cc", "map": 0.6},
        {"setting": "cr", "qid": "2_bb", "query_language": "bb", "target_language": "aa", "map": 1.0},
    ]
    write_per_query(tmp_path / "per_query.parquet", rows)
    values = query_average_precision(tmp_path / "per_query.parquet", ["mo", "cr"])
    assert values["cr"].qids.tolist() == ["1_aa", "2_bb"] and values["cr"].values == pytest.approx([0.4, 1.0])
    assert values["mo"].qids.tolist() == ["1_aa"] and values["mo"].values == pytest.approx([0.5])
    with pytest.raises(HybridReproError, match="no 'mul' rows"):
        query_average_precision(tmp_path / "per_query.parquet", ["mo", "mul"])
    with pytest.raises(HybridReproError, match="re-run the evaluate stage"):
        query_average_precision(tmp_path / "missing.parquet", ["mo"])


def test_compare_pairs_by_query():
    first = QueryValues(np.array([f"q{i}" for i in range(30)]), np.linspace(0.5, 0.9, 30))
    shuffled = RNG.permutation(30)
    second = QueryValues(first.qids[shuffled], first.values[shuffled] - 0.1)
    result = compare("ds", "mul", ("hybrid", first), ("x-y", second), n_resamples=999, seed=0)
    assert (result.n_queries, result.first, result.second) == (30, "hybrid", "x-y")
    assert result.mean_difference == pytest.approx(0.1) and result.p_value < 0.01
    with pytest.raises(HybridReproError, match="share no scored"):
        compare("ds", "mul", ("a", first), ("b", QueryValues(np.array(["z"]), np.array([0.1]))),
                n_resamples=99, seed=0)
