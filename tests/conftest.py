"""Shared fixtures: tests that run from pytest's base temporary folder (output paths must be relative), and a
synthetic MIRACL language served from a mirror directory (tests/miracl_synthetic.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from miracl_synthetic import CORPUS_REVISION, MIRACL_LANG, TOPICS_REVISION, write_mirror

from hybrid_repro.evaluation import miracl_data


@pytest.fixture(scope="module")
def in_basetemp(tmp_path_factory):
    """Run the module's tests (and its module fixtures) from pytest's base temporary directory.

    Output paths in params must be relative to the working directory (the project root in real
    use); from here every ``tmp_path`` has a relative path, ``os.path.relpath(tmp_path)``.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.getbasetemp())
        yield


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
