"""Atomic file output and checksums.

Every stage writes through these helpers so that a failure (an exception, a kill) never leaves a
file or directory that DVC would record as a valid output: content goes to a temporary sibling
first and is renamed into place only when complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from hybrid_repro.errors import HybridReproError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _prepare_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HybridReproError(f"cannot create directory {path.parent}: {exc.strerror}") from exc
    if not os.access(path.parent, os.W_OK):
        raise HybridReproError(f"output directory {path.parent} is not writable")


@contextlib.contextmanager
def atomic_output_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` only if the block succeeds."""
    final = Path(path)
    _prepare_parent(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    # mkdtemp/mkstemp create owner-only entries; outputs should get the usual umask permissions.
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final) if final.is_dir() else final.unlink()
    os.replace(tmp, final)


@contextlib.contextmanager
def atomic_output_file(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """Open a temporary file that replaces ``path`` only if the block succeeds."""
    final = Path(path)
    _prepare_parent(final)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.tmp-", dir=final.parent)
    tmp = Path(tmp_name)
    tmp.chmod(0o666 & ~_umask())
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, final)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_output_file(path) as handle:
        json.dump(obj, handle, indent=2, sort_keys=False, ensure_ascii=False)
        handle.write("\n")


def decode_text(data: bytes, path: str | os.PathLike,
                fix: str = "restore it or re-run the stage that writes it") -> str:
    """``data`` (the bytes of text file ``path``) as a string; invalid UTF-8 or a NUL byte is a one-line
    error that ends with ``fix``.

    A NUL byte is valid UTF-8 but never part of the text this package reads: it marks a file
    overwritten with binary data or pre-allocated and never filled.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HybridReproError(f"{path} is not valid UTF-8 (byte offset {exc.start}): the file is corrupt "
                               f"or not text; {fix}") from exc
    nul = text.find("\0")
    if nul >= 0:
        raise HybridReproError(f"{path} contains a NUL byte (character {nul}): the file is corrupt; {fix}")
    return text


def read_text(path: str | os.PathLike) -> str:
    """A UTF-8 text file's contents; a missing, undecodable or NUL-holding file is a clear error."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise HybridReproError(f"missing file {path}: run the stage that produces it first") from exc
    except OSError as exc:
        raise HybridReproError(f"cannot read {path}: {exc.strerror}") from exc
    return decode_text(data, path)


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, turning a missing or corrupt file into a clear error."""
    path = Path(path)
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise HybridReproError(f"{path} is not valid JSON (truncated or corrupt?): {exc}") from exc


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()
