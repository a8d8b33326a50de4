"""Compile the InfoNCE kernels for a Hopper GPU (sm_90) on a machine without one, and report resources.

``python -m hybrid_repro.kernels.infonce_aot`` builds, for B = N in :data:`GOAL_SIZES` (d = 768) and
each dtype, exactly the launches a forward+backward of one direction makes there on a 132-multiprocessor
part (H100 SXM, H200): the tiles, column splits and backward chunks the heuristic picks, and the
arguments the launchers pass, on meta tensors. Each distinct launch is specialised by Triton's own JIT
binder (divisibility by 16 of the pointers, sizes and strides, integers equal to 1 made constant),
compiled for sm_90 and assembled by the bundled ``ptxas``. The report gives registers per thread,
spilled bytes, shared memory, how deeply loops nest (1: the forward's sweep over column tiles and
``d`` chunks was flattened into one loop),
async copies (software pipelining) and the matrix instructions (``wgmma`` and its shape on Hopper,
``mma.sync``, or none for FMA). It catches compile errors and spills without a GPU; it measures no speed.

TRITON_INTERPRET must be unset (interpreted kernels cannot be compiled). Uses Triton's compiler and
JIT internals (``create_function_from_signature``, ``JITFunction._pack_args``, ``ASTSource``,
``GPUTarget``), as in Triton 3.6 and 3.9.
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
from triton.compiler import ASTSource, make_backend
from triton.runtime.jit import create_function_from_signature

from hybrid_repro.kernels.infonce_triton import (Direction, Launch, TileConfig, chunk_rows_for, forward_launch,
                                                 grad_logits_launch, split_columns, tiles_for)

HOPPER = GPUTarget("cuda", 90, 32)
GOAL_SIZES = (4096, 16384, 65536)
GOAL_DIM = 768
MULTIPROCESSORS = 132
ELEMENT = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}


def goal_launches(size: int, dtype: torch.dtype, masked: bool, dim: int = GOAL_DIM,
                  multiprocessors: int = MULTIPROCESSORS) -> tuple[TileConfig, list[Launch]]:
    """The heuristic's tiles and every launch of one B = N = ``size`` direction (forward, each G chunk).

    ``masked``: both exclusion rules on, as the trainer calls it; off is the benchmark's plain loss.
    """
    meta = torch.device("meta")
    rows = torch.empty(size, dim, dtype=dtype, device=meta)
    cols = torch.empty(size, dim, dtype=dtype, device=meta)
    ids = torch.empty(size, dtype=torch.int64, device=meta)
    groups = (ids, ids) if masked else None
    direction = Direction(rows, cols, ids, groups, groups)
    tiles = tiles_for(size, size, dtype, multiprocessors)
    scale = torch.empty(1, dtype=torch.float32, device=meta)
    parts = torch.empty(split_columns(size, tiles)[0], size, dtype=torch.float32, device=meta)
    launches = [forward_launch(direction, scale, tiles, parts, parts)]
    chunk = chunk_rows_for(size, size, rows.element_size(), tiles)
    grads = torch.empty(chunk, size, dtype=dtype, device=meta)
    dscale_parts = torch.empty(triton.cdiv(size, tiles.block_n), chunk, dtype=torch.float32, device=meta)
    lse = torch.empty(size, dtype=torch.float32, device=meta)
    for start in range(0, size, chunk):
        stop = min(start + chunk, size)
        launches.append(grad_logits_launch(direction, scale, lse, tiles, grads[: stop - start], dscale_parts,
                                           start, stop))
    return tiles, launches


@dataclass
class CompileReport:
    kernel: str
    dtype: str
    masked: bool
    tiles: str
    grid: str
    specialisation: str
    registers: int
    spilled_bytes: int
    shared_bytes: int
    loop_depth: int
    async_copies: int
    wgmma: int
    wgmma_shapes: str
    mma_sync: int

    def line(self) -> str:
        return (f"{self.kernel:20} {self.dtype:4} masks {'on ' if self.masked else 'off'} {self.tiles:22} "
                f"grid {self.grid:11} regs {self.registers:>3}  spill {self.spilled_bytes:>4} B  "
                f"shared {self.shared_bytes // 1024:>3} KiB  loop depth {self.loop_depth}  async {self.async_copies:>2}  "
                f"wgmma {self.wgmma} {self.wgmma_shapes or '-':14} mma.sync {self.mma_sync}")


def _specialise(launch: Launch) -> tuple[dict, dict, dict, object]:
    """(signature, constexprs, attrs, options) exactly as the JIT derives them for this launch."""
    backend = make_backend(HOPPER)
    fn = launch.kernel
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    bound, specialisation, options = binder(*launch.args, **launch.options)
    options, signature, constexprs, attrs = fn._pack_args(backend, launch.options, bound, specialisation, options)
    return signature, constexprs, attrs, options


def _describe_ints(launch: Launch, signature: dict, attrs: dict) -> str:
    """The integer arguments as specialised: name=value, with ':16' where divisibility by 16 was assumed."""
    names = list(signature)
    parts = []
    for index, value in enumerate(launch.args):
        if isinstance(value, int):
            tag = ":16" if attrs.get((index,)) else (":const" if signature[names[index]] == "constexpr" else "")
            parts.append(f"{names[index]}={value}{tag}")
    return " ".join(parts)


def _loop_depth(ttgir: str) -> int:
    """Deepest nesting of ``scf.for`` loops: 1 when no loop runs inside another (a flattened sweep)."""
    stack, deepest = [], 0
    for line in ttgir.splitlines():
        text = line.strip()
        if text.startswith("}"):
            stack.pop()
        if text.endswith("{"):
            stack.append("scf.for " in text)
            deepest = max(deepest, sum(stack))
    return deepest


def compile_for_hopper(launch: Launch, dtype: torch.dtype, masked: bool) -> CompileReport:
    """Compile one launch for sm_90 and read ptxas's resource report."""
    fn = launch.kernel
    if not isinstance(fn, triton.runtime.jit.JITFunction):
        raise RuntimeError("kernels were defined under TRITON_INTERPRET=1; unset it to compile them")
    signature, constexprs, attrs, options = _specialise(launch)
    compiled = triton.compile(ASTSource(fn, signature, constexprs, attrs), target=HOPPER, options=options.__dict__)
    ptx, ttgir = compiled.asm["ptx"], compiled.asm["ttgir"]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "kernel.ptx"
        source.write_text(ptx)
        report = subprocess.run([get_ptxas(90).path, "-v", "--gpu-name", "sm_90a", str(source), "-o",
                                 str(source.with_suffix(".cubin"))], capture_output=True, text=True, check=True)
    info = report.stdout + report.stderr
    flags = launch.options
    tiles = (f"{flags['BLOCK_M']}x{flags['BLOCK_N']}x{flags['BLOCK_K']} w{flags['num_warps']} "
             f"s{flags['num_stages']}")
    return CompileReport(
        kernel=fn.__name__.strip("_"), dtype=ELEMENT[dtype], masked=masked, tiles=tiles,
        grid="x".join(str(n) for n in launch.grid), specialisation=_describe_ints(launch, signature, attrs),
        registers=int(re.search(r"Used (\d+) registers", info).group(1)),
        spilled_bytes=sum(int(n) for n in re.findall(r"(\d+) bytes spill (?:stores|loads)", info)),
        shared_bytes=compiled.metadata.shared, loop_depth=_loop_depth(ttgir),
        async_copies=ttgir.count("async_copy_global_to_local"), wgmma=ttgir.count("warp_group_dot "),
        wgmma_shapes=",".join(sorted(set(re.findall(r"wgmma\.mma_async\.sync\.aligned\.(m\d+n\d+k\d+)", ptx)))),
        mma_sync=ptx.count("mma.sync"))


def goal_reports(dtypes=(torch.bfloat16, torch.float32), sizes=GOAL_SIZES,
                 mask_options=(True, False)) -> list[tuple[int, CompileReport]]:
    """(size, report) for every distinct specialised launch at the goal shapes; repeats compile once."""
    reports, seen = [], {}
    for dtype in dtypes:
        for masked in mask_options:
            for size in sizes:
                _, launches = goal_launches(size, dtype, masked)
                for launch in launches:
                    signature, constexprs, attrs, options = _specialise(launch)
                    key = (launch.kernel.__name__, repr(signature), repr(constexprs), repr(attrs),
                           options.num_warps, options.num_stages)
                    if key not in seen:
                        seen[key] = compile_for_hopper(launch, dtype, masked)
                    report = seen[key]
                    reports.append((size, CompileReport(**{**report.__dict__, "grid": "x".join(
                        str(n) for n in launch.grid), "specialisation": _describe_ints(launch, signature, attrs)})))
    return reports


def main() -> None:
    print(f"# B = N in {GOAL_SIZES}, d = {GOAL_DIM}, {MULTIPROCESSORS} multiprocessors; one line per distinct "
          "launch, 'x N' when it repeats (the G kernel runs once per backward chunk); ints: the first launch's")
    groups: dict[tuple[int, str], list[CompileReport]] = {}
    for size, report in goal_reports():
        groups.setdefault((size, report.line()), []).append(report)
    for (size, line), reports in groups.items():
        print(f"B=N={size:<6} {line}  x {len(reports)}", flush=True)
        print(f"{'':13}ints: {reports[0].specialisation}", flush=True)


if __name__ == "__main__":
    main()
