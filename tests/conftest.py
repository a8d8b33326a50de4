"""Fixtures shared across test directories."""

import pytest


@pytest.fixture(scope="module")
def in_basetemp(tmp_path_factory):
    """Run the module's tests (and its module fixtures) from pytest's base temporary directory.

    Output paths in params must be relative to the working directory (the project root in real
    use); from here every ``tmp_path`` has a relative path, ``os.path.relpath(tmp_path)``.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.getbasetemp())
        yield
