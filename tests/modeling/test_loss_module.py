"""InfoNCELoss: implementation choice from loss.impl and agreement with the reference."""

import pytest
import torch

from hybrid_repro.config import LossConfig
from hybrid_repro.errors import HybridReproError
from hybrid_repro.kernels.infonce_reference import info_nce_reference
from hybrid_repro.modeling import loss as loss_module
from hybrid_repro.modeling.loss import InfoNCELoss, resolve_impl

CPU = torch.device("cpu")


def test_torch_impl_matches_reference_with_trainer_layout():
    cfg = LossConfig(impl="torch", temperature=0.05, positives_as_negatives=False, symmetric=True)
    module = InfoNCELoss.from_config(cfg, CPU)
    gen = torch.Generator().manual_seed(0)
    batch = 4
    q = torch.nn.functional.normalize(torch.randn(batch, 8, generator=gen), dim=1)
    p = torch.nn.functional.normalize(torch.randn(2 * batch, 8, generator=gen), dim=1)
    labels = torch.arange(batch)
    ids = torch.tensor([0, 1, 1, 2])
    got = module(q, p, labels, query_ids=ids, passage_ids=torch.cat([ids, ids]))
    expected = info_nce_reference(q, p, labels, 20.0, symmetric=True, positives_as_negatives=False,
                                  query_ids=ids, passage_ids=torch.cat([ids, ids]))
    torch.testing.assert_close(got, expected)
    assert module.impl_name == "torch"


def test_auto_on_cpu_uses_torch_and_says_why():
    module = InfoNCELoss.from_config(LossConfig(impl="auto"), CPU)
    assert module.impl_name == "torch"
    line = module.describe()
    assert "PyTorch reference" in line and "not CUDA" in line and "\n" not in line


def test_triton_on_cpu_is_a_clear_error():
    with pytest.raises(HybridReproError, match="needs a CUDA device"):
        InfoNCELoss.from_config(LossConfig(impl="triton"), CPU)


def test_auto_on_cuda_picks_triton_when_it_imports(monkeypatch):
    monkeypatch.setattr(loss_module, "_triton_version", lambda: "9.9")
    assert resolve_impl("auto", torch.device("cuda")) == ("triton", "loss.impl = auto on CUDA with triton 9.9")
    monkeypatch.setattr(loss_module, "_triton_version", lambda: None)
    impl, reason = resolve_impl("auto", torch.device("cuda"))
    assert impl == "torch" and "cannot be imported" in reason
    with pytest.raises(HybridReproError, match="cannot be imported"):
        resolve_impl("triton", torch.device("cuda"))


def test_gradients_flow_to_both_inputs():
    module = InfoNCELoss.from_config(LossConfig(impl="torch"), CPU)
    q = torch.randn(3, 5, requires_grad=True)
    p = torch.randn(6, 5, requires_grad=True)
    module(q, p, torch.arange(3)).backward()
    assert q.grad.abs().sum() > 0 and p.grad.abs().sum() > 0
