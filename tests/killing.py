"""Simulated kills between file operations, in-process and without sleeps.

:func:`killed_at` patches the file operations the package performs (renames, links, deletions,
directory and temporary-file creation, whole-file writes) so that the chosen one, and every one
after it, raises :class:`Killed` instead of running. Like SIGKILL, nothing runs after the kill:
the cleanup in ``except BaseException`` handlers cannot touch the disk either. Importable from any
test module because ``tests/conftest.py`` puts this directory on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Iterable, Iterator

import pytest

FILE_OPERATIONS = ((os, "replace"), (os, "rename"), (os, "link"), (os, "unlink"), (os, "rmdir"), (os, "mkdir"),
                   (tempfile, "mkdtemp"), (tempfile, "mkstemp"), (pathlib.Path, "write_text"),
                   (pathlib.Path, "write_bytes"))


class Killed(BaseException):
    """The simulated kill; a BaseException, so ``except Exception`` does not stop it either."""


@dataclass
class OperationCounter:
    """The file operations a block attempted (by name, in order), and the rule that picks the kill."""

    kill_here: Callable[[list[str]], bool]
    attempted: list[str] = field(default_factory=list)
    killed: bool = False


@contextlib.contextmanager
def _killed_when(kill_here: Callable[[list[str]], bool],
                 extra: Iterable[tuple[Any, str]]) -> Iterator[OperationCounter]:
    counter = OperationCounter(kill_here)
    with pytest.MonkeyPatch.context() as patch:
        for owner, name in (*FILE_OPERATIONS, *extra):
            patch.setattr(owner, name, _counted(getattr(owner, name), name, counter))
        yield counter


def killed_at(operation: int, extra: Iterable[tuple[Any, str]] = ()) -> ContextManager[OperationCounter]:
    """Within the block, file operation number ``operation`` (from 1) and all later ones raise Killed.

    ``extra`` adds (owner, attribute) pairs to :data:`FILE_OPERATIONS`, e.g. ``(torch, "save")``.
    The yielded counter lists the operations attempted: fewer than ``operation`` means the block ran
    to the end without a kill.
    """
    return _killed_when(lambda attempted: len(attempted) >= operation, extra)


def killed_before(name: str, occurrence: int, extra: Iterable[tuple[Any, str]] = ()) -> ContextManager[OperationCounter]:
    """Within the block, the ``occurrence``-th call of operation ``name`` and all later operations raise Killed."""
    return _killed_when(lambda attempted: attempted[-1] == name and attempted.count(name) == occurrence, extra)


def _counted(operation: Callable, name: str, counter: OperationCounter) -> Callable:
    def run(*args, **kwargs):
        counter.attempted.append(name)
        counter.killed = counter.killed or counter.kill_here(counter.attempted)
        if counter.killed:
            raise Killed(f"killed at file operation {len(counter.attempted)} ({name})")
        return operation(*args, **kwargs)
    return run


def killed_during(action: Callable[[], Any], operation: int, extra: Iterable[tuple[Any, str]] = ()) -> bool:
    """Run ``action`` with a kill at file operation ``operation``; True if the kill happened."""
    try:
        with killed_at(operation, extra):
            action()
    except Killed:
        return True
    return False

