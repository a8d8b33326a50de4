"""The paper's published LAReQA and MIRACL numbers, machine-readable (``paper_lareqa.json``).

The file holds Tables 1-8, 12 and 13 of arXiv 2408.10536 as transcribed in the project's notes on
the paper (PAPER.md section 4), laid out as printed: a table has ``fixed`` keys shared by all its
cells, ``columns`` (one descriptor each) and ``rows`` (a descriptor plus ``values``, one per
column). A cell's full descriptor is the union of the three, so every value is traceable to its
table, row and column. Descriptor keys: ``model`` (``xlm-r``, ``labse``), ``dataset``
(``xquad-r``, ``mlqa-r``, ``miracl-dev``), ``setting`` (``mo``, ``cr``, ``mul``), ``metric`` (the
names of :mod:`hybrid_repro.evaluation.metrics`: ``map``, ``r@1``, ``r@10``, ``rank_distance``;
``ndcg@10``, ``r@100`` for MIRACL), ``strategy`` (``x-x-mono``, ``x-y``, ``hybrid``) and either
``language`` or ``aggregate`` (``mean`` / ``median``: the paper's printed summary rows, kept as
printed even where they disagree with the per-language values; such slips are listed under
``known_discrepancies``).
"""

from __future__ import annotations

import functools
import json
from importlib import resources

from hybrid_repro.errors import HybridReproError

PAPER_FILE = "paper_lareqa.json"


@functools.cache
def load_paper() -> dict:
    """The whole reference document (tables, known discrepancies, provenance)."""
    return json.loads(resources.files(__package__).joinpath(PAPER_FILE).read_text(encoding="utf-8"))


def paper_cells(table: str | None = None) -> list[dict]:
    """Every value of the paper (or of one table) as ``{"table", <descriptor keys>, "value"}``."""
    cells = []
    for spec in load_paper()["tables"]:
        if table is not None and spec["id"] != table:
            continue
        for row in spec["rows"]:
            row_keys = {key: value for key, value in row.items() if key != "values"}
            for column, value in zip(spec["columns"], row["values"], strict=True):
                cells.append({"table": spec["id"], **spec["fixed"], **column, **row_keys, "value": value})
    return cells


def paper_value(table: str | None, **descriptor: str) -> float:
    """The one value (of ``table``, or of any table) whose descriptor includes ``descriptor``.

    Anything but exactly one match is an error.
    """
    found = [cell["value"] for cell in paper_cells(table)
             if all(cell.get(key) == value for key, value in descriptor.items())]
    if len(found) != 1:
        raise HybridReproError(f"paper table {table or '(any)'} has {len(found)} values for {descriptor}, expected one")
    return found[0]
