"""Autograd entry point of the fused InfoNCE kernels.

:func:`info_nce_triton` computes exactly the function specified by
:func:`hybrid_repro.kernels.infonce_reference.info_nce_reference` (same arguments, same masks), but
it keeps per-row log-sum-exp vectors instead of the ``B x N`` logits, and the backward recomputes the
logit gradient ``G`` one chunk of rows at a time (at most ``GRAD_CHUNK_BYTES``), so its memory is
O((B + N) * d) plus that chunk. Gradients reach ``q``, ``p`` and a tensor ``scale``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hybrid_repro.errors import HybridReproError
from hybrid_repro.kernels.infonce_reference import check_info_nce_inputs
from hybrid_repro.kernels.infonce_triton import (INTERPRETED, SUPPORTED_DTYPES, Direction, TileConfig,
                                                 backward_direction, forward_direction)


def info_nce_triton(q: Tensor, p: Tensor, labels: Tensor, scale: float | Tensor, *, reduction: str = "mean",
                    symmetric: bool = False, query_ids: Tensor | None = None, passage_ids: Tensor | None = None,
                    positives_as_negatives: bool = False, tiles: TileConfig | None = None) -> Tensor:
    """Fused InfoNCE; see ``info_nce_reference`` for the definition. Returns a 0-d fp32 loss.

    ``q`` and ``p`` must share a dtype among fp32, fp16 and bf16 and live on a CUDA device (or on
    the CPU when Triton runs in interpreter mode). ``tiles`` overrides the heuristic's tiles, column
    splits and backward chunk for every direction.
    """
    check_info_nce_inputs(q, p, labels, scale, reduction, query_ids, passage_ids)
    if q.dtype != p.dtype or q.dtype not in SUPPORTED_DTYPES:
        raise HybridReproError(f"the Triton InfoNCE kernel takes q and p of one dtype among fp32/fp16/bf16, "
                               f"got {q.dtype} and {p.dtype}; use the torch implementation for others")
    if q.device.type != "cuda" and not INTERPRETED:
        raise HybridReproError(f"the Triton InfoNCE kernel needs CUDA tensors, got {q.device}; "
                               "use the torch implementation (loss.impl: torch) or set TRITON_INTERPRET=1")
    index_devices = {t.device for t in (labels, query_ids, passage_ids) if t is not None}
    if index_devices != {q.device} or p.device != q.device:
        raise HybridReproError(f"q, p, labels and ids must be on one device, got q on {q.device}, p on {p.device}, "
                               f"indices on {sorted(str(d) for d in index_devices)}")
    if not isinstance(scale, Tensor):
        # torch.full fills on the device; torch.tensor(x, device=cuda) would copy from the host and sync.
        scale = torch.full((), float(scale), dtype=torch.float32, device=q.device)
    return InfoNCEFunction.apply(q, p, scale, labels, query_ids, passage_ids, reduction, symmetric,
                                 positives_as_negatives, tiles)


def directions_for(q: Tensor, p: Tensor, labels: Tensor, query_ids: Tensor | None, passage_ids: Tensor | None,
                   symmetric: bool, positives_as_negatives: bool) -> list[Direction]:
    """The softmax directions of the loss, with the exclusion rules expressed as integer groups."""
    batch, n_passages = q.shape[0], p.shape[0]
    labels = labels.long()
    q, p = q.contiguous(), p.contiguous()

    same_question = None if query_ids is None else (query_ids.long(), passage_ids.long())
    other_positive = None
    if not positives_as_negatives:
        # Every row is group 0; positive columns are group 0 too and every other column -1.
        is_positive = torch.zeros(n_passages, dtype=torch.bool, device=p.device)
        is_positive[labels] = True
        other_positive = (torch.zeros(batch, dtype=torch.long, device=q.device),
                          torch.where(is_positive, 0, -1).long())
    directions = [Direction(q, p, labels, same_question, other_positive)]
    if symmetric:
        question = None if query_ids is None else (query_ids.long(), query_ids.long())
        shared_positive = None if positives_as_negatives else (labels, labels)
        directions.append(Direction(p[labels].contiguous(), q, torch.arange(batch, device=q.device),
                                    question, shared_positive))
    return directions


def add_rows_deterministic(target: Tensor, index: Tensor, rows: Tensor) -> None:
    """``target[index[i]] += rows[i]`` for every i, with the same rounding on every run.

    ``index_add_`` with repeated indices uses atomics on CUDA, whose order varies between runs. Here
    pass k adds the k-th occurrence of every index, so each pass writes distinct rows; with distinct
    indices (the trainer's ``labels = arange(B)``) that is a single pass.
    """
    order = torch.argsort(index, stable=True)
    _, counts = torch.unique_consecutive(index[order], return_counts=True)
    first_of_run = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    occurrence = torch.empty_like(index)
    occurrence[order] = torch.arange(index.shape[0], device=index.device) - first_of_run
    for k in range(int(counts.max())):
        chosen = occurrence == k
        target.index_add_(0, index[chosen], rows[chosen])


def row_weight(batch: int, reduction: str, symmetric: bool) -> float:
    """Weight of each direction's row loss in the total: 1/B for the mean, 1/2 per direction if symmetric."""
    return (1.0 / batch if reduction == "mean" else 1.0) * (0.5 if symmetric else 1.0)


class InfoNCEFunction(torch.autograd.Function):
    """Forward: one fused pass per direction. Backward: G recomputed per row chunk, cuBLAS products
    accumulated in fp32."""

    @staticmethod
    def forward(ctx, q, p, scale, labels, query_ids, passage_ids, reduction, symmetric, positives_as_negatives,
                tiles):
        scale_vec = scale.detach().to(device=q.device, dtype=torch.float32).reshape(1).contiguous()
        directions = directions_for(q, p, labels, query_ids, passage_ids, symmetric, positives_as_negatives)
        row_losses = torch.zeros((), dtype=torch.float32, device=q.device)
        lses = []
        for direction in directions:
            lse, target_dot = forward_direction(direction, scale_vec, direction.tiles(tiles))
            lses.append(lse)
            row_losses = row_losses + (lse - scale_vec * target_dot).sum()
        ctx.save_for_backward(q, p, scale, labels, query_ids, passage_ids, *lses)
        ctx.options = (reduction, symmetric, positives_as_negatives, tiles)
        return row_losses * row_weight(q.shape[0], reduction, symmetric)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        q, p, scale, labels, query_ids, passage_ids, *lses = ctx.saved_tensors
        reduction, symmetric, positives_as_negatives, tiles = ctx.options
        directions = directions_for(q, p, labels, query_ids, passage_ids, symmetric, positives_as_negatives)
        scale_vec = scale.detach().to(device=q.device, dtype=torch.float32).reshape(1).contiguous()
        d_q = torch.zeros(q.shape, dtype=torch.float32, device=q.device)
        d_p = torch.zeros(p.shape, dtype=torch.float32, device=p.device)
        dscale_rows = backward_direction(directions[0], scale_vec, lses[0], d_q, d_p, directions[0].tiles(tiles))
        if symmetric:
            # Reverse rows are the gathered positives; their columns are the queries, so the
            # column gradient accumulates straight into d_q.
            d_positives = torch.zeros(q.shape, dtype=torch.float32, device=q.device)
            dscale_rows = dscale_rows + backward_direction(directions[1], scale_vec, lses[1], d_positives, d_q,
                                                           directions[1].tiles(tiles))
            add_rows_deterministic(d_p, labels.long(), d_positives)
        # One factor for every term (a device tensor: no host sync on the upstream gradient).
        weight = grad_loss.detach().to(torch.float32) * row_weight(q.shape[0], reduction, symmetric)
        d_scale = None
        if ctx.needs_input_grad[2]:
            d_scale = (dscale_rows.sum() * weight).reshape(scale.shape).to(device=scale.device, dtype=scale.dtype)
        return (d_q.mul_(weight).to(q.dtype), d_p.mul_(weight).to(p.dtype), d_scale,
                None, None, None, None, None, None, None)
