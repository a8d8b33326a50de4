"""LAReQA-style evaluation: data loading, the Mo./Cr./Mul. settings, metrics and run files.

The heatmap writer (:mod:`hybrid_repro.evaluation.heatmap`, matplotlib) and the pinned download
(:mod:`hybrid_repro.evaluation.download`) are imported from their modules.
"""

from hybrid_repro.evaluation.lareqa import LareqaDataset, load_lareqa
from hybrid_repro.evaluation.metrics import TIE_RULE
from hybrid_repro.evaluation.runfile import read_run_file, rankings_by_setting, setting_rankings, write_run_file
from hybrid_repro.evaluation.ranking import embedding_scorer
from hybrid_repro.evaluation.settings import (
    SETTINGS,
    EvaluationResult,
    evaluate_embeddings,
    evaluate_run,
    evaluate_score_rows,
)

__all__ = [
    "SETTINGS",
    "TIE_RULE",
    "EvaluationResult",
    "LareqaDataset",
    "embedding_scorer",
    "evaluate_embeddings",
    "evaluate_run",
    "evaluate_score_rows",
    "load_lareqa",
    "read_run_file",
    "rankings_by_setting",
    "setting_rankings",
    "write_run_file",
]
