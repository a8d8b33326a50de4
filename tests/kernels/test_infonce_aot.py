"""The kernels compile for Hopper (sm_90) without a GPU, exactly as launched at the goal shapes.

For B = N = 4096, 16384 and 65536 (d = 768) the launches the heuristic makes are specialised by
Triton's own JIT binder and compiled for sm_90: no register spills, bf16 on 128-wide wgmma, the
forward's column sweep flattened into one software-pipelined loop. The compile runs in a fresh
process: this directory's conftest sets TRITON_INTERPRET=1, under which kernels cannot be compiled.
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
from hybrid_repro.kernels.infonce_aot import goal_reports
print(json.dumps([dict(size=size, **asdict(report)) for size, report in goal_reports(mask_options={masks})]))
"""


def _compile_reports(masks: tuple[bool, ...]) -> list[dict]:
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", COMPILE.format(masks=masks)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _assert_goal_properties(reports: list[dict]) -> None:
    for report in reports:
        assert report["spilled_bytes"] == 0, report
        assert report["loop_depth"] == 1, report  # forward: one flattened loop; G kernel: the d loop only
        assert report["async_copies"] > 0, report  # that loop's loads are software-pipelined
        if report["dtype"] == "bf16":
            assert report["tiles"].startswith("128x128x64"), report
            assert report["wgmma_shapes"] == "m64n128k16" and report["mma_sync"] == 0, report
    forward = {(r["size"], r["dtype"]): r["grid"] for r in reports if r["kernel"] == "forward_kernel"}
    # 132 multiprocessors: the column split fills them at 4096 (32 row blocks x 4 slices), none past that.
    assert forward[(4096, "bf16")] == "32x4" and forward[(16384, "bf16")] == "128x1"
    assert forward[(65536, "bf16")] == "512x1"


def test_goal_launches_compile_pipelined_without_spills():
    reports = _compile_reports((True,))
    assert {(r["size"], r["dtype"], r["kernel"]) for r in reports} == {
        (size, dtype, kernel) for size in (4096, 16384, 65536) for dtype in ("bf16", "fp32")
        for kernel in ("forward_kernel", "grad_logits_kernel")}
    _assert_goal_properties(reports)
    chunks = [r for r in reports if r["kernel"] == "grad_logits_kernel" and r["size"] == 65536 and r["dtype"] == "bf16"]
    assert len(chunks) == 32  # 2048-row chunks of G at 65536


def test_goal_launches_without_masks_compile_the_same_way():
    _assert_goal_properties(_compile_reports((False,)))
