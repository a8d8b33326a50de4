"""Compile the InfoNCE kernels for a Hopper GPU (sm_90) on a machine without one, and report resources.

``python -m hybrid_repro.kernels.infonce_aot`` prints, for each kernel and each tile configuration the
heuristic :func:`~hybrid_repro.kernels.infonce_triton.choose_tiles` can pick (as BLOCK_M x BLOCK_N x
BLOCK_K the kernel is launched with), the registers per
thread, spilled bytes, shared memory, whether the inner ``d`` loop is software-pipelined (async
copies) and which matrix instructions were emitted (``wgmma`` on Hopper, else ``mma.sync`` or FMA).
It catches compile errors and register spills without a GPU; it measures no speed.

TRITON_INTERPRET must be unset (interpreted kernels cannot be compiled). Arguments are specialised
as the JIT does at run time for contiguous inputs: 16-byte aligned pointers, ``d`` and row strides
divisible by 16. Uses Triton's compiler internals (``ASTSource``, ``GPUTarget``, the bundled
``ptxas``) as of Triton 3.9.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.backends.nvidia.compiler import get_ptxas
from triton.compiler import ASTSource

from hybrid_repro.kernels import infonce_triton as kernels
from hybrid_repro.kernels.infonce_triton import TileConfig, dot_precision, kernel_blocks, tiles_for

HOPPER = GPUTarget("cuda", 90, 32)
KERNELS = ("_forward_kernel", "_backward_rows_kernel", "_backward_cols_kernel")
ELEMENT = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}
ALIGNED_INTS = ("D", "stride_r", "stride_c", "stride_dr", "stride_dc")


def heuristic_configs(multiprocessors: int = 132) -> list[tuple[torch.dtype, TileConfig]]:
    """Every (dtype, tiles) the GPU heuristic picks for B, N in 256 .. 65536 on an H100 (132 SMs)."""
    sizes = [2**k for k in range(8, 17)]
    configs = {(dtype, tiles_for(rows, cols, dtype, multiprocessors))
               for dtype in (torch.bfloat16, torch.float32) for rows in sizes for cols in sizes}
    return sorted(configs, key=lambda item: (ELEMENT[item[0]], -item[1].block_m, -item[1].block_n))


def _signature(fn, element: str) -> dict[str, str]:
    types = {}
    for name in fn.arg_names:
        if name in ("R", "C"):
            types[name] = f"*{element}"
        elif name in ("TARGET", "ROW_GA", "COL_GA", "ROW_GB", "COL_GB"):
            types[name] = "*i64"
        elif name in ("M", "N") or name in ALIGNED_INTS:
            types[name] = "i32"
        elif name.startswith(("HAS_", "BLOCK_", "DOT_")):
            types[name] = "constexpr"
        else:
            types[name] = "*fp32"
    return types


@dataclass
class CompileReport:
    kernel: str
    dtype: str
    tiles: TileConfig
    registers: int
    spilled_bytes: int
    shared_bytes: int
    async_copies: int
    wgmma: int
    mma_sync: int

    def line(self) -> str:
        t = self.tiles
        block_m, block_n = kernel_blocks(self.kernel, t)
        return (f"{self.kernel:22} {self.dtype:5} {block_m:>3}x{block_n:<3}x{t.block_k:<3} w{t.num_warps} "
                f"s{t.num_stages}  regs {self.registers:>3}  spill {self.spilled_bytes:>4} B  "
                f"shared {self.shared_bytes // 1024:>3} KiB  async {self.async_copies:>2}  "
                f"wgmma {self.wgmma}  mma.sync {self.mma_sync}")


def compile_for_hopper(kernel: str, dtype: torch.dtype, tiles: TileConfig) -> CompileReport:
    """Compile one kernel (both exclusion rules on) for sm_90 and read ptxas's resource report."""
    fn = getattr(kernels, kernel)
    if not isinstance(fn, triton.runtime.jit.JITFunction):
        raise RuntimeError("kernels were defined under TRITON_INTERPRET=1; unset it to compile them")
    types = _signature(fn, ELEMENT[dtype])
    attrs = {(i,): [["tt.divisibility", 16]] for i, name in enumerate(fn.arg_names)
             if types[name].startswith("*") or name in ALIGNED_INTS}
    block_m, block_n = kernel_blocks(kernel, tiles)
    constants = dict(HAS_A=True, HAS_B=True, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=tiles.block_k,
                     DOT_PRECISION=dot_precision(dtype))
    compiled = triton.compile(ASTSource(fn, types, constexprs=constants, attrs=attrs), target=HOPPER,
                              options=dict(num_warps=tiles.num_warps, num_stages=tiles.num_stages))
    ptx = compiled.asm["ptx"]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "kernel.ptx"
        source.write_text(ptx)
        report = subprocess.run([get_ptxas(90).path, "-v", "--gpu-name", "sm_90a", str(source), "-o",
                                 str(source.with_suffix(".cubin"))], capture_output=True, text=True, check=True)
    info = report.stdout + report.stderr
    spills = sum(int(n) for n in re.findall(r"(\d+) bytes spill (?:stores|loads)", info))
    return CompileReport(kernel, ELEMENT[dtype], tiles, int(re.search(r"Used (\d+) registers", info).group(1)),
                         spills, compiled.metadata.shared,
                         compiled.asm["ttgir"].count("async_copy_global_to_local"),
                         compiled.asm["ttgir"].count("warp_group_dot "), ptx.count("mma.sync"))


def main() -> None:
    for dtype, tiles in heuristic_configs():
        for kernel in KERNELS:
            print(compile_for_hopper(kernel, dtype, tiles).line(), flush=True)


if __name__ == "__main__":
    main()
