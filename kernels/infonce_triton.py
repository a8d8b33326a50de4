"""Triton kernels for fused InfoNCE, and the code that launches them.

The unit of work is one *direction*: ``M`` row vectors scored against ``N`` column vectors,
``logits = scale * rows @ cols.T``, each row having one target column and a softmax over the columns
allowed for it. The forward (query -> passage) loss is one direction; the symmetric term is a second
direction whose rows are the gathered positives and whose columns are the queries.

Three kernels, none of which materialises the ``M x N`` logits:

* ``_forward_kernel`` (one program per ``BLOCK_M`` rows): sweeps the column tiles once, computing
  each logit tile as a tiled matmul over ``d`` and folding it into an online log-sum-exp; stores
  per row the log-sum-exp and the target's raw dot product.
* ``_backward_rows_kernel`` (one program per row tile): recomputes the logit tiles, forms
  ``dlogits = softmax - onehot(target)`` from the saved log-sum-exp and adds
  ``scale * dlogits @ cols`` into the fp32 row-gradient buffer, and ``sum_j dlogits_ij * raw_ij``
  into a per-row d(scale) term.
* ``_backward_cols_kernel`` (one program per ``BLOCK_N`` columns): the same tiles transposed, adding
  ``scale * dlogits.T @ rows`` into the fp32 column-gradient buffer.

The backward kernels compute gradients of the *unweighted* sum of the row losses; the caller
multiplies by the upstream gradient and the reduction weight afterwards. Keeping that factor (down
to 1/B) out of the tiles keeps ``scale * dlogits``, which is rounded to the input dtype for the
tensor-core matmul, far from fp16's subnormal range.

Each gradient element is owned by exactly one program and accumulated in a fixed order, so results
are bitwise reproducible (no atomics). The gradient buffers are read-modify-written once per tile
and ``d`` chunk: with ``d`` up to 1024 a ``BLOCK_M x d`` fp32 accumulator does not fit in registers.
Index arithmetic is int64 so offsets past 2**31 elements are safe.

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
def _allowed(col_idx, col_ok, target, row_ga, col_ga, row_gb, col_gb, HAS_A: tl.constexpr, HAS_B: tl.constexpr):
    """Which (row, column) logits enter the softmax; arguments are broadcast 2-D, either orientation."""
    allowed = col_ok
    not_target = col_idx != target
    if HAS_A:
        allowed = allowed & ~((row_ga == col_ga) & not_target)
    if HAS_B:
        allowed = allowed & ~((row_gb == col_gb) & not_target)
    return allowed


@triton.jit
def _row_logit_tile(R, C, COL_GA, COL_GB, rows, row_ok, target, row_ga, row_gb, n0, N, D, stride_r, stride_c,
                    HAS_A: tl.constexpr, HAS_B: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                    BLOCK_K: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """Columns ``n0 .. n0 + BLOCK_N`` for a block of rows: (cols, col_ok, raw dots, allowed mask)."""
    cols = n0 + tl.arange(0, BLOCK_N).to(tl.int64)
    col_ok = cols < N
    raw = _dot_tile(R, rows, row_ok, C, cols, col_ok, stride_r, stride_c, D, BLOCK_M, BLOCK_N, BLOCK_K, DOT_PRECISION)
    col_ga = _load_groups(COL_GA, cols, col_ok, HAS_A)
    col_gb = _load_groups(COL_GB, cols, col_ok, HAS_B)
    allowed = _allowed(cols[None, :], col_ok[None, :], target[:, None], row_ga[:, None], col_ga[None, :],
                       row_gb[:, None], col_gb[None, :], HAS_A, HAS_B)
    return cols, col_ok, raw, allowed


@triton.jit
def _accumulate_product(DST, dst_idx, dst_ok, stride_dst, weights, SRC, src_idx, src_ok, stride_src, D,
                        BLOCK_K: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """``DST[dst_idx] += weights @ SRC[src_idx]`` on the fp32 buffer DST, one ``d`` chunk at a time."""
    k_range = tl.arange(0, BLOCK_K)
    for k0 in range(0, D, BLOCK_K):
        ks = k0 + k_range
        k_ok = ks < D
        src = tl.load(SRC + src_idx[:, None] * stride_src + ks[None, :], mask=src_ok[:, None] & k_ok[None, :],
                      other=0.0)
        dst_ptrs = DST + dst_idx[:, None] * stride_dst + ks[None, :]
        dst_mask = dst_ok[:, None] & k_ok[None, :]
        acc = tl.dot(weights, src, tl.load(dst_ptrs, mask=dst_mask, other=0.0), input_precision=DOT_PRECISION)
        tl.store(dst_ptrs, acc, mask=dst_mask)
    # The caller's next tile reads these rows back, and the threads that load an element need not
    # be the ones that stored it (load and dot-result layouts differ): a block-wide barrier makes
    # this program's global stores visible to all its threads first.
    tl.debug_barrier()


@triton.jit
def _forward_kernel(R, C, TARGET, ROW_GA, COL_GA, ROW_GB, COL_GB, SCALE, LSE, POS,
                    M, N, D, stride_r, stride_c,
                    HAS_A: tl.constexpr, HAS_B: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                    BLOCK_K: tl.constexpr, DOT_PRECISION: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < M
    target = tl.load(TARGET + rows, mask=row_ok, other=-1)
    row_ga = _load_groups(ROW_GA, rows, row_ok, HAS_A)
    row_gb = _load_groups(ROW_GB, rows, row_ok, HAS_B)
    scale = tl.load(SCALE)

    running_max = tl.full([BLOCK_M], float("-inf"), tl.float32)
    running_sum = tl.zeros([BLOCK_M], tl.float32)
    target_dot = tl.zeros([BLOCK_M], tl.float32)
    for n0 in range(0, N, BLOCK_N):
        cols, col_ok, raw, allowed = _row_logit_tile(R, C, COL_GA, COL_GB, rows, row_ok, target, row_ga, row_gb,
                                                     n0, N, D, stride_r, stride_c, HAS_A, HAS_B, BLOCK_M, BLOCK_N,
                                                     BLOCK_K, DOT_PRECISION)
        logits = tl.where(allowed, raw * scale, float("-inf"))
        target_dot += tl.sum(tl.where(cols[None, :] == target[:, None], raw, 0.0), axis=1)
        new_max = tl.maximum(running_max, tl.max(logits, axis=1))
        # A row whose columns so far are all excluded keeps max -inf; shifting by 0 then avoids
        # exp(-inf - -inf) = NaN while still adding exp(-inf) = 0.
        shift = tl.where(new_max == float("-inf"), 0.0, new_max)
        running_sum = running_sum * tl.exp(running_max - shift) + tl.sum(tl.exp(logits - shift[:, None]), axis=1)
        running_max = new_max
    # running_sum >= 1 for every row with an allowed column (its maximum contributes exp(0)); only
    # padding rows past M reach 0, and clamping keeps their unstored log finite.
    tl.store(LSE + rows, running_max + tl.log(tl.maximum(running_sum, 1.0e-30)), mask=row_ok)
    tl.store(POS + rows, target_dot, mask=row_ok)


@triton.jit
def _backward_rows_kernel(R, C, TARGET, ROW_GA, COL_GA, ROW_GB, COL_GB, SCALE, LSE, DR, DSCALE_ROWS,
                          M, N, D, stride_r, stride_c, stride_dr,
                          HAS_A: tl.constexpr, HAS_B: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                          BLOCK_K: tl.constexpr, DOT_PRECISION: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < M
    target = tl.load(TARGET + rows, mask=row_ok, other=-1)
    lse = tl.load(LSE + rows, mask=row_ok, other=0.0)
    row_ga = _load_groups(ROW_GA, rows, row_ok, HAS_A)
    row_gb = _load_groups(ROW_GB, rows, row_ok, HAS_B)
    scale = tl.load(SCALE)

    dscale = tl.zeros([BLOCK_M], tl.float32)
    for n0 in range(0, N, BLOCK_N):
        cols, col_ok, raw, allowed = _row_logit_tile(R, C, COL_GA, COL_GB, rows, row_ok, target, row_ga, row_gb,
                                                     n0, N, D, stride_r, stride_c, HAS_A, HAS_B, BLOCK_M, BLOCK_N,
                                                     BLOCK_K, DOT_PRECISION)
        allowed = allowed & row_ok[:, None]
        # Excluded logits become -inf before the exp, so they neither overflow nor contribute.
        prob = tl.exp(tl.where(allowed, raw * scale - lse[:, None], float("-inf")))
        dlogits = prob - tl.where(cols[None, :] == target[:, None], 1.0, 0.0)
        dscale += tl.sum(dlogits * raw, axis=1)
        draw = (dlogits * scale).to(C.dtype.element_ty)
        _accumulate_product(DR, rows, row_ok, stride_dr, draw, C, cols, col_ok, stride_c, D, BLOCK_K, DOT_PRECISION)
    tl.store(DSCALE_ROWS + rows, dscale, mask=row_ok)


@triton.jit
def _backward_cols_kernel(R, C, TARGET, ROW_GA, COL_GA, ROW_GB, COL_GB, SCALE, LSE, DC,
                          M, N, D, stride_r, stride_c, stride_dc,
                          HAS_A: tl.constexpr, HAS_B: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                          BLOCK_K: tl.constexpr, DOT_PRECISION: tl.constexpr):
    # Tiles are held transposed here, (columns x rows), so the gradient matmul needs no transpose.
    cols = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    col_ok = cols < N
    col_ga = _load_groups(COL_GA, cols, col_ok, HAS_A)
    col_gb = _load_groups(COL_GB, cols, col_ok, HAS_B)
    scale = tl.load(SCALE)

    for m0 in range(0, M, BLOCK_M):
        rows = m0 + tl.arange(0, BLOCK_M).to(tl.int64)
        row_ok = rows < M
        target = tl.load(TARGET + rows, mask=row_ok, other=-1)
        lse = tl.load(LSE + rows, mask=row_ok, other=0.0)
        row_ga = _load_groups(ROW_GA, rows, row_ok, HAS_A)
        row_gb = _load_groups(ROW_GB, rows, row_ok, HAS_B)
        raw_t = _dot_tile(C, cols, col_ok, R, rows, row_ok, stride_c, stride_r, D,
                          BLOCK_N, BLOCK_M, BLOCK_K, DOT_PRECISION)
        allowed = _allowed(cols[:, None], col_ok[:, None], target[None, :], row_ga[None, :], col_ga[:, None],
                           row_gb[None, :], col_gb[:, None], HAS_A, HAS_B) & row_ok[None, :]
        prob = tl.exp(tl.where(allowed, raw_t * scale - lse[None, :], float("-inf")))
        dlogits = prob - tl.where(cols[:, None] == target[None, :], 1.0, 0.0)
        draw = (dlogits * scale).to(R.dtype.element_ty)
        _accumulate_product(DC, cols, col_ok, stride_dc, draw, R, rows, row_ok, stride_r, D, BLOCK_K, DOT_PRECISION)


INTERPRETED = not isinstance(_forward_kernel, triton.runtime.jit.JITFunction)


@dataclass(frozen=True)
class TileConfig:
    """Tile sizes (powers of two, >= 16 for ``tl.dot``) and launch options shared by the three kernels."""

    block_m: int
    block_n: int
    block_k: int
    num_warps: int = 4
    num_stages: int = 2

    def __post_init__(self) -> None:
        for name in ("block_m", "block_n", "block_k"):
            value = getattr(self, name)
            if value < 16 or value & (value - 1):
                raise HybridReproError(f"TileConfig.{name} must be a power of two >= 16, got {value}")


def choose_tiles(n_rows: int, n_cols: int, dtype: torch.dtype, device: torch.device) -> TileConfig:
    """Tiles for ``n_rows`` x ``n_cols`` logits: a fixed heuristic, no autotuning.

    In the interpreter the smallest tiles keep every multi-tile path exercised on small test shapes;
    on a GPU see :func:`tiles_for`.
    """
    if device.type != "cuda":
        return TileConfig(16, 16, 16)
    return tiles_for(n_rows, n_cols, dtype, torch.cuda.get_device_properties(device).multi_processor_count)


def tiles_for(n_rows: int, n_cols: int, dtype: torch.dtype, multiprocessors: int) -> TileConfig:
    """GPU tiles: 128-row tiles for 16-bit inputs (64 for fp32, whose 'ieee' dots run on FMA units),
    64-column tiles, each halved (down to 32) while the kernel gridded over it would have fewer
    programs than multiprocessors, so small batches still spread over the chip.

    8 warps for tiles of 64 x 64 or more, else 4: the choice without register spills for every
    kernel on sm_90 (``python -m hybrid_repro.kernels.infonce_aot``) except the fp32 32 x 64
    backward kernels (under 40 bytes). Speed is untuned: the benchmark is where these choices get
    measured.
    """

    def fit(block: int, extent: int) -> int:
        while block > 32 and triton.cdiv(extent, block) < multiprocessors:
            block //= 2
        return block

    fp32 = dtype == torch.float32
    block_m, block_n = fit(64 if fp32 else 128, n_rows), fit(64, n_cols)
    return TileConfig(block_m, block_n, 32 if fp32 else 64, num_warps=8 if block_m * block_n >= 64 * 64 else 4,
                      num_stages=2 if fp32 else 3)


def dot_precision(dtype: torch.dtype) -> str:
    """fp32 inputs use exact fp32 products ('ieee'): tf32 would lose ~3 decimal digits of the logits."""
    return "ieee" if dtype == torch.float32 else "tf32"


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

    def _shape_args(self) -> list[int]:
        return [self.rows.shape[0], self.cols.shape[0], self.rows.shape[1], self.rows.stride(0), self.cols.stride(0)]

    def _flags(self, kernel: str, tiles: TileConfig) -> dict:
        block_m, block_n = kernel_blocks(kernel, tiles)
        return dict(HAS_A=self.group_a is not None, HAS_B=self.group_b is not None, BLOCK_M=block_m,
                    BLOCK_N=block_n, BLOCK_K=tiles.block_k, DOT_PRECISION=dot_precision(self.rows.dtype),
                    num_warps=tiles.num_warps, num_stages=tiles.num_stages)


def kernel_blocks(kernel: str, tiles: TileConfig) -> tuple[int, int]:
    """(BLOCK_M, BLOCK_N) each kernel is launched with.

    The forward kernel takes the tiles as given. A backward kernel owns ``own`` gradient rows
    (``own x d`` fp32) and sweeps the other side in tiles of ``sweep``: per swept tile it does
    ``4 * own * sweep * d`` FLOPs (logit recompute and gradient matmul) and reads and writes its
    accumulator once (``8 * own * d`` bytes), ``sweep / 2`` FLOP per byte. So both backward kernels
    own the smaller side and sweep the larger: for bf16 128 x 64 tiles, 64 FLOP/B instead of 32.
    """
    own, sweep = min(tiles.block_m, tiles.block_n), max(tiles.block_m, tiles.block_n)
    return {"_forward_kernel": (tiles.block_m, tiles.block_n), "_backward_rows_kernel": (own, sweep),
            "_backward_cols_kernel": (sweep, own)}[kernel]


def forward_direction(direction: Direction, scale: Tensor, tiles: TileConfig) -> tuple[Tensor, Tensor]:
    """Per-row log-sum-exp over the allowed logits and the target's raw dot product, both fp32 (M,)."""
    n_rows = direction.rows.shape[0]
    lse = torch.empty(n_rows, dtype=torch.float32, device=direction.rows.device)
    target_dot = torch.empty_like(lse)
    grid = (triton.cdiv(n_rows, tiles.block_m),)
    _forward_kernel[grid](direction.rows, direction.cols, direction.targets, *direction._group_args(), scale,
                          lse, target_dot, *direction._shape_args(), **direction._flags("_forward_kernel", tiles))
    return lse, target_dot


def backward_direction(direction: Direction, scale: Tensor, lse: Tensor, d_rows: Tensor, d_cols: Tensor,
                       tiles: TileConfig) -> Tensor:
    """Add the gradients of this direction's summed row losses into the fp32 buffers ``d_rows``
    (M x d) and ``d_cols`` (N x d), which may already hold other terms.

    Returns each row's d(row loss)/d(scale), fp32 (M,), for a deterministic sum by the caller.
    """
    n_rows, n_cols = direction.rows.shape[0], direction.cols.shape[0]
    dscale_rows = torch.empty(n_rows, dtype=torch.float32, device=direction.rows.device)
    common = [direction.rows, direction.cols, direction.targets, *direction._group_args(), scale, lse]
    rows_flags = direction._flags("_backward_rows_kernel", tiles)
    cols_flags = direction._flags("_backward_cols_kernel", tiles)
    _backward_rows_kernel[(triton.cdiv(n_rows, rows_flags["BLOCK_M"]),)](
        *common, d_rows, dscale_rows, *direction._shape_args(), d_rows.stride(0), **rows_flags)
    _backward_cols_kernel[(triton.cdiv(n_cols, cols_flags["BLOCK_N"]),)](
        *common, d_cols, *direction._shape_args(), d_cols.stride(0), **cols_flags)
    return dscale_rows
