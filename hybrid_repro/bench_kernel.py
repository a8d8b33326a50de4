"""``hybrid-repro bench-kernel``: speed and memory of InfoNCE implementations, written to one folder.

Every cell is one (dtype, mode, B = N, d, provider): the unmasked loss over ``B`` unit-norm queries
and ``N = B`` unit-norm passages, ``labels = arange(B)``, scale 20, mean reduction, one-directional
unless ``symmetric``. Providers:

* ``triton``: the fused kernel (:func:`hybrid_repro.kernels.infonce_function.info_nce_triton`), in the
  cell's dtype.
* ``torch-bf16``: the loss as mixed-precision training code writes it: the logit matmul in bf16 (no
  upcast), softmax and cross-entropy in fp32, ``B x N`` logits materialised. bf16 cells only.
* ``torch-compile-bf16``: ``torch.compile`` of the same.
* ``torch-fp32``, ``torch-compile-fp32``: the reference (inputs upcast to fp32, fp32 GEMMs), eager and
  compiled. In a 16-bit cell these run slower matmuls than the cell's dtype offers.
* ``torch-chunked-fp32``: the reference's formula over row chunks, each chunk's logits recomputed in
  the backward pass (activation checkpointing), upcast like ``torch-fp32``: the usual memory-saving
  PyTorch baseline.
* ``inf-cl`` / ``memeff``: third-party fused losses, when importable on CUDA (their wheels are carried
  to the GPU by ``benchmarks/gpu_check.sh``). ``inf-cl`` is one-directional, needs ``d`` divisible by
  128 and computes in fp32 whatever the input; ``memeff``'s CLIP loss is symmetric only, so it runs in
  ``--symmetric`` cells.

On CUDA each cell reports the median time and its 20-80 % spread (``triton.testing.do_bench``:
CUDA events, warm-up, L2 flushed between repetitions), the peak memory allocated beyond the
inputs, the effective TFLOP/s at 2*B*N*d (forward) or 8*B*N*d (forward+backward) FLOPs per direction
(twice that when symmetric), and that rate as a share of a matmul in the cell's own dtype timed in the
same run (fp32 without TF32). Out-of-memory is recorded as "OOM". Each cell's row is printed as it
finishes, so a run stopped midway has still reported the cells it timed.
Without CUDA the PyTorch providers are timed on the CPU with a wall clock at small sizes, memory
is not measured, and the Triton kernel is only checked for correctness through the interpreter.

Outputs in ``out_dir``: ``results.json`` (environment, configuration, every cell), ``results.txt``
(the table printed to the terminal) and ``kernel_bench.png``.
"""

from __future__ import annotations

import functools
import gc
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint
from tqdm import tqdm

from hybrid_repro.envinfo import environment_summary
from hybrid_repro.errors import HybridReproError
from hybrid_repro.io import atomic_output_dir, write_json
from hybrid_repro.kernels.infonce_reference import info_nce_reference

PROVIDERS = ("triton", "torch-bf16", "torch-compile-bf16", "torch-fp32", "torch-compile-fp32", "torch-chunked-fp32",
             "inf-cl", "memeff")
MODES = ("fwd", "fwd+bwd")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
SCALE = 20.0
FLOPS_PER_BND = {"fwd": 2, "fwd+bwd": 8}
CHUNK_LOGIT_BYTES = 256 << 20


@dataclass(frozen=True)
class BenchConfig:
    """What to sweep. ``sizes`` are B = N; times are in milliseconds of warm-up / repetitions per cell."""

    sizes: tuple[int, ...]
    dims: tuple[int, ...]
    dtypes: tuple[str, ...]
    modes: tuple[str, ...] = MODES
    providers: tuple[str, ...] = PROVIDERS
    symmetric: bool = False
    warmup_ms: int = 25
    rep_ms: int = 100

    def __post_init__(self) -> None:
        for name, values, allowed in (("dtype", self.dtypes, DTYPES), ("mode", self.modes, MODES),
                                      ("provider", self.providers, PROVIDERS)):
            unknown = [value for value in values if value not in allowed]
            if unknown or not values:
                raise HybridReproError(f"bench-kernel: unknown or missing {name} {unknown}; "
                                       f"choose from {', '.join(allowed)}")
        if not self.sizes or not self.dims or min(self.sizes) < 1 or min(self.dims) < 1:
            raise HybridReproError("bench-kernel: sizes and dims must be positive integers")
        if self.warmup_ms < 1 or self.rep_ms < 1:
            raise HybridReproError("bench-kernel: warmup_ms and rep_ms must be >= 1")


def default_config(on_gpu: bool) -> BenchConfig:
    """The full sweep on a GPU; a small CPU sweep that finishes in minutes otherwise."""
    if on_gpu:
        return BenchConfig(sizes=(1024, 4096, 16384, 65536), dims=(384, 768, 1024), dtypes=("bf16", "fp32"))
    return BenchConfig(sizes=(256, 1024), dims=(64,), dtypes=("fp32", "bf16"))


def config_from_options(on_gpu: bool, *, sizes: str | None = None, dims: str | None = None,
                        dtypes: str | None = None, modes: str | None = None, providers: str | None = None,
                        symmetric: bool = False, warmup_ms: int = 25, rep_ms: int = 100) -> BenchConfig:
    """The default sweep for this device, with any comma-separated option replacing its part."""

    def ints(text: str, name: str) -> tuple[int, ...]:
        try:
            return tuple(int(item) for item in text.split(","))
        except ValueError as exc:
            raise HybridReproError(f"bench-kernel: --{name} takes comma-separated integers, got {text!r}") from exc

    def words(text: str) -> tuple[str, ...]:
        return tuple(item.strip() for item in text.split(",") if item.strip())

    overrides = dict(symmetric=symmetric, warmup_ms=warmup_ms, rep_ms=rep_ms)
    if sizes:
        overrides["sizes"] = ints(sizes, "sizes")
    if dims:
        overrides["dims"] = ints(dims, "dims")
    for name, text in (("dtypes", dtypes), ("modes", modes), ("providers", providers)):
        if text:
            overrides[name] = words(text)
    return replace(default_config(on_gpu), **overrides)


def chunked_info_nce(q: Tensor, p: Tensor, labels: Tensor, scale: float, *, symmetric: bool = False) -> Tensor:
    """Unmasked mean InfoNCE over row chunks whose logits are recomputed in the backward pass.

    Peak extra memory is one chunk of ``rows x N`` fp32 logits (about 256 MiB) instead of ``B x N``.
    """
    batch = q.shape[0]

    def summed_loss(rows: Tensor, cols: Tensor, targets: Tensor) -> Tensor:
        chunk = max(1, CHUNK_LOGIT_BYTES // (4 * cols.shape[0]))
        total = torch.zeros((), dtype=torch.float32, device=rows.device)
        for start in range(0, rows.shape[0], chunk):
            total = total + checkpoint(_chunk_cross_entropy_sum, rows[start:start + chunk], cols,
                                       targets[start:start + chunk], scale, use_reentrant=False)
        return total

    loss = summed_loss(q, p, labels)
    if symmetric:
        loss = 0.5 * (loss + summed_loss(p[labels], q, torch.arange(batch, device=q.device)))
    return loss / batch


def _chunk_cross_entropy_sum(rows: Tensor, cols: Tensor, targets: Tensor, scale: float) -> Tensor:
    return F.cross_entropy(scale * (rows.float() @ cols.float().T), targets, reduction="sum")


def same_dtype_info_nce(q: Tensor, p: Tensor, labels: Tensor, scale: float, *, symmetric: bool = False) -> Tensor:
    """Unmasked mean InfoNCE as mixed-precision code writes it: matmul in the inputs' dtype, softmax in fp32."""
    loss = F.cross_entropy(scale * (q @ p.T).float(), labels)
    if symmetric:
        reverse = F.cross_entropy(scale * (p[labels] @ q.T).float(), torch.arange(q.shape[0], device=q.device))
        loss = 0.5 * (loss + reverse)
    return loss


@dataclass
class Provider:
    """A loss callable ``(q, p, labels) -> loss``, or the reason it cannot run here."""

    name: str
    loss: Callable[[Tensor, Tensor, Tensor], Tensor] | None
    unavailable: str | None = None
    needs_dim_multiple: int = 1
    only_dtype: str | None = None


def _third_party(module: str, on_gpu: bool) -> tuple[object | None, str | None]:
    if not on_gpu:
        return None, "needs CUDA"
    try:
        return importlib.import_module(module), None
    except ImportError as exc:
        return None, f"not importable ({exc.__class__.__name__})"


def build_providers(names: tuple[str, ...], device: torch.device, symmetric: bool) -> list[Provider]:
    """Instantiate the requested providers for this device and loss direction.

    Every provider computes the unmasked loss (plain cross-entropy over all N columns), the one the
    external baselines implement, so all of them do the same work.
    """
    on_gpu = device.type == "cuda"
    providers = []
    for name in names:
        if name == "triton":
            if on_gpu:
                from hybrid_repro.kernels.infonce_function import info_nce_triton

                providers.append(Provider(name, functools.partial(info_nce_triton, scale=SCALE, symmetric=symmetric,
                                                                  positives_as_negatives=True)))
            else:
                providers.append(Provider(name, None, "no CUDA: checked through the interpreter only"))
        elif name in ("torch-bf16", "torch-compile-bf16"):
            loss = same_dtype_info_nce if name == "torch-bf16" else torch.compile(same_dtype_info_nce)
            providers.append(Provider(name, functools.partial(loss, scale=SCALE, symmetric=symmetric),
                                      only_dtype="bf16"))
        elif name in ("torch-fp32", "torch-compile-fp32"):
            loss = info_nce_reference if name == "torch-fp32" else torch.compile(info_nce_reference)
            providers.append(Provider(name, functools.partial(loss, scale=SCALE, symmetric=symmetric,
                                                              positives_as_negatives=True)))
        elif name == "torch-chunked-fp32":
            providers.append(Provider(name, functools.partial(chunked_info_nce, scale=SCALE, symmetric=symmetric)))
        elif name == "inf-cl":
            module, reason = _third_party("inf_cl", on_gpu)
            reason = reason or ("one-directional only" if symmetric else None)
            providers.append(Provider(name, None if reason else _inf_cl_loss(module), reason, needs_dim_multiple=128))
        elif name == "memeff":
            module, reason = _third_party("memeff", on_gpu)
            reason = reason or (None if symmetric else "symmetric (CLIP) loss only: run with --symmetric")
            providers.append(Provider(name, None if reason else _memeff_loss(module), reason))
    return providers


def _inf_cl_loss(module) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    def loss(q: Tensor, p: Tensor, labels: Tensor) -> Tensor:
        head_dim = 256 if q.shape[1] % 256 == 0 else 128
        return module.cal_inf_loss(q, p, labels=labels, scale=SCALE, head_dim=head_dim)

    return loss


def _memeff_loss(module) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    clip = module.MemoryEfficientCLIPLoss(temperature=1.0 / SCALE, normalized_inputs=True, stable=False)

    def loss(q: Tensor, p: Tensor, labels: Tensor) -> Tensor:
        return clip(q, p)  # its targets are the diagonal, as labels = arange(B) here

    return loss


def _quantiles(samples_ms: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples_ms)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    return at(0.2), statistics.median(ordered), at(0.8)


def _time_cpu(fn: Callable[[], None], warmup_ms: int, rep_ms: int) -> tuple[float, float, float]:
    """Wall-clock (p20, median, p80) in ms: warm up for ``warmup_ms``, then repeat for ``rep_ms`` (3-100 runs)."""
    start = time.perf_counter()
    fn()
    while (time.perf_counter() - start) * 1e3 < warmup_ms:
        fn()
    samples: list[float] = []
    begin = time.perf_counter()
    while len(samples) < 3 or (len(samples) < 100 and (time.perf_counter() - begin) * 1e3 < rep_ms):
        tick = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - tick) * 1e3)
    return _quantiles(samples)


def _time_gpu(fn: Callable[[], None], warmup_ms: int, rep_ms: int, grads: list[Tensor]) -> tuple[float, float, float]:
    import triton.testing

    p20, median, p80 = triton.testing.do_bench(fn, warmup=warmup_ms, rep=rep_ms, grad_to_none=grads,
                                               quantiles=[0.2, 0.5, 0.8])
    return p20, median, p80


def _peak_extra_mib(fn: Callable[[], None]) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    baseline = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - baseline) / 2**20


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or "out of memory" in str(exc).lower()


def matmul_peak_tflops(device: torch.device, dtype: str, warmup_ms: int, rep_ms: int) -> float:
    """Matmul rate of this GPU in ``dtype``, measured now (fp32 as PyTorch runs it by default, without
    TF32): the ceiling the kernel's matmuls in that dtype could reach."""
    size = 8192
    a = torch.randn(size, size, device=device, dtype=DTYPES[dtype])
    b = torch.randn(size, size, device=device, dtype=DTYPES[dtype])
    _, median_ms, _ = _time_gpu(lambda: a @ b, warmup_ms, rep_ms, [])
    return 2 * size**3 / (median_ms * 1e-3) / 1e12


@dataclass
class Cell:
    dtype: str
    mode: str
    size: int
    dim: int
    provider: str
    status: str = "ok"
    median_ms: float | None = None
    p20_ms: float | None = None
    p80_ms: float | None = None
    peak_extra_mib: float | None = None
    tflops: float | None = None
    pct_of_matmul_peak: float | None = None
    loss: float | None = None
    symmetric: bool = False


def _run_cell(cell: Cell, provider: Provider, device: torch.device, config: BenchConfig,
              peak_tflops: float | None) -> Cell:
    if provider.loss is None:
        cell.status = f"n/a: {provider.unavailable}"
        return cell
    if provider.only_dtype not in (None, cell.dtype):
        cell.status = f"n/a: {provider.only_dtype} cells only"
        return cell
    if cell.dim % provider.needs_dim_multiple:
        cell.status = f"n/a: d must be a multiple of {provider.needs_dim_multiple}"
        return cell
    gen = torch.Generator(device=device).manual_seed(cell.size + cell.dim)
    dtype = DTYPES[cell.dtype]
    try:
        q = F.normalize(torch.randn(cell.size, cell.dim, generator=gen, device=device), dim=1).to(dtype)
        p = F.normalize(torch.randn(cell.size, cell.dim, generator=gen, device=device), dim=1).to(dtype)
        labels = torch.arange(cell.size, device=device)
        backward = cell.mode == "fwd+bwd"
        q.requires_grad_(backward)
        p.requires_grad_(backward)

        def step() -> None:
            loss = provider.loss(q, p, labels)
            if backward:
                loss.backward()

        with torch.no_grad() if not backward else torch.enable_grad():
            cell.loss = provider.loss(q, p, labels).item()
            if device.type == "cuda":
                cell.peak_extra_mib = _peak_extra_mib(step)
                q.grad = p.grad = None
                cell.p20_ms, cell.median_ms, cell.p80_ms = _time_gpu(step, config.warmup_ms, config.rep_ms, [q, p])
            else:
                cell.p20_ms, cell.median_ms, cell.p80_ms = _time_cpu(step, config.warmup_ms, config.rep_ms)
    except Exception as exc:  # a failing provider is a result of the sweep, not the end of it
        cell.status = "OOM" if _is_out_of_memory(exc) else f"error: {str(exc).splitlines()[0][:200]}"
        return cell
    finally:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    flops = FLOPS_PER_BND[cell.mode] * cell.size * cell.size * cell.dim * (2 if cell.symmetric else 1)
    cell.tflops = flops / (cell.median_ms * 1e-3) / 1e12
    if peak_tflops:
        cell.pct_of_matmul_peak = 100 * cell.tflops / peak_tflops
    return cell


def interpreter_check() -> dict:
    """Fused kernel vs float64 reference on a tiny masked, symmetric case, in a Triton-interpreter subprocess."""
    env = dict(os.environ, TRITON_INTERPRET="1")
    code = "import json; from hybrid_repro.bench_kernel import _interpreter_errors; print(json.dumps(_interpreter_errors()))"
    # -P as in the parent: where it keeps the working directory off sys.path, a checkout's hybrid_repro/ (which
    # lacks kernels/) must not shadow the installed package in the child either.
    safe_path = ["-P"] if getattr(sys.flags, "safe_path", False) else []
    done = subprocess.run([sys.executable, *safe_path, "-c", code], env=env, capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        return {"status": "error", "detail": done.stderr.strip().splitlines()[-1:] or ["no output"]}
    return {"status": "ok", **json.loads(done.stdout.strip().splitlines()[-1])}


def _interpreter_errors() -> dict:
    """Relative errors (norm of difference / norm of reference) of loss, dQ, dP; run with TRITON_INTERPRET=1."""
    from hybrid_repro.kernels.infonce_function import info_nce_triton

    gen = torch.Generator().manual_seed(0)
    batch, n_passages, dim = 24, 40, 32
    q = F.normalize(torch.randn(batch, dim, generator=gen), dim=1)
    p = F.normalize(torch.randn(n_passages, dim, generator=gen), dim=1)
    labels = torch.randint(0, n_passages, (batch,), generator=gen)
    ids = dict(query_ids=torch.randint(0, 4, (batch,), generator=gen),
               passage_ids=torch.randint(0, 4, (n_passages,), generator=gen))
    results = []
    for fn, dtype in ((info_nce_triton, torch.float32), (info_nce_reference, torch.float64)):
        q_, p_ = q.detach().to(dtype).requires_grad_(), p.detach().to(dtype).requires_grad_()
        loss = fn(q_, p_, labels, SCALE, symmetric=True, positives_as_negatives=False, **ids)
        loss.backward()
        results.append((loss.detach().double(), q_.grad.double(), p_.grad.double()))
    (got, ref) = results
    errors = {name: float((a - b).norm() / b.norm()) for name, a, b in zip(("loss", "dq", "dp"), got, ref)}
    return {"shape": [batch, n_passages, dim], "relative_error": errors}


def gpu_identity(device: torch.device) -> dict:
    """GPU name and driver version (driver via nvidia-smi when present)."""
    if device.type != "cuda":
        return {"name": None, "driver": None}
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, check=True, timeout=30).stdout.split()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        driver = "unknown"
    return {"name": torch.cuda.get_device_name(device), "driver": driver, "cuda": torch.version.cuda}


def format_table(cells: list[Cell]) -> str:
    """Fixed-width table: one line per cell."""
    return "\n".join([TABLE_HEADER, "-" * len(TABLE_HEADER)] + [format_row(c) for c in cells])


TABLE_HEADER = (f"{'dtype':5} {'mode':7} {'B=N':>6} {'d':>5} {'sym':3} {'provider':18} {'median ms':>10} "
                f"{'p20-p80 ms':>17} {'peak MiB':>9} {'TFLOP/s':>8} {'%peak':>6}  status")


def format_row(c: Cell) -> str:
    """One cell as a table row (%peak: of the matmul peak in the cell's dtype)."""

    def num(value, fmt):
        width = int(fmt.split(".")[0])
        return format(value, fmt) if value is not None else "-".rjust(width)

    spread = f"{c.p20_ms:.3f}-{c.p80_ms:.3f}" if c.p20_ms is not None else "-"
    return (f"{c.dtype:5} {c.mode:7} {c.size:>6} {c.dim:>5} {'yes' if c.symmetric else 'no':3} {c.provider:18} "
            f"{num(c.median_ms, '10.3f')} {spread:>17} {num(c.peak_extra_mib, '9.1f')} {num(c.tflops, '8.2f')} "
            f"{num(c.pct_of_matmul_peak, '6.1f')}  {c.status}")


def plot(cells: list[Cell], path: Path, title: str) -> None:
    """Median time against B = N, one panel per (mode, dtype), one line per (provider, d)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(c.mode, c.dtype) for c in cells})
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (mode, dtype) in zip(axes[0], panels):
        series: dict[tuple[str, int], list[tuple[int, float]]] = {}
        for c in cells:
            if (c.mode, c.dtype) == (mode, dtype) and c.median_ms is not None:
                series.setdefault((c.provider, c.dim), []).append((c.size, c.median_ms))
        for (provider, dim), points in sorted(series.items()):
            xs, ys = zip(*sorted(points))
            ax.plot(xs, ys, marker="o", label=f"{provider} d={dim}")
        ax.set(xscale="log", yscale="log", xlabel="B = N", ylabel="median time (ms)", title=f"{mode}, {dtype}")
        if series:
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_bench_kernel(out_dir: Path, config: BenchConfig | None = None, device: torch.device | None = None,
                     echo: Callable[[str], None] = print, plot_results: bool = True) -> dict:
    """Run the sweep, write results.json / results.txt (and kernel_bench.png unless ``plot_results`` is
    off, for environments without matplotlib) into ``out_dir``, return the JSON."""
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    on_gpu = device.type == "cuda"
    config = config or default_config(on_gpu)
    note = ("GPU timings: CUDA events via triton.testing.do_bench" if on_gpu else
            "NO GPU TIMING WAS TAKEN: no CUDA device; PyTorch providers timed on the CPU with a wall clock, "
            "memory not measured, the Triton kernel checked for correctness in the interpreter only")
    echo(note)
    peaks = {dtype: matmul_peak_tflops(device, dtype, config.warmup_ms, config.rep_ms) for dtype in config.dtypes
             } if on_gpu else {}
    providers = build_providers(config.providers, device, config.symmetric)
    grid = [(dtype, mode, size, dim, provider) for dtype in config.dtypes for mode in config.modes
            for size in config.sizes for dim in config.dims for provider in providers]
    echo(TABLE_HEADER)
    cells = []
    for dtype, mode, size, dim, provider in tqdm(grid, desc="bench-kernel", unit="cell"):
        cell = _run_cell(Cell(dtype, mode, size, dim, provider.name, symmetric=config.symmetric), provider, device,
                         config, peaks.get(dtype))
        tqdm.write(format_row(cell))
        cells.append(cell)
    result = {
        "note": note,
        "gpu_timing": on_gpu,
        "environment": environment_summary(),
        "gpu": gpu_identity(device),
        "config": {**asdict(config), "scale": SCALE, "flops_per_bnd": FLOPS_PER_BND},
        "matmul_peak_tflops": peaks,
        "interpreter_check": None if on_gpu else interpreter_check(),
        "cells": [asdict(cell) for cell in cells],
    }
    table = format_table(cells)
    if result["interpreter_check"] is not None:
        echo(f"interpreter check: {json.dumps(result['interpreter_check'])}")
    with atomic_output_dir(out_dir) as tmp:
        write_json(tmp / "results.json", result)
        (tmp / "results.txt").write_text(note + "\n" + table + "\n", encoding="utf-8")
        if plot_results:
            title = f"InfoNCE, {result['environment']['device']}" + ("" if on_gpu else " - CPU wall clock, no GPU timing")
            plot(cells, tmp / "kernel_bench.png", title)
    return result
