"""hybrid-repro: hybrid batch sampling for multilingual dense retrieval (arXiv 2408.10536)."""

__version__ = "0.1.0"
