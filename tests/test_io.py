"""Atomic outputs: a failure leaves nothing that looks like a valid output."""

import errno
import itertools
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from hybrid_repro.cli import cli
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import (MARKER_TEXT, OUTPUT_MARKER, atomic_output_dir, atomic_output_file, prepare_output_dir,
                             read_json, sha256_file, write_json)
from killing import killed_during

REPO = Path(__file__).resolve().parents[1]


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


# -- ownership: only directories the package wrote are replaced -------------------------------------


def write_output(path, text: str) -> None:
    """An output directory of two files, one nested, both holding ``text``."""
    with atomic_output_dir(path) as tmp:
        (tmp / "a.txt").write_text(text)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.txt").write_text(text)


def output_text(path) -> str | None:
    """The text of an output written by :func:`write_output`, checking it is whole; None if absent."""
    if not path.exists():
        return None
    assert sorted(p.name for p in path.iterdir()) == sorted([OUTPUT_MARKER, "a.txt", "sub"])
    text = (path / "a.txt").read_text()
    assert (path / "sub" / "b.txt").read_text() == text
    return text


def test_foreign_directory_is_refused_and_left_intact(tmp_path):
    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "chapter1.tex").write_text("years of work")
    with pytest.raises(HybridReproError, match=f"refusing to replace .*thesis: it holds no {OUTPUT_MARKER}"):
        write_output(foreign, "x")
    assert [p.name for p in foreign.iterdir()] == ["chapter1.tex"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]


def test_file_or_symlink_in_the_place_of_an_output_directory_is_refused(tmp_path):
    (tmp_path / "a-file").write_text("keep")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    for name in ("a-file", "link"):
        with pytest.raises(HybridReproError, match="not a directory hybrid-repro wrote"):
            write_output(tmp_path / name, "x")
    assert (tmp_path / "a-file").read_text() == "keep" and (tmp_path / "link").is_symlink()
    with pytest.raises(HybridReproError, match="a directory of that name is in the way"):
        write_json(tmp_path / "elsewhere", {})


def test_empty_directory_and_own_output_are_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    write_output(out, "first")
    write_output(out, "second")
    assert output_text(out) == "second"
    assert (out / OUTPUT_MARKER).read_text() == MARKER_TEXT


def test_output_restored_from_git_or_a_copy_is_replaceable(tmp_path):
    """A committed output (reports/, metrics/train/RUN/) comes back as plain, maybe read-only, files."""
    write_output(tmp_path / "out", "committed")
    clone = tmp_path / "clone" / "out"
    shutil.copytree(tmp_path / "out", clone)
    for path in clone.rglob("*"):
        if path.is_file():
            path.chmod(0o444)
    write_output(clone, "rerun")
    assert output_text(clone) == "rerun"


def test_output_restored_from_the_dvc_cache_is_replaceable(tmp_path, monkeypatch):
    """models/RUN in a fresh clone comes from `dvc pull` / `dvc checkout`: the marker travels with it."""
    from dvc.repo import Repo

    monkeypatch.chdir(tmp_path)
    repo = Repo.init(".", no_scm=True)
    write_output(Path("models"), "trained")
    repo.add("models")
    shutil.rmtree("models")
    repo.checkout()
    assert (Path("models") / OUTPUT_MARKER).is_file()
    write_output(Path("models"), "retrained")
    assert output_text(Path("models")) == "retrained"


# -- replacement by renames, recovery after a kill ------------------------------------------------------


@pytest.mark.parametrize("previous", ["old", None], ids=["replacing", "first-write"])
def test_kill_at_every_file_operation_leaves_the_previous_or_the_new_output(tmp_path, previous, capsys):
    outcomes = set()
    for operation in itertools.count(1):
        base = tmp_path / str(operation)
        if previous:
            write_output(base / "out", previous)
        if not killed_during(lambda: write_output(base / "out", "new"), operation):
            break
        prepare_output_dir(base / "out")  # what the next start does
        outcomes.add(output_text(base / "out"))
        assert not [p.name for p in base.glob("*") if p.name != "out"]  # no leftovers
    assert operation > 8  # the sweep reached past the swap: every kill point was covered
    assert outcomes == {previous, "new"}
    assert "completed a replacement that was interrupted" in capsys.readouterr().err


def test_kill_during_recovery_is_recovered_by_the_next_start(tmp_path):
    outcomes = set()
    for first in itertools.count(1):
        for second in itertools.count(1):
            base = tmp_path / f"{first}-{second}"
            write_output(base / "out", "old")
            write_killed = killed_during(lambda: write_output(base / "out", "new"), first)
            recovery_killed = write_killed and killed_during(lambda: prepare_output_dir(base / "out"), second)
            prepare_output_dir(base / "out")
            outcomes.add(output_text(base / "out"))
            assert sorted(p.name for p in base.iterdir()) == ["out"]
            if not recovery_killed:
                break
        if not write_killed:
            break
    assert outcomes == {"old", "new"}


def test_copy_set_aside_is_restored_when_the_output_was_removed(tmp_path, capsys):
    """Killed after the new output went in but before the old was deleted; then `dvc repro` removes
    the output before running the stage again: the old copy comes back rather than nothing."""
    for operation in itertools.count(1):
        base = tmp_path / str(operation)
        write_output(base / "out", "old")
        assert killed_during(lambda: write_output(base / "out", "new"), operation)
        if list(base.glob(".out.old-*")) and (base / "out").exists():
            break
    shutil.rmtree(base / "out")
    prepare_output_dir(base / "out")
    assert output_text(base / "out") == "old"
    assert "restored the previous copy" in capsys.readouterr().err


# -- leftovers: swept at start, never seen by git or DVC ------------------------------------------------


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_leftovers_of_the_same_target_are_swept_and_nothing_else(tmp_path):
    dead, alive = dead_pid(), os.getppid()
    # A "new" copy without the marker is not a complete one: it is deleted, not put in place.
    orphans = [f".out.tmp-{dead}-ab12cd34", f".out.new-{dead}-0123abcd", f".out.old-{os.getpid()}-ffff0000"]
    kept = [f".out.tmp-{alive}-ab12cd34", f".other.tmp-{dead}-ab12cd34", ".out.tmp-notmine", ".out.backup", "notes"]
    for name in orphans + kept:
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text(name)
    (tmp_path / f".m.json.tmp-{dead}-ab12cd34").write_text("{")
    write_output(tmp_path / "out", "v")
    write_json(tmp_path / "m.json", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["out", "m.json"])


def leftover_examples(tmp_path) -> list[Path]:
    """Every kind of leftover the helper leaves next to ``results/x``, produced by real kills."""
    found = []
    for operation in itertools.count(1):
        results = tmp_path / f"k{operation}" / "results"
        write_output(results / "x", "same")
        if not killed_during(lambda: write_output(results / "x", "same"), operation):
            break
        found += [p for p in results.iterdir() if p.name != "x" and any(p.iterdir())]
    assert {p.name.split("-")[0] for p in found} == {".x.tmp", ".x.new", ".x.old"}
    return found


def test_leftovers_and_bytecode_are_ignored_by_git_and_dvc(tmp_path, monkeypatch):
    from dvc.repo import Repo

    leftovers = leftover_examples(tmp_path / "kills")
    project = tmp_path / "project"
    project.mkdir()
    for ignore_file in (".gitignore", ".dvcignore"):
        shutil.copy(REPO / ignore_file, project / ignore_file)
    monkeypatch.chdir(project)
    subprocess.run(["git", "init", "-q"], check=True)
    repo = Repo.init(".")
    write_output(Path("results") / "x", "same")
    Path("code").mkdir()
    Path("code/stage.py").write_text("print('report')\n")
    repo.stage.add(name="report", cmd="echo report", deps=["results", "code"])
    repo.reproduce("report")
    Path("code/__pycache__").mkdir()
    Path("code/__pycache__/stage.cpython-311.pyc").write_bytes(b"bytecode")
    assert Repo(".").status() == {}, "bytecode changed the hash of a code dependency"
    for leftover in leftovers:
        shutil.copytree(leftover, Path("results") / leftover.name)
        assert Repo(".").status() == {}, f"{leftover.name} changed the hash of the report stage's dependency"
        ignored = subprocess.run(["git", "check-ignore", "-q", f"results/{leftover.name}"])
        assert ignored.returncode == 0, f"git would see {leftover.name}"


@pytest.mark.parametrize("failure, reason", [
    (OSError(errno.ENOSPC, "No space left on device"), "the disk is full"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), "the disk quota is exhausted"),
    # torch.save and safetensors report a full disk in their own exception types
    (RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos; No space left on device"),
     "the disk is full"),
    (OSError(errno.ENAMETOOLONG, "File name too long"), "a file name is too long for the file system"),
])
def test_a_write_the_machine_refuses_is_one_line_and_keeps_the_previous_output(tmp_path, failure, reason):
    target = tmp_path / "out"
    with atomic_output_dir(target) as tmp:
        (tmp / "kept.txt").write_text("previous")
    with pytest.raises(HybridReproError, match=rf"cannot write {re.escape(str(target))}: {reason}"):
        with atomic_output_dir(target) as tmp:
            (tmp / "partial.txt").write_text("half")
            raise failure
    assert (target / "kept.txt").read_text() == "previous" and not (target / "partial.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no leftover beside it
    file_target = tmp_path / "metrics.json"
    with pytest.raises(HybridReproError, match=rf"cannot write {re.escape(str(file_target))}: {reason}"):
        with atomic_output_file(file_target) as handle:
            handle.write("{")
            raise failure
    assert not file_target.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_other_failures_inside_a_write_pass_through_unchanged(tmp_path):
    with pytest.raises(KeyError):
        with atomic_output_dir(tmp_path / "out"):
            raise KeyError("a bug, not the machine")
    with pytest.raises(OSError, match="Permission denied"):
        with atomic_output_file(tmp_path / "f.json"):
            raise OSError(errno.EACCES, "Permission denied")


def test_a_full_disk_in_a_stage_is_one_line_with_exit_status_2(tmp_path, monkeypatch):
    """The check stage through the CLI, its write failing as on a full disk (faked at the file object)."""
    monkeypatch.chdir(tmp_path)
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("hybrid_repro.io.os.fdopen", lambda *args, **kwargs: FullDisk(real_fdopen(*args, **kwargs)))
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    result = CliRunner().invoke(cli, ["check", "--dvc-file", str(REPO / "dvc.yaml"), "--out", "ok/params.ok"])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "error: cannot write ok/params.ok: the disk is full; free space there" in result.output
    assert not list((tmp_path / "ok").iterdir())
