"""Learning-rate schedule: linear warm-up to the peak, then linear decay, never a step at zero."""

import pytest
import torch

from hybrid_repro.errors import HybridReproError
from hybrid_repro.training.schedule import WarmupLinearDecay, warmup_linear_decay


def test_factors_rise_then_fall():
    factors = [WarmupLinearDecay(warmup_steps=2, total_steps=6)(step) for step in range(6)]
    assert factors == [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]


def test_no_warmup_starts_at_the_peak():
    assert [WarmupLinearDecay(0, 4)(step) for step in range(4)] == [1.0, 0.75, 0.5, 0.25]


def test_scheduler_drives_the_optimizer_learning_rate():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = warmup_linear_decay(optimizer, warmup_ratio=0.25, total_steps=8)
    seen = []
    for _ in range(8):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([0.05, 0.1, 0.1, 1 / 60 * 5, 1 / 60 * 4, 1 / 60 * 3, 1 / 60 * 2, 1 / 60])
    assert min(seen) > 0


def test_warmup_never_swallows_the_whole_run():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    assert warmup_linear_decay(optimizer, warmup_ratio=0.9, total_steps=1).lr_lambdas[0].warmup_steps == 0


@pytest.mark.parametrize("warmup, total", [(3, 3), (-1, 5), (0, 0)])
def test_impossible_schedules_are_errors(warmup, total):
    with pytest.raises(HybridReproError, match="schedule"):
        WarmupLinearDecay(warmup, total)
