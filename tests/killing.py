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
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import pytest

FILE_OPERATIONS = ((os, "replace"), (os, "rename"), (os, "link"), (os, "unlink"), (os, "rmdir"), (os, "mkdir"),
                   (tempfile, "mkdtemp"), (tempfile, "mkstemp"), (pathlib.Path, "write_text"),
                   (pathlib.Path, "write_bytes"))


class Killed(BaseException):
    """The simulated kill; a BaseException, so ``except Exception`` does not stop it either."""


@dataclass
class OperationCounter:
    """How many file operations the block attempted, and at which one it is killed."""

    kill_at: int
    performed: int = 0

    @property
    def killed(self) -> bool:
        return self.performed >= self.kill_at


@contextlib.contextmanager
def killed_at(operation: int, extra: Iterable[tuple[Any, str]] = ()) -> Iterator[OperationCounter]:
    """Within the block, file operation number ``operation`` (from 1) and all later ones raise Killed.

    ``extra`` adds (owner, attribute) pairs to :data:`FILE_OPERATIONS`, e.g. ``(torch, "save")``.
    The yielded counter says how many operations were attempted: fewer than ``operation`` means the
    block ran to the end without a kill.
    """
    counter = OperationCounter(operation)
    with pytest.MonkeyPatch.context() as patch:
        for owner, name in (*FILE_OPERATIONS, *extra):
            patch.setattr(owner, name, _counted(getattr(owner, name), name, counter))
        yield counter


def _counted(operation: Callable, name: str, counter: OperationCounter) -> Callable:
    def run(*args, **kwargs):
        counter.performed += 1
        if counter.killed:
            raise Killed(f"killed at file operation {counter.performed} ({name})")
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
