"""Learning-rate schedule: linear warm-up, then linear decay."""

from __future__ import annotations

from dataclasses import dataclass

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from hybrid_repro.errors import HybridReproError


@dataclass(frozen=True)
class WarmupLinearDecay:
    """Multiplier of the peak learning rate for the optimiser step with 0-based index ``step``.

    Steps ``0 .. warmup_steps-1`` rise linearly to 1 (``(step + 1) / warmup_steps``); the remaining
    steps fall linearly, from 1 at ``warmup_steps`` to ``1 / (total_steps - warmup_steps)`` at the
    last step, so no step is spent at a learning rate of zero.
    """

    warmup_steps: int
    total_steps: int

    def __post_init__(self) -> None:
        if self.total_steps < 1 or not 0 <= self.warmup_steps < self.total_steps:
            raise HybridReproError(f"learning-rate schedule needs 0 <= warmup ({self.warmup_steps}) "
                                   f"< total steps ({self.total_steps})")

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        return max(0.0, (self.total_steps - step) / (self.total_steps - self.warmup_steps))


def warmup_linear_decay(optimizer: Optimizer, warmup_ratio: float, total_steps: int) -> LambdaLR:
    """A scheduler warming up over ``round(warmup_ratio * total_steps)`` steps; call ``step()`` after each update."""
    warmup = min(round(warmup_ratio * total_steps), total_steps - 1)
    return LambdaLR(optimizer, WarmupLinearDecay(warmup, total_steps))
