"""Triton kernels for fused InfoNCE, and the code that launches them.

The unit of work is one *direction*: ``M`` row vectors scored against ``N`` column vectors,
``logits = scale * rows @ cols.T``, each row having one target column and a softmax over the columns
allowed for it. The forward (query -> passage) loss is one direction; the symmetric term is a second
direction whose rows are the gathered positives and whose columns are the queries.

Two kernels, neither of which keeps the ``M x N`` logits:

* ``_forward_kernel`` (one program per ``BLOCK_M`` rows and column slice): sweeps its column tiles
  once, each logit tile a tiled matmul over ``d`` folded into an online log-sum-exp, in one loop
  flattened over (column tile, ``d`` chunk) so the loads stay software-pipelined across tiles. It
  stores per row and slice the log-sum-exp and the target's raw dot product; slices exist only to
  fill the chip when there are fewer row blocks than multiprocessors, and are merged in PyTorch.
* ``_grad_logits_kernel`` (one program per ``BLOCK_M x BLOCK_N`` tile of a chunk of rows): recomputes
  the logit tile from the saved log-sum-exp and writes ``scale * (softmax - onehot(target))`` for it
  (excluded columns exactly 0), in the input dtype for 16-bit inputs and in fp32 for fp32, together
  with the tile's share of each row's d(scale) term ``sum_j dlogits_ij * raw_ij``.

The backward pass then does the two large products with cuBLAS through PyTorch, per chunk of rows:
``d_rows[chunk] += G @ cols`` and ``d_cols += G.T @ rows[chunk]``, both accumulated in fp32. That is
the matmul floor of the backward (recompute plus two gradient products, ``6 M N d`` FLOPs) with no
gradient accumulator read and written per tile; the price is writing and reading ``G`` (a chunk of
at most :data:`GRAD_CHUNK_BYTES`).

The backward computes gradients of the *unweighted* sum of the row losses; the caller multiplies by
the upstream gradient and the reduction weight afterwards. Keeping that factor (down to 1/B) out of
``G``, which is rounded to the input dtype, keeps it far from fp16's subnormal range.

Results are bitwise reproducible: no atomics, each partial (slice, tile share) reduced by PyTorch in
a fixed order, chunks processed in a fixed order, and cuBLAS gives the same bits for the same shapes
on the same GPU and stream. Index arithmetic is int64 so offsets past 2**31 elements are safe.

Exclusions (false negatives) come as up to two pairs of integer *groups*: column j is excluded from
row i when ``row_group[i] == col_group[j]`` and j is not row i's target.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl
from torch import Tensor

from hybrid_repro.errors import HybridReproError

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# The backward's G buffer: at B = N = 65536 (bf16) that is 2048 rows a chunk, and with the two fp32
# gradient accumulators and one product temporary the backward stays under 1 GiB beyond inputs and
# gradients (docs/kernel.md, "Memory").
GRAD_CHUNK_BYTES = 256 << 20


@triton.jit
def _dot_tile(A, a_idx, a_ok, B, b_idx, b_ok, stride_a, stride_b, D,
              BLOCK_A: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_K: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """``A[a_idx] @ B[b_idx].T`` in fp32, ``d`` swept in chunks of BLOCK_K; masked rows read as zeros."""
    acc = tl.zeros([BLOCK_A, BLOCK_B], dtype=tl.float32)
    k_range = tl.arange(0, BLOCK_K)
    for k0 in range(0, D, BLOCK_K):
        ks = k0 + k_range
        k_ok = ks < D
        a = tl.load(A + a_idx[:, None] * stride_a + ks[None, :], mask=a_ok[:, None] & k_ok[None, :], other=0.0)
        b = tl.load(B + b_idx[:, None] * stride_b + ks[None, :], mask=b_ok[:, None] & k_ok[None, :], other=0.0)
        acc = tl.dot(a, tl.trans(b), acc, input_precision=DOT_PRECISION)
    return acc


@triton.jit
def _load_groups(PTR, idx, ok, ENABLED: tl.constexpr):
    """Group ids at ``idx`` (int64), or zeros when this exclusion rule is off (then never compared)."""
    groups = tl.zeros_like(idx)
    if ENABLED:
        groups = tl.load(PTR + idx, mask=ok, other=0)
    return groups


@triton.jit
def _row_logit_tile(R, C, COL_GA, COL_GB, rows, row_ok, target, row_ga, row_gb, n0, N, D, stride_r, stride_c,
                    HAS_A: tl.constexpr, HAS_B: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                    BLOCK_K: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """Columns ``n0 .. n0 + BLOCK_N`` for a block of rows: (cols, raw dots, allowed mask)."""
    cols = n0 + tl.arange(0, BLOCK_N).to(tl.int64)
    col_ok = cols < N
    raw = _dot_tile(R, rows, row_ok, C, cols, col_ok, stride_r, stride_c, D, BLOCK_M, BLOCK_N, BLOCK_K, DOT_PRECISION)
    allowed = col_ok[None, :]
    not_target = cols[None, :] != target[:, None]
    if HAS_A:
        col_ga = _load_groups(COL_GA, cols, col_ok, HAS_A)
        allowed = allowed & ~((row_ga[:, None] == col_ga[None, :]) & not_target)
    if HAS_B:
        col_gb = _load_groups(COL_GB, cols, col_ok, HAS_B)
        allowed = allowed & ~((row_gb[:, None] == col_gb[None, :]) & not_target)
    return cols, raw, allowed


@triton.jit
def _forward_kernel(R, C, TARGET, ROW_GA, COL_GA, ROW_GB, COL_GB, SCALE, LSE_PARTS, POS_PARTS,
                    M, N, D, stride_r, stride_c, cols_per_split,
                    HAS_A: tl.constexpr, HAS_B: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                    BLOCK_K: tl.constexpr, DOT_PRECISION: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    split = tl.program_id(1).to(tl.int64)
    row_ok = rows < M
    target = tl.load(TARGET + rows, mask=row_ok, other=-1)
    row_ga = _load_groups(ROW_GA, rows, row_ok, HAS_A)
    row_gb = _load_groups(ROW_GB, rows, row_ok, HAS_B)
    scale = tl.load(SCALE)
    col_begin = split * cols_per_split
    col_end = tl.minimum(col_begin + cols_per_split, N)

    running_max = tl.full([BLOCK_M], float("-inf"), tl.float32)
    running_sum = tl.zeros([BLOCK_M], tl.float32)
    target_dot = tl.zeros([BLOCK_M], tl.float32)
    # flatten=True merges this loop with the d loop inside _dot_tile into one software-pipelined
    # loop: without it the pipeline drains and refills at every column tile.
    for n0 in tl.range(col_begin, col_end, BLOCK_N, flatten=True):
        cols, raw, allowed = _row_logit_tile(R, C, COL_GA, COL_GB, rows, row_ok, target, row_ga, row_gb, n0, N, D,
                                             stride_r, stride_c, HAS_A, HAS_B, BLOCK_M, BLOCK_N, BLOCK_K,
                                             DOT_PRECISION)
        logits = tl.where(allowed, raw * scale, float("-inf"))
        target_dot += tl.sum(tl.where(cols[None, :] == target[:, None], raw, 0.0), axis=1)
        new_max = tl.maximum(running_max, tl.max(logits, axis=1))
        # A row whose columns so far are all excluded keeps max -inf; shifting by 0 then avoids
        # exp(-inf - -inf) = NaN while still adding exp(-inf) = 0.
        shift = tl.where(new_max == float("-inf"), 0.0, new_max)
        running_sum = running_sum * tl.exp(running_max - shift) + tl.sum(tl.exp(logits - shift[:, None]), axis=1)
        running_max = new_max
    # running_sum >= 1 for every row with an allowed column in this slice (its maximum contributes
    # exp(0)); a slice with none stores -inf + log(1e-30) = -inf, which the merge's logsumexp ignores.
    out = split * M + rows
    tl.store(LSE_PARTS + out, running_max + tl.log(tl.maximum(running_sum, 1.0e-30)), mask=row_ok)
    tl.store(POS_PARTS + out, target_dot, mask=row_ok)


@triton.jit
def _grad_logits_kernel(R, C, TARGET, ROW_GA, COL_GA, ROW_GB, COL_GB, SCALE, LSE, G, DSCALE_PARTS,
                        row_start, row_end, N, D, stride_r, stride_c, stride_g, stride_parts,
                        HAS_A: tl.constexpr, HAS_B: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                        BLOCK_K: tl.constexpr, DOT_PRECISION: tl.constexpr):
    local = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    col_tile = tl.program_id(1).to(tl.int64)
    rows = row_start + local
    row_ok = rows < row_end
    target = tl.load(TARGET + rows, mask=row_ok, other=-1)
    lse = tl.load(LSE + rows, mask=row_ok, other=0.0)
    row_ga = _load_groups(ROW_GA, rows, row_ok, HAS_A)
    row_gb = _load_groups(ROW_GB, rows, row_ok, HAS_B)
    scale = tl.load(SCALE)

    cols, raw, allowed = _row_logit_tile(R, C, COL_GA, COL_GB, rows, row_ok, target, row_ga, row_gb,
                                         col_tile * BLOCK_N, N, D, stride_r, stride_c, HAS_A, HAS_B, BLOCK_M,
                                         BLOCK_N, BLOCK_K, DOT_PRECISION)
    # Excluded logits become -inf before the exp, so they neither overflow nor contribute: their G is 0.
    prob = tl.exp(tl.where(allowed & row_ok[:, None], raw * scale - lse[:, None], float("-inf")))
    dlogits = prob - tl.where(cols[None, :] == target[:, None], 1.0, 0.0)
    tl.store(DSCALE_PARTS + col_tile * stride_parts + local, tl.sum(dlogits * raw, axis=1), mask=row_ok)
    g_ptrs = G + local[:, None] * stride_g + cols[None, :]
    tl.store(g_ptrs, (dlogits * scale).to(G.dtype.element_ty), mask=row_ok[:, None] & (cols < N)[None, :])


INTERPRETED = not isinstance(_forward_kernel, triton.runtime.jit.JITFunction)


@dataclass(frozen=True)
class TileConfig:
    """Tiles and launch options of both kernels, and how the work is split.

    ``block_*`` are powers of two >= 16 (``tl.dot``). ``column_splits``: forward programs per row
    block, each sweeping one slice of the columns. ``chunk_rows``: rows of G per backward chunk;
    ``None`` takes as many as :data:`GRAD_CHUNK_BYTES` holds.
    """

    block_m: int
    block_n: int
    block_k: int
    num_warps: int = 4
    num_stages: int = 2
    column_splits: int = 1
    chunk_rows: int | None = None

    def __post_init__(self) -> None:
        for name in ("block_m", "block_n", "block_k"):
            value = getattr(self, name)
            if value < 16 or value & (value - 1):
                raise HybridReproError(f"TileConfig.{name} must be a power of two >= 16, got {value}")
        if self.column_splits < 1 or (self.chunk_rows is not None and self.chunk_rows < 1):
            raise HybridReproError(f"TileConfig.column_splits and chunk_rows must be >= 1, got "
                                   f"{self.column_splits} and {self.chunk_rows}")


def choose_tiles(n_rows: int, n_cols: int, dtype: torch.dtype, device: torch.device) -> TileConfig:
    """Tiles for one ``n_rows`` x ``n_cols`` direction: a fixed heuristic, no autotuning.

    In the interpreter the smallest tiles keep every multi-tile path exercised on small test shapes;
    on a GPU see :func:`tiles_for`.
    """
    if device.type != "cuda":
        return TileConfig(16, 16, 16)
    return tiles_for(n_rows, n_cols, dtype, torch.cuda.get_device_properties(device).multi_processor_count)


def tiles_for(n_rows: int, n_cols: int, dtype: torch.dtype, multiprocessors: int) -> TileConfig:
    """GPU tiles: 128 x 128 x 64 for 16-bit inputs (wgmma), 64 x 64 x 32 for fp32 (exact 'ieee' dots
    on FMA units), 8 warps and 3 pipeline stages each (the spill-free choice on Triton 3.6 and 3.9: the
    fp32 forward spills with 4 warps, or with 2 stages on 3.6), never shrunk.

    When the row blocks are fewer than the multiprocessors (B < 16896 for 16-bit tiles on 132 SMs)
    the forward splits each row block's column sweep into ``multiprocessors // row_blocks`` slices
    instead of shrinking the tiles: smaller tiles would lower the FLOPs per byte loaded and move the
    matmul off 128-wide wgmma, while a split costs only a merge of ``splits x M`` partials. Rounding
    down keeps the grid within one wave. The backward grid has one program per tile of G, so it fills
    the chip at any size. Each choice compiles without spills on sm_90
    (``python -m hybrid_repro.kernels.infonce_aot``); speed is measured by ``bench-kernel``.
    """
    sixteen_bit = dtype != torch.float32
    block = 128 if sixteen_bit else 64
    row_blocks, col_tiles = triton.cdiv(n_rows, block), triton.cdiv(n_cols, block)
    splits = max(1, min(multiprocessors // row_blocks, col_tiles))
    return TileConfig(block, block, 64 if sixteen_bit else 32, num_warps=8, num_stages=3, column_splits=splits)


def dot_precision(dtype: torch.dtype) -> str:
    """fp32 inputs use exact fp32 products ('ieee'): tf32 would lose ~3 decimal digits of the logits."""
    return "ieee" if dtype == torch.float32 else "tf32"


def chunk_rows_for(n_rows: int, n_cols: int, element_size: int, tiles: TileConfig) -> int:
    """Rows of G per backward chunk: ``tiles.chunk_rows``, else whole row blocks within GRAD_CHUNK_BYTES."""
    if tiles.chunk_rows is not None:
        return min(tiles.chunk_rows, n_rows)
    per_row = n_cols * element_size
    return min(n_rows, max(tiles.block_m, GRAD_CHUNK_BYTES // per_row // tiles.block_m * tiles.block_m))


def split_columns(n_cols: int, tiles: TileConfig) -> tuple[int, int]:
    """(slices, columns per slice) of the forward: whole column tiles, no empty slice."""
    col_tiles = triton.cdiv(n_cols, tiles.block_n)
    cols_per_split = triton.cdiv(col_tiles, min(tiles.column_splits, col_tiles)) * tiles.block_n
    return triton.cdiv(n_cols, cols_per_split), cols_per_split


@dataclass
class Direction:
    """One softmax direction: ``rows`` (M x d) scored against ``cols`` (N x d), contiguous, same dtype.

    ``targets`` (M,) int64 in [0, N); ``group_a``/``group_b`` are optional (row_groups (M,),
    col_groups (N,)) int64 pairs of the exclusion rule.
    """

    rows: Tensor
    cols: Tensor
    targets: Tensor
    group_a: tuple[Tensor, Tensor] | None
    group_b: tuple[Tensor, Tensor] | None

    def _group_args(self) -> list[Tensor]:
        dummy = self.targets  # never read: the kernels skip loads of a disabled group
        a = self.group_a or (dummy, dummy)
        b = self.group_b or (dummy, dummy)
        return [a[0], a[1], b[0], b[1]]

    def _flags(self, tiles: TileConfig) -> dict:
        return dict(HAS_A=self.group_a is not None, HAS_B=self.group_b is not None, BLOCK_M=tiles.block_m,
                    BLOCK_N=tiles.block_n, BLOCK_K=tiles.block_k, DOT_PRECISION=dot_precision(self.rows.dtype),
                    num_warps=tiles.num_warps, num_stages=tiles.num_stages)

    def tiles(self, override: TileConfig | None) -> TileConfig:
        return override or choose_tiles(self.rows.shape[0], self.cols.shape[0], self.rows.dtype, self.rows.device)


@dataclass
class Launch:
    """One kernel launch: the kernel, its grid, arguments and compile options (constexprs included).

    The launchers below build these and call them; the sm_90 compile report builds the same ones with
    meta tensors, so it compiles exactly what a launch at that shape would (``infonce_aot``).
    """

    kernel: object
    grid: tuple[int, ...]
    args: list
    options: dict

    def __call__(self) -> None:
        self.kernel[self.grid](*self.args, **self.options)


def forward_launch(direction: Direction, scale: Tensor, tiles: TileConfig, lse_parts: Tensor,
                   pos_parts: Tensor) -> Launch:
    """The forward kernel over every row block and column slice, writing (slices, M) partials."""
    n_rows, n_cols, dim = direction.rows.shape[0], direction.cols.shape[0], direction.rows.shape[1]
    splits, cols_per_split = split_columns(n_cols, tiles)
    args = [direction.rows, direction.cols, direction.targets, *direction._group_args(), scale, lse_parts,
            pos_parts, n_rows, n_cols, dim, direction.rows.stride(0), direction.cols.stride(0), cols_per_split]
    return Launch(_forward_kernel, (triton.cdiv(n_rows, tiles.block_m), splits), args, direction._flags(tiles))


def grad_logits_launch(direction: Direction, scale: Tensor, lse: Tensor, tiles: TileConfig, g: Tensor,
                       dscale_parts: Tensor, start: int, stop: int) -> Launch:
    """The G kernel over every tile of rows ``start .. stop`` (G's rows 0 .. stop - start)."""
    rows, cols = direction.rows, direction.cols
    n_cols = cols.shape[0]
    args = [rows, cols, direction.targets, *direction._group_args(), scale, lse, g, dscale_parts, start, stop,
            n_cols, rows.shape[1], rows.stride(0), cols.stride(0), g.stride(0), dscale_parts.stride(0)]
    grid = (triton.cdiv(stop - start, tiles.block_m), triton.cdiv(n_cols, tiles.block_n))
    return Launch(_grad_logits_kernel, grid, args, direction._flags(tiles))


def forward_direction(direction: Direction, scale: Tensor, tiles: TileConfig) -> tuple[Tensor, Tensor]:
    """Per-row log-sum-exp over the allowed logits and the target's raw dot product, both fp32 (M,)."""
    splits, _ = split_columns(direction.cols.shape[0], tiles)
    lse_parts = torch.empty(splits, direction.rows.shape[0], dtype=torch.float32, device=direction.rows.device)
    pos_parts = torch.empty_like(lse_parts)
    forward_launch(direction, scale, tiles, lse_parts, pos_parts)()
    if splits == 1:
        return lse_parts[0], pos_parts[0]
    return torch.logsumexp(lse_parts, dim=0), pos_parts.sum(dim=0)


def accumulate_product(acc: Tensor, a: Tensor, b: Tensor) -> None:
    """``acc += a @ b`` with fp32 accumulation into the fp32 ``acc``.

    16-bit operands on CUDA go through cuBLAS's 16-bit-in / fp32-out GEMM (``out_dtype``); elsewhere
    (the interpreter's CPU tensors) they are upcast first, which gives the same exact products.
    """
    if a.dtype == acc.dtype:
        acc.addmm_(a, b)
    elif acc.is_cuda:
        acc.add_(torch.mm(a, b, out_dtype=acc.dtype))
    else:
        acc.addmm_(a.to(acc.dtype), b.to(acc.dtype))


def backward_direction(direction: Direction, scale: Tensor, lse: Tensor, d_rows: Tensor, d_cols: Tensor,
                       tiles: TileConfig) -> Tensor:
    """Add the gradients of this direction's summed row losses into the fp32 buffers ``d_rows``
    (M x d) and ``d_cols`` (N x d), which may already hold other terms.

    Returns each row's d(row loss)/d(scale), fp32 (M,), for a deterministic sum by the caller.
    """
    rows, cols = direction.rows, direction.cols
    n_rows, n_cols = rows.shape[0], cols.shape[0]
    chunk = chunk_rows_for(n_rows, n_cols, rows.element_size(), tiles)
    col_tiles = triton.cdiv(n_cols, tiles.block_n)
    # G in the input dtype: cuBLAS takes 16-bit operands as they are, and fp32 stays exact.
    grads = torch.empty(chunk, n_cols, dtype=rows.dtype, device=rows.device)
    dscale_parts = torch.empty(col_tiles, chunk, dtype=torch.float32, device=rows.device)
    dscale_rows = torch.empty(n_rows, dtype=torch.float32, device=rows.device)
    for start in range(0, n_rows, chunk):
        stop = min(start + chunk, n_rows)
        g = grads[: stop - start]
        grad_logits_launch(direction, scale, lse, tiles, g, dscale_parts, start, stop)()
        accumulate_product(d_rows[start:stop], g, cols)
        accumulate_product(d_cols, g.T, rows[start:stop])
        dscale_rows[start:stop] = dscale_parts[:, : stop - start].sum(dim=0)
    return dscale_rows
