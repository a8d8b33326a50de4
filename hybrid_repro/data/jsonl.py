"""JSON Lines files: one JSON object per line, written and read with clear errors."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import atomic_output_file, decode_text


LONE_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


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
    except RecursionError as exc:
        raise HybridReproError(f"{path} line {number} nests too deeply to be a record (corrupt or hostile?); "
                               "rerun the stage that wrote it") from exc
    if not isinstance(record, dict):
        raise HybridReproError(f"{path} line {number} is not a JSON object")
    if LONE_SURROGATE_ESCAPE.search(line):
        # JSON may escape half of a UTF-16 pair alone ("\\ud800"), which no UTF-8 text can hold: refused here rather
        # than when a later stage writes the text out.
        try:
            jsonl_line(record).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise HybridReproError(f"{path} line {number} holds an unpaired surrogate escape (\\ud800-\\udfff), "
                                   "not text; fix or drop that line, or rerun the stage that wrote it") from exc
    return record
