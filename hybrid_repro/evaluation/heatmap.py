"""Cr. heatmap: one metric for every (query language, target language) pair, as a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot loads)
import numpy as np  # noqa: E402

from hybrid_repro.errors import HybridReproError  # noqa: E402
from hybrid_repro.io import atomic_output_file  # noqa: E402


def cross_lingual_matrix(metrics: Mapping, metric: str = "map") -> tuple[list[str], np.ndarray]:
    """Languages and the (query x target) matrix of ``metric`` from a metrics document.

    The diagonal holds the Mo. value when the document has the ``mo`` setting; pairs without
    scored queries are ``nan``.
    """
    settings = metrics.get("settings", {})
    if "cr" not in settings:
        raise HybridReproError("the metrics document has no 'cr' setting: evaluate Cr. before drawing its heatmap")
    pairs = settings["cr"]["per_pair"]
    languages = sorted({lang for pair in pairs for lang in pair.split("-")})
    matrix = np.full((len(languages), len(languages)), np.nan)
    for pair, row in pairs.items():
        query, target = pair.split("-")
        matrix[languages.index(query), languages.index(target)] = row[metric]
    for lang, row in settings.get("mo", {}).get("per_language", {}).items():
        if lang in languages:
            matrix[languages.index(lang), languages.index(lang)] = row[metric]
    return languages, matrix


def write_cr_heatmap(path: str | Path, metrics: Mapping, metric: str = "map", title: str | None = None) -> None:
    """Draw :func:`cross_lingual_matrix` with values in the cells and write it as a PNG (atomically)."""
    languages, matrix = cross_lingual_matrix(metrics, metric)
    size = 1.0 + 0.55 * len(languages)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(languages)), languages)
    ax.set_yticks(range(len(languages)), languages)
    ax.set_xlabel("target (candidate) language")
    ax.set_ylabel("query language")
    ax.set_title(title or f"{metrics.get('dataset', '')} Cr. {metric} (diagonal: Mo.)")
    for (row, col), value in np.ndenumerate(matrix):
        if not np.isnan(value):
            color = "white" if value < 0.6 else "black"
            ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(image, ax=ax, label=metric)
    fig.tight_layout()
    try:
        with atomic_output_file(path, "wb") as handle:
            fig.savefig(handle, format="png", dpi=120)
    finally:
        plt.close(fig)
