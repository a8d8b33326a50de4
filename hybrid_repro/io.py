"""Atomic file output and checksums.

Every stage writes through these helpers so that a failure (an exception, a kill) never leaves a
file or directory that DVC would record as a valid output: content goes to a temporary sibling
first and is renamed into place only when complete. A directory is replaced only if the package
wrote it (it holds :data:`OUTPUT_MARKER`), so a mistaken output path never deletes a user's files,
and an interrupted replacement is completed or rolled back when the next writer starts.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

from hybrid_repro.errors import HybridReproError

OUTPUT_MARKER = ".hybrid-repro-output"
"""Written into every directory :func:`atomic_output_dir` puts in place: the proof that the package
owns it. It travels with the directory (git, the DVC cache), so restored outputs stay replaceable."""
MARKER_TEXT = "Written by hybrid-repro, which replaces this directory as a whole when its stage runs again.\n"

# Siblings of a target ``T`` that its writers leave while they work, named ``.T.<kind>-<pid>-<random>``:
# ``tmp`` is being built or deleted (never usable), ``new`` is a complete replacement not yet renamed
# into place, ``old`` is the previous ``T`` renamed aside. ``.gitignore`` and ``.dvcignore`` list them.
_LEFTOVER_KINDS = ("tmp", "new", "old")


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


def _leftover_prefix(final: Path, kind: str) -> str:
    return f".{final.name}.{kind}-{os.getpid()}-"


def _leftover_name(final: Path, kind: str) -> Path:
    return final.parent / f"{_leftover_prefix(final, kind)}{secrets.token_hex(4)}"


def _leftovers(final: Path) -> dict[str, list[Path]]:
    """Leftovers of ``final`` by kind, oldest first, skipping those of a writer that is still running."""
    pattern = re.compile(rf"\.{re.escape(final.name)}\.({'|'.join(_LEFTOVER_KINDS)})-(\d+)-[a-z0-9_]+")
    found: dict[str, list[Path]] = {kind: [] for kind in _LEFTOVER_KINDS}
    with contextlib.suppress(FileNotFoundError):
        for entry in final.parent.iterdir():
            match = pattern.fullmatch(entry.name)
            if match and not _writer_running(int(match.group(2))):
                found[match.group(1)].append(entry)
    for entries in found.values():
        entries.sort(key=lambda entry: entry.lstat().st_mtime)
    return found


def _writer_running(pid: int) -> bool:
    """True when another live process wrote the leftover (a concurrent writer); ours is from an earlier write."""
    if pid == os.getpid():
        return False
    if os.name == "nt":
        return True  # os.kill(pid, 0) would signal the process there, not probe it: keep the leftover
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _move_aside(path: Path, final: Path, kind: str) -> Path:
    """Rename ``path`` to a fresh leftover name of kind ``kind`` for target ``final``; return the new name."""
    aside = _leftover_name(final, kind)
    os.replace(path, aside)
    return aside


def _discard(leftover: Path, final: Path) -> None:
    """Delete a leftover of ``final``. A directory is renamed to a ``tmp`` name first, so that a kill
    midway never leaves half of a ``new`` or ``old`` copy that a later start would take for a whole one."""
    if leftover.is_dir() and not leftover.is_symlink():
        shutil.rmtree(_move_aside(leftover, final, "tmp"))
    else:
        leftover.unlink(missing_ok=True)


def check_replaceable(path: str | os.PathLike) -> None:
    """Raise unless ``path`` is absent, an empty directory, or a directory holding :data:`OUTPUT_MARKER`."""
    final = Path(path)
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise HybridReproError(f"refusing to replace {final}: it is not a directory hybrid-repro wrote; "
                               "move it away or choose another output path")
    if final.is_dir() and not (final / OUTPUT_MARKER).is_file() and any(final.iterdir()):
        raise HybridReproError(
            f"refusing to replace {final}: it holds no {OUTPUT_MARKER} marker, so hybrid-repro did not write it "
            "(or wrote it before markers existed); move it away, delete it if it is an old output, "
            "or choose another output path")


def prepare_output_dir(path: str | os.PathLike) -> None:
    """Make ``path`` ready to be replaced: finish or roll back an interrupted replacement, remove leftovers.

    A complete ``new`` copy is renamed into place, the newest when a kill left several; failing that,
    a missing ``path`` gets back the ``old`` copy set aside before the kill. Either is said on stderr.
    Only copies holding :data:`OUTPUT_MARKER` are put in place (a whole output always does). Then
    every other leftover of a writer that is no longer running is deleted, and ``path`` is checked
    with :func:`check_replaceable`, so a foreign directory is refused before any work starts.
    """
    final = Path(path)
    leftovers = _leftovers(final)
    usable = {kind: [entry for entry in leftovers[kind] if (entry / OUTPUT_MARKER).is_file()]
              for kind in ("new", "old")}
    if usable["new"]:
        newest = usable["new"][-1]
        leftovers["new"].remove(newest)
        if final.exists() or final.is_symlink():
            check_replaceable(final)
            leftovers["old"].append(_move_aside(final, final, "old"))
        os.replace(newest, final)
        print(f"{final}: completed a replacement that was interrupted after its new copy was written",
              file=sys.stderr)
    elif usable["old"] and not final.exists():
        newest = usable["old"][-1]
        leftovers["old"].remove(newest)
        os.replace(newest, final)
        print(f"{final}: restored the previous copy that an interrupted replacement had set aside",
              file=sys.stderr)
    for leftover in [entry for entries in leftovers.values() for entry in entries]:
        _discard(leftover, final)
    check_replaceable(final)


@contextlib.contextmanager
def atomic_output_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` only if the block succeeds.

    ``path`` must be absent or a directory this package wrote (see :func:`prepare_output_dir`).
    On success the directory gets :data:`OUTPUT_MARKER` and goes in with renames only: it becomes a
    complete ``new`` copy, the previous ``path`` is renamed aside as ``old``, the new copy is renamed
    to ``path``, then the old one is deleted. A kill at any point leaves ``path`` intact or a
    complete copy that the next start puts back.
    """
    final = Path(path)
    _prepare_parent(final)
    prepare_output_dir(final)
    tmp = Path(tempfile.mkdtemp(prefix=_leftover_prefix(final, "tmp"), dir=final.parent))
    # mkdtemp/mkstemp create owner-only entries; outputs should get the usual umask permissions.
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
        (tmp / OUTPUT_MARKER).write_text(MARKER_TEXT, encoding="utf-8")
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        explained = explain_write_error(exc, final)
        if explained is not None:
            raise explained from exc
        raise
    complete = _move_aside(tmp, final, "new")
    previous = _move_aside(final, final, "old") if final.exists() else None
    os.replace(complete, final)
    if previous is not None:
        _discard(previous, final)


@contextlib.contextmanager
def atomic_output_file(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """Open a temporary file that replaces ``path`` only if the block succeeds."""
    final = Path(path)
    _prepare_parent(final)
    if final.is_dir():
        raise HybridReproError(f"cannot write file {final}: a directory of that name is in the way; move it away")
    for leftover in _leftovers(final)["tmp"]:
        _discard(leftover, final)
    fd, tmp_name = tempfile.mkstemp(prefix=_leftover_prefix(final, "tmp"), dir=final.parent)
    tmp = Path(tmp_name)
    tmp.chmod(0o666 & ~_umask())
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        explained = explain_write_error(exc, final)
        if explained is not None:
            raise explained from exc
        raise
    os.replace(tmp, final)


# Write failures the user fixes on the machine, not in the package: a full disk or quota, a file too large for the
# file system, a read-only one, a name too long for it. torch.save and safetensors report a full disk in their own
# exception types, recognised by the OS's wording.
_WRITE_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exhausted",
                 errno.EFBIG: "the file is too large for the file system", errno.EROFS: "the file system is read-only",
                 errno.ENAMETOOLONG: "a file name is too long for the file system"}
_FULL_DISK_WORDING = ("No space left on device", "StorageFull", "Disk quota exceeded")


def explain_write_error(exc: BaseException, target: Path) -> Optional[HybridReproError]:
    """The one-line error for a failure to write ``target`` that the machine causes; None for any other."""
    if isinstance(exc, HybridReproError):
        return None
    reason = _WRITE_ERRNOS.get(getattr(exc, "errno", None)) if isinstance(exc, OSError) else None
    if reason is None and any(wording in str(exc) for wording in _FULL_DISK_WORDING):
        reason = _WRITE_ERRNOS[errno.ENOSPC]
    if reason is None:
        return None
    advice = ("choose a shorter output path" if reason.startswith("a file name") else
              "free space there (or point the output elsewhere) and run the stage again")
    return HybridReproError(f"cannot write {target}: {reason}; {advice}. Nothing was replaced: the previous "
                            "output, if any, is intact")


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
    except RecursionError as exc:
        raise HybridReproError(f"{path} nests too deeply to be one of the package's files (corrupt or hostile?); "
                               "rerun the stage that wrote it") from exc


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20, digest: Any = None) -> str:
    """Hex digest of a file's bytes: sha256, or ``digest`` (a hashlib object, e.g. :func:`git_blob_digest`)."""
    digest = hashlib.sha256() if digest is None else digest
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def git_blob_digest(size: int) -> Any:
    """A sha1 primed with git's blob header: fed the ``size`` bytes of a file, it gives the file's git object id,
    the hub's checksum of files not stored in LFS."""
    return hashlib.sha1(f"blob {size}\0".encode())
