"""Statistics over seeds."""

import pytest

from hybrid_repro.seed_groups import seed_statistics, stat


def test_stat_is_mean_and_sample_standard_deviation():
    assert stat([1.0, 2.0, 3.0]) == {"mean": 2.0, "std": 1.0, "n": 3}
    assert stat([0.4]) == {"mean": 0.4, "std": None, "n": 1}
    assert stat([None, None]) == {"mean": None, "std": None, "n": 0}
    assert stat([0.5, None, 0.7])["mean"] == pytest.approx(0.6)


def test_seed_statistics_mirror_the_metrics_document():
    def document(value):
        block = {"mean": {"map": value, "r@1": None}, "per_language": {"aa": {"map": value}}}
        return {"settings": {"mo": block}}

    result = seed_statistics([document(0.2), document(0.4)])
    assert result["mo"]["mean"]["map"]["mean"] == pytest.approx(0.3)
    assert result["mo"]["mean"]["r@1"]["n"] == 0
    assert result["mo"]["per_language"]["aa"]["map"]["std"] == pytest.approx(0.1414, abs=1e-4)
