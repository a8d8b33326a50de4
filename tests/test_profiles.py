"""Profiles are complete params files; the committed params.yaml is the demo profile."""

from pathlib import Path

import pytest

from hybrid_repro.config import PROFILES, load_params

REPO = Path(__file__).resolve().parents[1]
PROFILE_FILES = sorted((REPO / "profiles").glob("*.yaml"))


def test_every_known_profile_has_a_file():
    assert sorted(p.stem for p in PROFILE_FILES) == sorted(PROFILES)


@pytest.mark.parametrize("path", PROFILE_FILES, ids=lambda p: p.stem)
def test_profile_file_is_valid_and_names_itself(path):
    assert load_params(path).profile == path.stem


def test_params_yaml_is_the_demo_profile():
    assert (REPO / "params.yaml").read_text() == (REPO / "profiles" / "demo.yaml").read_text()
