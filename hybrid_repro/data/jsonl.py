"""JSON Lines files: one JSON object per line, written and read with clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import atomic_output_file, decode_text


def jsonl_line(record: Mapping[str, Any]) -> str:
    """``record`` as one line of a JSON Lines file: compact JSON, non-ASCII kept as is, ending in ``\\n``."""
    return json.dumps(record, ensure_ascii=False) + "\n"


def write_jsonl(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> int:
    """Write one compact JSON object per line, atomically; return the number of lines."""
    count = 0
    with atomic_output_file(path) as handle:
        for record in records:
            handle.write(jsonl_line(record))
            count += 1
    return count


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every object in a JSON Lines file; a missing file or a corrupt line is a HybridReproError."""
    return list(iter_jsonl(path))


def iter_jsonl(path: str | os.PathLike) -> Iterable[dict[str, Any]]:
    """The objects of a JSON Lines file one at a time, never holding the file; a missing file, invalid UTF-8, a
    NUL byte (:func:`hybrid_repro.io.decode_text`, naming the line) or a corrupt line is a HybridReproError.

    Lines end at ``\\n`` only: a text's U+2028 or U+0085, which ``json.dumps(..., ensure_ascii=False)`` leaves
    unescaped, is part of its line.
    """
    path = Path(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise HybridReproError(f"missing file {path}: run the stage that produces it first") from exc
    except OSError as exc:
        raise HybridReproError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        for number, raw in enumerate(handle, start=1):
            yield parse_line(raw, path, number)


def parse_line(raw: bytes, path: str | os.PathLike, number: int) -> dict[str, Any]:
    """The object on line ``number`` of the JSON Lines file ``path``, given as the line's bytes; invalid UTF-8, a NUL
    byte or anything but one JSON object is a HybridReproError naming the line."""
    line = decode_text(raw, f"line {number} of {path}")
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise HybridReproError(f"{path} line {number} is not valid JSON (truncated or corrupt?): {exc}") from exc
    if not isinstance(record, dict):
        raise HybridReproError(f"{path} line {number} is not a JSON object")
    return record
