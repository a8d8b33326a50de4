"""JSON Lines files: one JSON object per line, written and read with clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import atomic_output_file, read_text


def write_jsonl(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> int:
    """Write one compact JSON object per line, atomically; return the number of lines."""
    count = 0
    with atomic_output_file(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every object in a JSON Lines file; a missing file or a corrupt line is a HybridReproError.

    Lines end at ``\\n`` only: JSON leaves U+2028, U+2029 and U+0085 unescaped inside strings, and
    :meth:`str.splitlines` would cut a line at them."""
    path = Path(path)
    lines = read_text(path).split("\n")
    if lines[-1] == "":
        lines.pop()
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HybridReproError(f"{path} line {number} is not valid JSON (truncated or corrupt?): {exc}") from exc
        if not isinstance(record, dict):
            raise HybridReproError(f"{path} line {number} is not a JSON object")
        records.append(record)
    return records
