"""Atomic outputs: a failure leaves nothing that looks like a valid output."""

import os

import pytest

from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import atomic_output_dir, atomic_output_file, read_json, sha256_file, write_json


def test_failed_directory_write_leaves_previous_output(tmp_path):
    out = tmp_path / "out"
    with atomic_output_dir(out) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output_dir(out) as tmp:
            (tmp / "a.txt").write_text("half")
            raise RuntimeError("killed")
    assert (out / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failed_file_write_leaves_no_file(tmp_path):
    target = tmp_path / "m.json"
    with pytest.raises(ValueError):
        with atomic_output_file(target) as handle:
            handle.write("{")
            raise ValueError
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_json_round_trip_and_checksum(tmp_path):
    write_json(tmp_path / "x.json", {"a": [1, 2]})
    assert read_json(tmp_path / "x.json") == {"a": [1, 2]}
    assert len(sha256_file(tmp_path / "x.json")) == 64


def test_read_json_errors(tmp_path):
    with pytest.raises(HybridReproError, match="missing file"):
        read_json(tmp_path / "none.json")
    (tmp_path / "t.json").write_text('{"a": ')
    with pytest.raises(HybridReproError, match="truncated or corrupt"):
        read_json(tmp_path / "t.json")


def test_output_directory_that_cannot_be_created(tmp_path):
    # A regular file where a directory is expected fails even for root, unlike chmod.
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    with pytest.raises(HybridReproError, match="cannot create directory"):
        with atomic_output_dir(blocker / "out"):
            pass


def test_output_directory_without_write_permission(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(HybridReproError, match="not writable"):
        with atomic_output_file(tmp_path / "out.json"):
            pass


def test_outputs_get_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_output_dir(tmp_path / "d"):
            pass
        write_json(tmp_path / "f.json", {})
    finally:
        os.umask(old)
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == 0o644
