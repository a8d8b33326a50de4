"""The paper's training and validation sources: where each lives, how it is pinned and fetched, one schema on disk."""
