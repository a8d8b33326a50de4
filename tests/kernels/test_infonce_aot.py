"""The kernels compile for Hopper (sm_90) without a GPU: software-pipelined, on wgmma for bf16, no spills.

The compile runs in a fresh process: this directory's conftest sets TRITON_INTERPRET=1, under which
kernels are interpreted and cannot be compiled.
"""

import json
import os
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.skipif(torch.cuda.is_available(),
                                reason="on a GPU the runtime tests compile the kernels for the real device")

COMPILE = """
import json, torch
from dataclasses import asdict
from hybrid_repro.kernels.infonce_aot import KERNELS, compile_for_hopper, heuristic_configs
from hybrid_repro.kernels.infonce_triton import tiles_for
configs = {configs}
print(json.dumps([asdict(compile_for_hopper(kernel, dtype, tiles)) for dtype, tiles in configs for kernel in KERNELS]))
"""


def _compile_reports(configs: str) -> list[dict]:
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-c", COMPILE.format(configs=configs)], env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_large_batch_tiles_compile_pipelined_without_spills():
    reports = _compile_reports("[(d, tiles_for(65536, 65536, d, 132)) for d in (torch.bfloat16, torch.float32)]")
    assert len(reports) == 6
    for report in reports:
        assert report["spilled_bytes"] == 0, report
        assert report["async_copies"] > 0, report  # the d loop's loads are double/triple buffered
        if report["dtype"] == "bf16":
            assert report["wgmma"] > 0 and report["mma_sync"] == 0, report


@pytest.mark.slow
def test_every_heuristic_tile_config_compiles():
    reports = _compile_reports("heuristic_configs()")
    assert len(reports) == 30
    assert max(report["spilled_bytes"] for report in reports) <= 64
