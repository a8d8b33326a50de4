"""Reference InfoNCE loss in plain PyTorch: the specification every other implementation must match.

It materialises the full ``B x N`` logit matrix, so it is meant for correctness checks and small
batches; :mod:`hybrid_repro.kernels.infonce_function` computes the same function without that matrix.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hybrid_repro.errors import HybridReproError

REDUCTIONS = ("mean", "sum")


def info_nce_reference(q: Tensor, p: Tensor, labels: Tensor, scale: float | Tensor, *, reduction: str = "mean",
                       symmetric: bool = False, query_ids: Tensor | None = None, passage_ids: Tensor | None = None,
                       positives_as_negatives: bool = False) -> Tensor:
    """InfoNCE over in-batch candidates, with optional false-negative masks and a symmetric term.

    Inputs:
      * ``q`` (B x d): query embeddings; ``p`` (N x d): passage embeddings, N >= B, in any layout
        (the trainer uses ``[positives (B); hard negatives (B)]``).
      * ``labels`` (B,), integers in [0, N): the positive column of each query row.
      * ``scale``: multiplies the dot products (1 / temperature); cosine logits when the inputs are
        L2-normalised. A python number or a 0-d tensor, which may require grad (learnable temperature).

    Forward direction (query -> passage): ``logits = scale * q @ p.T`` and
    ``loss_i = -log softmax(logits_i)[labels_i]``, the softmax running over the columns allowed for
    row i. Column j is excluded from row i (never the positive ``labels[i]`` itself) when

      (a) ``query_ids``/``passage_ids`` are given and ``passage_ids[j] == query_ids[i]``: another
          passage of the same question is a false negative, not a negative;
      (b) ``positives_as_negatives`` is False and j is some other row's positive (``j in labels``).
          This is PAPER.md Eq. 1 as printed: the denominator holds the row's positive and the
          negatives of every triplet, but not the other triplets' positives.

    ``symmetric=True`` averages, row by row, with the passage -> query direction taken over the B
    positives: for row i, logits over queries k are ``scale * p[labels[i]] . q[k]`` with target
    ``k = i``. The same rules, transposed, exclude query k (k != i) from that row when
    (a) ``query_ids[k] == query_ids[i]`` (it asks the same question), or
    (b) ``positives_as_negatives`` is False and ``labels[k] == labels[i]`` (``p[labels[i]]`` is k's
    positive too).

    ``reduction`` is ``"mean"`` or ``"sum"`` over the B rows. The loss is computed in float32, or in
    float64 when ``q`` and ``p`` are float64; it is returned in that dtype as a 0-d tensor.
    """
    check_info_nce_inputs(q, p, labels, scale, reduction, query_ids, passage_ids)
    compute_dtype = torch.float64 if q.dtype == torch.float64 and p.dtype == torch.float64 else torch.float32
    qf, pf = q.to(compute_dtype), p.to(compute_dtype)
    # A Python float multiplies as is: building a device tensor from it would wait for the stream.
    scale_t = scale.to(device=q.device, dtype=compute_dtype) if isinstance(scale, Tensor) else float(scale)
    rows = torch.arange(q.shape[0], device=q.device)

    forward_excluded = _forward_exclusions(labels, p.shape[0], query_ids, passage_ids, positives_as_negatives)
    per_row = _masked_cross_entropy(scale_t * (qf @ pf.T), labels, forward_excluded)
    if symmetric:
        reverse_excluded = _reverse_exclusions(labels, query_ids, positives_as_negatives)
        reverse = _masked_cross_entropy(scale_t * (pf[labels] @ qf.T), rows, reverse_excluded)
        per_row = 0.5 * (per_row + reverse)
    return per_row.mean() if reduction == "mean" else per_row.sum()


def _masked_cross_entropy(logits: Tensor, targets: Tensor, excluded: Tensor | None) -> Tensor:
    """Per-row ``logsumexp(allowed logits) - logits[target]``."""
    if excluded is not None:
        logits = logits.masked_fill(excluded, float("-inf"))
    positive = logits.gather(1, targets[:, None]).squeeze(1)
    return torch.logsumexp(logits, dim=1) - positive


def _same_group_except_target(row_groups: Tensor, col_groups: Tensor, targets: Tensor) -> Tensor:
    """Mask (rows x cols): column j shares row i's group and is not row i's target."""
    cols = torch.arange(col_groups.shape[0], device=col_groups.device)
    return (row_groups[:, None] == col_groups[None, :]) & (cols[None, :] != targets[:, None])


def _forward_exclusions(labels: Tensor, n_passages: int, query_ids: Tensor | None, passage_ids: Tensor | None,
                        positives_as_negatives: bool) -> Tensor | None:
    excluded = None
    if query_ids is not None:
        excluded = _same_group_except_target(query_ids, passage_ids, labels)
    if not positives_as_negatives:
        is_positive = torch.zeros(n_passages, dtype=torch.bool, device=labels.device)
        is_positive[labels] = True
        others_positive = is_positive[None, :] & (torch.arange(n_passages, device=labels.device)[None, :]
                                                  != labels[:, None])
        excluded = others_positive if excluded is None else excluded | others_positive
    return excluded


def _reverse_exclusions(labels: Tensor, query_ids: Tensor | None, positives_as_negatives: bool) -> Tensor | None:
    rows = torch.arange(labels.shape[0], device=labels.device)
    excluded = None
    if query_ids is not None:
        excluded = _same_group_except_target(query_ids, query_ids, rows)
    if not positives_as_negatives:
        shared_positive = _same_group_except_target(labels, labels, rows)
        excluded = shared_positive if excluded is None else excluded | shared_positive
    return excluded


def check_info_nce_inputs(q: Tensor, p: Tensor, labels: Tensor, scale: float | Tensor, reduction: str,
                          query_ids: Tensor | None, passage_ids: Tensor | None) -> None:
    """Reject malformed arguments with a message that says what was expected."""
    if q.dim() != 2 or p.dim() != 2:
        raise HybridReproError(f"q and p must be 2-D (rows x dim), got shapes {tuple(q.shape)} and {tuple(p.shape)}")
    if q.shape[1] != p.shape[1]:
        raise HybridReproError(f"q and p must share the embedding dim, got {q.shape[1]} and {p.shape[1]}")
    batch, n_passages = q.shape[0], p.shape[0]
    if batch < 1 or n_passages < batch:
        raise HybridReproError(f"need 1 <= B <= N, got B={batch} queries and N={n_passages} passages")
    if not q.is_floating_point() or not p.is_floating_point():
        raise HybridReproError(f"q and p must be floating point, got {q.dtype} and {p.dtype}")
    if labels.shape != (batch,) or labels.dtype not in (torch.int32, torch.int64):
        raise HybridReproError(f"labels must be an int32/int64 tensor of shape ({batch},), "
                               f"got {labels.dtype} of shape {tuple(labels.shape)}")
    # The range check reads device data (a host sync); under torch.compile it would split the graph.
    if not torch.compiler.is_compiling() and bool(((labels < 0) | (labels >= n_passages)).any()):
        raise HybridReproError(f"labels must lie in [0, {n_passages}) (the passage rows)")
    if isinstance(scale, Tensor) and scale.numel() != 1:
        raise HybridReproError(f"scale must be a number or a 1-element tensor, got shape {tuple(scale.shape)}")
    if reduction not in REDUCTIONS:
        raise HybridReproError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if (query_ids is None) != (passage_ids is None):
        raise HybridReproError("query_ids and passage_ids must be given together (or neither)")
    if query_ids is not None and (query_ids.shape != (batch,) or passage_ids.shape != (n_passages,)):
        raise HybridReproError(f"query_ids must have shape ({batch},) and passage_ids ({n_passages},), "
                               f"got {tuple(query_ids.shape)} and {tuple(passage_ids.shape)}")
