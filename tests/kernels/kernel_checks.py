"""Shared checks of the fused InfoNCE against the float64 reference (interpreter and GPU tests).

Bounds. The kernel and the reference see the same (already rounded) inputs; the reference runs in
float64. With ``L = scale * max|q_i| * max|p_j|`` (the largest possible |logit|), ``W`` = 1 for the mean
and B for the sum, ``w`` the weight of a row loss (1/B or 1, halved when symmetric) and ``u`` the unit
roundoff of the input dtype (2**-8 bf16, 2**-11 fp16, 2**-24 fp32):

* loss: ``|err| <= 1e-6 * (L * W + |ref|)``. fp32 arithmetic on exact products: each logit carries an
  fp32 dot-product error ~ sqrt(d) * 6e-8 * L (observed <= 7e-8 * L per row); rows summed in fp32.
* gradients, per element: ``|err| <= u * scale * w * (|G| @ |X|) + u * |ref| + (1e-6 + 2e-7 L) * unit``.
  ``G`` = softmax - onehot per direction (float64, from the reference's masks) and ``X`` the other
  side's vectors, so the first term is the worst case of rounding each element of ``scale * G`` to
  the input dtype (round to nearest: relative error <= u) before the exact-product, fp32-accumulated
  cuBLAS matmul; the second is rounding the gradient to the input dtype; the last is the fp32 work
  (logit error moving the softmax: observed 2e-6 unit at L = 100), with ``unit = scale * w * max`` norm
  of the other side. fp16 also gets ``2**-25 * scale * w * N * max|x|`` for G elements that fall into
  its subnormal range. No factor of slack: a design that rounds anything else (an accumulator, a
  partial product) breaks the bound.
* d(scale): ``|err| <= 1e-5 * (1 + |ref|) + 1e-7 * W * L * max|q| * max|p|``: the sum of dlogits times
  raw dot products, whose terms cancel (dlogits sum to 0 per row); the logit error times the largest
  raw dot product remains (observed 3e-8 * W * L * max raw at L = 5000).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hybrid_repro.kernels.infonce_reference import _forward_exclusions, _reverse_exclusions, info_nce_reference

UNIT_ROUNDOFF = {torch.float32: 2.0**-24, torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}
SUBNORMAL_HALF_STEP = {torch.float32: 0.0, torch.float16: 2.0**-25, torch.bfloat16: 0.0}


def unit_rows(n, dim, gen, dtype, device):
    return F.normalize(torch.randn(n, dim, generator=gen, dtype=torch.float64), dim=1).to(device, dtype)


def run_loss(fn, q, p, scale, **kwargs):
    """Loss and gradients w.r.t. q, p and a tensor scale, from fresh leaves."""
    q = q.detach().clone().requires_grad_(True)
    p = p.detach().clone().requires_grad_(True)
    scale = scale.detach().clone().requires_grad_(True)
    loss = fn(q, p, scale=scale, **kwargs)
    loss.backward()
    return loss.detach(), q.grad, p.grad, scale.grad


def _softmax_minus_onehot(logits, targets, excluded):
    if excluded is not None:
        logits = logits.masked_fill(excluded, float("-inf"))
    grad = torch.softmax(logits, dim=1)
    grad[torch.arange(logits.shape[0]), targets] -= 1.0
    return grad


def rounding_terms(q64, p64, labels, scale, symmetric=False, query_ids=None, passage_ids=None,
                   positives_as_negatives=False, **_):
    """(|G| @ |X| for dQ, the same for dP), float64: the first term of the gradient bound, without scale * w."""
    labels = labels.long()
    g1 = _softmax_minus_onehot(scale * q64 @ p64.T, labels,
                               _forward_exclusions(labels, p64.shape[0], query_ids, passage_ids,
                                                   positives_as_negatives)).abs()
    dq, dp = g1 @ p64.abs(), g1.T @ q64.abs()
    if symmetric:
        rows = torch.arange(q64.shape[0], device=q64.device)
        g2 = _softmax_minus_onehot(scale * p64[labels] @ q64.T, rows,
                                   _reverse_exclusions(labels, query_ids, positives_as_negatives)).abs()
        dq = dq + g2.T @ p64[labels].abs()
        dp = dp.index_add(0, labels, g2 @ q64.abs())
    return dq, dp


def assert_matches_reference(q, p, labels, scale, tiles=None, **options):
    """Kernel vs reference evaluated in float64 on the same inputs, within the bounds above."""
    from hybrid_repro.kernels.infonce_function import info_nce_triton

    device = q.device
    scale_t = torch.tensor(float(scale), device=device)
    got = run_loss(lambda q, p, scale: info_nce_triton(q, p, labels, scale, tiles=tiles, **options), q, p, scale_t)
    ref = run_loss(lambda q, p, scale: info_nce_reference(q, p, labels, scale, **options),
                   q.double(), p.double(), scale_t.double())
    for value in got:
        assert torch.isfinite(value).all()
    q_norm, p_norm = q.double().norm(dim=1).max().item(), p.double().norm(dim=1).max().item()
    max_logit = float(scale) * q_norm * p_norm
    mean = options.get("reduction", "mean") == "mean"
    symmetric = options.get("symmetric", False)
    row_weight = (1.0 / q.shape[0] if mean else 1.0) * (0.5 if symmetric else 1.0)
    weight_sum = 1.0 if mean else float(q.shape[0])
    loss_err = abs(got[0].item() - ref[0].item())
    assert loss_err <= 1e-6 * (max_logit * weight_sum + abs(ref[0].item())), (got[0], ref[0])

    u, tiny = UNIT_ROUNDOFF[q.dtype], SUBNORMAL_HALF_STEP[q.dtype]
    terms = rounding_terms(q.double(), p.double(), labels, float(scale), **options)
    for name, g, r, term, other_norm in (("dq", got[1], ref[1], terms[0], p_norm),
                                         ("dp", got[2], ref[2], terms[1], q_norm)):
        assert g.dtype == q.dtype
        unit = float(scale) * row_weight * other_norm
        bound = (u * float(scale) * row_weight * term + u * r.abs()
                 + (1e-6 + 2e-7 * max_logit + tiny * p.shape[0] * (2 if symmetric else 1)) * unit)
        excess = (g.double() - r).abs() - bound
        worst = int(excess.argmax())
        assert excess.max().item() <= 0, (f"{name}: error {(g.double() - r).abs().flatten()[worst].item():.3g} "
                                          f"over its bound {bound.flatten()[worst].item():.3g} "
                                          f"(unit {unit:.3g}) at flat index {worst}")
    max_raw = q_norm * p_norm
    scale_tol = 1e-5 * (1 + abs(ref[3].item())) + 1e-7 * weight_sum * max_logit * max_raw
    assert abs(got[3].item() - ref[3].item()) <= scale_tol, (got[3], ref[3])


def assert_same_training_curve(batch, device):
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
        encoder = torch.nn.Linear(64, 32).to(device)
        log_scale = torch.nn.Parameter(torch.tensor(math.log(20.0), device=device))
        optimizer = torch.optim.SGD([*encoder.parameters(), log_scale], lr=1.0)
        data = torch.Generator().manual_seed(1)
        queries = torch.randn(batch, 64, generator=data).to(device)
        passages = torch.cat([queries + 2.0 * torch.randn(batch, 64, generator=data).to(device),
                              torch.randn(batch, 64, generator=data).to(device)])
        curve = []
        for _ in range(20):
            q, p = F.normalize(encoder(queries), dim=1), F.normalize(encoder(passages), dim=1)
            loss = loss_fn(q, p, torch.arange(batch, device=device), log_scale.exp(), symmetric=True)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            curve.append(loss.item())
        return curve

    kernel_curve, reference_curve = train(info_nce_triton), train(info_nce_reference)
    assert kernel_curve[0] > 1.0 and kernel_curve[-1] < 0.1 * kernel_curve[0]
    assert max(abs(a - b) for a, b in zip(kernel_curve, reference_curve)) <= 1e-3
