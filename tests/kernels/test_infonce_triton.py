"""The fused Triton InfoNCE against the float64 reference: loss, dQ, dP and d(scale), through the interpreter.

Without CUDA the kernels run through the Triton interpreter (conftest.py sets TRITON_INTERPRET=1),
so these tests use small shapes and 16-wide tiles, which still exercise every multi-tile path, with
column splits and backward chunks drawn too. The interpreter computes bf16 dots wrongly (numpy has no
bf16), so bf16 is tested on a GPU only (test_infonce_gpu.py); fp16 is exact here (products accumulate
in fp32 as on the GPU). The bounds are those of kernel_checks.py.
"""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_checks import assert_matches_reference, assert_same_training_curve, unit_rows

from hybrid_repro.config import LossConfig
from hybrid_repro.errors import HybridReproError
from hybrid_repro.kernels.infonce_reference import info_nce_reference
from hybrid_repro.modeling.loss import InfoNCELoss

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
DTYPES = [torch.float32, torch.float16] + ([torch.bfloat16] if DEVICE.type == "cuda" else [])

pytestmark = pytest.mark.usefixtures("interpreted_kernels")


def _tiles(block_m=16, block_n=16, block_k=16, column_splits=1, chunk_rows=None):
    from hybrid_repro.kernels.infonce_triton import TileConfig

    return TileConfig(block_m, block_n, block_k, column_splits=column_splits, chunk_rows=chunk_rows)


def _unit_rows(n, dim, gen, dtype):
    return unit_rows(n, dim, gen, dtype, DEVICE)


@st.composite
def loss_cases(draw):
    batch = draw(st.integers(1, 24))
    n_passages = draw(st.integers(batch, batch + 24))
    dim = draw(st.integers(1, 40))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    dtype = draw(st.sampled_from(DTYPES))
    # Few distinct labels and ids, so repeated positives and same-question duplicates are common.
    labels = torch.randint(0, n_passages, (batch,), generator=gen)
    ids = {}
    if draw(st.booleans()):
        ids = dict(query_ids=torch.randint(0, 3, (batch,), generator=gen).to(DEVICE),
                   passage_ids=torch.randint(0, 3, (n_passages,), generator=gen).to(DEVICE))
    return dict(q=_unit_rows(batch, dim, gen, dtype), p=_unit_rows(n_passages, dim, gen, dtype),
                labels=labels.to(DEVICE), scale=draw(st.floats(1.0, 100.0)),
                symmetric=draw(st.booleans()), positives_as_negatives=draw(st.booleans()),
                reduction=draw(st.sampled_from(["mean", "sum"])),
                tiles=_tiles(column_splits=draw(st.integers(1, 3)),
                             chunk_rows=draw(st.sampled_from([None, 5, 16, 32]))), **ids)


@pytest.mark.interpreter
@settings(max_examples=40, deadline=None)
@given(case=loss_cases())
def test_matches_reference_on_random_cases(case):
    assert_matches_reference(**case)


@pytest.mark.interpreter
def test_rows_with_all_similarities_very_negative_at_scale_100():
    gen = torch.Generator().manual_seed(0)
    p = F.normalize(torch.tensor([1.0, 0.0, 0.0]) + 0.05 * torch.randn(40, 3, generator=gen), dim=1)
    q = torch.tensor([[-50.0, 0.0, 0.0]]).repeat(5, 1)  # every logit near 100 * -50 = -5000
    for symmetric in (False, True):
        assert_matches_reference(q.to(DEVICE), p.to(DEVICE), torch.tensor([0, 3, 17, 33, 39], device=DEVICE),
                                 100.0, tiles=_tiles(), symmetric=symmetric)


@pytest.mark.interpreter
@pytest.mark.parametrize("symmetric", [False, True])
def test_fully_masked_tiles(symmetric):
    # Row 0's target sits in the last tile after three tiles (48 columns) of its own question,
    # all excluded; row 1's target is inside that masked region.
    gen = torch.Generator().manual_seed(1)
    q, p = _unit_rows(4, 8, gen, torch.float32), _unit_rows(64, 8, gen, torch.float32)
    passage_ids = torch.where(torch.arange(64) < 48, 0, torch.arange(64))
    assert_matches_reference(q, p, torch.tensor([50, 5, 60, 63], device=DEVICE), 100.0, tiles=_tiles(),
                             symmetric=symmetric, positives_as_negatives=False,
                             query_ids=torch.tensor([0, 0, 1, 2], device=DEVICE), passage_ids=passage_ids.to(DEVICE))


@pytest.mark.interpreter
@pytest.mark.parametrize("n_passages", [1, 5])
def test_single_query(n_passages):
    gen = torch.Generator().manual_seed(2)
    q, p = _unit_rows(1, 6, gen, torch.float32), _unit_rows(n_passages, 6, gen, torch.float32)
    assert_matches_reference(q, p, torch.tensor([n_passages - 1], device=DEVICE), 20.0, tiles=_tiles(),
                             symmetric=True)


@pytest.mark.interpreter
@pytest.mark.parametrize("blocks", [(16, 16, 16), (32, 16, 16), (16, 32, 32)])
def test_shapes_that_are_not_tile_multiples(blocks):
    gen = torch.Generator().manual_seed(3)
    q, p = _unit_rows(17, 19, gen, torch.float32), _unit_rows(35, 19, gen, torch.float32)
    labels = torch.randint(0, 35, (17,), generator=gen).to(DEVICE)
    assert_matches_reference(q, p, labels, 50.0, tiles=_tiles(*blocks), symmetric=True)


@pytest.mark.interpreter
def test_default_tiles_and_python_float_scale():
    from hybrid_repro.kernels.infonce_function import info_nce_triton

    gen = torch.Generator().manual_seed(4)
    q, p = _unit_rows(9, 12, gen, torch.float32), _unit_rows(18, 12, gen, torch.float32)
    labels = torch.arange(9, device=DEVICE)
    got = info_nce_triton(q, p, labels, 20.0)
    torch.testing.assert_close(got, info_nce_reference(q, p, labels, 20.0), rtol=1e-5, atol=1e-5)


@pytest.mark.interpreter
def test_loss_module_dispatches_to_the_kernel():
    module = InfoNCELoss(impl="triton", reason="test", temperature=0.05, positives_as_negatives=False,
                         symmetric=True, reduction="mean")
    reference = InfoNCELoss.from_config(LossConfig(impl="torch", positives_as_negatives=False, symmetric=True),
                                        torch.device("cpu"))
    gen = torch.Generator().manual_seed(5)
    q, p = _unit_rows(6, 10, gen, torch.float32), _unit_rows(12, 10, gen, torch.float32)
    labels = torch.arange(6, device=DEVICE)
    assert module.impl_name == "triton" and "fused Triton kernel" in module.describe()
    torch.testing.assert_close(module(q, p, labels), reference(q, p, labels), rtol=1e-5, atol=1e-5)


def test_add_rows_deterministic_handles_repeated_indices():
    from hybrid_repro.kernels.infonce_function import add_rows_deterministic

    gen = torch.Generator().manual_seed(6)
    index = torch.tensor([3, 1, 3, 3, 0, 1])
    rows = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    target = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    expected = target.clone().index_add_(0, index, rows)
    add_rows_deterministic(target, index, rows)
    torch.testing.assert_close(target, expected)


def test_rejects_unsupported_dtypes():
    from hybrid_repro.kernels.infonce_function import info_nce_triton

    q, p = torch.zeros(2, 3, dtype=torch.float64), torch.zeros(3, 3, dtype=torch.float64)
    with pytest.raises(HybridReproError, match="fp32/fp16/bf16"):
        info_nce_triton(q, p, torch.tensor([0, 1]), 1.0)
    with pytest.raises(HybridReproError, match="fp32/fp16/bf16"):
        info_nce_triton(q.float(), p.half(), torch.tensor([0, 1]), 1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device")
def test_rejects_labels_on_another_device():
    from hybrid_repro.kernels.infonce_function import info_nce_triton

    q, p = torch.zeros(2, 16, device=DEVICE), torch.zeros(3, 16, device=DEVICE)
    with pytest.raises(HybridReproError, match="one device"):
        info_nce_triton(q, p, torch.tensor([0, 1]), 1.0)


def test_tile_config_rejects_bad_blocks():
    from hybrid_repro.kernels.infonce_triton import TileConfig

    with pytest.raises(HybridReproError, match="power of two"):
        TileConfig(24, 16, 16)
    with pytest.raises(HybridReproError, match=">= 16"):
        TileConfig(16, 8, 16)
    with pytest.raises(HybridReproError, match="column_splits and chunk_rows"):
        TileConfig(16, 16, 16, column_splits=0)
    with pytest.raises(HybridReproError, match="column_splits and chunk_rows"):
        TileConfig(16, 16, 16, chunk_rows=0)


@pytest.mark.interpreter
@pytest.mark.parametrize("symmetric", [False, True])
def test_rows_whose_only_allowed_column_is_their_target(symmetric):
    # Every query asks the same question and all passages answer it: each row's softmax holds its
    # target alone, so the loss and every gradient are exactly 0 (G's masked entries are exactly 0).
    gen = torch.Generator().manual_seed(9)
    q, p = _unit_rows(5, 12, gen, torch.float32), _unit_rows(40, 12, gen, torch.float32)
    labels = torch.tensor([0, 7, 19, 33, 39], device=DEVICE)
    ids = dict(query_ids=torch.zeros(5, dtype=torch.long, device=DEVICE),
               passage_ids=torch.zeros(40, dtype=torch.long, device=DEVICE))
    assert_matches_reference(q, p, labels, 30.0, tiles=_tiles(column_splits=2, chunk_rows=2),
                             symmetric=symmetric, **ids)
    from hybrid_repro.kernels.infonce_function import info_nce_triton

    q, p = q.clone().requires_grad_(), p.clone().requires_grad_()
    loss = info_nce_triton(q, p, labels, 30.0, symmetric=symmetric, tiles=_tiles(chunk_rows=3), **ids)
    loss.backward()
    assert loss.item() == 0.0 and not q.grad.any() and not p.grad.any()


@pytest.mark.interpreter
def test_training_curve_matches_reference():
    assert_same_training_curve(batch=16, device=DEVICE)


def test_tile_heuristic_keeps_full_tiles_and_splits_columns_to_fill_the_gpu():
    from hybrid_repro.kernels.infonce_triton import TileConfig, choose_tiles, split_columns, tiles_for

    goal = TileConfig(128, 128, 64, num_warps=8, num_stages=3)
    assert tiles_for(65536, 65536, torch.bfloat16, 132) == goal
    assert tiles_for(16384, 16384, torch.bfloat16, 132) == goal  # 128 row blocks: one wave, no split
    assert tiles_for(4096, 4096, torch.bfloat16, 132) == TileConfig(128, 128, 64, 8, 3, column_splits=4)
    assert tiles_for(100, 200, torch.bfloat16, 132) == TileConfig(128, 128, 64, 8, 3, column_splits=2)
    assert tiles_for(16384, 16384, torch.float32, 132) == TileConfig(64, 64, 32, num_warps=8, num_stages=3)
    assert choose_tiles(5, 5, torch.float32, torch.device("cpu")) == TileConfig(16, 16, 16)
    assert split_columns(4096, tiles_for(4096, 4096, torch.bfloat16, 132)) == (4, 1024)
    assert split_columns(50, _tiles(column_splits=3)) == (2, 32)  # 4 tiles: 2 + 2, never an empty slice
    assert split_columns(33, _tiles(column_splits=8)) == (3, 16)


def test_backward_chunk_fits_its_memory_budget():
    from hybrid_repro.kernels.infonce_triton import GRAD_CHUNK_BYTES, chunk_rows_for, tiles_for

    tiles = tiles_for(65536, 65536, torch.bfloat16, 132)
    assert chunk_rows_for(65536, 65536, 2, tiles) == 2048  # 2048 x 65536 x 2 bytes = GRAD_CHUNK_BYTES
    assert 2048 * 65536 * 2 == GRAD_CHUNK_BYTES
    assert chunk_rows_for(16384, 16384, 2, tiles) == 8192
    assert chunk_rows_for(100, 200, 2, tiles) == 100
    assert chunk_rows_for(40, 10**9, 2, tiles) == 40  # never fewer rows than one tile, never more than M
    assert chunk_rows_for(65536, 65536, 2, _tiles(chunk_rows=7)) == 7
