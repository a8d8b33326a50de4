"""The fused Triton InfoNCE against the float64 reference: loss, dQ, dP and d(scale).

Without CUDA the kernels run through the Triton interpreter (conftest.py sets TRITON_INTERPRET=1),
so these tests use small shapes and 16-wide tiles, which still exercise every multi-tile path. The
interpreter computes bf16 dots wrongly (numpy has no bf16), so bf16 joins only on a GPU; fp16 is
exact there (products accumulate in fp32 as on the GPU).

Tolerances. L = scale * max|q_i| * max|p_j| bounds every |logit| (L = scale for unit vectors);
W = 1 for the mean, B for the sum; G = scale * (1/B for mean, 1 for sum) * max|p_j| (for dQ) or
max|q_i| (for dP) is the largest size a gradient element can have.
  * loss: |err| <= 1e-6 * (L * W + |ref|). The loss is fp32 arithmetic on the same rounded inputs
    as the float64 reference: each logit carries an fp32 dot-product error ~ sqrt(d) * 6e-8 * L
    (observed <= 7e-8 * L per row), and the rows are summed in fp32.
  * gradients: max |err| <= (TOL[dtype] + 2e-7 * L) * G. The L term is that same logit error moving
    the softmax probabilities (observed 2e-6 G at L = 100). TOL covers rounding to the input dtype:
    ``scale * dlogits`` is rounded for the tensor-core matmul and the gradient for the output, each
    one unit roundoff (fp16 4.9e-4, observed 1e-3 G; bf16 3.9e-3); fp32 1e-6 for fp32 sums.
  * d(scale): |err| <= 1e-5 * (1 + |ref|) + 1e-7 * W * L * max|q_i| * max|p_j|. It is the sum of
    dlogits * raw dot products, whose terms cancel (dlogits sum to 0 per row): the logit error
    times the largest raw dot product remains (observed 3e-8 * W * L * max raw at L = 5000).
"""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from hybrid_repro.config import LossConfig
from hybrid_repro.errors import HybridReproError
from hybrid_repro.kernels.infonce_reference import info_nce_reference
from hybrid_repro.modeling.loss import InfoNCELoss

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
GRAD_TOL = {torch.float32: 1e-6, torch.float16: 5e-3, torch.bfloat16: 4e-2}
DTYPES = [torch.float32, torch.float16] + ([torch.bfloat16] if DEVICE.type == "cuda" else [])

pytestmark = pytest.mark.usefixtures("interpreted_kernels")


def _tiles(block_m=16, block_n=16, block_k=16):
    from hybrid_repro.kernels.infonce_triton import TileConfig

    return TileConfig(block_m, block_n, block_k)


def _unit_rows(n, dim, gen, dtype):
    return F.normalize(torch.randn(n, dim, generator=gen, dtype=torch.float64), dim=1).to(DEVICE, dtype)


def _run(fn, q, p, scale, **kwargs):
    """Loss and gradients w.r.t. q, p and a tensor scale, from fresh leaves."""
    q = q.detach().clone().requires_grad_(True)
    p = p.detach().clone().requires_grad_(True)
    scale = scale.detach().clone().requires_grad_(True)
    loss = fn(q, p, scale=scale, **kwargs)
    loss.backward()
    return loss.detach(), q.grad, p.grad, scale.grad


def assert_matches_reference(q, p, labels, scale, tiles=None, **options):
    """Kernel vs reference evaluated in float64 on the same (already rounded) inputs."""
    from hybrid_repro.kernels.infonce_function import info_nce_triton

    scale_t = torch.tensor(float(scale), device=DEVICE)
    got = _run(lambda q, p, scale: info_nce_triton(q, p, labels, scale, tiles=tiles, **options), q, p, scale_t)
    ref = _run(lambda q, p, scale: info_nce_reference(q, p, labels, scale, **options),
               q.double(), p.double(), scale_t.double())
    for value in got:
        assert torch.isfinite(value).all()
    q_norm, p_norm = q.double().norm(dim=1).max().item(), p.double().norm(dim=1).max().item()
    max_logit = float(scale) * q_norm * p_norm
    mean = options.get("reduction", "mean") == "mean"
    row_weight, weight_sum = (1.0 / q.shape[0], 1.0) if mean else (1.0, float(q.shape[0]))
    loss_err = abs(got[0].item() - ref[0].item())
    assert loss_err <= 1e-6 * (max_logit * weight_sum + abs(ref[0].item())), (got[0], ref[0])
    for name, g, r, other_norm in (("dq", got[1], ref[1], p_norm), ("dp", got[2], ref[2], q_norm)):
        assert g.dtype == q.dtype
        grad_unit = float(scale) * row_weight * other_norm
        err = (g.double() - r).abs().max().item() / grad_unit
        tol = GRAD_TOL[q.dtype] + 2e-7 * max_logit
        assert err <= tol, f"{name}: max error {err:.3g} G > {tol:.3g} G"
    max_raw = q_norm * p_norm
    scale_tol = 1e-5 * (1 + abs(ref[3].item())) + 1e-7 * weight_sum * max_logit * max_raw
    assert abs(got[3].item() - ref[3].item()) <= scale_tol, (got[3], ref[3])


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
                reduction=draw(st.sampled_from(["mean", "sum"])), tiles=_tiles(), **ids)


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


# ---------------------------------------------------------------------------------------------
# GPU only: precision against PyTorch in the same dtype, determinism, a short training run, and
# 64-bit offsets.

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _torch_same_dtype_loss(q, p, labels, scale, symmetric):
    """InfoNCE as commonly written under mixed precision: matmul in the input dtype, softmax in fp32."""
    loss = F.cross_entropy((scale * (q @ p.T)).float(), labels)
    if symmetric:
        reverse = F.cross_entropy((scale * (p[labels] @ q.T)).float(), torch.arange(q.shape[0], device=q.device))
        loss = 0.5 * (loss + reverse)
    return loss


def _relative_error(value, reference):
    return ((value.double() - reference).norm() / reference.norm()).item()


@pytest.mark.gpu
@requires_cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("shape", [(1, 3, 7), (33, 67, 129), (257, 514, 384), (1000, 2000, 768)])
@pytest.mark.parametrize("symmetric", [False, True])
def test_gpu_error_at_most_twice_torch_same_dtype(dtype, shape, symmetric):
    """||kernel - float64|| / ||float64|| <= 2 x the same for PyTorch in ``dtype`` + one unit roundoff."""
    from hybrid_repro.kernels.infonce_function import info_nce_triton

    batch, n_passages, dim = shape
    gen = torch.Generator().manual_seed(sum(shape))
    q, p = _unit_rows(batch, dim, gen, dtype), _unit_rows(n_passages, dim, gen, dtype)
    labels = torch.randint(0, n_passages, (batch,), generator=gen).to(DEVICE)
    scale = torch.tensor(20.0, device=DEVICE)
    ref = _run(lambda q, p, scale: info_nce_reference(q, p, labels, scale, symmetric=symmetric),
               q.double(), p.double(), scale.double())
    kernel = _run(lambda q, p, scale: info_nce_triton(q, p, labels, scale, symmetric=symmetric), q, p, scale)
    eager = _run(lambda q, p, scale: _torch_same_dtype_loss(q, p, labels, scale, symmetric), q, p, scale)
    atol = torch.finfo(dtype).eps
    for name, index in (("loss", 0), ("dq", 1), ("dp", 2)):
        kernel_err = _relative_error(kernel[index], ref[index])
        eager_err = _relative_error(eager[index], ref[index])
        assert kernel_err <= 2 * eager_err + atol, f"{name}: kernel {kernel_err:.3g} vs torch {eager_err:.3g}"


@pytest.mark.gpu
@requires_cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_gpu_bitwise_identical_across_runs(dtype):
    from hybrid_repro.kernels.infonce_function import info_nce_triton

    gen = torch.Generator().manual_seed(7)
    batch, dim = 2048, 768
    q, p = _unit_rows(batch, dim, gen, dtype), _unit_rows(2 * batch, dim, gen, dtype)
    labels = torch.randint(0, batch, (batch,), generator=gen).to(DEVICE)  # repeated positives
    ids = torch.randint(0, batch // 2, (batch,), generator=gen).to(DEVICE)
    options = dict(symmetric=True, positives_as_negatives=False, query_ids=ids, passage_ids=torch.cat([ids, ids]))
    scale = torch.tensor(20.0, device=DEVICE)
    first = _run(lambda q, p, scale: info_nce_triton(q, p, labels, scale, **options), q, p, scale)
    second = _run(lambda q, p, scale: info_nce_triton(q, p, labels, scale, **options), q, p, scale)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def _assert_same_training_curve(batch):
    """20 SGD steps of a linear encoder and a learnable scale: both implementations trace one loss curve.

    One fixed batch whose positives are their queries plus noise twice their size, so the loss
    starts high (about 2) and the encoder can drive it down. The scale is ``exp(log_scale)``: its
    gradient reaches the kernel's d(scale) and it cannot change sign. Plain SGD, because Adam's
    per-parameter normalisation would hide a gradient off by a constant factor. 1e-3 leaves room
    for the GPU's summation order; through the interpreter the curves agree to 1e-6.
    """
    from hybrid_repro.kernels.infonce_function import info_nce_triton

    def train(loss_fn):
        torch.manual_seed(0)
        encoder = torch.nn.Linear(64, 32).to(DEVICE)
        log_scale = torch.nn.Parameter(torch.tensor(math.log(20.0), device=DEVICE))
        optimizer = torch.optim.SGD([*encoder.parameters(), log_scale], lr=1.0)
        data = torch.Generator().manual_seed(1)
        queries = torch.randn(batch, 64, generator=data).to(DEVICE)
        passages = torch.cat([queries + 2.0 * torch.randn(batch, 64, generator=data).to(DEVICE),
                              torch.randn(batch, 64, generator=data).to(DEVICE)])
        curve = []
        for _ in range(20):
            q, p = F.normalize(encoder(queries), dim=1), F.normalize(encoder(passages), dim=1)
            loss = loss_fn(q, p, torch.arange(batch, device=DEVICE), log_scale.exp(), symmetric=True)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            curve.append(loss.item())
        return curve

    kernel_curve, reference_curve = train(info_nce_triton), train(info_nce_reference)
    assert kernel_curve[0] > 1.0 and kernel_curve[-1] < 0.1 * kernel_curve[0]
    assert max(abs(a - b) for a, b in zip(kernel_curve, reference_curve)) <= 1e-3


@pytest.mark.interpreter
def test_training_curve_matches_reference():
    _assert_same_training_curve(batch=16)


@pytest.mark.gpu
@requires_cuda
def test_gpu_training_curve_matches_reference():
    _assert_same_training_curve(batch=64)


@pytest.mark.gpu
@pytest.mark.slow
@requires_cuda
def test_gpu_offsets_past_2_pow_31_elements():
    """p holds more than 2**31 elements (4 GiB in bf16); the positives sit in its last rows."""
    from hybrid_repro.kernels.infonce_function import info_nce_triton

    dim, batch = 1024, 16
    n_passages = 2**31 // dim + 64
    gen = torch.Generator(device=DEVICE).manual_seed(8)
    p = torch.randn(n_passages, dim, generator=gen, device=DEVICE, dtype=torch.bfloat16)
    p = F.normalize(p, dim=1)
    labels = torch.arange(n_passages - batch, n_passages, device=DEVICE)
    q = (p[labels].float() + 0.1 * torch.randn(batch, dim, generator=gen, device=DEVICE)).bfloat16()
    loss = info_nce_triton(q.requires_grad_(), p.requires_grad_(), labels, 20.0)
    loss.backward()
    expected = info_nce_reference(q.detach(), p.detach(), labels, 20.0)
    assert math.isclose(loss.item(), expected.item(), rel_tol=1e-3, abs_tol=1e-3)
    assert torch.isfinite(p.grad[-batch:].float()).all() and p.grad[-batch:].float().abs().sum() > 0


def test_tile_heuristic_shrinks_tiles_to_fill_the_gpu():
    from hybrid_repro.kernels.infonce_triton import TileConfig, choose_tiles, tiles_for

    assert tiles_for(65536, 65536, torch.bfloat16, 132) == TileConfig(128, 64, 64, num_warps=8, num_stages=3)
    assert tiles_for(1024, 2048, torch.bfloat16, 132) == TileConfig(32, 32, 64, num_warps=4, num_stages=3)
    assert tiles_for(16384, 16384, torch.float32, 132) == TileConfig(64, 64, 32, num_warps=8, num_stages=2)
    assert choose_tiles(5, 5, torch.float32, torch.device("cpu")) == TileConfig(16, 16, 16)
