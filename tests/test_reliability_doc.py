"""docs/reliability.md names, for every failure case, the test that guards it: each named test must exist."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "reliability.md"


def _guards() -> list[tuple[str, str]]:
    """(test file, test function) for every reference in the 'guarded by' column; `::name` alone means the
    file named last in the same cell."""
    found = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if not line.startswith("| ") or line.startswith("| case"):
            continue
        cell = line.rstrip(" |").rsplit(" | ", 1)[-1]
        current = None
        for file, name in re.findall(r"`(?:(tests/[\w/]+\.py|[\w/]+\.py))?::(\w+)`", cell):
            if file:
                current = file if file.startswith("tests/") else f"tests/{file}"
            assert current, f"{cell}: a test reference without a file"
            found.append((current, name))
    return found


def test_every_guarding_test_named_in_the_reliability_table_exists():
    guards = _guards()
    assert len(guards) >= 50
    missing = [f"{file}::{name}" for file, name in guards
               if not (REPO / file).is_file() or not re.search(rf"^def {name}\(", (REPO / file).read_text(), re.M)]
    assert not missing, missing
