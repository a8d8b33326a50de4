"""GPU only: the compiled kernels against float64 within the rounding bounds of kernel_checks.py,
bitwise determinism, a short training run, 64-bit offsets and the memory goal at B = N = 65536.

``benchmarks/gpu_check.sh`` runs this file on the lent GPU; it imports only pytest, torch and the
package's kernels, so it needs nothing the check does not carry.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from kernel_checks import assert_matches_reference, assert_same_training_curve, unit_rows

from hybrid_repro.kernels.infonce_reference import info_nce_reference

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
DEVICE = torch.device("cuda")


def _case(batch, n_passages, dim, dtype, seed, masked):
    gen = torch.Generator().manual_seed(seed)
    q, p = unit_rows(batch, dim, gen, dtype, DEVICE), unit_rows(n_passages, dim, gen, dtype, DEVICE)
    labels = torch.randint(0, n_passages, (batch,), generator=gen).to(DEVICE)  # repeated positives
    options = {}
    if masked:
        ids = torch.randint(0, max(1, batch // 2), (n_passages,), generator=gen).to(DEVICE)
        options = dict(query_ids=ids[labels], passage_ids=ids, positives_as_negatives=False)
    return q, p, labels, options


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("shape", [(1, 3, 7), (33, 67, 129), (257, 514, 384), (1000, 2000, 768)])
@pytest.mark.parametrize("symmetric", [False, True])
def test_gpu_matches_float64_within_rounding_bound(dtype, shape, symmetric):
    q, p, labels, options = _case(*shape, dtype, seed=sum(shape), masked=symmetric)
    assert_matches_reference(q, p, labels, 20.0, symmetric=symmetric, **options)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_gpu_goal_tiles_with_column_splits_and_several_chunks(dtype):
    """4096 x 8192 at d = 768: the forward splits its sweep (32 row blocks on 132 SMs), and forcing
    1000-row chunks makes the backward accumulate dP over five chunks, the last one ragged."""
    from dataclasses import replace

    from hybrid_repro.kernels.infonce_triton import choose_tiles

    q, p, labels, options = _case(4096, 8192, 768, dtype, seed=11, masked=True)
    tiles = replace(choose_tiles(4096, 8192, dtype, DEVICE), chunk_rows=1000)
    assert tiles.column_splits > 1
    assert_matches_reference(q, p, labels, 20.0, tiles=tiles, **options)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_gpu_bitwise_identical_across_runs(dtype):
    from hybrid_repro.kernels.infonce_function import info_nce_triton

    q, p, labels, options = _case(2048, 4096, 768, dtype, seed=7, masked=True)
    scale = torch.tensor(20.0, device=DEVICE)

    def run():
        q_, p_, s_ = (t.clone().requires_grad_() for t in (q, p, scale))
        loss = info_nce_triton(q_, p_, labels, s_, symmetric=True, **options)
        loss.backward()
        return loss.detach(), q_.grad, p_.grad, s_.grad

    for a, b in zip(run(), run()):
        assert torch.equal(a, b)


def test_gpu_training_curve_matches_reference():
    assert_same_training_curve(batch=64, device=DEVICE)


@pytest.mark.slow
def test_gpu_offsets_past_2_pow_31_elements():
    """p holds more than 2**31 elements (4 GiB in bf16); the positives sit in its last rows."""
    from hybrid_repro.kernels.infonce_function import info_nce_triton

    dim, batch = 1024, 16
    n_passages = 2**31 // dim + 64
    gen = torch.Generator(device=DEVICE).manual_seed(8)
    p = F.normalize(torch.randn(n_passages, dim, generator=gen, device=DEVICE, dtype=torch.bfloat16), dim=1)
    labels = torch.arange(n_passages - batch, n_passages, device=DEVICE)
    q = (p[labels].float() + 0.1 * torch.randn(batch, dim, generator=gen, device=DEVICE)).bfloat16()
    loss = info_nce_triton(q.requires_grad_(), p.requires_grad_(), labels, 20.0)
    loss.backward()
    expected = info_nce_reference(q.detach(), p.detach(), labels, 20.0)
    assert math.isclose(loss.item(), expected.item(), rel_tol=1e-3, abs_tol=1e-3)
    assert torch.isfinite(p.grad[-batch:].float()).all() and p.grad[-batch:].float().abs().sum() > 0


def test_gpu_memory_beyond_inputs_and_gradients_at_65536_is_under_1_gib():
    """The goal: B = N = 65536, d = 768, bf16, forward + backward within 1 GiB of extra memory
    (docs/kernel.md, "Memory", counts 842 MiB: two fp32 gradient accumulators, one G chunk and one
    product temporary)."""
    from hybrid_repro.kernels.infonce_function import info_nce_triton

    size, dim = 65536, 768
    gen = torch.Generator(device=DEVICE).manual_seed(12)
    q = F.normalize(torch.randn(size, dim, generator=gen, device=DEVICE), dim=1).bfloat16().requires_grad_()
    p = F.normalize(torch.randn(size, dim, generator=gen, device=DEVICE), dim=1).bfloat16().requires_grad_()
    labels = torch.arange(size, device=DEVICE)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    inputs = torch.cuda.memory_allocated()
    info_nce_triton(q, p, labels, 20.0, positives_as_negatives=True).backward()
    torch.cuda.synchronize()
    gradients = q.grad.numel() * q.grad.element_size() + p.grad.numel() * p.grad.element_size()
    extra = torch.cuda.max_memory_allocated() - inputs - gradients
    print(f"extra memory at B = N = {size}: {extra / 2**20:.1f} MiB")
    assert extra <= 2**30
