"""Shared fixtures: a synthetic MIRACL language served from a mirror directory (tests/miracl_synthetic.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from miracl_synthetic import CORPUS_REVISION, MIRACL_LANG, TOPICS_REVISION, write_mirror

from hybrid_repro.evaluation import miracl_data


@pytest.fixture()
def miracl_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A mirror holding the synthetic language; its official query count is set to match."""
    mirror = tmp_path / "mirror"
    write_mirror(mirror)
    monkeypatch.setitem(miracl_data.OFFICIAL_DEV_QUERIES, MIRACL_LANG, 12)
    monkeypatch.delenv("HYBRID_REPRO_DATA_MIRROR", raising=False)
    return mirror


@pytest.fixture()
def miracl_language_dir(tmp_path: Path, miracl_mirror: Path) -> Path:
    """The synthetic language fetched from the mirror."""
    out = tmp_path / "data" / MIRACL_LANG
    miracl_data.fetch_miracl_language(MIRACL_LANG, out, topics_revision=TOPICS_REVISION,
                                      corpus_revision=CORPUS_REVISION, expected_dev_queries=12, mirror=miracl_mirror)
    return out
