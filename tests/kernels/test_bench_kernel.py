"""bench-kernel on the CPU: tiny sweeps through the CLI, the chunked baseline, OOM as a result."""

import json

import pytest
import torch
from click.testing import CliRunner

from hybrid_repro import bench_kernel
from hybrid_repro.bench_kernel import BenchConfig, Cell, Provider, chunked_info_nce
from hybrid_repro.cli import cli
from hybrid_repro.kernels.infonce_reference import info_nce_reference

cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU path of bench-kernel")


def _bench(tmp_path, *options):
    out = tmp_path / "kernel"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)  # --out lies inside the project: here, the test's folder
        result = CliRunner().invoke(cli, ["bench-kernel", "--out", "kernel", "--sizes", "16,40", "--dims", "8",
                                          "--warmup-ms", "1", "--rep-ms", "2", *options])
    return result, out


@cpu_only
def test_cli_sweep_writes_table_json_and_plot(tmp_path):
    result, out = _bench(tmp_path, "--dtypes", "fp32,bf16", "--providers",
                         "torch-fp32,torch-chunked-fp32,torch-bf16,triton,inf-cl")
    assert result.exit_code == 0, result.output
    assert "NO GPU TIMING WAS TAKEN" in result.output
    data = json.loads((out / "results.json").read_text())
    assert data["gpu_timing"] is False and data["matmul_peak_tflops"] == {}
    assert data["environment"]["git_revision"]
    cells = data["cells"]
    assert len(cells) == 2 * 2 * 2 * 5  # dtypes x sizes x modes x providers
    timed = [c for c in cells if c["status"] == "ok"]
    assert {(c["provider"], c["dtype"]) for c in timed} == {
        ("torch-fp32", "fp32"), ("torch-chunked-fp32", "fp32"), ("torch-fp32", "bf16"), ("torch-chunked-fp32", "bf16"),
        ("torch-bf16", "bf16")}
    assert all(0 < c["p20_ms"] <= c["median_ms"] <= c["p80_ms"] for c in timed)
    assert all(c["tflops"] > 0 and c["peak_extra_mib"] is None for c in timed)
    for size in (16, 40):
        losses = {c["provider"]: c["loss"] for c in timed if c["size"] == size and c["mode"] == "fwd"
                  and c["dtype"] == "fp32"}
        assert losses["torch-fp32"] == pytest.approx(losses["torch-chunked-fp32"], rel=1e-5)
    skipped = {(c["provider"], c["dtype"]): c["status"] for c in cells if c["status"] != "ok"}
    assert skipped[("triton", "fp32")] == "n/a: no CUDA: checked through the interpreter only"
    assert skipped[("inf-cl", "fp32")] == "n/a: needs CUDA"
    assert skipped[("torch-bf16", "fp32")] == "n/a: bf16 cells only"
    for line in ("torch-chunked-fp32", "n/a: bf16 cells only"):  # each row printed as its cell finished
        assert line in result.output
    check = data["interpreter_check"]
    assert check["status"] == "ok" and max(check["relative_error"].values()) < 1e-5
    assert (out / "kernel_bench.png").stat().st_size > 1000
    assert "torch-chunked" in (out / "results.txt").read_text()


@cpu_only
@pytest.mark.slow
def test_cli_torch_compile_provider_bf16_symmetric(tmp_path):
    result, out = _bench(tmp_path, "--dtypes", "bf16", "--modes", "fwd+bwd", "--symmetric", "--no-plot",
                         "--providers", "torch-bf16,torch-compile-bf16,torch-fp32,memeff")
    assert result.exit_code == 0, result.output
    cells = {(c["provider"], c["size"]): c for c in json.loads((out / "results.json").read_text())["cells"]}
    for size in (16, 40):
        compiled, eager = cells[("torch-compile-bf16", size)], cells[("torch-bf16", size)]
        assert compiled["status"] == "ok" and compiled["symmetric"]
        assert compiled["loss"] == pytest.approx(eager["loss"], rel=1e-5)
        # bf16 logits against the fp32 upcast: the same loss to bf16 precision, not to fp32's.
        assert eager["loss"] == pytest.approx(cells[("torch-fp32", size)]["loss"], rel=2e-2)
        assert cells[("memeff", size)]["status"] == "n/a: needs CUDA"
    # Symmetric cells count both directions: 16 B N d FLOPs forward+backward.
    cell = cells[("torch-bf16", 40)]
    assert cell["tflops"] == pytest.approx(16 * 40 * 40 * 8 / (cell["median_ms"] * 1e-3) / 1e12)
    assert not (out / "kernel_bench.png").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_sweep_times_and_measures_memory(tmp_path):
    result, out = _bench(tmp_path, "--sizes", "512,2048", "--dims", "128", "--dtypes", "bf16",
                         "--providers", "triton,torch-bf16,torch-chunked-fp32")
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    assert data["gpu_timing"] is True and data["matmul_peak_tflops"]["bf16"] > 10
    assert data["gpu"]["name"] and data["interpreter_check"] is None
    for cell in data["cells"]:
        assert cell["status"] == "ok", cell
        assert cell["peak_extra_mib"] >= 0 and cell["pct_of_matmul_peak"] > 0
    by_key = {(c["provider"], c["mode"], c["size"]): c for c in data["cells"]}
    for (provider, mode, size), cell in by_key.items():
        assert cell["loss"] == pytest.approx(by_key[("torch-bf16", mode, size)]["loss"], rel=1e-2)
    # The fused kernel keeps O((B + N) d) memory; the eager loss holds B x N logits.
    fused, eager = by_key[("triton", "fwd+bwd", 2048)], by_key[("torch-bf16", "fwd+bwd", 2048)]
    assert fused["peak_extra_mib"] < eager["peak_extra_mib"]


def test_cli_rejects_unknown_provider(tmp_path):
    result, out = _bench(tmp_path, "--providers", "torch-fp32,cublas")
    assert result.exit_code == 2
    assert "unknown or missing provider ['cublas']" in result.output
    assert not out.exists()


@pytest.mark.parametrize("symmetric", [False, True])
def test_chunked_baseline_matches_reference(monkeypatch, symmetric):
    monkeypatch.setattr(bench_kernel, "CHUNK_LOGIT_BYTES", 4 * 30 * 7)  # 7 rows per chunk for N = 30
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(20, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    p = torch.randn(30, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 30, (20,), generator=gen)
    chunked = chunked_info_nce(q.float(), p.float(), labels, 5.0, symmetric=symmetric)
    reference = info_nce_reference(q.float(), p.float(), labels, 5.0, symmetric=symmetric,
                                   positives_as_negatives=True)
    torch.testing.assert_close(chunked, reference)
    got = torch.autograd.grad(chunked, (q, p))
    expected = torch.autograd.grad(reference, (q, p))
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


def test_out_of_memory_is_recorded_not_raised():
    def exhausted(q, p, labels):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 16.00 GiB")

    config = BenchConfig(sizes=(8,), dims=(4,), dtypes=("fp32",), warmup_ms=1, rep_ms=1)
    cell = bench_kernel._run_cell(Cell("fp32", "fwd", 8, 4, "big"), Provider("big", exhausted), torch.device("cpu"),
                                  config, None)
    assert cell.status == "OOM" and cell.median_ms is None


def test_config_from_options_overrides_only_what_is_given():
    config = bench_kernel.config_from_options(False, sizes="8,16", providers="torch-fp32, triton")
    assert config.sizes == (8, 16) and config.providers == ("torch-fp32", "triton")
    assert config.dims == bench_kernel.default_config(False).dims
    assert bench_kernel.default_config(True).sizes == (1024, 4096, 16384, 65536)
    with pytest.raises(bench_kernel.HybridReproError, match="comma-separated integers"):
        bench_kernel.config_from_options(False, dims="64,big")
