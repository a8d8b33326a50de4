"""The training loss module: InfoNCE (PAPER.md Eq. 1) with the implementation picked from ``loss.impl``.

Both implementations compute the function specified by
:func:`hybrid_repro.kernels.infonce_reference.info_nce_reference`: ``torch`` is that reference
(it materialises the ``B x N`` logits), ``triton`` the fused kernel of
:mod:`hybrid_repro.kernels.infonce_function` (it never does, and needs a CUDA device).
"""

from __future__ import annotations

import importlib

import torch
from torch import Tensor, nn

from hybrid_repro.config import LossConfig
from hybrid_repro.errors import HybridReproError
from hybrid_repro.kernels.infonce_reference import info_nce_reference


def _triton_version() -> str | None:
    """The importable triton's version, or None when triton cannot be imported here."""
    try:
        return importlib.import_module("triton").__version__
    except ImportError:
        return None


def resolve_impl(requested: str, device: torch.device) -> tuple[str, str]:
    """Map ``loss.impl`` (auto | triton | torch) and the training device to (implementation, reason)."""
    device = torch.device(device)
    if requested == "torch":
        return "torch", "loss.impl = torch"
    triton_version = _triton_version()
    if requested == "triton":
        if device.type != "cuda":
            raise HybridReproError(f"loss.impl = triton needs a CUDA device, but training runs on {device}; "
                                   "set loss.impl to auto or torch")
        if triton_version is None:
            raise HybridReproError("loss.impl = triton but triton cannot be imported; install the pinned "
                                   "requirements or set loss.impl to auto or torch")
        return "triton", f"loss.impl = triton (triton {triton_version})"
    if requested != "auto":
        raise HybridReproError(f"loss.impl must be auto, triton or torch, got {requested!r}")
    if device.type != "cuda":
        return "torch", f"loss.impl = auto and the device is {device.type}, not CUDA"
    if triton_version is None:
        return "torch", "loss.impl = auto on CUDA, but triton cannot be imported"
    return "triton", f"loss.impl = auto on CUDA with triton {triton_version}"


class InfoNCELoss(nn.Module):
    """InfoNCE with scale ``1 / temperature``; see ``info_nce_reference`` for the exact definition.

    ``forward(q, p, labels, query_ids=None, passage_ids=None)`` returns the 0-d float32 loss. The
    trainer passes ``p = [positives (B); negatives (B)]`` and ``labels = arange(B)``; ids, when
    given, mask passages of the same question as false negatives.
    """

    def __init__(self, *, impl: str, reason: str, temperature: float, positives_as_negatives: bool,
                 symmetric: bool, reduction: str) -> None:
        super().__init__()
        if impl not in ("torch", "triton"):
            raise HybridReproError(f"InfoNCELoss implementation must be torch or triton, got {impl!r}")
        if temperature <= 0:
            raise HybridReproError(f"loss.temperature must be > 0, got {temperature}")
        self.impl_name = impl
        self.reason = reason
        self.temperature = temperature
        self.positives_as_negatives = positives_as_negatives
        self.symmetric = symmetric
        self.reduction = reduction
        if impl == "triton":
            from hybrid_repro.kernels.infonce_function import info_nce_triton

            self._loss_fn = info_nce_triton
        else:
            self._loss_fn = info_nce_reference

    @classmethod
    def from_config(cls, loss_cfg: LossConfig, device: torch.device) -> "InfoNCELoss":
        impl, reason = resolve_impl(loss_cfg.impl, device)
        return cls(impl=impl, reason=reason, temperature=loss_cfg.temperature,
                   positives_as_negatives=loss_cfg.positives_as_negatives, symmetric=loss_cfg.symmetric,
                   reduction=loss_cfg.reduction)

    def describe(self) -> str:
        """One line for logs: which implementation runs and why."""
        kind = "fused Triton kernel" if self.impl_name == "triton" else "PyTorch reference"
        return (f"InfoNCE loss: {kind} ({self.reason}); temperature {self.temperature:g}, "
                f"symmetric={self.symmetric}, positives_as_negatives={self.positives_as_negatives}, "
                f"reduction={self.reduction}")

    def forward(self, q: Tensor, p: Tensor, labels: Tensor, query_ids: Tensor | None = None,
                passage_ids: Tensor | None = None) -> Tensor:
        return self._loss_fn(q, p, labels, 1.0 / self.temperature, reduction=self.reduction,
                             symmetric=self.symmetric, query_ids=query_ids, passage_ids=passage_ids,
                             positives_as_negatives=self.positives_as_negatives)
